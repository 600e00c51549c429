//! Message requests, group invitations and reports against the real chatd:
//! a first message from a stranger set apart until accepted (presence
//! hidden from the sender meanwhile), one blocked and reported (the report
//! on the operator's listener), one deleted, and a group add by a stranger
//! turning into an invitation.

use super::*;
use chatcore_client::chatcore::model::Audience;
use chatcore_client::chatcore::protocol::{ContactAction, ConversationSummary};

async fn requests_of(user: &User) -> Vec<ConversationSummary> {
    user.client
        .requests_page(None, None)
        .await
        .expect("requests")
        .conversations
}

/// The presence of `of` as `viewer` sees it in the directory: (online, last seen shown).
async fn seen_presence(viewer: &User, of: &User) -> bool {
    let page = viewer
        .client
        .search_users(&of.session.profile.username, None, None)
        .await
        .expect("search");
    let entry = page
        .users
        .iter()
        .find(|e| e.profile.user == of.id())
        .expect("listed");
    entry.presence.online || entry.presence.last_seen.is_some()
}

#[tokio::test]
async fn a_first_message_from_a_stranger_waits_apart_until_accepted() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    let (bob_phone, mut bob_phone_events) = chatd.connect().await;
    bob_phone.login("bob", PASSWORD, "phone").await.unwrap();
    assert!(seen_presence(&alice, &bob).await, "strangers see presence");

    // Alice writes first: a request to Bob, who reads it apart.
    let sent = alice
        .client
        .send_text(&bob.id(), "hello bob")
        .await
        .unwrap();
    let conv = sent.conv.clone();
    let waiting = requests_of(&bob).await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].conv, conv);
    let by = &waiting[0].request.as_ref().expect("a request").by;
    assert_eq!(by.user, alice.id(), "with the sender's profile");
    assert_eq!(waiting[0].unread, 1);
    assert!(bob.client.conversations().await.unwrap().is_empty());
    assert_eq!(alice.client.conversations().await.unwrap()[0].conv, conv);
    let page = bob.client.history(&conv, None, None).await.unwrap();
    assert_eq!(
        page.messages.len(),
        1,
        "the recipient reads before answering"
    );
    // The sender sees nothing of the recipient meanwhile.
    assert!(!seen_presence(&alice, &bob).await, "hidden until accepted");
    assert!(seen_presence(&bob, &alice).await, "not the other way round");
    let early = bob.client.send_text(&conv, "hi").await;
    assert_eq!(server_code(early), ErrorCode::Forbidden);

    // Bob accepts on his laptop: his phone is told, Alice sees him again.
    alice.client.open_direct(&bob.id()).await.unwrap();
    drain(&mut alice).await;
    let info = bob.client.accept(&conv).await.unwrap();
    assert_eq!(info.conv, conv);
    push(
        &mut bob_phone_events,
        |f| matches!(f, ServerFrame::Answered { conv: c, accepted: true } if *c == conv),
    )
    .await;
    let shown = push(&mut alice.events, |f| {
        matches!(f, ServerFrame::Presence { presence } if presence.user == bob.id() && presence.online)
    })
    .await;
    assert!(matches!(shown, ServerFrame::Presence { .. }));
    assert!(seen_presence(&alice, &bob).await);
    assert!(requests_of(&bob).await.is_empty());
    assert_eq!(bob.client.conversations().await.unwrap()[0].conv, conv);
    bob.client.send_text(&conv, "hi alice").await.unwrap();
    assert_eq!(
        server_code(bob.client.accept(&conv).await),
        ErrorCode::NotFound,
        "nothing waits any more"
    );
}

#[tokio::test]
async fn a_request_blocked_and_reported_or_deleted_goes_away() {
    let chatd = Chatd::start(&[]).await;
    let bob = chatd.user("bob").await;
    let carol = chatd.user("carol").await;
    let dave = chatd.user("dave").await;

    // Carol's request: blocked and reported.
    let spam = carol
        .client
        .send_text(&bob.id(), "cheap tea")
        .await
        .unwrap();
    assert_eq!(requests_of(&bob).await.len(), 1);
    bob.client.block(&carol.id()).await.unwrap();
    bob.client
        .report(&carol.id(), Some(&spam.conv), Some("sells tea"))
        .await
        .unwrap();
    assert!(
        requests_of(&bob).await.is_empty(),
        "a blocked request is gone"
    );
    assert_eq!(
        server_code(carol.client.send_text(&spam.conv, "more tea").await),
        ErrorCode::Forbidden
    );
    let bad = bob.client.report(&bob.id(), None, None).await;
    assert_eq!(server_code(bad), ErrorCode::InvalidArgument, "not oneself");
    let long = "x".repeat(501);
    let bad = bob.client.report(&carol.id(), None, Some(&long)).await;
    assert_eq!(server_code(bad), ErrorCode::InvalidArgument, "500 at most");
    // The operator reads it on the metrics listener, and nobody else can.
    let (status, body) = http(chatd.metrics_addr.expect("metrics"), "GET", "/reports").await;
    assert_eq!(status, 200);
    let lines: Vec<serde_json::Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 1, "{body}");
    assert_eq!(lines[0]["reporter"], bob.id().0);
    assert_eq!(lines[0]["user"], carol.id().0);
    assert_eq!(lines[0]["conv"], spam.conv.0);
    assert_eq!(lines[0]["reason"], "sells tea");
    let (status, _) = chatd.http("GET", "/reports").await;
    assert_eq!(status, 404, "not on the public listener");

    // Dave's request: deleted; his next message is a new request, alone.
    let first = dave.client.send_text(&bob.id(), "one").await.unwrap();
    dave.client.send_text(&first.conv, "two").await.unwrap();
    bob.client.decline(&first.conv).await.unwrap();
    assert!(requests_of(&bob).await.is_empty(), "deleted");
    let page = bob.client.history(&first.conv, None, None).await.unwrap();
    assert!(page.messages.is_empty(), "its messages are gone for bob");
    dave.client.send_text(&first.conv, "three").await.unwrap();
    let again = requests_of(&bob).await;
    assert_eq!(again.len(), 1, "a request again");
    assert_eq!(again[0].unread, 1, "with the new message only");
    let page = bob.client.history(&first.conv, None, None).await.unwrap();
    assert_eq!(page.messages.len(), 1);
    assert_eq!(text_of(&page.messages[0].content), "three");
    // Contacts accept each other's messages.
    dave.client
        .contact(&bob.id(), ContactAction::Request)
        .await
        .unwrap();
    bob.client
        .contact(&dave.id(), ContactAction::Accept)
        .await
        .unwrap();
    assert!(requests_of(&bob).await.is_empty());
    bob.client.send_text(&first.conv, "hi dave").await.unwrap();
}

