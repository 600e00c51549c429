//! The key directory in memory.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::model::{DeviceId, UserId};
use crate::store::{
    Claimed, DeviceKeys, IdentitySet, KeyCounts, KeyStore, MasterKey, MasterSignature, OneTimeKey,
    StoreResult,
};
use crate::IdMap;

/// Device keys in memory.
#[derive(Default)]
pub struct MemoryKeyStore {
    inner: Mutex<IdMap<UserId, BTreeMap<DeviceId, Device>>>,
    masters: Mutex<IdMap<UserId, MasterKey>>,
}

#[derive(Default)]
struct Device {
    identity: Option<DeviceKeys>,
    /// Unclaimed one-time keys, oldest first.
    one_time: VecDeque<OneTimeKey>,
    /// Every one-time key id the device ever uploaded.
    used_ids: BTreeSet<String>,
    /// The fallback key, and whether it was handed out since it was set.
    fallback: Option<(OneTimeKey, bool)>,
}

impl MemoryKeyStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn set_identity(&self, keys: &DeviceKeys) -> StoreResult<IdentitySet> {
        let mut all = lock(&self.inner);
        let d = all
            .entry(keys.user.clone())
            .or_default()
            .entry(keys.device.clone())
            .or_default();
        Ok(match &d.identity {
            Some(k) if k.same_keys(keys) => IdentitySet::Same,
            Some(_) => IdentitySet::Different,
            None => {
                let mut k = keys.clone();
                // Signed by the master key later, never at upload.
                k.master_signature = None;
                d.identity = Some(k);
                IdentitySet::Stored
            }
        })
    }

    async fn identities(&self, user: &UserId) -> StoreResult<Vec<DeviceKeys>> {
        Ok(lock(&self.inner)
            .get(user)
            .into_iter()
            .flat_map(|devices| devices.values())
            .filter_map(|d| d.identity.clone())
            .collect())
    }

    async fn add_one_time_keys(
        &self,
        user: &UserId,
        device: &DeviceId,
        keys: &[OneTimeKey],
        max: usize,
    ) -> StoreResult<bool> {
        let mut all = lock(&self.inner);
        let d = all
            .entry(user.clone())
            .or_default()
            .entry(device.clone())
            .or_default();
        let mut new: Vec<&OneTimeKey> = Vec::with_capacity(keys.len());
        for k in keys {
            if !d.used_ids.contains(&k.id) && !new.iter().any(|n| n.id == k.id) {
                new.push(k);
            }
        }
        if d.one_time.len() + new.len() > max {
            return Ok(false);
        }
        for k in new {
            d.used_ids.insert(k.id.clone());
            d.one_time.push_back(k.clone());
        }
        Ok(true)
    }

    async fn set_fallback(
        &self,
        user: &UserId,
        device: &DeviceId,
        key: &OneTimeKey,
    ) -> StoreResult<()> {
        lock(&self.inner)
            .entry(user.clone())
            .or_default()
            .entry(device.clone())
            .or_default()
            .fallback = Some((key.clone(), false));
        Ok(())
    }

    async fn counts(&self, user: &UserId, device: &DeviceId) -> StoreResult<KeyCounts> {
        let all = lock(&self.inner);
        let Some(d) = all.get(user).and_then(|ds| ds.get(device)) else {
            return Ok(KeyCounts::default());
        };
        Ok(KeyCounts {
            one_time: d.one_time.len(),
            fallback_unused: d.fallback.as_ref().is_some_and(|(_, used)| !used),
        })
    }

    async fn claim(&self, targets: &[(UserId, DeviceId)]) -> StoreResult<Vec<Claimed>> {
        let mut all = lock(&self.inner);
        let mut out = Vec::with_capacity(targets.len());
        for (user, device) in targets {
            let Some(d) = all.get_mut(user).and_then(|ds| ds.get_mut(device)) else {
                continue;
            };
            if let Some(key) = d.one_time.pop_front() {
                out.push(Claimed {
                    user: user.clone(),
                    device: device.clone(),
                    key,
                    fallback: false,
                });
            } else if let Some((key, used)) = &mut d.fallback {
                *used = true;
                out.push(Claimed {
                    user: user.clone(),
                    device: device.clone(),
                    key: key.clone(),
                    fallback: true,
                });
            }
        }
        Ok(out)
    }

    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<()> {
        if let Some(ds) = lock(&self.inner).get_mut(user) {
            ds.remove(device);
        }
        Ok(())
    }

    async fn set_master_key(&self, key: &MasterKey) -> StoreResult<bool> {
        let mut masters = lock(&self.masters);
        if masters.get(&key.user).is_some_and(|k| k.key == key.key) {
            return Ok(false);
        }
        masters.insert(key.user.clone(), key.clone());
        Ok(true)
    }

    async fn master_keys(&self, users: &[UserId]) -> StoreResult<Vec<MasterKey>> {
        let masters = lock(&self.masters);
        let mut out: Vec<MasterKey> = Vec::new();
        for u in users {
            if let Some(k) = masters.get(u) {
                if !out.iter().any(|o| o.user == *u) {
                    out.push(k.clone());
                }
            }
        }
        Ok(out)
    }

    async fn sign_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        signature: &MasterSignature,
    ) -> StoreResult<bool> {
        let mut all = lock(&self.inner);
        let identity = all
            .get_mut(user)
            .and_then(|ds| ds.get_mut(device))
            .and_then(|d| d.identity.as_mut());
        Ok(match identity {
            Some(k) => {
                k.master_signature = Some(signature.clone());
                true
            }
            None => false,
        })
    }
}
