//! To-device queues in memory.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::model::{DeviceId, UserId};
use crate::store::{Queued, StoreResult, ToDevice, ToDeviceStore};
use crate::IdMap;

/// To-device queues in memory, one per target device.
#[derive(Default)]
pub struct MemoryToDeviceStore {
    inner: Mutex<IdMap<UserId, BTreeMap<DeviceId, VecDeque<ToDevice>>>>,
}

impl MemoryToDeviceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ToDeviceStore for MemoryToDeviceStore {
    async fn enqueue(&self, items: &[ToDevice], max: usize) -> StoreResult<Vec<Queued>> {
        let mut all = lock(&self.inner);
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let q = all
                .entry(item.to_user.clone())
                .or_default()
                .entry(item.to_device.clone())
                .or_default();
            let twin = q
                .iter()
                .any(|m| m.from_device == item.from_device && m.id == item.id);
            out.push(if twin {
                Queued::Duplicate
            } else if q.len() >= max {
                Queued::Full
            } else {
                q.push_back(item.clone());
                Queued::Stored
            });
        }
        Ok(out)
    }

    async fn pending(
        &self,
        user: &UserId,
        device: &DeviceId,
        limit: usize,
    ) -> StoreResult<Vec<ToDevice>> {
        Ok(lock(&self.inner)
            .get(user)
            .and_then(|ds| ds.get(device))
            .map(|q| q.iter().take(limit).cloned().collect())
            .unwrap_or_default())
    }

    async fn ack(
        &self,
        user: &UserId,
        device: &DeviceId,
        ids: &[(DeviceId, String)],
    ) -> StoreResult<()> {
        if let Some(q) = lock(&self.inner)
            .get_mut(user)
            .and_then(|ds| ds.get_mut(device))
        {
            q.retain(|m| !ids.iter().any(|(d, id)| *d == m.from_device && *id == m.id));
        }
        Ok(())
    }

    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<()> {
        if let Some(ds) = lock(&self.inner).get_mut(user) {
            ds.remove(device);
        }
        Ok(())
    }
}
