use async_trait::async_trait;

use super::StoreResult;
use crate::model::{ConversationId, Millis, UserId};

/// A user's report of another user, kept for the operator. It names who
/// and where, never what: with end-to-end encryption the server could not
/// read the messages anyway, and the reporter's word is what it has.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Who reports.
    pub reporter: UserId,
    /// Who is reported.
    pub user: UserId,
    /// The conversation it is about, if any.
    pub conv: Option<ConversationId>,
    /// The reporter's words (0 to 500 characters).
    pub reason: String,
    /// When it was filed (the latest time, for a repeated report).
    pub at: Millis,
}

impl Report {
    /// A report by `reporter` of `user`.
    pub fn new(
        reporter: UserId,
        user: UserId,
        conv: Option<ConversationId>,
        reason: String,
        at: Millis,
    ) -> Self {
        Self {
            reporter,
            user,
            conv,
            reason,
            at,
        }
    }

    /// The report's key: one report per reporter and reported user.
    pub fn key(&self) -> String {
        format!("{}|{}", self.reporter.0, self.user.0)
    }
}

/// Reports for the operator: one per reporter and reported user.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Stores `report`, replacing the reporter's earlier report of the
    /// same user, so that repeating one does not grow the store.
    async fn file(&self, report: &Report) -> StoreResult<()>;

    /// Up to `limit` reports, newest first (ties by [`Report::key`]),
    /// strictly after the position `after` (`(at, key)` of the previous
    /// page's last) when given.
    async fn list(
        &self,
        after: Option<&(Millis, String)>,
        limit: usize,
    ) -> StoreResult<Vec<Report>>;
}
