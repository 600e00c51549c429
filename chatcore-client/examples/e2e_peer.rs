//! A Rust `SecureClient` user driven over stdin/stdout as JSON lines, so
//! that other clients' tests (the TypeScript binding's interop test) can
//! chat end-to-end encrypted with the Rust implementation.
//!
//! Commands, one JSON object per line on stdin, each answered by one line
//! `{"reply": <cmd>, ...}` (or `{"reply": <cmd>, "error": "..."}`):
//! - `{"cmd": "register", "url", "username", "email", "phone", "password"}`:
//!   connects, registers and starts the secure client; replies `user`, `device`.
//! - `{"cmd": "login", "url", "login", "password", "device"}`: connects,
//!   signs in as a new device of an existing user and starts the secure
//!   client; replies `user`, `device`.
//! - `{"cmd": "contact", "user", "action"}` (`request`, `accept`).
//! - `{"cmd": "create_group", "title", "members": [..]}`: an encrypted
//!   group; replies `conv`.
//! - `{"cmd": "send", "conv", "text"}`: replies the message `id`.
//! - `{"cmd": "safety_number", "user"}`: replies `number`.
//! - `{"cmd": "enable_backup"}`: turns the key backup on; replies
//!   `recovery_key` (its text).
//! - `{"cmd": "restore_backup", "recovery_key"}`: restores the key backup;
//!   replies `imported`, `refused`, `verified`.
//! - `{"cmd": "history", "conv"}`: the texts this device reads in the
//!   conversation's last 200 messages, oldest first; replies `texts`.
//! - `{"cmd": "open_direct", "user"}`: opens the encrypted direct
//!   conversation with `user`; replies `conv`.
//! - `{"cmd": "call_invite", "conv", "peer", "media", "sdp"}` (`media`
//!   `voice` or `video`, `call` optional): calls `peer` in the encrypted
//!   conversation `conv` with the offer `sdp` sealed for every device of
//!   theirs (docs/E2E.md, "A sealed call signal"); replies `call`, `state`.
//! - `{"cmd": "call_answer", "call", "sdp"}` (`peer` and `device`
//!   optional: by default the caller and the caller's device of the call as
//!   its `call_state` said): answers with `sdp` sealed for that device;
//!   replies `state`.
//! - `{"cmd": "call_candidates", "call", "candidates": [..]}`: sends ICE
//!   candidates sealed for the other side (its answering device once
//!   known, else all of its devices).
//! - `{"cmd": "call_hangup", "call", "reason"}` (`reason` optional,
//!   `hangup` by default): replies `state`.
//! - `{"cmd": "quit"}`.
//!
//! Events are lines `{"event": "message", "conv", "from", "text"}` for each
//! message read (live or once its key came), `{"event": "undecryptable", ..}`,
//! `{"event": "call_state", "call", "conv", "state", "caller",
//! "caller_device", "callee", "answered_by"}` for each `call_state` push,
//! `{"event": "call_signal", "call", "device", "sdp", "candidates"}` for
//! each `call_signal` push opened (`{"event": "call_signal_refused", "call",
//! "device", "error"}` for one that does not open) and `{"event": "closed"}`.
//!
//! Run: `cargo run -p chatcore-client --example e2e_peer`.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::{Arc, Mutex};

use chatcore_client::chatcore::model::{CallMedia, ConversationId, DeviceId, UserId};
use chatcore_client::chatcore::protocol::{
    CallInfo, CallSignal, CallSignalPush, ContactAction, HangupReason, IceCandidate, ServerFrame,
};
use chatcore_client::secure::{Body, MemoryStore, SecureClient, SecureEvent, SecureOptions};
use chatcore_client::{Client, ConnectOptions, Registration};
use serde_json::{json, Value};

fn out(value: Value) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    // A closed pipe means the driver is gone: nothing left to tell.
    let _ = writeln!(stdout, "{value}");
    let _ = stdout.flush();
}

/// The calls this peer heard of (from `call_state` pushes and replies), by
/// id: who is on the other side, and from which device.
static CALLS: Mutex<Option<HashMap<String, CallInfo>>> = Mutex::new(None);

fn remember(call: &CallInfo) {
    let mut calls = CALLS.lock().unwrap_or_else(|p| p.into_inner());
    calls
        .get_or_insert_with(HashMap::new)
        .insert(call.call.clone(), call.clone());
}

fn known_call(call: &str) -> Option<CallInfo> {
    let calls = CALLS.lock().unwrap_or_else(|p| p.into_inner());
    calls.as_ref().and_then(|c| c.get(call).cloned())
}

/// The other side of `call` for the user `me`: its user, and its device in
/// the call when known.
fn other_side(call: &CallInfo, me: &UserId) -> (UserId, Option<DeviceId>) {
    if call.caller == *me {
        (call.callee.clone(), call.answered_by.clone())
    } else {
        (call.caller.clone(), Some(call.caller_device.clone()))
    }
}

fn call_state_event(call: &CallInfo) -> Value {
    json!({
        "event": "call_state", "call": call.call, "conv": call.conv.as_str(),
        "state": call.state, "caller": call.caller.as_str(),
        "caller_device": call.caller_device.as_str(), "callee": call.callee.as_str(),
        "answered_by": call.answered_by.as_ref().map(DeviceId::as_str),
    })
}

