//! The conversations the writer has touched, kept in memory.
//!
//! The writer thread is the only writer of the file, so it can keep what it
//! knows of a conversation (kind, members, blocks, pending users, head)
//! instead of reading it back for every append. Two levels:
//! - `working`: the writer's own view, inside the group being written
//!   (uncommitted changes included). Only writer closures touch it.
//! - `published`: committed states, copied from `working` by the writer
//!   right after each successful commit, in commit order. Readers use it
//!   for `MessageStore::conversation`; they never insert into it (a reader's
//!   snapshot may be older than what the writer has published since), so
//!   it never goes back in time.
//!
//! When a write fails, or a group's commit does, the conversations it
//! touched are dropped from both levels: they are read from the file again
//! when next needed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use chatcore::store::{ConversationState, Member};

/// Beyond this weight (a conversation weighs one plus its members and
/// pending users, about 100 bytes each), a level is emptied at the next
/// commit (the hot conversations come back with their next write): about
/// 100 MiB per level at most, whatever the groups' sizes.
const MAX_WEIGHT: usize = 1_000_000;

fn weight(state: &ConversationState) -> usize {
    1 + state.members.len() + state.pending.len()
}

/// A map of conversations that knows its weight.
struct Weighed<V> {
    map: HashMap<String, V>,
    weight: usize,
}

impl<V> Default for Weighed<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            weight: 0,
        }
    }
}

impl<V> Weighed<V> {
    fn insert(&mut self, conv: String, value: V, w: usize, old: impl Fn(&V) -> usize) {
        if let Some(prev) = self.map.insert(conv, value) {
            self.weight = self.weight.saturating_sub(old(&prev));
        }
        self.weight += w;
    }

    fn remove(&mut self, conv: &str, old: impl Fn(&V) -> usize) {
        if let Some(prev) = self.map.remove(conv) {
            self.weight = self.weight.saturating_sub(old(&prev));
        }
    }

    fn clear_if_heavy(&mut self) {
        if self.weight > MAX_WEIGHT {
            self.map.clear();
            self.weight = 0;
        }
    }
}

fn entry_weight(e: &Entry) -> usize {
    weight(&e.state)
}

fn state_weight(s: &Arc<ConversationState>) -> usize {
    weight(s)
}

/// A conversation as the writer knows it.
#[derive(Clone)]
pub(crate) struct Entry {
    /// The conversation's integer key (`conversations.key`, the log's
    /// `conv`): an append writes by it instead of looking the id up.
    pub(crate) key: i64,
    pub(crate) state: Arc<ConversationState>,
    /// The current members, shared by the appends until a change.
    pub(crate) recipients: Arc<[Member]>,
}

impl Entry {
    pub(crate) fn new(key: i64, state: ConversationState) -> Self {
        let recipients = state.active().cloned().collect();
        Self {
            key,
            state: Arc::new(state),
            recipients,
        }
    }
}

#[derive(Default)]
struct Working {
    entries: Weighed<Entry>,
    /// Changed in the current group: published at its commit.
    touched: HashSet<String>,
    /// Changed by the current write: dropped if it fails.
    job: HashSet<String>,
}

/// See the module doc.
#[derive(Default)]
pub(crate) struct ConvCache {
    working: Mutex<Working>,
    published: Mutex<Weighed<Arc<ConversationState>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConvCache {
    /// The writer's entry for `conv`, if it has one.
    pub(crate) fn working(&self, conv: &str) -> Option<Entry> {
        lock(&self.working).entries.map.get(conv).cloned()
    }

    /// Records the writer's new view of a conversation (inside the group).
    pub(crate) fn put(&self, entry: Entry) {
        let mut w = lock(&self.working);
        let conv = entry.state.conv.0.clone();
        w.touched.insert(conv.clone());
        w.job.insert(conv.clone());
        let wt = entry_weight(&entry);
        w.entries.insert(conv, entry, wt, entry_weight);
    }

    /// Records a view read from the file, unchanged by this write.
    pub(crate) fn remember(&self, entry: Entry) {
        let mut w = lock(&self.working);
        let conv = entry.state.conv.0.clone();
        w.touched.insert(conv.clone());
        let wt = entry_weight(&entry);
        w.entries.insert(conv, entry, wt, entry_weight);
    }

    /// The committed state of `conv`, if the writer published one.
    pub(crate) fn published(&self, conv: &str) -> Option<Arc<ConversationState>> {
        lock(&self.published).map.get(conv).cloned()
    }

    /// A write is about to run.
    pub(crate) fn job_started(&self) {
        lock(&self.working).job.clear();
    }

    /// The write failed: what it changed is forgotten.
    pub(crate) fn job_failed(&self) {
        let mut w = lock(&self.working);
        let job = std::mem::take(&mut w.job);
        let mut p = lock(&self.published);
        for conv in job {
            w.entries.remove(&conv, entry_weight);
            p.remove(&conv, state_weight);
        }
    }

    /// The group is committed: its views become the published states.
    pub(crate) fn committed(&self) {
        let mut w = lock(&self.working);
        let touched = std::mem::take(&mut w.touched);
        w.job.clear();
        let mut p = lock(&self.published);
        p.clear_if_heavy();
        for conv in touched {
            if let Some(e) = w.entries.map.get(&conv) {
                let state = e.state.clone();
                let wt = weight(&state);
                p.insert(conv, state, wt, state_weight);
            }
        }
        w.entries.clear_if_heavy();
    }

    /// The group is lost: everything it touched is forgotten.
    pub(crate) fn aborted(&self) {
        let mut w = lock(&self.working);
        let touched = std::mem::take(&mut w.touched);
        w.job.clear();
        let mut p = lock(&self.published);
        for conv in touched {
            w.entries.remove(&conv, entry_weight);
            p.remove(&conv, state_weight);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatcore::model::UserId;

    fn state(a: &str, b: &str, last_seq: u64) -> ConversationState {
        let mut s = ConversationState::direct(&UserId::from(a), &UserId::from(b), 0);
        s.last_seq = last_seq;
        s
    }

    #[test]
    fn only_committed_views_are_published_and_failures_forget() {
        let cache = ConvCache::default();
        let s1 = state("a", "b", 1);
        let conv = s1.conv.0.clone();
        cache.job_started();
        cache.put(Entry::new(1, s1));
        assert!(cache.published(&conv).is_none(), "not before the commit");
        cache.committed();
        assert_eq!(cache.published(&conv).map(|s| s.last_seq), Some(1));

        // A write that fails: its view goes, from both levels.
        cache.job_started();
        cache.put(Entry::new(1, state("a", "b", 2)));
        cache.job_failed();
        assert!(cache.working(&conv).is_none());
        assert!(cache.published(&conv).is_none());

        // A group whose commit fails: the same.
        cache.job_started();
        cache.put(Entry::new(1, state("a", "b", 2)));
        cache.committed();
        cache.job_started();
        cache.put(Entry::new(1, state("a", "b", 3)));
        cache.aborted();
        assert!(cache.working(&conv).is_none());
        assert!(cache.published(&conv).is_none());
    }

    #[test]
    fn heavy_levels_are_emptied() {
        let cache = ConvCache::default();
        for i in 0..(MAX_WEIGHT / 3 + 10) {
            cache.job_started();
            cache.put(Entry::new(1, state(&format!("u{i}"), "z", 1)));
        }
        cache.committed();
        cache.committed();
        assert!(lock(&cache.published).weight <= MAX_WEIGHT);
        assert!(lock(&cache.working).entries.weight <= MAX_WEIGHT);
    }
}
