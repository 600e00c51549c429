use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

use super::StoreResult;
use crate::model::{
    Content, ConversationId, ConversationKind, DeviceId, MediaId, Message, MessageId, Millis,
    Receipt, Rel, RelKind, Role, UserId,
};

/// An entry to append (a message, or a notice the server writes); the
/// store assigns its `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewMessage {
    /// Id to give the message if it is new.
    pub id: MessageId,
    /// Conversation.
    pub conv: ConversationId,
    /// Sender (for a notice: who made the change).
    pub from: UserId,
    /// Sender's idempotency key (for a notice, its own id).
    pub client_id: String,
    /// Server time.
    pub ts: Millis,
    /// What it points at (reply, edit, reaction, deletion), if anything.
    pub rel: Option<Rel>,
    /// The members it mentions.
    pub mentions: Vec<UserId>,
    /// The uploaded files it carries.
    pub media: Vec<MediaId>,
    /// Payload.
    pub content: Content,
}

impl NewMessage {
    /// A message to append.
    pub fn new(
        conv: ConversationId,
        from: UserId,
        client_id: String,
        ts: Millis,
        content: Content,
    ) -> Self {
        Self {
            id: MessageId::generate(),
            conv,
            from,
            client_id,
            ts,
            rel: None,
            mentions: Vec::new(),
            media: Vec::new(),
            content,
        }
    }

    /// The same, pointing at a message (`rel`) and mentioning members.
    pub fn related(mut self, rel: Option<Rel>, mentions: Vec<UserId>) -> Self {
        self.rel = rel;
        self.mentions = mentions;
        self
    }

    /// The same, carrying the uploaded files `media`.
    pub fn with_media(mut self, media: Vec<MediaId>) -> Self {
        self.media = media;
        self
    }

    /// Whether it is a message in its own right, which counts as unread
    /// ([`Message::stands_alone`]); stores keep this beside the entry, as
    /// they cannot read an encrypted content.
    pub fn stands_alone(&self) -> bool {
        self.content.alerts() && RelKind::stands_alone(self.rel.as_ref().map(|r| r.kind))
    }

    /// A notice by `from` (the user who made the change): its client id is
    /// its own id, unique like every client id.
    pub fn notice(conv: ConversationId, from: UserId, ts: Millis, content: Content) -> Self {
        let id = MessageId::generate();
        Self {
            client_id: id.0.clone(),
            id,
            conv,
            from,
            ts,
            rel: None,
            mentions: Vec::new(),
            media: Vec::new(),
            content,
        }
    }

    /// The stored message this becomes at `seq`, losing its content at
    /// `expires_at` ([`ConversationState::expiry_of`]).
    pub fn into_message(self, seq: u64, expires_at: Option<Millis>) -> Message {
        Message {
            id: self.id,
            conv: self.conv,
            seq,
            from: self.from,
            client_id: self.client_id,
            ts: self.ts,
            rel: self.rel,
            mentions: self.mentions,
            media: self.media,
            expires_at,
            content: self.content,
        }
    }
}

/// Outcome of [`MessageStore::append`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Appended {
    /// The stored message: the new one, or the one stored earlier under the
    /// same `(from, client_id)`. Shared, so that a store keeping messages
    /// in memory hands out the stored one without a copy.
    pub message: Arc<Message>,
    /// True when nothing was stored because of an earlier identical key.
    pub duplicate: bool,
    /// The conversation's current members when the message landed: whom
    /// it goes to (empty for a duplicate).
    pub recipients: Arc<[Member]>,
}

impl Appended {
    /// A new message, for `recipients`.
    pub fn stored(message: impl Into<Arc<Message>>, recipients: Arc<[Member]>) -> Self {
        Self {
            message: message.into(),
            duplicate: false,
            recipients,
        }
    }

