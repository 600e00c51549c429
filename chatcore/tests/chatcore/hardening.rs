//! The findings of the outside probe (issue 12), each driven through a
//! whole session: every test here failed before its fix.

use super::*;
use chatcore::protocol::Codec;

fn server_with(config: Config) -> (Arc<Server>, Arc<MemoryMailer>, Arc<ManualClock>) {
    let mailer = Arc::new(MemoryMailer::new());
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let s = Server::with_clock(
        Backends::memory_with_mailer(mailer.clone()),
        config,
        clock.clone(),
    )
    .unwrap();
    (s, mailer, clock)
}

fn addr(s: &str) -> Option<std::net::IpAddr> {
    Some(s.parse().unwrap())
}

/// Opens a connection from `from` that does not say hello, and returns why
/// it ended: for a connection turned away at once.
async fn refused_from(s: &Arc<Server>, from: &str) -> Disconnect {
    let conn = connect_in_process(
        s.clone(),
        PeerInfo::new(addr(from)),
        8,
        CancellationToken::new(),
    );
    conn.task.await.unwrap()
}

async fn reset(c: &mut Client, token: &str, password: &str) -> ServerFrame {
    c.req(|id| ClientFrame::ResetConfirm {
        id,
        token: token.into(),
        new_password: password.into(),
    })
    .await
}

async fn ask_reset(c: &mut Client, email: &str) {
    assert!(matches!(
        c.req(|id| ClientFrame::ResetRequest {
            id,
            email: email.into()
        })
        .await,
        ServerFrame::Ok { .. }
    ));
}

#[tokio::test]
async fn changing_the_password_voids_every_reset_link() {
    let (s, mailer, _) = server_with(fast_config());
    let mut a = Client::connect(&s).await;
    a.register("alice", "+441111111111").await;
    let mut anon = Client::connect(&s).await;
    ask_reset(&mut anon, "alice@example.com").await;
    let early = mail_token(&mailer, "alice@example.com", 0).await;
    let changed = a
        .req(|id| ClientFrame::ChangePassword {
            id,
            old_password: PW.into(),
            new_password: "quiet lantern meadow 2024".into(),
        })
        .await;
    assert!(matches!(changed, ServerFrame::Ok { .. }), "{changed:?}");
    let late = reset(&mut anon, &early, "stolen account again 555").await;
    assert_eq!(code(&late), Some(ErrorCode::NotFound), "{late:?}");
}

#[tokio::test]
async fn using_one_reset_link_voids_the_others() {
    let (s, mailer, _) = server_with(fast_config());
    let mut a = Client::connect(&s).await;
    a.register("alice", "+441111111111").await;
    let mut anon = Client::connect(&s).await;
    ask_reset(&mut anon, "alice@example.com").await;
    ask_reset(&mut anon, "alice@example.com").await;
    let first = mail_token(&mailer, "alice@example.com", 0).await;
    let second = mail_token(&mailer, "alice@example.com", 1).await;
    assert!(matches!(
        reset(&mut anon, &second, "quiet lantern meadow 2024").await,
        ServerFrame::Ok { .. }
    ));
    let again = reset(&mut anon, &first, "stolen account again 555").await;
    assert_eq!(code(&again), Some(ErrorCode::NotFound), "{again:?}");
}

#[tokio::test]
async fn one_address_cannot_take_every_signed_out_place() {
    let mut config = fast_config();
    config.max_unauthenticated = 10;
    config.max_unauthenticated_per_address = 2;
    let (s, _, _) = server_with(config);
    let _a = Client::connect_from(&s, addr("192.0.2.1"), 8).await;
    let _b = Client::connect_from(&s, addr("192.0.2.1"), 8).await;
    assert_eq!(refused_from(&s, "192.0.2.1").await, Disconnect::Overloaded);
    // The same /64 is the same address; another address is not affected.
    let v6 = connect_in_process(
        s.clone(),
        PeerInfo::new(addr("2001:db8::1")),
        8,
        CancellationToken::new(),
    );
    let _v6b = Client::connect_from(&s, addr("2001:db8::2:3"), 8).await;
    let mut other = Client::connect_from(&s, addr("192.0.2.2"), 8).await;
    other.register("bob", "+442222222222").await;
    assert_eq!(
        refused_from(&s, "2001:db8::ffff").await,
        Disconnect::Overloaded
    );
    drop(v6);
}

