//! `Server::sweep_presence`: what it asks of the presence store and how it
//! publishes the users a sweep turned offline. The memory store has nothing
//! to sweep; chatcore-redis tests the sweep itself across nodes.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chatcore::memory::{MemoryBroker, MemoryPresenceStore};
use chatcore::model::{Millis, Presence, UserId};
use chatcore::server::ManualClock;
use chatcore::store::{Broker, BrokerHandler, Event, PresenceStore, StoreResult, Topic};
use chatcore::{Backends, Config, Server};

const NOW: Millis = 1_800_000_000_000;

/// A presence store whose sweep records its arguments and answers `offline`.
struct Swept {
    inner: MemoryPresenceStore,
    offline: Vec<Presence>,
    calls: Mutex<Vec<(String, Millis, u64)>>,
}

#[async_trait]
impl PresenceStore for Swept {
    async fn connect(&self, user: &UserId, conn: &str, now: Millis) -> StoreResult<bool> {
        self.inner.connect(user, conn, now).await
    }
    async fn disconnect(&self, user: &UserId, conn: &str, now: Millis) -> StoreResult<bool> {
        self.inner.disconnect(user, conn, now).await
    }
    async fn get(&self, users: &[UserId]) -> StoreResult<Vec<Presence>> {
        self.inner.get(users).await
    }
    async fn sweep(&self, node: &str, now: Millis, ttl_ms: u64) -> StoreResult<Vec<Presence>> {
        self.calls
            .lock()
            .unwrap()
            .push((node.to_owned(), now, ttl_ms));
        Ok(self.offline.clone())
    }
}

/// A broker that records what is published, then delivers it as the memory one does.
#[derive(Default)]
struct Recording {
    inner: MemoryBroker,
    published: Mutex<Vec<(Topic, Event)>>,
}

#[async_trait]
impl Broker for Recording {
    fn attach(&self, handler: Arc<dyn BrokerHandler>) {
        self.inner.attach(handler);
    }
    async fn publish(&self, topic: &Topic, event: Event) -> StoreResult<()> {
        self.published
            .lock()
            .unwrap()
            .push((topic.clone(), event.clone()));
        self.inner.publish(topic, event).await
    }
    async fn subscribe(&self, topic: &Topic) -> StoreResult<()> {
        self.inner.subscribe(topic).await
    }
    async fn unsubscribe(&self, topic: &Topic) -> StoreResult<()> {
        self.inner.unsubscribe(topic).await
    }
}

#[tokio::test]
async fn the_memory_store_has_nothing_to_sweep() {
    let s = Server::new(Backends::memory(), Config::default()).unwrap();
    assert_eq!(s.sweep_presence().await.unwrap(), 0);
}

#[tokio::test]
async fn sweeping_renews_this_node_and_publishes_who_went_offline() {
    let (gone, also) = (UserId::generate(), UserId::generate());
    let offline = vec![
        Presence::of(gone.clone(), false, Some(NOW - 31_000)),
        Presence::of(also.clone(), false, Some(NOW - 40_000)),
    ];
    let presence = Arc::new(Swept {
        inner: MemoryPresenceStore::new(),
        offline: offline.clone(),
        calls: Mutex::default(),
    });
    let broker = Arc::new(Recording::default());
    let mut backends = Backends::memory();
    backends.presence = presence.clone();
    backends.broker = broker.clone();
    let mut config = Config::default();
    config.presence_ttl_ms = 12_345;
    let clock = Arc::new(ManualClock::new(NOW));
    let s = Server::with_clock(backends, config, clock).unwrap();
    assert_eq!(s.sweep_presence().await.unwrap(), 2);
    assert_eq!(
        *presence.calls.lock().unwrap(),
        vec![(s.node_id().to_owned(), NOW, 12_345)],
        "this node's id, its clock, the configured TTL"
    );
    assert_eq!(
        *broker.published.lock().unwrap(),
        offline
            .into_iter()
            .map(|p| (Topic::Presence(p.user.clone()), Event::Presence(p)))
            .collect::<Vec<_>>(),
        "each to its presence topic, as a last disconnect publishes it"
    );
}

#[test]
fn the_default_presence_ttl_is_30_seconds() {
    assert_eq!(Config::default().presence_ttl_ms, 30_000);
}
