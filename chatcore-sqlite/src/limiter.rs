//! The rate limiter: failed-login windows in the database, so that a
//! restart does not reset an attacker's count; the fixed-window budgets
//! of `spend` in memory.
//!
//! `spend` is charged on every message sent. Writing it durably would put
//! a second commit (an fsync) on every send's path, for a counter that
//! only means something until its window (a minute) ends and that the
//! memory limiter of a single node keeps exactly. Only one process serves
//! a database file, so the in-memory count is the whole count.

use std::sync::Arc;

use async_trait::async_trait;
use chatcore::memory::MemoryRateLimiter;
use chatcore::model::Millis;
use chatcore::store::{Quota, RateLimiter, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};

use crate::db::Db;
use crate::error::map_err;
use crate::{from_json, to_json};

/// The rate limiter. Every change of a failed-login window runs on the
/// single writer, so each is atomic; budgets are spent in memory (see the
/// module doc), shared by every handle of one [`crate::SqliteStore`].
#[derive(Clone)]
pub struct SqliteRateLimiter {
    db: Arc<Db>,
    budgets: Arc<MemoryRateLimiter>,
}

impl SqliteRateLimiter {
    pub(crate) fn new(db: Arc<Db>, budgets: Arc<MemoryRateLimiter>) -> Self {
        Self { db, budgets }
    }
}

fn window_ms(quota: Quota) -> Millis {
    i64::try_from(quota.window_ms).unwrap_or(i64::MAX)
}

/// The events of `key` still in the window ending at `now`, oldest first.
fn events(c: &Connection, key: &str, quota: Quota, now: Millis) -> StoreResult<Vec<Millis>> {
    let json: Option<String> = c
        .prepare_cached("SELECT events FROM limiter_events WHERE key = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)).optional())
        .map_err(map_err)?;
    let mut events = match json {
        Some(j) => from_json::<Vec<Millis>>(&j, "limiter events")?,
        None => Vec::new(),
    };
    let horizon = now.saturating_sub(window_ms(quota));
    events.retain(|&t| t > horizon);
    Ok(events)
}

#[async_trait]
impl RateLimiter for SqliteRateLimiter {
    async fn check(&self, key: &str, quota: Quota, now: Millis) -> StoreResult<Option<u64>> {
        let key = key.to_owned();
        self.db
            .read(move |c| {
                let events = events(c, &key, quota, now)?;
                if events.len() < quota.max as usize {
                    return Ok(None);
                }
                let oldest = events.first().copied().unwrap_or(now);
                let wait = oldest.saturating_add(window_ms(quota)) - now;
                Ok(Some(u64::try_from(wait).unwrap_or(0).max(1)))
            })
            .await
    }

    async fn record(&self, key: &str, quota: Quota, now: Millis) -> StoreResult<()> {
        let key = key.to_owned();
        self.db
            .write(move |c| {
                let mut events = events(c, &key, quota, now)?;
                events.push(now);
                let excess = events.len().saturating_sub(quota.max as usize);
                events.drain(..excess);
                // Windows that have ended are worth nothing.
                c.execute("DELETE FROM limiter_events WHERE until <= ?1", [now])
                    .map_err(map_err)?;
                c.execute(
                    "INSERT OR REPLACE INTO limiter_events (key, events, until) VALUES (?1, ?2, ?3)",
                    params![
                        key,
                        to_json(&events)?,
                        now.saturating_add(window_ms(quota))
                    ],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn clear(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.db
            .write(move |c| {
                c.execute("DELETE FROM limiter_events WHERE key = ?1", [key])
                    .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn spend(
        &self,
        key: &str,
        cost: u64,
        quota: Quota,
        now: Millis,
    ) -> StoreResult<Option<u64>> {
        self.budgets.spend(key, cost, quota, now).await
    }
}
