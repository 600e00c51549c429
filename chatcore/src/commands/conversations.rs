//! open_direct, create_group, get_conversation, the group changes,
//! invites, join, mute, and the conversation list.

use std::collections::HashMap;
use std::sync::Arc;

use crate::account::{normalize_avatar, normalize_text};
use crate::commands::account::{hash_token, new_token};
use crate::commands::{contacts, requests};
use crate::error::CoreError;
use crate::groups::{self, Action};
use crate::model::{Content, ConversationId, ConversationKind, Message, Millis, UserId};
use crate::protocol::{
    ConversationInfo, ConversationList, ConversationSummary, LastEntry, MemberInfo, RequestInfo,
    ServerFrame, SharedMessage,
};
use crate::request::{page, Caller, Out};
use crate::server::Server;
use crate::store::{
    Changed, ConversationState, Event, Listing, NewMessage, Pending, Relation, StoreError, Topic,
    UserRecord,
};

/// Attempts at a group change that keeps finding the group changed
/// meanwhile (by other changes, or by messages when it appends a notice).
const CHANGE_ATTEMPTS: usize = 32;

/// Characters of a text message the conversation list previews.
const PREVIEW_CHARS: usize = 100;

/// The conversation, if the caller is or was a member of it, or is invited
/// to it; `not_found` otherwise, the same for one that does not exist, so
/// that ids cannot be probed.
pub(crate) async fn visible(
    s: &Server,
    caller: &Caller,
    conv: &ConversationId,
) -> Result<ConversationState, CoreError> {
    s.backends
        .messages
        .conversation(conv)
        .await?
        .filter(|c| c.member(&caller.user).is_some() || c.pending_for(&caller.user).is_some())
        .ok_or_else(|| CoreError::NotFound("no such conversation".into()))
}

/// The conversation as the `conversation` reply shows it to `me`.
pub(crate) fn info(state: &ConversationState, me: &UserId) -> ConversationInfo {
    let group = state.kind == ConversationKind::Group;
    let mine = state.member(me).filter(|m| m.is_active());
    let (first_seq, last_seq) = state.readable(me).unwrap_or((1, 0));
    ConversationInfo {
        conv: state.conv.clone(),
        kind: state.kind,
        title: group.then(|| state.info.title.clone()),
        description: (group && !state.info.description.is_empty())
            .then(|| state.info.description.clone()),
        avatar: state.info.avatar.clone(),
        history_visible: state.info.history_visible,
        encrypted: state.encrypted,
        expire_after: state.expire_after,
        created_at: state.created_at,
        members: state
            .active()
            .map(|m| MemberInfo {
                user: m.user.clone(),
                role: m.role,
                joined_at: m.joined_at,
            })
            .collect(),
        role: mine.filter(|_| group).map(|m| m.role),
        last_seq,
        first_seq,
        invited: state
            .pending
            .iter()
            .filter(|_| group)
            .map(|p| p.user.clone())
            .collect(),
        request: None,
    }
}

/// Delivers a notice of `state` to every user it reaches, each with its
/// own mute, the asking connection included (its reply names the seq, the
/// push carries the notice like any other entry): the current members, and
/// a member the notice itself ended (a removal or leave is the last entry
/// its user receives).
pub(crate) fn publish_notice(
    out: &mut Out,
    state: &ConversationState,
    message: &Arc<Message>,
    now: Millis,
) {
    let shared = SharedMessage::new(message.clone());
    let reached = state
        .members
        .iter()
        .filter(|m| m.left_seq.is_none_or(|left| left == message.seq));
    for member in reached {
        out.publish(
            Topic::User(member.user.clone()),
            Event::Message {
                message: shared.clone(),
                muted: member.is_muted(now),
                origin: None,
            },
        );
    }
}

