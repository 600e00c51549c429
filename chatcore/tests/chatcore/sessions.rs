//! Whole sessions through a real `Server` over in-process channels.

use chatcore::account::Argon2Config;
use chatcore::memory::MemoryMailer;
use chatcore::model::{Content, ConversationId, UserId};
use chatcore::protocol::{ClientFrame, ContactAction, ErrorCode, ServerFrame, PROTOCOL_VERSION};
use chatcore::server::{Clock, ManualClock};
use chatcore::session::{connect_in_process, Disconnect, InProcess, PeerInfo};
use chatcore::store::Quota;
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Config, Server};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The password of every user the tests register.
pub(crate) const PW: &str = "tangerine submarine orchestra 77";
const WAIT: Duration = Duration::from_secs(20);

pub(crate) struct Client {
    pub(crate) conn: InProcess,
    next: u32,
    pub(crate) pushes: Vec<ServerFrame>,
    pub(crate) user: Option<UserId>,
    pub(crate) token: Option<String>,
}

impl Client {
    pub(crate) async fn connect(server: &Arc<Server>) -> Client {
        Self::connect_from(server, None, 64).await
    }

    /// A connection that says `hello` with protocol `version`.
    pub(crate) async fn connect_version(server: &Arc<Server>, version: u32) -> Client {
        Self::connect_with(server, None, 64, version).await
    }

    pub(crate) async fn connect_from(
        server: &Arc<Server>,
        addr: Option<std::net::IpAddr>,
        capacity: usize,
    ) -> Client {
        Self::connect_with(server, addr, capacity, PROTOCOL_VERSION).await
    }

    async fn connect_with(
        server: &Arc<Server>,
        addr: Option<std::net::IpAddr>,
        capacity: usize,
        version: u32,
    ) -> Client {
        let conn = connect_in_process(
            server.clone(),
            PeerInfo::new(addr),
            capacity,
            CancellationToken::new(),
        );
        let mut c = Client {
            conn,
            next: 0,
            pushes: Vec::new(),
            user: None,
            token: None,
        };
        match c
            .req(|id| ClientFrame::Hello {
                id,
                version,
                client: Some("test".into()),
            })
            .await
        {
            ServerFrame::Welcome { version: v, .. } if v == version => {}
            other => panic!("hello: {other:?}"),
        }
        c
    }

    pub(crate) async fn req(&mut self, make: impl FnOnce(u32) -> ClientFrame) -> ServerFrame {
        self.next += 1;
        let id = self.next;
        self.conn
            .tx
            .send(Ok(make(id)))
            .await
            .expect("session alive");
        loop {
            let f = tokio::time::timeout(WAIT, self.conn.rx.next())
                .await
                .expect("reply in time")
                .expect("connection open");
            if f.id().is_none() && !matches!(f, ServerFrame::Error { .. }) {
                self.pushes.push(f);
            } else if f.id() == Some(id) {
                return f;
            } else {
                panic!("unexpected frame {f:?}");
            }
        }
    }

    /// The next push, waiting for it if none is buffered.
    pub(crate) async fn push(&mut self) -> ServerFrame {
        if !self.pushes.is_empty() {
            return self.pushes.remove(0);
        }
        tokio::time::timeout(WAIT, self.conn.rx.next())
            .await
            .expect("push in time")
            .expect("open")
    }

    /// Pushes received so far (a ping round-trip first flushes what is queued).
    pub(crate) async fn drain(&mut self) -> Vec<ServerFrame> {
        assert!(matches!(
            self.req(|id| ClientFrame::Ping { id }).await,
            ServerFrame::Pong { .. }
        ));
        std::mem::take(&mut self.pushes)
    }

    pub(crate) async fn register(&mut self, name: &str, phone: &str) -> UserId {
        let reply = self
            .req(|id| ClientFrame::Register {
                id,
                username: name.into(),
                email: format!("{name}@example.com"),
                phone: phone.into(),
                display_name: format!("{name} Example"),
                password: PW.into(),
                device: "laptop".into(),
            })
            .await;
        let ServerFrame::Session {
            user,
            token: Some(token),
            ..
        } = reply
        else {
            panic!("register {name}: {reply:?}")
        };
        self.user = Some(user.clone());
        self.token = Some(token);
        user
    }

    pub(crate) async fn login(&mut self, login: &str, password: &str) -> ServerFrame {
        let reply = self
            .req(|id| ClientFrame::Login {
                id,
                login: login.into(),
                password: password.into(),
                device: "phone".into(),
            })
            .await;
        if let ServerFrame::Session { user, token, .. } = &reply {
            self.user = Some(user.clone());
            self.token.clone_from(token);
        }
        reply
    }

    pub(crate) async fn send(&mut self, to: &UserId, client_id: &str, text: &str) -> ServerFrame {
        self.req(|id| ClientFrame::Send {
            media: Vec::new(),
            mentions: Vec::new(),
            rel: None,
            id,
            conv: None,
            to: Some(to.clone()),
            client_id: client_id.into(),
            content: Content::Text { text: text.into() },
        })
        .await
    }

