//! send, history, sync, ack, read, receipts, typing, focus.

use std::sync::Arc;

use crate::commands::conversations::{direct_with, visible};
use crate::error::CoreError;
use crate::model::{
    Content, ConversationId, ConversationKind, MediaId, Message, Millis, Receipt, Rel, RelKind,
    Role, UserId, MAX_REACTIONS,
};
use crate::protocol::{ReceiptInfo, ServerFrame, SharedMessage};
use crate::request::{page, Caller, Out, TypingSent};
use crate::server::Server;
use crate::store::{ConversationState, Event, Listing, NewMessage, StoreError, Topic};

/// The conversation's state if it exists and the caller is or was a member
/// of it, with the seqs the caller may read; `not_found` otherwise.
/// Unknown and foreign conversations get the same answer, so ids cannot be
/// probed. The connection watches a direct peer's presence.
async fn readable(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    conv: &ConversationId,
) -> Result<(ConversationState, (u64, u64)), CoreError> {
    let state = visible(s, caller, conv).await?;
    if let Some(peer) = state.peer_of(&caller.user) {
        out.watch.push(peer.clone());
    }
    let range = state.readable(&caller.user).unwrap_or((1, 0));
    Ok((state, range))
}

/// Spends the sender's budget for a message of `bytes` (across all of the
/// user's connections and nodes); `rate_limited` past it.
pub(crate) async fn spend_send_budget(
    s: &Server,
    caller: &Caller,
    bytes: usize,
    now: crate::model::Millis,
) -> Result<(), CoreError> {
    let cfg = &s.config;
    let cost = u64::try_from(bytes)
        .unwrap_or(u64::MAX)
        .max(cfg.send_min_cost);
    match s
        .backends
        .limiter
        .spend(&caller.send_budget_key, cost, cfg.send_budget, now)
        .await?
    {
        Some(retry_after_ms) => Err(CoreError::RateLimited { retry_after_ms }),
        None => Ok(()),
    }
}

/// The longest reaction, in bytes: one grapheme cluster, which the longest
/// emoji sequences (families, flags of regions) stay well within.
const MAX_REACTION_BYTES: usize = 64;

/// What a `send` asks to append.
pub(crate) struct Outgoing {
    pub(crate) conv: Option<ConversationId>,
    pub(crate) to: Option<UserId>,
    pub(crate) client_id: String,
    pub(crate) rel: Option<Rel>,
    pub(crate) mentions: Vec<UserId>,
    pub(crate) media: Vec<MediaId>,
    pub(crate) content: Content,
}

/// The size a content counts against the send budget, once it is checked
/// to be one a client may send with `rel`.
fn checked_content(
    caller: &Caller,
    rel: Option<RelKind>,
    content: &Content,
) -> Result<usize, CoreError> {
    match (rel, content) {
        (Some(RelKind::Delete), Content::Deleted {}) => Ok(0),
        (Some(RelKind::Delete), _) => Err(CoreError::InvalidArgument {
            field: "content".into(),
            message: "a deletion's content is {\"kind\": \"deleted\"}".into(),
        }),
        (Some(RelKind::Reaction), Content::Text { text }) => {
            let mut clusters =
                unicode_segmentation::UnicodeSegmentation::graphemes(text.as_str(), true);
            let one =
                clusters.next().is_some_and(|c| !c.trim().is_empty()) && clusters.next().is_none();
            if !one || text.len() > MAX_REACTION_BYTES {
                return Err(CoreError::InvalidArgument {
                    field: "text".into(),
                    message: "a reaction is one emoji".into(),
                });
            }
            Ok(text.len())
        }
        (_, Content::Text { text }) if text.trim().is_empty() => Err(CoreError::InvalidArgument {
            field: "text".into(),
            message: "a message needs some text".into(),
        }),
        (_, Content::Text { text }) => Ok(text.len()),
        (_, Content::Encrypted { ciphertext, .. }) => {
            crate::e2e::check_encrypted(content, &caller.device)?;
            Ok(ciphertext.len())
        }
        (
            None | Some(RelKind::Reply),
            Content::Image { .. } | Content::File { .. } | Content::Voice { .. },
        ) => {
            if content.encryption().is_some() {
                return Err(CoreError::InvalidArgument {
                    field: "encryption".into(),
                    message: "a file's key travels only inside encrypted content: \
                              sent in the clear it would be readable by the server"
                        .into(),
                });
            }
            if let Content::Image {
                thumbnail: Some(t), ..
            } = content
            {
                use base64::Engine as _;
                let decoded = base64::engine::general_purpose::STANDARD_NO_PAD.decode(t);
                if decoded.map_or(true, |d| d.len() > crate::model::MAX_THUMBNAIL_BYTES) {
                    return Err(CoreError::InvalidArgument {
                        field: "thumbnail".into(),
                        message: format!(
                            "a thumbnail is unpadded base64 of at most {} bytes",
                            crate::model::MAX_THUMBNAIL_BYTES
                        ),
                    });
                }
            }
            // What the message itself stores; the file is counted by its upload.
            Ok(serde_json::to_vec(content).map_or(0, |v| v.len()))
        }
        (Some(_), Content::Image { .. } | Content::File { .. } | Content::Voice { .. }) => {
            Err(CoreError::InvalidArgument {
                field: "content".into(),
                message: "a file is sent as a message or a reply".into(),
            })
        }
        _ => Err(CoreError::InvalidArgument {
            field: "content".into(),
            message: format!("{} is written by the server, not sent", content.kind()),
        }),
    }
}

