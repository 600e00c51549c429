//! Contacts, blocks and privacy settings: the requests, and what the rules
//! of [`crate::contacts`] mean for the rest (direct conversations, presence,
//! the directory).

use crate::commands::conversations::edit_direct;
use crate::commands::requests;
use crate::contacts::{self as rules, Action, State};
use crate::error::CoreError;
use crate::model::{Audience, ConversationId, Presence, Privacy, UserId};
use crate::protocol::{ContactAction, ContactInfo, ContactList, ContactState, ServerFrame};
use crate::request::{page, Caller, Out};
use crate::server::Server;
use crate::store::{ContactView, Event, Relation, Topic, UserRecord, Written};

/// How many times a compare-and-swap is tried before giving up (each
/// retry means another change of the same pair landed in between).
pub(crate) const ATTEMPTS: usize = 8;

/// The other user's record, refusing oneself and unknown users.
async fn other(s: &Server, caller: &Caller, user: &UserId) -> Result<UserRecord, CoreError> {
    if *user == caller.user {
        return Err(CoreError::InvalidArgument {
            field: "user".into(),
            message: "that is you".into(),
        });
    }
    s.backends
        .users
        .get(user)
        .await?
        .ok_or_else(|| CoreError::NotFound("no such user".into()))
}

/// `contact`: ask, accept, decline, cancel, remove.
pub(crate) async fn contact(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    user: UserId,
    action: ContactAction,
) -> Result<ServerFrame, CoreError> {
    let record = other(s, caller, &user).await?;
    let action = match action {
        ContactAction::Request => {
            let key = format!("contact:{}", caller.user);
            if let Some(retry_after_ms) = s
                .backends
                .limiter
                .spend(&key, 1, s.config.contact_requests, s.now())
                .await?
            {
                return Err(CoreError::RateLimited { retry_after_ms });
            }
            Action::Request
        }
        ContactAction::Accept => Action::Accept,
        ContactAction::Decline => Action::Decline,
        ContactAction::Cancel => Action::Cancel,
        ContactAction::Remove => Action::Remove,
    };
    change(s, caller, out, id, &record, action).await
}

/// `block` and `unblock`.
pub(crate) async fn block(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    user: UserId,
    block: bool,
) -> Result<ServerFrame, CoreError> {
    let record = other(s, caller, &user).await?;
    let action = if block {
        Action::Block
    } else {
        Action::Unblock
    };
    change(s, caller, out, id, &record, action).await
}

/// Applies `action` to the caller's relation with `other` (compare and
/// swap, retried), then makes the rest follow: the direct conversation's
/// block, and each side's connections.
async fn change(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    other: &UserRecord,
    action: Action,
) -> Result<ServerFrame, CoreError> {
    let me = &caller.user;
    let store = &s.backends.contacts;
    let retry_after = i64::try_from(s.config.contact_retry_ms).unwrap_or(i64::MAX);
    let mut attempts = 0;
    let (before, after) = loop {
        attempts += 1;
        let before = store
            .relation(me, &other.id)
            .await?
            .unwrap_or_else(|| Relation::new(me, &other.id));
        let after = rules::apply(&before, me, action, s.now(), retry_after)?;
        // A new block reaches the conversation before it is recorded: a
        // failure in between leaves the conversation closed, never open.
        let adds_block = after
            .blocked
            .iter()
            .zip(&before.blocked)
            .any(|(now, then)| now.is_some() && then.is_none());
        if adds_block {
            sync_direct_block(s, &after).await?;
        }
        match store.change(&after).await? {
            Written::Done => break (before, after),
            Written::Stale if attempts < ATTEMPTS => continue,
            Written::Stale => {
                return Err(CoreError::Unavailable(
                    "the contact changed too often meanwhile; try again".into(),
                ))
            }
        }
    };
    // An unblock reaches the conversation after it is recorded (and a
    // block lost to a concurrent change is undone here).
    if before.blocked != after.blocked {
        sync_direct_block(s, &after).await?;
    }
    // Contacts accept each other's messages: a message request between
    // them is one no longer (after the relation, which shows presence
    // already: a failure in between leaves a request the user accepts).
    if after.are_contacts() && !before.are_contacts() {
        requests::settle_direct(s, &after).await?;
    }
    let me_record = s
        .backends
        .users
        .get(me)
        .await?
        .ok_or_else(|| CoreError::NotFound("no such user".into()))?;
    let mine = info(&after, me, other, None);
    publish(out, &before, &after, &me_record, other, caller, &mine);
    Ok(ServerFrame::Contact {
        id: Some(id),
        contact: Box::new(mine),
    })
}