    pub(crate) async fn closed(self) -> Disconnect {
        tokio::time::timeout(WAIT, self.conn.task)
            .await
            .expect("closes in time")
            .expect("task ok")
    }
}

pub(crate) fn code(f: &ServerFrame) -> Option<ErrorCode> {
    match f {
        ServerFrame::Error { code, .. } => Some(*code),
        _ => None,
    }
}

pub(crate) fn server() -> Arc<Server> {
    Server::new(Backends::memory(), fast_config()).unwrap()
}

fn server_with_mailer() -> (Arc<Server>, Arc<MemoryMailer>, Arc<ManualClock>) {
    let mailer = Arc::new(MemoryMailer::new());
    let clock = Arc::new(ManualClock::new(chatcore::model::now_millis()));
    let s = Server::with_clock(
        Backends::memory_with_mailer(mailer.clone()),
        fast_config(),
        clock.clone(),
    )
    .unwrap();
    (s, mailer, clock)
}

pub(crate) async fn two_users(s: &Arc<Server>) -> (Client, Client, UserId, UserId) {
    let mut a = Client::connect(s).await;
    let alice = a.register("alice", "+441111111111").await;
    let mut b = Client::connect(s).await;
    let bob = b.register("bob", "+442222222222").await;
    (a, b, alice, bob)
}

/// Alice and Bob, contacts, with their direct conversation and Alice's
/// "hello" in it (seq 1); both connections drained.
pub(crate) async fn contacts(s: &Arc<Server>) -> (Client, Client, UserId, UserId, ConversationId) {
    let (mut a, mut b, alice, bob) = two_users(s).await;
    for (c, other) in [(&mut a, &bob), (&mut b, &alice)] {
        let other = other.clone();
        let r = c
            .req(|id| ClientFrame::Contact {
                id,
                user: other,
                action: ContactAction::Request,
            })
            .await;
        assert!(!matches!(r, ServerFrame::Error { .. }), "{r:?}");
    }
    let r = a.send(&bob, "hello", "hello").await;
    assert!(matches!(r, ServerFrame::Sent { .. }), "{r:?}");
    a.drain().await;
    b.drain().await;
    let conv = ConversationId::direct(&alice, &bob);
    (a, b, alice, bob, conv)
}

