//! Profiles and the directory kept live against the real chatd: a profile
//! change is pushed to who sees the user and to the user's other devices; a
//! registration is pushed to the connections showing the unfiltered first
//! page of the directory, and to no others.

use super::*;

/// Whether a push matching `pred` arrives within a moment. Called after a
/// request on the same connection answered: the server queues a push before
/// the reply of a later request, so a push that was due is there already.
async fn got(events: &mut Events, pred: impl Fn(&ServerFrame) -> bool) -> bool {
    timeout(Duration::from_millis(300), async {
        loop {
            match events.recv().await {
                Some(Event::Push(f)) if pred(&f) => return true,
                Some(Event::Push(_)) => continue,
                _ => return false,
            }
        }
    })
    .await
    .unwrap_or(false)
}

fn profile_of(f: &ServerFrame, user: &UserId) -> bool {
    matches!(f, ServerFrame::ProfileChanged { profile } if &profile.user == user)
}

fn new_user(f: &ServerFrame, name: &str) -> bool {
    matches!(f, ServerFrame::NewUser { entry } if entry.profile.username == name)
}

#[tokio::test]
async fn profile_changes_reach_watchers_and_other_devices_live() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let mut bob = chatd.user("bob").await;
    let mut carol = chatd.user("carol").await;
    let (bob_phone, mut bob_phone_events) = chatd.connect().await;
    bob_phone.login("bob", PASSWORD, "phone").await.unwrap();
    // Alice's directory view shows Bob; Carol's does not.
    alice.client.search_users("bo", None, None).await.unwrap();
    carol.client.search_users("al", None, None).await.unwrap();

    let entry = bob
        .client
        .update_profile(
            Some("Bob the Builder".into()),
            Some("Can we fix it?".into()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(entry.profile.display_name, "Bob the Builder");
    let pushed = push(&mut alice.events, |f| profile_of(f, &bob.id())).await;
    let ServerFrame::ProfileChanged { profile } = pushed else {
        unreachable!()
    };
    assert_eq!(*profile, entry.profile);
    push(&mut bob_phone_events, |f| profile_of(f, &bob.id())).await;

    carol.client.ping().await.unwrap();
    assert!(
        !got(&mut carol.events, |f| profile_of(f, &bob.id())).await,
        "carol does not see bob"
    );
    bob.client.ping().await.unwrap();
    assert!(
        !got(&mut bob.events, |f| matches!(
            f,
            ServerFrame::ProfileChanged { .. }
        ))
        .await,
        "the changing connection has its reply"
    );

    // A conversation peer sees the change too, whatever its directory
    // shows, once its message request is accepted: not before.
    let sent = carol.client.send_text(&bob.id(), "hi bob").await.unwrap();
    bob.client
        .update_profile(None, Some("Busy".into()), None)
        .await
        .unwrap();
    carol.client.ping().await.unwrap();
    assert!(
        !got(&mut carol.events, |f| profile_of(f, &bob.id())).await,
        "bob has not accepted carol's request"
    );
    bob.client.accept(&sent.conv).await.unwrap();
    bob.client
        .update_profile(None, Some("Gone fishing".into()), None)
        .await
        .unwrap();
    let pushed = push(&mut carol.events, |f| profile_of(f, &bob.id())).await;
    assert!(
        matches!(pushed, ServerFrame::ProfileChanged { profile } if profile.about == "Gone fishing")
    );
}

#[tokio::test]
async fn new_users_reach_the_unfiltered_directory_page_only() {
    let chatd = Chatd::start(&[]).await;
    let mut alice = chatd.user("alice").await;
    let mut bob = chatd.user("bob").await;
    alice.client.search_users("", None, None).await.unwrap();
    bob.client.search_users("b", None, None).await.unwrap();

    let carol = chatd.user("carol").await;
    let pushed = push(&mut alice.events, |f| new_user(f, "carol")).await;
    let ServerFrame::NewUser { entry } = pushed else {
        unreachable!()
    };
    assert_eq!(entry.profile.user, carol.id());
    assert_eq!(entry.profile.display_name, "carol Example");
    assert!(entry.presence.online);
    bob.client.ping().await.unwrap();
    assert!(
        !got(&mut bob.events, |f| new_user(f, "carol")).await,
        "a filtered view is not told"
    );

    // Listed now: alice follows carol's presence like the rest of the page.
    carol.client.close().await.unwrap();
    let gone = push(
        &mut alice.events,
        |f| matches!(f, ServerFrame::Presence { presence } if presence.user == carol.id()),
    )
    .await;
    assert!(matches!(gone, ServerFrame::Presence { presence } if !presence.online));

    // Another view (a search, or a later page) stops the announcements.
    alice.client.search_users("zz", None, None).await.unwrap();
    let _dave = chatd.user("dave").await;
    alice.client.ping().await.unwrap();
    assert!(!got(&mut alice.events, |f| new_user(f, "dave")).await);
    // Back on the first page, they resume.
    alice.client.search_users("", None, None).await.unwrap();
    let _erin = chatd.user("erin").await;
    push(&mut alice.events, |f| new_user(f, "erin")).await;
}
