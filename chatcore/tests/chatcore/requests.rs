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
            other => panic!("{other:?}"),
        })
        .collect();
    topics.sort();
    let mut expected = vec![
        (Topic::User(bob.user.clone()), None),
        (Topic::User(alice.user.clone()), Some("conn-alice")),
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
        [(
            Topic::User(carol.user.clone()),
            Event::Revoked(Revocation::Device(carol.device.clone()))
        )]
    );
}