/// Tells both users' connections: the caller's others get the new view,
/// the other user's get theirs if it changed; both refresh presence.
fn publish(
    out: &mut Out,
    before: &Relation,
    after: &Relation,
    me: &UserRecord,
    other: &UserRecord,
    caller: &Caller,
    mine: &ContactInfo,
) {
    let contacts = after.are_contacts();
    out.publish(
        Topic::User(me.id.clone()),
        Event::Relation {
            with: other.id.clone(),
            contacts,
            hidden: rules::facts(Some(after), &other.id).1,
            contact: Some(Box::new(mine.clone())),
            origin: Some(caller.conn.clone()),
        },
    );
    // The other side learns only what its own view shows: a block changes
    // nothing it sees, so nothing is pushed to it but the refresh.
    let theirs = (rules::view(before, &other.id) != rules::view(after, &other.id))
        .then(|| Box::new(info(after, &other.id, me, None)));
    out.publish(
        Topic::User(other.id.clone()),
        Event::Relation {
            with: me.id.clone(),
            contacts,
            hidden: rules::facts(Some(after), &me.id).1,
            contact: theirs,
            origin: None,
        },
    );
}

/// `user`'s view of `relation` with `other`, as the wire shows it.
pub(crate) fn info(
    relation: &Relation,
    user: &UserId,
    other: &UserRecord,
    presence: Option<Presence>,
) -> ContactInfo {
    let (state, blocked, since) = rules::view(relation, user);
    ContactInfo {
        profile: other.profile(),
        state: wire_state(state),
        blocked,
        since,
        presence,
    }
}

fn wire_state(state: State) -> ContactState {
    match state {
        State::None => ContactState::None,
        State::Incoming => ContactState::Incoming,
        State::Outgoing => ContactState::Outgoing,
        State::Contact => ContactState::Contact,
    }
}

/// Makes the direct conversation of the pair (if there is one) refuse or
/// take messages as the relation's blocks say.
async fn sync_direct_block(s: &Server, relation: &Relation) -> Result<(), CoreError> {
    let conv = ConversationId::direct(&relation.users[0], &relation.users[1]);
    let blocked: Vec<UserId> = relation
        .users
        .iter()
        .zip(&relation.blocked)
        .filter(|(_, at)| at.is_some())
        .map(|(u, _)| u.clone())
        .collect();
    edit_direct(s, &conv, |c| {
        let changes = c.blocked != blocked;
        c.blocked.clone_from(&blocked);
        Ok(changes)
    })
    .await?;
    Ok(())
}

