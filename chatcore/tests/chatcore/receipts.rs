//! Receipts: how far each member received (`ack`) and read (`read`) a
//! conversation, pushed live to the other members and asked again after a
//! reconnect; the read-receipts setting, reciprocal; what is never told
//! (message requests, blocks, outsiders, older clients).

use std::sync::Arc;
use std::time::Duration;

use chatcore::model::{ConversationId, Millis, UserId};
use chatcore::protocol::{ClientFrame, ErrorCode, ReceiptInfo, ServerFrame};
use chatcore::server::ManualClock;
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Config, Server};

use crate::sessions::{code, contacts, two_users, Client, PW};

fn server(config: Config) -> Arc<Server> {
    Server::new(Backends::memory(), config).unwrap()
}

/// The `receipt` pushes among `frames`: (user, delivered, read).
fn pushed(frames: &[ServerFrame]) -> Vec<(UserId, u64, u64)> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Receipt {
                user,
                delivered,
                read,
                ..
            } => Some((user.clone(), *delivered, *read)),
            _ => None,
        })
        .collect()
}

async fn ack(c: &mut Client, conv: &ConversationId, seq: u64) {
    let conv = conv.clone();
    let r = c.req(|id| ClientFrame::Ack { id, conv, seq }).await;
    assert!(matches!(r, ServerFrame::Ok { .. }), "{r:?}");
}

async fn read(c: &mut Client, conv: &ConversationId, seq: u64) {
    let conv = conv.clone();
    let r = c.req(|id| ClientFrame::Read { id, conv, seq }).await;
    assert!(matches!(r, ServerFrame::Ok { .. }), "{r:?}");
}

/// The `receipts` answer: the receipts and `until`.
async fn receipts(
    c: &mut Client,
    conv: &ConversationId,
    since: Option<Millis>,
) -> (Vec<ReceiptInfo>, Millis) {
    let conv = conv.clone();
    match c.req(|id| ClientFrame::Receipts { id, conv, since }).await {
        ServerFrame::Receipts {
            receipts, until, ..
        } => (receipts, until),
        other => panic!("{other:?}"),
    }
}

fn info(user: &UserId, delivered: u64, read: u64) -> ReceiptInfo {
    ReceiptInfo {
        user: user.clone(),
        delivered,
        read,
    }
}

async fn set_read_receipts(c: &mut Client, on: bool) -> ServerFrame {
    c.req(|id| ClientFrame::SetPrivacy {
        id,
        direct: None,
        groups: None,
        presence: None,
        read_receipts: Some(on),
    })
    .await
}

