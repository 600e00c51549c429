//! The broker between nodes, on Redis pub/sub.
//!
//! Each topic is a channel, `<prefix>:t:<topic>`. A node publishes an
//! event as one `PUBLISH` of a frame: a format byte, the publishing node's
//! id (8 bytes), the time it was published (8 bytes, milliseconds since
//! the epoch, for the lag metric) and the MessagePack of the topic and the
//! event. The publishing node's own subscribers get the event at once, in
//! process (no round trip, no decoding); the node skips its own frames when
//! Redis hands them back.
//!
//! Publishing never waits for Redis: frames go to a bounded backlog that
//! one task sends in pipelines on one connection, so one node's frames keep
//! their order (which keeps each publisher's order per topic). When the
//! backlog is full (Redis slow or away) new frames are shed and counted:
//! a node's connections are never held up by the broker, and what is shed
//! is recovered the way any missed push is: clients sync from the store.
//!
//! Subscriptions live on one pub/sub connection owned by a task that
//! applies `subscribe`/`unsubscribe` in order (each answered once Redis
//! confirmed it) and, when the connection drops, reconnects with backoff
//! (100 ms doubling to 5 s) and subscribes again to every channel it should
//! have; [`RedisBroker::is_ready`] (and so `/readyz`) is false until Redis
//! confirmed them all. A frame that does not decode (another format,
//! another program on the channel) is dropped with a log line and counted,
//! never a panic.
//!
//! Both connections are the broker's own, in RESP2 (`resp`): every event
//! crosses them, and redis-rs's general reply parser cost a quarter of a
//! node's instructions there.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use chatcore::store::{Broker, BrokerHandler, Event, StoreError, StoreResult, Topic};
use redis::ConnectionInfo;
use tokio::sync::{mpsc, oneshot};

use crate::resp::{self, Conn, Value};

/// The frame format this version writes and reads (2: events externally
/// tagged; nodes of format 1 and 2 drop each other's frames as malformed).
const FORMAT: u8 = 2;
/// Bytes before the MessagePack body: format, node, time.
const HEAD: usize = 1 + 8 + 8;
/// Frames sent in one pipeline at most.
const BATCH: usize = 256;
/// Times a pipeline is sent again after the connection dropped under it.
const PUBLISH_RETRIES: u32 = 3;
/// Channels subscribed to again in one command after a reconnection.
const RESUBSCRIBE_CHUNK: usize = 1000;

/// Counters of one node's broker, for chatd's metrics.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct BrokerStats {
    /// Frames handed to Redis.
    pub published: AtomicU64,
    /// Frames shed because the backlog was full.
    pub shed: AtomicU64,
    /// Frames Redis refused or that were lost with a connection.
    pub publish_errors: AtomicU64,
    /// Frames of other nodes delivered here.
    pub received: AtomicU64,
    /// Frames dropped because they did not decode.
    pub malformed: AtomicU64,
    /// Reconnections of the subscribing connection.
    pub reconnects: AtomicU64,
    /// Milliseconds between the publication and the arrival of the latest
    /// frame received (the nodes' clocks are taken to agree).
    pub last_lag_ms: AtomicU64,
    /// The largest such lag seen.
    pub max_lag_ms: AtomicU64,
}

enum Control {
    Subscribe(String, oneshot::Sender<StoreResult<()>>),
    Unsubscribe(String, oneshot::Sender<StoreResult<()>>),
}

struct Shared {
    node: u64,
    handler: RwLock<Option<Arc<dyn BrokerHandler>>>,
    /// The topics this node subscribed to: what it delivers.
    local: RwLock<HashSet<Topic>>,
    stats: BrokerStats,
    ready: AtomicBool,
}

/// chatcore's [`Broker`] on Redis pub/sub; see the module documentation.
/// Made by [`crate::RedisStore::broker`].
pub struct RedisBroker {
    shared: Arc<Shared>,
    prefix: Arc<str>,
    out: mpsc::Sender<(String, Vec<u8>)>,
    control: mpsc::UnboundedSender<Control>,
}