pub(crate) async fn open_direct(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    user: UserId,
    encrypted: bool,
) -> Result<ServerFrame, CoreError> {
    let mut state = direct_with(s, caller, out, &user, true).await?;
    if encrypted && !state.encrypted {
        state = match change(s, caller, out, &state.conv, true, Action::Encrypt).await {
            Ok((state, _)) => state,
            // Turned on meanwhile, by the other side or another device.
            Err(CoreError::Conflict { .. }) => visible(s, caller, &state.conv).await?,
            Err(e) => return Err(e),
        };
    }
    out.watch.push(user);
    Ok(ServerFrame::Conversation {
        id,
        conversation: Box::new(info(&state, &caller.user)),
    })
}

/// The direct conversation of the caller with `user`, opened if need be:
/// as a message request to `user` unless they are contacts. With `accept`
/// (`open_direct`), a caller who opens a conversation that is a request to
/// it accepts it: it chose to talk to the sender. A send never accepts
/// (it is refused until the request is accepted).
pub(crate) async fn direct_with(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    user: &UserId,
    accept: bool,
) -> Result<ConversationState, CoreError> {
    if *user == caller.user {
        return Err(CoreError::InvalidArgument {
            field: "user".into(),
            message: "a direct conversation is with someone else".into(),
        });
    }
    let other = s
        .backends
        .users
        .get(user)
        .await?
        .ok_or_else(|| CoreError::NotFound("no such user".into()))?;
    let conv = ConversationId::direct(&caller.user, user);
    let existing = s.backends.messages.conversation(&conv).await?;
    let relation = contacts::check_direct(s, caller, &other, existing.is_some()).await?;
    let me = &caller.user;
    let state = match existing {
        Some(state) => state,
        None => {
            let now = s.now();
            let mut state = ConversationState::direct(me, user, now);
            if !relation.as_ref().is_some_and(Relation::are_contacts) {
                state
                    .pending
                    .push(Pending::new(user.clone(), me.clone(), now));
                // The recipient's presence is hidden before the request exists.
                if let Some(r) = requests::mirror(s, &state).await? {
                    requests::refresh(out, &r, me, user);
                }
            }
            let stored = s.backends.messages.open_direct(state.clone()).await?;
            if stored.pending != state.pending {
                // Opened meanwhile by the other side, with its own request.
                if let Some(r) = requests::mirror(s, &stored).await? {
                    requests::refresh(out, &r, me, user);
                    requests::refresh(out, &r, user, me);
                }
            }
            stored
        }
    };
    if accept && state.pending_for(me).is_some() {
        return requests::accept_direct(s, out, me, &state.conv).await;
    }
    Ok(state)
}

/// Splits `users` (whose records are `records`) that the caller adds to a
/// group into those it may add and those it invites (their settings admit
/// only their contacts' adds, and the caller is not one). Refuses the
/// whole add when a block stands between the caller and any of them: the
/// same refusal as any other.
async fn check_adds(
    s: &Server,
    caller: &Caller,
    users: Vec<UserId>,
    records: &[UserRecord],
) -> Result<(Vec<UserId>, Vec<UserId>), CoreError> {
    let relations = s.backends.contacts.relations(&caller.user, &users).await?;
    if relations.iter().any(|r| r.any_block()) {
        return Err(CoreError::Forbidden(crate::contacts::REFUSED.into()));
    }
    Ok(users.into_iter().partition(|u| {
        let contact = relations
            .iter()
            .any(|r| r.side(u).is_some() && r.are_contacts());
        records
            .iter()
            .find(|r| r.id == *u)
            .is_none_or(|r| r.privacy.groups.admits(contact))
    }))
}

/// A group's title: the rules of display names, 1 to 100 characters.
fn title(raw: &str) -> Result<String, CoreError> {
    normalize_text("title", raw, 1, 100)
}

/// A group's description: 0 to 1,000 characters.
fn description(raw: &str) -> Result<String, CoreError> {
    normalize_text("description", raw, 0, 1000)
}

#[allow(clippy::too_many_arguments)]
/// The fields of `create_group`.
pub(crate) struct NewGroup {
    pub(crate) title: String,
    pub(crate) description: Option<String>,
    pub(crate) avatar: Option<String>,
    pub(crate) members: Vec<UserId>,
    pub(crate) encrypted: bool,
}

