//! Calls: `call_invite`, `call_ringing`, `call_answer`,
//! `call_candidates`, `call_hangup` (the signalling of WebRTC calls in a
//! direct conversation, whose state the [`CallStore`] keeps), the end of a
//! call as a `call` notice in the conversation, the sweep that ends calls
//! nobody answered or whose device went away, and `ice_servers` (the STUN
//! and TURN servers a call may use, with TURN credentials made for the
//! caller).
//!
//! The server routes signals by call, user and device and never reads
//! them: a sealed signal is an Olm payload for one device, and in an
//! end-to-end encrypted conversation only sealed ones are taken, so that
//! the server can neither read nor swap the DTLS fingerprints of the SDP.

use base64::Engine as _;
use std::sync::Arc;

use crate::commands::check_name;
use crate::commands::conversations::visible;
use crate::error::{invalid, CoreError};
use crate::model::{CallEnd, CallMedia, Content, ConversationId, ConversationKind, Millis, UserId};
use crate::protocol::{
    CallInfo, CallSignal, CallSignalPush, CallStatus, HangupReason, IceServer, ServerFrame,
    SharedMessage,
};
use crate::request::{Caller, Out};
use crate::server::{IceConfig, Server};
use crate::store::{
    Answered, CallOffer, CallRecord, Event, NewMessage, OfferFor, Started, StoreError, Topic,
};

/// Candidates one signal may carry.
pub(crate) const MAX_CANDIDATES: usize = 50;
/// Bytes of one candidate line.
const MAX_CANDIDATE_BYTES: usize = 1024;
/// Devices one sealed signal may address.
const MAX_SEALED: usize = 32;

/// What a signal must carry: an SDP (offer, answer), candidates, or
/// either (in an answered call, where an ICE restart renegotiates).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Carries {
    Sdp,
    Candidates,
    Either,
}

