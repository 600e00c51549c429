//! End-to-end encrypted conversations through `chatcore_client::secure`
//! against the real chatd: users with several devices in a direct
//! conversation and a group, a removed member, a logged-out device, a new
//! device verified by another (history forwarded) beside an unverified one,
//! safety numbers, a call whose signals are sealed both ways (and refused
//! in another call, or plain), and no plaintext in the store afterwards: every
//! collection of MongoDB, and, with the engine in-process on
//! `Backends::memory()` behind a WebSocket bridge, the memory stores read
//! through the store traits.

use super::*;
use chatcore_client::chatcore::model::{Audience, DeviceId, Message as ChatMessage};
use chatcore_client::chatcore::protocol::ContactAction;
use chatcore_client::secure::{
    Body, MemoryStore, SecureClient, SecureEvent, SecureEvents, SecureOptions,
};
use std::sync::Arc;

/// One signed-in device with its encrypted client.
struct Dev {
    name: String,
    secure: SecureClient,
    events: SecureEvents,
    token: Option<String>,
}

impl Dev {
    fn user(&self) -> UserId {
        self.secure.user()
    }

    fn device(&self) -> DeviceId {
        self.secure.device()
    }
}

async fn start(name: &str, client: Client, events: Events, session: SessionInfo) -> Dev {
    let options = SecureOptions::new(Arc::new(MemoryStore::default()), [9; 32]);
    let token = session.token.clone();
    let (secure, events) = timeout(T, SecureClient::start(client, events, &session, options))
        .await
        .expect("secure start timed out")
        .expect("secure start");
    Dev {
        name: name.to_owned(),
        secure,
        events,
        token,
    }
}

async fn connect(url: &str) -> (Client, Events) {
    timeout(T, Client::connect(url, ConnectOptions::new()))
        .await
        .expect("connect timed out")
        .expect("connect failed")
}

/// A new user on its first device.
async fn first_device(url: &str, user: &str) -> Dev {
    let (client, events) = connect(url).await;
    let session = client
        .register(&registration(user))
        .await
        .expect("register");
    start(&format!("{user}1"), client, events, session).await
}

/// Another device of `user`: a new sign-in.
async fn other_device(url: &str, user: &str, device: &str) -> Dev {
    let (client, events) = connect(url).await;
    let session = client.login(user, PASSWORD, device).await.expect("login");
    start(device, client, events, session).await
}

async fn contacts(a: &Dev, b: &Dev) {
    a.secure
        .client()
        .contact(&b.user(), ContactAction::Request)
        .await
        .expect("contact request");
    b.secure
        .client()
        .contact(&a.user(), ContactAction::Accept)
        .await
        .expect("contact accept");
}

