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
//! - `{"cmd": "quit"}`.
//!
//! Events are lines `{"event": "message", "conv", "from", "text"}` for each
//! message read (live or once its key came), `{"event": "undecryptable", ..}`
//! and `{"event": "closed"}`.
//!
//! Run: `cargo run -p chatcore-client --example e2e_peer`.

use std::io::BufRead;
use std::sync::Arc;

use chatcore_client::chatcore::model::{ConversationId, UserId};
use chatcore_client::chatcore::protocol::ContactAction;
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