/// Opens a `call_signal` push and prints what it carried.
async fn open_signal(secure: SecureClient, push: CallSignalPush) {
    let Some(call) = known_call(&push.call) else {
        out(json!({
            "event": "call_signal_refused", "call": push.call, "device": push.device.as_str(),
            "error": "a signal of an unknown call",
        }));
        return;
    };
    let (peer, _) = other_side(&call, &secure.user());
    match secure.open_call_signal(&peer, &push).await {
        Ok(signal) => out(json!({
            "event": "call_signal", "call": push.call, "device": push.device.as_str(),
            "sdp": signal.sdp, "candidates": signal.candidates,
        })),
        Err(e) => out(json!({
            "event": "call_signal_refused", "call": push.call, "device": push.device.as_str(),
            "error": e.to_string(),
        })),
    }
}

fn field<'a>(cmd: &'a Value, name: &str) -> Result<&'a str, String> {
    cmd[name]
        .as_str()
        .ok_or_else(|| format!("missing string field {name}"))
}

async fn register(cmd: &Value) -> Result<SecureClient, String> {
    let (client, events) = Client::connect(field(cmd, "url")?, ConnectOptions::new())
        .await
        .map_err(|e| e.to_string())?;
    let session = client
        .register(&Registration {
            username: field(cmd, "username")?.to_owned(),
            email: field(cmd, "email")?.to_owned(),
            phone: field(cmd, "phone")?.to_owned(),
            display_name: field(cmd, "username")?.to_owned(),
            password: field(cmd, "password")?.to_owned(),
            device: "rust-peer".to_owned(),
        })
        .await
        .map_err(|e| e.to_string())?;
    start(client, events, session).await
}

async fn login(cmd: &Value) -> Result<SecureClient, String> {
    let (client, events) = Client::connect(field(cmd, "url")?, ConnectOptions::new())
        .await
        .map_err(|e| e.to_string())?;
    let session = client
        .login(
            field(cmd, "login")?,
            field(cmd, "password")?,
            field(cmd, "device")?,
        )
        .await
        .map_err(|e| e.to_string())?;
    start(client, events, session).await
}

async fn start(
    client: Client,
    events: chatcore_client::Events,
    session: chatcore_client::SessionInfo,
) -> Result<SecureClient, String> {
    let options = SecureOptions::new(Arc::new(MemoryStore::default()), [5; 32]);
    let (secure, mut events) = SecureClient::start(client, events, &session, options)
        .await
        .map_err(|e| e.to_string())?;
    let opener = secure.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                SecureEvent::Message(m) | SecureEvent::Decrypted(m) => match (&m.body, m.text()) {
                    (Body::Undecryptable { reason }, _) => out(json!({
                        "event": "undecryptable", "conv": m.message.conv.as_str(), "reason": reason,
                    })),
                    (_, Some(text)) => out(json!({
                        "event": "message", "conv": m.message.conv.as_str(),
                        "from": m.message.from.as_str(), "text": text,
                    })),
                    _ => {}
                },
                SecureEvent::Push(ServerFrame::CallState { id: None, call }) => {
                    remember(&call);
                    out(call_state_event(&call));
                }
                // Opened in a task of its own: opening may query keys, and
                // their reply must not wait behind this loop.
                SecureEvent::Push(ServerFrame::CallSignal(push)) => {
                    tokio::spawn(open_signal(opener.clone(), *push));
                }
                SecureEvent::Closed(_) => {
                    out(json!({ "event": "closed" }));
                    break;
                }
                _ => {}
            }
        }
    });
    Ok(secure)
}