impl std::fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBroker")
            .field("node", &self.shared.node)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl RedisBroker {
    /// Opens the publishing and the subscribing connection and starts
    /// their tasks on the current Tokio runtime. Fails when Redis cannot be
    /// reached now; later outages are ridden out.
    pub(crate) async fn connect(
        client: &redis::Client,
        prefix: &str,
        backlog: usize,
    ) -> StoreResult<Self> {
        let info = client.get_connection_info().clone();
        let publisher = Conn::connect(&info).await.map_err(unavailable)?;
        let pubsub = Conn::connect(&info).await.map_err(unavailable)?;
        let shared = Arc::new(Shared {
            node: random_node(),
            handler: RwLock::new(None),
            local: RwLock::default(),
            stats: BrokerStats::default(),
            ready: AtomicBool::new(true),
        });
        let (out, out_rx) = mpsc::channel(backlog.max(1));
        let (control, control_rx) = mpsc::unbounded_channel();
        tokio::spawn(publish_loop(
            info.clone(),
            publisher,
            out_rx,
            shared.clone(),
        ));
        tokio::spawn(subscribe_loop(info, pubsub, control_rx, shared.clone()));
        Ok(Self {
            shared,
            prefix: prefix.into(),
            out,
            control,
        })
    }

    /// Whether the subscribing connection is up.
    pub fn is_ready(&self) -> bool {
        self.shared.ready.load(Ordering::Relaxed)
    }

    /// This node's counters.
    pub fn stats(&self) -> &BrokerStats {
        &self.shared.stats
    }

    fn channel(&self, topic: &Topic) -> String {
        format!("{}:t:{}", self.prefix, topic.channel())
    }

    async fn ask(
        &self,
        make: impl FnOnce(oneshot::Sender<StoreResult<()>>) -> Control,
    ) -> StoreResult<()> {
        let gone = || unavailable("the broker's subscriber task is gone");
        let (tx, rx) = oneshot::channel();
        self.control.send(make(tx)).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

fn random_node() -> u64 {
    let id = uuid::Uuid::new_v4();
    let mut b = [0u8; 8];
    b.copy_from_slice(&id.as_bytes()[..8]);
    u64::from_le_bytes(b)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The frame of `event` on `topic`, published by `node` at `at`.
fn encode(node: u64, at: u64, topic: &Topic, event: &Event) -> StoreResult<Vec<u8>> {
    let bad =
        |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("an event does not encode: {e}"));
    // Room for a text message's event without growing.
    let mut frame = Vec::with_capacity(HEAD + 512);
    frame.push(FORMAT);
    frame.extend_from_slice(&node.to_le_bytes());
    frame.extend_from_slice(&at.to_le_bytes());
    if let Event::Message {
        message,
        muted,
        origin,
    } = event
    {
        // The message is encoded once for all its topics (a direct
        // message's two, a group's one per member) and its bytes spliced
        // in: the same MessagePack as serde's of `(topic, event)`.
        let bytes = message
            .named_msgpack()
            .ok_or_else(|| bad(&"the message does not encode"))?;
        write_message_event(&mut frame, topic, bytes, *muted, origin.as_deref())
            .map_err(|e| bad(&e))?;
        return Ok(frame);
    }
    rmp_serde::encode::write_named(&mut frame, &(topic, event)).map_err(|e| bad(&e))?;
    Ok(frame)
}

/// `(topic, Event::Message { message, muted, origin })` as serde writes it,
/// with the message's own encoding (`message`) spliced in.
fn write_message_event(
    frame: &mut Vec<u8>,
    topic: &Topic,
    message: &[u8],
    muted: bool,
    origin: Option<&str>,
) -> Result<(), Box<dyn std::error::Error>> {
    use rmp::encode::{write_array_len, write_bool, write_map_len, write_nil, write_str};
    write_array_len(frame, 2)?;
    rmp_serde::encode::write_named(frame, topic)?;
    write_map_len(frame, 1)?;
    write_str(frame, "message")?;
    write_map_len(frame, 3)?;
    write_str(frame, "message")?;
    frame.extend_from_slice(message);
    write_str(frame, "muted")?;
    write_bool(frame, muted)?;
    write_str(frame, "origin")?;
    match origin {
        Some(o) => write_str(frame, o)?,
        None => write_nil(frame)?,
    }
    Ok(())
}

/// A frame's node, time, topic and event; `Err` says what is wrong with it.
fn decode(frame: &[u8]) -> Result<(u64, u64, Topic, Event), String> {
    if frame.len() < HEAD {
        return Err(format!("a frame of {} bytes", frame.len()));
    }
    if frame[0] != FORMAT {
        return Err(format!("format {} (this node reads {FORMAT})", frame[0]));
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&frame[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let (topic, event): (Topic, Event) =
        rmp_serde::from_slice(&frame[HEAD..]).map_err(|e| e.to_string())?;
    Ok((word(1), word(9), topic, event))
}

#[async_trait]
impl Broker for RedisBroker {
    fn attach(&self, handler: Arc<dyn BrokerHandler>) {
        *self
            .shared
            .handler
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    async fn publish(&self, topic: &Topic, event: Event) -> StoreResult<()> {
        let frame = encode(self.shared.node, now_ms(), topic, &event)?;
        match self.out.try_send((self.channel(topic), frame)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let shed = self.shared.stats.shed.fetch_add(1, Ordering::Relaxed);
                if shed.is_multiple_of(1000) {
                    tracing::warn!(
                        shed = shed + 1,
                        "broker backlog full: events shed (Redis slow or away)"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                return Err(unavailable("the broker's publisher task is gone"))
            }
        }
        if self.shared.subscribed(topic) {
            self.shared.deliver(topic, Arc::new(event));
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &Topic) -> StoreResult<()> {
        self.shared
            .local
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.clone());
        let channel = self.channel(topic);
        self.ask(|tx| Control::Subscribe(channel, tx)).await
    }

    async fn unsubscribe(&self, topic: &Topic) -> StoreResult<()> {
        self.shared
            .local
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(topic);
        let channel = self.channel(topic);
        self.ask(|tx| Control::Unsubscribe(channel, tx)).await
    }

    async fn ready(&self) -> StoreResult<()> {
        if self.is_ready() {
            Ok(())
        } else {
            Err(unavailable("the broker is reconnecting to Redis"))
        }
    }
}

impl Shared {
    fn subscribed(&self, topic: &Topic) -> bool {
        self.local
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(topic)
    }

    fn deliver(&self, topic: &Topic, event: Arc<Event>) {
        let handler = self
            .handler
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(h) = handler {
            h.deliver(topic, event);
        }
    }

    /// A frame from Redis: another node's event, for a topic of this node.
    fn receive(&self, frame: &[u8]) {
        // This node's own frames come back from Redis (it delivered them
        // locally as it published them): known by the header alone, they
        // are not decoded.
        if frame.len() >= HEAD && frame[0] == FORMAT && frame[1..9] == self.node.to_le_bytes() {
            return;
        }
        let (node, at, topic, event) = match decode(frame) {
            Ok(f) => f,
            Err(why) => {
                let n = self.stats.malformed.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(1000) {
                    tracing::warn!(%why, dropped = n + 1, "a broker frame that does not decode was dropped");
                }
                return;
            }
        };
        if node == self.node {
            return;
        }
        let lag = now_ms().saturating_sub(at);
        self.stats.last_lag_ms.store(lag, Ordering::Relaxed);
        self.stats.max_lag_ms.fetch_max(lag, Ordering::Relaxed);
        self.stats.received.fetch_add(1, Ordering::Relaxed);
        // A frame in flight when the node unsubscribed is not delivered.
        if self.subscribed(&topic) {
            self.deliver(&topic, Arc::new(event));
        }
    }
}

/// Sends the backlog in pipelines, in order, on one connection, connecting
/// again when it drops.
async fn publish_loop(
    info: ConnectionInfo,
    first: Conn,
    mut frames: mpsc::Receiver<(String, Vec<u8>)>,
    shared: Arc<Shared>,
) {
    let mut conn = Some(first);
    let mut batch = Vec::with_capacity(BATCH);
    let mut wire = Vec::new();
    while frames.recv_many(&mut batch, BATCH).await > 0 {
        wire.clear();
        for (channel, frame) in &batch {
            resp::command(&mut wire, &[b"PUBLISH", channel.as_bytes(), frame]);
        }
        let n = batch.len() as u64;
        // A connection that dropped (Redis restarted) fails the batch, which
        // is sent again on a new connection, a few times. A frame that did
        // reach Redis before the failure may then arrive twice; chatcore's
        // clients keep a message once by its id.
        let mut attempt = 0;
        loop {
            match publish_batch(&info, &mut conn, &wire, batch.len()).await {
                Ok(refused) => {
                    shared
                        .stats
                        .published
                        .fetch_add(n - refused, Ordering::Relaxed);
                    shared
                        .stats
                        .publish_errors
                        .fetch_add(refused, Ordering::Relaxed);
                    break;
                }
                Err(e) if attempt < PUBLISH_RETRIES => {
                    tracing::debug!(error = %e, "broker publish: connection lost; sending again");
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt))).await;
                }
                Err(e) => {
                    shared.stats.publish_errors.fetch_add(n, Ordering::Relaxed);
                    tracing::warn!(error = %e, frames = n, "broker publish failed: those events are lost (clients resync)");
                    break;
                }
            }
        }
        batch.clear();
    }
}

/// Sends `wire` (`count` PUBLISH commands) and reads their answers, on
/// `conn` or a new connection; answers how many Redis refused. An I/O error
/// drops the connection.
async fn publish_batch(
    info: &ConnectionInfo,
    conn: &mut Option<Conn>,
    wire: &[u8],
    count: usize,
) -> std::io::Result<u64> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(Conn::connect(info).await?),
    };
    let result = async {
        c.write(wire).await?;
        let mut refused = 0;
        for _ in 0..count {
            match c.read().await? {
                Value::Int(_) => {}
                Value::Error(e) => {
                    refused += 1;
                    tracing::warn!(error = %String::from_utf8_lossy(&e), "Redis refused a broker PUBLISH");
                }
                other => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("PUBLISH answered {other:?}"),
                    ))
                }
            }
        }
        Ok(refused)
    }
    .await;
    if result.is_err() {
        *conn = None;
    }
    result
}

