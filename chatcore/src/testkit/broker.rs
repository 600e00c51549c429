//! The broker conformance suite: what every [`Broker`] must do for the
//! nodes of one service, written once over the brokers of three nodes that
//! share one bus (the in-memory bus, one Redis server).
//!
//! - Only the events of the topics a node subscribed to reach it; every
//!   subscribed node gets each, the publisher's own node included.
//! - `unsubscribe` stops them; subscribing again starts them again.
//! - One publisher's events on one topic arrive in the order published.
//! - Events arrive whole: what was published is what is delivered.
//!
//! "Never arrives" is checked by a later event of the same publisher on
//! the same topic (order is kept per topic) or, across topics, after a
//! short wait ([`QUIET`]) following a sentinel.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::BoxFuture;
use crate::model::{ConversationId, UserId};
use crate::store::{Broker, BrokerHandler, Event, Topic};

/// Hands out the brokers of three nodes of one service on a fresh, empty
/// bus (no topic subscribed, nothing in flight), each a separate
/// connection as separate processes would have.
pub trait BrokerFactory: Send + Sync {
    /// Three brokers sharing one bus, fresh for this case.
    fn nodes(&self) -> BoxFuture<'_, [Arc<dyn Broker>; 3]>;
}

impl<F, Fut> BrokerFactory for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = [Arc<dyn Broker>; 3]> + Send + 'static,
{
    fn nodes(&self) -> BoxFuture<'_, [Arc<dyn Broker>; 3]> {
        Box::pin(self())
    }
}

/// One case, on three nodes whose handlers record what they get.
pub type Case = fn(Nodes) -> BoxFuture<'static, ()>;

cases!(
    pub fn cases;
    broker_only_subscribed_topics_arrive_on_every_subscribed_node,
    broker_unsubscribe_stops_and_subscribing_again_resumes,
    broker_keeps_each_publishers_order_per_topic,
    broker_delivers_every_kind_of_event_whole,
);

/// Runs every case on fresh nodes from `factory`; panics listing each
/// failing case.
pub async fn run_all(factory: &dyn BrokerFactory) {
    super::run_cases("broker conformance", cases(), || async {
        Nodes::attach(factory.nodes().await)
    })
    .await;
}

/// How long a node waits, after it got a later event, for one that must
/// not come (only where order does not say it already).
pub const QUIET: Duration = Duration::from_millis(150);

/// How long an expected event may take.
const ARRIVES: Duration = Duration::from_secs(10);

/// What one node's handler got, in order.
#[derive(Default)]
pub struct Received {
    got: Mutex<Vec<(Topic, Arc<Event>)>>,
    changed: Notify,
}

impl BrokerHandler for Received {
    fn deliver(&self, topic: &Topic, event: Arc<Event>) {
        self.got
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((topic.clone(), event));
        self.changed.notify_waiters();
    }
}

