//! # chatcore-redis
//!
//! Redis implementations of the chatcore state that several chatd nodes must
//! share and that is soft (it may be lost with Redis and rebuilds itself):
//! the broker that carries events between the nodes ([`RedisBroker`], on
//! pub/sub), presence with node liveness ([`RedisPresenceStore`]), the
//! rate limiters ([`RedisRateLimiter`]) and the calls going on
//! ([`RedisCallStore`]). Durable data stays in MongoDB (or
//! SQLite for one node).
//!
//! ```no_run
//! use chatcore::{Backends, Config, Server};
//! use chatcore_redis::{RedisConfig, RedisStore};
//!
//! # async fn run() -> Result<(), chatcore::store::StoreError> {
//! // Every key of this deployment starts with `chat:`.
//! let store = RedisStore::connect(&RedisConfig::new("redis://127.0.0.1:6379/", "chat")).await?;
//! // Presence, the limiters and the calls from Redis, everything else as before.
//! let backends = store.backends(Backends::memory());
//! let server = Server::new(backends, Config::default()).expect("valid config");
//! // Call now and then (chatd: a few times per `presence_ttl_ms`): renews
//! // this node's liveness and turns the users of dead nodes offline.
//! server.sweep_presence().await.ok();
//! # Ok(())
//! # }
//! ```
//!
//! # Why redis-rs and not fred
//!
//! Both are maintained async clients with RESP3, pipelining and cluster
//! support; this crate uses [`redis`] (redis-rs) because:
//! - reconnection: its `ConnectionManager` is one cloneable, multiplexed
//!   connection that reconnects by itself with exponential backoff, with a
//!   response and a connect timeout, so a restarted Redis costs the calls
//!   made while it is down (they fail with `Unavailable`) and nothing more;
//! - pipelining and multiplexing: concurrent calls from every task share one
//!   socket and are pipelined on it; `Script` runs Lua by `EVALSHA` and loads
//!   it again after a `NOSCRIPT` (a Redis restart);
//! - RESP3 push: pub/sub messages can arrive on the same multiplexed
//!   connection (with resubscription after a reconnect). The broker no
//!   longer uses it: every event between nodes crosses its two connections,
//!   and redis-rs's general reply parser took a quarter of a node's
//!   instructions there, so they speak RESP2 themselves (`resp`); the rest
//!   stays on redis-rs;
//! - cluster: `cluster-async` speaks Redis Cluster, including sharded
//!   pub/sub (`SSUBSCRIBE`/`SPUBLISH`);
//! - it is the most used Redis client in Rust and is maintained by Redis
//!   itself. fred has a richer high-level API (pools, built-in reconnect
//!   policies, client-side caching), none of which this crate needs, and
//!   fewer users.
//!
//! # Keys
//!
//! Every key starts with the configured prefix and a colon (`<prefix>:`), so
//! several deployments and test runs share one Redis without seeing each
//! other. `{presence}` is a Redis Cluster hash tag: every presence key is on
//! one slot, so the presence scripts (which touch several keys) run on one
//! shard; `{calls}` does the same for the call keys. Cluster is not tested
//! yet.
//!
//! | key | type | what | expiry |
//! |---|---|---|---|
//! | `<prefix>:rl:w:<key>` | sorted set | sliding window of [`chatcore::store::RateLimiter::check`]/`record`: one member per event (`<now>-<uuid>`), scored by its time | the window (+ 5 s), renewed by each `record` |
//! | `<prefix>:rl:b:<start>:<key>` | string (integer) | what [`chatcore::store::RateLimiter::spend`] spent in the fixed window starting at `<start>` (ms since the epoch), counting what nodes leased and have not spent yet (`limiter`) | until the window ends by the caller's clock (+ 5 s) |
//! | `<prefix>:{presence}:u:<user>` | hash | the user's live connections: conn → node | none (emptied by disconnects and sweeps) |
//! | `<prefix>:{presence}:n:<node>` | set | the users with a connection on the node | none (emptied by disconnects; popped by the sweep of a dead node) |
//! | `<prefix>:{presence}:nodes` | sorted set | the node registry: node → its last heartbeat (ms) | none (a dead node is removed by the sweep that takes it over) |
//! | `<prefix>:{presence}:seen:<user>` | string (integer) | the user's last-seen time (ms) | none |
//! | `<prefix>:{calls}:call:<id>` | hash | a call going on: `rec` (a schema byte and the record as invited, in named MessagePack), `offer` (the invite's offer while it rings, named MessagePack) and the fields that change (`ringing`, `answered_by`, `answered_at`, `caller_conn`, `callee_conn`, `caller_gone`, `callee_gone`) with `caller`, `callee`, `caller_device` | a day after the call's last change ([`CALL_TTL_MS`], a safety net); removed when it ends |
//! | `<prefix>:{calls}:of:<user>` | string | the id of the call the user is in | as its call |
//! | `<prefix>:{calls}:all` | sorted set | the calls' ids by their start (ms), scanned by [`chatcore::store::CallStore::due`] | none (ended calls leave it; `due` drops the ids of expired ones) |
//!
//! Times are always the callers' `now` (chatcore's clock), never Redis's: the
//! scores, counters and heartbeats compare only with each other, so tests
//! move time freely. Expiry is relative (`PEXPIRE` of what is left of the
//! window by the caller's clock, plus 5 s of slack) and only reclaims memory:
//! a budget key names its window's start, so a counter is never read in
//! another window, whatever Redis's clock says.
//!
//! Presence, counters and calls live only in Redis's memory: after a Redis
//! restart without persistence users show offline until they reconnect,
//! last-seen times are forgotten, budgets start afresh and the calls going
//! on are forgotten (their clients see them fail; nobody stays busy).
//!
//! # Layout
//! - this file: [`RedisConfig`], [`RedisStore`] (the connection, the key
//!   prefix, hand-out of the stores) and the mapping of client errors to
//!   [`StoreError`].
//! - `broker`: [`RedisBroker`] (its frame format and backlog are described
//!   there).
//! - `calls`: [`RedisCallStore`].
//! - `limiter`: [`RedisRateLimiter`].
//! - `presence`: [`RedisPresenceStore`].
//! - `resp`: the broker's own RESP2 connections (its hot path).
//! - `testing` (feature `testing`): a private `redis-server` for tests.