    /// A message stored earlier under the same key.
    pub fn duplicate(message: impl Into<Arc<Message>>) -> Self {
        Self {
            message: message.into(),
            duplicate: true,
            recipients: Arc::new([]),
        }
    }
}

/// What [`MessageStore::unread`] counts in one conversation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unread {
    /// Messages from others above the user's read marker.
    pub messages: u64,
    /// How many of them mention the user.
    pub mentions: u64,
}

impl Unread {
    /// `messages` unread, `mentions` of them mentioning the user.
    pub fn new(messages: u64, mentions: u64) -> Self {
        Self { messages, mentions }
    }
}

/// A user's membership of a conversation, current or past.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Member {
    /// The user.
    pub user: UserId,
    /// The role (`Member` in direct conversations).
    pub role: Role,
    /// Seq of the entry that made the user a member (0: from the start).
    /// Without history visibility the member reads entries after it only,
    /// the entry itself included.
    pub joined_seq: u64,
    /// When the user became a member; orders who served longest.
    pub joined_at: Millis,
    /// Seq of the entry that ended the membership (removed or left): the
    /// last entry the user receives and reads. `None` while a member.
    pub left_seq: Option<u64>,
    /// No alerts for this conversation before this time (`Some(i64::MAX)`:
    /// until unmuted).
    pub muted_until: Option<Millis>,
}

impl Member {
    /// A member from `joined_seq` on, as of `joined_at`.
    pub fn new(user: UserId, role: Role, joined_seq: u64, joined_at: Millis) -> Self {
        Self {
            user,
            role,
            joined_seq,
            joined_at,
            left_seq: None,
            muted_until: None,
        }
    }

    /// Whether the membership is current.
    pub fn is_active(&self) -> bool {
        self.left_seq.is_none()
    }

    /// Whether alerts are muted at `now`.
    pub fn is_muted(&self, now: Millis) -> bool {
        self.muted_until.is_some_and(|until| until > now)
    }
}

/// A user who has not accepted a conversation: the recipient of a message
/// request, or a user invited to a group.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Pending {
    /// The user who is to accept or decline.
    pub user: UserId,
    /// Who started the direct conversation, or invited the user.
    pub by: UserId,
    /// When.
    pub at: Millis,
}

impl Pending {
    /// `user`'s pending acceptance of what `by` started at `at`.
    pub fn new(user: UserId, by: UserId, at: Millis) -> Self {
        Self { user, by, at }
    }
}

/// Which of a user's conversations [`MessageStore::conversations`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listing {
    /// The conversations the user is or was a member of and has accepted.
    /// A direct conversation never written to is not listed (the peer did
    /// not choose it).
    Main,
    /// What waits for the user's answer ([`ConversationState::pending`]):
    /// message requests with something the user may read
    /// ([`ConversationState::readable`] not empty), and group invitations.
    Requests,
    /// Every conversation the user is or was a member of, whichever list
    /// shows it (or none, as a request the user blocks), but for direct
    /// ones never written to: what `sync` delivers.
    All,
}

impl Listing {
    /// Whether `state` belongs in `user`'s listing: the one definition
    /// every store follows.
    pub fn shows(self, state: &ConversationState, user: &UserId) -> bool {
        let pending = state.pending_for(user).is_some();
        match self {
            Listing::Main => {
                !pending
                    && state.member(user).is_some()
                    && (state.kind == ConversationKind::Group || state.last_seq > 0)
            }
            Listing::Requests => {
                pending
                    && (state.kind == ConversationKind::Group
                        || state
                            .readable(user)
                            .is_some_and(|(first, last)| first <= last))
                    && !state.blocked.contains(user)
            }
            Listing::All => {
                state.member(user).is_some()
                    && (state.kind == ConversationKind::Group || state.last_seq > 0)
            }
        }
    }
}

/// A group's settings (empty in a direct conversation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupInfo {
    /// Title, 1 to 100 characters.
    pub title: String,
    /// Description; empty for none.
    pub description: String,
    /// Avatar media id.
    pub avatar: Option<String>,
    /// Whether members see the history from before they joined.
    pub history_visible: bool,
}

