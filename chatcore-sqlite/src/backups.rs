//! Encrypted key backups: each user's current backup in `backups`, its
//! keys in `backup_keys` (deleted with it by the foreign key's cascade).
//! Every change runs on the single writer inside its savepoint, so the
//! bound on keys and the better-copy rule hold against concurrent puts,
//! and a refused put leaves nothing behind.

use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::{ConversationId, UserId};
use chatcore::store::{Backup, BackupKey, BackupStore, PutKeys, StoreError, StoreResult};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::db::Db;
use crate::error::map_err;
use crate::limit_i64;

/// The key backup store.
#[derive(Clone)]
pub struct SqliteBackupStore {
    db: Arc<Db>,
}

impl SqliteBackupStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

const BACKUP_COLUMNS: &str = "version, algorithm, auth_data, count, etag, created_at";

fn backup_of(r: &Row<'_>) -> rusqlite::Result<Backup> {
    let mut b = Backup::new(r.get(0)?, r.get(1)?, r.get(2)?, r.get(5)?);
    b.count = u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0);
    b.etag = u64::try_from(r.get::<_, i64>(4)?).unwrap_or(0);
    Ok(b)
}

fn index(n: i64) -> StoreResult<u32> {
    u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("backup key index {n}")))
}

/// The user's backup if `version` is the current one.
fn current_at(c: &Connection, user: &str, version: &str) -> StoreResult<Backup> {
    c.prepare_cached(&format!(
        "SELECT {BACKUP_COLUMNS} FROM backups WHERE user = ?1 AND version = ?2"
    ))
    .and_then(|mut s| s.query_row([user, version], backup_of).optional())
    .map_err(map_err)?
    .ok_or(StoreError::NotFound)
}

