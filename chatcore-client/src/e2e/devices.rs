//! The devices of the users this device talks to, as the key directory
//! shows them, each signature checked here (the server is not trusted);
//! the per-user master signing key that vouches for devices.
//!
//! A user's master key is pinned when first seen (an answer without one
//! keeps it); a later different one is adopted but reported
//! ([`DeviceChange::MasterKeyChanged`]) so the app can
//! warn, as Signal does on a safety number change. A device whose identity
//! keys change under the same id is refused: the directory never allows it,
//! so only a lying server would show it.

use std::collections::BTreeMap;

use chatcore::e2e::{device_keys_text, device_signature_text, master_key_text, verify, OLM_V1};
use chatcore::model::{DeviceId, UserId};
use chatcore::protocol::{DeviceKeysInfo, DeviceRef, MasterKeyInfo};
use serde::{Deserialize, Serialize};
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey, Ed25519SecretKey};

use super::{E2eError, Machine};

/// The directory's answer about one user: all of the user's devices.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserKeys {
    /// The user.
    pub user: UserId,
    /// The user's master key, once a device created it.
    pub master_key: Option<MasterKeyInfo>,
    /// Every device of the user that uploaded keys.
    pub devices: Vec<DeviceKeysInfo>,
}

/// What the first device of a user uploads after creating the master key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterKeyUpload {
    /// The master key and its self-signature.
    pub master_key: MasterKeyInfo,
    /// This device, signed by the master key.
    pub device: DeviceId,
    /// The master key's signature of this device.
    pub device_signature: String,
}

/// A change in the devices of a user already tracked, to show the user
/// ("Bob added a new device") or act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceChange {
    /// The user has a new device.
    Added(DeviceRef),
    /// A device is gone (signed out or revoked); conversation sessions
    /// shared with it are rotated.
    Removed(DeviceRef),
    /// The user's master key signed this device (it is now verified): a
    /// moment to forward it conversation keys if it is the user's own.
    Signed(DeviceRef),
    /// The user's master key is another one than before: warn, the safety
    /// number changed.
    MasterKeyChanged {
        /// The user.
        user: UserId,
        /// The key pinned before.
        old: Option<String>,
        /// The key now pinned (`None` only if none verifies).
        new: Option<String>,
    },
    /// Something in the answer did not verify and was ignored.
    Rejected {
        /// The user.
        user: UserId,
        /// The device, or `None` for the master key.
        device: Option<DeviceId>,
        /// Why.
        reason: String,
    },
}