/// A conversation as stored: kind, settings, members (current and past)
/// and head.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConversationState {
    /// Conversation.
    pub conv: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// When it was created.
    pub created_at: Millis,
    /// A group's settings.
    pub info: GroupInfo,
    /// Members, current and past, in the order they first joined.
    pub members: Vec<Member>,
    /// Seq of the newest entry (0 if none).
    pub last_seq: u64,
    /// Time of the newest entry (its creation time before any).
    pub last_ts: Millis,
    /// Counts changes of settings and members (not appends): what
    /// [`MessageStore::change`] compares.
    pub version: u64,
    /// Hex SHA-256 of the group's invite token, if one is active.
    pub invite: Option<String>,
    /// In a direct conversation: the users who block the other. While any
    /// does, [`MessageStore::append`] refuses every message with
    /// [`StoreError::Blocked`](super::StoreError::Blocked); the history stays
    /// readable. Set and cleared through [`MessageStore::change`].
    pub blocked: Vec<UserId>,
    /// Users who have not accepted the conversation. In a direct
    /// conversation, the recipient of a message request: a member, who
    /// receives its messages, but whose writes [`MessageStore::append`]
    /// refuses with [`StoreError::NotAccepted`](super::StoreError::NotAccepted)
    /// until the request is accepted. In a group, users invited who are
    /// not members yet. Set and cleared through [`MessageStore::change`].
    pub pending: Vec<Pending>,
    /// Whether the conversation is end-to-end encrypted: from the entry
    /// that turned it on, [`MessageStore::append`] refuses plain text
    /// ([`Content::is_plaintext`](crate::model::Content::is_plaintext))
    /// with [`StoreError::Encrypted`](super::StoreError::Encrypted). Set
    /// through [`MessageStore::change`]; a change never clears it.
    pub encrypted: bool,
    /// The disappearing-message timer (one of
    /// [`DISAPPEARING_TIMERS`](crate::model::DISAPPEARING_TIMERS); `None`:
    /// off): [`MessageStore::append`] stamps each entry with content
    /// ([`Content::is_message`]) to expire this long after it was sent
    /// ([`ConversationState::expiry_of`]). Set through [`MessageStore::change`].
    pub expire_after: Option<Millis>,
}

impl ConversationState {
    /// When `msg`, appended now, loses its content: its time plus the
    /// timer, for entries that have a content to lose. Counting from the
    /// send, not the reading (as WhatsApp does): the server can enforce
    /// one time for every member of a group, and no receipt need be read
    /// to remove a content.
    pub fn expiry_of(&self, msg: &NewMessage) -> Option<Millis> {
        let after = self.expire_after?;
        msg.content
            .is_message()
            .then(|| msg.ts.saturating_add(after))
    }

    /// A new direct conversation between `a` and `b`, without entries.
    pub fn direct(a: &UserId, b: &UserId, now: Millis) -> Self {
        Self {
            conv: ConversationId::direct(a, b),
            kind: ConversationKind::Direct,
            created_at: now,
            info: GroupInfo::default(),
            members: vec![
                Member::new(a.clone(), Role::Member, 0, now),
                Member::new(b.clone(), Role::Member, 0, now),
            ],
            last_seq: 0,
            last_ts: now,
            version: 0,
            invite: None,
            blocked: Vec::new(),
            pending: Vec::new(),
            encrypted: false,
            expire_after: None,
        }
    }

