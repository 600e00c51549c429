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

/// Beyond this many conversations, the published level is emptied at the
/// next commit (the hot ones come back with their next write).
const MAX_ENTRIES: usize = 50_000;

/// A conversation as the writer knows it.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) state: Arc<ConversationState>,
    /// The current members, shared by the appends until a change.
    pub(crate) recipients: Arc<[Member]>,
}

impl Entry {
    pub(crate) fn new(state: ConversationState) -> Self {
        let recipients = state.active().cloned().collect();
        Self {
            state: Arc::new(state),
            recipients,
        }
    }
}

#[derive(Default)]
struct Working {
    entries: HashMap<String, Entry>,
    /// Changed in the current group: published at its commit.
    touched: HashSet<String>,
    /// Changed by the current write: dropped if it fails.
    job: HashSet<String>,
}

/// See the module doc.
#[derive(Default)]
pub(crate) struct ConvCache {
    working: Mutex<Working>,
    published: Mutex<HashMap<String, Arc<ConversationState>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ConvCache {
    /// The writer's entry for `conv`, if it has one.
    pub(crate) fn working(&self, conv: &str) -> Option<Entry> {
        lock(&self.working).entries.get(conv).cloned()
    }

    /// Records the writer's new view of a conversation (inside the group).
    pub(crate) fn put(&self, entry: Entry) {
        let mut w = lock(&self.working);
        let conv = entry.state.conv.0.clone();
        w.touched.insert(conv.clone());
        w.job.insert(conv.clone());
        w.entries.insert(conv, entry);
    }

    /// Records a view read from the file, unchanged by this write.
    pub(crate) fn remember(&self, entry: Entry) {
        let mut w = lock(&self.working);
        let conv = entry.state.conv.0.clone();
        w.touched.insert(conv.clone());
        w.entries.insert(conv, entry);
    }

    /// The committed state of `conv`, if the writer published one.
    pub(crate) fn published(&self, conv: &str) -> Option<Arc<ConversationState>> {
        lock(&self.published).get(conv).cloned()
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
            w.entries.remove(&conv);
            p.remove(&conv);
        }
    }

    /// The group is committed: its views become the published states.
    pub(crate) fn committed(&self) {
        let mut w = lock(&self.working);
        let touched = std::mem::take(&mut w.touched);
        w.job.clear();
        let mut p = lock(&self.published);
        if p.len() > MAX_ENTRIES {
            p.clear();
        }
        for conv in touched {
            if let Some(e) = w.entries.get(&conv) {
                p.insert(conv, e.state.clone());
            }
        }
        if w.entries.len() > MAX_ENTRIES {
            w.entries.clear();
        }
    }

    /// The group is lost: everything it touched is forgotten.
    pub(crate) fn aborted(&self) {
        let mut w = lock(&self.working);
        let touched = std::mem::take(&mut w.touched);
        w.job.clear();
        let mut p = lock(&self.published);
        for conv in touched {
            w.entries.remove(&conv);
            p.remove(&conv);
        }
    }
}
