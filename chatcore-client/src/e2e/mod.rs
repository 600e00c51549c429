//! End-to-end encryption: the device's keys, Olm channels between devices,
//! Megolm sessions per conversation, device tracking under a per-user
//! master key, safety numbers, and the encrypted state at rest.
//!
//! [`Machine`] is a pure state machine on vodozemac: it never touches the
//! network nor reads the clock. The application feeds it what the server
//! sends (key query answers, claimed keys, to-device messages, encrypted
//! contents) and sends what it returns (key uploads, to-device messages,
//! encrypted contents). Every call that depends on time takes `now`
//! (milliseconds since the epoch).
//!
//! # Layout
//! - `account`: the identity, one-time and fallback keys to upload ([`KeyUpload`]).
//! - `devices`: the tracked devices of users, their signatures checked here,
//!   the master key, device signatures and [`DeviceTrust`].
//! - `olm`: to-device messages encrypted per device ([`ToDeviceOut`], [`ToDeviceIn`], [`Received`]).
//! - `megolm`: conversation sessions, rotation, room keys and forwarding
//!   ([`EncryptedContent`], [`Encrypted`], [`Decrypted`]).
//! - `backup`: the encrypted key backup ([`RecoveryKey`], [`Machine::create_backup`],
//!   [`Machine::backup_batch`], [`Machine::restore_backup_keys`]).
//! - `safety`: [`safety_number`] of two users.
//! - `store`: [`Machine::to_bytes`] / [`Machine::from_bytes`], encrypted at rest.
//!
//! # Trust, history and what is checked
//!
//! - Nothing from the server is trusted: device keys, one-time keys, the
//!   master key and device signatures are verified here; a device's keys
//!   never change under its id; a user's master key is pinned when first
//!   seen and a change is reported ([`DeviceChange::MasterKeyChanged`]).
//! - Conversation keys go to every tracked device of the members, verified
//!   or not (as Signal and Matrix do by default); [`DeviceTrust`] lets the
//!   app show which ones the user's master key signed.
//! - A device reads a conversation from the time it got the session key: a
//!   new member gets the current session at its current index, so earlier
//!   messages give [`E2eError::BeforeKey`]. A user's new device reads the
//!   earlier history only through [`Machine::forward_keys`] from another
//!   own device, and only once the master key signed it, or from the key
//!   backup with the recovery key ([`Machine::restore_backup_keys`]).
//! - A conversation key counts only when it arrived over Olm from the
//!   device that the content names as its sender (or was forwarded by an
//!   own verified device); the plaintext names its conversation, so a
//!   ciphertext replayed elsewhere is refused. Olm plaintexts name sender
//!   and recipient (user, device, Ed25519 key), checked on receipt.
//!
//! # How an app drives it
//!
//! 1. On sign-in, [`Machine::new`] (or [`Machine::from_bytes`]); upload
//!    [`Machine::keys_to_upload`] with the server's key counts, then call
//!    [`Machine::mark_keys_published`]. Repeat when the server reports a low
//!    one-time key count or a used fallback key. The first device of a user
//!    calls [`Machine::create_master_key`] and uploads the result.
//! 2. Feed every key query answer to [`Machine::receive_device_keys`] (for the
//!    own user too) and warn about the [`DeviceChange`]s it returns.
//! 3. To send: [`Machine::encrypt`] with the member devices
//!    ([`Machine::devices_of`]). When it returns [`Outcome::NeedsClaims`],
//!    claim one-time keys for those devices, give them to
//!    [`Machine::receive_claimed_keys`] and call `encrypt` again. Send the
//!    returned to-device messages first, then the content.
//! 4. Give each incoming to-device message to [`Machine::receive_to_device`]
//!    (duplicates are recognised); on [`Received::RoomKey`] with `waiting`,
//!    decrypt again the messages of that session. [`Received::Deferred`] means:
//!    query that user's keys, then call [`Machine::retry_deferred`].
//! 5. Decrypt each encrypted content with [`Machine::decrypt`].
//! 6. When a member leaves or is removed, call [`Machine::update_members`].
//! 7. A new device of the user: once the user confirms it on a device that
//!    holds the master key, [`Machine::sign_device`] (upload the signature),
//!    then [`Machine::forward_keys`] for the history and
//!    [`Machine::share_master_key`] so that it can sign later devices.
//!    Other own devices see [`DeviceChange::Signed`] and may forward too.
//! 8. Key backup (docs/E2E.md, "Key backup"): on a device with the master
//!    key, [`Machine::create_backup`] with a new [`RecoveryKey`], create it
//!    on the server (`create_backup`), [`Machine::adopt_backup`] the reply
//!    and show [`RecoveryKey::to_text`] once. Every device adopts the
//!    server's current backup (its signature is checked) and uploads
//!    [`Machine::backup_batch`] after saving the state, then calls
//!    [`Machine::mark_backed_up`]. A new device restores with
//!    [`RecoveryKey::parse`], [`Machine::restore_backup_keys`] per page of
//!    `get_backup_keys`, [`Machine::unseal_master_key`] and
//!    [`Machine::sign_own_device`] (upload the signature).
//! 9. After every call that changed the state, persist [`Machine::to_bytes`].
//!
//! ```
//! use chatcore_client::e2e::{Decrypted, Machine, Outcome, UserKeys};
//! use chatcore_client::chatcore::model::{ConversationId, DeviceId, MessageId, UserId};
//! use chatcore_client::chatcore::protocol::{ClaimedKey, DeviceKeysInfo};
//!
//! # fn main() -> Result<(), chatcore_client::e2e::E2eError> {
//! let now = 1_700_000_000_000;
//! let mut alice = Machine::new(UserId::from("alice"), DeviceId::from("a1"));
//! let mut bob = Machine::new(UserId::from("bob"), DeviceId::from("b1"));
//! // What the server's directory would hold after the uploads.
//! let bob_upload = bob.keys_to_upload(Default::default());
//! bob.mark_keys_published();
//! let bob_keys = bob_upload.device_keys.clone().unwrap();
//! alice.receive_device_keys(UserKeys {
//!     user: bob.user().clone(),
//!     master_key: None,
//!     devices: vec![DeviceKeysInfo {
//!         user: bob.user().clone(), device: bob.device().clone(), keys: bob_keys, master_signature: None,
//!     }],
//! });
//! bob.receive_device_keys(UserKeys {
//!     user: alice.user().clone(),
//!     master_key: None,
//!     devices: vec![DeviceKeysInfo {
//!         user: alice.user().clone(), device: alice.device().clone(), keys: alice.identity_keys(), master_signature: None,
//!     }],
//! });
//!
//! let conv = ConversationId::from("dm:alice:bob");
//! let members = alice.devices_of(&[bob.user().clone()]);
//! let Outcome::NeedsClaims(devices) = alice.encrypt(&conv, &members, b"hi", now)? else { unreachable!() };
//! // The server hands out one of Bob's one-time keys.
//! let claimed: Vec<ClaimedKey> = devices.iter().map(|d| ClaimedKey {
//!     user: d.user.clone(), device: d.device.clone(),
//!     key: bob_upload.one_time_keys[0].clone(), fallback: false,
//! }).collect();
//! alice.receive_claimed_keys(&devices, &claimed, now);
//! let Outcome::Ready(sent) = alice.encrypt(&conv, &members, b"hi", now)? else { unreachable!() };
//! for message in &sent.to_device {
//!     // The server delivers it with a timestamp.
//!     bob.receive_to_device(&message.delivered(alice.user(), alice.device(), now), now)?;
//! }
//! // The server stores it as a message with its own id.
//! let id = MessageId::from("m1");
//! match bob.decrypt(&conv, &id, alice.user(), &sent.content)? {
//!     Decrypted::Plain { content, .. } => assert_eq!(content, b"hi"),
//!     Decrypted::Waiting { .. } => unreachable!(),
//! }
//! # Ok(()) }
//! ```
//!
//! Payload formats (MessagePack maps with named fields, each tagged by a
//! `type` field) are documented on [`ToDeviceOut::payload`] and
//! [`EncryptedContent::ciphertext`].

