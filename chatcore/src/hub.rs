//! The node-local fan-out: which of this node's connections listen on which
//! topic. The broker delivers every event of a subscribed topic here; the hub
//! puts it on each listening connection's bounded queue, and disconnects a
//! connection whose queue is full rather than wait for it. A `typing` event,
//! which expires by itself, takes at most half of a queue and is dropped
//! beyond it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::session::Disconnect;
use crate::store::{Broker, BrokerHandler, Event, StoreResult, Topic};
use crate::{IdMap, IdSet};

/// The way to tell one connection to close, and why.
#[derive(Clone, Default)]
pub(crate) struct Kick {
    token: CancellationToken,
    reason: Arc<Mutex<Option<Disconnect>>>,
}

impl Kick {
    /// A kick that also fires when `token` (a child of the server's
    /// shutdown token) is cancelled, with no reason: a shutdown.
    pub(crate) fn new(token: CancellationToken) -> Self {
        Self {
            token,
            reason: Arc::default(),
        }
    }

    /// Asks the connection to close; the first reason given wins.
    pub(crate) fn kick(&self, reason: Disconnect) {
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            *r = Some(reason);
        }
        self.token.cancel();
    }

    pub(crate) async fn kicked(&self) -> Disconnect {
        self.token.cancelled().await;
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or(Disconnect::Shutdown)
    }
}

/// A connection as the hub sees it.
#[derive(Clone)]
pub(crate) struct ConnTx {
    pub(crate) tx: mpsc::Sender<Arc<Event>>,
    pub(crate) kick: Kick,
    /// The connection's key, as an event's `origin` names it.
    pub(crate) key: Arc<str>,
}

/// Shards of the hub's map of topics: a delivery read-locks one shard, a
/// subscription write-locks one, so no lock is shared by every connection.
const SHARDS: usize = 64;

/// The listeners of some topics, and what the broker was told of them.
#[derive(Default)]
struct Shard {
    topics: RwLock<IdMap<Topic, HashMap<u64, ConnTx>>>,
    /// The topics of this shard the broker delivers to this node. Held
    /// across the broker's `subscribe`/`unsubscribe`, which it serializes
    /// per shard: see [`Hub::reconcile`].
    at_broker: tokio::sync::Mutex<IdSet<Topic>>,
}

pub(crate) struct Hub {
    broker: Arc<dyn Broker>,
    shards: Box<[Shard]>,
}

impl Hub {
    pub(crate) fn new(broker: Arc<dyn Broker>) -> Self {
        Self {
            broker,
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
        }
    }

    /// The shard of `topic`: from the last bytes of its user's id (ids are
    /// random, so they spread; a full hash of the id here cost more than a
    /// shard saves, on every delivery). The modulo keeps it in bounds.
    fn shard(&self, topic: &Topic) -> &Shard {
        let id = match topic {
            Topic::User(u) | Topic::Presence(u) => u.as_str().as_bytes(),
            Topic::Directory => b"",
        };
        let tail = &id[id.len().saturating_sub(4)..];
        let mut h: u32 = u32::from(matches!(topic, Topic::Presence(_)));
        for b in tail {
            h = h.wrapping_mul(31).wrapping_add(u32::from(*b));
        }
        &self.shards[h as usize % SHARDS]
    }

    /// Adds connection `conn` to `topic`; the node subscribes at the
    /// broker when the topic had no local listener.
    pub(crate) async fn subscribe(&self, topic: &Topic, conn: u64, tx: &ConnTx) -> StoreResult<()> {
        let shard = self.shard(topic);
        let first = {
            let mut t = shard.topics.write().unwrap_or_else(|p| p.into_inner());
            let listeners = t.entry(topic.clone()).or_default();
            let first = listeners.is_empty();
            listeners.insert(conn, tx.clone());
            first
        };
        if first {
            self.reconcile(shard, topic).await?;
        }
        Ok(())
    }