/// Checks that the caller may send an entry that `rel` points at another
/// message of `state` with: the target exists and the caller may read it,
/// and it is one that kind of entry may point at. Returns the entry the
/// caller sent earlier with this `client_id` (a retry of a send that took
/// effect), if any.
async fn check_relation(
    s: &Server,
    caller: &Caller,
    state: &ConversationState,
    rel: &Rel,
    client_id: &str,
    now: Millis,
) -> Result<Option<Message>, CoreError> {
    let me = &caller.user;
    let store = &s.backends.messages;
    let target = store
        .by_ids(&state.conv, std::slice::from_ref(&rel.target))
        .await?
        .pop();
    let (first, last) = state.readable(me).unwrap_or((1, 0));
    // A message the caller may not read is one it cannot name: not_found,
    // as for one that does not exist (another conversation's included).
    let Some(target) = target.filter(|t| (first..=last).contains(&t.seq)) else {
        return Err(CoreError::NotFound("no such message".into()));
    };
    // What it may point at: a message (or what a deletion left of one);
    // a deletion may also take a reaction back.
    let deleted = target.content == (Content::Deleted {});
    let fits = RelKind::stands_alone(target.rel_kind())
        || rel.kind == RelKind::Delete && target.rel_kind() == Some(RelKind::Reaction);
    if !fits || !(deleted || target.content.is_message()) {
        return Err(CoreError::InvalidArgument {
            field: "rel".into(),
            message: format!("a {} cannot point at that entry", rel.kind.as_str()),
        });
    }
    if rel.kind == RelKind::Reply {
        // A deleted message is still quoted, as "message deleted": a reply
        // written while its target was deleted is not lost, and a retry of
        // one sent before is answered as the first (by the store).
        return Ok(None);
    }
    // The caller's own edits, reactions and deletions of the target: a
    // retry finds its first attempt here before any rule refuses it.
    let mine = store
        .related(&state.conv, std::slice::from_ref(&rel.target), Some(me))
        .await?;
    if let Some(earlier) = mine.iter().find(|m| m.client_id == client_id) {
        return Ok(Some(earlier.clone()));
    }
    if deleted {
        return Err(CoreError::NotFound("the message was deleted".into()));
    }
    match rel.kind {
        RelKind::Edit => {
            if target.from != *me {
                return Err(CoreError::Forbidden(
                    "you can only edit your own messages".into(),
                ));
            }
            let age = u64::try_from(now.saturating_sub(target.ts)).unwrap_or(0);
            if age > s.config.edit_window_ms {
                return Err(CoreError::Forbidden(
                    "this message is too old to be edited".into(),
                ));
            }
        }
        RelKind::Reaction => {
            let live = mine
                .iter()
                .filter(|m| m.rel_kind() == Some(RelKind::Reaction) && m.content.is_message())
                .count();
            if live >= MAX_REACTIONS {
                return Err(CoreError::LimitReached(format!(
                    "at most {MAX_REACTIONS} reactions to one message"
                )));
            }
        }
        RelKind::Delete => {
            let admin = state.kind == ConversationKind::Group
                && state
                    .member(me)
                    .is_some_and(|m| m.is_active() && m.role >= Role::Admin);
            if target.from != *me && !admin {
                return Err(CoreError::Forbidden(
                    "you can only delete your own messages".into(),
                ));
            }
        }
        RelKind::Reply => {}
    }
    Ok(None)
}