impl Received {
    fn snapshot(&self) -> Vec<(Topic, Arc<Event>)> {
        self.got.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until `pred` holds for what arrived; panics after [`ARRIVES`].
    async fn until(&self, what: &str, pred: impl Fn(&[(Topic, Arc<Event>)]) -> bool) {
        let wait = async {
            loop {
                let notified = self.changed.notified();
                if pred(&self.snapshot()) {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(ARRIVES, wait).await.is_err() {
            panic!("never {what}; got {:?}", self.snapshot());
        }
    }
}

/// Three nodes: their brokers and what each delivered.
pub struct Nodes {
    brokers: [Arc<dyn Broker>; 3],
    got: [Arc<Received>; 3],
}

impl Nodes {
    fn attach(brokers: [Arc<dyn Broker>; 3]) -> Self {
        let got: [Arc<Received>; 3] = std::array::from_fn(|_| Arc::new(Received::default()));
        for (b, g) in brokers.iter().zip(&got) {
            b.attach(g.clone());
        }
        Self { brokers, got }
    }
}

fn user(n: &str) -> Topic {
    Topic::User(UserId::from(n))
}

/// A small event that says which one it is.
fn typing(n: u64) -> Event {
    Event::Typing {
        conv: ConversationId::from(format!("c:{n}").as_str()),
        user: UserId::from("writer"),
        typing: n.is_multiple_of(2),
    }
}

fn number(e: &Event) -> Option<u64> {
    match e {
        Event::Typing { conv, .. } => conv.as_str().strip_prefix("c:")?.parse().ok(),
        _ => None,
    }
}

fn numbers_on(got: &[(Topic, Arc<Event>)], topic: &Topic) -> Vec<u64> {
    got.iter()
        .filter(|(t, _)| t == topic)
        .filter_map(|(_, e)| number(e))
        .collect()
}

async fn broker_only_subscribed_topics_arrive_on_every_subscribed_node(n: Nodes) {
    let (a, b) = (user("a"), user("b"));
    n.brokers[0].subscribe(&a).await.expect("subscribe");
    n.brokers[1].subscribe(&a).await.expect("subscribe");
    n.brokers[1].subscribe(&b).await.expect("subscribe");
    // Node 2 publishes on both topics, and on one nobody listens to.
    n.brokers[2]
        .publish(&user("nobody"), typing(9))
        .await
        .expect("publish");
    n.brokers[2].publish(&b, typing(2)).await.expect("publish");
    n.brokers[2].publish(&a, typing(1)).await.expect("publish");
    // Node 0 publishes on a: it reaches node 0 itself and node 1.
    n.brokers[0].publish(&a, typing(3)).await.expect("publish");
    n.got[0]
        .until("got a's two events", |g| numbers_on(g, &a).len() == 2)
        .await;
    n.got[1]
        .until("got a's and b's events", |g| {
            numbers_on(g, &a).len() == 2 && numbers_on(g, &b) == [2]
        })
        .await;
    tokio::time::sleep(QUIET).await;
    let zero = n.got[0].snapshot();
    assert!(
        zero.iter().all(|(t, _)| *t == a),
        "node 0 got a topic it never subscribed to: {zero:?}"
    );
    let one = n.got[1].snapshot();
    assert!(one.iter().all(|(t, _)| *t == a || *t == b), "{one:?}");
    let mut on_a = numbers_on(&zero, &a);
    on_a.sort_unstable();
    assert_eq!(on_a, [1, 3]);
    assert_eq!(one.len(), 3, "{one:?}");
    assert!(
        n.got[2].snapshot().is_empty(),
        "node 2 subscribed to nothing"
    );
}

async fn broker_unsubscribe_stops_and_subscribing_again_resumes(n: Nodes) {
    let a = user("a");
    n.brokers[0].subscribe(&a).await.expect("subscribe");
    n.brokers[1].publish(&a, typing(1)).await.expect("publish");
    n.got[0].until("got 1", |g| numbers_on(g, &a) == [1]).await;
    n.brokers[0].unsubscribe(&a).await.expect("unsubscribe");
    n.brokers[1].publish(&a, typing(2)).await.expect("publish");
    // Node 2 listens to a too: once it has 2, 2 reached every subscriber.
    n.brokers[2].subscribe(&a).await.expect("subscribe");
    n.brokers[1].publish(&a, typing(3)).await.expect("publish");
    n.got[2]
        .until("got 3", |g| numbers_on(g, &a).contains(&3))
        .await;
    n.brokers[0].subscribe(&a).await.expect("subscribe again");
    n.brokers[1].publish(&a, typing(4)).await.expect("publish");
    n.got[0]
        .until("got 4 after subscribing again", |g| {
            numbers_on(g, &a).contains(&4)
        })
        .await;
    // Order per topic per publisher: 2 and 3 came before 4 if at all.
    assert_eq!(
        numbers_on(&n.got[0].snapshot(), &a),
        [1, 4],
        "an unsubscribed node got events"
    );
    // Unsubscribing what was never subscribed is no error.
    n.brokers[0]
        .unsubscribe(&user("never"))
        .await
        .expect("unsubscribe of nothing");
}

async fn broker_keeps_each_publishers_order_per_topic(n: Nodes) {
    let topics = [user("a"), user("b")];
    for t in &topics {
        n.brokers[0].subscribe(t).await.expect("subscribe");
    }
    // Two publishers at once, each on both topics.
    let per = 300u64;
    let send = |from: Arc<dyn Broker>, base: u64| {
        let topics = topics.clone();
        tokio::spawn(async move {
            for i in 0..per {
                let t = &topics[(i % 2) as usize];
                from.publish(t, typing(base + i)).await.expect("publish");
            }
        })
    };
    let one = send(n.brokers[1].clone(), 0);
    let two = send(n.brokers[2].clone(), 10_000);
    one.await.expect("publisher 1");
    two.await.expect("publisher 2");
    n.got[0]
        .until("got every event", |g| g.len() == 2 * per as usize)
        .await;
    let got = n.got[0].snapshot();
    for t in &topics {
        for base in [0, 10_000] {
            let seen: Vec<u64> = numbers_on(&got, t)
                .into_iter()
                .filter(|x| (base..base + per).contains(x))
                .collect();
            let mut sorted = seen.clone();
            sorted.sort_unstable();
            assert_eq!(seen, sorted, "publisher {base} out of order on {t:?}");
            assert_eq!(seen.len(), per as usize / 2, "lost or doubled on {t:?}");
        }
    }
}

async fn broker_delivers_every_kind_of_event_whole(n: Nodes) {
    use crate::model::{Presence, Receipt};
    use crate::store::Revocation;
    let t = user("a");
    n.brokers[0].subscribe(&t).await.expect("subscribe");
    let events = vec![
        typing(7),
        Event::Presence(Presence::of(
            UserId::from("p"),
            true,
            Some(1_700_000_000_000),
        )),
        Event::Receipt(Arc::new(Receipt {
            conv: ConversationId::from("g:1"),
            user: UserId::from("r"),
            delivered: 5,
            read: 3,
            at: 1_700_000_000_001,
        })),
        Event::Read {
            conv: ConversationId::from("g:1"),
            seq: 42,
            origin: Arc::from("node/7"),
        },
        Event::Revoked(Revocation::AllDevicesExcept(crate::model::DeviceId::from(
            "d1",
        ))),
        Event::DevicesChanged {
            user: UserId::from("u"),
            origin: None,
        },
    ];
    for e in &events {
        n.brokers[1].publish(&t, e.clone()).await.expect("publish");
    }
    n.got[0]
        .until("got every event", |g| g.len() == events.len())
        .await;
    let got: Vec<Event> = n.got[0]
        .snapshot()
        .into_iter()
        .map(|(_, e)| Event::clone(&e))
        .collect();
    assert_eq!(got, events);
}