#[tokio::test]
async fn connections_are_capped_per_account_and_per_address() {
    let mut config = fast_config();
    config.max_connections_per_user = 2;
    config.max_connections_per_address = 3;
    let (s, _, _) = server_with(config);
    let mut a = Client::connect_from(&s, addr("192.0.2.1"), 8).await;
    a.register("alice", "+441111111111").await;
    let token = a.token.clone().unwrap();
    let mut b = Client::connect_from(&s, addr("192.0.2.2"), 8).await;
    assert!(matches!(
        b.login("alice", PW).await,
        ServerFrame::Session { .. }
    ));
    let mut c = Client::connect_from(&s, addr("192.0.2.3"), 8).await;
    let refused = c.login("alice", PW).await;
    assert_eq!(code(&refused), Some(ErrorCode::LimitReached), "{refused:?}");
    assert_eq!(c.closed().await, Disconnect::TooManyForAccount);
    let mut d = Client::connect_from(&s, addr("192.0.2.3"), 8).await;
    let refused = d.req(|id| ClientFrame::Resume { id, token }).await;
    assert_eq!(code(&refused), Some(ErrorCode::LimitReached), "{refused:?}");
    assert_eq!(Disconnect::TooManyForAccount.close_code(), 4029);
    // A refused login leaves no session behind.
    assert_eq!(
        s.backends()
            .sessions
            .revoke_all(a.user.as_ref().unwrap(), None)
            .await
            .unwrap(),
        2,
        "only the two signed-in devices have sessions"
    );

    let _x1 = Client::connect_from(&s, addr("192.0.2.9"), 8).await;
    let _x2 = Client::connect_from(&s, addr("192.0.2.9"), 8).await;
    let _x3 = Client::connect_from(&s, addr("192.0.2.9"), 8).await;
    assert_eq!(
        refused_from(&s, "192.0.2.9").await,
        Disconnect::TooManyFromAddress
    );
    assert_eq!(Disconnect::TooManyFromAddress.close_code(), 4029);
}

#[tokio::test]
async fn a_user_has_one_send_budget_across_connections() {
    let mut config = fast_config();
    config.send_budget = Quota {
        max: 4096,
        window_ms: 60_000,
    };
    config.send_min_cost = 1024;
    let (s, _, clock) = server_with(config);
    let (mut a, mut b, _alice, bob) = two_users(&s).await;
    let mut a2 = Client::connect(&s).await;
    assert!(matches!(
        a2.login("alice", PW).await,
        ServerFrame::Session { .. }
    ));
    // Four small messages fill the budget, whichever connection sends them.
    for i in 0..4 {
        let c = if i % 2 == 0 { &mut a } else { &mut a2 };
        let r = c.send(&bob, &format!("m{i}"), "hi").await;
        assert!(matches!(r, ServerFrame::Sent { .. }), "{r:?}");
    }
    match a2.send(&bob, "m4", "one too many").await {
        ServerFrame::Error {
            code: ErrorCode::RateLimited,
            retry_after_ms: Some(ms),
            ..
        } => assert!(ms > 0 && ms <= 60_000, "{ms}"),
        other => panic!("expected rate_limited, got {other:?}"),
    }
    // Nothing was stored for it...
    let conv = ConversationId::direct(a.user.as_ref().unwrap(), &bob);
    match b
        .req(|id| ClientFrame::History {
            id,
            conv: conv.clone(),
            before: None,
            limit: None,
        })
        .await
    {
        ServerFrame::Messages { messages, .. } => assert_eq!(messages.len(), 4),
        other => panic!("{other:?}"),
    }
    // ...and the same message goes through with the next window.
    clock.advance(Duration::from_secs(60));
    let r = a2.send(&bob, "m4", "one too many").await;
    assert!(matches!(r, ServerFrame::Sent { seq: 5, .. }), "{r:?}");
}

#[tokio::test]
async fn login_failures_count_per_account_however_it_is_named() {
    let mut config = fast_config();
    config.login_per_account = Quota {
        max: 4,
        window_ms: 60_000,
    };
    let (s, _, _) = server_with(config);
    let mut a = Client::connect(&s).await;
    a.register("alice", "+441111111111").await;
    let mut c = Client::connect(&s).await;
    for login in ["alice", "alice@example.com", "ALICE", "Alice@Example.com"] {
        assert_eq!(
            code(&c.login(login, "wrong password here").await),
            Some(ErrorCode::Unauthenticated)
        );
    }
    for login in ["alice", "alice@example.com"] {
        assert_eq!(
            code(&c.login(login, PW).await),
            Some(ErrorCode::RateLimited),
            "{login}"
        );
    }
}