/// Checks the files a message lists: well formed, each once, and the one
/// a plain media content names among them. Whether they exist is asked of
/// the blob store once the sender's budget allows the send.
fn checked_media(media: &mut Vec<MediaId>, content: &Content) -> Result<(), CoreError> {
    if let Some(bad) = media.iter().find(|m| !m.is_well_formed()) {
        return Err(CoreError::InvalidArgument {
            field: "media".into(),
            message: format!("not a media id: {:?}", bad.as_str()),
        });
    }
    media.sort();
    media.dedup();
    if let Some(named) = content.media() {
        if !media.contains(named) {
            return Err(CoreError::InvalidArgument {
                field: "media".into(),
                message: "list the content's file in media".into(),
            });
        }
    }
    Ok(())
}

/// `mentions` as stored: the current members among them but the sender,
/// once each. A mention of someone who is not a member alerts nobody and
/// would only tell the log a name: it is dropped.
fn members_mentioned(
    state: &ConversationState,
    me: &UserId,
    mut mentions: Vec<UserId>,
) -> Vec<UserId> {
    mentions.sort();
    mentions.dedup();
    mentions.retain(|u| u != me && state.has_member(u));
    mentions
}

/// `known_peer`: the connection has sent to `to` before, so the user exists
/// and is watched already.
pub(crate) async fn send(
    s: &Server,
    caller: &Caller,
    known_peer: bool,
    out: &mut Out,
    id: u32,
    outgoing: Outgoing,
) -> Result<ServerFrame, CoreError> {
    let Outgoing {
        conv,
        to,
        client_id,
        rel,
        mentions,
        mut media,
        content,
    } = outgoing;
    let me = &caller.user;
    if client_id.trim().is_empty() {
        return Err(CoreError::InvalidArgument {
            field: "client_id".into(),
            message: "client_id must not be empty".into(),
        });
    }
    let bytes = checked_content(caller, rel.as_ref().map(|r| r.kind), &content)?;
    checked_media(&mut media, &content)?;
    let conv = match (conv, &to) {
        (Some(conv), None) => conv,
        (None, Some(to)) if to == me => {
            return Err(CoreError::InvalidArgument {
                field: "to".into(),
                message: "cannot send a message to yourself".into(),
            });
        }
        (None, Some(to)) if rel.is_none() => ConversationId::direct(me, to),
        (None, Some(_)) => {
            return Err(CoreError::InvalidArgument {
                field: "conv".into(),
                message: "a message that points at another names its conv".into(),
            })
        }
        _ => {
            return Err(CoreError::InvalidArgument {
                field: "conv".into(),
                message: "name either conv or to".into(),
            })
        }
    };
    // One reading of the clock per message (it is a system call's worth).
    let now = s.now();
    spend_send_budget(s, caller, bytes, now).await?;
    // Each listed file exists and belongs to someone in the conversation:
    // its uploader (the common case, which needs no reading of the
    // conversation) or another current member.
    let mut others_files = Vec::new();
    for m in &media {
        match s.backends.blobs.info(m).await? {
            None => {
                return Err(CoreError::NotFound(format!(
                    "no such media: {}",
                    m.as_str()
                )))
            }
            Some(info) => match info.owner {
                Some(owner) if owner == *me => {}
                owner => others_files.push(owner),
            },
        }
    }
    if let (Some(to), false) = (&to, known_peer) {
        // The first message to this user on this connection: the user
        // exists, and the conversation is opened if it is not yet.
        direct_with(s, caller, out, to, false).await?;
    }
    if !others_files.is_empty() {
        let (state, _) = readable(s, caller, out, &conv).await?;
        let member = |u: &UserId| state.members.iter().any(|m| m.user == *u);
        if !others_files.iter().all(|o| o.as_ref().is_some_and(member)) {
            return Err(CoreError::Forbidden(
                "a listed file was uploaded by someone who is not in this conversation: \
                 upload it again to send it here"
                    .into(),
            ));
        }
    }
    // A plain message needs no reading of the conversation here (the store
    // checks membership as it appends); one that points at another or
    // mentions members does.
    let mut mentioned = Vec::new();
    if rel.is_some() || !mentions.is_empty() {
        let (state, _) = readable(s, caller, out, &conv).await?;
        if let Some(rel) = &rel {
            if let Some(earlier) = check_relation(s, caller, &state, rel, &client_id, now).await? {
                return Ok(ServerFrame::Sent {
                    expires_at: earlier.expires_at,
                    id,
                    message_id: earlier.id,
                    conv,
                    seq: earlier.seq,
                    ts: earlier.ts,
                    duplicate: true,
                });
            }
        }
        mentioned = members_mentioned(&state, me, mentions);
    }
    let msg = NewMessage::new(conv.clone(), me.clone(), client_id, now, content)
        .related(rel, mentioned)
        .with_media(media);
    let appended = match s.backends.messages.append(msg).await {
        Err(StoreError::NotMember) => {
            // A former member knows the conversation; anyone else learns
            // nothing of it.
            visible(s, caller, &conv).await?;
            return Err(StoreError::NotMember.into());
        }
        Err(StoreError::NotFound) => {
            return Err(CoreError::NotFound("no such conversation".into()))
        }
        Err(StoreError::Blocked) => {
            // The blocker is told why; the blocked user gets the refusal
            // any privacy setting gives.
            let state = s.backends.messages.conversation(&conv).await?;
            if state.is_some_and(|c| c.blocked.contains(me)) {
                return Err(CoreError::Forbidden(
                    "you block this user: unblock them first".into(),
                ));
            }
            return Err(StoreError::Blocked.into());
        }
        other => other?,
    };
    let m = appended.message;
    if m.from != *me || m.conv != conv {
        // The client reused one of its client ids for a different message.
        return Err(CoreError::Conflict {
            field: "client_id".into(),
        });
    }
    if let (Some(to), false) = (to, known_peer) {
        out.watch.push(to);
    }
    if !appended.duplicate {
        // The message ends the typing its recipients show: typing here
        // again goes out at once.
        if caller.typing.as_ref().is_some_and(|t| t.conv == conv) {
            out.typing = Some(None);
        }
        s.metrics
            .messages_stored
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // One shared message for every recipient: encoded once per codec.
        let shared = SharedMessage::new(m.clone());
        for r in appended.recipients.iter() {
            let mine = r.user == *me;
            out.publish(
                Topic::User(r.user.clone()),
                Event::Message {
                    message: shared.clone(),
                    // A mention alerts even where the group is muted.
                    muted: r.is_muted(now) && !m.mentions.contains(&r.user),
                    origin: mine.then(|| caller.conn.clone()),
                },
            );
        }
    }
    Ok(ServerFrame::Sent {
        expires_at: m.expires_at,
        id,
        message_id: m.id.clone(),
        // The same as the message's (checked above), without a copy.
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
    let (_, (first, last)) = readable(s, caller, out, &conv).await?;
    let limit = page(s, limit, 50);
    // Never past what the caller may read: a removed member's history ends
    // at its removal.
    let before = before.unwrap_or(u64::MAX).min(last.saturating_add(1));
    let mut messages = s
        .backends
        .messages
        .history(&conv, Some(before), limit)
        .await?;
    messages.retain(|m| m.seq >= first);
    let more = messages.first().is_some_and(|m| m.seq > first);
    let related = related_to_page(s, &conv, &messages, (first, last)).await?;
    Ok(ServerFrame::Messages {
        id,
        conv,
        messages,
        more,
        related,
    })
}

/// What a page of history needs beside it to show each message in its
/// latest state: the messages it replies to that are not on it, and the
/// edits, reactions and deletions of both, wherever they are in the log,
/// as far as the reader may read (`readable`). Two store round trips, and
/// none for a page without messages.
async fn related_to_page(
    s: &Server,
    conv: &ConversationId,
    page: &[Message],
    readable: (u64, u64),
) -> Result<Vec<Message>, CoreError> {
    let (Some(lo), Some(hi)) = (page.first().map(|m| m.seq), page.last().map(|m| m.seq)) else {
        return Ok(Vec::new());
    };
    let store = &s.backends.messages;
    let on_page = |seq: u64| (lo..=hi).contains(&seq);
    let shown = |seq: u64| (readable.0..=readable.1).contains(&seq) && !on_page(seq);
    let quoted: Vec<crate::model::MessageId> = page
        .iter()
        .filter_map(|m| m.rel.as_ref().filter(|r| r.kind == RelKind::Reply))
        .map(|r| r.target.clone())
        .collect();
    let mut related = if quoted.is_empty() {
        Vec::new()
    } else {
        let mut found = store.by_ids(conv, &quoted).await?;
        found.retain(|m| shown(m.seq));
        found
    };
    let targets: Vec<crate::model::MessageId> = page
        .iter()
        .filter(|m| m.stands_alone())
        .chain(related.iter())
        .map(|m| m.id.clone())
        .collect();
    if !targets.is_empty() {
        let mut about = store.related(conv, &targets, None).await?;
        about.retain(|m| shown(m.seq));
        related.extend(about);
    }
    related.sort_by_key(|m| m.seq);
    related.dedup_by_key(|m| m.seq);
    Ok(related)
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
    let mut convs = Vec::new();
    let mut after = None;
    // Message requests deliver like any conversation: the recipient reads
    // them before answering.
    loop {
        let batch = store
            .conversations(
                &caller.user,
                Listing::All,
                after.as_ref(),
                s.config.max_page,
            )
            .await?;
        let full = batch.len() == s.config.max_page;
        after = batch.last().map(|c| (c.last_ts, c.conv.clone()));
        convs.extend(batch);
        if !full {
            break;
        }
    }
    // Oldest activity first, so a paged sync delivers in roughly the order sent.
    convs.reverse();
    let mut messages = Vec::new();
    let mut more = false;
    for c in convs {
        let Some((first, last)) = c.readable(&caller.user) else {
            continue;
        };
        let after = cursors
            .get(&c.conv)
            .copied()
            .unwrap_or(0)
            .max(first.saturating_sub(1));
        if last <= after {
            continue;
        }
        let room = limit - messages.len();
        if room == 0 {
            more = true;
            break;
        }
        let mut batch = store.read_after(&c.conv, after, room).await?;
        batch.retain(|m| m.seq <= last);
        if batch.last().is_none_or(|m| m.seq < last) {
            more = more || batch.len() == room;
        }
        messages.extend(batch);
    }
    Ok(ServerFrame::Synced { id, messages, more })
}

/// Validates that `seq` is one the caller may read in `conv`: a cursor or
/// read marker beyond the head would silently swallow future messages.
/// Returns the conversation.
async fn checked_seq(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    conv: &ConversationId,
    seq: u64,
) -> Result<ConversationState, CoreError> {
    let (state, (_, last)) = readable(s, caller, out, conv).await?;
    if seq > last {
        return Err(CoreError::InvalidArgument {
            field: "seq".into(),
            message: format!("seq {seq} is beyond the conversation's last message ({last})"),
        });
    }
    Ok(state)
}

/// Whether the members of `state` see each other's activity (receipts,
/// typing): not in a direct conversation that is a message request not
/// answered yet, or where either blocks the other (neither learns whether
/// the other is there).
fn shares_activity(state: &ConversationState) -> bool {
    state.kind == ConversationKind::Group || (state.pending.is_empty() && state.blocked.is_empty())
}

/// Tells the caller's fellow members of `state` that its receipt rose.
fn publish_receipt(out: &mut Out, state: &ConversationState, receipt: Option<Receipt>) {
    let Some(receipt) = receipt.filter(|_| shares_activity(state)) else {
        return;
    };
    let receipt = Arc::new(receipt);
    for m in state.members.iter().filter(|m| m.is_active()) {
        if m.user != receipt.user {
            out.publish(Topic::User(m.user.clone()), Event::Receipt(receipt.clone()));
        }
    }
}

pub(crate) async fn ack(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
    seq: u64,
) -> Result<ServerFrame, CoreError> {
    let state = checked_seq(s, caller, out, &conv, seq).await?;
    let receipt = s
        .backends
        .messages
        .set_cursor(&caller.user, &caller.device, &conv, seq, s.now())
        .await?;
    publish_receipt(out, &state, receipt);
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
    let state = checked_seq(s, caller, out, &conv, seq).await?;
    let receipt = s
        .backends
        .messages
        .mark_read(&caller.user, &conv, seq, caller.read_receipts, s.now())
        .await?;
    publish_receipt(out, &state, receipt);
    // The user's other devices clear their count.
    out.publish(
        Topic::User(caller.user.clone()),
        Event::Read {
            conv,
            seq,
            origin: caller.conn.clone(),
        },
    );
    Ok(ServerFrame::Ok { id })
}

/// `receipts`: how far the caller's fellow members received and read
/// `conv`, those that rose at or after `since`. A former member sees them as far
/// as it could read; read marks are withheld from a caller that does not
/// share its own; none in a direct conversation without receipts
/// ([`shares_activity`]).
pub(crate) async fn receipts(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    conv: ConversationId,
    since: Option<Millis>,
) -> Result<ServerFrame, CoreError> {
    let (state, (_, last)) = readable(s, caller, out, &conv).await?;
    let until = s.now();
    let mut receipts = Vec::new();
    if shares_activity(&state) {
        // Stamps of other nodes' clocks may lag this one's: the overlap
        // takes again what rose just before `since` (marks only rise, so
        // twice is harmless).
        let since = since.map_or(Millis::MIN, |t| {
            t.saturating_sub(i64::try_from(s.config.receipt_overlap_ms).unwrap_or(i64::MAX))
        });
        for r in s.backends.messages.receipts(&conv, since).await? {
            if r.user == caller.user {
                continue;
            }
            receipts.push(ReceiptInfo {
                user: r.user,
                delivered: r.delivered.min(last),
                read: if caller.read_receipts {
                    r.read.min(last)
                } else {
                    0
                },
            });
        }
    }
    Ok(ServerFrame::Receipts {
        id,
        conv,
        receipts,
        until,
    })
}

/// `typing`: the caller's fellow members of `conv` who are connected learn
/// that the caller writes there (or stopped). Nothing is stored. Only a
/// current member of an accepted conversation types: in a message request or
/// an invitation not answered yet, and towards a user who blocks or is
/// blocked, nothing goes out (and the caller is not told, as for presence).
///
/// A repeat of what this connection last sent out there, within a third of
/// the push's `ttl_ms`, does not go out again: the members still show it
/// for at least two thirds of `ttl_ms`, and a client that refreshes about
/// every half of it (as asked) is sent on each time, while one that
/// refreshes more often costs every member's connection a push per
/// refresh for nothing. A message from the connection ends that (its
/// recipients stop showing the typing), so typing there again goes out. (A
/// message or a stop from another device of the user also ends what its
/// recipients show, which this connection does not know: its next refresh
/// may then wait up to a third of `ttl_ms`.)
pub(crate) async fn typing(
    s: &Server,
    caller: &Caller,
    id: u32,
    conv: ConversationId,
    typing: bool,
    out: &mut Out,
) -> Result<ServerFrame, CoreError> {
    let state = visible(s, caller, &conv).await?;
    if !state.member(&caller.user).is_some_and(|m| m.is_active()) {
        return Err(CoreError::Forbidden(
            "only a member writes in this conversation".into(),
        ));
    }
    // A repeat spends nothing of the budget: a client that refreshes often
    // must still have room to say that it stopped. (A clock that stepped
    // back makes no repeat of what went out "later".)
    let now = s.now();
    let fresh = i64::from(s.config.typing_ttl_ms / 3);
    if caller
        .typing
        .as_ref()
        .is_some_and(|t| t.conv == conv && t.typing == typing && (0..fresh).contains(&(now - t.at)))
    {
        return Ok(ServerFrame::Ok { id });
    }
    let key = format!("typing:{}", caller.conn);
    let over = s
        .backends
        .limiter
        .spend(&key, 1, s.config.typing_budget, now)
        .await?;
    if over.is_some() || !shares_activity(&state) {
        return Ok(ServerFrame::Ok { id });
    }
    for m in state.members.iter().filter(|m| m.is_active()) {
        if m.user == caller.user {
            continue;
        }
        out.publish(
            Topic::User(m.user.clone()),
            Event::Typing {
                conv: conv.clone(),
                user: caller.user.clone(),
                typing,
            },
        );
    }
    out.typing = Some(Some(TypingSent {
        conv,
        typing,
        at: now,
    }));
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
