//! Relations in memory: one record per pair, and each user's pairs in key
//! order for the listings.

use std::collections::BTreeSet;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::model::UserId;
use crate::store::{pair_key, ContactStore, ContactView, Relation, StoreResult, Written};
use crate::IdMap;

/// Contacts, requests and blocks in memory.
#[derive(Default)]
pub struct MemoryContactStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    by_key: IdMap<String, Relation>,
    /// Each user's pair keys, ordered: the listings' order.
    by_user: IdMap<UserId, BTreeSet<String>>,
}

impl MemoryContactStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ContactStore for MemoryContactStore {
    async fn relation(&self, a: &UserId, b: &UserId) -> StoreResult<Option<Relation>> {
        Ok(lock(&self.inner).by_key.get(&pair_key(a, b)).cloned())
    }

    async fn relations(&self, user: &UserId, others: &[UserId]) -> StoreResult<Vec<Relation>> {
        let s = lock(&self.inner);
        Ok(others
            .iter()
            .filter_map(|o| s.by_key.get(&pair_key(user, o)).cloned())
            .collect())
    }

    async fn change(&self, relation: &Relation) -> StoreResult<Written> {
        let mut s = lock(&self.inner);
        let key = relation.key();
        let stored = s.by_key.get(&key).map_or(0, |r| r.version);
        if stored + 1 != relation.version {
            return Ok(Written::Stale);
        }
        for user in &relation.users {
            s.by_user
                .entry(user.clone())
                .or_default()
                .insert(key.clone());
        }
        s.by_key.insert(key, relation.clone());
        Ok(Written::Done)
    }

    async fn list(
        &self,
        user: &UserId,
        view: ContactView,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Relation>> {
        let s = lock(&self.inner);
        let Some(keys) = s.by_user.get(user) else {
            return Ok(Vec::new());
        };
        let from = match after {
            Some(after) => std::ops::Bound::Excluded(after.to_owned()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(keys
            .range((from, std::ops::Bound::Unbounded))
            .filter_map(|k| s.by_key.get(k))
            .filter(|r| view.shows(r, user))
            .take(limit)
            .cloned()
            .collect())
    }
}
