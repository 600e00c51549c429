//! [`RedisRateLimiter`]: chatcore's [`RateLimiter`] on Redis, shared by every
//! node. Each call is one Lua script on one key, so it is atomic across
//! nodes and costs one round trip.

use std::sync::LazyLock;

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

/// `spend`: adds `cost` to the window's counter when the total stays at
/// most `max` (and answers 1), otherwise changes nothing (and answers 0).
/// KEYS[1]: the window's counter. ARGV: cost, max, ttl ms.
static SPEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local raw = redis.call('GET', KEYS[1])
local spent = 0
if raw then
  spent = tonumber(raw)
  if spent == nil then return redis.error_reply('CORRUPT budget counter ' .. KEYS[1]) end
end
local cost = tonumber(ARGV[1])
if spent + cost > tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[1], cost)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
",
    )
});

/// The rate limiter on Redis: the sliding windows of `check`/`record` are
/// sorted sets of events, the fixed-window budgets of `spend` counters named
/// by their window (see the crate docs for the keys). Counts are shared by
/// every node on the same Redis and prefix; every call is atomic.
#[derive(Clone, Debug)]
pub struct RedisRateLimiter {
    store: RedisStore,
}

impl RedisRateLimiter {
    /// The limiter of `store`'s Redis and prefix.
    pub fn new(store: RedisStore) -> Self {
        Self { store }
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
        let (start, _) = quota.fixed_window(now);
        let ttl = quota.until_window_end(now).saturating_add(TTL_SLACK_MS);
        let mut conn = self.store.connection();
        let passed: redis::Value = SPEND
            .key(self.budget_key(key, start))
            .arg(cost)
            .arg(quota.max)
            .arg(ttl)
            .invoke_async(&mut conn)
            .await
            .map_err(store_error)?;
        match int_of(&passed, "rate-limit spend answer")? {
            Some(1) => Ok(None),
            Some(0) => Ok(Some(quota.until_window_end(now))),
            other => Err(crate::corrupt(format!(
                "rate-limit spend answered {other:?}"
            ))),
        }
    }
}
