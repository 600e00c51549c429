//! Presence: which connections each user has open, across every node.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::doc;
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

use chatcore::model::{Millis, Presence, UserId};
use chatcore::store::{PresenceStore, StoreError, StoreResult};

use crate::schema::PRESENCE;
use crate::Inner;

/// Compare-and-set rounds before giving up: each lost round is another
/// connection of the same user changing state at that instant.
const MAX_ROUNDS: usize = 1_000;

/// One user's presence. `v` is a version for compare-and-set: every change
/// is read, computed and written back only if `v` is unchanged, which keeps
/// "went online" / "went offline" exact under concurrent (dis)connects with
/// nothing but `$set` (jongodb has no `$pull`, and its findAndModify is not
/// atomic).
#[derive(Serialize, Deserialize)]
struct PresenceDoc {
    #[serde(rename = "_id")]
    user: String,
    conns: Vec<String>,
    last_seen: Option<Millis>,
    v: i64,
}

/// Presence in the `presence` collection, one document per user.
#[derive(Clone)]
pub struct MongoPresenceStore {
    inner: Arc<Inner>,
    presence: Collection<PresenceDoc>,
}

impl MongoPresenceStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        let presence = inner.soft(PRESENCE);
        Self { inner, presence }
    }

    async fn load(&self, user: &UserId) -> StoreResult<Option<PresenceDoc>> {
        self.inner
            .run(self.presence.find_one(doc! { "_id": &user.0 }))
            .await
    }

    /// Writes `next` if the stored version is still `next.v - 1`.
    async fn swap(&self, next: &PresenceDoc) -> StoreResult<bool> {
        let r = self
            .inner
            .run(self.presence.update_one(
                doc! { "_id": &next.user, "v": next.v - 1 },
                doc! { "$set": {
                    "conns": &next.conns,
                    "last_seen": next.last_seen,
                    "v": next.v,
                } },
            ))
            .await?;
        Ok(r.matched_count == 1)
    }
}

fn contended(user: &UserId) -> StoreError {
    StoreError::Unavailable(format!("presence of {user}: too much contention"))
}

#[async_trait]
impl PresenceStore for MongoPresenceStore {
    async fn connect(&self, user: &UserId, conn: &str, _now: Millis) -> StoreResult<bool> {
        for _ in 0..MAX_ROUNDS {
            let Some(mut p) = self.load(user).await? else {
                let first = PresenceDoc {
                    user: user.0.clone(),
                    conns: vec![conn.to_owned()],
                    last_seen: None,
                    v: 1,
                };
                match self.inner.run(self.presence.insert_one(&first)).await {
                    Ok(_) => return Ok(true),
                    // Another connection created it first: go round.
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(e),
                }
            };
            if p.conns.iter().any(|c| c == conn) {
                return Ok(false);
            }
            let was_offline = p.conns.is_empty();
            p.conns.push(conn.to_owned());
            p.v += 1;
            if self.swap(&p).await? {
                return Ok(was_offline);
            }
        }
        Err(contended(user))
    }

    async fn disconnect(&self, user: &UserId, conn: &str, now: Millis) -> StoreResult<bool> {
        for _ in 0..MAX_ROUNDS {
            let Some(mut p) = self.load(user).await? else {
                return Ok(false);
            };
            let before = p.conns.len();
            p.conns.retain(|c| c != conn);
            if p.conns.len() == before {
                return Ok(false);
            }
            let last = p.conns.is_empty();
            if last {
                p.last_seen = Some(now);
            }
            p.v += 1;
            if self.swap(&p).await? {
                return Ok(last);
            }
        }
        Err(contended(user))
    }

    async fn get(&self, users: &[UserId]) -> StoreResult<Vec<Presence>> {
        if users.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = users.iter().map(|u| u.0.as_str()).collect();
        let cursor = self
            .inner
            .run(self.presence.find(doc! { "_id": { "$in": ids } }))
            .await?;
        let docs: Vec<PresenceDoc> = self.inner.run(cursor.try_collect()).await?;
        let by_user: HashMap<String, PresenceDoc> =
            docs.into_iter().map(|d| (d.user.clone(), d)).collect();
        Ok(users
            .iter()
            .map(|u| {
                let p = by_user.get(&u.0);
                let online = p.is_some_and(|p| !p.conns.is_empty());
                Presence::of(u.clone(), online, p.and_then(|p| p.last_seen))
            })
            .collect())
    }
}
