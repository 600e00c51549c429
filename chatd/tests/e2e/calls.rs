//! Calls: the ICE servers chatd hands out, and its TURN credentials checked
//! by a real coturn (Debian's `coturn`, which scripts/test installs) run
//! with `use-auth-secret`: a credential chatd made allocates a relay; a
//! tampered one and an expired one (signed with the right secret) do not.

use super::*;
use base64::Engine as _;
use md5::Digest as _;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::net::UdpSocket;

const SECRET: &str = "e2e turn secret: not for production";
const REALM: &str = "chatcore.test";

/// A private coturn on a free loopback UDP port, killed when dropped.
struct Coturn {
    _child: Child,
    port: u16,
}

impl Coturn {
    async fn start() -> Coturn {
        // A free UDP port, and a relay range of its own (ports are per test process).
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("a free UDP port")
            .port();
        let child = Command::new("turnserver")
            .args(["-n", "--no-cli", "--no-tls", "--no-dtls", "--simple-log"])
            .args(["--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1"])
            .args(["--listening-port", &port.to_string()])
            .args(["--use-auth-secret", "--static-auth-secret", SECRET])
            .args(["--realm", REALM, "--allow-loopback-peers"])
            .args(["--min-port", "49152", "--max-port", "65535"])
            .args(["--log-file", "stdout"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("cannot start turnserver (scripts/test installs Debian's coturn)");
        let coturn = Coturn {
            _child: child,
            port,
        };
        // Ready when it answers a STUN Binding request.
        for _ in 0..100 {
            if let Ok(Ok((0x0101, _))) = timeout(
                Duration::from_millis(200),
                coturn.exchange(&stun(0x0001, &[], None)),
            )
            .await
            {
                return coturn;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("coturn did not answer a STUN Binding request on port {port}");
    }

    /// A client socket of its own: TURN binds a nonce and an allocation to
    /// the client's address and port, so one allocation uses one socket.
    async fn socket(&self) -> std::io::Result<UdpSocket> {
        let sock = UdpSocket::bind("127.0.0.1:0").await?;
        sock.connect(("127.0.0.1", self.port)).await?;
        Ok(sock)
    }

    /// Sends one request from a new socket and returns the response's type
    /// and attributes.
    async fn exchange(&self, request: &[u8]) -> std::io::Result<(u16, Vec<(u16, Vec<u8>)>)> {
        exchange(&self.socket().await?, request).await
    }

    /// A TURN Allocate with long-term credentials (RFC 5766 and 5389 §10.2):
    /// the first request learns the realm and nonce from the 401, the second
    /// carries USERNAME, REALM, NONCE and MESSAGE-INTEGRITY. `Ok(())` when a
    /// relay was allocated; `Err(code)` with the STUN error code otherwise.
    async fn allocate(&self, username: &str, password: &str) -> Result<(), u16> {
        const REQUESTED_TRANSPORT: (u16, &[u8]) = (0x0019, &[17, 0, 0, 0]);
        let sock = self.socket().await.expect("a UDP socket");
        let (kind, attrs) = exchange(&sock, &stun(0x0003, &[REQUESTED_TRANSPORT], None))
            .await
            .expect("an answer to Allocate");
        assert_eq!(
            (kind, error_code(&attrs)),
            (0x0113, Some(401)),
            "a challenge"
        );
        let realm = attr(&attrs, 0x0014).expect("REALM");
        let nonce = attr(&attrs, 0x0015).expect("NONCE");
        assert_eq!(realm, REALM.as_bytes());
        let mut long_term = Vec::new();
        long_term.extend_from_slice(username.as_bytes());
        long_term.push(b':');
        long_term.extend_from_slice(&realm);
        long_term.push(b':');
        long_term.extend_from_slice(password.as_bytes());
        let key = md5::Md5::digest(&long_term);
        let request = stun(
            0x0003,
            &[
                REQUESTED_TRANSPORT,
                (0x0006, username.as_bytes()),
                (0x0014, &realm),
                (0x0015, &nonce),
            ],
            Some(&key),
        );
        let (kind, attrs) = exchange(&sock, &request).await.expect("an answer");
        match kind {
            0x0103 => {
                assert!(attr(&attrs, 0x0016).is_some(), "a XOR-RELAYED-ADDRESS");
                Ok(())
            }
            _ => Err(error_code(&attrs).expect("an ERROR-CODE")),
        }
    }
}

/// Sends `request` on `sock` (again, up to 5 times, if no answer comes in
/// half a second: UDP) and returns the response's type and attributes.
async fn exchange(sock: &UdpSocket, request: &[u8]) -> std::io::Result<(u16, Vec<(u16, Vec<u8>)>)> {
    for _ in 0..5 {
        sock.send(request).await?;
        let mut buf = [0u8; 1500];
        if let Ok(n) = timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
            return Ok(parse(&buf[..n?]));
        }
    }
    Err(std::io::Error::other("no STUN response"))
}

/// A STUN message: header, attributes (padded to 4 bytes), and with `key`
/// a MESSAGE-INTEGRITY over everything before it, the length counting it.
fn stun(kind: u16, attrs: &[(u16, &[u8])], key: Option<&[u8]>) -> Vec<u8> {
    let mut body = Vec::new();
    for (t, v) in attrs {
        body.extend_from_slice(&t.to_be_bytes());
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
        body.resize(body.len().div_ceil(4) * 4, 0);
    }
    let transaction: [u8; 12] = rand_bytes();
    let header = |len: usize| {
        let mut h = Vec::with_capacity(20);
        h.extend_from_slice(&kind.to_be_bytes());
        h.extend_from_slice(&(len as u16).to_be_bytes());
        h.extend_from_slice(&0x2112_A442u32.to_be_bytes());
        h.extend_from_slice(&transaction);
        h
    };
    let Some(key) = key else {
        let mut m = header(body.len());
        m.extend_from_slice(&body);
        return m;
    };
    let mut m = header(body.len() + 24);
    m.extend_from_slice(&body);
    let mac = ring::hmac::sign(
        &ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key),
        &m,
    );
    m.extend_from_slice(&0x0008u16.to_be_bytes());
    m.extend_from_slice(&20u16.to_be_bytes());
    m.extend_from_slice(mac.as_ref());
    m
}

fn rand_bytes() -> [u8; 12] {
    let mut b = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("random");
    b
}

fn parse(m: &[u8]) -> (u16, Vec<(u16, Vec<u8>)>) {
    assert!(m.len() >= 20, "a STUN header");
    let kind = u16::from_be_bytes([m[0], m[1]]);
    let mut attrs = Vec::new();
    let mut at = 20;
    while at + 4 <= m.len() {
        let t = u16::from_be_bytes([m[at], m[at + 1]]);
        let len = u16::from_be_bytes([m[at + 2], m[at + 3]]) as usize;
        let end = (at + 4 + len).min(m.len());
        attrs.push((t, m[at + 4..end].to_vec()));
        at += 4 + len.div_ceil(4) * 4;
    }
    (kind, attrs)
}

fn attr(attrs: &[(u16, Vec<u8>)], t: u16) -> Option<Vec<u8>> {
    attrs.iter().find(|(k, _)| *k == t).map(|(_, v)| v.clone())
}

fn error_code(attrs: &[(u16, Vec<u8>)]) -> Option<u16> {
    let v = attr(attrs, 0x0009)?;
    Some(u16::from(v[2] & 0x07) * 100 + u16::from(v[3]))
}

/// What coturn's `use-auth-secret` accepts: base64(HMAC-SHA1(secret, username)).
fn signed(username: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, SECRET.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(ring::hmac::sign(&key, username.as_bytes()))
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

#[tokio::test]
async fn turn_credentials_from_chatd_open_a_relay_on_coturn_and_expired_ones_do_not() {
    let coturn = Coturn::start().await;
    let turn_url = format!("turn:127.0.0.1:{}?transport=udp", coturn.port);
    let stun_url = format!("stun:127.0.0.1:{}", coturn.port);
    // The secret reaches chatd in a file, as the docs advise (a flag shows in the process list).
    let secret_file = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("e2e-turn-secret-{}", std::process::id()));
    std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write the secret");
    let chatd = Chatd::start(&[
        "--turn-url",
        &stun_url,
        "--turn-url",
        &turn_url,
        "--turn-secret-file",
        secret_file.to_str().expect("a UTF-8 path"),
        "--turn-ttl-secs",
        "600",
    ])
    .await;
    let _ = std::fs::remove_file(&secret_file);
    let alice = chatd.user("alice").await;
    let before = unix_now();
    let (servers, expires_at) = alice.client.ice_servers().await.expect("ice_servers");
    let after = unix_now();
    assert_eq!(servers.len(), 2, "{servers:?}");
    assert_eq!(servers[0].urls, vec![stun_url.clone()]);
    assert_eq!(
        (&servers[0].username, &servers[0].credential),
        (&None, &None)
    );
    assert_eq!(servers[1].urls, vec![turn_url.clone()]);
    let username = servers[1].username.clone().expect("a TURN username");
    let credential = servers[1].credential.clone().expect("a TURN credential");
    // `expiry:user`, the expiry in Unix seconds, --turn-ttl-secs from now.
    let (expiry, user) = username.split_once(':').expect("expiry:user");
    let expiry: i64 = expiry.parse().expect("seconds");
    assert_eq!(user, alice.id().as_str());
    assert!(
        (before + 600..=after + 601).contains(&expiry),
        "{expiry} not 600 s after {before}..{after}"
    );
    assert_eq!(expires_at, Some(expiry * 1000));

    // What chatd made opens a relay.
    assert_eq!(coturn.allocate(&username, &credential).await, Ok(()));
    // The credential is bound to its username: another user's name with it is refused.
    let bob = chatd.user("bob").await;
    let stolen = format!("{expiry}:{}", bob.id());
    assert_eq!(coturn.allocate(&stolen, &credential).await, Err(401));
    // Signed with the right secret but past its expiry: refused.
    let expired = format!("{}:{}", unix_now() - 60, alice.id());
    assert_eq!(coturn.allocate(&expired, &signed(&expired)).await, Err(401));
    // The same scheme with an expiry to come is accepted: the refusal above was the expiry.
    let fresh = format!("{}:{}", unix_now() + 60, alice.id());
    assert_eq!(coturn.allocate(&fresh, &signed(&fresh)).await, Ok(()));
}

#[tokio::test]
async fn without_turn_the_list_has_only_stun_and_no_expiry() {
    let chatd = Chatd::start(&["--turn-url", "stun:stun.example.org:3478"]).await;
    let alice = chatd.user("alice").await;
    let (servers, expires_at) = alice.client.ice_servers().await.expect("ice_servers");
    assert_eq!(servers.len(), 1);
    assert_eq!(
        servers[0].urls,
        vec!["stun:stun.example.org:3478".to_owned()]
    );
    assert_eq!(expires_at, None);
    let bare = Chatd::start(&[]).await;
    let bob = bare.user("bob").await;
    assert_eq!(
        bob.client.ice_servers().await.expect("ice_servers"),
        (vec![], None)
    );
    // Signed out: refused.
    let (anon, _events) = bare.connect().await;
    assert_eq!(
        server_code(anon.ice_servers().await),
        ErrorCode::Unauthenticated
    );
}

mod signalling {
    use super::*;
    use chatcore_client::chatcore::model::{CallEnd, CallMedia};
    use chatcore_client::chatcore::protocol::{CallSignal, CallStatus, HangupReason};

    fn sdp(s: &str) -> CallSignal {
        CallSignal {
            sdp: Some(s.into()),
            ..CallSignal::default()
        }
    }

    fn is_state(f: &ServerFrame, state: CallStatus) -> bool {
        matches!(f, ServerFrame::CallState { call, .. } if call.state == state)
    }

    /// Another device of `name`, signed in on its own connection.
    async fn device(chatd: &Chatd, name: &str) -> User {
        let (client, events) = chatd.connect().await;
        let session = client.login(name, PASSWORD, "Tablet").await.expect("login");
        User {
            client,
            events,
            session,
        }
    }

    #[tokio::test]
    async fn two_devices_ring_one_answers_the_other_stops_and_an_unanswered_call_is_missed() {
        // Long enough for the busy case's two invites to land within it on a
        // loaded machine; the missed case waits it out once.
        let chatd = Chatd::start(&[
            "--call-ring-timeout-ms",
            "1500",
            "--call-sweep-ms",
            "50",
            "--metrics-listen",
            "off",
        ])
        .await;
        let mut alice = chatd.user("alice").await;
        let mut bob = chatd.user("bob").await;
        befriend(&alice, &bob).await;
        let conv = alice.client.open_direct(&bob.id()).await.unwrap().conv;
        let mut tablet = device(&chatd, "bob").await;
        drain(&mut bob).await;

        let ringing = alice
            .client
            .call_invite("e2e-1", &conv, CallMedia::Video, sdp("v=0 offer"))
            .await
            .expect("invite");
        assert_eq!(ringing.state, CallStatus::Ringing);
        for b in [&mut bob, &mut tablet] {
            push(&mut b.events, |f| is_state(f, CallStatus::Ringing)).await;
            let offer = push(&mut b.events, |f| matches!(f, ServerFrame::CallSignal(_))).await;
            let ServerFrame::CallSignal(offer) = offer else {
                unreachable!()
            };
            assert_eq!(offer.sdp.as_deref(), Some("v=0 offer"));
        }
        bob.client.call_ringing("e2e-1").await.expect("ringing");
        let rung = push(&mut alice.events, |f| {
            matches!(f, ServerFrame::CallState { .. })
        })
        .await;
        assert!(matches!(rung, ServerFrame::CallState { call, .. } if call.ringing));

        let active = tablet
            .client
            .call_answer("e2e-1", sdp("v=0 answer"))
            .await
            .expect("answer");
        assert_eq!(active.answered_by.as_ref(), Some(&tablet.session.device));
        // The phone stops ringing: answered on another device, and too late to answer.
        let elsewhere = push(&mut bob.events, |f| is_state(f, CallStatus::Active)).await;
        assert!(
            matches!(&elsewhere, ServerFrame::CallState { call, .. } if call.answered_by.as_ref() == Some(&tablet.session.device))
        );
        assert_eq!(
            server_code(bob.client.call_answer("e2e-1", sdp("v=0 late")).await),
            ErrorCode::NotFound
        );
        let answer = push(&mut alice.events, |f| {
            matches!(f, ServerFrame::CallSignal(_))
        })
        .await;
        assert!(
            matches!(answer, ServerFrame::CallSignal(s) if s.sdp.as_deref() == Some("v=0 answer"))
        );
        let ended = alice
            .client
            .call_hangup("e2e-1", HangupReason::Hangup)
            .await
            .expect("hang up");
        assert_eq!(ended.reason, Some(CallEnd::Hangup));
        push(&mut tablet.events, |f| is_state(f, CallStatus::Ended)).await;

        // Nobody answers: chatd's sweep ends it as missed, the callee's conversation alerts.
        alice
            .client
            .call_invite("e2e-2", &conv, CallMedia::Voice, sdp("v=0 offer"))
            .await
            .expect("invite");
        let missed = push(&mut alice.events, |f| is_state(f, CallStatus::Ended)).await;
        assert!(
            matches!(missed, ServerFrame::CallState { call, .. } if call.reason == Some(CallEnd::Missed))
        );
        push(&mut bob.events, |f| {
            matches!(f, ServerFrame::Message { message } if matches!(message.content, Content::Call { outcome: CallEnd::Missed, .. }))
        })
        .await;
        push(&mut bob.events, |f| matches!(f, ServerFrame::Alert { .. })).await;

        // Declined: the callee refuses before answering; the caller's device learns why.
        alice
            .client
            .call_invite("e2e-r", &conv, CallMedia::Voice, sdp("v=0 offer"))
            .await
            .expect("invite");
        push(&mut tablet.events, |f| is_state(f, CallStatus::Ringing)).await;
        let declined = tablet
            .client
            .call_hangup("e2e-r", HangupReason::Declined)
            .await
            .expect("decline");
        assert_eq!(declined.reason, Some(CallEnd::Declined));
        let told = push(&mut alice.events, |f| is_state(f, CallStatus::Ended)).await;
        assert!(
            matches!(told, ServerFrame::CallState { call, .. } if call.reason == Some(CallEnd::Declined))
        );
        push(&mut bob.events, |f| is_state(f, CallStatus::Ended)).await;

        // Busy: while Bob is in a call with Carol, Alice's call is answered busy at once.
        let mut carol = chatd.user("carol").await;
        befriend(&carol, &bob).await;
        let carol_conv = carol.client.open_direct(&bob.id()).await.unwrap().conv;
        carol
            .client
            .call_invite("e2e-c", &carol_conv, CallMedia::Voice, sdp("v=0 offer"))
            .await
            .expect("invite");
        let busy = alice
            .client
            .call_invite("e2e-b", &conv, CallMedia::Voice, sdp("v=0 offer"))
            .await
            .expect("invite");
        assert_eq!(
            (busy.state, busy.reason),
            (CallStatus::Ended, Some(CallEnd::Busy))
        );
        push(&mut bob.events, |f| {
            matches!(f, ServerFrame::Message { message } if matches!(message.content, Content::Call { outcome: CallEnd::Busy, .. }))
        })
        .await;
        carol
            .client
            .call_hangup("e2e-c", HangupReason::Hangup)
            .await
            .expect("cancel");
        drain(&mut carol).await;

        // A stranger cannot call into the conversation (it does not exist for
        // them: not_found, as for every conversation one is not in); a
        // blocked user cannot call.
        let dave = chatd.user("dave").await;
        assert_eq!(
            server_code(
                dave.client
                    .call_invite("e2e-3", &conv, CallMedia::Voice, sdp("v=0"))
                    .await
            ),
            ErrorCode::NotFound
        );
        bob.client.block(&alice.id()).await.expect("block");
        assert_eq!(
            server_code(
                alice
                    .client
                    .call_invite("e2e-4", &conv, CallMedia::Voice, sdp("v=0"))
                    .await
            ),
            ErrorCode::Forbidden
        );
    }
}