/// How far a device is trusted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceTrust {
    /// Its user's master key signed it.
    Verified,
    /// Its keys verify, but the master key has not signed it.
    Unverified,
    /// Its keys are not tracked.
    Unknown,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct TrackedDevice {
    pub(super) signing_key: String,
    pub(super) agreement_key: String,
    /// The master signature that verified against the user's current
    /// master key (dropped when it stops verifying).
    pub(super) master_signature: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(super) struct TrackedUser {
    /// The pinned, self-signature-checked master key.
    pub(super) master_key: Option<String>,
    pub(super) devices: BTreeMap<DeviceId, TrackedDevice>,
}

#[derive(Default)]
pub(super) struct Devices {
    pub(super) users: BTreeMap<UserId, TrackedUser>,
    /// The user's master private key, if this device holds it.
    pub(super) master_secret: Option<Ed25519SecretKey>,
}

impl Devices {
    pub(super) fn get(&self, user: &UserId, device: &DeviceId) -> Option<&TrackedDevice> {
        self.users.get(user)?.devices.get(device)
    }
}

/// Checks a device's self-signed identity keys.
fn check_identity(info: &DeviceKeysInfo) -> Result<(), String> {
    if info.keys.algorithm != OLM_V1 {
        return Err(format!(
            "algorithm {:?} is not {OLM_V1}",
            info.keys.algorithm
        ));
    }
    Ed25519PublicKey::from_base64(&info.keys.signing_key)
        .map_err(|e| format!("signing key: {e}"))?;
    Curve25519PublicKey::from_base64(&info.keys.agreement_key)
        .map_err(|e| format!("agreement key: {e}"))?;
    let text = device_keys_text(
        &info.user,
        &info.device,
        &info.keys.algorithm,
        &info.keys.signing_key,
        &info.keys.agreement_key,
    );
    verify(&info.keys.signing_key, &text, &info.keys.signature)
        .map_err(|_| "the device's signature over its keys does not verify".to_string())
}

fn master_signs(
    master: &str,
    user: &UserId,
    device: &DeviceId,
    d: &TrackedDevice,
    sig: &str,
) -> bool {
    let text = device_signature_text(user, device, &d.signing_key, &d.agreement_key);
    verify(master, &text, sig).is_ok()
}

impl Machine {
    /// Takes in the directory's answer about one user: checks every
    /// signature, updates the tracked devices and returns what changed.
    /// The first answer about a user returns no `Added`/`Signed` (nothing
    /// was known before), only what was rejected.
    pub fn receive_device_keys(&mut self, keys: UserKeys) -> Vec<DeviceChange> {
        let user = keys.user;
        let mut changes = Vec::new();
        let reject = |changes: &mut Vec<DeviceChange>, device: Option<DeviceId>, reason: String| {
            changes.push(DeviceChange::Rejected {
                user: user.clone(),
                device,
                reason,
            })
        };
        let known = self.devices.users.contains_key(&user);
        let old = self.devices.users.get(&user).cloned().unwrap_or_default();

        // The master key: our own if this device holds it, else the
        // directory's if its self-signature verifies.
        let own_master = (user == self.user)
            .then(|| {
                self.devices
                    .master_secret
                    .as_ref()
                    .map(|s| s.public_key().to_base64())
            })
            .flatten();
        let mut master = match keys.master_key {
            Some(m) => match verify(&m.key, &master_key_text(&user, &m.key), &m.signature) {
                Ok(()) => Some(m.key),
                Err(_) => {
                    reject(
                        &mut changes,
                        None,
                        "the master key's self-signature does not verify".into(),
                    );
                    old.master_key.clone()
                }
            },
            // Omitting the key does not undo it: a server cannot strip trust.
            None => old.master_key.clone(),
        };
        if let Some(own) = own_master {
            if master.as_ref().is_some_and(|m| *m != own) {
                reject(
                    &mut changes,
                    None,
                    "the directory shows another master key than the one this device holds".into(),
                );
            }
            master = Some(own);
        }
        if master != old.master_key && old.master_key.is_some() {
            changes.push(DeviceChange::MasterKeyChanged {
                user: user.clone(),
                old: old.master_key.clone(),
                new: master.clone(),
            });
        }

        let mut devices = BTreeMap::new();
        for info in keys.devices {
            let device = info.device.clone();
            if info.user != user {
                reject(
                    &mut changes,
                    Some(device),
                    "the device belongs to another user".into(),
                );
                continue;
            }
            if let Err(reason) = check_identity(&info) {
                reject(&mut changes, Some(device), reason);
                continue;
            }
            if user == self.user
                && device == self.device
                && (info.keys.signing_key != self.signing_key()
                    || info.keys.agreement_key != self.agreement_key())
            {
                reject(
                    &mut changes,
                    Some(device),
                    "the directory shows other keys for this very device".into(),
                );
                continue;
            }
            let before = old.devices.get(&device);
            let (mut tracked, signature) = match before {
                Some(b)
                    if b.signing_key != info.keys.signing_key
                        || b.agreement_key != info.keys.agreement_key =>
                {
                    reject(
                        &mut changes,
                        Some(device.clone()),
                        "the device's identity keys changed: kept the old ones".into(),
                    );
                    (b.clone(), None)
                }
                _ => (
                    TrackedDevice {
                        signing_key: info.keys.signing_key,
                        agreement_key: info.keys.agreement_key,
                        master_signature: None,
                    },
                    info.master_signature,
                ),
            };
            // A signature seen before (or made here by sign_device) is kept
            // while it verifies: omitting it does not unverify the device.
            let signature = signature.or_else(|| before.and_then(|d| d.master_signature.clone()));
            tracked.master_signature = None;
            if let (Some(sig), Some(m)) = (signature, master.as_ref()) {
                if master_signs(m, &user, &device, &tracked, &sig) {
                    tracked.master_signature = Some(sig);
                } else {
                    reject(
                        &mut changes,
                        Some(device.clone()),
                        "the master key's signature of the device does not verify".into(),
                    );
                }
            }
            devices.insert(device, tracked);
        }

        // This very device stays tracked, its keys known first hand, even
        // before the directory shows it.
        if user == self.user && !devices.contains_key(&self.device) {
            if let Some(me) = old.devices.get(&self.device) {
                devices.insert(self.device.clone(), me.clone());
            }
        }
        if known {
            for (device, d) in &devices {
                let r = DeviceRef {
                    user: user.clone(),
                    device: device.clone(),
                };
                let before = old.devices.get(device);
                if before.is_none() {
                    changes.push(DeviceChange::Added(r.clone()));
                }
                if d.master_signature.is_some()
                    && before.is_none_or(|b| b.master_signature.is_none())
                {
                    changes.push(DeviceChange::Signed(r));
                }
            }
        }
        let removed: Vec<DeviceId> = old
            .devices
            .keys()
            .filter(|d| !devices.contains_key(*d))
            .cloned()
            .collect();
        for device in removed {
            let r = DeviceRef {
                user: user.clone(),
                device,
            };
            self.megolm.device_removed(&r);
            changes.push(DeviceChange::Removed(r));
        }
        self.devices.users.insert(
            user,
            TrackedUser {
                master_key: master,
                devices,
            },
        );
        changes
    }

    /// The tracked devices of `users` (this device excepted): the member
    /// devices of a conversation with these members, for [`Machine::encrypt`].
    pub fn devices_of(&self, users: &[UserId]) -> Vec<DeviceRef> {
        let mut out = Vec::new();
        for user in users {
            if let Some(u) = self.devices.users.get(user) {
                for device in u.devices.keys() {
                    if *user != self.user || *device != self.device {
                        out.push(DeviceRef {
                            user: user.clone(),
                            device: device.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Whether the user's master key signed the device.
    pub fn device_trust(&self, user: &UserId, device: &DeviceId) -> DeviceTrust {
        match self.devices.get(user, device) {
            None => DeviceTrust::Unknown,
            Some(d) if d.master_signature.is_some() => DeviceTrust::Verified,
            Some(_) => DeviceTrust::Unverified,
        }
    }

    /// The pinned master key of a user (base64), if known.
    pub fn master_key(&self, user: &UserId) -> Option<String> {
        if *user == self.user {
            if let Some(secret) = &self.devices.master_secret {
                return Some(secret.public_key().to_base64());
            }
        }
        self.devices.users.get(user)?.master_key.clone()
    }

    /// Whether this device holds the user's master private key.
    pub fn has_master_key(&self) -> bool {
        self.devices.master_secret.is_some()
    }

    /// Creates the user's master signing key on the user's first device and
    /// signs this device with it. Refused when the directory already shows
    /// a master key for the user (query the own user first): then another
    /// device signs this one.
    pub fn create_master_key(&mut self) -> Result<MasterKeyUpload, E2eError> {
        if self.devices.master_secret.is_some()
            || self
                .devices
                .users
                .get(&self.user)
                .is_some_and(|u| u.master_key.is_some())
        {
            return Err(E2eError::Refused(
                "the user already has a master key: have this device signed by another".into(),
            ));
        }
        self.devices.master_secret = Some(Ed25519SecretKey::new());
        self.master_key_upload()
    }

    /// The upload of the master key this device holds: its self-signature
    /// and its signature of this device, the same bytes as
    /// [`Machine::create_master_key`] returned (Ed25519 signs
    /// deterministically). For a first upload that did not reach the
    /// server: the state with the new key was saved before it was sent.
    pub fn master_key_upload(&mut self) -> Result<MasterKeyUpload, E2eError> {
        let Some(secret) = &self.devices.master_secret else {
            return Err(E2eError::NoMasterKey);
        };
        let key = secret.public_key().to_base64();
        let signature = secret
            .sign(master_key_text(&self.user, &key).as_bytes())
            .to_base64();
        let own = self.own_device_info();
        let device_signature = self.sign_device(&own)?;
        Ok(MasterKeyUpload {
            master_key: MasterKeyInfo { key, signature },
            device: self.device.clone(),
            device_signature,
        })
    }

    pub(super) fn own_device_info(&self) -> DeviceKeysInfo {
        DeviceKeysInfo {
            user: self.user.clone(),
            device: self.device.clone(),
            keys: self.identity_keys(),
            master_signature: None,
        }
    }

    /// Signs another device of the same user with the master key, after
    /// the user confirmed on this device that it is theirs. Returns the
    /// signature to upload; the device counts as verified here at once.
    pub fn sign_device(&mut self, device: &DeviceKeysInfo) -> Result<String, E2eError> {
        let Some(secret) = &self.devices.master_secret else {
            return Err(E2eError::NoMasterKey);
        };
        if device.user != self.user {
            return Err(E2eError::Refused(
                "the master key signs only its own user's devices".into(),
            ));
        }
        check_identity(device).map_err(E2eError::BadSignature)?;
        let user = self.devices.users.entry(self.user.clone()).or_default();
        if let Some(tracked) = user.devices.get(&device.device) {
            if tracked.signing_key != device.keys.signing_key
                || tracked.agreement_key != device.keys.agreement_key
            {
                return Err(E2eError::Refused(
                    "the device's keys differ from the tracked ones".into(),
                ));
            }
        }
        let text = device_signature_text(
            &device.user,
            &device.device,
            &device.keys.signing_key,
            &device.keys.agreement_key,
        );
        let signature = secret.sign(text.as_bytes()).to_base64();
        user.master_key = Some(secret.public_key().to_base64());
        user.devices.insert(
            device.device.clone(),
            TrackedDevice {
                signing_key: device.keys.signing_key.clone(),
                agreement_key: device.keys.agreement_key.clone(),
                master_signature: Some(signature.clone()),
            },
        );
        Ok(signature)
    }

    /// Takes in the master private key forwarded by another own device.
    /// Accepted only when its public half is the user's pinned master key.
    pub(super) fn accept_master_secret(&mut self, secret: &str) -> Result<(), E2eError> {
        let secret = Ed25519SecretKey::from_base64(secret)
            .map_err(|e| E2eError::Malformed(e.to_string()))?;
        let public = secret.public_key().to_base64();
        if self.master_key(&self.user).as_deref() != Some(public.as_str()) {
            return Err(E2eError::Refused(
                "the forwarded master key is not the user's master key".into(),
            ));
        }
        self.devices.master_secret = Some(secret);
        Ok(())
    }
}