/// Checks `signal` for a call whose signals are `sealed` (or plain).
fn check_signal(
    s: &Server,
    signal: &CallSignal,
    sealed: bool,
    carries: Carries,
) -> Result<(), CoreError> {
    let max = s.config.max_to_device_bytes;
    if !signal.sealed.is_empty() {
        if signal.sdp.is_some() || !signal.candidates.is_empty() {
            return Err(invalid(
                "signal",
                "a signal is plain (sdp, candidates) or sealed, not both",
            ));
        }
        if signal.sealed.len() > MAX_SEALED {
            return Err(invalid(
                "signal",
                format!("a signal is sealed for at most {MAX_SEALED} devices"),
            ));
        }
        for (i, entry) in signal.sealed.iter().enumerate() {
            if entry.payload.is_empty() || entry.payload.len() > max {
                return Err(CoreError::TooLarge {
                    field: "sealed".into(),
                    message: format!("a sealed payload has 1 to {max} characters"),
                });
            }
            check_name("device", entry.device.as_str())?;
            if signal.sealed[..i].iter().any(|e| e.device == entry.device) {
                return Err(invalid("signal", "one sealed payload per device"));
            }
        }
        return Ok(());
    }
    if sealed {
        return Err(invalid(
            "signal",
            "this conversation is end-to-end encrypted: seal the call's signals for each device",
        ));
    }
    match (carries, &signal.sdp) {
        (Carries::Sdp, None) => return Err(invalid("signal", "the signal needs its sdp")),
        (Carries::Sdp | Carries::Either, Some(sdp)) if sdp.is_empty() || sdp.len() > max => {
            return Err(CoreError::TooLarge {
                field: "sdp".into(),
                message: format!("an sdp has 1 to {max} bytes"),
            })
        }
        (Carries::Candidates, Some(_)) => {
            return Err(invalid(
                "signal",
                "candidates carry no sdp until the call is answered",
            ))
        }
        (Carries::Candidates | Carries::Either, None) if signal.candidates.is_empty() => {
            return Err(invalid("signal", "the signal needs candidates"))
        }
        _ => {}
    }
    if signal.candidates.len() > MAX_CANDIDATES {
        return Err(CoreError::TooLarge {
            field: "candidates".into(),
            message: format!("at most {MAX_CANDIDATES} candidates a signal"),
        });
    }
    for c in &signal.candidates {
        let long = c.candidate.len() > MAX_CANDIDATE_BYTES
            || c.sdp_mid.as_ref().is_some_and(|m| m.len() > 64);
        if long || c.candidate.chars().any(char::is_control) {
            return Err(invalid(
                "candidates",
                format!("a candidate is one line of at most {MAX_CANDIDATE_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}

/// What a device of the call (the caller's, or the callee's that
/// answered) that signs in again while `record` lasts is pushed: where the
/// call stands. A client that still holds the call (its connection
/// dropped) carries on; one that lost it (its page was reloaded) hangs it
/// up, so that the other side is told at once rather than after its wait
/// for the media path.
pub(crate) fn rejoin(record: &CallRecord, now: Millis) -> ServerFrame {
    ServerFrame::CallState {
        id: None,
        call: Box::new(info(record, status(record), None, now)),
    }
}

/// What a device of the callee that signs in while `record` rings is
/// pushed, as if it had been connected at the invite: the call ringing,
/// and the offer as this device may read it (the SDP, or the payload
/// sealed for it). `None` when the offer was sealed for other devices only:
/// this device could not answer it (the caller's client seals for every
/// device it knows of the callee, so that is a device added since).
pub(crate) fn ring_late(
    record: &CallRecord,
    device: &crate::model::DeviceId,
    now: Millis,
) -> Option<[ServerFrame; 2]> {
    let (sdp, sealed) = match record.offer.as_ref()?.for_device(device)? {
        OfferFor::Plain(sdp) => (Some(sdp.to_owned()), None),
        OfferFor::Sealed(payload) => (None, Some(payload.to_owned())),
    };
    Some([
        ServerFrame::CallState {
            id: None,
            call: Box::new(info(record, CallStatus::Ringing, None, now)),
        },
        ServerFrame::CallSignal(Box::new(CallSignalPush {
            call: record.id.clone(),
            device: record.caller_device.clone(),
            sdp,
            candidates: Vec::new(),
            sealed,
        })),
    ])
}

/// The call `record` as `call_state` shows it, in `state`.
fn info(record: &CallRecord, state: CallStatus, reason: Option<CallEnd>, now: Millis) -> CallInfo {
    CallInfo {
        call: record.id.clone(),
        conv: record.conv.clone(),
        caller: record.caller.clone(),
        caller_device: record.caller_device.clone(),
        callee: record.callee.clone(),
        media: record.media,
        state,
        ringing: record.ringing,
        answered_by: record.answered_by.clone(),
        reason,
        started_at: record.started_at,
        answered_at: record.answered_at,
        ended_at: (state == CallStatus::Ended).then_some(now),
    }
}

/// Where `record` stands while it lasts.
fn status(record: &CallRecord) -> CallStatus {
    if record.answered_by.is_some() {
        CallStatus::Active
    } else {
        CallStatus::Ringing
    }
}

/// Tells every connection of both users (but `origin`) how `call` stands.
fn publish_state(out: &mut Out, call: &CallInfo, origin: Option<&Arc<str>>) {
    for user in [&call.caller, &call.callee] {
        out.publish(
            Topic::User(user.clone()),
            Event::Call {
                call: Box::new(call.clone()),
                origin: origin.cloned(),
            },
        );
    }
}

/// Routes `signal` from `from` (a device of the call) to `user`'s device
/// `to`, or to all of `user`'s devices (`to: None`, plain only). A sealed
/// signal goes to each device it names, or only to `to` when given (which
/// must be named).
fn route(
    out: &mut Out,
    call: &str,
    from: &crate::model::DeviceId,
    user: &UserId,
    to: Option<&crate::model::DeviceId>,
    signal: CallSignal,
) -> Result<(), CoreError> {
    let topic = Topic::User(user.clone());
    if signal.sealed.is_empty() {
        out.publish(
            topic,
            Event::CallSignal {
                device: to.cloned(),
                signal: Box::new(CallSignalPush {
                    call: call.to_owned(),
                    device: from.clone(),
                    sdp: signal.sdp,
                    candidates: signal.candidates,
                    sealed: None,
                }),
            },
        );
        return Ok(());
    }
    let mut sent = false;
    for entry in signal.sealed {
        if to.is_some_and(|d| *d != entry.device) {
            continue;
        }
        sent = true;
        out.publish(
            topic.clone(),
            Event::CallSignal {
                device: Some(entry.device),
                signal: Box::new(CallSignalPush {
                    call: call.to_owned(),
                    device: from.clone(),
                    sdp: None,
                    candidates: Vec::new(),
                    sealed: Some(entry.payload),
                }),
            },
        );
    }
    if sent {
        Ok(())
    } else {
        Err(invalid(
            "signal",
            "seal the signal for the device on the other side of the call",
        ))
    }
}

/// `call_invite`.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn invite(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    call: String,
    conv: ConversationId,
    media: CallMedia,
    signal: CallSignal,
) -> Result<ServerFrame, CoreError> {
    check_name("call", &call)?;
    let state = visible(s, caller, &conv).await?;
    if state.kind != ConversationKind::Direct {
        return Err(invalid(
            "conv",
            "calls are between the two members of a direct conversation (no group calls yet)",
        ));
    }
    let Some(callee) = state
        .members
        .iter()
        .map(|m| &m.user)
        .find(|u| **u != caller.user)
        .cloned()
    else {
        return Err(invalid("conv", "a call needs someone to call"));
    };
    if state.blocked.contains(&caller.user) {
        return Err(CoreError::Forbidden(
            "you block this user: unblock them first".into(),
        ));
    }
    if !state.blocked.is_empty() {
        return Err(StoreError::Blocked.into());
    }
    if state.pending_for(&caller.user).is_some() {
        return Err(StoreError::NotAccepted.into());
    }
    if state.pending_for(&callee).is_some() {
        return Err(CoreError::Forbidden(
            "they have not accepted your message request yet".into(),
        ));
    }
    check_signal(s, &signal, state.encrypted, Carries::Sdp)?;
    let now = s.now();
    let key = format!("call:{}", caller.user);
    if let Some(retry_after_ms) = s
        .backends
        .limiter
        .spend(&key, 1, s.config.call_invites, now)
        .await?
    {
        return Err(CoreError::RateLimited { retry_after_ms });
    }
    let mut record = CallRecord::new(
        call.clone(),
        conv,
        (
            caller.user.clone(),
            caller.device.clone(),
            caller.conn.to_string(),
        ),
        callee.clone(),
        media,
        state.encrypted,
        now,
    );
    // Kept while the call rings, for a device of the callee that connects
    // meanwhile (`ring_late`).
    record.offer = match (&signal.sdp, signal.sealed.is_empty()) {
        (Some(sdp), true) => Some(CallOffer::plain(sdp.clone())),
        (None, false) => Some(CallOffer::sealed(
            signal
                .sealed
                .iter()
                .map(|s| (s.device.clone(), s.payload.clone())),
        )),
        _ => None,
    };
    match s.backends.calls.start(&record).await? {
        Started::Exists => Err(CoreError::Conflict {
            field: "call".into(),
        }),
        Started::CallerBusy => Err(CoreError::LimitReached(
            "you are in a call already: end it first".into(),
        )),
        Started::CalleeBusy => {
            // The callee answers busy at once: never recorded, never rung;
            // the conversation says so (and alerts the callee as missed).
            let ended = info(&record, CallStatus::Ended, Some(CallEnd::Busy), now);
            write_notice(s, out, &record, CallEnd::Busy, now).await;
            out.publish(
                Topic::User(caller.user.clone()),
                Event::Call {
                    call: Box::new(ended.clone()),
                    origin: Some(caller.conn.clone()),
                },
            );
            Ok(ServerFrame::CallState {
                id: Some(id),
                call: Box::new(ended),
            })
        }
        Started::Started => {
            out.holds_call = true;
            let ringing = info(&record, CallStatus::Ringing, None, now);
            publish_state(out, &ringing, Some(&caller.conn));
            route(out, &call, &caller.device, &callee, None, signal)?;
            Ok(ServerFrame::CallState {
                id: Some(id),
                call: Box::new(ringing),
            })
        }
    }
}

/// The call `call` if `caller` takes part in it (as its caller, or its
/// callee); `not_found` otherwise, as for a call that is over.
async fn party(s: &Server, caller: &Caller, call: &str) -> Result<CallRecord, CoreError> {
    check_name("call", call)?;
    s.backends
        .calls
        .get(call)
        .await?
        .filter(|r| r.caller == caller.user || r.callee == caller.user)
        .ok_or_else(|| CoreError::NotFound("no such call, or it is over".into()))
}

/// `call_ringing`.
pub(crate) async fn ringing(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    call: String,
) -> Result<ServerFrame, CoreError> {
    let record = party(s, caller, &call).await?;
    if record.callee != caller.user {
        return Err(CoreError::Forbidden(
            "only the callee's devices ring".into(),
        ));
    }
    if let Some(now_ringing) = s.backends.calls.set_ringing(&call).await? {
        let state = info(&now_ringing, status(&now_ringing), None, s.now());
        publish_state(out, &state, None);
    }
    Ok(ServerFrame::Ok { id })
}

/// `call_answer`.
pub(crate) async fn answer(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    call: String,
    signal: CallSignal,
) -> Result<ServerFrame, CoreError> {
    let record = party(s, caller, &call).await?;
    if record.callee != caller.user {
        return Err(CoreError::Forbidden("only the callee answers".into()));
    }
    check_signal(s, &signal, record.sealed, Carries::Sdp)?;
    if !signal.sealed.is_empty()
        && !signal
            .sealed
            .iter()
            .any(|e| e.device == record.caller_device)
    {
        return Err(invalid(
            "signal",
            "seal the answer for the caller's device in the call",
        ));
    }
    let now = s.now();
    match s
        .backends
        .calls
        .answer(&call, &caller.device, &caller.conn, now)
        .await?
    {
        Answered::Gone => Err(CoreError::NotFound("the call is over".into())),
        Answered::Taken(_) => Err(CoreError::NotFound(
            "the call was answered on another device".into(),
        )),
        Answered::Answered(record) => {
            out.holds_call = true;
            let active = info(&record, CallStatus::Active, None, now);
            route(
                out,
                &call,
                &caller.device,
                &record.caller,
                Some(&record.caller_device),
                signal,
            )?;
            publish_state(out, &active, Some(&caller.conn));
            Ok(ServerFrame::CallState {
                id: Some(id),
                call: Box::new(active),
            })
        }
    }
}

/// `call_candidates`.
pub(crate) async fn candidates(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    call: String,
    signal: CallSignal,
) -> Result<ServerFrame, CoreError> {
    let record = party(s, caller, &call).await?;
    if !record.in_call(&caller.user, &caller.device) {
        return Err(CoreError::Forbidden(
            "only the two devices in the call send it candidates".into(),
        ));
    }
    // Once answered, an ICE restart renegotiates here: the caller's device
    // sends a new offer, the device that answered its answer. The server
    // does not tell one from the other (nor sees inside a sealed signal):
    // the devices do, by who sent it.
    let carries = if record.answered_by.is_some() {
        Carries::Either
    } else {
        Carries::Candidates
    };
    check_signal(s, &signal, record.sealed, carries)?;
    if caller.user == record.caller {
        // Before an answer, to every device that rings; after, to the one
        // that answered.
        let to = record.answered_by.as_ref();
        route(out, &call, &caller.device, &record.callee, to, signal)?;
    } else {
        let to = Some(&record.caller_device);
        route(out, &call, &caller.device, &record.caller, to, signal)?;
    }
    Ok(ServerFrame::Ok { id })
}

/// `call_hangup`.
pub(crate) async fn hangup(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    call: String,
    reason: HangupReason,
) -> Result<ServerFrame, CoreError> {
    let record = party(s, caller, &call).await?;
    let answered = record.answered_by.is_some();
    let end = if caller.user == record.caller {
        if caller.device != record.caller_device {
            return Err(CoreError::Forbidden(
                "the call is on another of your devices".into(),
            ));
        }
        match (reason, answered) {
            (HangupReason::Failed, _) => CallEnd::Failed,
            (_, false) => CallEnd::Cancelled,
            (_, true) => CallEnd::Hangup,
        }
    } else if answered {
        if record.answered_by.as_ref() != Some(&caller.device) {
            return Err(CoreError::Forbidden(
                "the call was answered on another of your devices".into(),
            ));
        }
        match reason {
            HangupReason::Failed => CallEnd::Failed,
            _ => CallEnd::Hangup,
        }
    } else {
        // Any device of the callee declines a call that rings.
        match reason {
            HangupReason::Failed => CallEnd::Failed,
            _ => CallEnd::Declined,
        }
    };
    let now = s.now();
    match end_call(s, out, &call, end, now, Some(&caller.conn)).await? {
        Some(ended) => Ok(ServerFrame::CallState {
            id: Some(id),
            call: Box::new(ended),
        }),
        None => Err(CoreError::NotFound("the call is over".into())),
    }
}

/// Ends call `id` as `end` at `now`, unless it ended meanwhile (`None`):
/// writes its notice and tells both users' connections (but `origin`).
pub(crate) async fn end_call(
    s: &Server,
    out: &mut Out,
    id: &str,
    end: CallEnd,
    now: Millis,
    origin: Option<&Arc<str>>,
) -> Result<Option<CallInfo>, CoreError> {
    let Some(record) = s.backends.calls.end(id).await? else {
        return Ok(None);
    };
    write_notice(s, out, &record, end, now).await;
    let ended = info(&record, CallStatus::Ended, Some(end), now);
    publish_state(out, &ended, origin);
    Ok(Some(ended))
}

/// Writes the `call` notice of `record`, ended as `end` at `now`, into its
/// conversation, by its caller, and delivers it. A notice that cannot be
/// written (a block came between, the store is down) is logged and left
/// out: the call is over either way.
async fn write_notice(s: &Server, out: &mut Out, record: &CallRecord, end: CallEnd, now: Millis) {
    let content = Content::Call {
        call: record.id.clone(),
        media: record.media,
        outcome: end,
        duration_ms: record
            .answered_at
            .map(|at| u64::try_from(now.saturating_sub(at)).unwrap_or(0)),
    };
    let notice = NewMessage::notice(record.conv.clone(), record.caller.clone(), now, content);
    match s.backends.messages.append(notice).await {
        Ok(appended) => {
            let shared = SharedMessage::new(appended.message.clone());
            for member in appended.recipients.iter() {
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
        Err(e) => {
            tracing::warn!(call = %record.id, error = %e, "the call's notice was not written")
        }
    }
}

/// Whether `url` names a TURN server (which needs credentials).
pub(crate) fn is_turn(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

/// `ice_servers`.
pub(crate) async fn ice_servers(
    s: &Server,
    caller: &Caller,
    id: u32,
) -> Result<ServerFrame, CoreError> {
    let (servers, expires_at) = ice_for(&s.config.ice, &caller.user, s.now());
    Ok(ServerFrame::IceServers {
        id,
        servers,
        expires_at,
    })
}

/// The servers of `ice` for `user` at `now`: the STUN URLs as one server,
/// the TURN URLs as another with a credential that expires `turn_ttl_ms`
/// from now (whole seconds, rounded up), or none without a secret (a TURN
/// URL without credentials is refused by browsers).
pub(crate) fn ice_for(
    ice: &IceConfig,
    user: &UserId,
    now: Millis,
) -> (Vec<IceServer>, Option<Millis>) {
    let mut servers = Vec::new();
    let stun: Vec<String> = ice.urls.iter().filter(|u| !is_turn(u)).cloned().collect();
    if !stun.is_empty() {
        servers.push(IceServer {
            urls: stun,
            username: None,
            credential: None,
        });
    }
    let mut expires_at = None;
    let turn: Vec<String> = ice.urls.iter().filter(|u| is_turn(u)).cloned().collect();
    if let (Some(secret), false) = (&ice.turn_secret, turn.is_empty()) {
        let ttl = i64::try_from(ice.turn_ttl_ms).unwrap_or(i64::MAX);
        let expiry_secs = now.saturating_add(ttl).saturating_add(999).div_euclid(1000);
        let (username, credential) = turn_credential(secret.expose(), expiry_secs, user);
        servers.push(IceServer {
            urls: turn,
            username: Some(username),
            credential: Some(credential),
        });
        expires_at = Some(expiry_secs.saturating_mul(1000));
    }
    (servers, expires_at)
}

/// coturn's `use-auth-secret` credential: username `expiry:user` (expiry in
/// Unix seconds), password base64(HMAC-SHA1(secret, username)).
pub(crate) fn turn_credential(secret: &str, expiry_secs: i64, user: &UserId) -> (String, String) {
    let username = format!("{expiry_secs}:{user}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = ring::hmac::sign(&key, username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::TurnSecret;

    #[test]
    fn credential_matches_the_turn_rest_api() {
        // Python's base64.b64encode(hmac.new(b"north", b"1700000000:u",
        // hashlib.sha1).digest()); the real coturn checks it in chatd's tests.
        let user = UserId::from("u");
        let (name, pass) = turn_credential("north", 1_700_000_000, &user);
        assert_eq!(name, "1700000000:u");
        assert_eq!(pass, "S5t0cXb+5/BonfPqCeQ8Z01i5VE=");
    }

    #[test]
    fn stun_alone_without_a_secret_and_turn_with_one() {
        let user = UserId::from("u");
        let mut ice = IceConfig {
            urls: vec![
                "stun:stun.example:3478".into(),
                "turn:turn.example:3478?transport=udp".into(),
                "turns:turn.example:5349".into(),
            ],
            turn_secret: None,
            turn_ttl_ms: 3_600_500,
        };
        let (servers, expires) = ice_for(&ice, &user, 1_000);
        assert_eq!(servers.len(), 1, "no TURN without credentials: {servers:?}");
        assert_eq!(servers[0].urls, vec!["stun:stun.example:3478".to_owned()]);
        assert_eq!(expires, None);
        ice.turn_secret = Some(TurnSecret::new("north"));
        let (servers, expires) = ice_for(&ice, &user, 1_000);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].urls.len(), 2);
        // 1 s + 3,600.5 s, rounded up to whole seconds.
        assert_eq!(servers[1].username.as_deref(), Some("3602:u"));
        assert_eq!(expires, Some(3_602_000));
        assert_eq!(
            format!("{:?}", ice.turn_secret),
            "Some(TurnSecret(<redacted>))"
        );
    }
}