pub(crate) async fn create_group(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    group: NewGroup,
) -> Result<ServerFrame, CoreError> {
    let NewGroup {
        title: raw_title,
        description: raw_description,
        avatar: raw_avatar,
        members,
        encrypted,
    } = group;
    let title = title(&raw_title)?;
    let description = description(raw_description.as_deref().unwrap_or(""))?;
    let avatar = normalize_avatar(raw_avatar.as_deref().unwrap_or(""))?;
    super::check_picture(s, &caller.user, avatar.as_deref()).await?;
    let mut others: Vec<UserId> = Vec::with_capacity(members.len());
    for m in members {
        if m != caller.user && !others.contains(&m) {
            others.push(m);
        }
    }
    if others.len() + 1 > s.config.max_group_members {
        return Err(CoreError::LimitReached(format!(
            "a group has at most {} members",
            s.config.max_group_members
        )));
    }
    let mut ids = others.clone();
    ids.push(caller.user.clone());
    let found = s.backends.users.get_many(&ids).await?;
    if found.len() != ids.len() {
        return Err(CoreError::InvalidArgument {
            field: "members".into(),
            message: "no such user among the members".into(),
        });
    }
    let (others, invited) = check_adds(s, caller, others, &found).await?;
    let now = s.now();
    let mut state = ConversationState::group(
        &caller.user,
        &others,
        groups::info(title.clone(), description, avatar),
        now,
    );
    state.pending = invited
        .iter()
        .map(|u| Pending::new(u.clone(), caller.user.clone(), now))
        .collect();
    state.encrypted = encrypted;
    let created = NewMessage::notice(
        state.conv.clone(),
        caller.user.clone(),
        now,
        Content::GroupCreated {
            title,
            members: others,
        },
    );
    let message = s
        .backends
        .messages
        .create_group(state.clone(), created)
        .await?;
    state.last_seq = message.seq;
    publish_notice(out, &state, &message, now);
    if let Some(me) = found.iter().find(|u| u.id == caller.user) {
        requests::publish_invited(out, &state, &invited, me);
    }
    Ok(ServerFrame::Conversation {
        id,
        conversation: Box::new(info(&state, &caller.user)),
    })
}

pub(crate) async fn get_conversation(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
) -> Result<ServerFrame, CoreError> {
    let state = visible(s, caller, &conv).await?;
    if let Some(peer) = state.peer_of(&caller.user) {
        out.watch.push(peer.clone());
    }
    let mut conversation = info(&state, &caller.user);
    conversation.request = requests::request_info(s, &state, &caller.user).await?;
    Ok(ServerFrame::Conversation {
        id,
        conversation: Box::new(conversation),
    })
}

/// A group change the caller asks for, from the request's raw fields.
pub(crate) enum Request {
    Update {
        title: Option<String>,
        description: Option<String>,
        avatar: Option<String>,
        history_visible: Option<bool>,
    },
    Add(Vec<UserId>),
    Remove(UserId),
    Leave,
    SetRole(UserId, crate::model::Role),
}

