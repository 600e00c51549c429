//! The stored documents of the message and contact stores, apart from the
//! model and wire types: each is converted at the edge, tolerates fields it
//! does not know (none denies unknown fields) and refuses values it cannot
//! represent with `Corrupt` instead of panicking.

use mongodb::bson::{self, Document};
use serde::{Deserialize, Serialize};

use chatcore::model::{
    Content, ConversationId, ConversationKind, MediaId, Message, MessageId, Millis, Rel, RelKind,
    Role, UserId,
};
use chatcore::store::{
    pair_key, ContactView, ConversationState, GroupInfo, Link, Member, NewMessage, Pending,
    Relation, StoreError, StoreResult,
};

use crate::{to_i64, to_u64};

/// The layout of a conversation document, stored in its `v` field. Version
/// 1 documents (`{_id, members: [user ids], last_seq, last_ts}`, no `v`)
/// are rewritten by the migration to schema version 2 (`migrate.rs`).
pub(crate) const CONV_LAYOUT: i64 = 2;

/// An entry of a conversation's log: a message, a notice or a void.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MessageDoc {
    #[serde(rename = "_id")]
    pub(crate) id: String,
    pub(crate) conv: String,
    pub(crate) seq: i64,
    pub(crate) from: String,
    pub(crate) client_id: String,
    pub(crate) ts: Millis,
    pub(crate) content: Content,
    /// Set on every entry that is not a message in its own right
    /// (`!NewMessage::stands_alone()`: notices, voids, edits, reactions,
    /// deletions), which never count as unread; absent on messages (and on
    /// every entry of schema 1, which had only messages), so the unread
    /// count filters on it without decoding contents.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) notice: bool,
    /// What the entry replies to, edits, reacts to or deletes; absent for
    /// nothing (and on every entry before schema 7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) rel: Option<RelDoc>,
    /// The users it mentions; absent for none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) mentions: Vec<String>,
    /// When the disappearing-message timer removes its content; absent
    /// for never, and once removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<Millis>,
    /// The uploaded files it carries (media ids); absent for none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) media: Vec<String>,
}

/// A stored [`Rel`]: `{kind, target}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RelDoc {
    pub(crate) kind: RelKind,
    pub(crate) target: String,
}

impl MessageDoc {
    /// `msg` as the entry at `seq`.
    /// Its `expires_at` is left for the caller, who knows the stored timer.
    pub(crate) fn new(msg: NewMessage, seq: u64) -> Self {
        Self {
            notice: !msg.stands_alone(),
            id: msg.id.0,
            conv: msg.conv.0,
            seq: to_i64(seq),
            from: msg.from.0,
            client_id: msg.client_id,
            ts: msg.ts,
            content: msg.content,
            rel: msg.rel.map(|r| RelDoc {
                kind: r.kind,
                target: r.target.0,
            }),
            mentions: msg.mentions.into_iter().map(|u| u.0).collect(),
            expires_at: None,
            media: msg.media.into_iter().map(|m| m.0).collect(),
        }
    }

    /// The target of the deletion this entry is, if it is one.
    pub(crate) fn deletes(&self) -> Option<&str> {
        self.rel
            .as_ref()
            .filter(|r| r.kind == RelKind::Delete)
            .map(|r| r.target.as_str())
    }

    /// An entry without content that holds `seq` of `conv`, so the log
    /// stays gap-free when the entry claimed there cannot be stored.
    pub(crate) fn void(conv: &str, seq: i64, from: &str, ts: Millis) -> Self {
        let id = MessageId::generate().0;
        Self {
            client_id: id.clone(),
            id,
            conv: conv.to_owned(),
            seq,
            from: from.to_owned(),
            ts,
            content: Content::Void {},
            notice: true,
            rel: None,
            mentions: Vec::new(),
            expires_at: None,
            media: Vec::new(),
        }
    }

    pub(crate) fn into_message(self) -> StoreResult<Message> {
        Ok(Message {
            media: self.media.into_iter().map(MediaId).collect(),
            id: MessageId(self.id),
            conv: ConversationId(self.conv),
            seq: to_u64(self.seq, "seq")?,
            from: UserId(self.from),
            client_id: self.client_id,
            ts: self.ts,
            rel: self.rel.map(|r| Rel::new(r.kind, MessageId(r.target))),
            mentions: self.mentions.into_iter().map(UserId).collect(),
            expires_at: self.expires_at,
            content: self.content,
        })
    }

