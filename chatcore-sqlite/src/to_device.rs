//! To-device queues: payloads for one device, kept until it acknowledges
//! them.

use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::{DeviceId, UserId};
use chatcore::store::{Queued, StoreResult, ToDevice, ToDeviceStore};
use rusqlite::{params, OptionalExtension};

use crate::db::Db;
use crate::error::map_err;
use crate::limit_i64;

/// The to-device store. Queueing runs on the single writer, so the bound
/// per device holds against concurrent queueing and acks.
#[derive(Clone)]
pub struct SqliteToDeviceStore {
    db: Arc<Db>,
}

impl SqliteToDeviceStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl ToDeviceStore for SqliteToDeviceStore {
    async fn enqueue(&self, items: &[ToDevice], max: usize) -> StoreResult<Vec<Queued>> {
        let items = items.to_vec();
        self.db
            .write(move |c| {
                let mut out = Vec::with_capacity(items.len());
                for m in &items {
                    let twin: Option<i64> = c
                        .prepare_cached(
                            "SELECT 1 FROM to_device WHERE to_user = ?1 AND to_device = ?2 AND \
                             from_device = ?3 AND id = ?4",
                        )
                        .and_then(|mut s| {
                            s.query_row(
                                [&m.to_user.0, &m.to_device.0, &m.from_device.0, &m.id],
                                |r| r.get(0),
                            )
                            .optional()
                        })
                        .map_err(map_err)?;
                    if twin.is_some() {
                        out.push(Queued::Duplicate);
                        continue;
                    }
                    let waiting: i64 = c
                        .prepare_cached(
                            "SELECT count(*) FROM to_device WHERE to_user = ?1 AND to_device = ?2",
                        )
                        .and_then(|mut s| s.query_row([&m.to_user.0, &m.to_device.0], |r| r.get(0)))
                        .map_err(map_err)?;
                    if usize::try_from(waiting).unwrap_or(usize::MAX) >= max {
                        out.push(Queued::Full);
                        continue;
                    }
                    c.prepare_cached(
                        "INSERT INTO to_device (to_user, to_device, from_user, from_device, id, \
                         kind, payload, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )
                    .and_then(|mut s| {
                        s.execute(params![
                            m.to_user.0,
                            m.to_device.0,
                            m.from_user.0,
                            m.from_device.0,
                            m.id,
                            m.kind,
                            m.payload,
                            m.ts
                        ])
                    })
                    .map_err(map_err)?;
                    out.push(Queued::Stored);
                }
                Ok(out)
            })
            .await
    }

    async fn pending(
        &self,
        user: &UserId,
        device: &DeviceId,
        limit: usize,
    ) -> StoreResult<Vec<ToDevice>> {
        let (user, device) = (user.0.clone(), device.0.clone());
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT id, from_user, from_device, to_user, to_device, kind, payload, ts \
                         FROM to_device WHERE to_user = ?1 AND to_device = ?2 ORDER BY n LIMIT ?3",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(params![user, device, limit_i64(limit)], |r| {
                        Ok(ToDevice::new(
                            r.get(0)?,
                            (UserId(r.get(1)?), DeviceId(r.get(2)?)),
                            (UserId(r.get(3)?), DeviceId(r.get(4)?)),
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                        ))
                    })
                    .map_err(map_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
            })
            .await
    }

    async fn ack(
        &self,
        user: &UserId,
        device: &DeviceId,
        ids: &[(DeviceId, String)],
    ) -> StoreResult<()> {
        let (user, device, ids) = (user.0.clone(), device.0.clone(), ids.to_vec());
        self.db
            .write(move |c| {
                let mut delete = c
                    .prepare_cached(
                        "DELETE FROM to_device WHERE to_user = ?1 AND to_device = ?2 AND \
                         from_device = ?3 AND id = ?4",
                    )
                    .map_err(map_err)?;
                for (from, id) in &ids {
                    delete
                        .execute(params![user, device, from.0, id])
                        .map_err(map_err)?;
                }
                Ok(())
            })
            .await
    }

    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<()> {
        let (user, device) = (user.0.clone(), device.0.clone());
        self.db
            .write(move |c| {
                c.execute(
                    "DELETE FROM to_device WHERE to_user = ?1 AND to_device = ?2",
                    [user, device],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }
}
