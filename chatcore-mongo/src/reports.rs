//! Users' reports of users, for the operator.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::doc;
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use chatcore::model::{ConversationId, Millis, UserId};
use chatcore::store::{Report, ReportStore, StoreResult};

use crate::schema::REPORTS;
use crate::{limit_i64, Inner};

/// A stored [`Report`]: `_id` is [`Report::key`], so that a repeated
/// report replaces the earlier one.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ReportDoc {
    #[serde(rename = "_id")]
    key: String,
    reporter: String,
    user: String,
    #[serde(default)]
    conv: Option<String>,
    #[serde(default)]
    reason: String,
    at: Millis,
}

/// Reports in the `reports` collection, listed newest first through the
/// `at_key` index.
#[derive(Clone)]
pub struct MongoReportStore {
    inner: Arc<Inner>,
    reports: Collection<ReportDoc>,
}

impl MongoReportStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        let reports = inner.durable(REPORTS);
        Self { inner, reports }
    }
}

#[async_trait]
impl ReportStore for MongoReportStore {
    async fn file(&self, report: &Report) -> StoreResult<()> {
        let d = ReportDoc {
            key: report.key(),
            reporter: report.reporter.0.clone(),
            user: report.user.0.clone(),
            conv: report.conv.as_ref().map(|c| c.0.clone()),
            reason: report.reason.clone(),
            at: report.at,
        };
        self.inner
            .run(
                self.reports
                    .replace_one(doc! { "_id": &d.key }, &d)
                    .upsert(true),
            )
            .await?;
        Ok(())
    }

    async fn list(
        &self,
        after: Option<&(Millis, String)>,
        limit: usize,
    ) -> StoreResult<Vec<Report>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = match after {
            Some((at, key)) => doc! { "$or": [
                { "at": { "$lt": *at } },
                { "at": *at, "_id": { "$gt": key } },
            ] },
            None => doc! {},
        };
        let cursor = self
            .inner
            .run(
                self.reports
                    .find(filter)
                    .sort(doc! { "at": -1, "_id": 1 })
                    .limit(limit_i64(limit)),
            )
            .await?;
        let docs: Vec<ReportDoc> = self.inner.run(cursor.try_collect()).await?;
        Ok(docs
            .into_iter()
            .map(|d| {
                Report::new(
                    UserId(d.reporter),
                    UserId(d.user),
                    d.conv.map(ConversationId),
                    d.reason,
                    d.at,
                )
            })
            .collect())
    }
}