pub(crate) async fn change_group(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
    request: Request,
) -> Result<ServerFrame, CoreError> {
    let mut adds = None;
    let action = match request {
        Request::Update {
            title: t,
            description: d,
            avatar: a,
            history_visible,
        } => {
            let avatar = a.as_deref().map(normalize_avatar).transpose()?;
            super::check_picture(s, &caller.user, avatar.as_ref().and_then(|a| a.as_deref()))
                .await?;
            Action::Update {
                title: t.as_deref().map(title).transpose()?,
                description: d.as_deref().map(description).transpose()?,
                avatar,
                history_visible,
            }
        }
        Request::Add(users) => {
            if users.is_empty() || users.len() > s.config.max_group_members {
                return Err(CoreError::InvalidArgument {
                    field: "users".into(),
                    message: format!("name 1 to {} users to add", s.config.max_group_members),
                });
            }
            let mut ids = users.clone();
            ids.push(caller.user.clone());
            let found = s.backends.users.get_many(&ids).await?;
            if found.len() != dedup_count(&ids) {
                return Err(CoreError::InvalidArgument {
                    field: "users".into(),
                    message: "no such user among the users".into(),
                });
            }
            let (users, invite) = check_adds(s, caller, users, &found).await?;
            adds = Some((invite.clone(), found));
            Action::Add { users, invite }
        }
        Request::Remove(user) => Action::Remove(user),
        Request::Leave => Action::Leave,
        Request::SetRole(user, role) => Action::SetRole(user, role),
    };
    let (before, state, seq) = change_from(s, caller, out, &conv, true, action).await?;
    let mut invited = Vec::new();
    if let Some((invite, found)) = adds {
        // Those invited by this change (not those invited before).
        invited = invite
            .into_iter()
            .filter(|u| state.pending_for(u).is_some() && before.pending_for(u).is_none())
            .collect();
        if let Some(me) = found.iter().find(|u| u.id == caller.user) {
            requests::publish_invited(out, &state, &invited, me);
        }
    }
    Ok(ServerFrame::Changed {
        id,
        conv,
        seq: seq.unwrap_or(0),
        invited,
    })
}

/// `set_timer`: sets the disappearing-message timer.
pub(crate) async fn set_timer(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
    expire_after: Option<Millis>,
) -> Result<ServerFrame, CoreError> {
    let action = Action::SetTimer(expire_after);
    settle(s, caller, out, id, conv, action, "expire_after").await
}

/// `encrypt`: turns end-to-end encryption on, once and for good.
pub(crate) async fn encrypt(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
) -> Result<ServerFrame, CoreError> {
    settle(s, caller, out, id, conv, Action::Encrypt, "encrypted").await
}

/// Applies a setting `action` whose [`groups::apply`] answers a conflict on
/// `field` when the setting is so already: then there is nothing to do, as
/// asked, and the reply is `changed` with seq 0.
async fn settle(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
    action: Action,
    field: &str,
) -> Result<ServerFrame, CoreError> {
    let seq = match change(s, caller, out, &conv, true, action).await {
        Ok((_, seq)) => seq,
        Err(CoreError::Conflict { field: f }) if f == field => None,
        Err(e) => return Err(e),
    };
    Ok(ServerFrame::Changed {
        id,
        conv,
        seq: seq.unwrap_or(0),
        invited: Vec::new(),
    })
}

fn dedup_count(users: &[UserId]) -> usize {
    let mut seen: Vec<&UserId> = users.iter().collect();
    seen.sort();
    seen.dedup();
    seen.len()
}

/// Applies `action` by the caller to `conv`, retrying while the group
/// changes meanwhile, and delivers its notice: the stored state and the
/// notice's seq. `member`: the caller must be or have been a member (all
/// but joining and answering an invitation).
pub(crate) async fn change(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    conv: &ConversationId,
    member: bool,
    action: Action,
) -> Result<(ConversationState, Option<u64>), CoreError> {
    let (_, state, seq) = change_from(s, caller, out, conv, member, action).await?;
    Ok((state, seq))
}

/// [`change`], with the state the change was applied to.
async fn change_from(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    conv: &ConversationId,
    member: bool,
    action: Action,
) -> Result<(ConversationState, ConversationState, Option<u64>), CoreError> {
    let store = &s.backends.messages;
    for _ in 0..CHANGE_ATTEMPTS {
        let state = if member {
            visible(s, caller, conv).await?
        } else {
            store
                .conversation(conv)
                .await?
                .ok_or_else(|| CoreError::NotFound("no such conversation".into()))?
        };
        let now = s.now();
        let (next, notice) = groups::apply(
            &state,
            &caller.user,
            action.clone(),
            now,
            s.config.max_group_members,
        )?;
        let notice = notice.map(|c| NewMessage::notice(conv.clone(), caller.user.clone(), now, c));
        match store.change(&next, notice).await? {
            Changed::Stale => continue,
            Changed::Done(message) => {
                let seq = message.as_ref().map(|m| m.seq);
                if let Some(m) = &message {
                    publish_notice(out, &next, m, now);
                }
                return Ok((state, next, seq));
            }
        }
    }
    Err(CoreError::Unavailable(
        "the group kept changing; try again".into(),
    ))
}

