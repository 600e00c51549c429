//! Users' reports of users, for the operator.

use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::{ConversationId, Millis, UserId};
use chatcore::store::{Report, ReportStore, StoreResult};
use rusqlite::params;

use crate::db::Db;
use crate::error::map_err;
use crate::limit_i64;

/// The report store: one row per reporter and reported user.
#[derive(Clone)]
pub struct SqliteReportStore {
    db: Arc<Db>,
}

impl SqliteReportStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

#[async_trait]
impl ReportStore for SqliteReportStore {
    async fn file(&self, report: &Report) -> StoreResult<()> {
        let r = report.clone();
        self.db
            .write(move |c| {
                c.execute(
                    "INSERT OR REPLACE INTO reports (key, reporter, user, conv, reason, at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        r.key(),
                        r.reporter.0,
                        r.user.0,
                        r.conv.as_ref().map(|c| c.0.as_str()),
                        r.reason,
                        r.at
                    ],
                )
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    async fn list(
        &self,
        after: Option<&(Millis, String)>,
        limit: usize,
    ) -> StoreResult<Vec<Report>> {
        let (at, key) = match after {
            Some((at, key)) => (Some(*at), key.clone()),
            None => (None, String::new()),
        };
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(
                        "SELECT reporter, user, conv, reason, at FROM reports WHERE ?1 IS NULL OR \
                         at < ?1 OR (at = ?1 AND key > ?2) ORDER BY at DESC, key LIMIT ?3",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(params![at, key, limit_i64(limit)], |r| {
                        Ok(Report::new(
                            UserId(r.get(0)?),
                            UserId(r.get(1)?),
                            r.get::<_, Option<String>>(2)?.map(ConversationId),
                            r.get(3)?,
                            r.get(4)?,
                        ))
                    })
                    .map_err(map_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
            })
            .await
    }
}
