//! [`RedisRateLimiter`]: chatcore's [`RateLimiter`] on Redis, shared by every
//! node. Each Redis call is one Lua script on one key, so it is atomic
//! across nodes and costs one round trip.
//!
//! `spend` (the budgets charged on every message, typing notice and key
//! claim) leases: a node takes a sixteenth of a budget from Redis at once
//! ([`LEASE_PARTS`]) and spends it in memory, so a user sending through one
//! node costs Redis one script per sixteenth of their budget rather than one
//! per message (the script was most of Redis's work per relayed message).
//! Never more than the budget passes in a window: what a node leased is
//! spent on the shared counter. The price: what a node leased and did not
//! spend is lost for the rest of the window, so a user who sends through
//! several nodes in one window may be refused up to a sixteenth of the
//! budget early per other node. A node's leases of one key are taken one at
//! a time, so on one node a spend is refused only when the budget is spent.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use async_trait::async_trait;
use chatcore::model::Millis;
use chatcore::store::{Quota, RateLimiter, StoreResult};
use redis::Script;

use crate::{int_of, store_error, RedisStore, TTL_SLACK_MS};

/// `check`: drops the events at or before the horizon, then answers -1 when
/// fewer than `max` remain, otherwise the oldest's time (or `now` if there
/// is none: a quota of 0 events).
/// KEYS[1]: the window. ARGV: horizon, max, now.
static CHECK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then return -1 end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #oldest == 0 then return ARGV[3] end
return oldest[2]
",
    )
});

/// `record`: drops the events at or before the horizon, adds this one,
/// keeps the newest `max`, and renews the key's expiry.
/// KEYS[1]: the window. ARGV: horizon, now, member, max, ttl ms.
static RECORD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local n = redis.call('ZCARD', KEYS[1])
local max = tonumber(ARGV[4])
if n > max then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - max - 1) end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
",
    )
});

/// `lease`: takes up to `want` (at least `need`) from what is left of the
/// window's budget `max`, adds it to the counter and answers it; answers 0
/// and changes nothing when less than `need` is left.
/// KEYS[1]: the window's counter. ARGV: need, want, max, ttl ms.
static LEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local raw = redis.call('GET', KEYS[1])
local spent = 0
if raw then
  spent = tonumber(raw)
  if spent == nil then return redis.error_reply('CORRUPT budget counter ' .. KEYS[1]) end
end
local left = tonumber(ARGV[3]) - spent
if left < tonumber(ARGV[1]) then return 0 end
local grant = math.min(left, tonumber(ARGV[2]))
redis.call('INCRBY', KEYS[1], grant)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return grant
",
    )
});

/// A node leases a budget in this many parts at most (see the module docs).
pub const LEASE_PARTS: u64 = 16;

/// Leases kept before the ones of ended windows are dropped.
const LEASES_KEPT: usize = 1024;

/// What this node holds of one key's budget in one fixed window.
#[derive(Debug, Default)]
struct Lease {
    /// The window's start; a lease of another window is worth nothing.
    start: Millis,
    /// The window's end, after which the lease can be dropped.
    end: Millis,
    /// Leased and not spent yet.
    left: u64,
}

#[derive(Debug, Default)]
struct Leases {
    by_key: HashMap<String, Arc<tokio::sync::Mutex<Lease>>>,
    /// The size past which ended leases are dropped.
    prune_at: usize,
}

/// The rate limiter on Redis: the sliding windows of `check`/`record` are
/// sorted sets of events, the fixed-window budgets of `spend` counters named
/// by their window (see the crate docs for the keys). Counts are shared by
/// every node on the same Redis and prefix; every call is atomic.
/// Clones share this node's leases.
#[derive(Clone, Debug)]
pub struct RedisRateLimiter {
    store: RedisStore,
    leases: Arc<Mutex<Leases>>,
}

impl RedisRateLimiter {
    /// The limiter of `store`'s Redis and prefix.
    pub fn new(store: RedisStore) -> Self {
        Self {
            store,
            leases: Arc::default(),
        }
    }