/// `contacts`: a page of one of the caller's lists, with each user's card
/// and presence as the caller may see it.
pub(crate) async fn contacts(
    s: &Server,
    caller: &Caller,
    id: u32,
    list: ContactList,
    after: Option<String>,
    limit: Option<u32>,
) -> Result<ServerFrame, CoreError> {
    let limit = page(s, limit, 50);
    let view = match list {
        ContactList::Contacts => ContactView::Contacts,
        ContactList::Incoming => ContactView::Incoming,
        ContactList::Outgoing => ContactView::Outgoing,
        ContactList::Blocked => ContactView::Blocked,
    };
    let me = &caller.user;
    let mut relations = s
        .backends
        .contacts
        .list(me, view, after.as_deref(), limit + 1)
        .await?;
    let next = (relations.len() > limit).then(|| {
        relations.truncate(limit);
        relations.last().map(Relation::key)
    });
    let others: Vec<UserId> = relations.iter().map(|r| r.other(me).clone()).collect();
    let mut ids = others.clone();
    ids.push(me.clone());
    let records = s.backends.users.get_many(&ids).await?;
    let mine = records
        .iter()
        .find(|r| r.id == *me)
        .map_or_else(Privacy::default, |r| r.privacy);
    let presence = s.backends.presence.get(&others).await?;
    let contacts = relations
        .iter()
        .zip(presence)
        .filter_map(|(relation, presence)| {
            let other = records.iter().find(|r| r.id == presence.user)?;
            let shown = rules::as_seen(Some(relation), &mine, &other.privacy, presence);
            Some(info(relation, me, other, Some(shown)))
        })
        .collect();
    Ok(ServerFrame::Contacts {
        id,
        contacts,
        next: next.flatten(),
    })
}

/// `set_privacy`: merges the given settings into the caller's.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn set_privacy(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    direct: Option<Audience>,
    groups: Option<Audience>,
    presence: Option<Audience>,
    read_receipts: Option<bool>,
) -> Result<ServerFrame, CoreError> {
    for (field, value) in [("direct", direct), ("groups", groups)] {
        if value == Some(Audience::Nobody) {
            return Err(CoreError::InvalidArgument {
                field: field.into(),
                message: format!("{field} is everyone or contacts"),
            });
        }
    }
    let users = &s.backends.users;
    let current = users
        .get(&caller.user)
        .await?
        .ok_or_else(|| CoreError::NotFound("no such user".into()))?;
    let mut privacy = current.privacy;
    if let Some(direct) = direct {
        privacy.direct = direct;
    }
    if let Some(groups) = groups {
        privacy.groups = groups;
    }
    if let Some(presence) = presence {
        privacy.presence = presence;
    }
    if let Some(read_receipts) = read_receipts {
        privacy.read_receipts = read_receipts;
    }
    if privacy != current.privacy {
        users.set_privacy(&caller.user, &privacy).await?;
        for (topic, origin) in [
            (Topic::User(caller.user.clone()), Some(caller.conn.clone())),
            (Topic::Presence(caller.user.clone()), None),
        ] {
            out.publish(
                topic,
                Event::Privacy {
                    user: caller.user.clone(),
                    privacy,
                    origin,
                },
            );
        }
    }
    Ok(ServerFrame::Privacy {
        id: Some(id),
        privacy,
    })
}

/// May the caller start (or reopen) a direct conversation with `other`?
/// `exists`: the conversation is there already. The blocker may reopen it
/// to read (its sends are refused by the conversation's block); the user
/// blocked may not, and gets the refusal a privacy setting gives. The
/// pair's relation, if stored.
pub(crate) async fn check_direct(
    s: &Server,
    caller: &Caller,
    other: &UserRecord,
    exists: bool,
) -> Result<Option<Relation>, CoreError> {
    let relation = s
        .backends
        .contacts
        .relation(&caller.user, &other.id)
        .await?;
    if relation.as_ref().is_some_and(|r| r.blocks(&other.id)) {
        return Err(CoreError::Forbidden(rules::REFUSED.into()));
    }
    if relation.as_ref().is_some_and(|r| r.blocks(&caller.user)) {
        return if exists {
            Ok(relation)
        } else {
            Err(CoreError::Forbidden(
                "you block this user: unblock them first".into(),
            ))
        };
    }
    if !exists && !rules::may_open_direct(relation.as_ref(), &other.privacy) {
        return Err(CoreError::Forbidden(rules::REFUSED.into()));
    }
    Ok(relation)
}