    /// Removes connection `conn` from `topic`; the node unsubscribes at the
    /// broker once the topic has no local listener left.
    pub(crate) async fn unsubscribe(&self, topic: &Topic, conn: u64) -> StoreResult<()> {
        let shard = self.shard(topic);
        let last = {
            let mut t = shard.topics.write().unwrap_or_else(|p| p.into_inner());
            match t.get_mut(topic) {
                Some(listeners) => {
                    let removed = listeners.remove(&conn).is_some();
                    let empty = listeners.is_empty();
                    if empty {
                        t.remove(topic);
                    }
                    removed && empty
                }
                None => false,
            }
        };
        if last {
            self.reconcile(shard, topic).await?;
        }
        Ok(())
    }

    /// Every connection of this node with its user: the listeners of the
    /// users' own topics, which every signed-in connection has.
    pub(crate) fn local_connections(&self) -> Vec<(crate::model::UserId, Arc<str>)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let t = shard.topics.read().unwrap_or_else(|p| p.into_inner());
            for (topic, listeners) in t.iter() {
                if let Topic::User(user) = topic {
                    out.extend(listeners.values().map(|c| (user.clone(), c.key.clone())));
                }
            }
        }
        out
    }

    /// Brings the broker in line with the local listeners of `topic`, as
    /// they are now, not as the caller left them: a connection whose
    /// unsubscribe found the topic empty and one whose subscribe found it
    /// empty again may run their broker calls in either order, and a
    /// plain "unsubscribe after the last" would then leave the node
    /// unsubscribed under a listener. Each change of emptiness is followed
    /// by a reconcile that reads the map after the change, under the
    /// shard's broker lock, so the last one to run sees the final state.
    /// A broker call that fails leaves the record as it was: the next
    /// change of the topic tries again.
    async fn reconcile(&self, shard: &Shard, topic: &Topic) -> StoreResult<()> {
        let mut at_broker = shard.at_broker.lock().await;
        let wanted = shard
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(topic);
        match (wanted, at_broker.contains(topic)) {
            (true, false) => {
                self.broker.subscribe(topic).await?;
                at_broker.insert(topic.clone());
            }
            (false, true) => {
                self.broker.unsubscribe(topic).await?;
                at_broker.remove(topic);
            }
            _ => {}
        }
        Ok(())
    }
}