    pub(crate) fn to_bson(&self) -> StoreResult<bson::Bson> {
        bson::to_bson(self).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
}

/// A stored [`ConversationKind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum KindDoc {
    Direct,
    Group,
}

/// A stored [`Role`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RoleDoc {
    Member,
    Admin,
    Owner,
}

/// A stored [`GroupInfo`].
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct InfoDoc {
    #[serde(default)]
    pub(crate) title: String,
    #[serde(default)]
    pub(crate) description: String,
    #[serde(default)]
    pub(crate) avatar: Option<String>,
    #[serde(default)]
    pub(crate) history_visible: bool,
}

/// A stored [`Member`]: `left_seq` is null while a member, which the
/// append's membership filter (`left_seq: null`) relies on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MemberDoc {
    pub(crate) user: String,
    pub(crate) role: RoleDoc,
    #[serde(default)]
    pub(crate) joined_seq: i64,
    #[serde(default)]
    pub(crate) joined_at: Millis,
    #[serde(default)]
    pub(crate) left_seq: Option<i64>,
    #[serde(default)]
    pub(crate) muted_until: Option<Millis>,
}

/// A conversation: settings, members (current and past), head and the
/// version that [`chatcore::store::MessageStore::change`] compares.
///
/// `head` is the newest entry (seq `last_seq`), written by the same atomic
/// update that claims its seq and copied into `messages` right after: the
/// write-ahead that makes the claim and the entry one step (see
/// `messages.rs`). Absent when the conversation has no entry, and on
/// documents migrated from schema 1, whose entries are all in `messages`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ConvDoc {
    #[serde(rename = "_id")]
    pub(crate) conv: String,
    /// The document's layout ([`CONV_LAYOUT`]).
    pub(crate) v: i64,
    pub(crate) kind: KindDoc,
    pub(crate) created_at: Millis,
    #[serde(default)]
    pub(crate) info: InfoDoc,
    pub(crate) members: Vec<MemberDoc>,
    pub(crate) last_seq: i64,
    pub(crate) last_ts: Millis,
    pub(crate) version: i64,
    #[serde(default)]
    pub(crate) invite: Option<String>,
    /// The users who block the other in a direct conversation; absent (no
    /// one) in documents written before blocks existed. Changed only by
    /// `change`, which bumps `version`, so the claim's match on `version`
    /// also pins what the append read here.
    #[serde(default)]
    pub(crate) blocked: Vec<String>,
    /// Who has not accepted the conversation (message requests, group
    /// invitations); absent (nobody) in documents written before them.
    /// Changed only by `change`, like `blocked`.
    #[serde(default)]
    pub(crate) pending: Vec<PendingDoc>,
    /// Whether the conversation is end-to-end encrypted; absent (no) in
    /// documents written before encryption existed. Set only by `change`,
    /// like `blocked`, and never unset.
    #[serde(default)]
    pub(crate) encrypted: bool,
    /// The disappearing-message timer; absent (off) in documents written
    /// before it existed, and while off. Changed only by `change`, like
    /// `blocked`, so the claim's match on `version` pins the timer an
    /// append stamped its entry with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expire_after: Option<Millis>,
    /// The target of the deletion that is the head, while the removal of
    /// its content (and of its edits' and reactions') may not be done:
    /// set by the deletion's claim, unset once the removal is durable.
    /// Whoever finds it set (the next append, a reader that settles the
    /// head) does the removal again first, which is idempotent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deleting: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) head: Option<MessageDoc>,
}

/// A stored [`Pending`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PendingDoc {
    pub(crate) user: String,
    pub(crate) by: String,
    pub(crate) at: Millis,
}

/// The stored form of `pending`.
pub(crate) fn pending_docs(pending: &[Pending]) -> Vec<PendingDoc> {
    pending
        .iter()
        .map(|p| PendingDoc {
            user: p.user.0.clone(),
            by: p.by.0.clone(),
            at: p.at,
        })
        .collect()
}

impl ConvDoc {
    /// The document of a new conversation, without a head.
    pub(crate) fn from_state(s: &ConversationState) -> Self {
        Self {
            conv: s.conv.0.clone(),
            v: CONV_LAYOUT,
            kind: match s.kind {
                ConversationKind::Direct => KindDoc::Direct,
                ConversationKind::Group => KindDoc::Group,
            },
            created_at: s.created_at,
            info: info_doc(&s.info),
            members: s.members.iter().map(member_doc).collect(),
            last_seq: to_i64(s.last_seq),
            last_ts: s.last_ts,
            version: to_i64(s.version),
            invite: s.invite.clone(),
            blocked: s.blocked.iter().map(|u| u.0.clone()).collect(),
            pending: pending_docs(&s.pending),
            encrypted: s.encrypted,
            expire_after: s.expire_after,
            deleting: None,
            head: None,
        }
    }