/// What the subscribing connection waits for Redis to confirm, in order.
enum Pending {
    /// A channel subscribed to again after a reconnection.
    Again,
    /// A subscription change asked by the node, answered once confirmed.
    Asked(oneshot::Sender<StoreResult<()>>),
}

/// Owns the subscribing connection: applies subscriptions in order,
/// delivers what arrives, and reconnects (subscribing again to every
/// channel it should have) when the connection drops.
async fn subscribe_loop(
    info: ConnectionInfo,
    first: Conn,
    mut control: mpsc::UnboundedReceiver<Control>,
    shared: Arc<Shared>,
) {
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    let mut next = Some(first);
    let mut backoff = Duration::from_millis(100);
    loop {
        let conn = match next.take() {
            Some(c) => Some(c),
            None => match Conn::connect(&info).await {
                Ok(c) => Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "broker: Redis unreachable; retrying");
                    None
                }
            },
        };
        if let Some(mut conn) = conn {
            let mut pending: VecDeque<Pending> = VecDeque::new();
            let mut again = 0usize;
            let mut up = true;
            let channels: Vec<&String> = wanted.iter().collect();
            for chunk in channels.chunks(RESUBSCRIBE_CHUNK) {
                let mut wire = Vec::new();
                let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
                args.extend(chunk.iter().map(|c| c.as_bytes()));
                resp::command(&mut wire, &args);
                if let Err(e) = conn.write(&wire).await {
                    tracing::warn!(error = %e, "broker: subscribing again failed");
                    up = false;
                    break;
                }
                again += chunk.len();
                pending.extend(chunk.iter().map(|_| Pending::Again));
            }
            if up {
                if again == 0 {
                    shared.ready.store(true, Ordering::Relaxed);
                }
                backoff = Duration::from_millis(100);
                loop {
                    tokio::select! {
                        c = control.recv() => {
                            let Some(c) = c else { return };
                            let (verb, channel, tx) = match c {
                                Control::Subscribe(ch, tx) => {
                                    wanted.insert(ch.clone());
                                    (&b"SUBSCRIBE"[..], ch, tx)
                                }
                                Control::Unsubscribe(ch, tx) => {
                                    wanted.remove(&ch);
                                    (&b"UNSUBSCRIBE"[..], ch, tx)
                                }
                            };
                            let mut wire = Vec::new();
                            resp::command(&mut wire, &[verb, channel.as_bytes()]);
                            // Answered once confirmed; if the connection
                            // drops first, reconnecting applies it (it is
                            // in `wanted` either way).
                            pending.push_back(Pending::Asked(tx));
                            if conn.write(&wire).await.is_err() {
                                break;
                            }
                        }
                        v = conn.read() => match v {
                            Ok(v) => {
                                if on_value(&shared, v, &mut pending, &mut again).is_err() {
                                    break;
                                }
                            }
                            Err(e) => {
                                tracing::debug!(error = %e, "broker: subscribing connection failed");
                                break;
                            }
                        },
                    }
                }
                shared.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("broker: the subscribing connection to Redis dropped; reconnecting");
            }
            // Whatever was asked is recorded: reconnecting applies it.
            for p in pending {
                if let Pending::Asked(tx) = p {
                    let _ = tx.send(Ok(()));
                }
            }
        }
        shared.ready.store(false, Ordering::Relaxed);
        // Wait before the next attempt, answering what comes meanwhile:
        // recorded now, applied once connected.
        let wait = tokio::time::sleep(backoff);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                () = &mut wait => break,
                c = control.recv() => match c {
                    Some(c) => note(&mut wanted, c),
                    None => return,
                },
            }
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Handles one value on the subscribing connection: a message is
/// delivered, a confirmation answers what waited for it. `Err` when the
/// connection is not in a state this broker understands (drop it).
fn on_value(
    shared: &Shared,
    v: Value,
    pending: &mut VecDeque<Pending>,
    again: &mut usize,
) -> Result<(), ()> {
    let Value::Array(parts) = v else {
        tracing::warn!(value = ?v, "broker: Redis sent something other than pub/sub on the subscribing connection");
        return Err(());
    };
    match parts.as_slice() {
        [Value::Bulk(kind), _, Value::Bulk(payload)] if &kind[..] == b"message" => {
            shared.receive(payload);
            Ok(())
        }
        [Value::Bulk(kind), _, Value::Int(_)]
            if &kind[..] == b"subscribe" || &kind[..] == b"unsubscribe" =>
        {
            match pending.pop_front() {
                Some(Pending::Again) => {
                    *again = again.saturating_sub(1);
                    if *again == 0 {
                        shared.ready.store(true, Ordering::Relaxed);
                    }
                }
                Some(Pending::Asked(tx)) => {
                    let _ = tx.send(Ok(()));
                }
                None => tracing::warn!("broker: Redis confirmed a subscription nobody asked for"),
            }
            Ok(())
        }
        _ => {
            tracing::warn!(value = ?parts, "broker: an unexpected pub/sub value from Redis");
            Ok(())
        }
    }
}

