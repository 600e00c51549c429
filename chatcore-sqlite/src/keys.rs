//! The key directory of end-to-end encryption: each device's identity
//! keys, its one-time keys (each handed out at most once: a claim runs on
//! the single writer) and its fallback key.

use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::{DeviceId, UserId};
use chatcore::store::{
    Claimed, DeviceKeys, IdentitySet, KeyCounts, KeyStore, MasterKey, MasterSignature, OneTimeKey,
    StoreResult,
};
use rusqlite::{params, Connection, OptionalExtension};

use crate::db::Db;
use crate::error::map_err;
use crate::limit_i64;

/// The key store.
#[derive(Clone)]
pub struct SqliteKeyStore {
    db: Arc<Db>,
}

impl SqliteKeyStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// The columns [`device_keys`] reads.
const KEY_COLUMNS: &str = "user, device, algorithm, signing_key, agreement_key, signature, \
                           uploaded_at, master_key, master_signature";

fn identity(c: &Connection, user: &str, device: &str) -> StoreResult<Option<DeviceKeys>> {
    c.prepare_cached(&format!(
        "SELECT {KEY_COLUMNS} FROM device_keys WHERE user = ?1 AND device = ?2"
    ))
    .and_then(|mut s| s.query_row([user, device], device_keys).optional())
    .map_err(map_err)
}

