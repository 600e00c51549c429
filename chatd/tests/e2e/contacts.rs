//! Contacts, blocks and privacy against the real chatd: requests pushed to
//! every device of both users, the decline rule, what a block stops (and
//! that the blocked user cannot tell it from a privacy setting), presence
//! hidden after a block and after a privacy change, settings synced.

use super::*;
use chatcore_client::chatcore::model::Audience;
use chatcore_client::chatcore::protocol::{ContactAction, ContactList, ContactState};
use chatcore_client::ServerError;

/// The server's error of a failed request.
fn server_error(r: Result<impl std::fmt::Debug, Error>) -> ServerError {
    match r {
        Err(Error::Server(e)) => e,
        other => panic!("expected a server error, got {other:?}"),
    }
}

/// The next `contact` push about `user`.
async fn contact_push(events: &mut Events, user: &UserId) -> (ContactState, bool) {
    let user = user.clone();
    match push(events, move |f| {
        matches!(f, ServerFrame::Contact { id: None, contact } if contact.profile.user == user)
    })
    .await
    {
        ServerFrame::Contact { contact, .. } => (contact.state, contact.blocked),
        _ => unreachable!(),
    }
}

/// The next `presence` push about `user`.
async fn presence_push(events: &mut Events, user: &UserId) -> (bool, Option<i64>) {
    let user = user.clone();
    match push(
        events,
        move |f| matches!(f, ServerFrame::Presence { presence } if presence.user == user),
    )
    .await
    {
        ServerFrame::Presence { presence } => (presence.online, presence.last_seen),
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn requests_reach_every_device_of_both_and_a_declined_asker_waits() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let mut bob = chatd.user("bob").await;
    let carol = chatd.user("carol").await;
    let (bob_phone, mut bob_phone_events) = chatd.connect().await;
    bob_phone.login("bob", PASSWORD, "phone").await.unwrap();
    let (alice_phone, mut alice_phone_events) = chatd.connect().await;
    alice_phone.login("alice", PASSWORD, "phone").await.unwrap();

    // Bad input first: nothing is stored by any of it.
    let me = server_error(
        alice
            .client
            .contact(&alice.id(), ContactAction::Request)
            .await,
    );
    assert_eq!(me.code, ErrorCode::InvalidArgument);
    let nobody = UserId::from("0190f7a2-0000-7000-8000-000000000000");
    let unknown = server_code(alice.client.contact(&nobody, ContactAction::Request).await);
    assert_eq!(unknown, ErrorCode::NotFound);
    let unasked = server_code(alice.client.contact(&bob.id(), ContactAction::Accept).await);
    assert_eq!(unasked, ErrorCode::NotFound);

    // Alice asks: her other device and both of Bob's hear of it.
    let asked = alice
        .client
        .contact(&bob.id(), ContactAction::Request)
        .await
        .unwrap();
    assert_eq!(asked.state, ContactState::Outgoing);
    assert_eq!(
        contact_push(&mut alice_phone_events, &bob.id()).await,
        (ContactState::Outgoing, false)
    );
    for events in [&mut bob.events, &mut bob_phone_events] {
        assert_eq!(
            contact_push(events, &alice.id()).await,
            (ContactState::Incoming, false)
        );
    }
    let again = server_error(
        alice
            .client
            .contact(&bob.id(), ContactAction::Request)
            .await,
    );
    assert_eq!(
        (again.code, again.field.as_deref()),
        (ErrorCode::Conflict, Some("user"))
    );
    let incoming = bob
        .client
        .contacts(ContactList::Incoming, None, None)
        .await
        .unwrap();
    assert_eq!(incoming.contacts.len(), 1);
    assert_eq!(incoming.contacts[0].profile.user, alice.id());
    let outgoing = alice
        .client
        .contacts(ContactList::Outgoing, None, None)
        .await
        .unwrap();
    assert_eq!(outgoing.contacts[0].profile.user, bob.id());

    // Bob accepts on his phone: both are contacts on every device, and the
    // list shows each with presence.
    let accepted = bob_phone
        .contact(&alice.id(), ContactAction::Accept)
        .await
        .unwrap();
    assert_eq!(accepted.state, ContactState::Contact);
    assert_eq!(
        contact_push(&mut bob.events, &alice.id()).await.0,
        ContactState::Contact
    );
    for events in [&mut alice.events, &mut alice_phone_events] {
        assert_eq!(
            contact_push(events, &bob.id()).await.0,
            ContactState::Contact
        );
    }
    let list = alice
        .client
        .contacts(ContactList::Contacts, None, None)
        .await
        .unwrap();
    assert_eq!(list.contacts.len(), 1);
    let presence = list.contacts[0].presence.as_ref().expect("with presence");
    assert!(presence.online, "Bob is online and shares it with everyone");

    // Carol asks Bob, Bob declines: Carol may not ask again yet.
    carol
        .client
        .contact(&bob.id(), ContactAction::Request)
        .await
        .unwrap();
    bob.client
        .contact(&carol.id(), ContactAction::Decline)
        .await
        .unwrap();
    let early = server_error(
        carol
            .client
            .contact(&bob.id(), ContactAction::Request)
            .await,
    );
    assert_eq!(early.code, ErrorCode::RateLimited);
    let wait = early.retry_after_ms.expect("says how long");
    assert!(
        wait > 6 * 24 * 3600 * 1000 && wait <= 7 * 24 * 3600 * 1000,
        "a week by default: {wait}"
    );
    // Removing a contact ends it for both.
    alice
        .client
        .contact(&bob.id(), ContactAction::Remove)
        .await
        .unwrap();
    assert_eq!(
        contact_push(&mut bob.events, &alice.id()).await.0,
        ContactState::None
    );
    let empty = bob
        .client
        .contacts(ContactList::Contacts, None, None)
        .await
        .unwrap();
    assert!(empty.contacts.is_empty());
}

#[tokio::test]
async fn a_block_stops_the_blocked_user_who_cannot_tell_it_from_a_setting() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let mut bob = chatd.user("bob").await;
    let carol = chatd.user("carol").await;
    let dave = chatd.user("dave").await;

    // Alice and Bob talk; each watches the other's presence.
    let sent = bob
        .client
        .send_text(&alice.id(), "hello alice")
        .await
        .unwrap();
    let conv = sent.conv.clone();
    alice.client.accept(&conv).await.unwrap();
    // Accepted: Bob sees Alice's presence, hidden from him until now.
    assert!(presence_push(&mut bob.events, &alice.id()).await.0);
    alice.client.send_text(&conv, "hi bob").await.unwrap();
    let users = bob.client.search_users("alice", None, None).await.unwrap();
    assert_eq!(users.users.len(), 1);
    alice.client.open_direct(&bob.id()).await.unwrap();

    // Alice blocks Bob. Bob is told nothing; Alice's view says blocked.
    let blocked = alice.client.block(&bob.id()).await.unwrap();
    assert!(blocked.blocked);
    let again = server_error(alice.client.block(&bob.id()).await);
    assert_eq!(again.code, ErrorCode::Conflict);
    // Each sees the other's presence hidden: offline, never seen.
    assert_eq!(
        presence_push(&mut bob.events, &alice.id()).await,
        (false, None)
    );
    assert_eq!(
        presence_push(&mut alice.events, &bob.id()).await,
        (false, None)
    );
    assert!(
        !drain(&mut bob)
            .await
            .iter()
            .any(|f| matches!(f, ServerFrame::Contact { .. })),
        "the blocked user gets no contact push"
    );

    // The conversation takes nothing from Bob, with the refusal a privacy
    // setting gives; Alice is told to unblock first. History stays.
    let refused = server_error(bob.client.send_text(&conv, "are you there?").await);
    assert_eq!(refused.code, ErrorCode::Forbidden);
    let own = server_error(alice.client.send_text(&conv, "bye").await);
    assert_eq!(own.code, ErrorCode::Forbidden);
    assert_ne!(own.message, refused.message, "the blocker is told why");
    let history = bob.client.history(&conv, None, None).await.unwrap();
    assert_eq!(history.messages.len(), 2);

    // Carol allows direct conversations from contacts only: a stranger's
    // refusal is word for word the blocked user's.
    carol
        .client
        .set_privacy(Some(Audience::Contacts), None, None)
        .await
        .unwrap();
    let by_setting = server_error(dave.client.open_direct(&carol.id()).await);
    assert_eq!(by_setting.code, ErrorCode::Forbidden);
    assert_eq!(by_setting.message, refused.message);
    let by_block = server_error(bob.client.open_direct(&alice.id()).await);
    assert_eq!(
        (by_block.code, &by_block.message),
        (ErrorCode::Forbidden, &refused.message)
    );

    // Bob cannot add Alice to a group, and no longer finds her.
    let g = bob
        .client
        .create_group("Bob's", None, &[dave.id()])
        .await
        .unwrap();
    let add = server_error(bob.client.add_members(&g.conv, &[alice.id()]).await);
    assert_eq!(
        (add.code, &add.message),
        (ErrorCode::Forbidden, &refused.message)
    );
    let create = server_error(
        bob.client
            .create_group("With Alice", None, &[alice.id()])
            .await,
    );
    assert_eq!(create.code, ErrorCode::Forbidden);
    let found = bob.client.search_users("alice", None, None).await.unwrap();
    assert!(
        found.users.is_empty(),
        "the blocker is not found by the blocked"
    );
    // Bob's contact request looks pending to him; Alice does not see it.
    let pending = bob
        .client
        .contact(&alice.id(), ContactAction::Request)
        .await
        .unwrap();
    assert_eq!(pending.state, ContactState::Outgoing);
    let incoming = alice
        .client
        .contacts(ContactList::Incoming, None, None)
        .await
        .unwrap();
    assert!(incoming.contacts.is_empty());
    let blocked_list = alice
        .client
        .contacts(ContactList::Blocked, None, None)
        .await
        .unwrap();
    assert_eq!(blocked_list.contacts[0].profile.user, bob.id());

    // Unblocked: the conversation works again, presence is back, and the
    // request made while blocked is gone.
    alice.client.unblock(&bob.id()).await.unwrap();
    assert!(presence_push(&mut bob.events, &alice.id()).await.0);
    assert!(presence_push(&mut alice.events, &bob.id()).await.0);
    bob.client.send_text(&conv, "back").await.unwrap();
    assert_eq!(
        contact_push(&mut bob.events, &alice.id()).await.0,
        ContactState::None,
        "the request made while blocked is dropped"
    );
    let unblock_again = server_code(alice.client.unblock(&bob.id()).await);
    assert_eq!(unblock_again, ErrorCode::NotFound);
}

