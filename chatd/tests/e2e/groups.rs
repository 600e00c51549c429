//! Stored conversations against the real chatd: a three-user group from
//! creation to removal, leaving and invite links; direct conversations
//! opened at once from both sides; mute and read pushes.

use super::*;
use chatcore_client::chatcore::model::Role;

/// The next `message` push, skipping other pushes.
async fn next_message(events: &mut Events) -> chatcore_client::chatcore::model::Message {
    match push(events, |f| matches!(f, ServerFrame::Message { .. })).await {
        ServerFrame::Message { message } => (*message).clone(),
        _ => unreachable!(),
    }
}

/// The `message` push of `seq`, skipping other pushes and earlier entries.
async fn message_at(events: &mut Events, seq: u64) -> chatcore_client::chatcore::model::Message {
    loop {
        let m = next_message(events).await;
        if m.seq >= seq {
            assert_eq!(m.seq, seq, "entries arrive in order here");
            return m;
        }
    }
}

#[tokio::test]
async fn a_group_of_three_from_creation_to_removal_leaving_and_invites() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let mut bob = chatd.user("bob").await;
    let mut carol = chatd.user("carol").await;
    let mut dave = chatd.user("dave").await;

    let g = alice
        .client
        .create_group("Tea party", Some("Mad hatters"), &[bob.id(), carol.id()])
        .await
        .unwrap();
    assert_eq!((g.role, g.members.len()), (Some(Role::Owner), 3));
    let conv = g.conv.clone();
    for u in [&mut bob, &mut carol] {
        let m = next_message(&mut u.events).await;
        assert_eq!((m.seq, &m.from), (1, &alice.id()));
        assert!(matches!(m.content, Content::GroupCreated { .. }));
    }

    // Everyone's message reaches the two others, in one order.
    // The creator's own connection gets the notice too.
    let own = next_message(&mut alice.events).await;
    assert_eq!(own.seq, 1);
    bob.client.send_text(&conv, "hi all").await.unwrap();
    for u in [&mut alice, &mut carol] {
        let m = next_message(&mut u.events).await;
        assert_eq!(
            (m.seq, &m.from, text_of(&m.content)),
            (2, &bob.id(), "hi all")
        );
    }
    // A notice raises no alert; a message does.
    let frames = drain(&mut carol).await;
    assert!(frames
        .iter()
        .any(|f| matches!(f, ServerFrame::Alert { seq: 2, .. })));
    assert!(!frames
        .iter()
        .any(|f| matches!(f, ServerFrame::Alert { seq: 1, .. })));

    // Members change nothing; the owner removes Carol.
    assert_eq!(
        server_code(bob.client.remove_member(&conv, &carol.id()).await),
        ErrorCode::Forbidden
    );
    let removed_at = alice
        .client
        .remove_member(&conv, &carol.id())
        .await
        .unwrap();
    assert_eq!(removed_at, 3);
    let m = next_message(&mut carol.events).await;
    assert_eq!(
        (m.seq, &m.content),
        (3, &Content::MemberRemoved { user: carol.id() })
    );
    // Carol can neither write nor receive: Bob gets Alice's next message, Carol does not.
    assert_eq!(
        server_code(carol.client.send_text(&conv, "still here?").await),
        ErrorCode::Forbidden
    );
    alice.client.send_text(&conv, "after carol").await.unwrap();
    let seen_by_bob = message_at(&mut bob.events, 4).await;
    assert_eq!(text_of(&seen_by_bob.content), "after carol");
    let late = drain(&mut carol).await;
    assert!(
        !late
            .iter()
            .any(|f| matches!(f, ServerFrame::Message { .. })),
        "a removed member receives nothing after its removal: {late:?}"
    );
    let page = carol.client.history(&conv, None, None).await.unwrap();
    let seqs: Vec<u64> = page.messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3], "her history ends at her removal");
    assert!(carol
        .client
        .sync(None)
        .await
        .unwrap()
        .messages
        .iter()
        .all(|m| m.seq <= 3));

    // Roles: Bob becomes admin and adds Dave, who reads from his joining.
    alice
        .client
        .set_role(&conv, &bob.id(), Role::Admin)
        .await
        .unwrap();
    bob.client.add_members(&conv, &[dave.id()]).await.unwrap();
    let info = dave.client.get_conversation(&conv).await.unwrap();
    assert_eq!(info.first_seq, 6);
    assert_eq!(
        server_code(bob.client.remove_member(&conv, &alice.id()).await),
        ErrorCode::Forbidden,
        "nobody removes the owner"
    );
    let _ = next_message(&mut dave.events).await;

    // Invite link: Carol comes back; a revoked link is not found, like a made-up one.
    assert_eq!(
        server_code(dave.client.create_invite(&conv).await),
        ErrorCode::Forbidden
    );
    let token = bob.client.create_invite(&conv).await.unwrap();
    let back = carol.client.join(&token).await.unwrap();
    assert_eq!(back.role, Some(Role::Member));
    bob.client.revoke_invite(&conv).await.unwrap();
    let eve = chatd.user("eve").await;
    assert_eq!(
        server_code(eve.client.join(&token).await),
        ErrorCode::NotFound
    );
    assert_eq!(
        server_code(eve.client.join("made-up-token").await),
        ErrorCode::NotFound
    );

    // The owner leaves: the longest-serving admin, Bob, owns the group.
    alice.client.leave(&conv).await.unwrap();
    let info = bob.client.get_conversation(&conv).await.unwrap();
    assert_eq!(info.role, Some(Role::Owner));
    assert_eq!(info.members.len(), 3, "bob, carol, dave");
    let list = alice.client.conversations().await.unwrap();
    let entry = list.iter().find(|c| c.conv == conv).expect("still listed");
    assert!(entry.left && entry.role.is_none());
}