fn device_keys(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeviceKeys> {
    let mut keys = DeviceKeys::new(
        (UserId(r.get(0)?), DeviceId(r.get(1)?)),
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    );
    let master: Option<String> = r.get(7)?;
    let signature: Option<String> = r.get(8)?;
    keys.master_signature = master
        .zip(signature)
        .map(|(m, s)| MasterSignature::new(m, s));
    Ok(keys)
}

/// The device's unclaimed one-time keys.
fn unclaimed(c: &Connection, user: &str, device: &str) -> StoreResult<usize> {
    let n: i64 = c
        .prepare_cached(
            "SELECT count(*) FROM one_time_keys WHERE user = ?1 AND device = ?2 AND claimed = 0",
        )
        .and_then(|mut s| s.query_row([user, device], |r| r.get(0)))
        .map_err(map_err)?;
    Ok(usize::try_from(n).unwrap_or(0))
}

#[async_trait]
impl KeyStore for SqliteKeyStore {
    async fn set_identity(&self, keys: &DeviceKeys) -> StoreResult<IdentitySet> {
        let keys = keys.clone();
        self.db
            .write(move |c| {
                if let Some(stored) = identity(c, &keys.user.0, &keys.device.0)? {
                    return Ok(if stored.same_keys(&keys) {
                        IdentitySet::Same
                    } else {
                        IdentitySet::Different
                    });
                }
                c.execute(
                    "INSERT INTO device_keys (user, device, algorithm, signing_key, \
                     agreement_key, signature, uploaded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        keys.user.0,
                        keys.device.0,
                        keys.algorithm,
                        keys.signing_key,
                        keys.agreement_key,
                        keys.signature,
                        keys.uploaded_at
                    ],
                )
                .map_err(map_err)?;
                Ok(IdentitySet::Stored)
            })
            .await
    }

    async fn identities(&self, user: &UserId) -> StoreResult<Vec<DeviceKeys>> {
        let user = user.0.clone();
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {KEY_COLUMNS} FROM device_keys WHERE user = ?1 ORDER BY device"
                    ))
                    .map_err(map_err)?;
                let rows = stmt.query_map([user], device_keys).map_err(map_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
            })
            .await
    }

    async fn add_one_time_keys(
        &self,
        user: &UserId,
        device: &DeviceId,
        keys: &[OneTimeKey],
        max: usize,
    ) -> StoreResult<bool> {
        let (user, device, keys) = (user.0.clone(), device.0.clone(), keys.to_vec());
        self.db
            .write(move |c| {
                // Ids the device used already (claimed ones included) and
                // repeats within the upload are left out.
                let mut used = c
                    .prepare_cached(
                        "SELECT 1 FROM one_time_keys WHERE user = ?1 AND device = ?2 AND id = ?3",
                    )
                    .map_err(map_err)?;
                let mut new: Vec<&OneTimeKey> = Vec::with_capacity(keys.len());
                for k in &keys {
                    let seen: Option<i64> = used
                        .query_row([&user, &device, &k.id], |r| r.get(0))
                        .optional()
                        .map_err(map_err)?;
                    if seen.is_none() && !new.iter().any(|n| n.id == k.id) {
                        new.push(k);
                    }
                }
                if unclaimed(c, &user, &device)? + new.len() > max {
                    return Ok(false);
                }
                let mut insert = c
                    .prepare_cached(
                        "INSERT INTO one_time_keys (user, device, id, key, signature, claimed) \
                         VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                    )
                    .map_err(map_err)?;
                for k in new {
                    insert
                        .execute(params![user, device, k.id, k.key, k.signature])
                        .map_err(map_err)?;
                }
                Ok(true)
            })
            .await
    }

    async fn set_fallback(
        &self,
        user: &UserId,
        device: &DeviceId,
        key: &OneTimeKey,
    ) -> StoreResult<()> {
        let (user, device, key) = (user.0.clone(), device.0.clone(), key.clone());
        self.db
            .write(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO fallback_keys (user, device, id, key, signature, \
                     used) VALUES (?1, ?2, ?3, ?4, ?5, 0)",
                    params![user, device, key.id, key.key, key.signature],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn counts(&self, user: &UserId, device: &DeviceId) -> StoreResult<KeyCounts> {
        let (user, device) = (user.0.clone(), device.0.clone());
        self.db
            .read(move |c| {
                let mut counts = KeyCounts::default();
                counts.one_time = unclaimed(c, &user, &device)?;
                let used: Option<bool> = c
                    .query_row(
                        "SELECT used FROM fallback_keys WHERE user = ?1 AND device = ?2",
                        [&user, &device],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                counts.fallback_unused = used == Some(false);
                Ok(counts)
            })
            .await
    }

    async fn claim(&self, targets: &[(UserId, DeviceId)]) -> StoreResult<Vec<Claimed>> {
        let targets = targets.to_vec();
        self.db
            .write(move |c| {
                let mut out = Vec::with_capacity(targets.len());
                for (user, device) in &targets {
                    let one: Option<(i64, String, String, String)> = c
                        .prepare_cached(
                            "SELECT n, id, key, signature FROM one_time_keys WHERE user = ?1 AND \
                             device = ?2 AND claimed = 0 ORDER BY n LIMIT ?3",
                        )
                        .and_then(|mut s| {
                            s.query_row(params![user.0, device.0, limit_i64(1)], |r| {
                                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                            })
                            .optional()
                        })
                        .map_err(map_err)?;
                    if let Some((n, id, key, signature)) = one {
                        // The id stays, so that it is never accepted again;
                        // the key material goes.
                        c.execute(
                            "UPDATE one_time_keys SET claimed = 1, key = '', signature = '' \
                             WHERE n = ?1",
                            [n],
                        )
                        .map_err(map_err)?;
                        out.push(Claimed::new(
                            user.clone(),
                            device.clone(),
                            OneTimeKey::new(id, key, signature),
                            false,
                        ));
                        continue;
                    }
                    let fallback: Option<(String, String, String)> = c
                        .query_row(
                            "UPDATE fallback_keys SET used = 1 WHERE user = ?1 AND device = ?2 \
                             RETURNING id, key, signature",
                            [&user.0, &device.0],
                            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                        )
                        .optional()
                        .map_err(map_err)?;
                    if let Some((id, key, signature)) = fallback {
                        out.push(Claimed::new(
                            user.clone(),
                            device.clone(),
                            OneTimeKey::new(id, key, signature),
                            true,
                        ));
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<()> {
        let (user, device) = (user.0.clone(), device.0.clone());
        self.db
            .write(move |c| {
                for table in ["device_keys", "one_time_keys", "fallback_keys"] {
                    c.execute(
                        &format!("DELETE FROM {table} WHERE user = ?1 AND device = ?2"),
                        [&user, &device],
                    )
                    .map_err(map_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn set_master_key(&self, key: &MasterKey) -> StoreResult<bool> {
        let key = key.clone();
        self.db
            .write(move |c| {
                let changed = c
                    .execute(
                        "INSERT INTO master_keys (user, key, signature, uploaded_at) \
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (user) DO UPDATE SET \
                         key = excluded.key, signature = excluded.signature, \
                         uploaded_at = excluded.uploaded_at WHERE key <> excluded.key",
                        params![key.user.0, key.key, key.signature, key.uploaded_at],
                    )
                    .map_err(map_err)?;
                Ok(changed > 0)
            })
            .await
    }

    async fn master_keys(&self, users: &[UserId]) -> StoreResult<Vec<MasterKey>> {
        let users: Vec<String> = users.iter().map(|u| u.0.clone()).collect();
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT user, key, signature, uploaded_at FROM master_keys WHERE user = ?1",
                    )
                    .map_err(map_err)?;
                let mut out: Vec<MasterKey> = Vec::new();
                for u in &users {
                    if out.iter().any(|k| k.user.0 == *u) {
                        continue;
                    }
                    let found = stmt
                        .query_row([u], |r| {
                            Ok(MasterKey::new(
                                UserId(r.get(0)?),
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                            ))
                        })
                        .optional()
                        .map_err(map_err)?;
                    out.extend(found);
                }
                Ok(out)
            })
            .await
    }

    async fn sign_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        signature: &MasterSignature,
    ) -> StoreResult<bool> {
        let (user, device, s) = (user.0.clone(), device.0.clone(), signature.clone());
        self.db
            .write(move |c| {
                let n = c
                    .execute(
                        "UPDATE device_keys SET master_key = ?3, master_signature = ?4 \
                         WHERE user = ?1 AND device = ?2",
                        params![user, device, s.master_key, s.signature],
                    )
                    .map_err(map_err)?;
                Ok(n > 0)
            })
            .await
    }
}
