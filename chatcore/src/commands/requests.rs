//! What waits for a user's answer: message requests (a direct conversation
//! started by someone who is not the user's contact) and group invitations
//! (an add by someone the user's settings do not accept adds from), and
//! reports of users to the operator.
//!
//! Both live in the conversation's [`ConversationState::pending`]. A
//! message request is mirrored in the pair's relation
//! ([`Relation::unaccepted`]), which is what every place that shows
//! presence reads: the sender does not see the recipient's presence until
//! the request is accepted. The mirror is written before the conversation
//! when a request starts and after it when one ends, so that a failure in
//! between hides presence a moment too long, never shows it too early.

use crate::commands::contacts::ATTEMPTS;
use crate::commands::conversations::{self, edit_direct, info};
use crate::contacts as rules;
use crate::error::CoreError;
use crate::groups::Action;
use crate::model::{ConversationId, ConversationKind, UserId};
use crate::protocol::{ConversationSummary, RequestInfo, ServerFrame};
use crate::request::{Caller, Out};
use crate::server::Server;
use crate::store::{ConversationState, Event, Relation, Report, Topic, Written};

/// Characters a report's reason may have.
const REASON_CHARS: usize = 500;

fn no_request() -> CoreError {
    CoreError::NotFound("no such request".into())
}

/// `accept` and `decline`: the caller answers what waits for it in `conv`.
pub(crate) async fn answer(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
    accept: bool,
) -> Result<ServerFrame, CoreError> {
    let me = &caller.user;
    // Unknown conversations and those with nothing for the caller get the
    // same answer.
    let state = s
        .backends
        .messages
        .conversation(&conv)
        .await?
        .filter(|c| c.pending_for(me).is_some())
        .ok_or_else(no_request)?;
    let state = match (state.kind, accept) {
        (ConversationKind::Direct, true) => accept_direct(s, out, me, &conv).await?,
        (ConversationKind::Direct, false) => delete_direct(s, me, &conv).await?,
        (_, accepted) => {
            let action = if accepted {
                Action::Accept
            } else {
                Action::Decline
            };
            conversations::change(s, caller, out, &conv, false, action)
                .await
                .map_err(|e| match e {
                    // The conversation is not one the caller may name.
                    CoreError::Forbidden(_) => no_request(),
                    e => e,
                })?
                .0
        }
    };
    out.publish(
        Topic::User(me.clone()),
        Event::Answered {
            conv: conv.clone(),
            accepted: accept,
            origin: caller.conn.clone(),
        },
    );
    if !accept {
        return Ok(ServerFrame::Ok { id });
    }
    if let Some(peer) = state.peer_of(me) {
        out.watch.push(peer.clone());
    }
    Ok(ServerFrame::Conversation {
        id,
        conversation: Box::new(info(&state, me)),
    })
}

/// Accepts the message request the conversation `conv` is for `me`: the
/// stored conversation, accepted. The sender's connections are told, so
/// that they show `me`'s presence again.
pub(crate) async fn accept_direct(
    s: &Server,
    out: &mut Out,
    me: &UserId,
    conv: &ConversationId,
) -> Result<ConversationState, CoreError> {
    let state = edit_direct(s, conv, |c| {
        let waits = c.pending_for(me).is_some();
        c.pending.retain(|p| p.user != *me);
        Ok(waits)
    })
    .await?
    .ok_or_else(no_request)?;
    let relation = mirror(s, &state).await?;
    if let (Some(peer), Some(relation)) = (state.peer_of(me), relation) {
        refresh(out, &relation, peer, me);
    }
    Ok(state)
}

/// Tells the connections of `viewer` what they may now see of `subject`
/// (after a request to `subject` began or ended).
pub(crate) fn refresh(out: &mut Out, relation: &Relation, viewer: &UserId, subject: &UserId) {
    let (contacts, hidden) = rules::facts(Some(relation), subject);
    out.publish(
        Topic::User(viewer.clone()),
        Event::Relation {
            with: subject.clone(),
            contacts,
            hidden,
            contact: None,
            origin: None,
        },
    );
}

/// Deletes the message request `conv` is for `me`: what it holds so far
/// is no longer `me`'s to read, and it leaves the requests list. It stays
/// a request: a later message from the sender shows it again, alone. The
/// sender is not told.
async fn delete_direct(
    s: &Server,
    me: &UserId,
    conv: &ConversationId,
) -> Result<ConversationState, CoreError> {
    edit_direct(s, conv, |c| {
        if c.pending_for(me).is_none() {
            return Err(no_request());
        }
        let from = c.last_seq + 1;
        if let Some(m) = c.members.iter_mut().find(|m| m.user == *me) {
            m.joined_seq = from;
        }
        Ok(true)
    })
    .await?
    .ok_or_else(no_request)
}