mod account;
mod backup;
mod devices;
mod megolm;
mod olm;
mod safety;
mod store;

use chatcore::model::{DeviceId, UserId};
use chatcore::protocol::DeviceRef;

pub use account::{KeyUpload, ONE_TIME_KEY_TARGET};
pub use backup::{BackupBatch, NewBackup, RecoveryKey, BACKUP_KEYS_PER_PUT, BACKUP_V1};
pub use devices::{DeviceChange, DeviceTrust, MasterKeyUpload, UserKeys};
pub use megolm::{
    Decrypted, Encrypted, EncryptedContent, SessionRef, MAX_SESSION_AGE, MAX_SESSION_MESSAGES,
    MEGOLM_V1,
};
pub use olm::{Received, ToDeviceIn, ToDeviceOut};
pub use safety::safety_number;

/// The end-to-end state of one device: its account, the devices it tracks,
/// its Olm and Megolm sessions. See the [module documentation](self).
pub struct Machine {
    user: UserId,
    device: DeviceId,
    account: account::AccountState,
    devices: devices::Devices,
    olm: olm::OlmState,
    megolm: megolm::MegolmState,
    backup: Option<backup::BackupState>,
}

impl std::fmt::Debug for Machine {
    // Never prints key material.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Machine")
            .field("user", &self.user)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl Machine {
    /// A new device of `user` with fresh identity keys.
    pub fn new(user: UserId, device: DeviceId) -> Self {
        Self {
            user,
            device,
            account: account::AccountState::new(),
            devices: devices::Devices::default(),
            olm: olm::OlmState::default(),
            megolm: megolm::MegolmState::default(),
            backup: None,
        }
    }

    /// The user this device belongs to.
    pub fn user(&self) -> &UserId {
        &self.user
    }

    /// This device.
    pub fn device(&self) -> &DeviceId {
        &self.device
    }

    fn me(&self) -> DeviceRef {
        DeviceRef {
            user: self.user.clone(),
            device: self.device.clone(),
        }
    }
}

/// What a step needs before it can be done, or its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<T> {
    /// These devices have no Olm session with this one yet: claim a
    /// one-time key of each (`claim_keys`), give the answer to
    /// [`Machine::receive_claimed_keys`] and call again. Nothing changed.
    NeedsClaims(Vec<DeviceRef>),
    /// Done.
    Ready(T),
}