#[tokio::test]
async fn a_group_add_by_a_stranger_becomes_an_invitation() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let mut bob = chatd.user("bob").await;
    let carol = chatd.user("carol").await;
    let erin = chatd.user("erin").await;
    for u in [&bob, &erin] {
        let p = u
            .client
            .set_privacy(None, Some(Audience::Contacts), None)
            .await
            .unwrap();
        assert_eq!(p.groups, Audience::Contacts);
    }
    let bad = bob
        .client
        .set_privacy(None, Some(Audience::Nobody), None)
        .await;
    assert_eq!(server_code(bad), ErrorCode::InvalidArgument);

    // Bob admits only his contacts' adds: Alice's add invites him.
    let g = alice
        .client
        .create_group("Tea", None, &[bob.id(), carol.id()])
        .await
        .unwrap();
    assert_eq!(g.invited, [bob.id()]);
    let members: Vec<UserId> = g.members.iter().map(|m| m.user.clone()).collect();
    assert!(!members.contains(&bob.id()) && members.contains(&carol.id()));
    let invited = push(&mut bob.events, |f| {
        matches!(f, ServerFrame::Invited { .. })
    })
    .await;
    let ServerFrame::Invited { conversation } = invited else {
        unreachable!()
    };
    assert_eq!(conversation.conv, g.conv);
    assert_eq!(conversation.request.as_ref().unwrap().by.user, alice.id());
    assert_eq!(requests_of(&bob).await[0].conv, g.conv);
    let seen = bob.client.get_conversation(&g.conv).await.unwrap();
    assert_eq!(seen.request.expect("waits for bob").by.user, alice.id());
    // Not a member: nothing of the group reaches or is readable by him.
    alice
        .client
        .send_text(&g.conv, "secret plans")
        .await
        .unwrap();
    assert!(!drain(&mut bob)
        .await
        .iter()
        .any(|f| matches!(f, ServerFrame::Message { .. })));
    assert!(bob
        .client
        .history(&g.conv, None, None)
        .await
        .unwrap()
        .messages
        .is_empty());
    assert_eq!(
        server_code(bob.client.send_text(&g.conv, "hi").await),
        ErrorCode::Forbidden
    );

    // Bob accepts: he joins, from the notice on.
    drain(&mut alice).await;
    let joined = bob.client.accept(&g.conv).await.unwrap();
    assert!(joined.members.iter().any(|m| m.user == bob.id()));
    assert!(joined.invited.is_empty());
    let notice = push(&mut alice.events, |f| {
        matches!(f, ServerFrame::Message { .. })
    })
    .await;
    assert!(
        matches!(&notice, ServerFrame::Message { message } if message.from == bob.id() && message.content.kind() == "member_joined"),
        "{notice:?}"
    );
    bob.client.send_text(&g.conv, "thanks").await.unwrap();
    assert!(requests_of(&bob).await.is_empty());

    // Erin is invited by add_members (seq 0: nobody added), and declines.
    let (seq, invited) = alice
        .client
        .add_or_invite(&g.conv, &[erin.id()])
        .await
        .unwrap();
    assert_eq!((seq, invited), (0, vec![erin.id()]));
    assert_eq!(
        alice
            .client
            .get_conversation(&g.conv)
            .await
            .unwrap()
            .invited,
        [erin.id()]
    );
    erin.client.decline(&g.conv).await.unwrap();
    assert!(requests_of(&erin).await.is_empty());
    assert!(alice
        .client
        .get_conversation(&g.conv)
        .await
        .unwrap()
        .invited
        .is_empty());
    assert_eq!(
        server_code(erin.client.accept(&g.conv).await),
        ErrorCode::NotFound,
        "a declined invitation is gone"
    );
}
