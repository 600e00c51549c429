//! Session tokens and password-reset tokens.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, DateTime};
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use chatcore::model::{DeviceId, Millis, UserId};
use chatcore::store::{
    ResetToken, ResetTokenStore, SessionRecord, SessionStore, StoreError, StoreResult,
};

use crate::schema::{RESETS, SESSIONS};
use crate::Inner;

/// A stored session. `expires_at` is a BSON Date so the TTL index can reap it.
#[derive(Serialize, Deserialize)]
struct SessionDoc {
    #[serde(rename = "_id")]
    token_hash: String,
    user: String,
    device: String,
    device_name: String,
    created_at: Millis,
    /// Absent on documents written before devices were listed: such a
    /// session reads as last active when it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_active: Option<Millis>,
    expires_at: DateTime,
}

impl SessionDoc {
    fn into_record(self) -> SessionRecord {
        let last_active = self.last_active.unwrap_or(self.created_at);
        SessionRecord::new(
            self.token_hash,
            UserId(self.user),
            DeviceId(self.device),
            self.device_name,
            self.created_at,
            self.expires_at.timestamp_millis(),
        )
        .with_last_active(last_active)
    }
}

/// Sessions in the `sessions` collection, keyed by token hash, reaped by a
/// TTL index on `expires_at`.
#[derive(Clone)]
pub struct MongoSessionStore {
    inner: Arc<Inner>,
    sessions: Collection<SessionDoc>,
}

impl MongoSessionStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        let sessions = inner.durable(SESSIONS);
        Self { inner, sessions }
    }
}

#[async_trait]
impl SessionStore for MongoSessionStore {
    async fn create(&self, session: SessionRecord) -> StoreResult<()> {
        let doc = SessionDoc {
            token_hash: session.token_hash,
            user: session.user.0,
            device: session.device.0,
            device_name: session.device_name,
            created_at: session.created_at,
            last_active: Some(session.last_active),
            expires_at: DateTime::from_millis(session.expires_at),
        };
        match self.inner.run(self.sessions.insert_one(doc)).await {
            Ok(_) => Ok(()),
            // The token hash is the primary key.
            Err(StoreError::Conflict { .. }) => Err(StoreError::Conflict {
                field: "token".into(),
            }),
            Err(e) => Err(e),
        }
    }