#[tokio::test]
async fn registrations_have_a_service_wide_budget() {
    let mut config = fast_config();
    config.signup_global = Quota {
        max: 2,
        window_ms: 3_600_000,
    };
    let (s, _, clock) = server_with(config);
    let mut a = Client::connect_from(&s, addr("192.0.2.1"), 8).await;
    a.register("alice", "+441111111111").await;
    let mut b = Client::connect_from(&s, addr("192.0.2.2"), 8).await;
    b.register("bob", "+442222222222").await;
    let mut c = Client::connect_from(&s, addr("192.0.2.3"), 8).await;
    let refused = c
        .req(|id| ClientFrame::Register {
            id,
            username: "carol".into(),
            email: "carol@example.com".into(),
            phone: "+443333333333".into(),
            display_name: "Carol".into(),
            password: PW.into(),
            device: "d".into(),
        })
        .await;
    assert_eq!(code(&refused), Some(ErrorCode::RateLimited), "{refused:?}");
    clock.advance(Duration::from_secs(3600));
    c.register("carol", "+443333333333").await;
}

#[tokio::test]
async fn a_conversation_that_does_not_exist_is_not_found_and_nothing_is_stored() {
    let (s, _, _) = server_with(fast_config());
    let (a0, b, alice, bob) = two_users(&s).await;
    drop((a0, b));
    let mut a = Client::connect(&s).await;
    let device = match a.login("alice", PW).await {
        ServerFrame::Session { device, .. } => device,
        other => panic!("{other:?}"),
    };
    let made_up = ConversationId::from(format!("dm:{alice}:zzzz-no-such-user").as_str());
    let never_used = ConversationId::direct(&alice, &bob);
    for conv in [made_up, never_used] {
        for f in [
            a.req(|id| ClientFrame::Ack {
                id,
                conv: conv.clone(),
                seq: 0,
            })
            .await,
            a.req(|id| ClientFrame::Read {
                id,
                conv: conv.clone(),
                seq: 0,
            })
            .await,
            a.req(|id| ClientFrame::History {
                id,
                conv: conv.clone(),
                before: None,
                limit: None,
            })
            .await,
        ] {
            assert_eq!(code(&f), Some(ErrorCode::NotFound), "{conv}: {f:?}");
        }
    }
    // No cursor, read marker or conversation was stored...
    let store = &s.backends().messages;
    assert!(store.cursors(&alice, &device).await.unwrap().is_empty());
    assert!(store
        .conversations(&alice, chatcore::store::Listing::Main, None, 10)
        .await
        .unwrap()
        .is_empty());
    // ...and bob's presence is not watched: his coming online reaches no one.
    let mut b = Client::connect(&s).await;
    assert!(matches!(
        b.login("bob", PW).await,
        ServerFrame::Session { .. }
    ));
    let pushes = a.drain().await;
    assert!(
        !pushes
            .iter()
            .any(|p| matches!(p, ServerFrame::Presence { .. })),
        "{pushes:?}"
    );
}

