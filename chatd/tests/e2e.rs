//! End-to-end tests: each test starts the real `chatd` binary on a free
//! loopback port (with a fast argon2 cost) and drives it over WebSocket with
//! `chatcore-client`, or with a raw socket where the test needs to misbehave.
//! Timeouts only guard against hangs; nothing here asserts how fast anything is.

use chatcore_client::chatcore::model::{Content, ConversationId, UserId};
use chatcore_client::chatcore::protocol::{ClientFrame, Codec, ErrorCode, ServerFrame};
use chatcore_client::{
    Client, Close, ConnectOptions, Error, Event, Events, Registration, SessionInfo,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, Command};
use tokio::time::timeout;

/// Guards every wait against a hang.
const T: Duration = Duration::from_secs(30);
const PASSWORD: &str = "violet harbour anchor 1917";
const NEW_PASSWORD: &str = "quiet lantern meadow 2024";

#[path = "e2e/calls.rs"]
mod calls;
#[path = "e2e/cluster.rs"]
mod cluster;
#[path = "e2e/contacts.rs"]
mod contacts;
#[path = "e2e/devices.rs"]
mod devices;
#[path = "e2e/durable.rs"]
mod durable;
#[path = "e2e/encrypted.rs"]
mod encrypted;
#[path = "e2e/groups.rs"]
mod groups;
#[path = "e2e/hardening.rs"]
mod hardening;
#[path = "e2e/live_directory.rs"]
mod live_directory;
#[path = "e2e/media.rs"]
mod media;
#[path = "e2e/mongo.rs"]
mod mongo;
#[path = "e2e/requests.rs"]
mod requests;
#[path = "e2e/sqlite.rs"]
mod sqlite;
#[path = "e2e/transport.rs"]
mod transport;

// ---------------------------------------------------------------- harness

struct Chatd {
    child: Child,
    addr: SocketAddr,
    /// The metrics listener, unless started with `--metrics-listen off`.
    metrics_addr: Option<SocketAddr>,
    mail_dir: PathBuf,
}

static NEXT: AtomicU32 = AtomicU32::new(1);

/// How to start chatd, beyond its flags.
#[derive(Default)]
struct Launch<'a> {
    /// Working directory; with it, no `--store memory` is added, so the
    /// default store is used unless the flags name one.
    cwd: Option<&'a Path>,
    /// RLIMIT_FSIZE in 512-byte blocks, with SIGXFSZ ignored: writes past
    /// it fail with EFBIG, as on a full disk (root cannot bypass it).
    fsize_blocks: Option<u64>,
}

impl Chatd {
    async fn start(extra: &[&str]) -> Chatd {
        Self::start_with(extra, Launch::default()).await
    }

    async fn start_with(extra: &[&str], launch: Launch<'_>) -> Chatd {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mail_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("e2e-mail-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&mail_dir);
        let mut cmd = match launch.fsize_blocks {
            Some(blocks) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!(
                        "trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""
                    ))
                    .arg(env!("CARGO_BIN_EXE_chatd"));
                sh
            }
            None => Command::new(env!("CARGO_BIN_EXE_chatd")),
        };
        if let Some(dir) = launch.cwd {
            cmd.current_dir(dir);
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("CHATD_") {
                cmd.env_remove(key);
            }
        }
        cmd.args([
            "--listen",
            "127.0.0.1:0",
            "--print-addr",
            "--argon2-m-kib",
            "64",
        ])
        .args(["--log", "chatd=error,chatcore=warn"]);
        if !extra.contains(&"--metrics-listen") {
            cmd.args(["--metrics-listen", "127.0.0.1:0"]);
        }
        // The default store is a file under ./chatd-data: never in tests.
        if !extra.contains(&"--store") && launch.cwd.is_none() {
            cmd.args(["--store", "memory"]);
        }
        if !extra.contains(&"--mailer") {
            cmd.arg("--mailer")
                .arg(format!("dir:{}", mail_dir.display()));
        }
        cmd.args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd.spawn().expect("cannot start chatd");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = timeout(T, lines.next_line())
            .await
            .expect("chatd printed no address")
            .expect("reading chatd's stdout")
            .expect("chatd exited before listening");
        let addr = line.trim().parse().expect("chatd printed an address");
        let metrics_off = extra.windows(2).any(|w| w == ["--metrics-listen", "off"]);
        let metrics_addr = if metrics_off {
            None
        } else {
            let line = timeout(T, lines.next_line())
                .await
                .expect("chatd printed no metrics address")
                .expect("reading chatd's stdout")
                .expect("chatd exited before listening");
            Some(
                line.trim()
                    .parse()
                    .expect("chatd printed a metrics address"),
            )
        };
        Chatd {
            child,
            addr,
            metrics_addr,
            mail_dir,
        }
    }

    /// Sends SIGTERM (with the shell's built-in kill: no procps needed).
    fn terminate(&self) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("sh")
            .args(["-c", &format!("kill -TERM {pid}")])
            .status()
            .expect("sh");
        assert!(status.success());
    }

    fn url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    async fn connect(&self) -> (Client, Events) {
        self.connect_with(ConnectOptions::new()).await
    }

    async fn connect_with(&self, options: ConnectOptions) -> (Client, Events) {
        timeout(T, Client::connect(&self.url(), options))
            .await
            .expect("connect timed out")
            .expect("connect failed")
    }

    /// A new account, signed in on its own connection.
    async fn user(&self, name: &str) -> User {
        let (client, events) = self.connect().await;
        let session = client
            .register(&registration(name))
            .await
            .expect("register");
        User {
            client,
            events,
            session,
        }
    }

    async fn http(&self, method: &str, path: &str) -> (u16, String) {
        http(self.addr, method, path).await
    }

    async fn metric(&self, sample: &str) -> u64 {
        let (status, body) = http(self.metrics_addr.expect("metrics on"), "GET", "/metrics").await;
        assert_eq!(status, 200);
        body.lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no sample {sample} in\n{body}"))
            .parse()
            .expect("a numeric sample")
    }
}

