//! [`RedisPresenceStore`]: chatcore's [`PresenceStore`] on Redis, with node
//! liveness. Connections are named `<node>/<n>` (chatcore's
//! `Server` makes them so); the store keeps per user its live connections
//! and the node of each, per node its users, a registry of nodes with their
//! last heartbeat, and per user the last-seen time. A node renews its
//! heartbeat by sweeping ([`PresenceStore::sweep`]); the sweep of any node
//! takes over the connections of nodes not heard from for the TTL.

use std::sync::LazyLock;

use async_trait::async_trait;
use chatcore::model::{Millis, Presence, UserId};
use chatcore::store::{PresenceStore, StoreResult};
use redis::{Script, Value};

use crate::{corrupt, int_of, store_error, string_of, RedisStore};

/// Users a sweep handles per script run, so that one run never blocks Redis
/// for long however many users a dead node had.
const SWEEP_BATCH: usize = 1000;

/// `connect`: records the connection and its node, the user on the node,
/// and renews the node's heartbeat (a connecting node is alive). Answers 1
/// when the user went online by it.
/// KEYS: the user's connections, the node's users, the registry.
/// ARGV: conn, node, user, now.
static CONNECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local added = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], 'GT', ARGV[4], ARGV[2])
if added == 1 and redis.call('HLEN', KEYS[1]) == 1 then return 1 end
return 0
",
    )
});

/// `disconnect`: forgets the connection; takes the user off its node when
/// it has no other connection there; sets last-seen and answers 1 when it
/// was the user's last.
/// KEYS: the user's connections, the user's last-seen.
/// ARGV: conn, user, now, presence key prefix (`<prefix>:{presence}`).
static DISCONNECT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local node = redis.call('HGET', KEYS[1], ARGV[1])
if not node then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
local rest = redis.call('HVALS', KEYS[1])
local still = false
for _, n in ipairs(rest) do
  if n == node then still = true break end
end
if not still then redis.call('SREM', ARGV[4] .. ':n:' .. node, ARGV[2]) end
if #rest == 0 then
  redis.call('SET', KEYS[2], ARGV[3])
  return 1
end
return 0
",
    )
});

/// `lapsed`: whether the node's users were taken over by a sweep since it
/// last asked (the mark is consumed), or its heartbeat is missing or at or
/// before the horizon. The mark closes a race: a node that checks, finds
/// itself alive, and is taken over by another node's sweep before its own
/// sweep renews its heartbeat, would otherwise never know.
/// KEYS: the registry, the node's taken mark. ARGV: node, horizon.
static LAPSED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local taken = redis.call('GETDEL', KEYS[2])
if taken then return 1 end
local beat = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not beat then return 1 end
if tonumber(beat) <= tonumber(ARGV[2]) then return 1 end
return 0
",
    )
});

/// `sweep`: renews this node's heartbeat, then for each other node whose
/// heartbeat is at or before the horizon pops up to the batch's worth of
/// its users, removes their connections on it, and sets the last-seen of
/// those left with none to the dead node's last heartbeat. A dead node is
/// unregistered once it has no users left. Answers `{more, user, seen,
/// user, seen, ...}`, `more` being 1 when dead nodes' users remain.
/// Popping makes concurrent sweeps take disjoint users: each user is
/// reported once.
/// ARGV: presence key prefix, this node, now, horizon, batch.
static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local P, me, now, horizon, left = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local nodes = P .. ':nodes'
redis.call('ZADD', nodes, 'GT', now, me)
local dead = redis.call('ZRANGEBYSCORE', nodes, '-inf', horizon, 'WITHSCORES')
local out = {0}
for i = 1, #dead, 2 do
  local node, seen = dead[i], dead[i + 1]
  if node ~= me then
    if left <= 0 then
      out[1] = 1
      break
    end
    local members = P .. ':n:' .. node
    local users = redis.call('SPOP', members, left)
    if #users > 0 then
      -- Tells the node, should it be alive after all, that its users were
      -- taken over (see LAPSED).
      redis.call('SET', P .. ':taken:' .. node, '1', 'PX', 86400000)
    end
    for _, user in ipairs(users) do
      local conns = P .. ':u:' .. user
      local all = redis.call('HGETALL', conns)
      local removed = 0
      for j = 1, #all, 2 do
        if all[j + 1] == node then
          redis.call('HDEL', conns, all[j])
          removed = removed + 1
        end
      end
      if removed > 0 and redis.call('HLEN', conns) == 0 then
        redis.call('SET', P .. ':seen:' .. user, seen)
        out[#out + 1] = user
        out[#out + 1] = seen
      end
    end
    left = left - #users
    if redis.call('SCARD', members) == 0 then
      redis.call('ZREM', nodes, node)
    else
      out[1] = 1
    end
  end
end
return out
",
    )
});

/// Presence on Redis (see the crate docs for the keys). A user is online
/// while any of their connections is recorded; the connections of a node
/// whose heartbeat is older than the sweep's TTL are removed by the next
/// sweep of any node, so a dead node's users turn offline within the TTL
/// plus the sweep interval, with last-seen the dead node's last heartbeat.
///
/// A node that only stalled (heartbeat late by more than the TTL) and comes
/// back has lost its connections' records: its users show offline until
/// they reconnect. Keep the TTL several sweep intervals long.
#[derive(Clone, Debug)]
pub struct RedisPresenceStore {
    store: RedisStore,
    /// `<prefix>:{presence}`: the hash tag puts every presence key on one
    /// cluster slot (the scripts touch several).
    base: String,
}