    /// When an entry appended now loses its content, by the stored timer:
    /// [`ConversationState::expiry_of`]'s rule, on the stored form.
    pub(crate) fn expiry_of(&self, entry: &MessageDoc) -> Option<Millis> {
        let after = self.expire_after?;
        entry
            .content
            .is_message()
            .then(|| entry.ts.saturating_add(after))
    }

    /// Whether `user` is a current member.
    pub(crate) fn is_active(&self, user: &str) -> bool {
        self.members
            .iter()
            .any(|m| m.user == user && m.left_seq.is_none())
    }

    /// The head, if it is the newest entry and may still need its copy in
    /// `messages`.
    pub(crate) fn pending_head(&self) -> Option<&MessageDoc> {
        self.head.as_ref().filter(|h| h.seq == self.last_seq)
    }

    pub(crate) fn into_state(self) -> StoreResult<ConversationState> {
        let mut s =
            ConversationState::direct(&UserId::from(""), &UserId::from(""), self.created_at);
        s.conv = ConversationId(self.conv);
        s.kind = match self.kind {
            KindDoc::Direct => ConversationKind::Direct,
            KindDoc::Group => ConversationKind::Group,
        };
        let mut info = GroupInfo::default();
        info.title = self.info.title;
        info.description = self.info.description;
        info.avatar = self.info.avatar;
        info.history_visible = self.info.history_visible;
        s.info = info;
        s.members = self
            .members
            .into_iter()
            .map(MemberDoc::into_member)
            .collect::<StoreResult<_>>()?;
        s.last_seq = to_u64(self.last_seq, "last_seq")?;
        s.last_ts = self.last_ts;
        s.version = to_u64(self.version, "version")?;
        s.invite = self.invite;
        s.blocked = self.blocked.into_iter().map(UserId).collect();
        s.pending = self
            .pending
            .into_iter()
            .map(|p| Pending::new(UserId(p.user), UserId(p.by), p.at))
            .collect();
        s.encrypted = self.encrypted;
        s.expire_after = self.expire_after;
        Ok(s)
    }
}

impl MemberDoc {
    pub(crate) fn into_member(self) -> StoreResult<Member> {
        let role = match self.role {
            RoleDoc::Member => Role::Member,
            RoleDoc::Admin => Role::Admin,
            RoleDoc::Owner => Role::Owner,
        };
        let mut m = Member::new(
            UserId(self.user),
            role,
            to_u64(self.joined_seq, "joined_seq")?,
            self.joined_at,
        );
        m.left_seq = self.left_seq.map(|s| to_u64(s, "left_seq")).transpose()?;
        m.muted_until = self.muted_until;
        Ok(m)
    }
}

pub(crate) fn member_doc(m: &Member) -> MemberDoc {
    MemberDoc {
        user: m.user.0.clone(),
        role: match m.role {
            Role::Member => RoleDoc::Member,
            Role::Admin => RoleDoc::Admin,
            Role::Owner => RoleDoc::Owner,
        },
        joined_seq: to_i64(m.joined_seq),
        joined_at: m.joined_at,
        left_seq: m.left_seq.map(to_i64),
        muted_until: m.muted_until,
    }
}

pub(crate) fn info_doc(i: &GroupInfo) -> InfoDoc {
    InfoDoc {
        title: i.title.clone(),
        description: i.description.clone(),
        avatar: i.avatar.clone(),
        history_visible: i.history_visible,
    }
}

/// The layout of a relation document, stored in its `v` field.
pub(crate) const RELATION_LAYOUT: i64 = 1;

/// The listings a relation document is tagged for (`listed`). A view that
/// chatcore adds later is listed by a scan of the user's pairs until it is
/// added here (with a migration that tags the stored documents).
pub(crate) const LISTED_VIEWS: [ContactView; 4] = [
    ContactView::Contacts,
    ContactView::Incoming,
    ContactView::Outgoing,
    ContactView::Blocked,
];

