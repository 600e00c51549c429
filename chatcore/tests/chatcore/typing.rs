//! `typing`: who is told, live, that a member writes; what is never told;
//! the connection's budget; and that a slow connection drops typing rather
//! than being closed for it.

use std::sync::Arc;
use std::time::Duration;

use chatcore::model::ConversationId;
use chatcore::protocol::{ClientFrame, ErrorCode, ServerFrame, PROTOCOL_VERSION};
use chatcore::server::ManualClock;
use chatcore::store::Quota;
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Server};

use crate::sessions::{contacts, two_users, Client, PW};

fn code(f: &ServerFrame) -> Option<ErrorCode> {
    match f {
        ServerFrame::Error { code, .. } => Some(*code),
        _ => None,
    }
}

fn typing(conv: &ConversationId, on: bool) -> impl FnOnce(u32) -> ClientFrame {
    let conv = conv.clone();
    move |id| ClientFrame::Typing {
        id,
        conv,
        typing: on,
    }
}

fn typings(frames: &[ServerFrame]) -> Vec<(String, bool)> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Typing { user, typing, .. } => Some((user.to_string(), *typing)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_member_who_types_is_shown_to_the_others_live_and_nothing_is_stored() {
    let s = Server::new(Backends::memory(), fast_config()).unwrap();
    let (mut a, mut b, _, _, conv) = contacts(&s).await;
    let alice = a.user.clone().unwrap();
    assert!(matches!(
        a.req(typing(&conv, true)).await,
        ServerFrame::Ok { .. }
    ));
    match b.push().await {
        ServerFrame::Typing {
            conv: c,
            user,
            typing,
            ttl_ms,
        } => {
            assert_eq!((c, user, typing), (conv.clone(), alice.clone(), true));
            assert_eq!(ttl_ms, fast_config().typing_ttl_ms);
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        a.req(typing(&conv, false)).await,
        ServerFrame::Ok { .. }
    ));
    assert_eq!(typings(&b.drain().await), [(alice.to_string(), false)]);
    // The typist is not told of itself; the log did not grow.
    assert_eq!(typings(&a.drain().await), []);
    match b
        .req(|id| ClientFrame::History {
            id,
            conv: conv.clone(),
            before: None,
            limit: None,
        })
        .await
    {
        ServerFrame::Messages { messages, .. } => assert_eq!(messages.len(), 1),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn outsiders_requests_and_blocks_carry_no_typing() {
    let s = Server::new(Backends::memory(), fast_config()).unwrap();
    let (mut a, mut b, alice, bob) = two_users(&s).await;
    // A message request Bob has not answered: neither side's typing goes out.
    a.send(&bob, "m1", "hello").await;
    let conv = ConversationId::direct(&alice, &bob);
    b.drain().await;
    assert!(matches!(
        a.req(typing(&conv, true)).await,
        ServerFrame::Ok { .. }
    ));
    assert_eq!(typings(&b.drain().await), []);
    assert!(matches!(
        b.req(typing(&conv, true)).await,
        ServerFrame::Ok { .. }
    ));
    assert_eq!(typings(&a.drain().await), []);
    // Someone else knows nothing of the conversation, whatever id is tried.
    let mut eve = Client::connect(&s).await;
    eve.register("eve", "+449999999999").await;
    assert_eq!(
        code(&eve.req(typing(&conv, true)).await),
        Some(ErrorCode::NotFound)
    );
    // Accepted, it carries typing; blocked, no more (and the typist is not told).
    let accepted = b
        .req(|id| ClientFrame::Accept {
            id,
            conv: conv.clone(),
        })
        .await;
    assert!(
        !matches!(accepted, ServerFrame::Error { .. }),
        "{accepted:?}"
    );
    a.drain().await;
    assert!(matches!(
        a.req(typing(&conv, true)).await,
        ServerFrame::Ok { .. }
    ));
    assert_eq!(typings(&b.drain().await), [(alice.to_string(), true)]);
    let blocked = b
        .req(|id| ClientFrame::Block {
            id,
            user: alice.clone(),
        })
        .await;
    assert!(!matches!(blocked, ServerFrame::Error { .. }), "{blocked:?}");
    a.drain().await;
    assert!(matches!(
        a.req(typing(&conv, true)).await,
        ServerFrame::Ok { .. }
    ));
    assert_eq!(typings(&b.drain().await), []);
}

#[tokio::test]
async fn a_version_4_client_gets_no_typing_push() {
    const { assert!(PROTOCOL_VERSION > 4) };
    let s = Server::new(Backends::memory(), fast_config()).unwrap();
    let (mut a, b, _, _, conv) = contacts(&s).await;
    drop(b);
    let mut old = Client::connect_version(&s, 4).await;
    old.login("bob", PW).await;
    old.drain().await;
    assert!(matches!(
        a.req(typing(&conv, true)).await,
        ServerFrame::Ok { .. }
    ));
    let mut now = Client::connect(&s).await;
    now.login("bob", PW).await;
    now.drain().await;
    // (A change: a repeat of the first would not go out again so soon.)
    assert!(matches!(
        a.req(typing(&conv, false)).await,
        ServerFrame::Ok { .. }
    ));
    assert_eq!(
        typings(&now.drain().await),
        [(a.user.clone().unwrap().to_string(), false)]
    );
    assert_eq!(
        typings(&old.drain().await),
        [],
        "a version-4 decoder would refuse the push"
    );
}

#[tokio::test]
async fn past_the_connections_budget_typing_is_dropped_not_refused() {
    let mut config = fast_config();
    config.typing_budget = Quota {
        max: 2,
        window_ms: 60_000,
    };
    let s = Server::new(Backends::memory(), config).unwrap();
    let (mut a, mut b, _, _, conv) = contacts(&s).await;
    // Writing, stopped, writing, stopped: each a change, none a repeat.
    for i in 0..4 {
        assert!(matches!(
            a.req(typing(&conv, i % 2 == 0)).await,
            ServerFrame::Ok { .. }
        ));
    }
    assert_eq!(typings(&b.drain().await).len(), 2);
    // The budget is the connection's: another device of Alice's types on.
    let mut phone = Client::connect(&s).await;
    phone.login("alice", PW).await;
    assert!(matches!(
        phone.req(typing(&conv, true)).await,
        ServerFrame::Ok { .. }
    ));
    assert_eq!(typings(&b.drain().await).len(), 1);
}

#[tokio::test]
async fn a_slow_connection_drops_typing_and_stays_open() {
    let mut config = fast_config();
    config.outbound_queue = 4;
    let s = Server::new(Backends::memory(), config).unwrap();
    let (mut a, mut b, _, _, conv) = contacts(&s).await;
    // Bob's connection reads nothing while Alice starts and stops typing
    // a hundred times: its queue fills.
    let mut slow = Client::connect_from(&s, None, 1).await;
    slow.login("bob", PW).await;
    for i in 0..100 {
        assert!(matches!(
            a.req(typing(&conv, i % 2 == 0)).await,
            ServerFrame::Ok { .. }
        ));
    }
    // Still open: it answers, and a message still reaches it.
    let bob = b.user.clone().unwrap();
    a.send(&bob, "after", "after the typing").await;
    let pushed = slow.drain().await;
    assert!(
        pushed
            .iter()
            .any(|f| matches!(f, ServerFrame::Message { .. })),
        "the message came after the dropped typing: {pushed:?}"
    );
    assert!(typings(&pushed).len() < 100, "some typing was dropped");
    b.drain().await;
}

/// A client asked to refresh about every half of `ttl_ms` may refresh more
/// often: a repeat within a third of it goes out once, so that the
/// members' connections are not pushed one frame per refresh. A change, a
/// message from the typist, and another device's typing go out at once.
#[tokio::test]
async fn a_repeat_within_a_third_of_the_ttl_goes_out_once() {
    let clock = Arc::new(ManualClock::new(chatcore::model::now_millis()));
    let s = Server::with_clock(Backends::memory(), fast_config(), clock.clone()).unwrap();
    let (mut a, mut b, alice, bob, conv) = contacts(&s).await;
    let third = Duration::from_millis(u64::from(fast_config().typing_ttl_ms / 3));
    let me = |on| vec![(alice.to_string(), on)];
    let say = async |c: &mut Client, on| {
        assert!(matches!(
            c.req(typing(&conv, on)).await,
            ServerFrame::Ok { .. }
        ));
    };
    say(&mut a, true).await;
    assert_eq!(typings(&b.drain().await), me(true));
    // Again at once, and just short of a third later: nothing new to show.
    say(&mut a, true).await;
    clock.advance(third - Duration::from_millis(1));
    say(&mut a, true).await;
    assert_eq!(typings(&b.drain().await), []);
    // A third after the push went out: the refresh goes out.
    clock.advance(Duration::from_millis(1));
    say(&mut a, true).await;
    assert_eq!(typings(&b.drain().await), me(true));
    // Stopping goes out at once, and so does writing again.
    say(&mut a, false).await;
    say(&mut a, false).await;
    say(&mut a, true).await;
    assert_eq!(
        typings(&b.drain().await),
        [(alice.to_string(), false), (alice.to_string(), true)]
    );
    // A message ends the typing Bob shows: writing again is shown at once.
    a.send(&bob, "m1", "hello").await;
    b.drain().await;
    say(&mut a, true).await;
    assert_eq!(typings(&b.drain().await), me(true));
    // Another connection of Alice's keeps its own.
    let mut phone = Client::connect(&s).await;
    phone.login("alice", PW).await;
    say(&mut phone, true).await;
    assert_eq!(typings(&b.drain().await), me(true));
}

/// A repeat that does not go out spends none of the connection's budget:
/// a client refreshing often still has room to say that it stopped.
#[tokio::test]
async fn a_repeat_spends_none_of_the_budget() {
    let mut config = fast_config();
    config.typing_budget = Quota {
        max: 2,
        window_ms: 60_000,
    };
    let s = Server::new(Backends::memory(), config).unwrap();
    let (mut a, mut b, alice, _, conv) = contacts(&s).await;
    for on in [true, true, true, true, false, true] {
        assert!(matches!(
            a.req(typing(&conv, on)).await,
            ServerFrame::Ok { .. }
        ));
    }
    assert_eq!(
        typings(&b.drain().await),
        [(alice.to_string(), true), (alice.to_string(), false)],
        "the stop went out; the last start is past the budget"
    );
}