    /// A new group, owned by `owner`, whose first entry (seq 1) is its
    /// creation notice: every member joined at seq 1.
    pub fn group(owner: &UserId, others: &[UserId], info: GroupInfo, now: Millis) -> Self {
        let mut members = Vec::with_capacity(others.len() + 1);
        members.push(Member::new(owner.clone(), Role::Owner, 1, now));
        members.extend(
            others
                .iter()
                .map(|u| Member::new(u.clone(), Role::Member, 1, now)),
        );
        Self {
            conv: ConversationId::generate_group(),
            kind: ConversationKind::Group,
            created_at: now,
            info,
            members,
            last_seq: 0,
            last_ts: now,
            version: 0,
            invite: None,
            blocked: Vec::new(),
            pending: Vec::new(),
            encrypted: false,
            expire_after: None,
        }
    }

    /// What `user` has yet to accept here, if anything.
    pub fn pending_for(&self, user: &UserId) -> Option<&Pending> {
        self.pending.iter().find(|p| p.user == *user)
    }

    /// `user`'s membership, current or past.
    pub fn member(&self, user: &UserId) -> Option<&Member> {
        self.members.iter().find(|m| m.user == *user)
    }

    /// Whether `user` is a current member.
    pub fn has_member(&self, user: &UserId) -> bool {
        self.member(user).is_some_and(Member::is_active)
    }

    /// The current members.
    pub fn active(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.is_active())
    }

    /// How many current members.
    pub fn member_count(&self) -> usize {
        self.active().count()
    }

    /// The other member of a direct conversation, seen from `me` (a
    /// member); `None` for a group.
    pub fn peer_of(&self, me: &UserId) -> Option<&UserId> {
        if self.kind != ConversationKind::Direct {
            return None;
        }
        match self.members.as_slice() {
            [a, b] if a.user == *me => Some(&b.user),
            [a, b] if b.user == *me => Some(&a.user),
            _ => None,
        }
    }

    /// The seqs `user` may read, `first..=last`, if it ever was a member:
    /// from the entry that made it one (from 1 where the group shows
    /// history to new members), to the entry that ended it or the head.
    pub fn readable(&self, user: &UserId) -> Option<(u64, u64)> {
        let m = self.member(user)?;
        let first = if self.info.history_visible {
            1
        } else {
            m.joined_seq.max(1)
        };
        Some((first, m.left_seq.unwrap_or(self.last_seq)))
    }

    /// Puts conversations in the order [`MessageStore::conversations`]
    /// returns them: newest activity first, ties by conversation id.
    pub fn sort_newest_first(convs: &mut [ConversationState]) {
        convs.sort_by(|a, b| b.last_ts.cmp(&a.last_ts).then_with(|| a.conv.cmp(&b.conv)));
    }

    /// Whether `self` comes after the position `(last_ts, conv)` in that order.
    pub fn is_after(&self, position: &(Millis, ConversationId)) -> bool {
        self.last_ts < position.0 || (self.last_ts == position.0 && self.conv > position.1)
    }
}

/// Outcome of [`MessageStore::change`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Changed {
    /// The change is stored; with its notice, if it had one.
    Done(Option<Arc<Message>>),
    /// The conversation changed since it was read (its `version`, or its
    /// head when the change appends a notice): nothing was stored; read
    /// it again and retry.
    Stale,
}

