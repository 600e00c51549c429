//! The device's own keys: its identity (Ed25519 signing, Curve25519
//! agreement) and the one-time and fallback keys others claim to open an
//! Olm channel to it, each signed over the texts of [`chatcore::e2e`].

use chatcore::e2e::{device_keys_text, one_time_key_text, OLM_V1};
use chatcore::protocol::{DeviceSignature, IdentityKeys, KeyCountsInfo, MasterKeyInfo, SignedKey};
use vodozemac::olm::Account;
use vodozemac::{Curve25519PublicKey, KeyId};

use super::Machine;

/// How many one-time keys the device keeps on the server. vodozemac keeps
/// the private halves of a few more, so keys claimed but not yet used by a
/// pre-key message survive a top-up.
pub const ONE_TIME_KEY_TARGET: u32 = 50;

pub(super) struct AccountState {
    pub(super) account: Account,
    /// The identity keys were uploaded (they never change afterwards).
    pub(super) identity_published: bool,
}

impl AccountState {
    pub(super) fn new() -> Self {
        Self {
            account: Account::new(),
            identity_published: false,
        }
    }
}

/// What to send in an `upload_keys` request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyUpload {
    /// The identity keys, until they were published once.
    pub device_keys: Option<IdentityKeys>,
    /// New signed one-time keys.
    pub one_time_keys: Vec<SignedKey>,
    /// A new signed fallback key.
    pub fallback_key: Option<SignedKey>,
    /// The user's master key, from [`Machine::create_master_key`] on the
    /// user's first device.
    pub master_key: Option<MasterKeyInfo>,
    /// The master key's signatures of devices of the user
    /// ([`Machine::sign_device`]).
    pub signatures: Vec<DeviceSignature>,
}

impl KeyUpload {
    /// Nothing to upload.
    pub fn is_empty(&self) -> bool {
        self.device_keys.is_none()
            && self.one_time_keys.is_empty()
            && self.fallback_key.is_none()
            && self.master_key.is_none()
            && self.signatures.is_empty()
    }
}

impl Machine {
    /// This device's identity keys, signed over
    /// [`chatcore::e2e::device_keys_text`].
    pub fn identity_keys(&self) -> IdentityKeys {
        let keys = self.account.account.identity_keys();
        let signing_key = keys.ed25519.to_base64();
        let agreement_key = keys.curve25519.to_base64();
        let text = device_keys_text(
            &self.user,
            &self.device,
            OLM_V1,
            &signing_key,
            &agreement_key,
        );
        IdentityKeys {
            algorithm: OLM_V1.into(),
            signature: self.account.account.sign(text).to_base64(),
            signing_key,
            agreement_key,
        }
    }

    /// The keys to upload so that the server holds
    /// [`ONE_TIME_KEY_TARGET`] one-time keys and an unused fallback key,
    /// given its `counts`. Calling again before
    /// [`Machine::mark_keys_published`] returns the same keys (plus any
    /// still missing), so a failed upload is retried as is.
    pub fn keys_to_upload(&mut self, counts: KeyCountsInfo) -> KeyUpload {
        let account = &mut self.account.account;
        let pending = u32::try_from(account.one_time_keys().len()).unwrap_or(u32::MAX);
        let missing = ONE_TIME_KEY_TARGET.saturating_sub(counts.one_time.saturating_add(pending));
        if missing > 0 {
            account.generate_one_time_keys(missing as usize);
        }
        if !counts.fallback_unused && account.fallback_key().is_empty() {
            account.generate_fallback_key();
        }
        let mut one_time: Vec<(KeyId, Curve25519PublicKey)> =
            account.one_time_keys().into_iter().collect();
        one_time.sort_by_key(|(id, _)| *id);
        let one_time_keys = one_time
            .into_iter()
            .map(|(id, key)| self.signed_key(id, key))
            .collect();
        let fallback_key = self
            .account
            .account
            .fallback_key()
            .into_iter()
            .next()
            .map(|(id, key)| self.signed_key(id, key));
        KeyUpload {
            device_keys: (!self.account.identity_published).then(|| self.identity_keys()),
            one_time_keys,
            fallback_key,
            ..KeyUpload::default()
        }
    }

    /// The server accepted the last [`Machine::keys_to_upload`].
    pub fn mark_keys_published(&mut self) {
        self.account.account.mark_keys_as_published();
        self.account.identity_published = true;
    }

    fn signed_key(&self, id: KeyId, key: Curve25519PublicKey) -> SignedKey {
        let id = id.to_base64();
        let key = key.to_base64();
        let text = one_time_key_text(&self.user, &self.device, &id, &key);
        SignedKey {
            signature: self.account.account.sign(text).to_base64(),
            id,
            key,
        }
    }

    /// This device's Ed25519 key (base64).
    pub(super) fn signing_key(&self) -> String {
        self.account.account.ed25519_key().to_base64()
    }

    /// This device's Curve25519 key (base64).
    pub(super) fn agreement_key(&self) -> String {
        self.account.account.curve25519_key().to_base64()
    }
}
