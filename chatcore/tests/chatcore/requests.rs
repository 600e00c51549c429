//! Requests handled without any connection: `request::dispatch` returns the
//! reply and records what else must happen.

use chatcore::model::Content;
use chatcore::protocol::{ClientFrame, ServerFrame};
use chatcore::request::{dispatch, Caller, Out, Who};
use chatcore::session::Disconnect;
use chatcore::store::{Event, Revocation, Topic};
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Server};
use std::sync::Arc;

const PW: &str = "tangerine submarine orchestra 77";

async fn register(s: &Arc<Server>, name: &str, phone: &str) -> Caller {
    let mut out = Out::default();
    let reply = dispatch(
        s,
        Who::new(None, None),
        ClientFrame::Register {
            id: 1,
            username: name.into(),
            email: format!("{name}@example.com"),
            phone: phone.into(),
            display_name: name.into(),
            password: PW.into(),
            device: "test".into(),
        },
        &mut out,
    )
    .await
    .expect("registered");
    assert!(matches!(reply, ServerFrame::Session { token: Some(_), .. }));
    let sign_in = out.sign_in.expect("the connection is to sign in");
    Caller::new(
        sign_in.user,
        sign_in.device,
        sign_in.token_hash,
        Arc::from(format!("conn-{name}")),
    )
}

#[tokio::test]
async fn a_send_returns_its_reply_and_the_events_for_both_users() {
    let s = Server::new(Backends::memory(), fast_config()).unwrap();
    let alice = register(&s, "alice", "+441111111111").await;
    let bob = register(&s, "bob", "+442222222222").await;
    let mut out = Out::default();
    let send = ClientFrame::Send {
        media: Vec::new(),
        mentions: Vec::new(),
        rel: None,
        id: 2,
        conv: None,
        to: Some(bob.user.clone()),
        client_id: "c1".into(),
        content: Content::Text { text: "hi".into() },
    };
    let reply = dispatch(&s, Who::new(None, Some(&alice)), send, &mut out)
        .await
        .unwrap();
    assert!(
        matches!(reply, ServerFrame::Sent { seq: 1, .. }),
        "{reply:?}"
    );
    let mut topics: Vec<(Topic, Option<&str>)> = out
        .events
        .iter()
        .map(|(t, e)| match e {
            Event::Message { origin, .. } => (t.clone(), origin.as_deref()),
            // A first message to a stranger: a request, which hides the
            // recipient's presence from the sender's connections.
            Event::Relation {
                with,
                hidden: true,
                origin: None,
                ..
            } if *with == bob.user => (t.clone(), Some("relation")),
            other => panic!("{other:?}"),
        })
        .collect();
    topics.sort();
    let mut expected = vec![
        (Topic::User(bob.user.clone()), None),
        (Topic::User(alice.user.clone()), Some("conn-alice")),
        (Topic::User(alice.user.clone()), Some("relation")),
    ];
    expected.sort();
    assert_eq!(topics, expected, "the peer, and the sender's other devices");
    assert_eq!(
        out.watch,
        std::slice::from_ref(&bob.user),
        "the sender watches the peer"
    );
    assert!(out.close.is_none() && out.sign_in.is_none());
}

#[tokio::test]
async fn signed_out_callers_get_unauthenticated_and_logout_asks_to_close() {
    let s = Server::new(Backends::memory(), fast_config()).unwrap();
    let mut out = Out::default();
    let sync = ClientFrame::Sync { id: 1, limit: None };
    let err = dispatch(&s, Who::new(None, None), sync, &mut out)
        .await
        .unwrap_err();
    assert_eq!(err.code(), chatcore::protocol::ErrorCode::Unauthenticated);

    let carol = register(&s, "carol", "+443333333333").await;
    let mut out = Out::default();
    let reply = dispatch(
        &s,
        Who::new(None, Some(&carol)),
        ClientFrame::Logout { id: 3 },
        &mut out,
    )
    .await
    .unwrap();
    assert!(matches!(reply, ServerFrame::Ok { id: 3 }));
    assert_eq!(out.close, Some(Disconnect::LoggedOut));
    assert_eq!(
        out.events,
        [
            (
                Topic::User(carol.user.clone()),
                Event::Revoked(Revocation::Device(carol.device.clone()))
            ),
            (
                Topic::User(carol.user.clone()),
                Event::DevicesChanged {
                    user: carol.user.clone(),
                    origin: Some(carol.conn.clone())
                }
            )
        ]
    );
}