/// Conversations, their logs, and each member's positions in them.
///
/// A conversation is a stored thing with members; its log holds messages
/// and notices (membership and settings changes) under one gap-free `seq`.
/// Whether a sender is a member is decided by the store atomically with the
/// append, so a send racing the sender's removal either lands before the
/// removal's notice or is refused.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Creates the direct conversation of `state` (built by
    /// [`ConversationState::direct`]) unless it exists, and returns the
    /// stored one: two users opening theirs at once get the same.
    async fn open_direct(&self, state: ConversationState) -> StoreResult<ConversationState>;

    /// Stores a new group (built by [`ConversationState::group`]) with its
    /// creation notice as entry 1. `Conflict { field: "conv" }` if the id is taken.
    async fn create_group(
        &self,
        state: ConversationState,
        created: NewMessage,
    ) -> StoreResult<Arc<Message>>;

    /// Appends durably and returns the stored message. The seq is the
    /// conversation's previous last seq + 1: strictly increasing and gap-free
    /// even under concurrent appends to the same conversation. If a message
    /// from the same `from` with the same `client_id` exists (in any
    /// conversation), nothing is stored and that message is returned with
    /// `duplicate: true`; a retry never consumes a seq, even when it races
    /// the first attempt. `NotFound` if the conversation does not exist,
    /// `NotMember` if `from` is not a current member when the entry would
    /// land, `Blocked` if the conversation is blocked, `NotAccepted` if
    /// `from` has not accepted it ([`ConversationState::pending`]),
    /// `Encrypted` if the content is plain text and the conversation is
    /// encrypted ([`ConversationState::encrypted`]). The entry expires
    /// when [`ConversationState::expiry_of`] says, by the stored state.
    ///
    /// An entry whose relation is a [`RelKind::Delete`] also removes, in
    /// the same atomic step, the content of its target and of every edit
    /// and reaction pointing at that target: each becomes
    /// [`Content::Deleted`] without `expires_at`, keeping its id, seq,
    /// sender, time, relation and mentions. The caller has checked that
    /// the deletion is allowed; the store checks only what it checks for
    /// any entry. When this returns `Ok`, the message survives a crash.
    async fn append(&self, msg: NewMessage) -> StoreResult<Appended>;

    /// Replaces the settings, members, invite, blocks, pending users and
    /// encryption and disappearing-message timer of `state.conv` with those of `state`, if the stored conversation's `version` is still
    /// `state.version - 1` and, when `notice` is given, its head is still
    /// `state.last_seq - 1`: the notice is then appended at
    /// `state.last_seq`, in the same atomic step. [`Changed::Stale`]
    /// otherwise. `NotFound` if the conversation does not exist.
    async fn change(
        &self,
        state: &ConversationState,
        notice: Option<NewMessage>,
    ) -> StoreResult<Changed>;

    /// Sets when alerts for `conv` resume for `user` (`None`: not muted).
    /// `NotFound` unless the user is or was a member.
    async fn set_muted(
        &self,
        user: &UserId,
        conv: &ConversationId,
        until: Option<Millis>,
    ) -> StoreResult<()>;

    /// The group whose active invite token hashes to `invite`, if any.
    async fn by_invite(&self, invite: &str) -> StoreResult<Option<ConversationState>>;

    /// Up to `limit` entries of `conv` with `seq < before` (all if `None`),
    /// the newest ones, returned in ascending seq order.
    async fn history(
        &self,
        conv: &ConversationId,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;

    /// The entries of `conv` with these ids, ascending by seq; ids it does
    /// not hold are left out. One store round trip for the whole list.
    async fn by_ids(&self, conv: &ConversationId, ids: &[MessageId]) -> StoreResult<Vec<Message>>;

    /// The edits, reactions and deletions in `conv` that point at one of
    /// `targets` (sent by `from`, when given), ascending by seq; not the
    /// replies, which are messages of their own. One store round trip for
    /// the whole list: what a page of history needs to show each message
    /// in its latest state with its reactions.
    async fn related(
        &self,
        conv: &ConversationId,
        targets: &[MessageId],
        from: Option<&UserId>,
    ) -> StoreResult<Vec<Message>>;

    /// Removes the content of up to `limit` entries whose `expires_at` is
    /// at or before `now`, in any conversation, and of the edits and
    /// reactions pointing at them, as a deletion does (the entries stay,
    /// [`Content::Deleted`] without `expires_at`). Returns how many
    /// expired entries it handled (not counting their edits and reactions):
    /// fewer than `limit` when no more are due. Found through an index,
    /// not a scan of every message.
    async fn expire(&self, now: Millis, limit: usize) -> StoreResult<usize>;

    /// Those of `ids` that something here still refers to: the `media` of
    /// an entry whose content is not deleted (a deletion or expiry clears
    /// the list), or a group's avatar. What the garbage collection of
    /// unreferenced blobs keeps. Found through an index, in one store round
    /// trip per call, not by a scan of every message; any order.
    async fn media_in_use(&self, ids: &[MediaId]) -> StoreResult<Vec<MediaId>>;

    /// Up to `limit` entries of `conv` with `seq > after`, ascending, with
    /// no gap: they stop before a seq that is claimed but not yet written.
    /// A claimed seq becomes readable (or a [`Content::Void`] entry) by
    /// itself, even if its writer died: readers never wait on it for ever.
    async fn read_after(
        &self,
        conv: &ConversationId,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;

    /// The newest entry at or below each given head (one store round trip
    /// for the whole list), in the order given; `None` for none.
    async fn last_entries(
        &self,
        heads: &[(ConversationId, u64)],
    ) -> StoreResult<Vec<Option<Message>>>;

    /// The conversation's state; `Ok(None)` if it does not exist.
    async fn conversation(&self, conv: &ConversationId) -> StoreResult<Option<ConversationState>>;

    /// Up to `limit` conversations of `user` that `listing` shows
    /// ([`Listing::shows`]), newest activity first (ties by id:
    /// [`ConversationState::sort_newest_first`]), after the position
    /// `after` (`(last_ts, conv)` of the previous page's last) when given.
    async fn conversations(
        &self,
        user: &UserId,
        listing: Listing,
        after: Option<&(Millis, ConversationId)>,
        limit: usize,
    ) -> StoreResult<Vec<ConversationState>>;

    /// Records that `device` of `user` has received `conv` up to `seq`, and
    /// raises the user's [`Receipt`] there: its `delivered` mark to `seq`,
    /// stamped `at`, in the same atomic step. Never moves a cursor or a mark
    /// backwards: a smaller `seq` is ignored. Returns the receipt when its
    /// mark rose (`None`: another device had it already), so that the
    /// caller tells the other members once.
    async fn set_cursor(
        &self,
        user: &UserId,
        device: &DeviceId,
        conv: &ConversationId,
        seq: u64,
        at: Millis,
    ) -> StoreResult<Option<Receipt>>;

    /// Every cursor of the device. Conversations it never acknowledged are absent (cursor 0).
    async fn cursors(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> StoreResult<HashMap<ConversationId, u64>>;

    /// Records that `user` has read `conv` up to `seq` (its read marker,
    /// which counts its unread messages), and raises its [`Receipt`] there
    /// in the same atomic step: `delivered` to `seq`, and `read` too when
    /// the user `share`s read receipts; stamped `at`. Nothing moves
    /// backwards. Returns the receipt when a mark of it rose.
    async fn mark_read(
        &self,
        user: &UserId,
        conv: &ConversationId,
        seq: u64,
        share: bool,
        at: Millis,
    ) -> StoreResult<Option<Receipt>>;

    /// The receipts of `conv` stamped at or after `since` (every one for
    /// `Millis::MIN`), ordered by user; one store round trip, whatever the
    /// number of messages they cover. Members that never acknowledged
    /// anything have none. At or after: a receipt stamped in the very
    /// millisecond an earlier answer was made is told again rather than
    /// lost (marks only rise, so twice is harmless).
    async fn receipts(&self, conv: &ConversationId, since: Millis) -> StoreResult<Vec<Receipt>>;

    /// For each conversation, how many messages others sent that `user`
    /// may read above its read marker (entries that
    /// [`stand alone`](NewMessage::stands_alone): not notices, edits,
    /// reactions or deletions), and how many of those mention `user`: from
    /// its joining (the `joined_seq` of its membership in the given state)
    /// to its leaving (`left_seq`), or to the stored head while it is a
    /// member. One store round trip or two for the whole list; in the
    /// order given; zero for a conversation the user never belonged to.
    async fn unread(&self, user: &UserId, convs: &[&ConversationState])
        -> StoreResult<Vec<Unread>>;
}
