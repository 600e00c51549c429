//! Presence: the connections of this process, and when each user was last
//! seen, which survives a restart.

use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::{Millis, Presence, UserId};
use chatcore::store::{PresenceStore, StoreResult};
use rusqlite::{params, OptionalExtension};

use crate::db::Db;
use crate::error::map_err;

/// The presence store. Only one process serves a database file, so the
/// connections left by a previous process are dropped at open (its users
/// keep the last seen they had).
#[derive(Clone)]
pub struct SqlitePresenceStore {
    db: Arc<Db>,
}

impl SqlitePresenceStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl PresenceStore for SqlitePresenceStore {
    async fn connect(&self, user: &UserId, conn: &str, _now: Millis) -> StoreResult<bool> {
        let (user, conn) = (user.0.clone(), conn.to_owned());
        self.db
            .write(move |c| {
                let before: i64 = c
                    .query_row(
                        "SELECT count(*) FROM presence_conns WHERE user = ?1",
                        [&user],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?;
                c.execute(
                    "INSERT OR IGNORE INTO presence_conns (user, conn) VALUES (?1, ?2)",
                    params![user, conn],
                )
                .map_err(map_err)?;
                Ok(before == 0)
            })
            .await
    }

    async fn disconnect(&self, user: &UserId, conn: &str, now: Millis) -> StoreResult<bool> {
        let (user, conn) = (user.0.clone(), conn.to_owned());
        self.db
            .write(move |c| {
                let removed = c
                    .execute(
                        "DELETE FROM presence_conns WHERE user = ?1 AND conn = ?2",
                        params![user, conn],
                    )
                    .map_err(map_err)?;
                if removed == 0 {
                    return Ok(false);
                }
                let left: i64 = c
                    .query_row(
                        "SELECT count(*) FROM presence_conns WHERE user = ?1",
                        [&user],
                        |r| r.get(0),
                    )
                    .map_err(map_err)?;
                if left > 0 {
                    return Ok(false);
                }
                c.execute(
                    "INSERT INTO last_seen (user, at) VALUES (?1, ?2) ON CONFLICT (user) DO \
                     UPDATE SET at = excluded.at",
                    params![user, now],
                )
                .map_err(map_err)?;
                Ok(true)
            })
            .await
    }

    async fn get(&self, users: &[UserId]) -> StoreResult<Vec<Presence>> {
        let users = users.to_vec();
        self.db
            .read(move |c| {
                let mut online = c
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM presence_conns WHERE user = ?1)")
                    .map_err(map_err)?;
                let mut seen = c
                    .prepare_cached("SELECT at FROM last_seen WHERE user = ?1")
                    .map_err(map_err)?;
                let mut out = Vec::with_capacity(users.len());
                for u in users {
                    let on: bool = online.query_row([&u.0], |r| r.get(0)).map_err(map_err)?;
                    let at: Option<Millis> = seen
                        .query_row([&u.0], |r| r.get(0))
                        .optional()
                        .map_err(map_err)?;
                    out.push(Presence::of(u, on, at));
                }
                Ok(out)
            })
            .await
    }
}