struct User {
    client: Client,
    events: Events,
    session: SessionInfo,
}

impl User {
    fn id(&self) -> UserId {
        self.session.user.clone()
    }
}

/// Makes `a` and `b` contacts (a asks, b accepts), for tests about
/// something else than message requests.
async fn befriend(a: &User, b: &User) {
    use chatcore_client::chatcore::protocol::ContactAction;
    a.client
        .contact(&b.id(), ContactAction::Request)
        .await
        .expect("contact request");
    b.client
        .contact(&a.id(), ContactAction::Accept)
        .await
        .expect("contact accept");
}

static PHONE: AtomicU32 = AtomicU32::new(1);

fn registration(name: &str) -> Registration {
    Registration {
        username: name.into(),
        email: format!("{name}@example.com"),
        phone: format!("+4410{:08}", PHONE.fetch_add(1, Ordering::Relaxed)),
        display_name: format!("{name} Example"),
        password: PASSWORD.into(),
        device: "e2e".into(),
    }
}

fn text(s: &str) -> Content {
    Content::Text { text: s.into() }
}

fn text_of(content: &Content) -> &str {
    match content {
        Content::Text { text } => text,
        other => panic!("expected a text, got {other:?}"),
    }
}

/// The next push matching `pred`, skipping others.
async fn push(events: &mut Events, pred: impl Fn(&ServerFrame) -> bool) -> ServerFrame {
    timeout(T, async {
        loop {
            match events.recv().await {
                Some(Event::Push(f)) if pred(&f) => return f,
                Some(Event::Push(_)) => continue,
                Some(Event::Closed(c)) => panic!("closed ({c:?}) while waiting for a push"),
                None => panic!("events ended"),
            }
        }
    })
    .await
    .expect("timed out waiting for a push")
}

/// Everything pushed to `user` until a ping's reply: what arrived before it.
async fn drain(user: &mut User) -> Vec<ServerFrame> {
    user.client.ping().await.expect("ping");
    let mut frames = Vec::new();
    while let Some(ev) = user.events.try_recv() {
        if let Event::Push(f) = ev {
            frames.push(f);
        }
    }
    frames
}

/// How the connection ended (skipping pushes).
async fn closed(events: &mut Events) -> Close {
    timeout(T, async {
        loop {
            match events.recv().await {
                Some(Event::Closed(c)) => return c,
                Some(Event::Push(_)) => continue,
                None => panic!("events ended without Closed"),
            }
        }
    })
    .await
    .expect("timed out waiting for the close")
}

fn server_code(r: Result<impl std::fmt::Debug, Error>) -> ErrorCode {
    match r {
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("not a server error: {e:?}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// A minimal HTTP/1.1 GET (or other method) over a fresh connection.
async fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    timeout(T, async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.expect("write");
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.expect("read");
        let raw = String::from_utf8_lossy(&raw).into_owned();
        let status = raw
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("a status line");
        let body = raw.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
        (status, body)
    })
    .await
    .expect("http timed out")
}

/// A WebSocket client written by hand, so tests can misbehave in ways a
/// library would not allow (never answer pings, stop reading, send junk).
struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
    headers: String,
}

impl RawWs {
    /// Handshakes; `Err(status)` when the server refuses the upgrade.
    async fn connect(addr: SocketAddr, extra_headers: &[(&str, &str)]) -> Result<RawWs, u16> {
        Self::connect_with_rcvbuf(addr, extra_headers, None).await
    }

