use async_trait::async_trait;

use super::StoreResult;
use crate::model::{DeviceId, Millis, UserId};

/// A device's long-term public keys, as the device uploaded them: a key
/// to sign with and a key to agree secrets with (for Olm: Ed25519 and
/// Curve25519), and the signature of the signing key over both. The
/// store keeps them as given; checking the signature is the caller's.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceKeys {
    /// The user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// The algorithm the keys are for (e.g. `olm.v1`).
    pub algorithm: String,
    /// Public signing key (unpadded base64).
    pub signing_key: String,
    /// Public key-agreement key (unpadded base64).
    pub agreement_key: String,
    /// Signature of the signing key over the device's keys (unpadded
    /// base64).
    pub signature: String,
    /// When they were uploaded.
    pub uploaded_at: Millis,
    /// The user's master key's signature over these keys, once a device of
    /// the user (or the user's recovery key) vouched for this one
    /// ([`KeyStore::sign_device`]); `None` before.
    pub master_signature: Option<MasterSignature>,
}

/// A master key's signature over a device's identity keys. It names the
/// master key that made it: after the user's master key changes, the
/// signatures of the old one no longer count.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MasterSignature {
    /// The master key that signed (unpadded base64).
    pub master_key: String,
    /// The signature (unpadded base64).
    pub signature: String,
}

impl MasterSignature {
    /// `master_key`'s `signature`.
    pub fn new(master_key: impl Into<String>, signature: impl Into<String>) -> Self {
        Self {
            master_key: master_key.into(),
            signature: signature.into(),
        }
    }
}

/// A user's master signing key: the key that vouches for the user's
/// devices, whose safety numbers derive from it, with its own signature
/// (proof that the uploader holds it).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MasterKey {
    /// The user.
    pub user: UserId,
    /// The public key (unpadded base64).
    pub key: String,
    /// The key's signature over itself and its user.
    pub signature: String,
    /// When it was uploaded.
    pub uploaded_at: Millis,
}

impl MasterKey {
    /// `user`'s master `key` with its `signature`, uploaded at `uploaded_at`.
    pub fn new(user: UserId, key: String, signature: String, uploaded_at: Millis) -> Self {
        Self {
            user,
            key,
            signature,
            uploaded_at,
        }
    }
}

impl DeviceKeys {
    /// A device's keys as uploaded at `uploaded_at`.
    pub fn new(
        (user, device): (UserId, DeviceId),
        algorithm: String,
        signing_key: String,
        agreement_key: String,
        signature: String,
        uploaded_at: Millis,
    ) -> Self {
        Self {
            user,
            device,
            algorithm,
            signing_key,
            agreement_key,
            signature,
            uploaded_at,
            master_signature: None,
        }
    }

    /// The master signature, if `master_key` made it: the one that counts.
    pub fn signed_by(&self, master_key: &str) -> Option<&MasterSignature> {
        self.master_signature
            .as_ref()
            .filter(|s| s.master_key == master_key)
    }

    /// Whether `other` holds the same keys (the time of upload aside).
    pub fn same_keys(&self, other: &DeviceKeys) -> bool {
        self.algorithm == other.algorithm
            && self.signing_key == other.signing_key
            && self.agreement_key == other.agreement_key
            && self.signature == other.signature
    }
}

/// A signed one-time (or fallback) public key of a device.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct OneTimeKey {
    /// The key's id, unique among the device's keys.
    pub id: String,
    /// The public key (unpadded base64).
    pub key: String,
    /// Signature of the device's signing key over it.
    pub signature: String,
}

impl OneTimeKey {
    /// A one-time key.
    pub fn new(
        id: impl Into<String>,
        key: impl Into<String>,
        signature: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            key: key.into(),
            signature: signature.into(),
        }
    }
}

/// What a device has left on the server, so that it can top up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyCounts {
    /// One-time keys not claimed yet.
    pub one_time: usize,
    /// Whether a fallback key is stored and not handed out since it was set.
    pub fallback_unused: bool,
}

/// A key handed out by [`KeyStore::claim`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claimed {
    /// The device's user.
    pub user: UserId,
    /// The device.
    pub device: DeviceId,
    /// The key.
    pub key: OneTimeKey,
    /// The device had no one-time key left: this is its fallback key,
    /// which may be handed out again until the device replaces it.
    pub fallback: bool,
}

impl Claimed {
    /// `key` of `device`, a fallback key or not.
    pub fn new(user: UserId, device: DeviceId, key: OneTimeKey, fallback: bool) -> Self {
        Self {
            user,
            device,
            key,
            fallback,
        }
    }
}

/// Outcome of [`KeyStore::set_identity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentitySet {
    /// Stored: the device had none.
    Stored,
    /// The same keys were stored already: nothing changed.
    Same,
    /// The device has other keys: nothing changed. A device's identity
    /// never changes; a new one is a new device.
    Different,
}

/// The key directory: each device's identity keys, its one-time keys
/// (each handed out at most once) and its fallback key.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a device's identity keys unless it has some already.
    async fn set_identity(&self, keys: &DeviceKeys) -> StoreResult<IdentitySet>;

    /// The identity keys of each of the user's devices that uploaded some,
    /// ordered by device id.
    async fn identities(&self, user: &UserId) -> StoreResult<Vec<DeviceKeys>>;

    /// Adds one-time keys to a device's, keeping at most `max`: the keys
    /// are stored only if all of them fit, atomically against concurrent
    /// uploads and claims (`Ok(false)` and nothing stored otherwise). A
    /// key whose id the device used already is left out (an upload retried
    /// stores nothing twice).
    async fn add_one_time_keys(
        &self,
        user: &UserId,
        device: &DeviceId,
        keys: &[OneTimeKey],
        max: usize,
    ) -> StoreResult<bool>;

    /// Sets a device's fallback key, replacing the one before (used or not).
    async fn set_fallback(
        &self,
        user: &UserId,
        device: &DeviceId,
        key: &OneTimeKey,
    ) -> StoreResult<()>;

    /// What the device has left.
    async fn counts(&self, user: &UserId, device: &DeviceId) -> StoreResult<KeyCounts>;

    /// One key for each target device that has one: a one-time key, which
    /// no other claim, concurrent or later, ever gets; or, when none is
    /// left, its fallback key (then marked used). Targets without either
    /// are left out; the result follows the order of `targets`.
    async fn claim(&self, targets: &[(UserId, DeviceId)]) -> StoreResult<Vec<Claimed>>;

    /// Deletes everything of the device: identity (with its master
    /// signature), one-time and fallback keys.
    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<()>;

    /// Sets the user's master key, replacing the one before: whether it
    /// changed (`false`: this key was stored already, and nothing changed).
    async fn set_master_key(&self, key: &MasterKey) -> StoreResult<bool>;

    /// The master keys of those of `users` that have one, in any order.
    async fn master_keys(&self, users: &[UserId]) -> StoreResult<Vec<MasterKey>>;

    /// Stores a master signature over the device's identity keys,
    /// replacing the one before: `false` (nothing stored) if the device has
    /// no identity keys. Checking the signature is the caller's.
    async fn sign_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        signature: &MasterSignature,
    ) -> StoreResult<bool>;
}