#[tokio::test]
async fn presence_follows_the_settings_both_ways_and_settings_sync() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let mut bob = chatd.user("bob").await;
    let (alice_phone, mut alice_phone_events) = chatd.connect().await;
    alice_phone.login("alice", PASSWORD, "phone").await.unwrap();
    assert_eq!(alice.session.privacy.presence, Audience::Everyone);

    // Bob watches Alice through the directory, Alice watches Bob.
    bob.client.search_users("alice", None, None).await.unwrap();
    alice.client.search_users("bob", None, None).await.unwrap();

    // Alice hides her presence from everyone: Bob sees her hidden, her
    // other device gets the settings, and (reciprocal) she no longer sees
    // Bob's.
    let privacy = alice
        .client
        .set_privacy(None, None, Some(Audience::Nobody))
        .await
        .unwrap();
    assert_eq!(privacy.presence, Audience::Nobody);
    assert_eq!(
        presence_push(&mut bob.events, &alice.id()).await,
        (false, None)
    );
    assert_eq!(
        presence_push(&mut alice.events, &bob.id()).await,
        (false, None)
    );
    let synced = push(&mut alice_phone_events, |f| {
        matches!(f, ServerFrame::Privacy { id: None, .. })
    })
    .await;
    assert!(
        matches!(synced, ServerFrame::Privacy { privacy, .. } if privacy.presence == Audience::Nobody)
    );
    let entry = bob.client.get_profile(&alice.id()).await.unwrap();
    assert!(!entry.presence.online && entry.presence.last_seen.is_none());
    let found = alice.client.search_users("bob", None, None).await.unwrap();
    assert!(
        !found.users[0].presence.online,
        "whoever hides theirs sees no one's"
    );

    // Contacts only: Bob, not a contact, still sees nothing; once they are
    // contacts, both see each other.
    alice
        .client
        .set_privacy(None, None, Some(Audience::Contacts))
        .await
        .unwrap();
    assert!(
        !drain(&mut bob).await.iter().any(
            |f| matches!(f, ServerFrame::Presence { presence } if presence.user == alice.id())
        ),
        "nothing changes for a non-contact"
    );
    bob.client
        .contact(&alice.id(), ContactAction::Request)
        .await
        .unwrap();
    alice
        .client
        .contact(&bob.id(), ContactAction::Accept)
        .await
        .unwrap();
    assert!(presence_push(&mut bob.events, &alice.id()).await.0);
    assert!(presence_push(&mut alice.events, &bob.id()).await.0);

    // Bad values are refused and nothing changes: `direct: nobody` by the
    // handler, an unknown value by the decoder.
    let bad = server_error(
        alice
            .client
            .set_privacy(Some(Audience::Nobody), None, None)
            .await,
    );
    assert_eq!(
        (bad.code, bad.field.as_deref()),
        (ErrorCode::InvalidArgument, Some("direct"))
    );
    let mut ws = RawWs::connect(chatd.addr, &[]).await.expect("upgrade");
    ws.send_frame(Codec::MsgPack, &hello(1)).await;
    ws.recv(Codec::MsgPack).await;
    let unknown = serde_json::json!({"type": "set_privacy", "id": 2, "presence": "friends"});
    ws.send_frame(Codec::MsgPack, &unknown).await;
    let (id, code, _) = error_of(&ws.recv(Codec::MsgPack).await);
    assert_eq!((id, code), (Some(2), ErrorCode::InvalidFrame));
    let (c, _e) = chatd.connect().await;
    let s = c.login("alice", PASSWORD, "laptop").await.unwrap();
    assert_eq!(
        (s.privacy.direct, s.privacy.presence),
        (Audience::Everyone, Audience::Contacts)
    );
}