pub(crate) async fn create_invite(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
) -> Result<ServerFrame, CoreError> {
    let (token, hash) = new_token();
    change(s, caller, out, &conv, true, Action::SetInvite(Some(hash))).await?;
    Ok(ServerFrame::Invite { id, conv, token })
}

pub(crate) async fn revoke_invite(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
) -> Result<ServerFrame, CoreError> {
    change(s, caller, out, &conv, true, Action::SetInvite(None)).await?;
    Ok(ServerFrame::Ok { id })
}

pub(crate) async fn join(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    token: String,
) -> Result<ServerFrame, CoreError> {
    let key = format!("join:{}", caller.user);
    if let Some(retry_after_ms) = s
        .backends
        .limiter
        .spend(&key, 1, s.config.join_attempts, s.now())
        .await?
    {
        return Err(CoreError::RateLimited { retry_after_ms });
    }
    // Unknown, revoked and replaced tokens get the same answer.
    let invalid = || CoreError::NotFound("this invite link is not valid".into());
    let found = s
        .backends
        .messages
        .by_invite(&hash_token(&token))
        .await?
        .ok_or_else(invalid)?;
    let state = if found.has_member(&caller.user) {
        found
    } else {
        let conv = found.conv.clone();
        change(s, caller, out, &conv, false, Action::Join)
            .await
            .map_err(|e| match e {
                // Revoked between the look-up and the join.
                CoreError::Forbidden(_) => invalid(),
                e => e,
            })?
            .0
    };
    Ok(ServerFrame::Conversation {
        id,
        conversation: Box::new(info(&state, &caller.user)),
    })
}

pub(crate) async fn mute(
    s: &Server,
    caller: &Caller,
    id: u32,
    conv: ConversationId,
    until: Option<Option<Millis>>,
) -> Result<ServerFrame, CoreError> {
    let until = match until {
        None => None,
        Some(None) => Some(Millis::MAX),
        Some(Some(t)) if t <= s.now() => {
            return Err(CoreError::InvalidArgument {
                field: "until".into(),
                message: "until is in the past".into(),
            })
        }
        Some(Some(t)) => Some(t),
    };
    visible(s, caller, &conv).await?;
    s.backends
        .messages
        .set_muted(&caller.user, &conv, until)
        .await?;
    Ok(ServerFrame::Ok { id })
}