    /// This node's lease of `key`, made when there is none; drops the
    /// leases of ended windows now and then.
    fn lease_of(&self, key: &str, now: Millis) -> Arc<tokio::sync::Mutex<Lease>> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = leases.by_key.get(key) {
            return l.clone();
        }
        if leases.by_key.len() >= leases.prune_at {
            // A lease in use (locked) is kept: its spend is under way.
            leases
                .by_key
                .retain(|_, l| l.try_lock().map_or(true, |l| l.end > now));
            leases.prune_at = (leases.by_key.len() * 2).max(LEASES_KEPT);
        }
        let lease = Arc::new(tokio::sync::Mutex::new(Lease::default()));
        leases.by_key.insert(key.to_owned(), lease.clone());
        lease
    }

    fn window_key(&self, key: &str) -> String {
        self.store.key(&format!("rl:w:{key}"))
    }

    fn budget_key(&self, key: &str, start: Millis) -> String {
        self.store.key(&format!("rl:b:{start}:{key}"))
    }
}

fn window_ms(quota: Quota) -> i64 {
    i64::try_from(quota.window_ms).unwrap_or(i64::MAX)
}

#[async_trait]
impl RateLimiter for RedisRateLimiter {
    async fn check(&self, key: &str, quota: Quota, now: Millis) -> StoreResult<Option<u64>> {
        let window = window_ms(quota);
        let horizon = now.saturating_sub(window);
        let mut conn = self.store.connection();
        let answer: redis::Value = CHECK
            .key(self.window_key(key))
            .arg(horizon)
            .arg(quota.max)
            .arg(now)
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        let oldest = int_of(&answer, "oldest event of a rate-limit window")?
            .ok_or_else(|| crate::corrupt("rate-limit check answered nil"))?;
        if oldest < 0 {
            return Ok(None);
        }
        let wait = oldest.saturating_add(window).saturating_sub(now);
        Ok(Some(u64::try_from(wait).unwrap_or(0).max(1)))
    }

    async fn record(&self, key: &str, quota: Quota, now: Millis) -> StoreResult<()> {
        let horizon = now.saturating_sub(window_ms(quota));
        let member = format!("{now}-{}", uuid::Uuid::new_v4().simple());
        let ttl = quota.window_ms.saturating_add(TTL_SLACK_MS);
        let mut conn = self.store.connection();
        RECORD
            .key(self.window_key(key))
            .arg(horizon)
            .arg(now)
            .arg(member)
            .arg(quota.max)
            .arg(ttl)
            .invoke_async::<()>(&mut conn)
            .await
            .map_err(store_error)
    }

    async fn clear(&self, key: &str) -> StoreResult<()> {
        let mut conn = self.store.connection();
        redis::cmd("DEL")
            .arg(self.window_key(key))
            .query_async::<()>(&mut conn)
            .await
            .map_err(store_error)
    }

    async fn spend(
        &self,
        key: &str,
        cost: u64,
        quota: Quota,
        now: Millis,
    ) -> StoreResult<Option<u64>> {
        if cost > u64::from(quota.max) {
            return Ok(Some(quota.until_window_end(now)));
        }
        let (start, end) = quota.fixed_window(now);
        let lease = self.lease_of(key, now);
        // Held across the round trip: this node's leases of the key are
        // taken one at a time, so none is refused while another one's
        // grant is on its way here.
        let mut lease = lease.lock().await;
        if lease.start != start || lease.end != end {
            *lease = Lease {
                start,
                end,
                left: 0,
            };
        }
        if lease.left >= cost {
            lease.left -= cost;
            return Ok(None);
        }
        let need = cost - lease.left;
        let want = need.max(u64::from(quota.max) / LEASE_PARTS);
        let ttl = quota.until_window_end(now).saturating_add(TTL_SLACK_MS);
        let mut conn = self.store.connection();
        let answer: redis::Value = LEASE
            .key(self.budget_key(key, start))
            .arg(need)
            .arg(want)
            .arg(quota.max)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        let granted = int_of(&answer, "rate-limit lease answer")?
            .and_then(|g| u64::try_from(g).ok())
            .ok_or_else(|| crate::corrupt(format!("rate-limit lease answered {answer:?}")))?;
        if granted == 0 {
            return Ok(Some(quota.until_window_end(now)));
        }
        if granted < need || granted > want {
            return Err(crate::corrupt(format!(
                "rate-limit lease granted {granted} for a need of {need} (at most {want})"
            )));
        }
        lease.left = lease.left + granted - cost;
        Ok(None)
    }
}