impl BrokerHandler for Hub {
    fn deliver(&self, topic: &Topic, event: Arc<Event>) {
        let t = self
            .shard(topic)
            .topics
            .read()
            .unwrap_or_else(|p| p.into_inner());
        let Some(listeners) = t.get(topic) else {
            return;
        };
        // The sending connection has its `sent` reply already: not queueing
        // the message for it spares a queue slot and a wake-up per send.
        let origin = match &*event {
            Event::Message {
                origin: Some(o), ..
            } => Some(&**o),
            _ => None,
        };
        // A hint that expires by itself: dropped first. It never takes the second half of a queue, which stays for
        // what must arrive, so typing is never the reason a slow connection is closed.
        let hint = matches!(*event, Event::Typing { .. });
        for conn in listeners.values() {
            if origin.is_some_and(|o| *conn.key == *o) {
                continue;
            }
            if hint && conn.tx.capacity() * 2 < conn.tx.max_capacity() {
                continue;
            }
            match conn.tx.try_send(event.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) if hint => {}
                Err(mpsc::error::TrySendError::Full(_)) => conn.kick.kick(Disconnect::SlowConsumer),
                // The connection is on its way out; it unsubscribes itself.
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::UserId;
    use async_trait::async_trait;
    use rand::{Rng, SeedableRng};

    /// A broker whose subscribe and unsubscribe take a random while, as a
    /// round trip to a broker server does, so that the calls of different
    /// connections interleave every way; it records what it was told.
    struct Slow {
        subscribed: Mutex<IdSet<Topic>>,
        seed: Mutex<rand::rngs::StdRng>,
    }

    impl Slow {
        async fn pause(&self) {
            let turns = self.seed.lock().unwrap().gen_range(0..4);
            for _ in 0..turns {
                tokio::task::yield_now().await;
            }
        }
    }

    #[async_trait]
    impl Broker for Slow {
        fn attach(&self, _: Arc<dyn BrokerHandler>) {}

        async fn publish(&self, _: &Topic, _: Event) -> StoreResult<()> {
            Ok(())
        }

        async fn subscribe(&self, topic: &Topic) -> StoreResult<()> {
            self.pause().await;
            self.subscribed.lock().unwrap().insert(topic.clone());
            Ok(())
        }

        async fn unsubscribe(&self, topic: &Topic) -> StoreResult<()> {
            self.pause().await;
            self.subscribed.lock().unwrap().remove(topic);
            Ok(())
        }
    }

    fn conn_tx(key: u64) -> (ConnTx, mpsc::Receiver<Arc<Event>>) {
        let (tx, rx) = mpsc::channel(1024);
        let conn = ConnTx {
            tx,
            kick: Kick::default(),
            key: Arc::from(key.to_string().as_str()),
        };
        (conn, rx)
    }

    /// Connections of a few users open and close at random, each its own
    /// task, on a multi-threaded runtime, against a model: afterwards the
    /// broker is subscribed to exactly the topics with a listener (none
    /// lost, none left over), and an event of each topic reaches exactly
    /// its listeners, once.
    #[test]
    fn concurrent_opens_and_closes_leave_the_broker_as_the_listeners_say() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .build()
            .unwrap();
        for round in 0..200u64 {
            runtime.block_on(async {
                let broker = Arc::new(Slow {
                    subscribed: Mutex::default(),
                    seed: Mutex::new(rand::rngs::StdRng::seed_from_u64(round)),
                });
                let hub = Arc::new(Hub::new(broker.clone()));
                let topics: Vec<Topic> = (0..3)
                    .map(|u| Topic::User(UserId::from(format!("u{u}").as_str())))
                    .collect();
                let mut tasks = Vec::new();
                for conn in 0..8u64 {
                    let (hub, topics) = (hub.clone(), topics.clone());
                    tasks.push(tokio::spawn(async move {
                        let mut rng = rand::rngs::StdRng::seed_from_u64(round * 100 + conn);
                        let (tx, rx) = conn_tx(conn);
                        // What this connection listens to at the end: the model.
                        let mut on: Vec<Topic> = Vec::new();
                        for _ in 0..rng.gen_range(1..12) {
                            let t = &topics[rng.gen_range(0..topics.len())];
                            if on.contains(t) {
                                hub.unsubscribe(t, conn).await.unwrap();
                                on.retain(|x| x != t);
                            } else {
                                hub.subscribe(t, conn, &tx).await.unwrap();
                                on.push(t.clone());
                            }
                            if rng.gen_bool(0.5) {
                                tokio::task::yield_now().await;
                            }
                        }
                        (conn, on, rx)
                    }));
                }
                let mut listeners = Vec::new();
                for t in tasks {
                    listeners.push(t.await.unwrap());
                }
                let wanted: IdSet<Topic> = listeners
                    .iter()
                    .flat_map(|(_, on, _)| on.iter().cloned())
                    .collect();
                assert_eq!(
                    *broker.subscribed.lock().unwrap(),
                    wanted,
                    "round {round}: the broker's subscriptions"
                );
                for (i, t) in topics.iter().enumerate() {
                    hub.deliver(t, Arc::new(typing(i)));
                }
                for (conn, on, mut rx) in listeners {
                    let mut got = Vec::new();
                    while let Ok(e) = rx.try_recv() {
                        got.push(e);
                    }
                    assert_eq!(got.len(), on.len(), "round {round}, conn {conn}");
                }
            });
        }
    }

    fn typing(i: usize) -> Event {
        Event::Typing {
            conv: crate::model::ConversationId::from(format!("c:{i}").as_str()),
            user: UserId::from("w"),
            typing: true,
        }
    }
}