    async fn get(&self, token_hash: &str, now: Millis) -> StoreResult<Option<SessionRecord>> {
        let found = self
            .inner
            .run(self.sessions.find_one(doc! { "_id": token_hash }))
            .await?;
        match found {
            Some(s) if now < s.expires_at.timestamp_millis() => Ok(Some(s.into_record())),
            Some(_) => {
                // Expired: gone for good, as in the reference store (the TTL
                // monitor may not have run yet). Only if still expired, so a
                // concurrent `extend` wins.
                let expired = doc! {
                    "_id": token_hash,
                    "expires_at": { "$lte": DateTime::from_millis(now) },
                };
                self.inner.run(self.sessions.delete_one(expired)).await?;
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn extend(&self, token_hash: &str, now: Millis, expires_at: Millis) -> StoreResult<()> {
        let r = self
            .inner
            .run(self.sessions.update_one(
                doc! { "_id": token_hash },
                doc! { "$set": {
                    "expires_at": DateTime::from_millis(expires_at),
                    "last_active": now,
                } },
            ))
            .await?;
        if r.matched_count == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn revoke(&self, token_hash: &str) -> StoreResult<bool> {
        let r = self
            .inner
            .run(self.sessions.delete_one(doc! { "_id": token_hash }))
            .await?;
        Ok(r.deleted_count > 0)
    }

    async fn revoke_all(&self, user: &UserId, keep: Option<&str>) -> StoreResult<u64> {
        let filter = match keep {
            Some(keep) => doc! { "user": &user.0, "_id": { "$ne": keep } },
            None => doc! { "user": &user.0 },
        };
        let r = self.inner.run(self.sessions.delete_many(filter)).await?;
        Ok(r.deleted_count)
    }

    async fn devices(&self, user: &UserId, now: Millis) -> StoreResult<Vec<SessionRecord>> {
        // Served by the `user` index; a user has a handful of sessions, so
        // they are ordered here rather than by an index on the sort.
        let filter = doc! { "user": &user.0, "expires_at": { "$gt": DateTime::from_millis(now) } };
        let mut cursor = self.inner.run(self.sessions.find(filter)).await?;
        let mut live = Vec::new();
        while let Some(d) = self.inner.run(cursor.try_next()).await? {
            live.push(d.into_record());
        }
        live.sort_by(|a, b| {
            (a.created_at, &a.device, &a.token_hash).cmp(&(b.created_at, &b.device, &b.token_hash))
        });
        Ok(live)
    }

    async fn rename_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        name: &str,
    ) -> StoreResult<bool> {
        let r = self
            .inner
            .run(self.sessions.update_many(
                doc! { "user": &user.0, "device": &device.0 },
                doc! { "$set": { "device_name": name } },
            ))
            .await?;
        Ok(r.matched_count > 0)
    }

    async fn revoke_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<bool> {
        let r = self
            .inner
            .run(
                self.sessions
                    .delete_many(doc! { "user": &user.0, "device": &device.0 }),
            )
            .await?;
        Ok(r.deleted_count > 0)
    }
}

/// A stored reset token; `expires_at` is a BSON Date for the TTL index.
#[derive(Serialize, Deserialize)]
struct ResetDoc {
    #[serde(rename = "_id")]
    token_hash: String,
    user: String,
    expires_at: DateTime,
}

impl ResetDoc {
    /// The token's user if it is still valid at `now`.
    fn user_if_live(self, now: Millis) -> Option<UserId> {
        (now < self.expires_at.timestamp_millis()).then_some(UserId(self.user))
    }
}

/// Reset tokens in the `reset_tokens` collection, keyed by token hash,
/// reaped by a TTL index on `expires_at`.
#[derive(Clone)]
pub struct MongoResetTokenStore {
    inner: Arc<Inner>,
    resets: Collection<ResetDoc>,
}

impl MongoResetTokenStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        let resets = inner.durable(RESETS);
        Self { inner, resets }
    }
}

#[async_trait]
impl ResetTokenStore for MongoResetTokenStore {
    async fn insert(&self, token: ResetToken) -> StoreResult<()> {
        let doc = ResetDoc {
            token_hash: token.token_hash,
            user: token.user.0,
            expires_at: DateTime::from_millis(token.expires_at),
        };
        // Like the reference store, the same hash again replaces the token.
        self.inner
            .run(
                self.resets
                    .replace_one(doc! { "_id": &doc.token_hash }, &doc)
                    .upsert(true),
            )
            .await?;
        Ok(())
    }

    async fn get(&self, token_hash: &str, now: Millis) -> StoreResult<Option<UserId>> {
        let found = self
            .inner
            .run(self.resets.find_one(doc! { "_id": token_hash }))
            .await?;
        Ok(found.and_then(|t| t.user_if_live(now)))
    }

    async fn take(&self, token_hash: &str, now: Millis) -> StoreResult<Option<UserId>> {
        // The delete decides: of concurrent takes, only the one whose delete
        // removed the document gets it back (on jongodb too, whose
        // findAndModify is a find followed by a delete by `_id`).
        let taken = self
            .inner
            .run(self.resets.find_one_and_delete(doc! { "_id": token_hash }))
            .await?;
        Ok(taken.and_then(|t| t.user_if_live(now)))
    }

    async fn revoke_user(&self, user: &UserId) -> StoreResult<u64> {
        let r = self
            .inner
            .run(self.resets.delete_many(doc! { "user": &user.0 }))
            .await?;
        Ok(r.deleted_count)
    }
}