/// Why an end-to-end operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum E2eError {
    /// The stored state does not open with this key, or was altered.
    #[error("the stored end-to-end state does not decrypt: wrong key or tampered bytes")]
    StoreDecrypt,
    /// The stored state decrypts but is not in a format this version reads.
    #[error("the stored end-to-end state is malformed: {0}")]
    StoreFormat(String),
    /// The stored state was written by a newer version of this library.
    #[error(
        "the stored end-to-end state has schema {found}, newer than {supported}: update the app"
    )]
    StoreTooNew {
        /// The schema of the stored state.
        found: u32,
        /// The newest schema this version reads.
        supported: u32,
    },
    /// The operating system's random generator failed.
    #[error("the random generator failed")]
    Random,
    /// A signature did not verify, or a key was malformed.
    #[error("invalid signature or key: {0}")]
    BadSignature(String),
    /// The device's keys are not tracked: query its user's keys first.
    #[error("the keys of device {device} of {user} are unknown: query them first")]
    UnknownDevice {
        /// The user.
        user: UserId,
        /// The device.
        device: DeviceId,
    },
    /// No Olm session with the device: claim a one-time key first.
    #[error("no Olm session with device {device} of {user}: claim a one-time key first")]
    NoSession {
        /// The user.
        user: UserId,
        /// The device.
        device: DeviceId,
    },
    /// A payload could not be decoded.
    #[error("malformed payload: {0}")]
    Malformed(String),
    /// The kind or algorithm is not one this machine handles.
    #[error("unsupported kind or algorithm {0:?}")]
    Unsupported(String),
    /// An Olm message did not decrypt.
    #[error("the Olm message does not decrypt: {0}")]
    OlmDecrypt(String),
    /// A Megolm message did not decrypt.
    #[error("the encrypted message does not decrypt: {0}")]
    MegolmDecrypt(String),
    /// The message was encrypted before the key this device holds: the
    /// device got the session later (e.g. it joined later) and may not read it.
    #[error("the message (index {index}) predates this device's key (from index {first_known})")]
    BeforeKey {
        /// The message's index in its session.
        index: u32,
        /// The first index this device can read.
        first_known: u32,
    },
    /// The inner fields of a message do not match where it came from or
    /// where it arrived: it was replayed or forged.
    #[error("the message does not belong here: {0}")]
    Misbound(String),
    /// The message repeats the session index of an earlier message under
    /// another message id: the server replayed it.
    #[error("the message replays index {index} of its session, first seen as message {first}")]
    Replayed {
        /// The index in the session.
        index: u32,
        /// The message that had it first.
        first: chatcore::model::MessageId,
    },
    /// The message was encrypted for another conversation.
    #[error("the message was encrypted for another conversation")]
    WrongConversation,
    /// This device does not hold the user's master private key.
    #[error("this device does not hold the master signing key")]
    NoMasterKey,
    /// A typed recovery key is malformed (mistyped, wrong length or
    /// character): nothing was tried with it.
    #[error("the recovery key is not valid: {0}")]
    RecoveryKey(String),
    /// The recovery key does not open this backup.
    #[error("the recovery key does not open this key backup")]
    WrongRecoveryKey,
    /// The operation is not allowed (its message says why).
    #[error("refused: {0}")]
    Refused(String),
}

fn malformed(e: impl std::fmt::Display) -> E2eError {
    E2eError::Malformed(e.to_string())
}