/// The tag of `user`'s listing of `view`, `"<view>:<user id>"` (view names
/// hold no `:`, so no two listings share a tag); `None` for a view not in
/// [`LISTED_VIEWS`].
pub(crate) fn listing_tag(view: ContactView, user: &UserId) -> Option<String> {
    let name = match view {
        ContactView::Contacts => "contacts",
        ContactView::Incoming => "incoming",
        ContactView::Outgoing => "outgoing",
        ContactView::Blocked => "blocked",
        _ => return None,
    };
    Some(format!("{name}:{}", user.0))
}

/// A stored [`Link`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum LinkDoc {
    None,
    Requested { by: String, at: Millis },
    Contacts { since: Millis },
}

/// A pair's [`Relation`], one document per pair in `contacts`, keyed by
/// [`Relation::key`]. Per-user arrays are in the order of `users`, as in
/// the model.
///
/// `listed` is derived: one [`listing_tag`] for each listing of either user
/// that [`ContactView::shows`] the pair in, computed at every write from
/// the relation written. Each `list` is then an exact range of the
/// `listed_key` index (`{listed: tag, _id > after}` sorted by `_id`), with
/// nothing filtered after the index, and `shows` stays the one definition
/// of the listings. Should `shows` change meaning, the stored tags must be
/// recomputed by a migration (and `RELATION_LAYOUT` raised).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RelationDoc {
    #[serde(rename = "_id")]
    pub(crate) key: String,
    /// The document's layout ([`RELATION_LAYOUT`]).
    pub(crate) v: i64,
    pub(crate) users: [String; 2],
    pub(crate) link: LinkDoc,
    #[serde(default)]
    pub(crate) blocked: [Option<Millis>; 2],
    #[serde(default)]
    pub(crate) retry_at: [Option<Millis>; 2],
    /// Absent (nothing unaccepted) in documents written before message
    /// requests.
    #[serde(default)]
    pub(crate) unaccepted: [bool; 2],
    pub(crate) version: i64,
    #[serde(default)]
    pub(crate) listed: Vec<String>,
}

impl RelationDoc {
    /// The document of `r`, tagged for its listings. `Corrupt` for a link
    /// this build does not know how to store.
    pub(crate) fn from_relation(r: &Relation) -> StoreResult<Self> {
        let link = match &r.link {
            Link::None => LinkDoc::None,
            Link::Requested { by, at } => LinkDoc::Requested {
                by: by.0.clone(),
                at: *at,
            },
            Link::Contacts { since } => LinkDoc::Contacts { since: *since },
            other => {
                return Err(StoreError::Corrupt(format!(
                    "a contact link this store cannot hold: {other:?}"
                )))
            }
        };
        let mut listed = Vec::new();
        for user in &r.users {
            for view in LISTED_VIEWS {
                if view.shows(r, user) {
                    listed.extend(listing_tag(view, user));
                }
            }
        }
        Ok(Self {
            key: r.key(),
            v: RELATION_LAYOUT,
            users: [r.users[0].0.clone(), r.users[1].0.clone()],
            link,
            blocked: r.blocked,
            retry_at: r.retry_at,
            unaccepted: r.unaccepted,
            version: to_i64(r.version),
            listed,
        })
    }

    /// The relation; `Corrupt` if the pair is out of order or does not
    /// match its key (the per-user arrays would be read for the wrong user).
    pub(crate) fn into_relation(self) -> StoreResult<Relation> {
        let [a, b] = self.users;
        let (a, b) = (UserId(a), UserId(b));
        let mut r = Relation::new(&a, &b);
        if r.users[0] != a || pair_key(&a, &b) != self.key {
            return Err(StoreError::Corrupt(format!(
                "relation {}: users {a}, {b} out of order or not its key",
                self.key
            )));
        }
        r.link = match self.link {
            LinkDoc::None => Link::None,
            LinkDoc::Requested { by, at } => Link::Requested { by: UserId(by), at },
            LinkDoc::Contacts { since } => Link::Contacts { since },
        };
        r.blocked = self.blocked;
        r.retry_at = self.retry_at;
        r.unaccepted = self.unaccepted;
        r.version = to_u64(self.version, "relation version")?;
        Ok(r)
    }
}

/// Any stored value as BSON, for `$set`.
pub(crate) fn bson_of<T: Serialize>(v: &T) -> StoreResult<bson::Bson> {
    bson::to_bson(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A raw document decoded as `T`; `Corrupt` if it does not fit.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(d: Document) -> StoreResult<T> {
    bson::from_document(d).map_err(|e| StoreError::Corrupt(e.to_string()))
}