#[tokio::test]
async fn profile_texts_and_pictures_are_validated() {
    let (s, _, _) = server_with(fast_config());
    let mut a = Client::connect(&s).await;
    a.register("alice", "+441111111111").await;
    for (display_name, about, avatar, field) in [
        (None, Some("hi\u{1b}[2J\u{7}"), None, "about"),
        (None, Some("zero\u{0}byte"), None, "about"),
        (None, None, Some("javascript:alert(1)"), "avatar"),
        (None, None, Some("/\\attacker.example/x.png"), "avatar"),
        (None, None, Some("https://example.com/a.png"), "avatar"),
        (Some("Bob\u{202E}evil"), None, None, "display_name"),
        (Some("Al\u{200B}ice"), None, None, "display_name"),
    ] {
        let r = a
            .req(|id| ClientFrame::UpdateProfile {
                id,
                display_name: display_name.map(Into::into),
                about: about.map(Into::into),
                avatar: avatar.map(Into::into),
            })
            .await;
        match r {
            ServerFrame::Error {
                code: ErrorCode::InvalidArgument,
                field: Some(f),
                ..
            } => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let ok = a
        .req(|id| ClientFrame::UpdateProfile {
            id,
            display_name: Some("👩\u{200D}💻 Alice".into()),
            about: Some("".into()),
            avatar: Some("".into()),
        })
        .await;
    assert!(matches!(ok, ServerFrame::Profile { ref entry, .. } if entry.profile.avatar.is_none()));
    let mut d = Client::connect(&s).await;
    let bad_device = d
        .req(|id| ClientFrame::Login {
            id,
            login: "alice".into(),
            password: PW.into(),
            device: "phone\u{202E}".into(),
        })
        .await;
    assert_eq!(code(&bad_device), Some(ErrorCode::InvalidArgument));
}

#[tokio::test]
async fn garbage_is_rate_limited_quoted_briefly_and_closes_after_a_run() {
    let mut config = fast_config();
    config.frames_per_second = 1;
    config.frame_burst = 5;
    let (s, _, _) = server_with(config);
    let mut c = Client::connect(&s).await; // hello took one token
    let long_type = format!("{{\"type\":\"{}\",\"id\":1}}", "x".repeat(60_000));
    let mut replies = Vec::new();
    for _ in 0..19 {
        let bad = Codec::Json.decode_client(long_type.as_bytes());
        assert!(bad.is_err());
        c.conn.tx.send(bad).await.unwrap();
        replies.push(c.conn.rx.next().await.expect("a reply"));
    }
    for r in &replies[..4] {
        match r {
            ServerFrame::Error {
                code: ErrorCode::InvalidFrame,
                message,
                ..
            } => assert!(message.len() < 500, "{} bytes", message.len()),
            other => panic!("{other:?}"),
        }
    }
    for r in &replies[4..] {
        assert_eq!(code(r), Some(ErrorCode::RateLimited), "{r:?}");
    }
    // A good frame in between starts the count again; 20 bad in a row close.
    let mut c = Client::connect(&s).await;
    for _ in 0..19 {
        c.conn
            .tx
            .send(Codec::Json.decode_client(b"\x00"))
            .await
            .unwrap();
    }
    c.conn
        .tx
        .send(Ok(ClientFrame::Ping { id: 7 }))
        .await
        .unwrap();
    for _ in 0..19 {
        c.conn
            .tx
            .send(Codec::Json.decode_client(b"\x00"))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!c.conn.task.is_finished(), "19 in a row is not enough");
    c.conn
        .tx
        .send(Codec::Json.decode_client(b"\x00"))
        .await
        .unwrap();
    assert_eq!(c.closed().await, Disconnect::InvalidFrames);
    assert_eq!(Disconnect::InvalidFrames.close_code(), 1008);
}

#[tokio::test]
async fn logout_closes_every_connection_on_the_token() {
    let (s, _, _) = server_with(fast_config());
    let mut a = Client::connect(&s).await;
    a.register("alice", "+441111111111").await;
    let token = a.token.clone().unwrap();
    let mut same = Vec::new();
    for _ in 0..2 {
        let mut c = Client::connect(&s).await;
        let r = c
            .req(|id| ClientFrame::Resume {
                id,
                token: token.clone(),
            })
            .await;
        assert!(matches!(r, ServerFrame::Session { .. }), "{r:?}");
        same.push(c);
    }
    // Another device of the same account stays.
    let mut other = Client::connect(&s).await;
    assert!(matches!(
        other.login("alice", PW).await,
        ServerFrame::Session { .. }
    ));
    let mut second = same.pop().unwrap();
    assert!(matches!(
        second.req(|id| ClientFrame::Logout { id }).await,
        ServerFrame::Ok { .. }
    ));
    assert_eq!(second.closed().await, Disconnect::LoggedOut);
    assert_eq!(same.pop().unwrap().closed().await, Disconnect::Revoked);
    assert_eq!(a.closed().await, Disconnect::Revoked);
    assert!(matches!(
        other.req(|id| ClientFrame::Ping { id }).await,
        ServerFrame::Pong { .. }
    ));
    let mut late = Client::connect(&s).await;
    let r = late.req(|id| ClientFrame::Resume { id, token }).await;
    assert_eq!(code(&r), Some(ErrorCode::Unauthenticated));
}
