//! Session tokens and password-reset tokens, both stored by their hash.

use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::{DeviceId, Millis, UserId};
use chatcore::store::{
    ResetToken, ResetTokenStore, SessionRecord, SessionStore, StoreError, StoreResult,
};
use rusqlite::{params, OptionalExtension};

use crate::db::Db;
use crate::error::map_err;

/// The columns [`record`] reads, in its order.
macro_rules! columns {
    () => {
        "token_hash, user, device, device_name, created_at, expires_at, last_active"
    };
}

/// How long an expired reset token is kept before a later insert deletes
/// it: long enough to tell "expired" from "never existed" in the logs.
const RESET_GRACE_MS: Millis = 24 * 3_600_000;

/// The session-token store. Expired sessions read as absent and are
/// deleted when the same user signs in again.
#[derive(Clone)]
pub struct SqliteSessionStore {
    db: Arc<Db>,
}

impl SqliteSessionStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl SessionStore for SqliteSessionStore {
    async fn create(&self, session: SessionRecord) -> StoreResult<()> {
        self.db
            .write(move |c| {
                c.execute(
                    "DELETE FROM sessions WHERE user = ?1 AND expires_at <= ?2",
                    params![session.user.0, session.created_at],
                )
                .map_err(map_err)?;
                c.prepare_cached(
                    "INSERT INTO sessions (token_hash, user, device, device_name, created_at, \
                     expires_at, last_active) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .and_then(|mut s| {
                    s.execute(params![
                        session.token_hash,
                        session.user.0,
                        session.device.0,
                        session.device_name,
                        session.created_at,
                        session.expires_at,
                        session.last_active
                    ])
                })
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn get(&self, token_hash: &str, now: Millis) -> StoreResult<Option<SessionRecord>> {
        let token_hash = token_hash.to_owned();
        self.db
            .read(move |c| {
                c.prepare_cached(concat!(
                    "SELECT ",
                    columns!(),
                    " FROM sessions WHERE token_hash = ?1 AND expires_at > ?2"
                ))
                .and_then(|mut s| s.query_row(params![token_hash, now], record).optional())
                .map_err(map_err)
            })
            .await
    }

    async fn extend(&self, token_hash: &str, now: Millis, expires_at: Millis) -> StoreResult<()> {
        let token_hash = token_hash.to_owned();
        self.db
            .write(move |c| {
                let n = c
                    .execute(
                        "UPDATE sessions SET expires_at = ?2, last_active = ?3 WHERE token_hash = ?1",
                        params![token_hash, expires_at, now],
                    )
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            })
            .await
    }

    async fn revoke(&self, token_hash: &str) -> StoreResult<bool> {
        let token_hash = token_hash.to_owned();
        self.db
            .write(move |c| {
                c.execute("DELETE FROM sessions WHERE token_hash = ?1", [token_hash])
                    .map(|n| n > 0)
                    .map_err(map_err)
            })
            .await
    }

    async fn revoke_all(&self, user: &UserId, keep: Option<&str>) -> StoreResult<u64> {
        let (user, keep) = (user.0.clone(), keep.map(str::to_owned));
        self.db
            .write(move |c| {
                c.execute(
                    "DELETE FROM sessions WHERE user = ?1 AND token_hash IS NOT ?2",
                    params![user, keep],
                )
                .map(|n| n as u64)
                .map_err(map_err)
            })
            .await
    }

    async fn devices(&self, user: &UserId, now: Millis) -> StoreResult<Vec<SessionRecord>> {
        let user = user.0.clone();
        self.db
            .read(move |c| {
                let mut s = c
                    .prepare_cached(concat!(
                        "SELECT ",
                        columns!(),
                        " FROM sessions WHERE user = ?1 AND expires_at > ?2 \
                         ORDER BY created_at, device, token_hash"
                    ))
                    .map_err(map_err)?;
                let rows = s.query_map(params![user, now], record).map_err(map_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(map_err)
            })
            .await
    }

    async fn rename_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        name: &str,
    ) -> StoreResult<bool> {
        let (user, device, name) = (user.0.clone(), device.0.clone(), name.to_owned());
        self.db
            .write(move |c| {
                c.execute(
                    "UPDATE sessions SET device_name = ?3 WHERE user = ?1 AND device = ?2",
                    params![user, device, name],
                )
                .map(|n| n > 0)
                .map_err(map_err)
            })
            .await
    }

    async fn revoke_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<bool> {
        let (user, device) = (user.0.clone(), device.0.clone());
        self.db
            .write(move |c| {
                c.execute(
                    "DELETE FROM sessions WHERE user = ?1 AND device = ?2",
                    params![user, device],
                )
                .map(|n| n > 0)
                .map_err(map_err)
            })
            .await
    }
}

/// A session from a row of `columns!()`.
fn record(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord::new(
        r.get(0)?,
        UserId(r.get(1)?),
        DeviceId(r.get(2)?),
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    )
    .with_last_active(r.get(6)?))
}

/// The password-reset token store. `take` deletes and reads in one
/// statement on the single writer, so of two concurrent takes one wins.
#[derive(Clone)]
pub struct SqliteResetTokenStore {
    db: Arc<Db>,
}

impl SqliteResetTokenStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl ResetTokenStore for SqliteResetTokenStore {
    async fn insert(&self, token: ResetToken) -> StoreResult<()> {
        self.db
            .write(move |c| {
                // Keep the table bounded, as the memory store does.
                c.execute(
                    "DELETE FROM reset_tokens WHERE expires_at <= ?1",
                    [token.expires_at.saturating_sub(RESET_GRACE_MS)],
                )
                .map_err(map_err)?;
                c.execute(
                    "INSERT OR REPLACE INTO reset_tokens (token_hash, user, expires_at) VALUES \
                     (?1, ?2, ?3)",
                    params![token.token_hash, token.user.0, token.expires_at],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn get(&self, token_hash: &str, now: Millis) -> StoreResult<Option<UserId>> {
        let token_hash = token_hash.to_owned();
        self.db
            .read(move |c| {
                c.query_row(
                    "SELECT user FROM reset_tokens WHERE token_hash = ?1 AND expires_at > ?2",
                    params![token_hash, now],
                    |r| r.get(0).map(UserId),
                )
                .optional()
                .map_err(map_err)
            })
            .await
    }

    async fn take(&self, token_hash: &str, now: Millis) -> StoreResult<Option<UserId>> {
        let token_hash = token_hash.to_owned();
        self.db
            .write(move |c| {
                let taken: Option<(String, Millis)> = c
                    .query_row(
                        "DELETE FROM reset_tokens WHERE token_hash = ?1 RETURNING user, expires_at",
                        [token_hash],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(map_err)?;
                Ok(taken
                    .filter(|(_, expires_at)| now < *expires_at)
                    .map(|(user, _)| UserId(user)))
            })
            .await
    }

    async fn revoke_user(&self, user: &UserId) -> StoreResult<u64> {
        let user = user.0.clone();
        self.db
            .write(move |c| {
                c.execute("DELETE FROM reset_tokens WHERE user = ?1", [user])
                    .map(|n| n as u64)
                    .map_err(map_err)
            })
            .await
    }
}
