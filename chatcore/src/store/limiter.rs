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
}
