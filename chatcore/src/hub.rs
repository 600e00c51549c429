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
use crate::IdMap;

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

pub(crate) struct Hub {
    broker: Arc<dyn Broker>,
    topics: RwLock<IdMap<Topic, HashMap<u64, ConnTx>>>,
}

impl Hub {
    pub(crate) fn new(broker: Arc<dyn Broker>) -> Self {
        Self {
            broker,
            topics: RwLock::new(IdMap::default()),
        }
    }

    /// Adds connection `conn` to `topic`; subscribes the node at the broker
    /// for the topic's first local listener.
    pub(crate) async fn subscribe(&self, topic: &Topic, conn: u64, tx: &ConnTx) -> StoreResult<()> {
        let first = {
            let mut t = self.topics.write().unwrap_or_else(|p| p.into_inner());
            let listeners = t.entry(topic.clone()).or_default();
            let first = listeners.is_empty();
            listeners.insert(conn, tx.clone());
            first
        };
        if first {
            self.broker.subscribe(topic).await?;
        }
        Ok(())
    }

    /// Removes connection `conn` from `topic`; unsubscribes the node after the last.
    pub(crate) async fn unsubscribe(&self, topic: &Topic, conn: u64) -> StoreResult<()> {
        let last = {
            let mut t = self.topics.write().unwrap_or_else(|p| p.into_inner());
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
            self.broker.unsubscribe(topic).await?;
        }
        Ok(())
    }
}

impl BrokerHandler for Hub {
    fn deliver(&self, topic: &Topic, event: Arc<Event>) {
        let t = self.topics.read().unwrap_or_else(|p| p.into_inner());
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