impl RedisPresenceStore {
    /// The presence store of `store`'s Redis and prefix.
    pub fn new(store: RedisStore) -> Self {
        let base = store.key("{presence}");
        Self { store, base }
    }

    fn conns_key(&self, user: &UserId) -> String {
        format!("{}:u:{user}", self.base)
    }

    fn node_key(&self, node: &str) -> String {
        format!("{}:n:{node}", self.base)
    }

    fn nodes_key(&self) -> String {
        format!("{}:nodes", self.base)
    }

    fn seen_key(&self, user: &UserId) -> String {
        format!("{}:seen:{user}", self.base)
    }
}

/// The node of a connection key `<node>/<n>` (the whole key when it has no
/// slash).
fn node_of(conn: &str) -> &str {
    conn.rsplit_once('/').map_or(conn, |(node, _)| node)
}

fn flag(v: &Value, what: &str) -> StoreResult<bool> {
    match int_of(v, what)? {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        other => Err(corrupt(format!("{what} answered {other:?}"))),
    }
}

#[async_trait]
impl PresenceStore for RedisPresenceStore {
    async fn connect(&self, user: &UserId, conn: &str, now: Millis) -> StoreResult<bool> {
        let node = node_of(conn);
        let mut c = self.store.connection();
        let v: Value = CONNECT
            .key(self.conns_key(user))
            .key(self.node_key(node))
            .key(self.nodes_key())
            .arg(conn)
            .arg(node)
            .arg(user.as_str())
            .arg(now)
            .invoke_async(&mut c)
            .await
            .map_err(store_error)?;
        flag(&v, "presence connect")
    }

    async fn disconnect(&self, user: &UserId, conn: &str, now: Millis) -> StoreResult<bool> {
        let mut c = self.store.connection();
        let v: Value = DISCONNECT
            .key(self.conns_key(user))
            .key(self.seen_key(user))
            .arg(conn)
            .arg(user.as_str())
            .arg(now)
            .arg(&self.base)
            .invoke_async(&mut c)
            .await
            .map_err(store_error)?;
        flag(&v, "presence disconnect")
    }

    async fn get(&self, users: &[UserId]) -> StoreResult<Vec<Presence>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for u in users {
            pipe.cmd("HLEN").arg(self.conns_key(u));
            pipe.cmd("GET").arg(self.seen_key(u));
        }
        let mut c = self.store.connection();
        let answers: Vec<Value> = pipe.query_async(&mut c).await.map_err(store_error)?;
        if answers.len() != users.len() * 2 {
            return Err(corrupt(format!(
                "presence get: {} answers for {} users",
                answers.len(),
                users.len()
            )));
        }
        users
            .iter()
            .zip(answers.chunks_exact(2))
            .map(|(u, pair)| {
                let conns = int_of(&pair[0], "presence connection count")?.unwrap_or(0);
                let seen = int_of(&pair[1], "last seen")?;
                Ok(Presence::of(u.clone(), conns > 0, seen))
            })
            .collect()
    }

    async fn connections(&self, user: &UserId) -> StoreResult<Option<usize>> {
        let mut c = self.store.connection();
        let n: u64 = redis::cmd("HLEN")
            .arg(self.conns_key(user))
            .query_async(&mut c)
            .await
            .map_err(store_error)?;
        Ok(Some(usize::try_from(n).unwrap_or(usize::MAX)))
    }

    async fn lapsed(&self, node: &str, now: Millis, ttl_ms: u64) -> StoreResult<bool> {
        let horizon = now.saturating_sub(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        let mut c = self.store.connection();
        let lapsed: i64 = LAPSED
            .key(format!("{}:nodes", self.base))
            .key(format!("{}:taken:{node}", self.base))
            .arg(node)
            .arg(horizon)
            .invoke_async(&mut c)
            .await
            .map_err(store_error)?;
        Ok(lapsed == 1)
    }

    async fn sweep(&self, node: &str, now: Millis, ttl_ms: u64) -> StoreResult<Vec<Presence>> {
        let horizon = now.saturating_sub(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        let mut offline = Vec::new();
        let mut c = self.store.connection();
        loop {
            let v: Value = SWEEP
                .arg(&self.base)
                .arg(node)
                .arg(now)
                .arg(horizon)
                .arg(SWEEP_BATCH)
                .invoke_async(&mut c)
                .await
                .map_err(store_error)?;
            let Value::Array(items) = v else {
                return Err(corrupt(format!("presence sweep answered {v:?}")));
            };
            let Some((more, pairs)) = items.split_first() else {
                return Err(corrupt("presence sweep answered nothing"));
            };
            if pairs.len() % 2 != 0 {
                return Err(corrupt("presence sweep answered an odd list"));
            }
            for pair in pairs.chunks_exact(2) {
                let user = UserId(string_of(&pair[0], "swept user")?);
                let seen = int_of(&pair[1], "swept user's last heartbeat")?;
                offline.push(Presence::of(user, false, seen));
            }
            if !flag(more, "presence sweep")? {
                return Ok(offline);
            }
        }
    }
}