#[async_trait]
impl BackupStore for SqliteBackupStore {
    async fn create(&self, user: &UserId, backup: Backup) -> StoreResult<()> {
        let user = user.0.clone();
        self.db
            .write(move |c| {
                // The old backup's keys go with it (ON DELETE CASCADE).
                c.prepare_cached("DELETE FROM backups WHERE user = ?1")
                    .and_then(|mut s| s.execute([&user]))
                    .map_err(map_err)?;
                c.prepare_cached(&format!(
                    "INSERT INTO backups (user, {BACKUP_COLUMNS}) VALUES (?1, ?2, ?3, ?4, 0, 0, ?5)"
                ))
                .and_then(|mut s| {
                    s.execute(params![
                        user,
                        backup.version,
                        backup.algorithm,
                        backup.auth_data,
                        backup.created_at
                    ])
                })
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn current(&self, user: &UserId) -> StoreResult<Option<Backup>> {
        let user = user.0.clone();
        self.db
            .read(move |c| {
                c.prepare_cached(&format!(
                    "SELECT {BACKUP_COLUMNS} FROM backups WHERE user = ?1"
                ))
                .and_then(|mut s| s.query_row([&user], backup_of).optional())
                .map_err(map_err)
            })
            .await
    }

    async fn update(&self, user: &UserId, version: &str, auth_data: String) -> StoreResult<Backup> {
        let (user, version) = (user.0.clone(), version.to_owned());
        self.db
            .write(move |c| {
                let changed = c
                    .prepare_cached(
                        "UPDATE backups SET auth_data = ?3 WHERE user = ?1 AND version = ?2",
                    )
                    .and_then(|mut s| s.execute(params![user, version, auth_data]))
                    .map_err(map_err)?;
                if changed == 0 {
                    return Err(StoreError::NotFound);
                }
                current_at(c, &user, &version)
            })
            .await
    }

    async fn delete(&self, user: &UserId, version: &str) -> StoreResult<()> {
        let (user, version) = (user.0.clone(), version.to_owned());
        self.db
            .write(move |c| {
                let gone = c
                    .prepare_cached("DELETE FROM backups WHERE user = ?1 AND version = ?2")
                    .and_then(|mut s| s.execute([&user, &version]))
                    .map_err(map_err)?;
                if gone == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
            .await
    }

    async fn put_keys(
        &self,
        user: &UserId,
        version: &str,
        keys: &[BackupKey],
        max: usize,
    ) -> StoreResult<PutKeys> {
        let (user, version) = (user.0.clone(), version.to_owned());
        let best: Vec<BackupKey> = BackupKey::best_per_session(keys)
            .into_iter()
            .cloned()
            .collect();
        self.db
            .write(move |c| {
                let backup = current_at(c, &user, &version)?;
                let mut stored = Vec::with_capacity(best.len());
                for k in &best {
                    let old: Option<(i64, i64, bool)> = c
                        .prepare_cached(
                            "SELECT first_index, forwarded, verified FROM backup_keys \
                             WHERE user = ?1 AND conv = ?2 AND session = ?3",
                        )
                        .and_then(|mut s| {
                            s.query_row(params![user, k.conv.0, k.session], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                            })
                            .optional()
                        })
                        .map_err(map_err)?;
                    let old = match old {
                        Some((fi, fw, verified)) => Some(BackupKey::new(
                            k.conv.clone(),
                            k.session.clone(),
                            (index(fi)?, index(fw)?, verified),
                            Vec::new(),
                        )),
                        None => None,
                    };
                    stored.push(old);
                }
                let new = stored.iter().filter(|o| o.is_none()).count();
                let count = usize::try_from(backup.count).unwrap_or(usize::MAX);
                if count.saturating_add(new) > max {
                    return Ok(PutKeys::Full);
                }
                let mut changed = false;
                for (k, old) in best.iter().zip(&stored) {
                    if old.as_ref().is_some_and(|o| !k.better_than(o)) {
                        continue;
                    }
                    c.prepare_cached(
                        "INSERT OR REPLACE INTO backup_keys (user, conv, session, first_index, \
                         forwarded, verified, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            user,
                            k.conv.0,
                            k.session,
                            k.first_index,
                            k.forwarded,
                            k.verified,
                            k.data
                        ])
                    })
                    .map_err(map_err)?;
                    changed = true;
                }
                c.prepare_cached(
                    "UPDATE backups SET count = count + ?3, etag = etag + ?4 \
                     WHERE user = ?1 AND version = ?2",
                )
                .and_then(|mut s| {
                    s.execute(params![user, version, limit_i64(new), i64::from(changed)])
                })
                .map_err(map_err)?;
                current_at(c, &user, &version).map(PutKeys::Stored)
            })
            .await
    }

    async fn keys(
        &self,
        user: &UserId,
        version: &str,
        after: Option<(&ConversationId, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<BackupKey>> {
        let (user, version) = (user.0.clone(), version.to_owned());
        let after = after.map(|(c, s)| (c.0.clone(), s.to_owned()));
        self.db
            .read(move |c| {
                current_at(c, &user, &version)?;
                // Before every conversation id: the empty string.
                let (conv, session) = after.unwrap_or_default();
                let mut stmt = c
                    .prepare_cached(
                        "SELECT conv, session, first_index, forwarded, verified, data \
                         FROM backup_keys WHERE user = ?1 AND (conv, session) > (?2, ?3) \
                         ORDER BY conv, session LIMIT ?4",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(params![user, conv, session, limit_i64(limit)], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, i64>(3)?,
                            r.get::<_, bool>(4)?,
                            r.get::<_, Vec<u8>>(5)?,
                        ))
                    })
                    .map_err(map_err)?;
                let mut out = Vec::new();
                for row in rows {
                    let (conv, session, fi, fw, verified, data) = row.map_err(map_err)?;
                    out.push(BackupKey::new(
                        ConversationId(conv),
                        session,
                        (index(fi)?, index(fw)?, verified),
                        data,
                    ));
                }
                Ok(out)
            })
            .await
    }
}