/// Makes the pair's relation mirror the message requests of the direct
/// conversation `state` (stored or about to be): the relation as stored
/// now, or `None` for a group.
pub(crate) async fn mirror(
    s: &Server,
    state: &ConversationState,
) -> Result<Option<Relation>, CoreError> {
    let [a, b] = match state.members.as_slice() {
        [a, b] if state.kind == ConversationKind::Direct => [&a.user, &b.user],
        _ => return Ok(None),
    };
    let store = &s.backends.contacts;
    for _ in 0..ATTEMPTS {
        let relation = store
            .relation(a, b)
            .await?
            .unwrap_or_else(|| Relation::new(a, b));
        let want = relation
            .users
            .clone()
            .map(|u| state.pending_for(&u).is_some());
        if relation.unaccepted == want {
            return Ok(Some(relation));
        }
        let mut next = relation;
        next.version += 1;
        next.unaccepted = want;
        if store.change(&next).await? == Written::Done {
            return Ok(Some(next));
        }
    }
    Err(CoreError::Unavailable(
        "the contact changed too often meanwhile; try again".into(),
    ))
}

/// The pair of `relation` became contacts: their direct conversation's
/// message request, if any, is accepted.
pub(crate) async fn settle_direct(s: &Server, relation: &Relation) -> Result<(), CoreError> {
    let conv = ConversationId::direct(&relation.users[0], &relation.users[1]);
    edit_direct(s, &conv, |c| {
        let waits = !c.pending.is_empty();
        c.pending.clear();
        Ok(waits)
    })
    .await?;
    Ok(())
}

/// What waits for `me` in `state`, with the profile of who asked.
pub(crate) async fn request_info(
    s: &Server,
    state: &ConversationState,
    me: &UserId,
) -> Result<Option<RequestInfo>, CoreError> {
    let Some(pending) = state.pending_for(me) else {
        return Ok(None);
    };
    Ok(s.backends
        .users
        .get(&pending.by)
        .await?
        .map(|u| RequestInfo {
            by: u.profile(),
            at: pending.at,
        }))
}

/// Tells each user newly invited to the group `state` (by the caller,
/// whose record is `by`): an `invited` push with the group as the
/// requests list shows it.
pub(crate) fn publish_invited(
    out: &mut Out,
    state: &ConversationState,
    invited: &[UserId],
    by: &crate::store::UserRecord,
) {
    for user in invited {
        let Some(pending) = state.pending_for(user) else {
            continue;
        };
        let summary = ConversationSummary {
            conv: state.conv.clone(),
            kind: state.kind,
            title: Some(state.info.title.clone()),
            avatar: state.info.avatar.clone(),
            peer: None,
            members: u32::try_from(state.member_count()).unwrap_or(u32::MAX),
            role: None,
            left: false,
            last_seq: 0,
            unread: 0,
            mentions: 0,
            expire_after: state.expire_after,
            last: None,
            encrypted: state.encrypted,
            muted: false,
            muted_until: None,
            request: Some(RequestInfo {
                by: by.profile(),
                at: pending.at,
            }),
        };
        out.publish(Topic::User(user.clone()), Event::Invited(Box::new(summary)));
    }
}

/// `report`: stores the caller's report of `user` for the operator. One
/// per reporter and user (a repeat replaces it), within the caller's
/// contact-request budget.
pub(crate) async fn report(
    s: &Server,
    caller: &Caller,
    id: u32,
    user: UserId,
    conv: Option<ConversationId>,
    reason: Option<String>,
) -> Result<ServerFrame, CoreError> {
    if user == caller.user {
        return Err(CoreError::InvalidArgument {
            field: "user".into(),
            message: "that is you".into(),
        });
    }
    let reason =
        crate::account::normalize_text("reason", reason.as_deref().unwrap_or(""), 0, REASON_CHARS)?;
    if s.backends.users.get(&user).await?.is_none() {
        return Err(CoreError::NotFound("no such user".into()));
    }
    if let Some(c) = &conv {
        // Only a conversation the caller is or was in, with the user in it.
        let state = conversations::visible(s, caller, c).await?;
        if state.member(&user).is_none() && state.pending_for(&user).is_none() {
            return Err(CoreError::InvalidArgument {
                field: "conv".into(),
                message: "the user is not in this conversation".into(),
            });
        }
    }
    let now = s.now();
    let key = format!("report:{}", caller.user);
    if let Some(retry_after_ms) = s
        .backends
        .limiter
        .spend(&key, 1, s.config.contact_requests, now)
        .await?
    {
        return Err(CoreError::RateLimited { retry_after_ms });
    }
    s.backends
        .reports
        .file(&Report::new(caller.user.clone(), user, conv, reason, now))
        .await?;
    Ok(ServerFrame::Ok { id })
}
