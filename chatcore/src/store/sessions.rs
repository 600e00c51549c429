use async_trait::async_trait;

use super::StoreResult;
use crate::model::{DeviceId, Millis, UserId};

/// A signed-in device. The token itself is never stored: only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionRecord {
    /// Hex SHA-256 of the session token.
    pub token_hash: String,
    /// The user.
    pub user: UserId,
    /// The device this session signs in.
    pub device: DeviceId,
    /// Name the client gave the device.
    pub device_name: String,
    /// When it was created.
    pub created_at: Millis,
    /// When the device last signed in with it (created or resumed): what
    /// a user's device list shows, to tell a stale device from one in use.
    pub last_active: Millis,
    /// After this instant the session is gone.
    pub expires_at: Millis,
}

impl SessionRecord {
    /// A session record, last active when it was created.
    pub fn new(
        token_hash: String,
        user: UserId,
        device: DeviceId,
        device_name: String,
        created_at: Millis,
        expires_at: Millis,
    ) -> Self {
        Self {
            token_hash,
            user,
            device,
            device_name,
            created_at,
            last_active: created_at,
            expires_at,
        }
    }

    /// The same record, last active at `at`.
    pub fn with_last_active(mut self, at: Millis) -> Self {
        self.last_active = at;
        self
    }
}

/// Session tokens.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a session. `Conflict { field: "token" }` if the hash exists
    /// (with 256-bit tokens, only a bug produces that).
    async fn create(&self, session: SessionRecord) -> StoreResult<()>;

    /// The session with this token hash if it exists and `now < expires_at`;
    /// `Ok(None)` otherwise (an expired session is as good as gone; stores may
    /// delete it lazily or by TTL).
    async fn get(&self, token_hash: &str, now: Millis) -> StoreResult<Option<SessionRecord>>;

    /// Moves a live session's expiry (sliding expiry on resume) and marks
    /// it active at `now`. `NotFound` if there is no such session.
    async fn extend(&self, token_hash: &str, now: Millis, expires_at: Millis) -> StoreResult<()>;

    /// Deletes one session. Returns whether it existed. Idempotent.
    async fn revoke(&self, token_hash: &str) -> StoreResult<bool>;

    /// Deletes every session of `user` except the one with hash `keep`.
    /// Returns how many were deleted.
    async fn revoke_all(&self, user: &UserId, keep: Option<&str>) -> StoreResult<u64>;

    /// The live sessions of `user` (`now < expires_at`), oldest first
    /// (by `created_at`, then device id, then token hash): the user's
    /// devices, one session per sign-in. Other users' sessions never
    /// appear; an unknown user has none.
    async fn devices(&self, user: &UserId, now: Millis) -> StoreResult<Vec<SessionRecord>>;

    /// Sets the name of `user`'s `device` on each of its sessions. Returns
    /// whether any existed (`false`, and nothing changed, for another
    /// user's device or an unknown one). Idempotent.
    async fn rename_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        name: &str,
    ) -> StoreResult<bool>;

    /// Deletes every session of `user`'s `device`, live or expired.
    /// Returns whether any existed (`false`, and nothing changed, for
    /// another user's device or an unknown one). Idempotent.
    async fn revoke_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<bool>;
}

/// A password-reset token, stored hashed like session tokens.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResetToken {
    /// Hex SHA-256 of the token mailed to the user.
    pub token_hash: String,
    /// Whose password it resets.
    pub user: UserId,
    /// After this instant it is worthless.
    pub expires_at: Millis,
}

impl ResetToken {
    /// A reset token record.
    pub fn new(token_hash: String, user: UserId, expires_at: Millis) -> Self {
        Self {
            token_hash,
            user,
            expires_at,
        }
    }
}

/// Single-use password-reset tokens.
#[async_trait]
pub trait ResetTokenStore: Send + Sync {
    /// Stores a token.
    async fn insert(&self, token: ResetToken) -> StoreResult<()>;

    /// The token's user if it exists and `now < expires_at`, without
    /// consuming it (to check the new password before spending the token).
    async fn get(&self, token_hash: &str, now: Millis) -> StoreResult<Option<UserId>>;

    /// Atomically consumes the token: returns its user and deletes it if it
    /// exists and `now < expires_at`; `Ok(None)` otherwise. Of two concurrent
    /// `take`s of one token, at most one returns the user.
    async fn take(&self, token_hash: &str, now: Millis) -> StoreResult<Option<UserId>>;

    /// Deletes every token of `user`, live or expired; returns how many.
    /// Called when the password changes by any path, so that no reset link
    /// mailed earlier can set a password afterwards. Idempotent.
    async fn revoke_user(&self, user: &UserId) -> StoreResult<u64>;
}
