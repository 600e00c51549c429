//! Reports in memory.

use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::model::Millis;
use crate::store::{Report, ReportStore, StoreResult};
use crate::IdMap;

/// Reports in memory, one per reporter and reported user.
#[derive(Default)]
pub struct MemoryReportStore {
    inner: Mutex<IdMap<String, Report>>,
}

impl MemoryReportStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ReportStore for MemoryReportStore {
    async fn file(&self, report: &Report) -> StoreResult<()> {
        lock(&self.inner).insert(report.key(), report.clone());
        Ok(())
    }

    async fn list(
        &self,
        after: Option<&(Millis, String)>,
        limit: usize,
    ) -> StoreResult<Vec<Report>> {
        let all = lock(&self.inner);
        let mut out: Vec<(Millis, String, &Report)> = all
            .iter()
            .map(|(k, r)| (r.at, k.clone(), r))
            .filter(|(at, k, _)| {
                after.is_none_or(|(a_at, a_key)| *at < *a_at || (at == a_at && k > a_key))
            })
            .collect();
        out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        Ok(out
            .into_iter()
            .take(limit)
            .map(|(_, _, r)| r.clone())
            .collect())
    }
}
