//! The failed-login rate limiter, shared by every node on the database.

use async_trait::async_trait;
use mongodb::bson::{doc, DateTime, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use chatcore::model::Millis;
use chatcore::store::{Quota, RateLimiter, StoreError, StoreResult};

use crate::schema::{BUDGETS, RATE_LIMITS};
use crate::Inner;

/// Compare-and-set rounds before giving up (see [`MongoRateLimiter`]).
const MAX_ROUNDS: usize = 1_000;

/// The recent events of one key, oldest first, at most `quota.max` of them.
/// `v` versions the document for compare-and-set; `expire_at` (a Date under
/// a TTL index) is when the newest event leaves the window, after which the
/// document means nothing and the server may reap it.
#[derive(Serialize, Deserialize)]
struct WindowDoc {
    #[serde(rename = "_id")]
    key: String,
    events: Vec<Millis>,
    v: i64,
    expire_at: DateTime,
}

/// A sliding-window limiter in the `rate_limits` collection. `record` reads
/// the window, updates it in memory and writes it back only if nobody else
/// did meanwhile (a version check), which keeps the exact semantics of the
/// reference limiter with plain `$set` writes.
///
/// `spend` keeps one document per key and fixed window in `budgets`
/// (`_id` = `<key>@<window start>`, `spent`, `expire_at` under a TTL
/// index) and spends with one conditional `$inc`: the filter admits the
/// document only while the cost still fits, and an upsert that finds no
/// admissible document collides with the existing one on `_id`, which
/// means "over budget". So concurrent spends never pass more than the
/// budget, with neither a transaction nor a read.
#[derive(Clone)]
pub struct MongoRateLimiter {
    inner: Arc<Inner>,
    windows: Collection<WindowDoc>,
    budgets: Collection<Document>,
}

impl MongoRateLimiter {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        let windows = inner.soft(RATE_LIMITS);
        let budgets = inner.soft(BUDGETS);
        Self {
            inner,
            windows,
            budgets,
        }
    }

    async fn load(&self, key: &str) -> StoreResult<Option<WindowDoc>> {
        self.inner
            .run(self.windows.find_one(doc! { "_id": key }))
            .await
    }
}

fn window_ms(quota: Quota) -> Millis {
    i64::try_from(quota.window_ms).unwrap_or(i64::MAX)
}

/// Drops the events that have left the window ending at `now`.
fn expire(events: &mut Vec<Millis>, quota: Quota, now: Millis) {
    let horizon = now.saturating_sub(window_ms(quota));
    let gone = events.iter().take_while(|&&t| t <= horizon).count();
    events.drain(..gone);
}

#[async_trait]
impl RateLimiter for MongoRateLimiter {
    async fn check(&self, key: &str, quota: Quota, now: Millis) -> StoreResult<Option<u64>> {
        let Some(mut w) = self.load(key).await? else {
            return Ok(None);
        };
        expire(&mut w.events, quota, now);
        if w.events.len() < quota.max as usize {
            return Ok(None);
        }
        let oldest = w.events.first().copied().unwrap_or(now);
        let wait = oldest.saturating_add(window_ms(quota)) - now;
        Ok(Some(u64::try_from(wait).unwrap_or(0).max(1)))
    }

    async fn record(&self, key: &str, quota: Quota, now: Millis) -> StoreResult<()> {
        for _ in 0..MAX_ROUNDS {
            let stored = self.load(key).await?;
            let (mut events, v) = stored.map_or((Vec::new(), 0), |w| (w.events, w.v));
            expire(&mut events, quota, now);
            events.push(now);
            let excess = events.len().saturating_sub(quota.max as usize);
            events.drain(..excess);
            let newest = events.iter().copied().max().unwrap_or(now);
            let next = WindowDoc {
                key: key.to_owned(),
                events,
                v: v + 1,
                expire_at: DateTime::from_millis(newest.saturating_add(window_ms(quota))),
            };
            let written = if v == 0 {
                match self.inner.run(self.windows.insert_one(&next)).await {
                    Ok(_) => true,
                    Err(StoreError::Conflict { .. }) => false,
                    Err(e) => return Err(e),
                }
            } else {
                let r = self
                    .inner
                    .run(self.windows.update_one(
                        doc! { "_id": key, "v": v },
                        doc! { "$set": {
                            "events": &next.events,
                            "v": next.v,
                            "expire_at": next.expire_at,
                        } },
                    ))
                    .await?;
                r.matched_count == 1
            };
            if written {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(format!(
            "rate limit {key}: too much contention"
        )))
    }

    async fn clear(&self, key: &str) -> StoreResult<()> {
        self.inner
            .run(self.windows.delete_one(doc! { "_id": key }))
            .await?;
        Ok(())
    }

    async fn spend(
        &self,
        key: &str,
        cost: u64,
        quota: Quota,
        now: Millis,
    ) -> StoreResult<Option<u64>> {
        let (start, end) = quota.fixed_window(now);
        let over = Some(quota.until_window_end(now));
        let (Ok(cost), max) = (i64::try_from(cost), i64::from(quota.max)) else {
            return Ok(over);
        };
        if cost > max {
            return Ok(over);
        }
        let id = format!("{key}@{start}");
        let filter = doc! { "_id": &id, "spent": { "$lte": max - cost } };
        let inc = doc! {
            "$inc": { "spent": cost },
            "$setOnInsert": { "expire_at": DateTime::from_millis(end) },
        };
        match self
            .inner
            .run(
                self.budgets
                    .update_one(filter.clone(), inc.clone())
                    .upsert(true),
            )
            .await
        {
            Ok(_) => Ok(None),
            // The window's document exists and the cost does not fit, or
            // two first spends of a window raced to insert it: the loser
            // tries once more without inserting.
            Err(StoreError::Conflict { .. }) => {
                let r = self.inner.run(self.budgets.update_one(filter, inc)).await?;
                Ok((r.matched_count == 0).then_some(over).flatten())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expire_drops_events_at_or_before_the_horizon() {
        let q = Quota {
            max: 3,
            window_ms: 1000,
        };
        let mut e = vec![0, 100, 200];
        expire(&mut e, q, 1000);
        assert_eq!(e, [100, 200]);
        expire(&mut e, q, 5000);
        assert!(e.is_empty());
    }
}
