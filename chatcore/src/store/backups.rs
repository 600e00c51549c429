use std::collections::BTreeMap;

use async_trait::async_trait;

use super::StoreResult;
use crate::model::{ConversationId, Millis, UserId};

/// A user's key backup as the server keeps it: its version and the
/// client's description of how the keys are encrypted (`auth_data`:
/// e.g. the backup's public key, and secrets sealed with the recovery
/// key). The server never reads either; see docs/E2E.md.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backup {
    /// Made by the server when the backup is created; a new backup of the
    /// same user gets another.
    pub version: String,
    /// How the keys are encrypted, as the client named it.
    pub algorithm: String,
    /// The client's opaque description of the backup.
    pub auth_data: String,
    /// Keys stored.
    pub count: u64,
    /// Changes whenever the stored keys change, so that a device tells
    /// cheaply whether there is anything new to restore.
    pub etag: u64,
    /// When it was created.
    pub created_at: Millis,
}

impl Backup {
    /// A new, empty backup.
    pub fn new(version: String, algorithm: String, auth_data: String, created_at: Millis) -> Self {
        Self {
            version,
            algorithm,
            auth_data,
            count: 0,
            etag: 0,
            created_at,
        }
    }
}

/// One conversation key in a backup: `data` is the key encrypted by the
/// client; the other fields are in clear so that the server keeps the
/// better of two copies without reading either.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupKey {
    /// The conversation the key decrypts.
    pub conv: ConversationId,
    /// The sender's session id (Megolm), unique within the conversation.
    pub session: String,
    /// The first message index the key decrypts.
    pub first_index: u32,
    /// How often the key was forwarded between devices before this one.
    pub forwarded: u32,
    /// Whether the device that backed it up trusted its sender.
    pub verified: bool,
    /// The encrypted key.
    pub data: Vec<u8>,
}

impl BackupKey {
    /// A key of session `session` in `conv`.
    pub fn new(
        conv: ConversationId,
        session: String,
        (first_index, forwarded, verified): (u32, u32, bool),
        data: Vec<u8>,
    ) -> Self {
        Self {
            conv,
            session,
            first_index,
            forwarded,
            verified,
            data,
        }
    }

    /// Whether this copy should replace `old` (of the same session): a
    /// verified one over an unverified one, then the one that reads from
    /// an earlier message, then the one forwarded fewer times. Matrix's
    /// rule for its key backups.
    pub fn better_than(&self, old: &BackupKey) -> bool {
        (!self.verified, self.first_index, self.forwarded)
            < (!old.verified, old.first_index, old.forwarded)
    }

    /// The copy of each session that a put of `keys` stores at most (of
    /// two copies, the [better](BackupKey::better_than) one), ordered by
    /// `(conv, session)`.
    pub fn best_per_session(keys: &[BackupKey]) -> Vec<&BackupKey> {
        let mut best: BTreeMap<(&ConversationId, &str), &BackupKey> = BTreeMap::new();
        for k in keys {
            let slot = best.entry((&k.conv, k.session.as_str())).or_insert(k);
            if k.better_than(slot) {
                *slot = k;
            }
        }
        best.into_values().collect()
    }
}

/// Outcome of [`BackupStore::put_keys`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutKeys {
    /// Stored (each key where it is new or better than the copy kept).
    Stored(Backup),
    /// The backup would hold more than `max` keys: nothing was stored.
    Full,
}

/// Per-user encrypted key backups: one current backup per user, its keys
/// keyed by `(conv, session)`.
///
/// Every method that names a `version` answers [`super::StoreError::NotFound`]
/// when it is not the user's current backup (there is none, or another was
/// created since): a device that backs up into an old version learns so.
#[async_trait]
pub trait BackupStore: Send + Sync {
    /// Makes `backup` (new and empty) the user's current backup; the
    /// previous one and its keys are deleted.
    async fn create(&self, user: &UserId, backup: Backup) -> StoreResult<()>;

    /// The user's current backup, if any.
    async fn current(&self, user: &UserId) -> StoreResult<Option<Backup>>;

    /// Replaces the current backup's `auth_data` (a new recovery
    /// passphrase, a new master key to seal): the backup as it is now.
    async fn update(&self, user: &UserId, version: &str, auth_data: String) -> StoreResult<Backup>;

    /// Deletes the current backup and its keys.
    async fn delete(&self, user: &UserId, version: &str) -> StoreResult<()>;

    /// Stores each key that is new, or better than the copy kept
    /// ([`BackupKey::better_than`]; of two copies in `keys`, the better).
    /// All or nothing: [`PutKeys::Full`] when the backup would then hold
    /// more than `max` keys. The etag changes when any key was stored.
    async fn put_keys(
        &self,
        user: &UserId,
        version: &str,
        keys: &[BackupKey],
        max: usize,
    ) -> StoreResult<PutKeys>;

    /// Up to `limit` keys of the backup ordered by `(conv, session)`,
    /// after `after` when given.
    async fn keys(
        &self,
        user: &UserId,
        version: &str,
        after: Option<(&ConversationId, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<BackupKey>>;
}
