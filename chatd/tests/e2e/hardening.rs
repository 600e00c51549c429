//! The outside probe's findings (issue 12) against the real chatd: limits
//! per address and per account with small flag values, other loopback
//! source addresses standing for other clients; revocation, reset links,
//! junk requests and garbage frames.

use super::*;

/// A raw connection from `from` that has said hello; `None` if the server
/// closed it at once, with the close code.
async fn hello_from(chatd: &Chatd, from: &str) -> Result<RawWs, (u16, String)> {
    let mut ws = RawWs::connect_from(chatd.addr, from)
        .await
        .expect("upgrade accepted");
    ws.send_frame(Codec::MsgPack, &hello(1)).await;
    match ws.read_frame().await {
        Some((2, payload)) => {
            let f: ServerFrame = Codec::MsgPack.decode(&payload).expect("a frame");
            assert!(matches!(f, ServerFrame::Welcome { .. }), "{f:?}");
            Ok(ws)
        }
        Some((8, payload)) => Err(close_of(&payload)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn one_address_gets_its_share_of_signed_out_and_of_all_connections() {
    let chatd = Chatd::start(&[
        "--max-unauthenticated-per-address",
        "2",
        "--max-connections-per-address",
        "3",
    ])
    .await;
    let _a = hello_from(&chatd, "127.0.0.2").await.expect("first");
    let _b = hello_from(&chatd, "127.0.0.2").await.expect("second");
    let (code, reason) = hello_from(&chatd, "127.0.0.2")
        .await
        .err()
        .expect("refused");
    assert_eq!(code, 1013, "{reason}");
    // Another address is not affected by 127.0.0.2's flood.
    let (mut other, _) = chatd.connect().await;
    let _ = &mut other;
    let _c = hello_from(&chatd, "127.0.0.3")
        .await
        .expect("other address");

    // Signed in, connections stop counting as signed out, but still count
    // against the address's total.
    let user = chatd.user("addr_owner").await;
    let token = user.session.token.clone().expect("token");
    let mut signed = Vec::new();
    for _ in 0..3 {
        let mut ws = RawWs::connect_from(chatd.addr, "127.0.0.4")
            .await
            .expect("upgrade");
        ws.send_frame(Codec::MsgPack, &hello(1)).await;
        ws.recv(Codec::MsgPack).await;
        ws.send_frame(
            Codec::MsgPack,
            &ClientFrame::Resume {
                id: 2,
                token: token.clone(),
            },
        )
        .await;
        assert!(matches!(
            ws.recv(Codec::MsgPack).await,
            ServerFrame::Session { .. }
        ));
        signed.push(ws);
    }
    let (code, reason) = hello_from(&chatd, "127.0.0.4").await.err().expect("over");
    assert_eq!(
        (code, reason.as_str()),
        (4029, "too many connections from this address")
    );
    drop(signed.pop());
    // The place comes free once the server has seen the close.
    let mut back = None;
    for _ in 0..100 {
        if let Ok(ws) = hello_from(&chatd, "127.0.0.4").await {
            back = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(back.is_some(), "a closed connection frees its place");
}

#[tokio::test]
async fn one_account_gets_at_most_its_connections() {
    let chatd = Chatd::start(&["--max-connections-per-user", "2"]).await;
    let first = chatd.user("many").await;
    let (second, _) = chatd.connect().await;
    second.login("many", PASSWORD, "e2e").await.expect("second");
    let (third, mut third_events) = chatd.connect().await;
    let refused = third.login("many", PASSWORD, "e2e").await;
    assert_eq!(server_code(refused), ErrorCode::LimitReached);
    let close = closed(&mut third_events).await;
    assert_eq!(close.code, 4029, "{close:?}");
    assert_eq!(close.reason, "too many connections for this account");
    // The first two are unaffected, and another account is not limited.
    first.client.ping().await.expect("first still open");
    second.ping().await.expect("second still open");
    chatd.user("someone_else").await;
}

#[tokio::test]
async fn logout_closes_every_connection_that_resumed_the_token() {
    let chatd = Chatd::start(&[]).await;
    let mut owner = chatd.user("three").await;
    let token = owner.session.token.clone().expect("token");
    let (second, mut second_events) = chatd.connect().await;
    second.resume(&token).await.expect("resume");
    let (third, mut third_events) = chatd.connect().await;
    third.resume(&token).await.expect("resume");
    second.logout().await.expect("logout");
    assert_eq!(closed(&mut second_events).await.code, 1000);
    assert_eq!(closed(&mut third_events).await.code, 4001);
    assert_eq!(closed(&mut owner.events).await.code, 4001);
    let (late, _) = chatd.connect().await;
    assert_eq!(
        server_code(late.resume(&token).await),
        ErrorCode::Unauthenticated
    );
    let (fresh, _) = chatd.connect().await;
    assert_eq!(
        server_code(fresh.send_text(&owner.id(), "hi").await),
        ErrorCode::Unauthenticated
    );
}

fn clear_mail(dir: &Path) {
    for entry in std::fs::read_dir(dir).expect("mail dir").flatten() {
        std::fs::remove_file(entry.path()).expect("remove mail");
    }
}

#[tokio::test]
async fn reset_links_die_with_a_password_change_and_with_each_other() {
    let chatd = Chatd::start(&[]).await;
    let alice = chatd.user("resetter").await;
    let (anon, _) = chatd.connect().await;
    anon.reset_request("resetter@example.com")
        .await
        .expect("ok");
    let early = reset_token(&mail_to(&chatd.mail_dir, "resetter@example.com").await);
    alice
        .client
        .change_password(PASSWORD, NEW_PASSWORD)
        .await
        .expect("changed");
    assert_eq!(
        server_code(anon.reset_confirm(&early, "stolen account again 555").await),
        ErrorCode::NotFound
    );
    // Two links; the second used voids the first.
    clear_mail(&chatd.mail_dir);
    anon.reset_request("resetter@example.com")
        .await
        .expect("ok");
    let one = reset_token(&mail_to(&chatd.mail_dir, "resetter@example.com").await);
    clear_mail(&chatd.mail_dir);
    anon.reset_request("resetter@example.com")
        .await
        .expect("ok");
    let two = reset_token(&mail_to(&chatd.mail_dir, "resetter@example.com").await);
    assert_ne!(one, two);
    anon.reset_confirm(&two, "violet harbour anchor 3030")
        .await
        .expect("reset");
    assert_eq!(
        server_code(anon.reset_confirm(&one, "stolen account again 555").await),
        ErrorCode::NotFound
    );
}

#[tokio::test]
async fn made_up_conversations_are_not_found_and_store_nothing() {
    let chatd = Chatd::start(&[]).await;
    let me = chatd.user("prober").await;
    let peer = chatd.user("bystander").await;
    for conv in [
        ConversationId::from(format!("dm:{}:made-up-{}", me.id(), "x".repeat(40)).as_str()),
        ConversationId::direct(&me.id(), &peer.id()),
    ] {
        assert_eq!(
            server_code(me.client.ack(&conv, 0).await),
            ErrorCode::NotFound
        );
        assert_eq!(
            server_code(me.client.read(&conv, 0).await),
            ErrorCode::NotFound
        );
        assert_eq!(
            server_code(me.client.history(&conv, None, None).await),
            ErrorCode::NotFound
        );
    }
    assert!(me.client.conversations().await.expect("list").is_empty());
}

#[tokio::test]
async fn profiles_refuse_control_characters_overrides_and_foreign_pictures() {
    let chatd = Chatd::start(&[]).await;
    let u = chatd.user("painter").await;
    for (name, about, avatar, field) in [
        (None, Some("\u{1b}]52;c;SGk=\u{7}"), None, "about"),
        (None, None, Some("javascript:alert(1)"), "avatar"),
        (None, None, Some("/\\attacker.example/a.png"), "avatar"),
        (Some("\u{202E}ecilA"), None, None, "display_name"),
        (Some("Ali\u{200B}ce"), None, None, "display_name"),
    ] {
        let r = u
            .client
            .update_profile(
                name.map(str::to_owned),
                about.map(str::to_owned),
                avatar.map(str::to_owned),
            )
            .await;
        match r {
            Err(e) => {
                assert_eq!(e.code(), Some(ErrorCode::InvalidArgument), "{field}: {e:?}");
            }
            Ok(v) => panic!("{field}: accepted {v:?}"),
        }
    }
    let ok = u
        .client
        .update_profile(
            Some("🏳\u{FE0F}\u{200D}🌈 Pat".into()),
            Some(String::new()),
            None,
        )
        .await
        .expect("emoji sequences are names too");
    assert_eq!(ok.profile.display_name, "🏳\u{FE0F}\u{200D}🌈 Pat");
    assert!(ok.profile.avatar.is_none());
}

#[tokio::test]
async fn a_users_send_budget_holds_across_connections() {
    let chatd = Chatd::start(&["--send-bytes-per-minute", "65536"]).await;
    let a = chatd.user("chatty").await;
    let b = chatd.user("listener").await;
    let (a2, _) = chatd.connect().await;
    a2.login("chatty", PASSWORD, "second").await.expect("login");
    // The budget is per minute of the clock: start early in one, so the
    // 129 sends below do not straddle two (they take well under a second).
    let into_minute = chatcore_client::chatcore::model::now_millis() % 60_000;
    if into_minute > 45_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - into_minute as u64 + 50)).await;
    }
    // 64 KiB at 512 bytes a short message: 128 messages, from both connections.
    for i in 0..128 {
        let c = if i % 2 == 0 { &a.client } else { &a2 };
        c.send_text(&b.id(), &format!("m{i}"))
            .await
            .expect("within budget");
    }
    // Once (send_text would wait for the next minute and retry, as a
    // client should).
    match a2.send(&b.id(), "over-budget", text("one more")).await {
        Err(e) => {
            assert_eq!(e.code(), Some(ErrorCode::RateLimited), "{e:?}");
        }
        Ok(s) => panic!("stored past the budget: {s:?}"),
    }
    let conv = b.client.open_direct(&a.id()).await.expect("open").conv;
    let page = b
        .client
        .history(&conv, None, Some(200))
        .await
        .expect("history");
    assert_eq!(page.messages.len(), 128, "nothing stored past the budget");
}

#[tokio::test]
async fn garbage_frames_are_counted_quoted_briefly_and_end_the_connection() {
    let chatd = Chatd::start(&["--frame-burst", "10", "--frames-per-second", "1"]).await;
    let mut ws = RawWs::connect(
        chatd.addr,
        &[("Sec-WebSocket-Protocol", "chatcore.v1.json")],
    )
    .await
    .expect("upgrade");
    let huge_type = format!("{{\"type\":\"{}\",\"id\":1}}", "A".repeat(60_000));
    let mut codes = Vec::new();
    for _ in 0..12 {
        ws.send(1, huge_type.as_bytes()).await;
        match ws.recv(Codec::Json).await {
            ServerFrame::Error { code, message, .. } => {
                assert!(message.len() <= 500, "{} bytes echoed", message.len());
                codes.push(code);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(codes[..10], [ErrorCode::InvalidFrame; 10]);
    assert_eq!(
        codes[10..],
        [ErrorCode::RateLimited; 2],
        "garbage is rate-limited too"
    );
    for _ in 0..8 {
        ws.send(1, b"not json").await;
    }
    let (code, reason) = ws.close_code().await;
    assert_eq!((code, reason.as_str()), (1008, "too many invalid frames"));
}