/// Waits until `dev` reads `text` in `conv`, live or once its key came.
async fn reads(dev: &mut Dev, conv: &ConversationId, text: &str) {
    let name = dev.name.clone();
    timeout(T, async {
        loop {
            match dev.events.recv().await {
                Some(SecureEvent::Message(m) | SecureEvent::Decrypted(m))
                    if m.message.conv == *conv && m.text() == Some(text) =>
                {
                    return
                }
                Some(SecureEvent::Closed(c)) => panic!("{name} closed ({c:?})"),
                None => panic!("{name}: events ended"),
                Some(_) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} never read {text:?}"));
}

/// Waits until `dev` read every one of `texts` (in any order).
async fn reads_all(dev: &mut Dev, texts: &[(ConversationId, String)]) {
    let name = dev.name.clone();
    let mut left: Vec<(ConversationId, String)> = texts.to_vec();
    timeout(T, async {
        while !left.is_empty() {
            match dev.events.recv().await {
                Some(SecureEvent::Message(m) | SecureEvent::Decrypted(m)) => {
                    if let Some(text) = m.text() {
                        left.retain(|(c, t)| !(*c == m.message.conv && t == text));
                    }
                }
                Some(SecureEvent::Closed(c)) => panic!("{name} closed ({c:?})"),
                None => panic!("{name}: events ended"),
                Some(_) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} never read {left:?}"));
}

/// Processes what `dev` was sent until it stays quiet for a moment; the
/// texts it read meanwhile.
async fn settle(dev: &mut Dev) -> Vec<String> {
    let mut read = Vec::new();
    while let Ok(Some(event)) = timeout(Duration::from_millis(700), dev.events.recv()).await {
        match event {
            SecureEvent::Message(m) | SecureEvent::Decrypted(m) => {
                read.extend(m.text().map(str::to_owned))
            }
            SecureEvent::Closed(c) => panic!("{} closed ({c:?})", dev.name),
            _ => {}
        }
    }
    read
}

/// Sends `text` from `dev` to `conv` and records it among the plaintexts.
async fn say(dev: &Dev, conv: &ConversationId, text: &str, sent: &mut Vec<String>) {
    timeout(T, dev.secure.send_encrypted(conv, text))
        .await
        .expect("send timed out")
        .unwrap_or_else(|e| panic!("{} cannot send {text:?}: {e}", dev.name));
    sent.push(text.to_owned());
}

/// The whole history of `conv` as `dev` reads it.
/// The user's current key backup, which must exist.
async fn current_backup(dev: &Dev) -> chatcore_client::chatcore::protocol::BackupInfo {
    dev.secure
        .client()
        .get_backup()
        .await
        .expect("get backup")
        .expect("a backup")
}

async fn history(dev: &Dev, conv: &ConversationId) -> Vec<(ChatMessage, Body)> {
    let chatcore_client::secure::SecurePage {
        messages: page,
        more,
        ..
    } = dev
        .secure
        .history(conv, None, Some(200))
        .await
        .expect("history");
    assert!(!more);
    page.into_iter().map(|m| (m.message, m.body)).collect()
}

fn readable(page: &[(ChatMessage, Body)]) -> Vec<String> {
    page.iter()
        .filter_map(|(_, b)| match b {
            Body::Text { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

fn last_encrypted(page: &[(ChatMessage, Body)]) -> ChatMessage {
    page.iter()
        .rev()
        .find(|(m, _)| matches!(m.content, Content::Encrypted { .. }))
        .map(|(m, _)| m.clone())
        .expect("an encrypted message")
}

/// Runs the whole story on the server at `url`; returns every plaintext sent.
pub(crate) async fn scenario(url: &str) -> Vec<String> {
    let mut sent = Vec::new();
    let mut alice1 = first_device(url, "alice").await;
    let mut alice2 = other_device(url, "alice", "alice2").await;
    let mut bob1 = first_device(url, "bob").await;
    let mut bob2 = other_device(url, "bob", "bob2").await;
    let mut carol1 = first_device(url, "carol").await;
    let mut carol2 = other_device(url, "carol", "carol2").await;
    contacts(&alice1, &bob1).await;
    contacts(&alice1, &carol1).await;
    // Bob and Carol are not contacts and take direct conversations from
    // contacts only: each reaches the other's keys only through the group.
    for dev in [&bob1, &carol1] {
        dev.secure
            .client()
            .set_privacy(Some(Audience::Contacts), None, None)
            .await
            .expect("privacy");
    }

    // A direct conversation: every device of both users reads every
    // message, the sender's own other device included.
    let dm = alice1
        .secure
        .client()
        .open_encrypted_direct(&bob1.user())
        .await
        .expect("open encrypted direct")
        .conv;
    let t = "zebra-dm-1 alice1 to bob";
    say(&alice1, &dm, t, &mut sent).await;
    for dev in [&mut alice2, &mut bob1, &mut bob2] {
        reads(dev, &dm, t).await;
    }
    let t = "zebra-dm-2 bob2 to alice";
    say(&bob2, &dm, t, &mut sent).await;
    for dev in [&mut alice1, &mut alice2, &mut bob1] {
        reads(dev, &dm, t).await;
    }
    let t = "zebra-dm-3 alice2 answers";
    say(&alice2, &dm, t, &mut sent).await;
    for dev in [&mut alice1, &mut bob1, &mut bob2] {
        reads(dev, &dm, t).await;
    }

    // A group of three users with two devices each.
    let group = alice1
        .secure
        .client()
        .create_encrypted_group("Secret tea", None, &[bob1.user(), carol1.user()])
        .await
        .expect("create encrypted group")
        .conv;
    let t = "zebra-group-1 alice1 to all";
    say(&alice1, &group, t, &mut sent).await;
    for dev in [&mut alice2, &mut bob1, &mut bob2, &mut carol1, &mut carol2] {
        reads(dev, &group, t).await;
    }
    let t = "zebra-group-2 carol1 to all";
    say(&carol1, &group, t, &mut sent).await;
    for dev in [&mut alice1, &mut alice2, &mut bob1, &mut bob2, &mut carol2] {
        reads(dev, &group, t).await;
    }

    // Bob is removed: what is sent afterwards is beyond his keys.
    alice1
        .secure
        .client()
        .remove_member(&group, &bob1.user())
        .await
        .expect("remove bob");
    let t = "zebra-group-3 after bob was removed";
    say(&alice1, &group, t, &mut sent).await;
    for dev in [&mut alice2, &mut carol1, &mut carol2] {
        reads(dev, &group, t).await;
    }
    let after_removal = last_encrypted(&history(&carol1, &group).await);
    for bob in [&mut bob1, &mut bob2] {
        let read = settle(bob).await;
        assert!(
            !read.iter().any(|r| r.contains("group-3")),
            "{} read a message sent after the removal",
            bob.name
        );
        let attempt = bob.secure.decrypt_message(after_removal.clone());
        assert!(
            !matches!(attempt.body, Body::Text { .. }),
            "{} decrypts a message sent after its removal: {:?}",
            bob.name,
            attempt.body
        );
    }

    // A logged-out device gets nothing more: its token is dead, so no
    // connection of it receives later messages or keys.
    let bob2_token = bob2.token.clone().expect("login hands out a token");
    bob2.secure.client().logout().await.expect("logout");
    drop(bob2);
    let t = "zebra-dm-4 bob1 after bob2 logged out";
    say(&bob1, &dm, t, &mut sent).await;
    for dev in [&mut alice1, &mut alice2] {
        reads(dev, &dm, t).await;
    }
    let (again, _) = connect(url).await;
    assert!(
        again.resume(&bob2_token).await.is_err(),
        "a logged-out device signs in again"
    );

    // Safety numbers: the same on both sides.
    let alice_bob = alice1.secure.safety_number(&bob1.user()).await.expect("sn");
    let bob_alice = bob1.secure.safety_number(&alice1.user()).await.expect("sn");
    assert_eq!(alice_bob, bob_alice, "both sides see one safety number");
    assert_eq!(
        alice2.secure.safety_number(&bob1.user()).await.expect("sn"),
        alice_bob,
        "an unverified own device sees it too"
    );

    // Two new devices of alice: neither reads the history yet.
    let mut alice3 = other_device(url, "alice", "alice3").await;
    let mut alice4 = other_device(url, "alice", "alice4").await;
    for dev in [&alice3, &alice4] {
        for conv in [&dm, &group] {
            let page = history(dev, conv).await;
            assert!(
                readable(&page).is_empty(),
                "{} reads history before it was verified: {:?}",
                dev.name,
                readable(&page)
            );
        }
    }
    // Alice confirms alice3 on alice1: it is signed, gets the master key
    // and the conversation keys, and reads every earlier message.
    alice1
        .secure
        .verify_device(&alice3.device())
        .await
        .expect("verify alice3");
    let earlier: Vec<(ConversationId, String)> = sent
        .iter()
        .map(|t| {
            let conv = if t.contains("-dm-") { &dm } else { &group };
            (conv.clone(), t.clone())
        })
        .collect();
    reads_all(&mut alice3, &earlier).await;
    let mut forwarded = readable(&history(&alice3, &dm).await);
    forwarded.extend(readable(&history(&alice3, &group).await));
    let mut expected: Vec<String> = earlier.iter().map(|(_, t)| t.clone()).collect();
    forwarded.sort();
    expected.sort();
    assert_eq!(forwarded, expected, "alice3 reads the whole history");
    assert_eq!(
        alice1.secure.device_trust(&alice3.user(), &alice3.device()),
        chatcore_client::e2e::DeviceTrust::Verified
    );
    // It holds the master key now, so it can verify later devices.
    assert!(alice3
        .secure
        .with_machine(|m| m.has_master_key())
        .expect("saved"));

    // The unverified alice4 got none of it.
    let read = settle(&mut alice4).await;
    assert!(
        read.is_empty(),
        "the unverified device read forwarded history: {read:?}"
    );
    for conv in [&dm, &group] {
        let page = history(&alice4, conv).await;
        assert!(
            readable(&page).is_empty(),
            "the unverified device reads history: {:?}",
            readable(&page)
        );
    }
    // New messages reach every current device, verified or not.
    let t = "zebra-group-4 alice3 writes";
    say(&alice3, &group, t, &mut sent).await;
    for dev in [&mut alice1, &mut alice4, &mut carol1, &mut carol2] {
        reads(dev, &group, t).await;
    }

    // Adding devices changed no safety number.
    assert_eq!(
        alice3.secure.safety_number(&bob1.user()).await.expect("sn"),
        alice_bob
    );
    assert_eq!(
        alice1.secure.safety_number(&bob1.user()).await.expect("sn"),
        alice_bob
    );
    assert_eq!(
        bob1.secure.safety_number(&alice1.user()).await.expect("sn"),
        alice_bob
    );
    sent
}

#[tokio::test]
async fn encrypted_conversations_across_devices_on_the_memory_store() {
    let chatd = Chatd::start(&[]).await;
    let sent = scenario(&chatd.url()).await;
    assert!(sent.len() >= 8);
}

/// The engine in this process on `Backends::memory()`, served over
/// WebSocket by a minimal bridge (chatd's own listener is a binary), so
/// that the test can read the memory stores afterwards.
async fn serve_in_process(server: Arc<chatcore_client::chatcore::Server>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(bridge(server.clone(), stream));
        }
    });
    format!("ws://{addr}/ws")
}

/// One WebSocket connection bridged to an in-process session.
// The handshake callback's error type is tungstenite's, not ours.
#[allow(clippy::result_large_err)]
async fn bridge(server: Arc<chatcore_client::chatcore::Server>, stream: TcpStream) {
    use chatcore_client::chatcore::session::{connect_in_process, InProcess, PeerInfo};
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::Message;

    let mut codec = Codec::MsgPack;
    let choose = |req: &Request, mut resp: Response| {
        let offered = req
            .headers()
            .get("Sec-WebSocket-Protocol")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if let Some(c) = offered
            .split(',')
            .find_map(|p| Codec::from_subprotocol(p.trim()))
        {
            resp.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_static(c.subprotocol()),
            );
            codec = c;
        }
        Ok(resp)
    };
    let Ok(ws) = tokio_tungstenite::accept_hdr_async(stream, choose).await else {
        return;
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let InProcess { mut tx, mut rx, .. } =
        connect_in_process(server, PeerInfo::default(), 256, shutdown.clone());
    let (mut sink, mut source) = ws.split();
    let up = async {
        while let Some(Ok(message)) = source.next().await {
            let bytes = match message {
                Message::Binary(b) => b.to_vec(),
                Message::Text(t) => t.as_str().as_bytes().to_vec(),
                Message::Close(_) => break,
                _ => continue,
            };
            if tx.send(codec.decode_client(&bytes)).await.is_err() {
                break;
            }
        }
    };
    let down = async {
        while let Some(frame) = rx.next().await {
            let bytes = codec.encode(&frame).expect("encode");
            let message = if codec.is_text() {
                Message::Text(String::from_utf8(bytes).expect("json").into())
            } else {
                Message::Binary(bytes.into())
            };
            if sink.send(message).await.is_err() {
                return;
            }
        }
        let _ = sink.send(Message::Close(None)).await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    shutdown.cancel();
}

/// What the memory stores hold, read through the store traits: every
/// conversation of every user with its whole history, and every to-device
/// payload still queued for any of their devices, as debug text.
async fn dump_memory(backends: &chatcore_client::chatcore::Backends, users: &[UserId]) -> String {
    use chatcore_client::chatcore::store::Listing;
    let mut dump = String::new();
    for user in users {
        let record = backends.users.get(user).await.expect("user");
        dump.push_str(&format!("{record:?}\n"));
        let convs = backends
            .messages
            .conversations(user, Listing::All, None, 1000)
            .await
            .expect("conversations");
        for conv in convs {
            dump.push_str(&format!("{conv:?}\n"));
            let history = backends
                .messages
                .history(&conv.conv, None, 10_000)
                .await
                .expect("history");
            dump.push_str(&format!("{history:?}\n"));
        }
        let devices = backends.keys.identities(user).await.expect("devices");
        dump.push_str(&format!("{devices:?}\n"));
        for device in devices {
            let pending = backends
                .to_device
                .pending(user, &device.device, 10_000)
                .await
                .expect("pending");
            dump.push_str(&format!("{pending:?}\n"));
        }
        if let Some(backup) = backends.backups.current(user).await.expect("backup") {
            dump.push_str(&format!("{backup:?}\n"));
            let keys = backends
                .backups
                .keys(user, &backup.version, None, 100_000)
                .await
                .expect("backup keys");
            dump.push_str(&format!("{keys:?}\n"));
        }
    }
    dump
}

/// The engine in this process on `Backends::memory()`: its stores and the
/// URL of its WebSocket bridge.
async fn in_process() -> (chatcore_client::chatcore::Backends, String) {
    use chatcore_client::chatcore::{Backends, Config, Server};
    let backends = Backends::memory();
    let mut config = Config::default();
    config.argon2.m_kib = 64;
    let server = tokio::task::spawn_blocking({
        let backends = backends.clone();
        move || Server::new(backends, config).expect("server")
    })
    .await
    .expect("server starts");
    let url = serve_in_process(server).await;
    (backends, url)
}

/// Alice turns the key backup on and chats encrypted with Bob and Carol
/// (a direct conversation and a group); then she signs out of her only
/// device, signs in on a fresh one with no other device of hers online,
/// and restores with the recovery key: she reads the whole history, her
/// new device is verified (signed with the master key sealed in the
/// backup) and Bob sees it so; the stores, the backup included, hold no
/// plaintext.
#[tokio::test]
async fn a_restored_key_backup_reads_the_whole_history_on_a_fresh_device() {
    use chatcore_client::e2e::{DeviceTrust, E2eError, RecoveryKey};
    use chatcore_client::secure::SecureError;
    let (backends, url) = in_process().await;
    let url = url.as_str();
    let mut sent = Vec::new();
    let mut alice1 = first_device(url, "alice").await;
    let mut bob1 = first_device(url, "bob").await;
    let mut carol1 = first_device(url, "carol").await;
    contacts(&alice1, &bob1).await;
    contacts(&alice1, &carol1).await;
    let recovery = timeout(T, alice1.secure.enable_backup())
        .await
        .expect("enable timed out")
        .expect("enable backup");
    assert_eq!(recovery.split(' ').count(), 11, "{recovery}");

    let dm = alice1
        .secure
        .client()
        .open_encrypted_direct(&bob1.user())
        .await
        .expect("open encrypted direct")
        .conv;
    let t = "walrus-dm-1 alice to bob";
    say(&alice1, &dm, t, &mut sent).await;
    reads(&mut bob1, &dm, t).await;
    let t = "walrus-dm-2 bob to alice";
    say(&bob1, &dm, t, &mut sent).await;
    reads(&mut alice1, &dm, t).await;
    let group = alice1
        .secure
        .client()
        .create_encrypted_group("Backed up", None, &[bob1.user(), carol1.user()])
        .await
        .expect("create encrypted group")
        .conv;
    let t = "walrus-group-1 alice to all";
    say(&alice1, &group, t, &mut sent).await;
    reads(&mut bob1, &group, t).await;
    reads(&mut carol1, &group, t).await;
    let t = "walrus-group-2 carol to all";
    say(&carol1, &group, t, &mut sent).await;
    reads(&mut alice1, &group, t).await;
    let t = "walrus-group-3 bob to all";
    say(&bob1, &group, t, &mut sent).await;
    reads(&mut alice1, &group, t).await;
    // Alice's own two sessions and the three she received: each backed up
    // once it was made or received.
    let backup = current_backup(&alice1).await;
    assert_eq!(backup.count, 5, "{backup:?}");

    // Alice signs out of her only device.
    alice1.secure.client().logout().await.expect("logout");
    drop(alice1);
    let mut alice9 = other_device(url, "alice", "alice9").await;
    for conv in [&dm, &group] {
        let page = history(&alice9, conv).await;
        assert!(readable(&page).is_empty(), "read before the restore");
    }
    // A mistyped key, and another backup's key, are refused.
    let mistyped = recovery.replacen(
        &recovery[3..4],
        if &recovery[3..4] == "A" { "B" } else { "A" },
        1,
    );
    let refused = alice9.secure.restore_backup(&mistyped).await;
    assert!(
        matches!(refused, Err(SecureError::E2e(E2eError::RecoveryKey(_)))),
        "{refused:?}"
    );
    let other = RecoveryKey::generate().expect("random").to_text();
    let refused = alice9.secure.restore_backup(&other).await;
    assert!(
        matches!(refused, Err(SecureError::E2e(E2eError::WrongRecoveryKey))),
        "{refused:?}"
    );
    assert!(
        !alice9
            .secure
            .with_machine(|m| m.has_master_key())
            .expect("m"),
        "a refused restore unsealed the master key"
    );

    let restored = timeout(T, alice9.secure.restore_backup(&recovery.to_lowercase()))
        .await
        .expect("restore timed out")
        .expect("restore");
    assert_eq!(
        (restored.imported, restored.refused),
        (5, 0),
        "{restored:?}"
    );
    assert!(restored.verified);
    let mut read = readable(&history(&alice9, &dm).await);
    read.extend(readable(&history(&alice9, &group).await));
    read.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(read, expected, "alice9 reads the whole history");
    for (_, body) in history(&alice9, &group).await {
        if let Body::Text { forwarded, .. } = body {
            assert!(forwarded, "a restored key counts as not from its sender");
        }
    }
    assert!(alice9
        .secure
        .with_machine(|m| m.has_master_key())
        .expect("m"));

    // Bob sees alice9 signed by Alice's master key, and they go on.
    let t = "walrus-dm-3 bob after the restore";
    say(&bob1, &dm, t, &mut sent).await;
    reads(&mut alice9, &dm, t).await;
    assert_eq!(
        bob1.secure.device_trust(&alice9.user(), &alice9.device()),
        DeviceTrust::Verified
    );
    let t = "walrus-group-4 alice9 writes";
    say(&alice9, &group, t, &mut sent).await;
    reads(&mut carol1, &group, t).await;
    // alice9 follows the backup: its new session and Bob's are in it.
    let backup = current_backup(&alice9).await;
    assert_eq!(backup.count, 7, "{backup:?}");

    // Another device made a new backup: alice9's next upload meets
    // not_found, and it follows the new one and uploads everything again.
    let new_key = RecoveryKey::generate().expect("random");
    let new = alice9
        .secure
        .with_machine(|m| m.create_backup(&new_key))
        .expect("saved")
        .expect("a backup");
    let v2 = alice9
        .secure
        .client()
        .create_backup(&new.algorithm, &new.auth_data)
        .await
        .expect("create backup");
    let t = "walrus-dm-4 alice9 writes";
    say(&alice9, &dm, t, &mut sent).await;
    reads(&mut bob1, &dm, t).await;
    let backup = current_backup(&alice9).await;
    assert_eq!(backup.version, v2.version);
    assert_eq!(backup.count, 8, "{backup:?}");

    let users = vec![alice9.user(), bob1.user(), carol1.user()];
    let dump = dump_memory(&backends, &users).await;
    assert!(
        dump.contains("chatcore.backup.v1"),
        "the dump holds no backup"
    );
    assert!(
        dump.contains("megolm.v1"),
        "the dump holds no encrypted message"
    );
    for text in &sent {
        assert!(
            !dump.contains(text.as_str()),
            "the plaintext {text:?} is in the memory store"
        );
    }

    // A backup that Alice's master key did not sign (the server shows
    // Bob's): not followed, nothing uploaded to it, and not restored.
    let forged = bob1
        .secure
        .with_machine(|m| m.create_backup(&new_key))
        .expect("saved")
        .expect("a backup");
    alice9
        .secure
        .client()
        .create_backup(&forged.algorithm, &forged.auth_data)
        .await
        .expect("create backup");
    alice9
        .secure
        .with_machine(|m| m.rotate(&group))
        .expect("saved");
    let t = "walrus-group-5 alice9 on a new session";
    say(&alice9, &group, t, &mut sent).await;
    reads(&mut carol1, &group, t).await;
    let backup = current_backup(&alice9).await;
    assert_eq!(backup.count, 0, "keys went to a forged backup: {backup:?}");
    let refused = alice9.secure.restore_backup(&new_key.to_text()).await;
    assert!(
        matches!(refused, Err(SecureError::E2e(E2eError::BadSignature(_)))),
        "{refused:?}"
    );
    // No backup at all.
    alice9
        .secure
        .client()
        .delete_backup(&backup.version)
        .await
        .expect("delete backup");
    let refused = alice9.secure.restore_backup(&recovery).await;
    assert!(
        matches!(refused, Err(SecureError::Refused(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn encrypted_conversations_leave_no_plaintext_in_the_memory_stores() {
    let (backends, url) = in_process().await;
    let sent = scenario(&url).await;
    let mut users = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let (client, _events) = connect(&url).await;
        let session = client.login(name, PASSWORD, "scan").await.expect("login");
        users.push(session.user);
    }
    assert_eq!(users.len(), 3);
    let dump = dump_memory(&backends, &users).await;
    assert!(dump.contains("alice@example.com"), "the dump holds no user");
    assert!(
        dump.contains("megolm.v1"),
        "the dump holds no encrypted message"
    );
    for text in &sent {
        assert!(
            !dump.contains(text.as_str()),
            "the plaintext {text:?} is in the memory store"
        );
    }
}

/// Every document of every collection of the database at `uri`, as raw
/// BSON and as extended JSON text: fails if any holds one of `texts`.
async fn scan_mongo(uri: &str, texts: &[String]) {
    use chatcore_mongo::mongodb::bson::{self, Document};
    use futures_util::TryStreamExt;
    let client = chatcore_mongo::mongodb::Client::with_uri_str(uri)
        .await
        .expect("mongo client");
    let db = client.default_database().expect("the uri names a database");
    // jongodb has no `listCollections`: the store lists what it writes.
    let names = chatcore_mongo::COLLECTIONS;
    let mut dump: Vec<u8> = Vec::new();
    for name in names {
        let mut cursor = db
            .collection::<Document>(name)
            .find(bson::doc! {})
            .await
            .expect("find");
        while let Some(doc) = cursor.try_next().await.expect("next document") {
            dump.extend(bson::to_vec(&doc).expect("bson"));
            dump.extend(doc.to_string().into_bytes());
        }
    }
    // The scan sees the data: the users' addresses are stored in clear.
    assert!(
        contains(&dump, b"alice@example.com"),
        "the scan found no user in {names:?}"
    );
    assert!(
        contains(&dump, b"megolm.v1"),
        "the scan found no encrypted message in {names:?}"
    );
    for text in texts {
        assert!(
            !contains(&dump, text.as_bytes()),
            "the plaintext {text:?} is in the database"
        );
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn encrypted_conversations_on_mongodb_leave_no_plaintext_in_any_collection() {
    let server = chatcore_mongo::testing::Jongo::start(0).unwrap_or_else(|e| panic!("{e}"));
    let uri = format!(
        "mongodb://127.0.0.1:{}/chatd_e2e_{}",
        server.port,
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let chatd = Chatd::start(&["--store", &uri]).await;
    let mut sent = scenario(&chatd.url()).await;
    // And a file, stored in GridFS (`media.chunks`), which the scan reads.
    sent.push(encrypted_photo(&chatd.url()).await);
    scan_mongo(&uri, &sent).await;
}

/// Dora sends Eve a file in their encrypted conversation, encrypted before
/// its upload (docs/E2E.md, *Files*); Eve reads it as a media body (the key
/// inside the ciphertext), downloads and decrypts the same bytes. A file
/// whose bytes were changed on the way is refused. Returns the marker the
/// file's bytes hold, for the scans of what the server stored.
async fn encrypted_photo(url: &str) -> String {
    use chatcore_client::media::{decrypt_file, encrypt_file, MediaClient};
    let dora = first_device(url, "dora").await;
    let mut eve = first_device(url, "eve").await;
    contacts(&dora, &eve).await;
    let dm = dora
        .secure
        .client()
        .open_encrypted_direct(&eve.user())
        .await
        .expect("open encrypted direct")
        .conv;
    let marker = "zebra-file-bytes: the plaintext of a photo".to_owned();
    let bytes: Vec<u8> = marker.bytes().chain((0..20_000).map(|i| i as u8)).collect();
    let options = ConnectOptions::new();
    let media = |dev: &Dev| MediaClient::new(url, dev.token.as_deref().expect("a token"), &options);
    let (sealed, encryption) = encrypt_file(&bytes).expect("encrypt");
    let up = media(&dora).unwrap().upload(sealed).await.expect("upload");
    assert_eq!(
        up.sha256, encryption.sha256,
        "the server stored the ciphertext"
    );
    let content = Content::File {
        media: up.id.clone(),
        name: "photo.bin".into(),
        mime: "application/octet-stream".into(),
        size: bytes.len() as u64,
        encryption: Some(encryption),
    };
    // A key in the clear is refused by the client before the server.
    let mut plain = content.clone();
    if let Content::File { encryption, .. } = &mut plain {
        *encryption = None;
    }
    assert!(dora
        .secure
        .send_encrypted_media(&dm, "file-0", None, plain)
        .await
        .is_err());
    timeout(
        T,
        dora.secure
            .send_encrypted_media(&dm, "file-1", None, content.clone()),
    )
    .await
    .expect("send timed out")
    .expect("send encrypted media");
    let got = timeout(T, async {
        loop {
            match eve.events.recv().await {
                Some(SecureEvent::Message(m) | SecureEvent::Decrypted(m))
                    if m.message.conv == dm =>
                {
                    if let Body::Media { content, .. } = m.body {
                        return (m.message, content);
                    }
                }
                Some(SecureEvent::Closed(c)) => panic!("eve closed ({c:?})"),
                None => panic!("eve: events ended"),
                Some(_) => {}
            }
        }
    })
    .await
    .expect("eve never read the file");
    assert_eq!(
        got.0.media,
        std::slice::from_ref(&up.id),
        "listed in the envelope"
    );
    assert!(
        matches!(got.0.content, Content::Encrypted { .. }),
        "the server saw ciphertext"
    );
    assert_eq!(got.1, content);
    let Content::File {
        encryption: Some(key),
        ..
    } = &got.1
    else {
        panic!("a file with its key")
    };
    let downloaded = media(&eve)
        .unwrap()
        .download(&up.id, None)
        .await
        .expect("download");
    assert_ne!(downloaded, bytes);
    assert_eq!(decrypt_file(&downloaded, key).expect("decrypt"), bytes);
    let mut changed = downloaded.clone();
    changed[3] ^= 0x40;
    assert!(
        decrypt_file(&changed, key).is_err(),
        "a changed file is refused"
    );
    marker
}

#[tokio::test]
async fn an_encrypted_file_on_disk_holds_none_of_its_plaintext() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "e2e-encrypted-media-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let arg = format!("dir:{}", dir.display());
    let chatd = Chatd::start(&["--media", &arg]).await;
    let marker = encrypted_photo(&chatd.url()).await;
    let mut files = 0;
    for shard in std::fs::read_dir(&dir).expect("the media directory") {
        let shard = shard.expect("entry").path();
        if !shard.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&shard).expect("a shard") {
            let bytes = std::fs::read(f.expect("entry").path()).expect("a blob");
            assert!(
                !contains(&bytes, marker.as_bytes()),
                "the plaintext is on disk in {shard:?}"
            );
            files += 1;
        }
    }
    assert!(files >= 1, "the scan found no stored file in {dir:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The device's state survives a reconnect through a `FileStore`: a
/// resumed session (the same device) reads what it read before, from the
/// saved keys; the wrong key opens nothing; the file holds no plaintext.
/// A first device's master key whose upload never reached the server
/// (the state holding it is saved before it is sent): the next start
/// uploads the same key and its signature of the device, rather than keep
/// a key nobody else knows or make another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_key_whose_first_upload_failed_is_uploaded_at_the_next_start() {
    use chatcore_client::e2e::Machine;
    use chatcore_client::secure::MachineStore;
    let chatd = Chatd::start(&[]).await;
    let url = chatd.url();
    let (client, events) = connect(&url).await;
    let session = client
        .register(&registration("fern"))
        .await
        .expect("register");
    // The state as the failed first start left it: a master key made and
    // saved, nothing of it on the server.
    let mut machine = Machine::new(session.user.clone(), session.device.clone());
    let made = machine.create_master_key().expect("master key");
    let store = Arc::new(MemoryStore::default());
    store
        .save(&machine.to_bytes(&[9; 32]).expect("bytes"))
        .expect("saved");
    let (before, masters) = client
        .query_keys_full(std::slice::from_ref(&session.user), None)
        .await
        .expect("query");
    assert!(
        before.is_empty() && masters.is_empty(),
        "nothing uploaded yet"
    );

    let options = SecureOptions::new(store, [9; 32]);
    let (fern, _events) = timeout(T, SecureClient::start(client, events, &session, options))
        .await
        .expect("start timed out")
        .expect("start");
    let (devices, masters) = fern
        .client()
        .query_keys_full(std::slice::from_ref(&session.user), None)
        .await
        .expect("query");
    assert_eq!(masters.len(), 1, "the master key is on the server now");
    assert_eq!(masters[0].master_key, made.master_key, "the same key");
    assert_eq!(devices.len(), 1);
    assert_eq!(
        devices[0].master_signature.as_deref(),
        Some(made.device_signature.as_str()),
        "the device is signed by it"
    );
}

#[tokio::test]
async fn the_encrypted_state_is_saved_and_reopened_by_the_same_device() {
    use chatcore_client::secure::{FileStore, SecureError};
    let chatd = Chatd::start(&[]).await;
    let url = chatd.url();
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "e2e-state-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_file(&path);
    let key = [42; 32];

    let (client, events) = connect(&url).await;
    let session = client
        .register(&registration("dora"))
        .await
        .expect("register");
    let token = session.token.clone().expect("a token");
    let options = SecureOptions::new(Arc::new(FileStore::new(&path)), key);
    let (secure, events) = SecureClient::start(client, events, &session, options)
        .await
        .expect("start");
    let mut dora = Dev {
        name: "dora".into(),
        secure,
        events,
        token: Some(token.clone()),
    };
    let eve = first_device(&url, "eve").await;
    contacts(&dora, &eve).await;
    let conv = eve
        .secure
        .client()
        .open_encrypted_direct(&dora.user())
        .await
        .expect("open")
        .conv;
    let text = "zebra-saved a secret kept across restarts";
    say(&eve, &conv, text, &mut Vec::new()).await;
    reads(&mut dora, &conv, text).await;
    let device = dora.device();
    drop(dora);

    let saved = std::fs::read(&path).expect("the state is saved");
    assert!(
        !contains(&saved, text.as_bytes()),
        "the saved state holds plaintext"
    );

    // The wrong key opens nothing.
    let (client, events) = connect(&url).await;
    let session = client.resume(&token).await.expect("resume");
    let wrong = SecureOptions::new(Arc::new(FileStore::new(&path)), [7; 32]);
    let refused = SecureClient::start(client, events, &session, wrong).await;
    assert!(
        matches!(refused, Err(SecureError::E2e(_))),
        "a wrong key opened the state: {refused:?}"
    );

    // The right key: the same device, reading the same history.
    let (client, events) = connect(&url).await;
    let session = client.resume(&token).await.expect("resume");
    assert_eq!(session.device, device);
    let options = SecureOptions::new(Arc::new(FileStore::new(&path)), key);
    let (secure, _events) = SecureClient::start(client, events, &session, options)
        .await
        .expect("start again");
    assert_eq!(secure.device(), device);
    let page = secure
        .history(&conv, None, None)
        .await
        .expect("history")
        .messages;
    assert!(
        page.iter().any(|m| m.text() == Some(text)),
        "the reopened device cannot read what it read before"
    );
    let _ = std::fs::remove_file(&path);
}

#[tokio::test]
async fn encrypted_replies_edits_and_reactions_are_ciphertext_that_decrypts_beside_the_page() {
    use chatcore_client::chatcore::model::{Rel, RelKind};
    let chatd = Chatd::start(&[]).await;
    let url = chatd.url();
    let mut alice = first_device(&url, "alice").await;
    let mut bob = first_device(&url, "bob").await;
    contacts(&alice, &bob).await;
    let dm = alice
        .secure
        .client()
        .open_encrypted_direct(&bob.user())
        .await
        .expect("open encrypted direct")
        .conv;
    let first = timeout(T, alice.secure.send_encrypted(&dm, "zebra-life-1"))
        .await
        .expect("send timed out")
        .expect("send");
    reads(&mut bob, &dm, "zebra-life-1").await;
    let target = first.message_id.clone();
    let send = |dev: &Dev, id: &str, kind: RelKind, text: &str| {
        let rel = Some(Rel::new(kind, target.clone()));
        let (secure, dm, id, text) = (
            dev.secure.clone(),
            dm.clone(),
            id.to_owned(),
            text.to_owned(),
        );
        async move {
            timeout(
                T,
                secure.send_encrypted_related(&dm, &id, rel, Vec::new(), &text),
            )
            .await
            .expect("send timed out")
            .expect("send related")
        }
    };
    send(&bob, "x1", RelKind::Reaction, "🦓").await;
    send(&alice, "e1", RelKind::Edit, "zebra-life-1 edited").await;
    send(&bob, "r1", RelKind::Reply, "zebra-life-reply").await;
    reads(&mut alice, &dm, "🦓").await;
    reads(&mut bob, &dm, "zebra-life-1 edited").await;
    reads(&mut alice, &dm, "zebra-life-reply").await;

    // The server holds ciphertext only: the reaction's emoji included.
    let raw = bob
        .secure
        .client()
        .history(&dm, None, None)
        .await
        .expect("history");
    let related: Vec<&ChatMessage> = raw.messages.iter().filter(|m| m.rel.is_some()).collect();
    assert_eq!(related.len(), 3);
    assert!(
        related
            .iter()
            .all(|m| matches!(m.content, Content::Encrypted { .. })),
        "{related:?}"
    );
    // The page holding the message comes with its edit and reaction, decrypted.
    let page = timeout(T, bob.secure.history(&dm, Some(first.seq + 1), Some(1)))
        .await
        .expect("history timed out")
        .expect("history");
    assert_eq!(page.messages.len(), 1);
    let texts: Vec<(Option<RelKind>, Option<&str>)> = page
        .related
        .iter()
        .map(|m| (m.message.rel_kind(), m.text()))
        .collect();
    assert_eq!(
        texts,
        [
            (Some(RelKind::Reaction), Some("🦓")),
            (Some(RelKind::Edit), Some("zebra-life-1 edited")),
        ]
    );
    // Deleting it leaves tombstones, for the reaction and the edit too.
    alice
        .secure
        .client()
        .delete_message(&dm, &target, "d1")
        .await
        .expect("delete");
    let page = bob.secure.history(&dm, None, None).await.expect("history");
    let gone: Vec<bool> = page
        .messages
        .iter()
        .filter(|m| m.message.rel_kind() != Some(RelKind::Reply))
        .filter(|m| !matches!(m.message.content, Content::EncryptionEnabled {}))
        .map(|m| m.message.content == Content::Deleted {})
        .collect();
    assert_eq!(
        gone,
        [true, true, true, true],
        "message, reaction, edit, deletion"
    );
}

/// The next `call_signal` push of call `call` that `dev` gets.
async fn call_signal(
    dev: &mut Dev,
    call: &str,
) -> chatcore_client::chatcore::protocol::CallSignalPush {
    use chatcore_client::chatcore::protocol::ServerFrame;
    let name = dev.name.clone();
    timeout(T, async {
        loop {
            match dev.events.recv().await {
                Some(SecureEvent::Push(ServerFrame::CallSignal(push))) if push.call == call => {
                    return *push
                }
                Some(SecureEvent::Closed(c)) => panic!("{name} closed ({c:?})"),
                None => panic!("{name}: events ended"),
                Some(_) => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{name} never got a signal of call {call}"))
}

/// A call in an encrypted direct conversation, its signals sealed with
/// `SecureClient::seal_call_signal` and opened with `open_call_signal`
/// (docs/E2E.md, "A sealed call signal"): chatd refuses a plain offer; the
/// sealed offer opens on the callee's device to the caller's SDP, the
/// sealed answer on the caller's, candidates too; a sealed signal presented
/// as another call's, one replayed, and a plain push are refused.
#[tokio::test]
async fn sealed_call_signals_open_on_the_other_side_and_only_in_their_own_call() {
    use chatcore_client::chatcore::model::CallMedia;
    use chatcore_client::chatcore::protocol::{
        CallSignal, CallSignalPush, CallStatus, HangupReason, IceCandidate,
    };
    use chatcore_client::secure::SecureError;
    const OFFER: &str = "v=0\r\no=alice 1 1 IN IP4 127.0.0.1\r\ns=zebra-offer\r\n";
    const ANSWER: &str = "v=0\r\no=bob 2 2 IN IP4 127.0.0.1\r\ns=zebra-answer\r\n";
    let chatd = Chatd::start(&[]).await;
    let url = chatd.url();
    let mut alice = first_device(&url, "alice").await;
    let mut bob = first_device(&url, "bob").await;
    contacts(&alice, &bob).await;
    let dm = alice
        .secure
        .client()
        .open_encrypted_direct(&bob.user())
        .await
        .expect("open encrypted direct")
        .conv;
    let plain = |sdp: &str| CallSignal {
        sdp: Some(sdp.to_owned()),
        ..CallSignal::default()
    };

    // In the clear, the server refuses the offer.
    let refused = alice
        .secure
        .client()
        .call_invite("zebra-plain", &dm, CallMedia::Voice, plain(OFFER))
        .await
        .expect_err("a plain offer in an encrypted conversation");
    assert!(refused.to_string().contains("seal"), "{refused}");

    // Sealed for every device of Bob (his one), queried through the conversation.
    let offer = timeout(
        T,
        alice
            .secure
            .seal_call_signal("zebra-call", &dm, &bob.user(), None, &plain(OFFER)),
    )
    .await
    .expect("seal timed out")
    .expect("seal the offer");
    assert_eq!(offer.sdp, None);
    assert_eq!(
        offer
            .sealed
            .iter()
            .map(|s| s.device.clone())
            .collect::<Vec<_>>(),
        [bob.device()]
    );
    assert!(
        !offer.sealed[0].payload.contains("zebra-offer"),
        "the SDP is ciphertext"
    );
    let ringing = alice
        .secure
        .client()
        .call_invite("zebra-call", &dm, CallMedia::Voice, offer)
        .await
        .expect("invite");
    assert_eq!(ringing.state, CallStatus::Ringing);
    let pushed = call_signal(&mut bob, "zebra-call").await;
    assert_eq!(pushed.device, alice.device());
    assert_eq!(pushed.sdp, None);
    let opened = timeout(T, bob.secure.open_call_signal(&alice.user(), &pushed))
        .await
        .expect("open timed out")
        .expect("open the offer");
    assert_eq!(opened, plain(OFFER));
    // The same payload again: its Olm message was used up.
    let again = bob.secure.open_call_signal(&alice.user(), &pushed).await;
    assert!(again.is_err(), "a replayed sealed signal opened: {again:?}");

    // Bob answers, sealed for the device that called.
    let answer = bob
        .secure
        .seal_call_signal(
            "zebra-call",
            &dm,
            &alice.user(),
            Some(std::slice::from_ref(&pushed.device)),
            &plain(ANSWER),
        )
        .await
        .expect("seal the answer");
    let answered = bob
        .secure
        .client()
        .call_answer("zebra-call", answer)
        .await
        .expect("answer");
    assert_eq!(answered.answered_by, Some(bob.device()));
    let pushed = call_signal(&mut alice, "zebra-call").await;
    assert_eq!(pushed.device, bob.device());
    let opened = alice
        .secure
        .open_call_signal(&bob.user(), &pushed)
        .await
        .expect("open the answer");
    assert_eq!(opened, plain(ANSWER));

    // Candidates, sealed for the device that answered.
    let candidates = CallSignal {
        candidates: vec![
            IceCandidate {
                candidate: "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host".into(),
                sdp_mid: Some("0".into()),
                sdp_m_line_index: Some(0),
            },
            IceCandidate {
                candidate: String::new(),
                sdp_mid: None,
                sdp_m_line_index: None,
            },
        ],
        ..CallSignal::default()
    };
    let sealed = alice
        .secure
        .seal_call_signal(
            "zebra-call",
            &dm,
            &bob.user(),
            Some(&[bob.device()]),
            &candidates,
        )
        .await
        .expect("seal candidates");
    alice
        .secure
        .client()
        .call_candidates("zebra-call", sealed)
        .await
        .expect("candidates");
    let pushed = call_signal(&mut bob, "zebra-call").await;
    let opened = bob
        .secure
        .open_call_signal(&alice.user(), &pushed)
        .await
        .expect("open the candidates");
    assert_eq!(opened, candidates);

    // A sealed signal of this call, presented as another call's (as a
    // server replaying it would), decrypts but is refused.
    let sealed = alice
        .secure
        .seal_call_signal(
            "zebra-call",
            &dm,
            &bob.user(),
            Some(&[bob.device()]),
            &plain(OFFER),
        )
        .await
        .expect("seal");
    let elsewhere = CallSignalPush {
        call: "zebra-other-call".into(),
        device: alice.device(),
        sdp: None,
        candidates: Vec::new(),
        sealed: Some(sealed.sealed[0].payload.clone()),
    };
    match bob.secure.open_call_signal(&alice.user(), &elsewhere).await {
        Err(SecureError::Refused(why)) => assert!(why.contains("another call"), "{why}"),
        other => panic!("a signal of another call opened: {other:?}"),
    }
    // A plain push is no sealed signal.
    let unsealed = CallSignalPush {
        call: "zebra-call".into(),
        device: alice.device(),
        sdp: Some(OFFER.into()),
        candidates: Vec::new(),
        sealed: None,
    };
    assert!(matches!(
        bob.secure.open_call_signal(&alice.user(), &unsealed).await,
        Err(SecureError::Refused(_))
    ));
    // Sealing refuses what is no signal, or is sealed already.
    for bad in [CallSignal::default(), pushed_sealed(&elsewhere)] {
        assert!(matches!(
            alice
                .secure
                .seal_call_signal("zebra-call", &dm, &bob.user(), None, &bad)
                .await,
            Err(SecureError::Refused(_))
        ));
    }

    let ended = bob
        .secure
        .client()
        .call_hangup("zebra-call", HangupReason::Hangup)
        .await
        .expect("hang up");
    assert_eq!(ended.state, CallStatus::Ended);
}

/// A signal that is sealed already (what `push` carried).
fn pushed_sealed(
    push: &chatcore_client::chatcore::protocol::CallSignalPush,
) -> chatcore_client::chatcore::protocol::CallSignal {
    chatcore_client::chatcore::protocol::CallSignal {
        sealed: vec![chatcore_client::chatcore::protocol::SealedSignal {
            device: push.device.clone(),
            payload: push.sealed.clone().unwrap_or_default(),
        }],
        ..Default::default()
    }
}