#[tokio::test]
async fn a_profile_change_is_published_to_its_watchers_and_other_devices() {
    let s = Server::new(Backends::memory(), fast_config()).unwrap();
    let dana = register(&s, "dana", "+444444444444").await;
    let mut out = Out::default();
    let update = ClientFrame::UpdateProfile {
        id: 2,
        display_name: Some("Dana D.".into()),
        about: Some("Out sailing".into()),
        avatar: None,
    };
    let reply = dispatch(&s, Who::new(None, Some(&dana)), update, &mut out)
        .await
        .unwrap();
    let ServerFrame::Profile { entry, .. } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(entry.profile.display_name, "Dana D.");
    let mut topics = Vec::new();
    for (topic, event) in &out.events {
        let Event::Profile { profile, origin } = event else {
            panic!("{event:?}")
        };
        assert_eq!(**profile, entry.profile, "the card as stored");
        assert_eq!(
            &**origin, "conn-dana",
            "the asking connection has the reply"
        );
        topics.push(topic.clone());
    }
    topics.sort();
    let mut expected = vec![
        Topic::Presence(dana.user.clone()),
        Topic::User(dana.user.clone()),
    ];
    expected.sort();
    assert_eq!(
        topics, expected,
        "who watches dana, and dana's other devices"
    );

    // A refused change publishes nothing.
    let mut out = Out::default();
    let empty = ClientFrame::UpdateProfile {
        id: 3,
        display_name: Some("   ".into()),
        about: None,
        avatar: None,
    };
    let refused = dispatch(&s, Who::new(None, Some(&dana)), empty, &mut out).await;
    assert!(refused.is_err());
    assert!(out.events.is_empty());
}

#[tokio::test]
async fn a_registration_is_announced_and_only_the_unfiltered_first_page_listens() {
    let s = Server::new(Backends::memory(), fast_config()).unwrap();
    let gwen = register(&s, "gwen", "+445555555555").await;
    let mut out = Out::default();
    let frank = dispatch(
        &s,
        Who::new(None, None),
        ClientFrame::Register {
            id: 1,
            username: "frank".into(),
            email: "frank@example.com".into(),
            phone: "+446666666666".into(),
            display_name: "Frank".into(),
            password: PW.into(),
            device: "test".into(),
        },
        &mut out,
    )
    .await
    .unwrap();
    let ServerFrame::Session { user: frank, .. } = frank else {
        panic!("{frank:?}")
    };
    // The new user is announced, and told to their own devices (none yet).
    let [(Topic::Directory, Event::NewUser(entry)), (Topic::User(own), Event::DevicesChanged { user, .. })] =
        out.events.as_slice()
    else {
        panic!("{:?}", out.events)
    };
    assert_eq!((own, user), (&frank, &frank));
    assert_eq!(entry.profile.user, frank);
    assert_eq!(entry.profile.username, "frank");
    assert!(entry.presence.online, "a new user is signing in");

    // Which views listen: the unfiltered first page only.
    let cases = [
        ("", None, true),
        ("  ", None, true),
        ("fr", None, false),
        ("", Some("gwen".to_owned()), false),
    ];
    for (query, after, listens) in cases {
        let mut out = Out::default();
        let search = ClientFrame::SearchUsers {
            id: 4,
            query: query.into(),
            after: after.clone(),
            limit: None,
        };
        dispatch(&s, Who::new(None, Some(&gwen)), search, &mut out)
            .await
            .unwrap();
        assert!(out.directory.is_some());
        assert_eq!(out.new_users, listens, "query {query:?} after {after:?}");
    }
}