    async fn connect_with_rcvbuf(
        addr: SocketAddr,
        extra_headers: &[(&str, &str)],
        rcvbuf: Option<u32>,
    ) -> Result<RawWs, u16> {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = rcvbuf {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        Self::handshake(socket, addr, extra_headers).await
    }

    /// Handshakes from source address `from` (another loopback address:
    /// 127.0.0.2, 127.0.0.3, ... stand for other clients).
    async fn connect_from(addr: SocketAddr, from: &str) -> Result<RawWs, u16> {
        let socket = TcpSocket::new_v4().expect("socket");
        let src: std::net::IpAddr = from.parse().expect("an address");
        socket.bind(SocketAddr::new(src, 0)).expect("bind");
        Self::handshake(socket, addr, &[]).await
    }

    async fn handshake(
        socket: TcpSocket,
        addr: SocketAddr,
        extra_headers: &[(&str, &str)],
    ) -> Result<RawWs, u16> {
        let mut stream = timeout(T, socket.connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        let mut req = format!(
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        );
        for (k, v) in extra_headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).await.expect("write");
        let mut buf = Vec::new();
        let end = timeout(T, async {
            loop {
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    return i + 4;
                }
                let mut chunk = [0u8; 1024];
                let n = stream.read(&mut chunk).await.expect("read");
                assert!(n > 0, "connection closed during the handshake");
                buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("handshake timed out");
        let headers = String::from_utf8_lossy(&buf[..end]).into_owned();
        let status: u16 = headers
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status");
        if status != 101 {
            return Err(status);
        }
        assert!(
            headers.contains("sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "{headers}"
        );
        buf.drain(..end);
        Ok(RawWs {
            stream,
            buf,
            headers,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    /// Sends one masked frame (`opcode` 1 text, 2 binary, 9 ping).
    async fn send(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [0x5a, 0xc3, 0x17, 0x88];
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // The server may close the socket mid-way (oversize); that is for the reader to see.
        let _ = self.stream.write_all(&frame).await;
    }

    async fn send_frame<T: serde::Serialize>(&mut self, codec: Codec, frame: &T) {
        let bytes = codec.encode(frame).expect("encode");
        self.send(if codec.is_text() { 1 } else { 2 }, &bytes).await;
    }

    /// The next frame `(opcode, payload)`, or `None` at end of stream.
    async fn read_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        timeout(T, async {
            loop {
                if let Some((frame, used)) = parse_frame(&self.buf) {
                    self.buf.drain(..used);
                    return Some(frame);
                }
                let mut chunk = vec![0u8; 64 * 1024];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .expect("timed out reading a frame")
    }

    /// The next data frame, decoded.
    async fn recv(&mut self, codec: Codec) -> ServerFrame {
        loop {
            let (op, payload) = self.read_frame().await.expect("connection ended");
            match op {
                1 | 2 => return codec.decode(&payload).expect("a server frame"),
                8 => panic!("closed: {:?}", close_of(&payload)),
                _ => continue,
            }
        }
    }

    /// Reads (and discards) frames until the close frame; its code and reason.
    async fn close_code(&mut self) -> (u16, String) {
        loop {
            match self.read_frame().await {
                Some((8, payload)) => return close_of(&payload),
                Some(_) => continue,
                None => panic!("connection ended without a close frame"),
            }
        }
    }
}

fn close_of(payload: &[u8]) -> (u16, String) {
    assert!(payload.len() >= 2, "close frame without a code");
    (
        u16::from_be_bytes([payload[0], payload[1]]),
        String::from_utf8_lossy(&payload[2..]).into_owned(),
    )
}

fn parse_frame(buf: &[u8]) -> Option<((u8, Vec<u8>), usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    assert_eq!(buf[1] & 0x80, 0, "server frames are not masked");
    let (len, mut at) = match buf[1] & 0x7f {
        126 => (
            u16::from_be_bytes(buf.get(2..4)?.try_into().ok()?) as usize,
            4,
        ),
        127 => (
            u64::from_be_bytes(buf.get(2..10)?.try_into().ok()?) as usize,
            10,
        ),
        n => (n as usize, 2),
    };
    let payload = buf.get(at..at + len)?.to_vec();
    at += len;
    Some(((opcode, payload), at))
}

fn hello(id: u32) -> ClientFrame {
    ClientFrame::Hello {
        id,
        version: 4,
        client: Some("raw".into()),
    }
}

fn error_of(frame: &ServerFrame) -> (Option<u32>, ErrorCode, Option<String>) {
    match frame {
        ServerFrame::Error {
            id, code, field, ..
        } => (*id, *code, field.clone()),
        other => panic!("expected an error frame, got {other:?}"),
    }
}

/// Waits until a mail to `to` lies in `dir`, and returns it.
async fn mail_to(dir: &Path, to: &str) -> String {
    timeout(T, async {
        loop {
            if let Ok(entries) = std::fs::read_dir(dir) {
                for entry in entries.flatten() {
                    let path = entry.path();
                    if path.extension().is_some_and(|e| e == "eml") {
                        let text = std::fs::read_to_string(&path).expect("read mail");
                        if text.contains(&format!("To: {to}\r\n")) {
                            return text;
                        }
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("no mail arrived")
}

fn reset_token(mail: &str) -> String {
    mail.lines()
        .find_map(|l| l.trim().strip_prefix("Or enter this code: "))
        .expect("a reset code in the mail")
        .trim()
        .to_owned()
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn http_endpoints() {
    let chatd = Chatd::start(&[]).await;
    assert_eq!(chatd.http("GET", "/healthz").await, (200, "ok\n".into()));
    assert_eq!(chatd.http("GET", "/readyz").await, (200, "ready\n".into()));
    let (status, page) = chatd.http("GET", "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("<html"), "{page}");
    assert_eq!(chatd.http("GET", "/no-such-page").await.0, 404);
    assert_eq!(chatd.http("POST", "/healthz").await.0, 405);
    // A plain GET on the WebSocket endpoint is told to upgrade.
    assert_eq!(chatd.http("GET", "/ws").await.0, 426);
    // Metrics have their own listener (tests/e2e/transport.rs).
    assert_eq!(chatd.http("GET", "/metrics").await.0, 404);
    let (status, metrics) = http(chatd.metrics_addr.unwrap(), "GET", "/metrics").await;
    assert_eq!(status, 200);
    for name in [
        "# TYPE chatd_connections gauge",
        "chatd_frames_in_total ",
        "chatd_frames_out_total ",
        "chatd_messages_stored_total ",
        "chatd_messages_delivered_total ",
        "chatd_slow_consumers_total ",
        "chatd_errors_total{code=\"invalid_frame\"} ",
        "# TYPE chatd_delivery_latency_seconds histogram",
        "chatd_delivery_latency_seconds_bucket{le=\"+Inf\"} ",
        "chatd_upgrades_rejected_total{reason=\"origin\"} ",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
}

#[tokio::test]
async fn sign_up_sign_in_directory_and_live_presence() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;

    // Sign-up rules are enforced over the wire.
    let (c, _e) = chatd.connect().await;
    let mut weak = registration("carol");
    weak.password = "password1".into();
    assert_eq!(
        server_code(c.register(&weak).await),
        ErrorCode::WeakPassword
    );
    let mut taken = registration("Bob");
    taken.email = "other@example.com".into();
    match c.register(&taken).await {
        Err(Error::Server(e)) => {
            assert_eq!(e.code, ErrorCode::Conflict);
            assert_eq!(e.field.as_deref(), Some("username"));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(
        server_code(c.login("bob", "wrong password entirely", "x").await),
        ErrorCode::Unauthenticated
    );

    // The directory lists Bob online; Alice now watches his presence.
    let users = alice.client.search_users("b", None, None).await.unwrap();
    let entry = users
        .users
        .iter()
        .find(|e| e.profile.user == bob.id())
        .expect("bob is listed");
    assert_eq!(entry.profile.username, "bob");
    assert!(entry.presence.online);

    // Bob leaves: Alice sees him go offline, live.
    bob.client.close().await.unwrap();
    let gone = push(
        &mut alice.events,
        |f| matches!(f, ServerFrame::Presence { presence } if presence.user == bob.id()),
    )
    .await;
    let ServerFrame::Presence { presence } = gone else {
        unreachable!()
    };
    assert!(!presence.online);
    assert!(presence.last_seen.is_some());

    // Bob signs in again (by email): Alice sees him come back.
    let (bob2, _bob2_events) = chatd.connect().await;
    let s = bob2
        .login("bob@example.com", PASSWORD, "phone")
        .await
        .unwrap();
    assert_eq!(s.user, bob.id());
    assert!(s.token.is_some());
    let back = push(
        &mut alice.events,
        |f| matches!(f, ServerFrame::Presence { presence } if presence.user == bob.id()),
    )
    .await;
    assert!(matches!(back, ServerFrame::Presence { presence } if presence.online));
}

#[tokio::test]
async fn two_users_chat_and_a_third_cannot_read_it() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let mut bob = chatd.user("bob").await;
    let carol = chatd.user("carol").await;
    let sent = alice
        .client
        .send_text(&bob.id(), "hello bob")
        .await
        .unwrap();
    assert_eq!((sent.seq, sent.duplicate), (1, false));
    // The server names the conversation; the client never builds its id.
    let conv = sent.conv.clone();
    let m = push(&mut bob.events, |f| {
        matches!(f, ServerFrame::Message { .. })
    })
    .await;
    let ServerFrame::Message { message } = m else {
        unreachable!()
    };
    assert_eq!((message.seq, &message.from), (1, &alice.id()));
    assert_eq!(text_of(&message.content), "hello bob");
    // Bob is not looking at the conversation: an alert with the unread count.
    let a = push(&mut bob.events, |f| matches!(f, ServerFrame::Alert { .. })).await;
    assert!(matches!(a, ServerFrame::Alert { seq: 1, .. }), "{a:?}");

    // Bob opens the chat: history, then live messages without alerts.
    let page = bob.client.history(&conv, None, None).await.unwrap();
    assert_eq!(page.messages.len(), 1);
    assert!(!page.more);
    bob.client.focus(Some(&conv)).await.unwrap();
    alice.client.send_text(&bob.id(), "second").await.unwrap();
    let m = push(&mut bob.events, |f| {
        matches!(f, ServerFrame::Message { .. })
    })
    .await;
    assert!(matches!(&m, ServerFrame::Message { message } if message.seq == 2));
    // Pushes of one event arrive together, before the reply to a later request.
    bob.client.ping().await.unwrap();
    while let Some(ev) = bob.events.try_recv() {
        assert!(
            !matches!(ev, Event::Push(ServerFrame::Alert { .. })),
            "alert while focused: {ev:?}"
        );
    }
    // Alice is not Bob's contact: her messages are a request Bob answers
    // before he may write.
    let refused = bob.client.send_text(&alice.id(), "hi alice").await;
    assert_eq!(
        refused.as_ref().err().and_then(|e| e.code()),
        Some(ErrorCode::Forbidden),
        "{refused:?}"
    );
    bob.client.accept(&conv).await.unwrap();
    bob.client.send_text(&alice.id(), "hi alice").await.unwrap();
    let m = push(&mut alice.events, |f| {
        matches!(f, ServerFrame::Message { .. })
    })
    .await;
    assert!(
        matches!(&m, ServerFrame::Message { message } if message.seq == 3 && message.from == bob.id())
    );
    let convs = bob.client.conversations().await.unwrap();
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0].peer.as_ref().map(|p| &p.user), Some(&alice.id()));

    // Carol is no member: every way in is not_found (as for a conversation that does not exist), and her sync is empty.
    assert_eq!(
        server_code(carol.client.history(&conv, None, None).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        server_code(carol.client.ack(&conv, 1).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        server_code(carol.client.read(&conv, 1).await),
        ErrorCode::NotFound
    );
    // A focus reveals and stores nothing: accepted for any id.
    carol.client.focus(Some(&conv)).await.unwrap();
    assert!(carol.client.sync(None).await.unwrap().messages.is_empty());

    assert_eq!(chatd.metric("chatd_messages_stored_total").await, 3);
    assert!(chatd.metric("chatd_messages_delivered_total").await >= 3);
    assert!(chatd.metric("chatd_errors_total{code=\"not_found\"}").await >= 3);
}

#[tokio::test]
async fn offline_messages_are_delivered_by_sync_after_reconnect() {
    let chatd = Chatd::start(&[]).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    let bob_id = bob.id();
    let token = bob.session.token.clone().expect("a token");
    bob.client.close().await.unwrap();
    drop(bob);

    for i in 1..=3 {
        alice
            .client
            .send_text(&bob_id, &format!("offline {i}"))
            .await
            .unwrap();
    }

    let (bob, _events) = chatd.connect().await;
    let s = bob.resume(&token).await.unwrap();
    assert_eq!(s.user, bob_id);
    assert!(s.token.is_none(), "resume does not hand out a new token");
    let page = bob.sync(None).await.unwrap();
    let texts: Vec<_> = page
        .messages
        .iter()
        .map(|m| text_of(&m.content).to_owned())
        .collect();
    assert_eq!(texts, ["offline 1", "offline 2", "offline 3"]);
    assert_eq!(
        page.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let conv = page.messages[0].conv.clone();
    bob.ack(&conv, 3).await.unwrap();
    assert!(bob.sync(None).await.unwrap().messages.is_empty());

    // Another device of Bob has its own cursor: it still gets all three.
    let (phone, _e) = chatd.connect().await;
    phone.login("bob", PASSWORD, "phone").await.unwrap();
    assert_eq!(phone.sync(None).await.unwrap().messages.len(), 3);
}

#[tokio::test]
async fn retried_sends_are_stored_once() {
    let chatd = Chatd::start(&[]).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    let token = alice.session.token.clone().expect("a token");

    let first = alice
        .client
        .send(&bob.id(), "cid-1", text("once"))
        .await
        .unwrap();
    let again = alice
        .client
        .send(&bob.id(), "cid-1", text("once"))
        .await
        .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(
        (again.seq, &again.message_id),
        (first.seq, &first.message_id)
    );

    // The same retry after a reconnect, on a resumed session.
    alice.client.close().await.unwrap();
    let (c, _e) = chatd.connect().await;
    c.resume(&token).await.unwrap();
    let third = c
        .send_with_retry(&bob.id(), "cid-1", text("once"), 3)
        .await
        .unwrap();
    assert!(third.duplicate);
    assert_eq!(third.seq, first.seq);

    let page = bob.client.history(&first.conv, None, None).await.unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(chatd.metric("chatd_messages_stored_total").await, 1);
}

#[tokio::test]
async fn password_reset_through_the_dir_mailer_revokes_old_sessions() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let old_token = alice.session.token.clone().expect("a token");
    let (laptop, mut laptop_events) = chatd.connect().await;
    laptop.login("alice", PASSWORD, "laptop").await.unwrap();

    let (anon, _e) = chatd.connect().await;
    anon.reset_request("alice@example.com").await.unwrap();
    // Unknown addresses get the same answer, and no mail.
    anon.reset_request("nobody@example.com").await.unwrap();
    let mail = mail_to(&chatd.mail_dir, "alice@example.com").await;
    assert!(mail.contains("Subject: Reset your password\r\n"), "{mail}");
    let token = reset_token(&mail);
    let link = format!("http://{}/#reset={token}", chatd.addr);
    assert!(mail.contains(&link), "no {link} in {mail}");

    // A weak choice is refused without burning the token.
    assert_eq!(
        server_code(anon.reset_confirm(&token, "password1").await),
        ErrorCode::WeakPassword
    );
    anon.reset_confirm(&token, NEW_PASSWORD).await.unwrap();
    assert_eq!(
        server_code(anon.reset_confirm(&token, NEW_PASSWORD).await),
        ErrorCode::NotFound
    );

    // Every signed-in device is closed as revoked, and cannot resume.
    assert_eq!(closed(&mut alice.events).await.code, 4001);
    assert_eq!(closed(&mut laptop_events).await.code, 4001);
    let (c, _e) = chatd.connect().await;
    assert_eq!(
        server_code(c.resume(&old_token).await),
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        server_code(c.login("alice", PASSWORD, "x").await),
        ErrorCode::Unauthenticated
    );
    c.login("alice", NEW_PASSWORD, "x").await.unwrap();
    let files = std::fs::read_dir(&chatd.mail_dir).unwrap().count();
    assert_eq!(files, 1, "exactly one mail (none for the unknown address)");
}

#[tokio::test]
async fn smtp_mailer_delivers_to_a_real_smtp_server() {
    let probe = std::process::Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .status();
    assert!(
        probe.is_ok_and(|s| s.success()),
        "this test needs aiosmtpd: `python3 -m pip install aiosmtpd` (./scripts/test installs it)"
    );
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut smtpd = Command::new("python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start aiosmtpd");
    timeout(T, async {
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("aiosmtpd did not start");

    let mailer = format!("smtp://127.0.0.1:{port}");
    let chatd = Chatd::start(&[
        "--mailer",
        &mailer,
        "--smtp-starttls",
        "never",
        "--mail-from",
        "Chat <chat@example.org>",
    ])
    .await;
    let _alice = chatd.user("alice").await;
    let (anon, _e) = chatd.connect().await;
    anon.reset_request("alice@example.com").await.unwrap();

    let mut out = BufReader::new(smtpd.stdout.take().expect("piped")).lines();
    let mut message = String::new();
    timeout(T, async {
        while let Some(line) = out.next_line().await.expect("aiosmtpd output") {
            if line.contains("END MESSAGE") {
                break;
            }
            message.push_str(&line);
            message.push('\n');
        }
    })
    .await
    .expect("no mail reached the SMTP server");
    assert!(
        message.contains("Subject: Reset your password"),
        "{message}"
    );
    assert!(message.contains("To: alice@example.com"), "{message}");
    assert!(
        message.contains("From: Chat <chat@example.org>"),
        "{message}"
    );
    let token = reset_token(&message);
    anon.reset_confirm(&token, NEW_PASSWORD).await.unwrap();
    let (c, _e) = chatd.connect().await;
    c.login("alice", NEW_PASSWORD, "x").await.unwrap();
}

#[tokio::test]
async fn bad_input_gets_errors_and_leaves_the_server_and_others_alone() {
    let chatd = Chatd::start(&[]).await;
    let bystander = chatd.user("bystander").await;
    let mp = Codec::MsgPack;

    let mut ws = RawWs::connect(chatd.addr, &[]).await.expect("upgrade");
    assert_eq!(
        ws.header("sec-websocket-protocol"),
        None,
        "MessagePack is the default"
    );
    // Garbage bytes.
    ws.send(2, &[0xc1, 0xff, 0x00, 0x13, 0x37]).await;
    assert_eq!(
        error_of(&ws.recv(mp).await),
        (None, ErrorCode::InvalidFrame, None)
    );
    // A text message on a MessagePack connection.
    ws.send(1, br#"{"type":"ping","id":1}"#).await;
    assert_eq!(error_of(&ws.recv(mp).await).1, ErrorCode::InvalidFrame);
    // Anything before hello.
    let login = ClientFrame::Login {
        id: 7,
        login: "x".into(),
        password: "y".into(),
        device: "z".into(),
    };
    ws.send_frame(mp, &login).await;
    assert_eq!(
        error_of(&ws.recv(mp).await),
        (Some(7), ErrorCode::InvalidFrame, None)
    );
    ws.send_frame(mp, &hello(8)).await;
    assert!(matches!(
        ws.recv(mp).await,
        ServerFrame::Welcome { id: 8, .. }
    ));
    // Requests before signing in.
    let search = ClientFrame::SearchUsers {
        id: 9,
        query: String::new(),
        after: None,
        limit: None,
    };
    ws.send_frame(mp, &search).await;
    assert_eq!(
        error_of(&ws.recv(mp).await),
        (Some(9), ErrorCode::Unauthenticated, None)
    );
    // Unknown fields and unknown frame types; the id is still recovered.
    ws.send_frame(
        mp,
        &serde_json::json!({"type": "ping", "id": 10, "bogus": 1}),
    )
    .await;
    assert_eq!(
        error_of(&ws.recv(mp).await),
        (Some(10), ErrorCode::InvalidFrame, None)
    );
    ws.send_frame(mp, &serde_json::json!({"type": "launch", "id": 11}))
        .await;
    assert_eq!(
        error_of(&ws.recv(mp).await),
        (Some(11), ErrorCode::InvalidFrame, None)
    );
    // A huge string inside an acceptable message.
    let mut reg = registration("x");
    reg.username = "a".repeat(5000);
    let huge = ClientFrame::Register {
        id: 12,
        username: reg.username,
        email: reg.email,
        phone: reg.phone,
        display_name: reg.display_name,
        password: reg.password,
        device: reg.device,
    };
    ws.send_frame(mp, &huge).await;
    assert_eq!(
        error_of(&ws.recv(mp).await),
        (Some(12), ErrorCode::TooLarge, Some("username".into()))
    );
    // Still a working connection.
    ws.send_frame(mp, &ClientFrame::Ping { id: 13 }).await;
    assert_eq!(ws.recv(mp).await, ServerFrame::Pong { id: 13 });

    // JSON connections: binary messages and unknown fields are refused the same way.
    let mut js = RawWs::connect(
        chatd.addr,
        &[("Sec-WebSocket-Protocol", "chatcore.v1.json")],
    )
    .await
    .expect("upgrade");
    assert_eq!(
        js.header("sec-websocket-protocol"),
        Some("chatcore.v1.json")
    );
    js.send(1, br#"{"type":"hello","id":1,"version":4}"#).await;
    assert!(matches!(
        js.recv(Codec::Json).await,
        ServerFrame::Welcome { id: 1, .. }
    ));
    js.send(1, br#"{"type":"ping","id":2,"extra":true}"#).await;
    assert_eq!(
        error_of(&js.recv(Codec::Json).await),
        (Some(2), ErrorCode::InvalidFrame, None)
    );
    js.send(2, &[1, 2, 3]).await;
    assert_eq!(
        error_of(&js.recv(Codec::Json).await).1,
        ErrorCode::InvalidFrame
    );
    js.send(1, b"{not json").await;
    assert_eq!(
        error_of(&js.recv(Codec::Json).await).1,
        ErrorCode::InvalidFrame
    );

    // A message over the size limit closes that connection with 1009.
    ws.send(2, &vec![0x90; 100 * 1024]).await;
    assert_eq!(ws.close_code().await.0, 1009);

    // Everyone else is untouched.
    bystander.client.ping().await.unwrap();
    js.send(1, br#"{"type":"ping","id":3}"#).await;
    assert_eq!(js.recv(Codec::Json).await, ServerFrame::Pong { id: 3 });
    assert_eq!(chatd.http("GET", "/healthz").await.0, 200);
    assert_eq!(
        chatd.metric("chatd_ws_closes_total{code=\"1009\"}").await,
        1
    );
    assert!(
        chatd
            .metric("chatd_errors_total{code=\"invalid_frame\"}")
            .await
            >= 8
    );
    assert_eq!(
        chatd.metric("chatd_errors_total{code=\"too_large\"}").await,
        1
    );
}

#[tokio::test]
async fn subprotocols_choose_the_codec() {
    let chatd = Chatd::start(&[]).await;
    // The JSON codec end to end, through the client library.
    let (json, _e) = chatd
        .connect_with(ConnectOptions::new().codec(Codec::Json))
        .await;
    json.register(&registration("jason")).await.unwrap();
    json.ping().await.unwrap();
    // The client's first offer that the server speaks wins.
    let ws = RawWs::connect(
        chatd.addr,
        &[(
            "Sec-WebSocket-Protocol",
            "chatcore.v9.cbor, chatcore.v1.msgpack, chatcore.v1.json",
        )],
    )
    .await
    .expect("upgrade");
    assert_eq!(
        ws.header("sec-websocket-protocol"),
        Some("chatcore.v1.msgpack")
    );
    // Only unknown ones: refused.
    let refused = RawWs::connect(chatd.addr, &[("Sec-WebSocket-Protocol", "mqtt")]).await;
    assert_eq!(refused.err(), Some(400));
}

#[tokio::test]
async fn origin_allowlist_stops_cross_site_websockets() {
    let chatd = Chatd::start(&["--allowed-origin", "https://app.example"]).await;
    let evil = Client::connect(
        &chatd.url(),
        ConnectOptions::new().origin("https://evil.example"),
    )
    .await;
    assert_eq!(evil.err().and_then(|e| e.http_status()), Some(403));
    let lookalike = RawWs::connect(
        chatd.addr,
        &[("Origin", "https://app.example.evil.example")],
    )
    .await;
    assert_eq!(lookalike.err(), Some(403));
    // Listed, same-origin (the default public URL), and no Origin at all (not a browser).
    chatd
        .connect_with(ConnectOptions::new().origin("https://app.example"))
        .await;
    let own = format!("http://{}", chatd.addr);
    chatd.connect_with(ConnectOptions::new().origin(own)).await;
    chatd.connect().await;
    assert_eq!(
        chatd
            .metric("chatd_upgrades_rejected_total{reason=\"origin\"}")
            .await,
        2
    );
}

#[tokio::test]
async fn connection_limit_refuses_upgrades_with_503() {
    let chatd = Chatd::start(&["--max-connections", "2"]).await;
    let (first, mut first_events) = chatd.connect().await;
    let _second = chatd.connect().await;
    let third = Client::connect(&chatd.url(), ConnectOptions::new()).await;
    assert_eq!(third.err().and_then(|e| e.http_status()), Some(503));
    // A slot frees when a connection ends.
    first.close().await.unwrap();
    closed(&mut first_events).await;
    timeout(T, async {
        loop {
            match Client::connect(&chatd.url(), ConnectOptions::new()).await {
                Ok(_) => break,
                Err(e) if e.http_status() == Some(503) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("the slot was never freed");
}

#[tokio::test]
async fn unauthenticated_connections_are_closed_after_the_auth_timeout() {
    let chatd = Chatd::start(&["--auth-timeout-secs", "1"]).await;
    let (_c, mut events) = chatd.connect().await;
    let close = closed(&mut events).await;
    assert_eq!(close.code, 1008, "{close:?}");
}

#[tokio::test]
async fn silent_connections_are_closed_and_answering_ones_kept() {
    let chatd = Chatd::start(&[
        "--ping-interval-secs",
        "1",
        "--idle-timeout-secs",
        "2",
        "--auth-timeout-secs",
        "120",
    ])
    .await;
    // This client's reader answers every ping.
    let (alive, _events) = chatd.connect().await;
    // This one never answers: the server pings it, then closes it.
    let mut silent = RawWs::connect(chatd.addr, &[]).await.expect("upgrade");
    let mut pings = 0;
    let code = loop {
        match silent.read_frame().await {
            Some((9, _)) => pings += 1,
            Some((8, payload)) => break close_of(&payload),
            Some(other) => panic!("unexpected frame {other:?}"),
            None => panic!("closed without a close frame"),
        }
    };
    assert_eq!(code, (1001, "idle timeout".to_owned()));
    assert!(pings >= 1, "the server pinged before giving up");
    // The answering client connected earlier and has been silent as long, but is kept.
    alive.ping().await.unwrap();
}

#[tokio::test]
async fn frame_rate_limit_answers_rate_limited() {
    let chatd = Chatd::start(&["--frames-per-second", "1", "--frame-burst", "5"]).await;
    let (c, _e) = chatd.connect().await;
    let mut limited = None;
    for _ in 0..10 {
        if let Err(e) = c.ping().await {
            limited = Some(e);
            break;
        }
    }
    match limited {
        Some(Error::Server(e)) => {
            assert_eq!(e.code, ErrorCode::RateLimited);
            assert!(e.retry_after_ms.is_some_and(|ms| ms > 0));
        }
        other => panic!("expected rate_limited, got {other:?}"),
    }
}

#[tokio::test]
async fn slow_consumer_is_disconnected_and_loses_nothing() {
    let chatd = Chatd::start(&[
        "--outbound-queue",
        "4",
        "--frames-per-second",
        "100000",
        "--frame-burst",
        "100000",
    ])
    .await;
    let mut alice = chatd.user("alice").await;
    let alice_id = alice.id();
    let token = alice.session.token.clone().expect("a token");
    alice.client.close().await.unwrap();
    closed(&mut alice.events).await;
    let bob = chatd.user("bob").await;

    // Alice resumes on a socket with a tiny receive buffer and stops reading.
    let mut slow = RawWs::connect_with_rcvbuf(chatd.addr, &[], Some(4096))
        .await
        .expect("upgrade");
    slow.send_frame(Codec::MsgPack, &hello(1)).await;
    slow.send_frame(
        Codec::MsgPack,
        &ClientFrame::Resume {
            id: 2,
            token: token.clone(),
        },
    )
    .await;
    assert!(matches!(
        slow.recv(Codec::MsgPack).await,
        ServerFrame::Welcome { .. }
    ));
    assert!(matches!(
        slow.recv(Codec::MsgPack).await,
        ServerFrame::Session { .. }
    ));

    let body = "x".repeat(15_000);
    let mut sent = 0u64;
    while chatd.metric("chatd_slow_consumers_total").await == 0 {
        assert!(sent < 5000, "never disconnected as a slow consumer");
        for _ in 0..25 {
            bob.client.send_text(&alice_id, &body).await.unwrap();
            sent += 1;
        }
    }
    assert_eq!(slow.close_code().await.0, 4008);

    // Alice reconnects and syncs: every message is there.
    let (c, _e) = chatd.connect().await;
    c.resume(&token).await.unwrap();
    let mut received = 0u64;
    loop {
        let page = c.sync(Some(100)).await.unwrap();
        received += page.messages.len() as u64;
        if let Some(last) = page.messages.last() {
            c.ack(&last.conv, last.seq).await.unwrap();
        }
        if !page.more {
            break;
        }
    }
    assert_eq!(received, sent);
}

#[tokio::test]
async fn sigterm_closes_connections_with_1001_and_exits_cleanly() {
    let mut chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let (_anon, mut anon_events) = chatd.connect().await;
    chatd.terminate();
    assert_eq!(closed(&mut alice.events).await.code, 1001);
    assert_eq!(closed(&mut anon_events).await.code, 1001);
    let exit = timeout(T, chatd.child.wait())
        .await
        .expect("chatd did not exit")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn failed_logins_are_rate_limited_as_configured() {
    let chatd = Chatd::start(&["--login-failures-per-account", "2"]).await;
    let _alice = chatd.user("alice").await;
    let (c, _events) = chatd.connect().await;
    for _ in 0..2 {
        assert_eq!(
            server_code(c.login("alice", "not the password at all", "e2e").await),
            ErrorCode::Unauthenticated
        );
    }
    match c.login("alice", PASSWORD, "e2e").await {
        Err(e) => assert_eq!(e.code(), Some(ErrorCode::RateLimited), "{e:?}"),
        Ok(s) => panic!("a third attempt must wait, even with the right password: {s:?}"),
    }
}
