//! send, history, sync, ack, read, focus, conversations.

use crate::error::CoreError;
use crate::model::{Content, ConversationId, UserId};
use crate::protocol::{ConversationSummary, ServerFrame};
use crate::request::{page, Caller, Out};
use crate::server::Server;
use crate::store::{ConversationState, Event, NewMessage, Topic};

/// The conversation's state if it exists and the caller is a member of it;
/// `not_found` otherwise. Unknown and foreign conversations get the same
/// answer, so ids cannot be probed, and nothing about a conversation that
/// does not exist is stored or watched. The connection watches the peer's
/// presence.
async fn member_of(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    conv: &ConversationId,
) -> Result<ConversationState, CoreError> {
    let state = s
        .backends
        .messages
        .conversation(conv)
        .await?
        .filter(|c| c.has_member(&caller.user))
        .ok_or_else(|| CoreError::NotFound("no such conversation".into()))?;
    if let Some(peer) = state.peer_of(&caller.user) {
        out.watch.push(peer.clone());
    }
    Ok(state)
}

/// Spends the sender's budget for a message of `bytes` (across all of the
/// user's connections and nodes); `rate_limited` past it.
async fn spend_send_budget(s: &Server, caller: &Caller, bytes: usize) -> Result<(), CoreError> {
    let cfg = &s.config;
    let cost = u64::try_from(bytes)
        .unwrap_or(u64::MAX)
        .max(cfg.send_min_cost);
    match s
        .backends
        .limiter
        .spend(&caller.send_budget_key, cost, cfg.send_budget, s.now())
        .await?
    {
        Some(retry_after_ms) => Err(CoreError::RateLimited { retry_after_ms }),
        None => Ok(()),
    }
}

/// `known_peer`: the connection has sent to `to` before, so the user exists
/// and is watched already.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn send(
    s: &Server,
    caller: &Caller,
    known_peer: bool,
    out: &mut Out,
    id: u32,
    to: UserId,
    client_id: String,
    content: Content,
) -> Result<ServerFrame, CoreError> {
    let me = &caller.user;
    if client_id.trim().is_empty() {
        return Err(CoreError::InvalidArgument {
            field: "client_id".into(),
            message: "client_id must not be empty".into(),
        });
    }
    let bytes = match &content {
        Content::Text { text } if text.trim().is_empty() => {
            return Err(CoreError::InvalidArgument {
                field: "text".into(),
                message: "a message needs some text".into(),
            })
        }
        Content::Text { text } => text.len(),
    };
    if to == *me {
        return Err(CoreError::InvalidArgument {
            field: "to".into(),
            message: "cannot send a message to yourself".into(),
        });
    }
    if !known_peer && s.backends.users.get(&to).await?.is_none() {
        return Err(CoreError::NotFound("no such user".into()));
    }
    spend_send_budget(s, caller, bytes).await?;
    let conv = ConversationId::direct(me, &to);
    let msg = NewMessage::new(
        conv.clone(),
        vec![me.clone(), to.clone()],
        me.clone(),
        client_id,
        s.now(),
        content,
    );
    let appended = s.backends.messages.append(msg).await?;
    let m = appended.message;
    if m.from != *me || m.conv != conv {
        // The client reused one of its client ids for a different message.
        return Err(CoreError::Conflict {
            field: "client_id".into(),
        });
    }
    if !known_peer {
        out.watch.push(to.clone());
    }
    if !appended.duplicate {
        s.metrics
            .messages_stored
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let unread = s.backends.messages.unread(&to, &conv).await.unwrap_or(0);
        let to_peer = Event::Message {
            message: m.clone(),
            unread,
            origin: None,
        };
        let to_self = Event::Message {
            message: m.clone(),
            unread: 0,
            origin: Some(caller.conn.clone()),
        };
        out.publish(Topic::User(to), to_peer);
        out.publish(Topic::User(me.clone()), to_self);
    }
    Ok(ServerFrame::Sent {
        id,
        message_id: m.id.clone(),
        conv,
        seq: m.seq,
        ts: m.ts,
        duplicate: appended.duplicate,
    })
}