async fn run(secure: &mut Option<SecureClient>, cmd: &Value) -> Result<Value, String> {
    if cmd["cmd"] == "register" || cmd["cmd"] == "login" {
        let s = if cmd["cmd"] == "register" {
            register(cmd).await?
        } else {
            login(cmd).await?
        };
        let reply = json!({ "user": s.user().as_str(), "device": s.device().as_str() });
        *secure = Some(s);
        return Ok(reply);
    }
    let s = secure.as_ref().ok_or("register first")?;
    match field(cmd, "cmd")? {
        "contact" => {
            let action = match field(cmd, "action")? {
                "request" => ContactAction::Request,
                "accept" => ContactAction::Accept,
                other => return Err(format!("unknown action {other}")),
            };
            let user = UserId::from(field(cmd, "user")?);
            s.client()
                .contact(&user, action)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({}))
        }
        "create_group" => {
            let members: Vec<UserId> = cmd["members"]
                .as_array()
                .ok_or("members is a list")?
                .iter()
                .filter_map(Value::as_str)
                .map(UserId::from)
                .collect();
            let info = s
                .client()
                .create_encrypted_group(field(cmd, "title")?, None, &members)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({ "conv": info.conv.as_str() }))
        }
        "send" => {
            let conv = ConversationId::from(field(cmd, "conv")?);
            let sent = s
                .send_encrypted(&conv, field(cmd, "text")?)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({ "id": sent.message_id.as_str() }))
        }
        "safety_number" => {
            let user = UserId::from(field(cmd, "user")?);
            let number = s.safety_number(&user).await.map_err(|e| e.to_string())?;
            Ok(json!({ "number": number }))
        }
        "enable_backup" => {
            let recovery_key = s.enable_backup().await.map_err(|e| e.to_string())?;
            Ok(json!({ "recovery_key": recovery_key }))
        }
        "history" => {
            let conv = ConversationId::from(field(cmd, "conv")?);
            let page = s
                .history(&conv, None, Some(200))
                .await
                .map_err(|e| e.to_string())?;
            let texts: Vec<&str> = page
                .messages
                .iter()
                .filter(|m| matches!(m.body, Body::Text { .. }))
                .filter_map(|m| m.text())
                .collect();
            Ok(json!({ "texts": texts }))
        }
        "restore_backup" => {
            let restored = s
                .restore_backup(field(cmd, "recovery_key")?)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({
                "imported": restored.imported,
                "refused": restored.refused,
                "verified": restored.verified,
            }))
        }
        "open_direct" => {
            let user = UserId::from(field(cmd, "user")?);
            let info = s
                .client()
                .open_encrypted_direct(&user)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({ "conv": info.conv.as_str() }))
        }
        "call_invite" => {
            let conv = ConversationId::from(field(cmd, "conv")?);
            let peer = UserId::from(field(cmd, "peer")?);
            let media: CallMedia =
                serde_json::from_value(cmd["media"].clone()).map_err(|e| e.to_string())?;
            let call = match cmd["call"].as_str() {
                Some(call) => call.to_owned(),
                None => uuid::Uuid::new_v4().to_string(),
            };
            let plain = CallSignal {
                sdp: Some(field(cmd, "sdp")?.to_owned()),
                ..CallSignal::default()
            };
            let sealed = s
                .seal_call_signal(&call, &conv, &peer, None, &plain)
                .await
                .map_err(|e| e.to_string())?;
            let info = s
                .client()
                .call_invite(&call, &conv, media, sealed)
                .await
                .map_err(|e| e.to_string())?;
            remember(&info);
            Ok(json!({ "call": info.call, "state": info.state }))
        }
        "call_answer" => {
            let call = field(cmd, "call")?;
            let info = known_call(call).ok_or("a call this peer never heard of")?;
            let peer = cmd["peer"]
                .as_str()
                .map_or_else(|| info.caller.clone(), UserId::from);
            let device = cmd["device"]
                .as_str()
                .map_or_else(|| info.caller_device.clone(), DeviceId::from);
            let plain = CallSignal {
                sdp: Some(field(cmd, "sdp")?.to_owned()),
                ..CallSignal::default()
            };
            let sealed = s
                .seal_call_signal(call, &info.conv, &peer, Some(&[device]), &plain)
                .await
                .map_err(|e| e.to_string())?;
            let info = s
                .client()
                .call_answer(call, sealed)
                .await
                .map_err(|e| e.to_string())?;
            remember(&info);
            Ok(json!({ "state": info.state }))
        }
        "call_candidates" => {
            let call = field(cmd, "call")?;
            let info = known_call(call).ok_or("a call this peer never heard of")?;
            let candidates: Vec<IceCandidate> =
                serde_json::from_value(cmd["candidates"].clone()).map_err(|e| e.to_string())?;
            let (peer, device) = other_side(&info, &s.user());
            let devices = device.map(|d| vec![d]);
            let plain = CallSignal {
                candidates,
                ..CallSignal::default()
            };
            let sealed = s
                .seal_call_signal(call, &info.conv, &peer, devices.as_deref(), &plain)
                .await
                .map_err(|e| e.to_string())?;
            s.client()
                .call_candidates(call, sealed)
                .await
                .map_err(|e| e.to_string())?;
            Ok(json!({}))
        }
        "call_hangup" => {
            let reason: HangupReason = match cmd.get("reason") {
                Some(r) => serde_json::from_value(r.clone()).map_err(|e| e.to_string())?,
                None => HangupReason::Hangup,
            };
            let info = s
                .client()
                .call_hangup(field(cmd, "call")?, reason)
                .await
                .map_err(|e| e.to_string())?;
            remember(&info);
            Ok(json!({ "state": info.state }))
        }
        other => Err(format!("unknown command {other}")),
    }
}

#[tokio::main]
async fn main() {
    // stdin is read on a thread of its own (tokio's io-std is not enabled here).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut secure = None;
    while let Some(line) = rx.recv().await {
        if line.trim().is_empty() {
            continue;
        }
        let cmd: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                out(json!({ "reply": null, "error": format!("not JSON: {e}") }));
                continue;
            }
        };
        if cmd["cmd"] == "quit" {
            break;
        }
        let name = cmd["cmd"].clone();
        match run(&mut secure, &cmd).await {
            Ok(Value::Object(mut fields)) => {
                fields.insert("reply".into(), name);
                out(Value::Object(fields));
            }
            Ok(_) => out(json!({ "reply": name })),
            Err(e) => out(json!({ "reply": name, "error": e })),
        }
    }
}
