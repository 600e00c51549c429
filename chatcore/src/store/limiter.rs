use async_trait::async_trait;

use super::StoreResult;
use crate::model::Millis;

/// At most `max` events per `window_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    /// Events allowed in a window.
    pub max: u32,
    /// Window length in milliseconds.
    pub window_ms: u64,
}

impl Quota {
    /// The fixed window of [`RateLimiter::spend`] that contains `now`: its
    /// start and its end (exclusive). A window of 0 ms counts as 1 ms.
    pub fn fixed_window(&self, now: Millis) -> (Millis, Millis) {
        let len = i64::try_from(self.window_ms.max(1)).unwrap_or(i64::MAX);
        let start = now - now.rem_euclid(len);
        (start, start.saturating_add(len))
    }

    /// Milliseconds from `now` to the end of its fixed window (at least 1):
    /// the wait an over-budget [`RateLimiter::spend`] answers with.
    pub fn until_window_end(&self, now: Millis) -> u64 {
        let (_, end) = self.fixed_window(now);
        u64::try_from(end - now).unwrap_or(0).max(1)
    }
}

/// Counts events (failed logins) per key in a sliding window. Shared across
/// nodes when the implementation is (a broker-backed one); the memory one
/// counts per process.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// `Ok(None)` when fewer than `quota.max` events of `key` fall in the
    /// window ending at `now`; otherwise `Ok(Some(ms))`, the wait until the
    /// oldest of them leaves the window. Records nothing.
    async fn check(&self, key: &str, quota: Quota, now: Millis) -> StoreResult<Option<u64>>;

    /// Records one event of `key` at `now`.
    async fn record(&self, key: &str, quota: Quota, now: Millis) -> StoreResult<()>;

    /// Forgets the events of `key` (after a successful login).
    async fn clear(&self, key: &str) -> StoreResult<()>;

    /// Spends `cost` from the budget of `key` in the fixed window of
    /// `quota.window_ms` that contains `now` (windows start at multiples of
    /// the window length since the epoch): `Ok(None)` when the window's
    /// total stays at most `quota.max` with it, and then the cost is added;
    /// otherwise nothing is added and `Ok(Some(ms))` is the wait until the
    /// window ends. Atomic: concurrent spends of one key never pass more
    /// than the budget in total. For budgets that charge every request
    /// (messages, bytes, registrations), where a sliding log of events
    /// would be too large; a counter is forgotten after its window ends.
    async fn spend(
        &self,
        key: &str,
        cost: u64,
        quota: Quota,
        now: Millis,
    ) -> StoreResult<Option<u64>>;
}