use std::sync::Arc;
use std::time::Duration;

use chatcore::store::{StoreError, StoreResult};
use chatcore::Backends;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, ServerErrorKind};

mod broker;
mod calls;
mod limiter;
mod presence;
mod resp;
#[cfg(feature = "testing")]
pub mod testing;

pub use broker::{BrokerStats, RedisBroker};
pub use calls::{RedisCallStore, CALL_TTL_MS};
pub use limiter::{RedisRateLimiter, LEASE_PARTS};
pub use presence::RedisPresenceStore;
pub use redis;

/// How to reach Redis and where in it this deployment's keys live. Start
/// from [`RedisConfig::new`] and change fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RedisConfig {
    /// `redis://[user:pass@]host[:port][/db]` (or `rediss://` with TLS when
    /// the client is built with it).
    pub url: String,
    /// Every key starts with `<prefix>:`. Not empty; no `{`, `}` or
    /// whitespace (braces would change the keys' cluster hash slots).
    pub prefix: String,
    /// How long one call waits for Redis's answer before failing with
    /// `Unavailable`.
    pub response_timeout: Duration,
    /// How long a connection attempt may take.
    pub connection_timeout: Duration,
    /// Reconnection attempts per failed call (exponential backoff from
    /// 100 ms); the next call starts again.
    pub reconnect_retries: usize,
}

impl RedisConfig {
    /// `url` and `prefix` with default timeouts (2 s per answer, 1 s per
    /// connection attempt, 3 reconnection attempts).
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: prefix.into(),
            response_timeout: Duration::from_secs(2),
            connection_timeout: Duration::from_secs(1),
            reconnect_retries: 3,
        }
    }

    fn check_prefix(&self) -> StoreResult<()> {
        let bad = self.prefix.is_empty()
            || self
                .prefix
                .chars()
                .any(|c| c == '{' || c == '}' || c.is_whitespace() || c.is_control());
        if bad {
            return Err(StoreError::Unavailable(format!(
                "invalid Redis key prefix {:?}: not empty, no braces or whitespace",
                self.prefix
            )));
        }
        Ok(())
    }
}

/// A connection to Redis (multiplexed, reconnecting) and this deployment's
/// key prefix; hands out the stores. Cheap to clone: clones share the
/// connection.
#[derive(Clone)]
pub struct RedisStore {
    client: redis::Client,
    conn: ConnectionManager,
    prefix: Arc<str>,
}