fn seq_of(sent: &ServerFrame) -> u64 {
    match sent {
        ServerFrame::Sent { seq, .. } => *seq,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_sender_sees_delivered_then_read_live_and_again_after_a_reconnect() {
    let mut config = fast_config();
    config.receipt_overlap_ms = 0;
    let clock = Arc::new(ManualClock::new(chatcore::model::now_millis()));
    let s = Server::with_clock(Backends::memory(), config, clock.clone()).unwrap();
    let (mut a, mut b, _alice, bob, conv) = contacts(&s).await;
    let first = seq_of(&a.send(&bob, "m1", "one").await);
    let second = seq_of(&a.send(&bob, "m2", "two").await);
    b.drain().await;
    let (none, start) = receipts(&mut a, &conv, None).await;
    assert_eq!(none, [], "nothing received yet");
    clock.advance(Duration::from_secs(1));

    // Bob's phone acknowledges the first: Alice is told it was delivered.
    ack(&mut b, &conv, first).await;
    assert_eq!(pushed(&a.drain().await), [(bob.clone(), first, 0)]);
    // His laptop, signed in later, acknowledges both; then the phone again: one push only.
    let mut laptop = Client::connect(&s).await;
    laptop.login("bob", PW).await;
    ack(&mut laptop, &conv, second).await;
    ack(&mut b, &conv, second).await;
    assert_eq!(pushed(&a.drain().await), [(bob.clone(), second, 0)]);
    // He reads the first, then both: each read is a receipt; his own devices get none.
    read(&mut b, &conv, first).await;
    read(&mut laptop, &conv, second).await;
    assert_eq!(
        pushed(&a.drain().await),
        [(bob.clone(), second, first), (bob.clone(), second, second)]
    );
    assert_eq!(pushed(&b.drain().await), []);
    assert_eq!(pushed(&laptop.drain().await), []);

    // After a reconnect, Alice asks what changed since her last answer.
    let mut again = Client::connect(&s).await;
    again.login("alice", PW).await;
    let (changed, until) = receipts(&mut again, &conv, Some(start)).await;
    assert_eq!(changed, [info(&bob, second, second)]);
    assert!(until > start);
    clock.advance(Duration::from_secs(1));
    let (same, later) = receipts(&mut again, &conv, Some(until)).await;
    assert_eq!(
        same,
        [info(&bob, second, second)],
        "stamped in the millisecond of `until`: told again rather than lost"
    );
    assert_eq!(
        receipts(&mut again, &conv, Some(later)).await.0,
        [],
        "nothing since"
    );
    // Bob sees Alice's receipt too (she never acknowledged: none).
    assert_eq!(receipts(&mut b, &conv, None).await.0, []);

    // Receipts are no entries of the log.
    match again
        .req(|id| ClientFrame::History {
            id,
            conv: conv.clone(),
            before: None,
            limit: None,
        })
        .await
    {
        ServerFrame::Messages { messages, .. } => assert_eq!(messages.len(), 3, "hello, one, two"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_overlap_asks_again_for_what_rose_just_before_since() {
    let s = server(fast_config());
    assert!(fast_config().receipt_overlap_ms > 0);
    let (mut a, mut b, _alice, bob, conv) = contacts(&s).await;
    let seq = seq_of(&a.send(&bob, "m1", "one").await);
    ack(&mut b, &conv, seq).await;
    let (_, until) = receipts(&mut a, &conv, None).await;
    assert_eq!(
        receipts(&mut a, &conv, Some(until)).await.0,
        [info(&bob, seq, 0)],
        "stamped within the overlap: told again, harmlessly"
    );
}

#[tokio::test]
async fn whoever_turns_read_receipts_off_shares_none_and_sees_none() {
    let s = server(fast_config());
    let (mut a, mut b, alice, bob, conv) = contacts(&s).await;
    let mine = seq_of(&a.send(&bob, "m1", "from Alice").await);
    let theirs = seq_of(&b.send(&alice, "m2", "from Bob").await);
    a.drain().await;
    b.drain().await;

    match set_read_receipts(&mut b, false).await {
        ServerFrame::Privacy { privacy, .. } => assert!(!privacy.read_receipts),
        other => panic!("{other:?}"),
    }
    // Bob reads Alice's message: delivered, but not read, as far as she can tell.
    read(&mut b, &conv, mine).await;
    assert_eq!(pushed(&a.drain().await), [(bob.clone(), mine, 0)]);
    assert_eq!(receipts(&mut a, &conv, None).await.0, [info(&bob, mine, 0)]);
    // Alice reads Bob's: she shares, but Bob, who does not, is not shown it.
    read(&mut a, &conv, theirs).await;
    assert_eq!(pushed(&b.drain().await), [(alice.clone(), theirs, 0)]);
    assert_eq!(
        receipts(&mut b, &conv, None).await.0,
        [info(&alice, theirs, 0)]
    );
    // Another device of Bob's is told of the setting and applies it at once.
    let mut laptop = Client::connect(&s).await;
    match laptop.login("bob", PW).await {
        ServerFrame::Session { privacy, .. } => assert!(!privacy.read_receipts),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        receipts(&mut laptop, &conv, None).await.0,
        [info(&alice, theirs, 0)]
    );

    // On again: Bob sees Alice's read, and his next read is shared.
    let r = set_read_receipts(&mut b, true).await;
    assert!(matches!(r, ServerFrame::Privacy { .. }), "{r:?}");
    assert_eq!(
        receipts(&mut b, &conv, None).await.0,
        [info(&alice, theirs, theirs)]
    );
    read(&mut laptop, &conv, theirs).await;
    assert_eq!(
        pushed(&a.drain().await),
        [(bob.clone(), theirs, theirs)],
        "the read mark catches up with what he reads now"
    );
}

#[tokio::test]
async fn every_member_of_a_group_sees_the_others_receipts() {
    let s = server(fast_config());
    let (mut a, mut b, _alice, bob) = two_users(&s).await;
    let mut c = Client::connect(&s).await;
    let carol = c.register("carol", "+447700900333").await;
    let conv = match a
        .req(|id| ClientFrame::CreateGroup {
            id,
            title: "Tea party".into(),
            description: None,
            avatar: None,
            members: vec![bob.clone(), carol.clone()],
            encrypted: false,
        })
        .await
    {
        ServerFrame::Conversation { conversation, .. } => conversation.conv,
        other => panic!("{other:?}"),
    };
    let sent = a
        .req(|id| ClientFrame::Send {
            media: Vec::new(),
            mentions: Vec::new(),
            rel: None,
            id,
            conv: Some(conv.clone()),
            to: None,
            client_id: "g1".into(),
            content: chatcore::model::Content::Text {
                text: "hi all".into(),
            },
        })
        .await;
    let seq = seq_of(&sent);
    for x in [&mut a, &mut b, &mut c] {
        x.drain().await;
    }
    ack(&mut c, &conv, seq).await;
    read(&mut c, &conv, seq).await;
    assert_eq!(
        pushed(&a.drain().await),
        [(carol.clone(), seq, 0), (carol.clone(), seq, seq)]
    );
    assert_eq!(
        pushed(&b.drain().await),
        [(carol.clone(), seq, 0), (carol.clone(), seq, seq)],
        "every member may have sent something below"
    );
    assert_eq!(pushed(&c.drain().await), []);
    ack(&mut b, &conv, seq).await;
    let (mut all, _) = receipts(&mut a, &conv, None).await;
    all.sort_by(|x, y| x.user.cmp(&y.user));
    let mut expected = vec![info(&bob, seq, 0), info(&carol, seq, seq)];
    expected.sort_by(|x, y| x.user.cmp(&y.user));
    assert_eq!(all, expected, "read by 1 of 2, delivered to both");
}

#[tokio::test]
async fn requests_blocks_and_outsiders_get_no_receipts() {
    let s = server(fast_config());
    let (mut a, mut b, alice, bob) = two_users(&s).await;
    // A message request Bob has not answered: his reading it tells Alice nothing.
    let seq = seq_of(&a.send(&bob, "m1", "hello").await);
    let conv = ConversationId::direct(&alice, &bob);
    b.drain().await;
    ack(&mut b, &conv, seq).await;
    read(&mut b, &conv, seq).await;
    assert_eq!(pushed(&a.drain().await), []);
    assert_eq!(receipts(&mut a, &conv, None).await.0, []);
    // Someone else knows nothing of the conversation.
    let mut eve = Client::connect(&s).await;
    eve.register("eve", "+449999999999").await;
    let conv2 = conv.clone();
    let r = eve
        .req(|id| ClientFrame::Receipts {
            id,
            conv: conv2,
            since: None,
        })
        .await;
    assert_eq!(code(&r), Some(ErrorCode::NotFound));
    let conv2 = conv.clone();
    let r = eve
        .req(|id| ClientFrame::Ack {
            id,
            conv: conv2,
            seq: 1,
        })
        .await;
    assert_eq!(code(&r), Some(ErrorCode::NotFound));
    // Accepted, receipts flow; blocked, they stop both ways.
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
    assert_eq!(
        receipts(&mut a, &conv, None).await.0,
        [info(&bob, seq, seq)]
    );
    let next = seq_of(&a.send(&bob, "m2", "again").await);
    b.drain().await;
    ack(&mut b, &conv, next).await;
    assert_eq!(pushed(&a.drain().await), [(bob.clone(), next, seq)]);
    let blocked = a
        .req(|id| ClientFrame::Block {
            id,
            user: bob.clone(),
        })
        .await;
    assert!(!matches!(blocked, ServerFrame::Error { .. }), "{blocked:?}");
    b.drain().await;
    read(&mut b, &conv, next).await;
    assert_eq!(pushed(&a.drain().await), []);
    assert_eq!(receipts(&mut a, &conv, None).await.0, []);
    // A mark beyond the head is refused, not stored.
    let conv2 = conv.clone();
    let r = b
        .req(|id| ClientFrame::Read {
            id,
            conv: conv2,
            seq: next + 5,
        })
        .await;
    assert_eq!(code(&r), Some(ErrorCode::InvalidArgument));
}

#[tokio::test]
async fn a_version_5_client_gets_no_receipt_push_and_no_setting_it_cannot_decode() {
    let s = server(fast_config());
    let (mut a, mut b, _alice, bob, conv) = contacts(&s).await;
    let r = set_read_receipts(&mut b, false).await;
    assert!(matches!(r, ServerFrame::Privacy { .. }), "{r:?}");
    let mut old = Client::connect_version(&s, 5).await;
    match old.login("alice", PW).await {
        ServerFrame::Session { privacy, .. } => assert!(privacy.read_receipts),
        other => panic!("{other:?}"),
    }
    // Its own setting, off, is left out of what it gets (a version-5 decoder refuses the field).
    let r = set_read_receipts(&mut a, false).await;
    assert!(matches!(r, ServerFrame::Privacy { .. }), "{r:?}");
    let told: Vec<_> = old
        .drain()
        .await
        .into_iter()
        .filter_map(|f| match f {
            ServerFrame::Privacy { privacy, .. } => Some(privacy.read_receipts),
            _ => None,
        })
        .collect();
    assert_eq!(told, [true], "told of the change, the field left out");
    let seq = seq_of(&a.send(&bob, "m1", "one").await);
    b.drain().await;
    ack(&mut b, &conv, seq).await;
    assert_eq!(pushed(&a.drain().await), [(bob.clone(), seq, 0)]);
    assert_eq!(pushed(&old.drain().await), []);
}
