//! Key backups in memory.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::model::{ConversationId, UserId};
use crate::store::{Backup, BackupKey, BackupStore, PutKeys, StoreError, StoreResult};
use crate::IdMap;

/// Key backups in memory: each user's current backup and its keys.
#[derive(Default)]
pub struct MemoryBackupStore {
    inner: Mutex<IdMap<UserId, Held>>,
}

struct Held {
    backup: Backup,
    keys: BTreeMap<(ConversationId, String), BackupKey>,
}

impl MemoryBackupStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The user's backup if `version` is the current one.
fn current<'a>(
    all: &'a mut IdMap<UserId, Held>,
    user: &UserId,
    version: &str,
) -> StoreResult<&'a mut Held> {
    match all.get_mut(user) {
        Some(held) if held.backup.version == version => Ok(held),
        _ => Err(StoreError::NotFound),
    }
}

#[async_trait]
impl BackupStore for MemoryBackupStore {
    async fn create(&self, user: &UserId, backup: Backup) -> StoreResult<()> {
        lock(&self.inner).insert(
            user.clone(),
            Held {
                backup,
                keys: BTreeMap::new(),
            },
        );
        Ok(())
    }

    async fn current(&self, user: &UserId) -> StoreResult<Option<Backup>> {
        Ok(lock(&self.inner).get(user).map(|h| h.backup.clone()))
    }

    async fn update(&self, user: &UserId, version: &str, auth_data: String) -> StoreResult<Backup> {
        let mut all = lock(&self.inner);
        let held = current(&mut all, user, version)?;
        held.backup.auth_data = auth_data;
        Ok(held.backup.clone())
    }

    async fn delete(&self, user: &UserId, version: &str) -> StoreResult<()> {
        let mut all = lock(&self.inner);
        current(&mut all, user, version)?;
        all.remove(user);
        Ok(())
    }

    async fn put_keys(
        &self,
        user: &UserId,
        version: &str,
        keys: &[BackupKey],
        max: usize,
    ) -> StoreResult<PutKeys> {
        let mut all = lock(&self.inner);
        let held = current(&mut all, user, version)?;
        let best = BackupKey::best_per_session(keys);
        let new = best
            .iter()
            .filter(|k| !held.keys.contains_key(&(k.conv.clone(), k.session.clone())))
            .count();
        if held.keys.len() + new > max {
            return Ok(PutKeys::Full);
        }
        let mut changed = false;
        for k in best {
            let slot = (k.conv.clone(), k.session.clone());
            if held.keys.get(&slot).is_none_or(|old| k.better_than(old)) {
                held.keys.insert(slot, k.clone());
                changed = true;
            }
        }
        if changed {
            held.backup.etag += 1;
        }
        held.backup.count = held.keys.len() as u64;
        Ok(PutKeys::Stored(held.backup.clone()))
    }

    async fn keys(
        &self,
        user: &UserId,
        version: &str,
        after: Option<(&ConversationId, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<BackupKey>> {
        let mut all = lock(&self.inner);
        let held = current(&mut all, user, version)?;
        let start = match after {
            Some((c, s)) => Bound::Excluded((c.clone(), s.to_owned())),
            None => Bound::Unbounded,
        };
        Ok(held
            .keys
            .range((start, Bound::Unbounded))
            .take(limit)
            .map(|(_, v)| v.clone())
            .collect())
    }
}