/// Records a subscription change in `wanted` and answers it.
fn note(wanted: &mut BTreeSet<String>, c: Control) {
    match c {
        Control::Subscribe(ch, tx) => {
            wanted.insert(ch);
            let _ = tx.send(Ok(()));
        }
        Control::Unsubscribe(ch, tx) => {
            wanted.remove(&ch);
            let _ = tx.send(Ok(()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatcore::model::{ConversationId, UserId};

    #[test]
    fn frames_round_trip_and_bad_ones_are_refused_not_panicked_on() {
        let topic = Topic::User(UserId::from("u1"));
        let event = Event::Typing {
            conv: ConversationId::from("g:1"),
            user: UserId::from("w"),
            typing: true,
        };
        let frame = encode(7, 1_700_000_000_000, &topic, &event).unwrap();
        assert_eq!(
            decode(&frame).unwrap(),
            (7, 1_700_000_000_000, topic, event)
        );
        assert!(decode(&[]).is_err());
        assert!(decode(&frame[..HEAD]).is_err());
        let mut other = frame.clone();
        other[0] = 9;
        assert!(decode(&other).is_err());
        let mut cut = frame.clone();
        cut.truncate(frame.len() - 3);
        assert!(decode(&cut).is_err());
        assert!(decode(b"hello, a foreign program on the channel").is_err());
    }

    /// A message's event is spliced from the message's own encoding: the
    /// same bytes as serde's of the whole, so any node decodes it.
    #[test]
    fn a_message_event_is_the_bytes_serde_would_write() {
        use chatcore::protocol::SharedMessage;
        let messages = chatcore::testkit::samples::server_frames()
            .into_iter()
            .filter_map(|f| match f {
                chatcore::protocol::ServerFrame::Message { message } => Some(message),
                _ => None,
            })
            .collect::<Vec<_>>();
        assert!(!messages.is_empty());
        let long = "o".repeat(300);
        for m in messages {
            for origin in [
                None,
                Some(Arc::<str>::from("c1")),
                Some(Arc::from(long.as_str())),
            ] {
                for muted in [false, true] {
                    let topic = Topic::User(UserId::from("u1"));
                    let event = Event::Message {
                        message: SharedMessage::new(m.message().clone()),
                        muted,
                        origin: origin.clone(),
                    };
                    let frame = encode(7, 9, &topic, &event).unwrap();
                    let mut serde = frame[..HEAD].to_vec();
                    rmp_serde::encode::write_named(&mut serde, &(&topic, &event)).unwrap();
                    assert_eq!(frame, serde);
                    assert_eq!(decode(&frame).unwrap(), (7, 9, topic, event));
                }
            }
        }
    }
}
