//! Calls: the calls going on, shared by every node, without transactions.
//!
//! Two collections of soft state:
//! - `calls`: one document per call, `{_id: id, v, started_at, call}`,
//!   `call` being the record ([`CallRecord`], which ignores fields it does
//!   not know) and `v` its version for compare-and-set;
//! - `call_users`: one document per user in a call, `{_id: user, call,
//!   token, at}`: the user's claim. `_id` makes one call per user: of two
//!   calls claiming a user at once, one insert wins.
//!
//! Only what is atomic on MongoDB and on jongodb (the test server, whose
//! `findAndModify` is not) is used: single inserts checked by `_id`,
//! `update_one` filtered on `v`, `delete_one` filtered on `v`.
//! - `start` claims the caller, then the callee (a claim whose call has no
//!   document yet is a start under way: busy; one left by a start that
//!   died, still without a call a minute later by the new call's clock, is
//!   taken over), then inserts the call (a duplicate id is `Exists`). A
//!   start that fails releases its own claims (by their token).
//! - `set_ringing`, `answer`, `conn_closed` and `conn_opened` read the call
//!   and write their change with `update_one({_id, v})`, reading again when
//!   `v` moved: of two answers one matches, the other reads the answer.
//! - `end` releases the claims that name the call, then deletes the call
//!   with `delete_one({_id, v})`: only one delete removes it, and the one
//!   that did returns the call as it was. A node that dies in between
//!   leaves a call without claims, which `due` still lists (and the next
//!   `end` removes).

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use chatcore::model::{DeviceId, Millis, UserId};
use chatcore::store::{Answered, CallRecord, CallStore, Started, StoreError, StoreResult};

use crate::schema::{CALLS, CALL_USERS};
use crate::Inner;

/// Compare-and-set rounds before giving up: each lost round is another
/// change of the same call at that instant.
const MAX_ROUNDS: usize = 1_000;

/// How long (by the calls' own clock: a new call's `started_at` against a
/// claim's `at`) a claim whose call has no document is taken for a start
/// under way; after it, for one whose node died, and taken over.
const CLAIM_GRACE_MS: Millis = 60_000;

/// A call as stored.
#[derive(Serialize, Deserialize)]
struct CallDoc {
    #[serde(rename = "_id")]
    id: String,
    v: i64,
    started_at: Millis,
    call: CallRecord,
}

/// A user's claim: the user is in call `call`.
#[derive(Serialize, Deserialize)]
struct ClaimDoc {
    #[serde(rename = "_id")]
    user: String,
    call: String,
    /// The start that made it (a claim is released by its token only).
    token: String,
    /// The call's `started_at`.
    at: Millis,
}

/// The calls going on, in the `calls` and `call_users` collections.
#[derive(Clone)]
pub struct MongoCallStore {
    inner: Arc<Inner>,
    calls: Collection<CallDoc>,
    claims: Collection<ClaimDoc>,
}

/// What a claim attempt found.
enum Claim {
    Claimed,
    Busy,
}

fn contended(id: &str) -> StoreError {
    StoreError::Unavailable(format!("call {id}: too much contention"))
}