/// Changes the direct conversation `conv` with `edit` (which says whether
/// there is anything to change), compare-and-swap, retried over concurrent
/// changes: the conversation as stored in the end, `None` if there is none.
pub(crate) async fn edit_direct(
    s: &Server,
    conv: &ConversationId,
    mut edit: impl FnMut(&mut ConversationState) -> Result<bool, CoreError>,
) -> Result<Option<ConversationState>, CoreError> {
    let store = &s.backends.messages;
    for _ in 0..CHANGE_ATTEMPTS {
        let Some(state) = store.conversation(conv).await? else {
            return Ok(None);
        };
        let mut next = state.clone();
        if !edit(&mut next)? {
            return Ok(Some(state));
        }
        next.version = state.version + 1;
        match store.change(&next, None).await {
            Ok(Changed::Done(_)) => return Ok(Some(next)),
            Ok(Changed::Stale) => continue,
            Err(StoreError::NotFound) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
    Err(CoreError::Unavailable(
        "the conversation changed too often meanwhile; try again".into(),
    ))
}

/// A page position of the conversation list as a cursor string.
fn cursor(state: &ConversationState) -> String {
    format!("{}:{}", state.last_ts, state.conv)
}

fn parse_cursor(raw: &str) -> Result<(Millis, ConversationId), CoreError> {
    raw.split_once(':')
        .and_then(|(ts, conv)| Some((ts.parse().ok()?, ConversationId::from(conv))))
        .ok_or_else(|| CoreError::InvalidArgument {
            field: "after".into(),
            message: "after is the next of an earlier page".into(),
        })
}

/// The preview of a text: its first characters.
fn preview(m: &Message) -> Option<String> {
    match &m.content {
        Content::Text { text } => Some(text.chars().take(PREVIEW_CHARS).collect()),
        _ => None,
    }
}

pub(crate) async fn conversations(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    list: Option<ConversationList>,
    after: Option<String>,
    limit: Option<u32>,
) -> Result<ServerFrame, CoreError> {
    let me = &caller.user;
    let store = &s.backends.messages;
    let after = after.as_deref().map(parse_cursor).transpose()?;
    let limit = page(s, limit, 50);
    let listing = match list {
        None | Some(ConversationList::Main) => Listing::Main,
        Some(ConversationList::Requests) => Listing::Requests,
    };
    // Four round trips a page, whatever its length: the page, the peers'
    // (and askers') profiles, the last entries, the unread counts.
    // One more than the page: whether a next page exists.
    let mut states = store
        .conversations(me, listing, after.as_ref(), limit + 1)
        .await?;
    let more = states.len() > limit;
    states.truncate(limit);
    let peers: Vec<UserId> = states
        .iter()
        .filter_map(|c| c.peer_of(me).cloned())
        .chain(
            states
                .iter()
                .filter_map(|c| c.pending_for(me).map(|p| p.by.clone())),
        )
        .collect();
    let profiles: HashMap<UserId, _> = s
        .backends
        .users
        .get_many(&peers)
        .await?
        .into_iter()
        .map(|u| (u.id.clone(), u.profile()))
        .collect();
    let heads: Vec<(ConversationId, u64)> = states
        .iter()
        .map(|c| (c.conv.clone(), c.readable(me).map_or(0, |r| r.1)))
        .collect();
    let lasts = store.last_entries(&heads).await?;
    let refs: Vec<&ConversationState> = states.iter().collect();
    let unread = store.unread(me, &refs).await?;
    let now = s.now();
    let next = more.then(|| states.last().map(cursor)).flatten();
    let mut list = Vec::with_capacity(states.len());
    for ((c, last), unread) in states.iter().zip(lasts).zip(unread) {
        let peer = c.peer_of(me).cloned();
        if let Some(p) = &peer {
            out.watch.push(p.clone());
        }
        let mine = c.member(me);
        let group = c.kind == ConversationKind::Group;
        let muted_until = mine.and_then(|m| m.muted_until).filter(|&t| t > now);
        list.push(ConversationSummary {
            conv: c.conv.clone(),
            kind: c.kind,
            title: group.then(|| c.info.title.clone()),
            avatar: c.info.avatar.clone(),
            peer: peer.and_then(|p| profiles.get(&p).cloned()),
            members: u32::try_from(c.member_count()).unwrap_or(u32::MAX),
            role: mine.filter(|m| group && m.is_active()).map(|m| m.role),
            left: mine.is_some_and(|m| !m.is_active()),
            last_seq: c.readable(me).map_or(0, |r| r.1),
            unread: unread.messages,
            mentions: unread.mentions,
            expire_after: c.expire_after,
            last: last.map(|m| LastEntry {
                seq: m.seq,
                ts: m.ts,
                from: m.from.clone(),
                kind: m.content.kind().to_owned(),
                rel: m.rel_kind(),
                preview: preview(&m),
            }),
            encrypted: c.encrypted,
            muted: muted_until.is_some(),
            muted_until: muted_until.filter(|&t| t != Millis::MAX),
            request: c.pending_for(me).and_then(|p| {
                Some(RequestInfo {
                    by: profiles.get(&p.by)?.clone(),
                    at: p.at,
                })
            }),
        });
    }
    Ok(ServerFrame::Conversations {
        id,
        conversations: list,
        next,
    })
}