pub(crate) async fn history(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
    before: Option<u64>,
    limit: Option<u32>,
) -> Result<ServerFrame, CoreError> {
    member_of(s, caller, out, &conv).await?;
    let limit = page(s, limit, 50);
    let messages = s.backends.messages.history(&conv, before, limit).await?;
    let more = messages.first().is_some_and(|m| m.seq > 1);
    Ok(ServerFrame::Messages {
        id,
        conv,
        messages,
        more,
    })
}

pub(crate) async fn sync(
    s: &Server,
    caller: &Caller,
    id: u32,
    limit: Option<u32>,
) -> Result<ServerFrame, CoreError> {
    let limit = page(s, limit, 100);
    let store = &s.backends.messages;
    let cursors = store.cursors(&caller.user, &caller.device).await?;
    let mut convs = store.conversations(&caller.user).await?;
    // Oldest activity first, so a paged sync delivers in roughly the order sent.
    convs.reverse();
    let mut messages = Vec::new();
    let mut more = false;
    for c in convs {
        let after = cursors.get(&c.conv).copied().unwrap_or(0);
        if c.last_seq <= after {
            continue;
        }
        let room = limit - messages.len();
        if room == 0 {
            more = true;
            break;
        }
        let batch = store.read_after(&c.conv, after, room).await?;
        if batch.last().is_some_and(|m| m.seq < c.last_seq) {
            more = true;
        }
        messages.extend(batch);
    }
    Ok(ServerFrame::Synced { id, messages, more })
}

/// Validates that `seq` exists in `conv`: a cursor or read marker beyond
/// the head would silently swallow future messages.
async fn checked_seq(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    conv: &ConversationId,
    seq: u64,
) -> Result<(), CoreError> {
    let last = member_of(s, caller, out, conv).await?.last_seq;
    if seq > last {
        return Err(CoreError::InvalidArgument {
            field: "seq".into(),
            message: format!("seq {seq} is beyond the conversation's last message ({last})"),
        });
    }
    Ok(())
}

pub(crate) async fn ack(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
    seq: u64,
) -> Result<ServerFrame, CoreError> {
    checked_seq(s, caller, out, &conv, seq).await?;
    s.backends
        .messages
        .set_cursor(&caller.user, &caller.device, &conv, seq)
        .await?;
    Ok(ServerFrame::Ok { id })
}

pub(crate) async fn read(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
    seq: u64,
) -> Result<ServerFrame, CoreError> {
    checked_seq(s, caller, out, &conv, seq).await?;
    s.backends
        .messages
        .mark_read(&caller.user, &conv, seq)
        .await?;
    Ok(ServerFrame::Ok { id })
}

pub(crate) fn focus(
    out: &mut Out,
    id: u32,
    conv: Option<ConversationId>,
) -> Result<ServerFrame, CoreError> {
    // Any id may be focused, and nothing is looked up or stored: a focus
    // only spares this device alerts for messages it receives anyway, and
    // a conversation not opened yet (a first message is being written)
    // must be focusable.
    out.focus = Some(conv);
    Ok(ServerFrame::Ok { id })
}

pub(crate) async fn conversations(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
) -> Result<ServerFrame, CoreError> {
    let me = &caller.user;
    let store = &s.backends.messages;
    let states = store.conversations(me).await?;
    let mut list = Vec::with_capacity(states.len().min(s.config.max_page));
    for c in states.into_iter().take(s.config.max_page) {
        let peer = c.peer_of(me).cloned();
        if let Some(p) = &peer {
            out.watch.push(p.clone());
        }
        list.push(ConversationSummary {
            unread: store.unread(me, &c.conv).await?,
            last: store.history(&c.conv, None, 1).await?.pop(),
            last_seq: c.last_seq,
            peer,
            conv: c.conv,
        });
    }
    Ok(ServerFrame::Conversations {
        id,
        conversations: list,
    })
}