#[tokio::test]
async fn registration_reports_each_broken_rule_and_each_taken_field() {
    let s = server();
    let mut c = Client::connect(&s).await;
    let reg = |username: &str, email: &str, phone: &str, password: &str| {
        let (u, e, p, pw) = (
            username.to_owned(),
            email.to_owned(),
            phone.to_owned(),
            password.to_owned(),
        );
        move |id| ClientFrame::Register {
            id,
            username: u,
            email: e,
            phone: p,
            display_name: "X".into(),
            password: pw,
            device: "d".into(),
        }
    };
    match c
        .req(reg("carol", "carol@example.com", "+443333333333", "carol"))
        .await
    {
        ServerFrame::Error {
            code: ErrorCode::WeakPassword,
            violations,
            field,
            ..
        } => {
            assert_eq!(field.as_deref(), Some("password"));
            assert!(
                violations.contains(&"too_short".to_owned()),
                "{violations:?}"
            );
            assert!(
                violations.contains(&"contains_username".to_owned()),
                "{violations:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    match c
        .req(reg(
            "carol",
            "carol@example.com",
            "+443333333333",
            "password1234",
        ))
        .await
    {
        ServerFrame::Error {
            code: ErrorCode::WeakPassword,
            violations,
            ..
        } => {
            assert_eq!(violations, ["common"])
        }
        other => panic!("{other:?}"),
    }
    for (u, e, p, field) in [
        ("c", "carol@example.com", "+443333333333", "username"),
        ("carol", "carol-at-example", "+443333333333", "email"),
        ("carol", "carol@example.com", "0207", "phone"),
    ] {
        match c.req(reg(u, e, p, PW)).await {
            ServerFrame::Error {
                code: ErrorCode::InvalidArgument,
                field: f,
                ..
            } => assert_eq!(f.as_deref(), Some(field)),
            other => panic!("{field}: {other:?}"),
        }
    }
    let mut first = Client::connect(&s).await;
    first.register("Dora", "+444444444444").await;
    for (u, e, p, field) in [
        ("ＤＯＲＡ", "x1@example.com", "+445555555551", "username"),
        ("dora2", "DORA@example.com", "+445555555552", "email"),
        ("dora3", "x3@example.com", "+44 444 444 4444", "phone"),
    ] {
        match c.req(reg(u, e, p, PW)).await {
            ServerFrame::Error {
                code: ErrorCode::Conflict,
                field: f,
                ..
            } => assert_eq!(f.as_deref(), Some(field)),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn frames_out_of_order_get_clear_errors() {
    let s = server();
    let mut raw = connect_in_process(s.clone(), PeerInfo::default(), 8, CancellationToken::new());
    raw.tx.send(Ok(ClientFrame::Ping { id: 1 })).await.unwrap();
    let f = raw.rx.next().await.unwrap();
    assert_eq!(
        (f.id(), code(&f)),
        (Some(1), Some(ErrorCode::InvalidFrame)),
        "hello comes first"
    );
    let mut c = Client::connect(&s).await;
    assert_eq!(
        code(&c.req(|id| ClientFrame::Sync { id, limit: None }).await),
        Some(ErrorCode::Unauthenticated)
    );
    assert_eq!(
        code(
            &c.req(|id| ClientFrame::Hello {
                id,
                version: 4,
                client: None
            })
            .await
        ),
        Some(ErrorCode::InvalidFrame)
    );
    let bad = chatcore::protocol::Codec::Json
        .decode_client(br#"{"type":"ping","id":77,"x":1}"#)
        .unwrap_err();
    c.conn.tx.send(Err(bad)).await.unwrap();
    let f = c.conn.rx.next().await.unwrap();
    assert_eq!(
        (f.id(), code(&f)),
        (Some(77), Some(ErrorCode::InvalidFrame))
    );
    c.register("gwen", "+446666666666").await;
    assert_eq!(
        code(&c.login("erin", PW).await),
        Some(ErrorCode::Forbidden),
        "one account per connection"
    );
    let huge = "x".repeat(s.config().max_text_bytes + 1);
    let me = c.user.clone().unwrap();
    let f = c.send(&me, "big", &huge).await;
    assert_eq!(code(&f), Some(ErrorCode::TooLarge));

    // Version 1 clients cannot follow stored conversations: refused, closed.
    for version in [0, 1] {
        let mut old =
            connect_in_process(s.clone(), PeerInfo::default(), 8, CancellationToken::new());
        old.tx
            .send(Ok(ClientFrame::Hello {
                id: 1,
                version,
                client: None,
            }))
            .await
            .unwrap();
        assert_eq!(
            code(&old.rx.next().await.unwrap()),
            Some(ErrorCode::UnsupportedVersion)
        );
        assert_eq!(old.task.await.unwrap(), Disconnect::UnsupportedVersion);
    }
}

#[tokio::test]
async fn login_by_username_or_email_and_rate_limits_failures() {
    let mut config = fast_config();
    config.login_per_account = Quota {
        max: 3,
        window_ms: 60_000,
    };
    config.login_per_address = Quota {
        max: 5,
        window_ms: 60_000,
    };
    let s = Server::new(Backends::memory(), config).unwrap();
    let mut a = Client::connect(&s).await;
    let alice = a.register("alice", "+441111111111").await;
    let addr = Some("10.0.0.1".parse().unwrap());
    let mut c = Client::connect_from(&s, addr, 64).await;
    assert!(
        matches!(c.login("ALICE@example.com", PW).await, ServerFrame::Session { ref user, .. } if *user == alice)
    );
    let mut c = Client::connect_from(&s, addr, 64).await;
    for _ in 0..3 {
        assert_eq!(
            code(&c.login("alice", "wrong password here").await),
            Some(ErrorCode::Unauthenticated)
        );
    }
    match c.login("alice", PW).await {
        ServerFrame::Error {
            code: ErrorCode::RateLimited,
            retry_after_ms: Some(ms),
            ..
        } => {
            assert!(ms > 0 && ms <= 60_000, "{ms}")
        }
        other => panic!("expected rate_limited, got {other:?}"),
    }
    // Per address: unknown accounts count too, and other addresses are not affected.
    for n in 0..2 {
        assert_eq!(
            code(&c.login(&format!("ghost{n}"), "whatever it is").await),
            Some(ErrorCode::Unauthenticated)
        );
    }
    assert_eq!(
        code(&c.login("ghost9", "whatever it is").await),
        Some(ErrorCode::RateLimited)
    );
    let mut other = Client::connect_from(&s, Some("10.0.0.2".parse().unwrap()), 64).await;
    assert_eq!(
        code(&other.login("ghost9", "whatever it is").await),
        Some(ErrorCode::Unauthenticated)
    );
}

#[tokio::test]
async fn two_users_chat_with_pushes_alerts_and_focus() {
    let s = server();
    let (mut a, mut b, alice, bob) = two_users(&s).await;
    let mut a2 = Client::connect(&s).await;
    assert!(matches!(
        a2.login("alice", PW).await,
        ServerFrame::Session { .. }
    ));
    let conv = ConversationId::direct(&alice, &bob);
    assert!(
        matches!(a.drain().await.as_slice(), [ServerFrame::DevicesChanged { user }] if *user == alice),
        "alice's first device hears of the second"
    );

    let sent = a.send(&bob, "m1", "hi bob").await;
    assert!(
        matches!(sent, ServerFrame::Sent { seq: 1, duplicate: false, ref conv, .. } if *conv == ConversationId::direct(&alice, &bob))
    );
    match b.push().await {
        ServerFrame::Message { message } => {
            assert_eq!(
                (message.seq, &message.from, &message.conv),
                (1, &alice, &conv)
            );
            assert_eq!(
                message.content,
                Content::Text {
                    text: "hi bob".into()
                }
            );
        }
        other => panic!("{other:?}"),
    }
    match b.push().await {
        ServerFrame::Alert {
            seq: 1, ref from, ..
        } => assert_eq!(from, &alice),
        other => panic!("expected an alert, bob is not looking: {other:?}"),
    }
    let on_a2 = a2.drain().await;
    assert!(
        matches!(on_a2.as_slice(), [ServerFrame::Message { message }] if message.seq == 1),
        "sender's other device: {on_a2:?}"
    );
    assert!(
        a.drain().await.is_empty(),
        "the sending connection has its `sent` and no echo"
    );

    assert!(matches!(
        b.req(|id| ClientFrame::Focus {
            id,
            conv: Some(conv.clone())
        })
        .await,
        ServerFrame::Ok { .. }
    ));
    a.send(&bob, "m2", "are you there?").await;
    let seen = b.drain().await;
    assert!(
        matches!(seen.as_slice(), [ServerFrame::Message { message }] if message.seq == 2),
        "focused: no alert: {seen:?}"
    );
    // Alice is not Bob's contact: her first message made a message request,
    // listed apart, which Bob answers before he writes.
    let listed = |f: ServerFrame| match f {
        ServerFrame::Conversations { conversations, .. } => conversations
            .into_iter()
            .map(|c| (c.conv, c.request.map(|r| r.by.user)))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    let requests = Some(chatcore::protocol::ConversationList::Requests);
    let reply = b.send(&alice, "r1", "yes").await;
    assert!(
        matches!(&reply, ServerFrame::Error { code: ErrorCode::Forbidden, message, .. } if message.contains("accept")),
        "{reply:?}"
    );
    let waiting = listed(
        b.req(|id| ClientFrame::Conversations {
            id,
            list: requests,
            after: None,
            limit: None,
        })
        .await,
    );
    assert_eq!(waiting, [(conv.clone(), Some(alice.clone()))]);
    assert!(listed(
        b.req(|id| ClientFrame::Conversations {
            id,
            list: None,
            after: None,
            limit: None,
        })
        .await
    )
    .is_empty());
    assert!(matches!(
        b.req(|id| ClientFrame::Accept {
            id,
            conv: conv.clone()
        })
        .await,
        ServerFrame::Conversation { .. }
    ));
    let reply = b.send(&alice, "r1", "yes").await;
    assert!(
        matches!(reply, ServerFrame::Sent { seq: 3, .. }),
        "{reply:?}"
    );

    match b
        .req(|id| ClientFrame::History {
            id,
            conv: conv.clone(),
            before: None,
            limit: Some(2),
        })
        .await
    {
        ServerFrame::Messages { messages, more, .. } => {
            assert_eq!(messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [2, 3]);
            assert!(more);
        }
        other => panic!("{other:?}"),
    }
    match a
        .req(|id| ClientFrame::Conversations {
            id,
            list: None,
            after: None,
            limit: None,
        })
        .await
    {
        ServerFrame::Conversations { conversations, .. } => {
            assert_eq!(conversations.len(), 1);
            assert_eq!((conversations[0].unread, conversations[0].last_seq), (1, 3));
            assert_eq!(conversations[0].peer.as_ref().map(|p| &p.user), Some(&bob));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        a.req(|id| ClientFrame::Read {
            id,
            conv: conv.clone(),
            seq: 3
        })
        .await,
        ServerFrame::Ok { .. }
    ));
    match a
        .req(|id| ClientFrame::Conversations {
            id,
            list: None,
            after: None,
            limit: None,
        })
        .await
    {
        ServerFrame::Conversations { conversations, .. } => assert_eq!(conversations[0].unread, 0),
        other => panic!("{other:?}"),
    }
    let f = a
        .req(|id| ClientFrame::Read {
            id,
            conv: conv.clone(),
            seq: 99,
        })
        .await;
    assert_eq!(
        code(&f),
        Some(ErrorCode::InvalidArgument),
        "cannot mark beyond the head"
    );
}

#[tokio::test]
async fn a_third_user_cannot_touch_a_conversation() {
    let s = server();
    let (mut a, _b, alice, bob) = two_users(&s).await;
    a.send(&bob, "m1", "secret").await;
    let mut eve = Client::connect(&s).await;
    eve.register("eve", "+449999999999").await;
    let conv = ConversationId::direct(&alice, &bob);
    for f in [
        eve.req(|id| ClientFrame::History {
            id,
            conv: conv.clone(),
            before: None,
            limit: None,
        })
        .await,
        eve.req(|id| ClientFrame::Ack {
            id,
            conv: conv.clone(),
            seq: 1,
        })
        .await,
        eve.req(|id| ClientFrame::Read {
            id,
            conv: conv.clone(),
            seq: 1,
        })
        .await,
    ] {
        assert_eq!(code(&f), Some(ErrorCode::NotFound), "{f:?}");
    }
    // A focus tells nothing and stores nothing: any id is accepted alike.
    let focus = eve
        .req(|id| ClientFrame::Focus {
            id,
            conv: Some(conv.clone()),
        })
        .await;
    assert!(matches!(focus, ServerFrame::Ok { .. }), "{focus:?}");
    match eve.req(|id| ClientFrame::Sync { id, limit: None }).await {
        ServerFrame::Synced { messages, .. } => assert!(messages.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn retried_sends_are_stored_once() {
    let s = server();
    let (mut a, mut b, alice, bob) = two_users(&s).await;
    let first = a.send(&bob, "same-id", "once").await;
    let again = a.send(&bob, "same-id", "once").await;
    match (first, again) {
        (
            ServerFrame::Sent {
                message_id: m1,
                seq: 1,
                duplicate: false,
                ..
            },
            ServerFrame::Sent {
                message_id: m2,
                seq: 1,
                duplicate: true,
                ..
            },
        ) => {
            assert_eq!(m1, m2)
        }
        other => panic!("{other:?}"),
    }
    let pushes = b.drain().await;
    assert_eq!(
        pushes
            .iter()
            .filter(|p| matches!(p, ServerFrame::Message { .. }))
            .count(),
        1,
        "pushed once"
    );
    let carol = {
        let mut c = Client::connect(&s).await;
        c.register("carol", "+443333333333").await
    };
    assert_eq!(
        code(&a.send(&carol, "same-id", "other").await),
        Some(ErrorCode::Conflict),
        "a client id names one message"
    );
    let hist = b
        .req(|id| ClientFrame::History {
            id,
            conv: ConversationId::direct(&alice, &bob),
            before: None,
            limit: None,
        })
        .await;
    assert!(matches!(hist, ServerFrame::Messages { ref messages, .. } if messages.len() == 1));
}

#[tokio::test]
async fn offline_messages_arrive_at_the_next_login_and_not_again_after_ack() {
    let s = server();
    let (mut a, b, _alice, bob) = two_users(&s).await;
    let token = b.token.clone().unwrap();
    drop(b);
    for i in 1..=5 {
        a.send(&bob, &format!("o{i}"), &format!("while you were away {i}"))
            .await;
    }
    let mut b = Client::connect(&s).await;
    assert!(matches!(
        b.req(|id| ClientFrame::Resume {
            id,
            token: token.clone()
        })
        .await,
        ServerFrame::Session { token: None, .. }
    ));
    let (page1, more) = match b.req(|id| ClientFrame::Sync { id, limit: Some(3) }).await {
        ServerFrame::Synced { messages, more, .. } => (messages, more),
        other => panic!("{other:?}"),
    };
    assert_eq!(page1.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(more);
    let conv = page1[0].conv.clone();
    assert!(matches!(
        b.req(|id| ClientFrame::Ack {
            id,
            conv: conv.clone(),
            seq: 3
        })
        .await,
        ServerFrame::Ok { .. }
    ));
    match b.req(|id| ClientFrame::Sync { id, limit: Some(3) }).await {
        ServerFrame::Synced {
            messages,
            more: false,
            ..
        } => assert_eq!(messages.iter().map(|m| m.seq).collect::<Vec<_>>(), [4, 5]),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        b.req(|id| ClientFrame::Ack {
            id,
            conv: conv.clone(),
            seq: 5
        })
        .await,
        ServerFrame::Ok { .. }
    ));
    assert!(matches!(
        b.req(|id| ClientFrame::Ack {
            id,
            conv: conv.clone(),
            seq: 2
        })
        .await,
        ServerFrame::Ok { .. }
    ));
    match b.req(|id| ClientFrame::Sync { id, limit: None }).await {
        ServerFrame::Synced {
            messages,
            more: false,
            ..
        } => assert!(messages.is_empty(), "acknowledged, so never again"),
        other => panic!("{other:?}"),
    }
    let f = b
        .req(|id| ClientFrame::Ack {
            id,
            conv: conv.clone(),
            seq: 6,
        })
        .await;
    assert_eq!(
        code(&f),
        Some(ErrorCode::InvalidArgument),
        "acks beyond the head would swallow future messages"
    );
}

#[tokio::test]
async fn presence_changes_are_pushed_to_watchers() {
    let s = server();
    let (a, mut b, alice, _bob) = two_users(&s).await;
    match b
        .req(|id| ClientFrame::SearchUsers {
            id,
            query: "AL".into(),
            after: None,
            limit: None,
        })
        .await
    {
        ServerFrame::Users {
            users, next: None, ..
        } => {
            assert_eq!(users.len(), 1);
            assert_eq!(users[0].profile.user, alice);
            assert!(users[0].presence.online);
        }
        other => panic!("{other:?}"),
    }
    drop(a);
    match b.push().await {
        ServerFrame::Presence { presence } => {
            assert_eq!(presence.user, alice);
            assert!(!presence.online);
            assert!(presence.last_seen.is_some());
        }
        other => panic!("{other:?}"),
    }
    let mut a = Client::connect(&s).await;
    assert!(matches!(
        a.login("alice", PW).await,
        ServerFrame::Session { .. }
    ));
    assert!(
        matches!(b.push().await, ServerFrame::Presence { presence } if presence.online && presence.user == alice)
    );
    // A new search that no longer lists alice stops her presence pushes.
    b.req(|id| ClientFrame::SearchUsers {
        id,
        query: "zzz".into(),
        after: None,
        limit: None,
    })
    .await;
    drop(a);
    assert!(b.drain().await.is_empty(), "{:?}", b.pushes);
}

#[tokio::test]
async fn directory_pages_and_profiles() {
    let s = server();
    let mut c = Client::connect(&s).await;
    c.register("anna", "+441000000001").await;
    for (i, n) in ["andy", "anton", "bert"].iter().enumerate() {
        let mut o = Client::connect(&s).await;
        o.register(n, &format!("+44200000000{i}")).await;
    }
    let (page, next) = match c
        .req(|id| ClientFrame::SearchUsers {
            id,
            query: "an".into(),
            after: None,
            limit: Some(2),
        })
        .await
    {
        ServerFrame::Users { users, next, .. } => (users, next),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        page.iter()
            .map(|e| e.profile.username.as_str())
            .collect::<Vec<_>>(),
        ["andy", "anna"]
    );
    let rest = match c
        .req(|id| ClientFrame::SearchUsers {
            id,
            query: "an".into(),
            after: next,
            limit: Some(2),
        })
        .await
    {
        ServerFrame::Users { users, .. } => users,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        rest.iter()
            .map(|e| e.profile.username.as_str())
            .collect::<Vec<_>>(),
        ["anton"]
    );
    // An avatar is a picture the user uploaded.
    let picture = chatcore::model::MediaId::generate();
    let me = c.user.clone().unwrap();
    let body = Box::pin(futures_util::stream::iter([Ok(bytes::Bytes::from_static(
        b"jpeg",
    ))]));
    let meta = chatcore::store::BlobMeta::new(me, s.now());
    s.backends()
        .blobs
        .put(&picture, meta, body, 1 << 20)
        .await
        .unwrap();
    let upd = c
        .req(|id| ClientFrame::UpdateProfile {
            id,
            display_name: Some("Anna K".into()),
            about: Some("hello".into()),
            avatar: Some(picture.as_str().into()),
        })
        .await;
    assert!(
        matches!(upd, ServerFrame::Profile { ref entry, .. } if entry.profile.display_name == "Anna K" && entry.profile.avatar.as_deref() == Some(picture.as_str()))
    );
    let me = c.user.clone().unwrap();
    let got = c
        .req(|id| ClientFrame::GetProfile {
            id,
            user: me.clone(),
        })
        .await;
    assert!(
        matches!(got, ServerFrame::Profile { ref entry, .. } if entry.profile.about == "hello")
    );
    let none = c
        .req(|id| ClientFrame::GetProfile {
            id,
            user: UserId::from("nope"),
        })
        .await;
    assert_eq!(code(&none), Some(ErrorCode::NotFound));
}

async fn mail_token(mailer: &MemoryMailer, to: &str, nth: usize) -> String {
    for _ in 0..500 {
        let mails: Vec<_> = mailer.outbox().into_iter().filter(|m| m.to == to).collect();
        if let Some(m) = mails.get(nth) {
            let line = m
                .body
                .lines()
                .find(|l| l.starts_with("Or enter this code: "))
                .expect("code line");
            return line
                .trim_start_matches("Or enter this code: ")
                .trim()
                .to_owned();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no mail #{nth} to {to}");
}

#[tokio::test]
async fn password_reset_by_mail_is_single_use_and_revokes_sessions() {
    let (s, mailer, clock) = server_with_mailer();
    let (_a, b, _alice, _bob) = two_users(&s).await;
    let old_token = b.token.clone().unwrap();
    let mut anon = Client::connect(&s).await;
    assert!(matches!(
        anon.req(|id| ClientFrame::ResetRequest {
            id,
            email: "nobody@example.com".into()
        })
        .await,
        ServerFrame::Ok { .. }
    ));
    assert!(matches!(
        anon.req(|id| ClientFrame::ResetRequest {
            id,
            email: "BOB@example.com".into()
        })
        .await,
        ServerFrame::Ok { .. }
    ));
    let token = mail_token(&mailer, "bob@example.com", 0).await;
    assert!(mailer.outbox().iter().all(|m| m.to != "nobody@example.com"));
    assert!(mailer.outbox()[0]
        .body
        .contains(&format!("/#reset={token}")));

    let weak = anon
        .req(|id| ClientFrame::ResetConfirm {
            id,
            token: token.clone(),
            new_password: "bob".into(),
        })
        .await;
    assert_eq!(code(&weak), Some(ErrorCode::WeakPassword));
    let new_pw = "marmalade lighthouse quantum 5";
    let ok = anon
        .req(|id| ClientFrame::ResetConfirm {
            id,
            token: token.clone(),
            new_password: new_pw.into(),
        })
        .await;
    assert!(
        matches!(ok, ServerFrame::Ok { .. }),
        "a weak attempt does not burn the token: {ok:?}"
    );
    assert_eq!(
        b.closed().await,
        Disconnect::Revoked,
        "bob's live session is closed"
    );
    let again = anon
        .req(|id| ClientFrame::ResetConfirm {
            id,
            token: token.clone(),
            new_password: new_pw.into(),
        })
        .await;
    assert_eq!(code(&again), Some(ErrorCode::NotFound), "single use");
    let mut c = Client::connect(&s).await;
    assert_eq!(
        code(
            &c.req(|id| ClientFrame::Resume {
                id,
                token: old_token.clone()
            })
            .await
        ),
        Some(ErrorCode::Unauthenticated)
    );
    assert_eq!(
        code(&c.login("bob", PW).await),
        Some(ErrorCode::Unauthenticated)
    );
    assert!(matches!(
        c.login("bob", new_pw).await,
        ServerFrame::Session { .. }
    ));

    anon.req(|id| ClientFrame::ResetRequest {
        id,
        email: "bob@example.com".into(),
    })
    .await;
    let late = mail_token(&mailer, "bob@example.com", 1).await;
    clock.advance(Duration::from_secs(31 * 60));
    let f = anon
        .req(|id| ClientFrame::ResetConfirm {
            id,
            token: late,
            new_password: "another fine password 9".into(),
        })
        .await;
    assert_eq!(
        code(&f),
        Some(ErrorCode::NotFound),
        "expired after 30 minutes"
    );
    assert!(clock.now() > 0);
}

#[tokio::test]
async fn changing_the_password_closes_the_other_devices() {
    let s = server();
    let (mut a, _b, _alice, _bob) = two_users(&s).await;
    let mut a2 = Client::connect(&s).await;
    assert!(matches!(
        a2.login("alice", PW).await,
        ServerFrame::Session { .. }
    ));
    let wrong = a
        .req(|id| ClientFrame::ChangePassword {
            id,
            old_password: "not it at all".into(),
            new_password: "x".into(),
        })
        .await;
    assert_eq!(code(&wrong), Some(ErrorCode::Unauthenticated));
    let new_pw = "velvet thunder cartography 12";
    let ok = a
        .req(|id| ClientFrame::ChangePassword {
            id,
            old_password: PW.into(),
            new_password: new_pw.into(),
        })
        .await;
    assert!(matches!(ok, ServerFrame::Ok { .. }), "{ok:?}");
    assert_eq!(a2.closed().await, Disconnect::Revoked);
    assert!(
        matches!(
            a.req(|id| ClientFrame::Ping { id }).await,
            ServerFrame::Pong { .. }
        ),
        "this device stays"
    );
    let mut c = Client::connect(&s).await;
    assert!(matches!(
        c.login("alice", new_pw).await,
        ServerFrame::Session { .. }
    ));
}

#[tokio::test]
async fn logout_revokes_the_token_and_closes() {
    let s = server();
    let mut c = Client::connect(&s).await;
    c.register("fred", "+447777777777").await;
    let token = c.token.clone().unwrap();
    assert!(matches!(
        c.req(|id| ClientFrame::Logout { id }).await,
        ServerFrame::Ok { .. }
    ));
    assert_eq!(c.closed().await, Disconnect::LoggedOut);
    let mut d = Client::connect(&s).await;
    assert_eq!(
        code(&d.req(|id| ClientFrame::Resume { id, token }).await),
        Some(ErrorCode::Unauthenticated)
    );
}

#[tokio::test]
async fn a_reader_that_falls_behind_is_disconnected_and_loses_nothing() {
    let mut config = fast_config();
    config.outbound_queue = 4;
    let s = Server::new(Backends::memory(), config).unwrap();
    let mut a = Client::connect(&s).await;
    a.register("alice", "+441111111111").await;
    let mut slow = Client::connect_from(&s, None, 1).await;
    let bob = slow.register("bob", "+442222222222").await;
    let token = slow.token.clone().unwrap();
    for i in 0..40 {
        a.send(&bob, &format!("flood{i}"), "you will not keep up")
            .await;
    }
    // Never read: the session blocks on its full sink, its queue overflows.
    assert_eq!(slow.closed().await, Disconnect::SlowConsumer);
    assert_eq!(Disconnect::SlowConsumer.close_code(), 4008);
    let mut b = Client::connect(&s).await;
    b.req(|id| ClientFrame::Resume { id, token }).await;
    match b
        .req(|id| ClientFrame::Sync {
            id,
            limit: Some(100),
        })
        .await
    {
        ServerFrame::Synced { messages, .. } => assert_eq!(messages.len(), 40),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn unauthenticated_connections_time_out() {
    let s = server();
    let c = Client::connect(&s).await;
    assert_eq!(c.closed().await, Disconnect::AuthTimeout);
}

#[tokio::test]
async fn request_rate_is_limited_per_connection() {
    let mut config = fast_config();
    config.frames_per_second = 1;
    config.frame_burst = 3;
    let s = Server::new(Backends::memory(), config).unwrap();
    let mut c = Client::connect(&s).await;
    let mut limited = 0;
    for _ in 0..5 {
        if code(&c.req(|id| ClientFrame::Ping { id }).await) == Some(ErrorCode::RateLimited) {
            limited += 1;
        }
    }
    assert!(
        limited >= 2,
        "burst of 3 (hello included), then limited: {limited}"
    );
}

#[tokio::test]
async fn shutdown_ends_every_session() {
    let s = server();
    let token = CancellationToken::new();
    let mut conn = connect_in_process(s.clone(), PeerInfo::default(), 8, token.clone());
    conn.tx
        .send(Ok(ClientFrame::Hello {
            id: 1,
            version: 4,
            client: None,
        }))
        .await
        .unwrap();
    conn.rx.next().await.unwrap();
    token.cancel();
    assert_eq!(conn.task.await.unwrap(), Disconnect::Shutdown);
}

#[tokio::test]
async fn cheaper_hashes_are_upgraded_at_login() {
    let backends = Backends::memory();
    let s1 = Server::new(backends.clone(), fast_config()).unwrap();
    let mut c = Client::connect(&s1).await;
    let alice = c.register("alice", "+441111111111").await;
    let before = backends
        .users
        .get(&alice)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(before.contains("m=64,t=1,p=1"), "{before}");
    let mut stronger: Config = fast_config();
    stronger.argon2 = Argon2Config::new(256, 2, 1);
    let s2 = Server::new(backends.clone(), stronger).unwrap();
    let mut c2 = Client::connect(&s2).await;
    assert!(matches!(
        c2.login("alice", PW).await,
        ServerFrame::Session { .. }
    ));
    let after = backends
        .users
        .get(&alice)
        .await
        .unwrap()
        .unwrap()
        .password_hash;
    assert!(after.contains("m=256,t=2,p=1"), "{after}");
}

#[tokio::test]
async fn connections_that_have_not_signed_in_are_capped() {
    let mut config = fast_config();
    config.max_unauthenticated = 1;
    let s = Server::new(Backends::memory(), config).unwrap();
    let mut first = Client::connect(&s).await;
    let second = connect_in_process(s.clone(), PeerInfo::default(), 8, CancellationToken::new());
    assert_eq!(second.task.await.unwrap(), Disconnect::Overloaded);
    assert_eq!(Disconnect::Overloaded.close_code(), 1013);
    first.register("hana", "+448888888888").await;
    // Signed in, the first no longer counts: another may connect.
    let mut third = Client::connect(&s).await;
    assert!(matches!(
        third.login("hana", PW).await,
        ServerFrame::Session { .. }
    ));
    drop(third);
    // A connection that leaves before signing in frees its place too.
    let waiting = Client::connect(&s).await;
    drop(waiting);
    let mut again = None;
    for _ in 0..100 {
        let c = connect_in_process(s.clone(), PeerInfo::default(), 8, CancellationToken::new());
        // Turned away at once if over the cap; otherwise it waits to sign in.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if !c.task.is_finished() {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(again.is_some(), "the place was freed");
}

#[path = "hardening.rs"]
mod hardening;

/// Every connection holds its `serve` future for its whole life, so its size
/// is much of an idle connection's memory (docs/BENCHMARKS.md: 8 KiB per
/// idle connection at most). An await that keeps a frame as room in the
/// coroutine's state grows it by hundreds of bytes at once, as one did
/// (1,360 bytes, then 2,400, now 1,616).
#[test]
fn an_idle_connections_future_stays_small() {
    let s = Server::new(Backends::memory(), fast_config()).unwrap();
    let incoming = futures_util::stream::pending();
    let outgoing = futures_util::sink::drain::<ServerFrame>();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let serving = chatcore::session::serve(s, PeerInfo::new(None), incoming, outgoing, shutdown);
    let size = std::mem::size_of_val(&serving);
    assert!(
        size <= 1_800,
        "serve's future is {size} bytes: some await keeps more than it should \
         (cargo +nightly rustc -p chatcore --lib -- -Zprint-type-sizes shows what)"
    );
}
