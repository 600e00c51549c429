//! The rate limiter: failed-login windows and fixed-window budgets, which
//! survive a restart (a restart must not reset an attacker's count).

use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::Millis;
use chatcore::store::{Quota, RateLimiter, StoreResult};
use rusqlite::{params, Connection, OptionalExtension};

use crate::db::Db;
use crate::error::map_err;
use crate::{from_json, to_json};

/// The rate limiter. Every change runs on the single writer, so each is
/// atomic: concurrent spends never pass more than the budget.
#[derive(Clone)]
pub struct SqliteRateLimiter {
    db: Arc<Db>,
}

impl SqliteRateLimiter {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
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
        let wait = Some(quota.until_window_end(now));
        if cost > u64::from(quota.max) {
            return Ok(wait);
        }
        let key = key.to_owned();
        self.db
            .write(move |c| {
                let (start, end) = quota.fixed_window(now);
                let row: Option<(Millis, i64)> = c
                    .prepare_cached(
                        "SELECT window_start, spent FROM limiter_budgets WHERE key = ?1",
                    )
                    .and_then(|mut s| s.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
                    .map_err(map_err)?;
                let spent = match row {
                    Some((s, spent)) if s == start => u64::try_from(spent).unwrap_or(0),
                    _ => {
                        // A new window: the ended ones are worth nothing.
                        c.execute("DELETE FROM limiter_budgets WHERE window_end <= ?1", [now])
                            .map_err(map_err)?;
                        0
                    }
                };
                if spent + cost > u64::from(quota.max) {
                    return Ok(wait);
                }
                c.prepare_cached(
                    "INSERT OR REPLACE INTO limiter_budgets (key, window_start, window_end, spent) \
                     VALUES (?1, ?2, ?3, ?4)",
                )
                .and_then(|mut s| {
                    s.execute(params![key, start, end, i64::try_from(spent + cost).unwrap_or(i64::MAX)])
                })
                .map_err(map_err)?;
                Ok(None)
            })
            .await
    }
}