#[tokio::test]
async fn both_sides_open_their_direct_conversation_at_once_and_get_one() {
    let chatd = Chatd::start(&[]).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    // Contacts: neither first message is a request the other must accept.
    befriend(&alice, &bob).await;
    let (a_id, b_id) = (alice.id(), bob.id());
    for round in 0..5 {
        let (ta, tb) = (format!("a{round}"), format!("b{round}"));
        let (a, b) = tokio::join!(
            alice.client.send_text(&b_id, &ta),
            bob.client.send_text(&a_id, &tb),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_eq!(a.conv, b.conv, "one conversation per pair");
        let mut seqs = [a.seq, b.seq];
        seqs.sort_unstable();
        assert_eq!(seqs, [2 * round + 1, 2 * round + 2], "gap-free");
    }
    let (x, y) = tokio::join!(
        alice.client.open_direct(&b_id),
        bob.client.open_direct(&a_id)
    );
    assert_eq!(x.unwrap().conv, y.unwrap().conv);
    let carol = chatd.user("carol").await;
    let c_id = carol.id();
    let (p, q) = tokio::join!(
        carol.client.open_direct(&a_id),
        alice.client.open_direct(&c_id)
    );
    assert_eq!(p.unwrap().conv, q.unwrap().conv);
}

#[tokio::test]
async fn mute_silences_alerts_and_a_read_clears_the_other_devices() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    // Alice on a second device.
    let (phone, mut phone_events) = chatd.connect().await;
    phone
        .login("alice", PASSWORD, "phone")
        .await
        .expect("second device");
    befriend(&alice, &bob).await;
    let sent = bob.client.send_text(&alice.id(), "one").await.unwrap();
    let conv = sent.conv.clone();
    assert!(drain(&mut alice)
        .await
        .iter()
        .any(|f| matches!(f, ServerFrame::Alert { .. })));
    alice.client.mute(&conv, None).await.unwrap();
    bob.client.send_text(&conv, "two").await.unwrap();
    let frames = drain(&mut alice).await;
    assert!(frames
        .iter()
        .any(|f| matches!(f, ServerFrame::Message { .. })));
    assert!(
        !frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Alert { .. })),
        "muted: {frames:?}"
    );
    let list = alice.client.conversations().await.unwrap();
    assert!(list[0].muted && list[0].unread == 2, "{:?}", list[0]);
    alice.client.unmute(&conv).await.unwrap();

    // Reading on the laptop tells the phone.
    alice.client.read(&conv, 2).await.unwrap();
    let r = push(&mut phone_events, |f| matches!(f, ServerFrame::Read { .. })).await;
    assert!(matches!(r, ServerFrame::Read { seq: 2, .. }));
    assert!(
        !drain(&mut alice)
            .await
            .iter()
            .any(|f| matches!(f, ServerFrame::Read { .. })),
        "not to the reader itself"
    );
    assert_eq!(alice.client.conversations().await.unwrap()[0].unread, 0);
}

#[tokio::test]
async fn the_group_limits_are_flags() {
    let chatd = Chatd::start(&[
        "--max-group-members",
        "3",
        "--join-attempts",
        "2",
        "--join-window-secs",
        "3600",
    ])
    .await;
    let a = chatd.user("ann").await;
    let b = chatd.user("ben").await;
    let c = chatd.user("cat").await;
    let d = chatd.user("dan").await;
    let g = a
        .client
        .create_group("Three", None, &[b.id(), c.id()])
        .await
        .unwrap();
    assert_eq!(
        server_code(a.client.add_members(&g.conv, &[d.id()]).await),
        ErrorCode::LimitReached
    );
    for _ in 0..2 {
        assert_eq!(
            server_code(d.client.join("guess").await),
            ErrorCode::NotFound
        );
    }
    assert_eq!(
        server_code(d.client.join("guess").await),
        ErrorCode::RateLimited
    );
}