impl MongoCallStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        let calls = inner.soft(CALLS);
        let claims = inner.soft(CALL_USERS);
        Self {
            inner,
            calls,
            claims,
        }
    }

    async fn load(&self, id: &str) -> StoreResult<Option<CallDoc>> {
        self.inner
            .run(self.calls.find_one(doc! { "_id": id }))
            .await
    }

    /// The call `user` is claimed by, when its document exists.
    async fn load_of(&self, user: &UserId) -> StoreResult<Option<CallDoc>> {
        let Some(claim) = self
            .inner
            .run(self.claims.find_one(doc! { "_id": user.as_str() }))
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .load(&claim.call)
            .await?
            .filter(|d| d.call.caller == *user || d.call.callee == *user))
    }

    /// Writes `set` (and the next version) into call `id` if its version
    /// is still `v`.
    async fn swap(&self, id: &str, v: i64, mut set: Document) -> StoreResult<bool> {
        set.insert("v", v + 1);
        let r = self
            .inner
            .run(
                self.calls
                    .update_one(doc! { "_id": id, "v": v }, doc! { "$set": set }),
            )
            .await?;
        Ok(r.matched_count == 1)
    }

    /// Claims `user` for `call` under `token`, taking over a claim left by
    /// a start that died.
    async fn claim(&self, user: &UserId, call: &CallRecord, token: &str) -> StoreResult<Claim> {
        for _ in 0..MAX_ROUNDS {
            let mine = ClaimDoc {
                user: user.0.clone(),
                call: call.id.clone(),
                token: token.to_owned(),
                at: call.started_at,
            };
            match self.inner.run(self.claims.insert_one(&mine)).await {
                Ok(_) => return Ok(Claim::Claimed),
                Err(StoreError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
            let Some(theirs) = self
                .inner
                .run(self.claims.find_one(doc! { "_id": user.as_str() }))
                .await?
            else {
                // Released meanwhile: try again.
                continue;
            };
            if self.load(&theirs.call).await?.is_some()
                || call.started_at.saturating_sub(theirs.at) < CLAIM_GRACE_MS
            {
                return Ok(Claim::Busy);
            }
            // A claim without a call for a minute: its start died.
            self.release(user, &theirs.token).await?;
        }
        Err(contended(&call.id))
    }

    async fn release(&self, user: &UserId, token: &str) -> StoreResult<()> {
        self.inner
            .run(
                self.claims
                    .delete_one(doc! { "_id": user.as_str(), "token": token }),
            )
            .await?;
        Ok(())
    }
}

#[async_trait]
impl CallStore for MongoCallStore {
    async fn start(&self, call: &CallRecord) -> StoreResult<Started> {
        if self.load(&call.id).await?.is_some() {
            return Ok(Started::Exists);
        }
        let token = mongodb::bson::oid::ObjectId::new().to_hex();
        if let Claim::Busy = self.claim(&call.caller, call, &token).await? {
            return Ok(Started::CallerBusy);
        }
        if call.callee != call.caller {
            if let Claim::Busy = self.claim(&call.callee, call, &token).await? {
                self.release(&call.caller, &token).await?;
                return Ok(Started::CalleeBusy);
            }
        }
        let stored = CallDoc {
            id: call.id.clone(),
            v: 1,
            started_at: call.started_at,
            call: call.clone(),
        };
        match self.inner.run(self.calls.insert_one(&stored)).await {
            Ok(_) => Ok(Started::Started),
            Err(e) => {
                self.release(&call.caller, &token).await?;
                self.release(&call.callee, &token).await?;
                match e {
                    StoreError::Conflict { .. } => Ok(Started::Exists),
                    e => Err(e),
                }
            }
        }
    }

    async fn get(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        Ok(self.load(id).await?.map(|d| d.call))
    }

    async fn of_user(&self, user: &UserId) -> StoreResult<Option<CallRecord>> {
        Ok(self.load_of(user).await?.map(|d| d.call))
    }

    async fn set_ringing(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        for _ in 0..MAX_ROUNDS {
            let Some(mut d) = self.load(id).await? else {
                return Ok(None);
            };
            if d.call.ringing || d.call.answered_by.is_some() {
                return Ok(None);
            }
            d.call.ringing = true;
            if self.swap(id, d.v, doc! { "call.ringing": true }).await? {
                return Ok(Some(d.call));
            }
        }
        Err(contended(id))
    }

    async fn answer(
        &self,
        id: &str,
        device: &DeviceId,
        conn: &str,
        now: Millis,
    ) -> StoreResult<Answered> {
        for _ in 0..MAX_ROUNDS {
            let Some(mut d) = self.load(id).await? else {
                return Ok(Answered::Gone);
            };
            if d.call.answered_by.is_some() {
                return Ok(Answered::Taken(d.call));
            }
            d.call.answered_by = Some(device.clone());
            d.call.answered_at = Some(now);
            d.call.callee_conn = Some(conn.to_owned());
            d.call.offer = None;
            let set = doc! {
                "call.answered_by": device.as_str(),
                "call.answered_at": now,
                "call.callee_conn": conn,
                "call.offer": mongodb::bson::Bson::Null,
            };
            if self.swap(id, d.v, set).await? {
                return Ok(Answered::Answered(d.call));
            }
        }
        Err(contended(id))
    }

    async fn end(&self, id: &str) -> StoreResult<Option<CallRecord>> {
        for _ in 0..MAX_ROUNDS {
            let Some(d) = self.load(id).await? else {
                return Ok(None);
            };
            for user in [&d.call.caller, &d.call.callee] {
                self.inner
                    .run(
                        self.claims
                            .delete_one(doc! { "_id": user.as_str(), "call": id }),
                    )
                    .await?;
            }
            let r = self
                .inner
                .run(self.calls.delete_one(doc! { "_id": id, "v": d.v }))
                .await?;
            if r.deleted_count == 1 {
                return Ok(Some(d.call));
            }
        }
        Err(contended(id))
    }

    async fn conn_closed(
        &self,
        user: &UserId,
        device: &DeviceId,
        conn: &str,
        now: Millis,
    ) -> StoreResult<()> {
        for _ in 0..MAX_ROUNDS {
            let Some(d) = self.load_of(user).await? else {
                return Ok(());
            };
            let call = &d.call;
            if !call.in_call(user, device) {
                return Ok(());
            }
            let set = if *user == call.caller && call.caller_conn == conn {
                call.caller_gone_at
                    .is_none()
                    .then(|| doc! { "call.caller_gone_at": now })
            } else if *user == call.callee && call.callee_conn.as_deref() == Some(conn) {
                call.callee_gone_at
                    .is_none()
                    .then(|| doc! { "call.callee_gone_at": now })
            } else {
                None
            };
            let Some(set) = set else {
                return Ok(());
            };
            if self.swap(&d.id, d.v, set).await? {
                return Ok(());
            }
        }
        Err(contended(user.as_str()))
    }

    async fn conn_opened(&self, user: &UserId, device: &DeviceId, conn: &str) -> StoreResult<bool> {
        for _ in 0..MAX_ROUNDS {
            let Some(d) = self.load_of(user).await? else {
                return Ok(false);
            };
            let call = &d.call;
            if !call.in_call(user, device) {
                return Ok(false);
            }
            let set = if *user == call.caller && call.caller_gone_at.is_some() {
                doc! { "call.caller_gone_at": null, "call.caller_conn": conn }
            } else if *user == call.callee && call.callee_gone_at.is_some() {
                doc! { "call.callee_gone_at": null, "call.callee_conn": conn }
            } else {
                return Ok(false);
            };
            if self.swap(&d.id, d.v, set).await? {
                return Ok(true);
            }
        }
        Err(contended(user.as_str()))
    }

    async fn due(
        &self,
        ringing_before: Millis,
        gone_before: Millis,
    ) -> StoreResult<Vec<CallRecord>> {
        // Calls are few: every one is read and tested here.
        let cursor = self
            .inner
            .run(
                self.calls
                    .find(doc! {})
                    .sort(doc! { "started_at": 1, "_id": 1 }),
            )
            .await?;
        let docs: Vec<CallDoc> = self.inner.run(cursor.try_collect()).await?;
        Ok(docs
            .into_iter()
            .map(|d| d.call)
            .filter(|c| {
                (c.answered_by.is_none() && c.started_at < ringing_before)
                    || [c.caller_gone_at, c.callee_gone_at]
                        .into_iter()
                        .flatten()
                        .any(|t| t < gone_before)
            })
            .collect())
    }
}