impl RedisStore {
    /// Connects (and fails with `Unavailable` when Redis does not answer, or
    /// when the URL or the prefix is invalid).
    pub async fn connect(config: &RedisConfig) -> StoreResult<Self> {
        config.check_prefix()?;
        let client = redis::Client::open(config.url.as_str()).map_err(store_error)?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.response_timeout))
            .set_connection_timeout(Some(config.connection_timeout))
            .set_number_of_retries(config.reconnect_retries);
        let conn = ConnectionManager::new_with_config(client.clone(), manager)
            .await
            .map_err(store_error)?;
        Ok(Self {
            client,
            conn,
            prefix: config.prefix.as_str().into(),
        })
    }

    /// The key prefix (without the colon).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `<prefix>:<rest>`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:{rest}", self.prefix)
    }

    /// The shared connection, for other users of this Redis.
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The broker between the nodes on this Redis and prefix, on two
    /// connections of its own (one publishes, one subscribes), with at most
    /// `backlog` events waiting to be published; see [`RedisBroker`].
    pub async fn broker(&self, backlog: usize) -> StoreResult<RedisBroker> {
        RedisBroker::connect(&self.client, &self.prefix, backlog).await
    }

    /// The rate limiter, shared by every node on this Redis and prefix.
    pub fn limiter(&self) -> RedisRateLimiter {
        RedisRateLimiter::new(self.clone())
    }

    /// The presence store, shared by every node on this Redis and prefix.
    pub fn presence(&self) -> RedisPresenceStore {
        RedisPresenceStore::new(self.clone())
    }

    /// The call store, shared by every node on this Redis and prefix.
    pub fn calls(&self) -> RedisCallStore {
        RedisCallStore::new(self.clone())
    }

    /// `base` with its presence store, rate limiter and call store replaced
    /// by this Redis's.
    pub fn backends(&self, base: Backends) -> Backends {
        let mut b = base;
        b.presence = Arc::new(self.presence());
        b.limiter = Arc::new(self.limiter());
        b.calls = Arc::new(self.calls());
        b
    }

    /// Whether Redis answers (`PING`), for readiness probes.
    pub async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(store_error)
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The one mapping of client errors to [`StoreError`]: answers that are not
/// what the data should look like (a parse error, a wrong type, a script's
/// `CORRUPT` error, a script that failed on what it read) are `Corrupt`;
/// everything else (I/O, timeouts, refused or dropped connections, a Redis
/// loading, read-only, out of memory, a cluster moving) is `Unavailable`.
pub(crate) fn store_error(e: RedisError) -> StoreError {
    let corrupt = match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => true,
        // A script that failed on what it read (`ERR user_script:...`).
        ErrorKind::Server(ServerErrorKind::ResponseError) => {
            e.detail().is_some_and(|d| d.contains("user_script"))
        }
        _ => matches!(e.code(), Some("WRONGTYPE" | "CORRUPT")),
    };
    if corrupt && !e.is_io_error() && !e.is_timeout() && !e.is_connection_dropped() {
        StoreError::Corrupt(e.to_string())
    } else {
        StoreError::Unavailable(e.to_string())
    }
}

/// A `Corrupt` error about `what`.
pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

/// An integer Redis answered: an integer reply or a decimal string (what a
/// `GET` of a counter or a score returns). `Nil` is `None`; anything else is
/// `Corrupt`.
pub(crate) fn int_of(v: &redis::Value, what: &str) -> StoreResult<Option<i64>> {
    use redis::Value;
    let text = match v {
        Value::Nil => return Ok(None),
        Value::Int(n) => return Ok(Some(*n)),
        Value::BulkString(b) => std::str::from_utf8(b).map_err(|_| corrupt(what))?,
        Value::SimpleString(s) => s.as_str(),
        Value::Double(d) if d.fract() == 0.0 && d.abs() < 9.0e15 => {
            #[allow(clippy::cast_possible_truncation)]
            return Ok(Some(*d as i64));
        }
        _ => return Err(corrupt(format!("{what}: {v:?}"))),
    };
    if let Ok(n) = text.parse::<i64>() {
        return Ok(Some(n));
    }
    // A sorted set's score may come back as a float's text.
    match text.parse::<f64>() {
        Ok(d) if d.fract() == 0.0 && d.abs() < 9.0e15 =>
        {
            #[allow(clippy::cast_possible_truncation)]
            Ok(Some(d as i64))
        }
        _ => Err(corrupt(format!("{what}: {text:?}"))),
    }
}

/// A string Redis answered (a bulk or simple string in UTF-8), else `Corrupt`.
pub(crate) fn string_of(v: &redis::Value, what: &str) -> StoreResult<String> {
    use redis::Value;
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).map_err(|_| corrupt(what)),
        Value::SimpleString(s) => Ok(s.clone()),
        _ => Err(corrupt(format!("{what}: {v:?}"))),
    }
}

/// Relative expiry that reclaims a key some time after the caller's clock
/// says it is worthless (covers clock differences between nodes).
pub(crate) const TTL_SLACK_MS: u64 = 5_000;
