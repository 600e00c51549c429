//! An end-to-end encrypted client: a [`Client`] and an [`e2e::Machine`]
//! wired together, so that an application sends and reads encrypted
//! conversations without driving the machine by hand.
//!
//! [`SecureClient::start`] takes a signed-in connection. It opens the
//! device's stored state (or creates it), publishes the device's keys, and
//! on the user's first device creates the user's master key. From then on:
//!
//! - [`SecureEvents::recv`] processes what the server pushes: `to_device`
//!   payloads go through the machine and are acknowledged once processed
//!   (each once per `(from_device, id)`: the machine recognises
//!   redeliveries), `key_counts` tops the one-time keys up, and `message`
//!   pushes come out decrypted ([`SecureEvent::Message`]). A message whose
//!   key has not arrived yet is [`Body::Waiting`]; when the key comes, a
//!   [`SecureEvent::Decrypted`] brings its text.
//! - [`SecureClient::send_encrypted`] resolves the conversation's members,
//!   queries their devices, claims one-time keys where an Olm channel is
//!   missing, sends the conversation key to the devices that lack it and
//!   then the ciphertext. The member list is given to the machine before
//!   each message, so a removed member (or a device that is gone) makes
//!   the next message use a new key.
//! - [`SecureClient::verify_device`] signs the user's new device with the
//!   master key (after the user confirmed it is theirs), gives it the
//!   master key, and forwards it the conversation keys for the history.
//! - [`SecureClient::enable_backup`] turns the encrypted key backup on
//!   (docs/E2E.md, "Key backup") and returns the recovery key to show the
//!   user once. Every device of the user then backs up the conversation
//!   keys it makes or receives, once they are saved (a device follows the
//!   current backup from [`SecureClient::start`] on, after checking that
//!   the user's master key signed it). [`SecureClient::restore_backup`]
//!   brings the history back on a new device with the recovery key, even
//!   when no other device of the user is online, and signs the device with
//!   the master key sealed in the backup.
//! - [`SecureClient::seal_call_signal`] seals a call's SDP or ICE
//!   candidates for the other side's devices (an encrypted conversation
//!   takes no other), and [`SecureClient::open_call_signal`] opens a
//!   `call_signal` push's, refusing one sealed for another call
//!   (docs/E2E.md, "A sealed call signal").
//!
//! Run [`SecureEvents::recv`] in a task of its own (both halves are
//! `Send`): as with [`Client`], pushes that are not taken in hold up the
//! replies behind them, so a send would wait for its own reply in vain.
//!
//! The state is saved after every change, encrypted with the 32-byte key
//! the application gives, through a [`MachineStore`] ([`MemoryStore`],
//! [`FileStore`], or the application's own). Saves run on a thread of
//! their own, in order, never on an async worker; whatever leaves the
//! device because of a change (an upload, an acknowledgement, a
//! ciphertext) waits until the change is saved.
//!
//! Limits: a device reads a conversation from the time it got the key; a
//! user's new device reads the earlier history only once another own device
//! verified it, or from the key backup. A `devices_changed` push refreshes that user's devices at
//! once; the devices of the members are also queried again before each
//! message, as pushes are best effort.
//!
//! # Example
//!
//! ```no_run
//! use chatcore_client::secure::{MemoryStore, SecureClient, SecureEvent, SecureOptions};
//! use chatcore_client::{Client, ConnectOptions};
//! use std::sync::Arc;
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let (client, events) = Client::connect("ws://127.0.0.1:8080/ws", ConnectOptions::new()).await?;
//! let session = client.login("alice", "violet harbour anchor 1917", "laptop").await?;
//! // The key would come from the platform's key store.
//! let options = SecureOptions::new(Arc::new(MemoryStore::default()), [7; 32]);
//! let (alice, mut events) = SecureClient::start(client, events, &session, options).await?;
//!
//! let bob = alice.client().search_users("bob", None, None).await?.users[0].profile.user.clone();
//! let conv = alice.client().open_encrypted_direct(&bob).await?.conv;
//! alice.send_encrypted(&conv, "only Bob's devices can read this").await?;
//!
//! while let Some(event) = events.recv().await {
//!     match event {
//!         SecureEvent::Message(m) | SecureEvent::Decrypted(m) => {
//!             println!("{}: {}", m.message.from, m.text().unwrap_or("(waiting for its key)"))
//!         }
//!         SecureEvent::Closed(_) => break,
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! The key backup: turned on once, on a device that holds the master key
//! (the user's first device); restored on a new device with the key the
//! user wrote down.
//!
//! ```no_run
//! # use chatcore_client::secure::{SecureClient, SecureError};
//! # use chatcore_client::e2e::E2eError;
//! # async fn demo(laptop: SecureClient, new_phone: SecureClient) -> Result<(), SecureError> {
//! let recovery_key = laptop.enable_backup().await?;
//! println!("Write this down, it is shown once: {recovery_key}");
//!
//! // Later, every device lost, on a fresh sign-in:
//! match new_phone.restore_backup("q3v9t 0aw4p ...").await {
//!     Ok(restored) => println!("{} conversation keys restored", restored.imported),
//!     Err(SecureError::E2e(E2eError::RecoveryKey(why))) => println!("mistyped: {why}"),
//!     Err(SecureError::E2e(E2eError::WrongRecoveryKey)) => println!("not this backup's key"),
//!     Err(e) => return Err(e),
//! }
//! # Ok(()) }
//! ```

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use chatcore::e2e::{decode_payload, encode_payload};
use chatcore::model::{Content, ConversationId, DeviceId, Message as ChatMessage, Millis, UserId};
use chatcore::protocol::{
    BackupKeyRef, DeviceKeysInfo, DeviceRef, DeviceSignature, KeyCountsInfo, MasterKeyInfo,
    OutgoingToDevice, ServerFrame, ToDeviceAck, ToDeviceMessage,
};

use crate::e2e::{
    self, DeviceChange, DeviceTrust, E2eError, KeyUpload, Machine, Outcome, Received, RecoveryKey,
    SessionRef, ToDeviceOut, UserKeys, BACKUP_KEYS_PER_PUT,
};
use crate::{Client, Close, Error, ErrorCode, Event, Events, SessionInfo};

mod calls;
mod store;

pub use calls::CALL_SIGNAL_KIND;
pub use store::{FileStore, MachineStore, MemoryStore};
use store::{Saver, Saving};

/// The largest to-device payload this client decodes (the server's
/// default bound is 32 KiB; a payload is never larger than a frame).
const MAX_PAYLOAD: usize = 64 * 1024;
/// Bytes of to-device payloads per `send_to_device` frame: frames stay
/// under the server's 64 KiB limit with room for ids and names.
const FRAME_BUDGET: usize = 48 * 1024;
/// What the server takes per request: devices per claim, users per query,
/// payloads and users per `send_to_device`, acknowledgements per ack.
const PER_REQUEST: usize = 100;
const PAYLOADS_PER_FRAME: usize = 1000;
/// Messages kept while they wait for their key (the oldest go first).
const MAX_WAITING: usize = 1000;
/// How often a step that needed claims is tried again.
const CLAIM_ROUNDS: usize = 3;
/// Keys per `get_backup_keys` page (the server's cap).
const BACKUP_PAGE: u32 = 200;

/// How [`SecureClient::start`] keeps the state.
#[derive(Clone)]
#[non_exhaustive]
pub struct SecureOptions {
    /// Where the encrypted state is saved.
    pub store: Arc<dyn MachineStore>,
    /// The key that encrypts the state at rest; the application keeps it
    /// (in the platform's key store), never beside the state.
    pub key: [u8; 32],
}

impl SecureOptions {
    /// The state in `store`, encrypted with `key`.
    pub fn new(store: Arc<dyn MachineStore>, key: [u8; 32]) -> Self {
        Self { store, key }
    }
}

impl std::fmt::Debug for SecureOptions {
    // Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureOptions").finish_non_exhaustive()
    }
}

/// Why a secure operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecureError {
    /// A request failed.
    #[error(transparent)]
    Client(#[from] Error),
    /// The end-to-end machine refused or failed.
    #[error(transparent)]
    E2e(#[from] E2eError),
    /// The state could not be loaded or saved.
    #[error("the end-to-end state store failed: {0}")]
    Store(#[from] std::io::Error),
    /// The operation is not possible as asked (its message says why).
    #[error("{0}")]
    Refused(String),
}

/// What [`SecureClient::restore_backup`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Restored {
    /// Conversation keys imported from the backup.
    pub imported: usize,
    /// Keys refused (tampered, moved to another conversation or session,
    /// malformed); each is logged.
    pub refused: usize,
    /// Whether the master key sealed in the backup was unsealed and signed
    /// this device (it then shows as verified to everyone).
    pub verified: bool,
}

/// What a message says, as far as this device can read it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// Not encrypted: the content is in the message as the server has it
    /// (plain text, or a notice).
    Clear,
    /// Decrypted.
    Text {
        /// The text.
        text: String,
        /// The device that sent it.
        sender: DeviceRef,
        /// Whether the sender's user's master key signed that device.
        trust: DeviceTrust,
        /// The key came from another own device (history) or the key
        /// backup, not from the sender.
        forwarded: bool,
    },
    /// Decrypted: a photo, a file or a voice message. Its `content` is an
    /// image, file or voice content whose `encryption` decrypts the file
    /// ([`crate::media::decrypt_file`]) and whose media id the message's
    /// envelope lists.
    Media {
        /// The content.
        content: Content,
        /// The device that sent it.
        sender: DeviceRef,
        /// Whether the sender's user's master key signed that device.
        trust: DeviceTrust,
        /// The key came from another own device (history) or the key
        /// backup, not from the sender.
        forwarded: bool,
    },
    /// Its key has not arrived yet: a [`SecureEvent::Decrypted`] follows
    /// when it does.
    Waiting {
        /// The awaited session.
        session: SessionRef,
    },
    /// It cannot be decrypted here, and never will be (sent before this
    /// device got the key, forged, replayed, or malformed).
    Undecryptable {
        /// Why.
        reason: String,
    },
}

/// A message with what this device reads of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecureMessage {
    /// The message as the server stored it.
    pub message: ChatMessage,
    /// Its content for this device.
    pub body: Body,
}

/// A page of history, decrypted as far as this device can
/// ([`SecureClient::history`]).
#[derive(Clone, Debug)]
pub struct SecurePage {
    /// The page, ascending by seq.
    pub messages: Vec<SecureMessage>,
    /// Whether older entries exist.
    pub more: bool,
    /// The edits, reactions and deletions of the page's messages and the
    /// messages its replies quote ([`crate::Page::related`]).
    pub related: Vec<SecureMessage>,
}

impl SecureMessage {
    /// The text: decrypted, or the plain text of an unencrypted message.
    pub fn text(&self) -> Option<&str> {
        match (&self.body, &self.message.content) {
            (Body::Text { text, .. }, _) => Some(text),
            (Body::Clear, Content::Text { text }) => Some(text),
            _ => None,
        }
    }
}

/// Something the server sent, after the secure client processed it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecureEvent {
    /// A new message, decrypted if it was encrypted.
    Message(SecureMessage),
    /// A message that was [`Body::Waiting`] became readable.
    Decrypted(SecureMessage),
    /// The devices or master key of users this device tracks changed:
    /// show it ("Bob added a new device", "Bob's safety number changed").
    DevicesChanged(Vec<DeviceChange>),
    /// Another own device gave this one the user's master key: this device
    /// can now verify the user's later devices.
    MasterKeyReceived {
        /// The device that sent it.
        from: DeviceRef,
    },
    /// An application payload sent over Olm (e.g. call signalling).
    Custom {
        /// Who sent it.
        from: DeviceRef,
        /// The application's kind.
        kind: String,
        /// The payload.
        data: Vec<u8>,
    },
    /// Any other push, as the server sent it.
    Push(ServerFrame),
    /// The connection ended; the last event.
    Closed(Close),
}

struct Shared {
    client: Client,
    machine: Mutex<Machine>,
    /// One multi-step operation at a time (sending, processing pushes,
    /// verifying), so that keys are generated, published and used in order.
    op: tokio::sync::Mutex<()>,
    options: SecureOptions,
    /// Saves the state off the async workers, in order.
    saver: Saver,
    waiting: Mutex<Waiting>,
    /// Events found outside [`SecureEvents::recv`] (device changes seen
    /// while sending), handed out by the next `recv`.
    notices: Mutex<VecDeque<SecureEvent>>,
}

#[derive(Default)]
struct Waiting {
    by_session: std::collections::BTreeMap<SessionRef, Vec<ChatMessage>>,
    order: VecDeque<(SessionRef, ChatMessage)>,
}

impl Waiting {
    fn add(&mut self, session: SessionRef, message: ChatMessage) {
        let list = self.by_session.entry(session.clone()).or_default();
        if list.iter().any(|m| m.id == message.id) {
            return;
        }
        list.push(message.clone());
        self.order.push_back((session, message));
        while self.order.len() > MAX_WAITING {
            if let Some((s, m)) = self.order.pop_front() {
                if let Some(list) = self.by_session.get_mut(&s) {
                    list.retain(|x| x.id != m.id);
                    if list.is_empty() {
                        self.by_session.remove(&s);
                    }
                }
            }
        }
    }

    fn take(&mut self, session: &SessionRef) -> Vec<ChatMessage> {
        let list = self.by_session.remove(session).unwrap_or_default();
        self.order.retain(|(s, _)| s != session);
        list
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as Millis)
}

/// An end-to-end encrypted client: see the [module documentation](self).
/// Cheap to clone; clones share the connection and the state.
#[derive(Clone)]
pub struct SecureClient {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SecureClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // try_lock: formatting must never wait for (or deadlock on) the state.
        let machine = self
            .shared
            .machine
            .try_lock()
            .map(|m| format!("{m:?}"))
            .unwrap_or_else(|_| "(busy)".into());
        f.debug_struct("SecureClient")
            .field("machine", &machine)
            .finish_non_exhaustive()
    }
}

/// The pushes of a [`SecureClient`], processed: see [`SecureEvents::recv`].
pub struct SecureEvents {
    events: Events,
    shared: Arc<Shared>,
    queue: VecDeque<SecureEvent>,
}

impl std::fmt::Debug for SecureEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecureEvents")
            .field("queued", &self.queue.len())
            .finish_non_exhaustive()
    }
}

impl SecureClient {
    /// Takes over a signed-in connection (`session` is the reply of its
    /// register, login or resume): opens the device's saved state, or
    /// creates it when there is none or it belongs to another device (a
    /// login is a new device); publishes the device's keys; on the user's
    /// first device, creates the master key and signs the device with it.
    pub async fn start(
        client: Client,
        events: Events,
        session: &SessionInfo,
        options: SecureOptions,
    ) -> Result<(SecureClient, SecureEvents), SecureError> {
        let store = options.store.clone();
        let saved = tokio::task::spawn_blocking(move || store.load())
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        let machine = match saved {
            Some(bytes) => {
                let m = Machine::from_bytes(&bytes, &options.key)?;
                if *m.user() == session.user && *m.device() == session.device {
                    m
                } else {
                    tracing::info!("the saved end-to-end state is another device's: starting anew");
                    Machine::new(session.user.clone(), session.device.clone())
                }
            }
            None => Machine::new(session.user.clone(), session.device.clone()),
        };
        let shared = Arc::new(Shared {
            client,
            machine: Mutex::new(machine),
            op: tokio::sync::Mutex::new(()),
            saver: Saver::new(options.store.clone())?,
            options,
            waiting: Mutex::new(Waiting::default()),
            notices: Mutex::new(VecDeque::new()),
        });
        let secure = SecureClient {
            shared: shared.clone(),
        };
        {
            let _op = shared.op.lock().await;
            secure.publish_keys(session.keys, true).await?;
            // Keys made here go to the user's backup, if there is one.
            if let Err(e) = secure.follow_backup().await {
                tracing::warn!(error = %e, "the key backup is not followed");
            }
            secure.back_up_quietly().await;
        }
        let events = SecureEvents {
            events,
            shared,
            queue: VecDeque::new(),
        };
        Ok((secure, events))
    }

    /// The connection, for everything that is not end-to-end specific
    /// (conversations, members, plain requests).
    pub fn client(&self) -> &Client {
        &self.shared.client
    }

    /// The user.
    pub fn user(&self) -> UserId {
        lock(&self.shared.machine).user().clone()
    }

    /// This device.
    pub fn device(&self) -> DeviceId {
        lock(&self.shared.machine).device().clone()
    }

    /// Runs `f` on the machine (e.g. to read [`Machine::device_trust`]),
    /// then queues the state to be saved (the next step that sends
    /// anything waits until it is).
    pub fn with_machine<R>(&self, f: impl FnOnce(&mut Machine) -> R) -> Result<R, SecureError> {
        let mut m = lock(&self.shared.machine);
        let r = f(&mut m);
        self.shared
            .saver
            .save_later(m.to_bytes(&self.shared.options.key)?);
        Ok(r)
    }

    /// Queues the state to be saved: serialised here, under the machine's
    /// lock, so saves land in the order of the changes; written by the
    /// saver's thread. Await [`Saving::done`] before anything that depends
    /// on the change leaves the device (an upload, an ack, a ciphertext
    /// whose ratchet step must never be used twice).
    fn persist(&self, machine: &Machine) -> Result<Saving, SecureError> {
        Ok(self
            .shared
            .saver
            .save(machine.to_bytes(&self.shared.options.key)?))
    }

    /// Queues the state to be saved with nobody waiting (a failure is
    /// logged): for changes nothing sent depends on.
    fn persist_later(&self, machine: &Machine) {
        match machine.to_bytes(&self.shared.options.key) {
            Ok(bytes) => self.shared.saver.save_later(bytes),
            Err(e) => tracing::warn!(error = %e, "the end-to-end state was not saved"),
        }
    }

    fn notify(&self, changes: Vec<DeviceChange>) {
        if !changes.is_empty() {
            lock(&self.shared.notices).push_back(SecureEvent::DevicesChanged(changes));
        }
    }

    /// Uploads what the machine has to publish given `counts`; with
    /// `own_first`, queries the own user first and creates the master key
    /// if the user has none yet. Called under the `op` lock.
    async fn publish_keys(
        &self,
        counts: KeyCountsInfo,
        own_first: bool,
    ) -> Result<(), SecureError> {
        let me = self.user();
        let mut own_master = None;
        if own_first {
            let own = self
                .query_user_keys(std::slice::from_ref(&me), None)
                .await?;
            let mut changes = Vec::new();
            {
                let mut m = lock(&self.shared.machine);
                for keys in own {
                    own_master = own_master.or(keys.master_key.clone());
                    changes.extend(m.receive_device_keys(keys));
                }
            }
            self.notify(changes);
        }
        let (upload, saved) = {
            let mut m = lock(&self.shared.machine);
            let mut upload = m.keys_to_upload(counts);
            // The directory shows no master key for the user: this is the
            // first device, or its first upload of the key never arrived
            // (the state holding the key was saved before it was sent):
            // upload it again rather than keep a key nobody else knows.
            let master = if !own_first || own_master.is_some() {
                None
            } else if m.has_master_key() {
                Some(m.master_key_upload()?)
            } else if m.master_key(&me).is_none() {
                Some(m.create_master_key()?)
            } else {
                None
            };
            if let Some(created) = master {
                upload.master_key = Some(MasterKeyInfo {
                    key: created.master_key.key,
                    signature: created.master_key.signature,
                });
                upload.signatures.push(DeviceSignature {
                    device: created.device,
                    signature: created.device_signature,
                });
            }
            (upload, self.persist(&m)?)
        };
        // Saved before the upload: keys the server may hold must never be
        // lost here. Unpublished keys are offered again next time.
        saved.done().await?;
        if upload.is_empty() {
            return Ok(());
        }
        self.shared.client.upload_keys(upload).await?;
        let saved = {
            let mut m = lock(&self.shared.machine);
            m.mark_keys_published();
            self.persist(&m)?
        };
        Ok(saved.done().await?)
    }

    /// The directory's answer about `users` (through `conv` when given),
    /// one [`UserKeys`] per user asked, each with all of that user's
    /// devices the answer holds. Through `conv`, a user without devices in
    /// the answer is kept (a member who left: the machine takes the devices
    /// as gone); without, such a user is left out.
    async fn query_user_keys(
        &self,
        users: &[UserId],
        conv: Option<&ConversationId>,
    ) -> Result<Vec<UserKeys>, SecureError> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let users: Vec<UserId> = users
            .iter()
            .filter(|u| seen.insert((*u).clone()))
            .cloned()
            .collect();
        for chunk in users.chunks(PER_REQUEST) {
            let (devices, masters) = self.shared.client.query_keys_full(chunk, conv).await?;
            for user in chunk {
                // Without a conversation, an empty answer may only mean the
                // user is out of reach now: it must not untrack devices
                // known through a conversation.
                if conv.is_none()
                    && !devices.iter().any(|d| d.user == *user)
                    && !masters.iter().any(|m| m.user == *user)
                {
                    continue;
                }
                out.push(UserKeys {
                    user: user.clone(),
                    master_key: masters
                        .iter()
                        .find(|m| m.user == *user)
                        .map(|m| m.master_key.clone()),
                    devices: devices
                        .iter()
                        .filter(|d| d.user == *user)
                        .cloned()
                        .collect(),
                });
            }
        }
        Ok(out)
    }

    /// Queries `users` and feeds the answer to the machine; the changes go
    /// to the events.
    async fn refresh_keys(
        &self,
        users: &[UserId],
        conv: Option<&ConversationId>,
    ) -> Result<Vec<DeviceKeysInfo>, SecureError> {
        let answer = self.query_user_keys(users, conv).await?;
        let devices = answer
            .iter()
            .flat_map(|u| u.devices.iter().cloned())
            .collect();
        let mut changes = Vec::new();
        let saved = {
            let mut m = lock(&self.shared.machine);
            for keys in answer {
                changes.extend(m.receive_device_keys(keys));
            }
            self.persist(&m)?
        };
        saved.done().await?;
        self.notify(changes);
        Ok(devices)
    }

    /// Runs `f` until it no longer needs claims: claims the one-time keys
    /// it asks for (through `conv`), gives them to the machine, tries again.
    async fn with_claims<T>(
        &self,
        conv: Option<&ConversationId>,
        mut f: impl FnMut(&mut Machine, Millis) -> Result<Outcome<T>, E2eError>,
    ) -> Result<T, SecureError> {
        for _ in 0..CLAIM_ROUNDS {
            let needs = {
                let mut m = lock(&self.shared.machine);
                match f(&mut m, now())? {
                    Outcome::Ready(t) => Ok((t, self.persist(&m)?)),
                    Outcome::NeedsClaims(devices) => Err(devices),
                }
            };
            let needs = match needs {
                Ok((t, saved)) => {
                    saved.done().await?;
                    return Ok(t);
                }
                Err(devices) => devices,
            };
            let mut claimed = Vec::new();
            for chunk in needs.chunks(PER_REQUEST) {
                claimed.extend(self.shared.client.claim_keys(chunk, conv).await?);
            }
            let saved = {
                let mut m = lock(&self.shared.machine);
                for (device, why) in m.receive_claimed_keys(&needs, &claimed, now()) {
                    tracing::warn!(user = %device.user, device = %device.device, error = %why,
                        "no encrypted channel to a device");
                }
                self.persist(&m)?
            };
            saved.done().await?;
        }
        Err(SecureError::Refused(
            "devices still lack an encrypted channel after claiming their keys".into(),
        ))
    }

    /// Sends to-device messages, as many frames as they need (each under
    /// the frame limit); `conv` lets the server reach its members. Targets
    /// the server refused are logged: they miss this key. Returns the
    /// devices the server took a message for.
    async fn send_out(
        &self,
        conv: Option<&ConversationId>,
        messages: Vec<ToDeviceOut>,
    ) -> Result<Vec<DeviceRef>, SecureError> {
        let mut taken = Vec::new();
        let mut batch: Vec<OutgoingToDevice> = Vec::new();
        let mut users: HashSet<UserId> = HashSet::new();
        let mut bytes = 0;
        let mut kind = String::new();
        let mut pending = messages.into_iter().peekable();
        while let Some(message) = pending.next() {
            let payload = encode_payload(&message.payload);
            let size = payload.len() + message.id.len() + 128;
            let full = !batch.is_empty()
                && (bytes + size > FRAME_BUDGET
                    || batch.len() >= PAYLOADS_PER_FRAME
                    || (!users.contains(&message.user) && users.len() >= PER_REQUEST)
                    || kind != message.kind);
            if full {
                taken.extend(
                    self.send_batch(&kind, std::mem::take(&mut batch), conv)
                        .await?,
                );
                users.clear();
                bytes = 0;
            }
            kind = message.kind.clone();
            bytes += size;
            users.insert(message.user.clone());
            batch.push(OutgoingToDevice {
                user: message.user,
                device: Some(message.device),
                id: message.id,
                payload,
            });
            if pending.peek().is_none() {
                taken.extend(
                    self.send_batch(&kind, std::mem::take(&mut batch), conv)
                        .await?,
                );
            }
        }
        Ok(taken)
    }

    /// Sends one `send_to_device` frame; returns the devices the server
    /// took a message for (all but the `undelivered` ones).
    async fn send_batch(
        &self,
        kind: &str,
        batch: Vec<OutgoingToDevice>,
        conv: Option<&ConversationId>,
    ) -> Result<Vec<DeviceRef>, SecureError> {
        let targets: Vec<DeviceRef> = batch
            .iter()
            .filter_map(|m| {
                m.device.clone().map(|device| DeviceRef {
                    user: m.user.clone(),
                    device,
                })
            })
            .collect();
        let (_, undelivered) = self.shared.client.send_to_device(kind, batch, conv).await?;
        for u in &undelivered {
            tracing::warn!(user = %u.user, device = ?u.device, reason = ?u.reason,
                "a conversation key was not delivered");
        }
        Ok(targets
            .into_iter()
            .filter(|t| {
                !undelivered
                    .iter()
                    .any(|u| u.user == t.user && u.device.as_ref().is_none_or(|d| *d == t.device))
            })
            .collect())
    }

    /// Encrypts `text` for the encrypted conversation `conv` and sends it:
    /// the members' devices are queried (a removed member or a gone device
    /// rotates the key), keys go first to the devices that lack them, then
    /// the message. Every device of every member can read it, the user's
    /// other devices included.
    pub async fn send_encrypted(
        &self,
        conv: &ConversationId,
        text: &str,
    ) -> Result<crate::Sent, SecureError> {
        let client_id = uuid::Uuid::new_v4().to_string();
        self.send_encrypted_related(conv, &client_id, None, Vec::new(), text)
            .await
    }

    /// [`SecureClient::send_encrypted`] of a reply, an edit or a reaction
    /// (`rel`), mentioning `mentions`, under `client_id`: the text (the
    /// quote's reply, the new text, the emoji) is ciphertext; `rel` and
    /// `mentions` travel beside it in the clear, as the server routes by
    /// them (docs/E2E.md). A deletion has no content to encrypt: use
    /// [`crate::Client::delete_message`].
    pub async fn send_encrypted_related(
        &self,
        conv: &ConversationId,
        client_id: &str,
        rel: Option<chatcore::model::Rel>,
        mentions: Vec<UserId>,
        text: &str,
    ) -> Result<crate::Sent, SecureError> {
        self.send_encrypted_bytes(conv, client_id, rel, mentions, Vec::new(), text.as_bytes())
            .await
    }

    /// Sends a photo, file or voice message to the encrypted conversation
    /// `conv` under `client_id` (a reply when `rel` says so): `content` is
    /// an image, file or voice content naming a file encrypted with
    /// [`crate::media::encrypt_file`] and uploaded, with its `encryption`.
    /// The whole content, key included, is ciphertext; the envelope lists
    /// the media id in the clear, as the server keeps the file by it.
    ///
    /// ```no_run
    /// # async fn run(secure: &chatcore_client::secure::SecureClient,
    /// #     media: &chatcore_client::media::MediaClient,
    /// #     conv: &chatcore::model::ConversationId) -> Result<(), Box<dyn std::error::Error>> {
    /// use chatcore::model::Content;
    /// use chatcore_client::media::encrypt_file;
    /// let (sealed, encryption) = encrypt_file(b"%PDF-1.7 ...")?;
    /// let up = media.upload(sealed).await?;
    /// let file = Content::File {
    ///     media: up.id, name: "report.pdf".into(), mime: "application/pdf".into(),
    ///     size: 12, encryption: Some(encryption),
    /// };
    /// secure.send_encrypted_media(conv, "client-id-1", None, file).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send_encrypted_media(
        &self,
        conv: &ConversationId,
        client_id: &str,
        rel: Option<chatcore::model::Rel>,
        content: Content,
    ) -> Result<crate::Sent, SecureError> {
        let media: Vec<chatcore::model::MediaId> = content.media().cloned().into_iter().collect();
        check_media(&content, &media).map_err(SecureError::Refused)?;
        let bytes = rmp_serde::to_vec_named(&content)
            .map_err(|e| SecureError::Refused(format!("the content cannot be encoded: {e}")))?;
        if !is_structured(&bytes) {
            return Err(SecureError::Refused(
                "the content has too many fields to encode".into(),
            ));
        }
        self.send_encrypted_bytes(conv, client_id, rel, Vec::new(), media, &bytes)
            .await
    }

    /// Encrypts the application content `bytes` (UTF-8 text or a
    /// structured content) for `conv` and sends it with this envelope.
    async fn send_encrypted_bytes(
        &self,
        conv: &ConversationId,
        client_id: &str,
        rel: Option<chatcore::model::Rel>,
        mentions: Vec<UserId>,
        media: Vec<chatcore::model::MediaId>,
        bytes: &[u8],
    ) -> Result<crate::Sent, SecureError> {
        let _op = self.shared.op.lock().await;
        let info = self.shared.client.get_conversation(conv).await?;
        if !info.encrypted {
            return Err(SecureError::Refused(format!(
                "conversation {conv} is not encrypted: turn encryption on first"
            )));
        }
        let members: Vec<UserId> = info.members.iter().map(|m| m.user.clone()).collect();
        // The members' devices, queried through the conversation before
        // every message: a `devices_changed` push is best effort (a device
        // offline when it was sent learns of the change only here), and a
        // member who left must be seen gone for the session to rotate.
        self.refresh_keys(&members, Some(conv)).await?;
        let devices = {
            let mut m = lock(&self.shared.machine);
            let devices = m.devices_of(&members);
            m.update_members(conv, &devices);
            devices
        };
        let encrypted = self
            .with_claims(Some(conv), |m, now| m.encrypt(conv, &devices, bytes, now))
            .await?;
        for d in &encrypted.without_key {
            tracing::warn!(user = %d.user, device = %d.device, "a member device got no key");
        }
        // The room keys count as delivered only once the server took them:
        // a send lost with the link (or cut short by a restart) leaves them
        // unconfirmed in the saved state, and the next attempt sends them
        // again.
        let session = encrypted.content.session.clone();
        let taken = self.send_out(Some(conv), encrypted.to_device).await?;
        if !taken.is_empty() {
            let saved = {
                let mut m = lock(&self.shared.machine);
                m.confirm_shared(conv, &session, &taken);
                self.persist(&m)?
            };
            saved.done().await?;
        }
        let content = Content::Encrypted {
            algorithm: encrypted.content.algorithm.into(),
            device: encrypted.content.device,
            session: encrypted.content.session,
            ciphertext: encode_payload(&encrypted.content.ciphertext),
        };
        let sent = self
            .shared
            .client
            .send_envelope_with_retry(conv, client_id, rel, mentions, media, content, 3)
            .await?;
        // A new session is in the saved state: back it up.
        self.back_up_quietly().await;
        Ok(sent)
    }

    /// A page of `conv`'s history (as [`Client::history`]), decrypted as
    /// far as this device can; the waiting ones come as
    /// [`SecureEvent::Decrypted`] when their keys arrive.
    pub async fn history(
        &self,
        conv: &ConversationId,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<SecurePage, SecureError> {
        let page = self.shared.client.history(conv, before, limit).await?;
        let waiting = {
            let mut m = lock(&self.shared.machine);
            page.messages
                .iter()
                .chain(&page.related)
                .any(|message| matches!(decrypt_with(&mut m, message), Body::Waiting { .. }))
        };
        if waiting {
            // Their keys may sit among the deferred to-device payloads,
            // from senders reachable only through this conversation.
            let _op = self.shared.op.lock().await;
            if let Some(events) = self.retry_through(conv).await {
                lock(&self.shared.notices).extend(events);
            }
        }
        Ok(SecurePage {
            messages: page
                .messages
                .into_iter()
                .map(|m| self.decrypt_message(m))
                .collect(),
            more: page.more,
            related: page
                .related
                .into_iter()
                .map(|m| self.decrypt_message(m))
                .collect(),
        })
    }

    /// Queries the members of `conv` (whose keys may be reachable only
    /// through it) and retries the deferred to-device payloads: the events
    /// they make, or `None` when none was processed. Called under `op`.
    async fn retry_through(&self, conv: &ConversationId) -> Option<Vec<SecureEvent>> {
        let members = match self.shared.client.get_conversation(conv).await {
            Ok(info) => info.members.into_iter().map(|m| m.user).collect::<Vec<_>>(),
            Err(e) => {
                tracing::debug!(error = %e, "members not known");
                return None;
            }
        };
        if let Err(e) = self.refresh_keys(&members, Some(conv)).await {
            tracing::debug!(error = %e, "keys not refreshed");
            return None;
        }
        let results = {
            let mut m = lock(&self.shared.machine);
            let results = m.retry_deferred(now());
            self.persist_later(&m);
            results
        };
        if results.is_empty() {
            return None;
        }
        Some(self.absorb(results))
    }

    /// Turns what the machine made of to-device payloads into events, and
    /// decrypts the messages that waited for a key that came.
    fn absorb(&self, results: Vec<Result<Received, E2eError>>) -> Vec<SecureEvent> {
        let mut events = Vec::new();
        for r in results {
            match r {
                Ok(Received::RoomKey { session, .. }) => {
                    let messages = lock(&self.shared.waiting).take(&session);
                    for message in messages {
                        let decrypted = self.decrypt_message(message);
                        if !matches!(decrypted.body, Body::Waiting { .. }) {
                            events.push(SecureEvent::Decrypted(decrypted));
                        }
                    }
                }
                Ok(Received::MasterKey { from }) => {
                    events.push(SecureEvent::MasterKeyReceived { from });
                }
                Ok(Received::Custom { from, kind, data }) => {
                    events.push(SecureEvent::Custom { from, kind, data });
                }
                Ok(Received::Duplicate | Received::Deferred { .. }) => {}
                Err(e) => tracing::warn!(error = %e, "to-device payload refused"),
            }
        }
        events
    }

    /// Decrypts a message as far as this device can (a waiting one is
    /// remembered and resolved when its key arrives).
    pub fn decrypt_message(&self, message: ChatMessage) -> SecureMessage {
        let body = {
            let mut m = lock(&self.shared.machine);
            let body = decrypt_with(&mut m, &message);
            self.persist_later(&m);
            body
        };
        if let Body::Waiting { session } = &body {
            lock(&self.shared.waiting).add(session.clone(), message.clone());
        }
        SecureMessage { message, body }
    }

    /// Verifies the user's new `device` after the user confirmed on this
    /// device that it is theirs: signs it with the master key (uploaded,
    /// so every device sees it verified), gives it the master key (so it
    /// can verify later devices) and forwards it the conversation keys this
    /// device holds, so it reads the earlier history. Needs the master key
    /// on this device.
    pub async fn verify_device(&self, device: &DeviceId) -> Result<(), SecureError> {
        let _op = self.shared.op.lock().await;
        let me = self.user();
        let own = self.refresh_keys(std::slice::from_ref(&me), None).await?;
        let Some(info) = own.into_iter().find(|d| d.device == *device) else {
            return Err(SecureError::Refused(format!(
                "device {device} of {me} has published no keys"
            )));
        };
        let (signature, saved) = {
            let mut m = lock(&self.shared.machine);
            let signature = m.sign_device(&info)?;
            (signature, self.persist(&m)?)
        };
        saved.done().await?;
        self.shared
            .client
            .upload_keys(KeyUpload {
                signatures: vec![DeviceSignature {
                    device: device.clone(),
                    signature,
                }],
                ..KeyUpload::default()
            })
            .await?;
        let master = self
            .with_claims(None, |m, now| m.share_master_key(device, now))
            .await?;
        let forwarded = self
            .with_claims(None, |m, now| m.forward_keys(device, None, now))
            .await?;
        let mut out = vec![master];
        out.extend(forwarded);
        self.send_out(None, out).await.map(|_| ())
    }

    /// Turns the encrypted key backup on (docs/E2E.md, "Key backup"):
    /// makes a new recovery key, creates the backup on the server (it
    /// replaces any earlier one: the user's other devices follow the new
    /// one), uploads every conversation key this device holds, and returns
    /// the recovery key's text, to show the user once. From then on every
    /// device of the user backs up the keys it makes or receives. Needs the
    /// master key on this device.
    pub async fn enable_backup(&self) -> Result<String, SecureError> {
        let _op = self.shared.op.lock().await;
        let recovery = RecoveryKey::generate()?;
        let new = {
            let m = lock(&self.shared.machine);
            if !m.has_master_key() {
                return Err(SecureError::Refused(
                    "a backup is made on a device that holds the master key".into(),
                ));
            }
            m.create_backup(&recovery)?
        };
        let info = self
            .shared
            .client
            .create_backup(&new.algorithm, &new.auth_data)
            .await?;
        let saved = {
            let mut m = lock(&self.shared.machine);
            m.adopt_backup(&info)?;
            self.persist(&m)?
        };
        saved.done().await?;
        self.upload_backup().await?;
        Ok(recovery.to_text())
    }

    /// Restores the conversation keys from the backup with the recovery
    /// key the user typed (e.g. on a new device when no other is online):
    /// pages through the backup's keys and imports them (the messages that
    /// waited for them come as [`SecureEvent::Decrypted`]; the history reads
    /// with [`SecureClient::history`]), then unseals the master key and
    /// signs this device with it (the signature is uploaded), so that it is
    /// verified and can verify the next device.
    ///
    /// Errors: [`E2eError::RecoveryKey`] for a mistyped key,
    /// [`E2eError::WrongRecoveryKey`] for another backup's key,
    /// [`E2eError::BadSignature`] for a backup the user's master key did
    /// not sign, [`SecureError::Refused`] when the user has no backup.
    pub async fn restore_backup(&self, recovery_key: &str) -> Result<Restored, SecureError> {
        let recovery = RecoveryKey::parse(recovery_key)?;
        let _op = self.shared.op.lock().await;
        let me = self.user();
        self.refresh_keys(std::slice::from_ref(&me), None).await?;
        let Some(info) = self.shared.client.get_backup().await? else {
            return Err(SecureError::Refused(
                "the user has no key backup to restore".into(),
            ));
        };
        {
            // Checked before anything is imported: the signature, then
            // whether the recovery key opens it.
            let mut m = lock(&self.shared.machine);
            m.restore_backup_keys(&recovery, &info, &[])?;
            m.adopt_backup(&info)?;
        }
        let mut restored = Restored {
            imported: 0,
            refused: 0,
            verified: false,
        };
        let mut after: Option<BackupKeyRef> = None;
        loop {
            let (keys, more) = self
                .shared
                .client
                .get_backup_keys(&info.version, after.as_ref(), Some(BACKUP_PAGE))
                .await?;
            let (results, saved) = {
                let mut m = lock(&self.shared.machine);
                let results = m.restore_backup_keys(&recovery, &info, &keys)?;
                (results, self.persist(&m)?)
            };
            saved.done().await?;
            for (key, r) in keys.iter().zip(&results) {
                match r {
                    Ok(_) => restored.imported += 1,
                    Err(e) => {
                        restored.refused += 1;
                        tracing::warn!(conv = %key.conv, session = %key.session, error = %e,
                            "a backed-up key was refused");
                    }
                }
            }
            let events = self.absorb(results);
            lock(&self.shared.notices).extend(events);
            after = keys.last().map(|k| BackupKeyRef {
                conv: k.conv.clone(),
                session: k.session.clone(),
            });
            if !more || keys.is_empty() {
                break;
            }
        }
        let signed = {
            let mut m = lock(&self.shared.machine);
            let signed = m
                .unseal_master_key(&recovery, &info)
                .and_then(|()| m.sign_own_device());
            (signed, self.persist(&m)?)
        };
        signed.1.done().await?;
        match signed.0 {
            Ok(signature) => {
                self.shared
                    .client
                    .upload_keys(KeyUpload {
                        signatures: vec![DeviceSignature {
                            device: self.device(),
                            signature,
                        }],
                        ..KeyUpload::default()
                    })
                    .await?;
                restored.verified = true;
            }
            // The user made a new master key since the backup: the keys
            // are restored, the device stays unverified.
            Err(e) => tracing::warn!(error = %e, "the backup's master key was not taken"),
        }
        self.back_up_quietly().await;
        Ok(restored)
    }

    /// Adopts the user's current backup, if any, after checking its
    /// signature (a backup that does not verify is not followed). Called
    /// under `op`.
    async fn follow_backup(&self) -> Result<(), SecureError> {
        let current = self.shared.client.get_backup().await?;
        let mut m = lock(&self.shared.machine);
        let adopted = match &current {
            Some(info) => m.adopt_backup(info),
            None => {
                m.forget_backup();
                Ok(())
            }
        };
        if adopted.is_err() {
            m.forget_backup();
        }
        self.persist_later(&m);
        Ok(adopted?)
    }

    /// Uploads the keys not yet in the adopted backup, at most
    /// [`BACKUP_KEYS_PER_PUT`] per request; when the server no longer has
    /// that version (another device made a new backup), follows the new
    /// one and uploads everything again. Called under `op`, after the
    /// state holding the keys was saved.
    async fn upload_backup(&self) -> Result<(), SecureError> {
        let mut followed = false;
        loop {
            let batch = lock(&self.shared.machine).backup_batch(BACKUP_KEYS_PER_PUT)?;
            let Some(batch) = batch else {
                return Ok(());
            };
            match self
                .shared
                .client
                .put_backup_keys(&batch.version, &batch.keys)
                .await
            {
                Ok(_) => {
                    let mut m = lock(&self.shared.machine);
                    m.mark_backed_up(&batch);
                    self.persist_later(&m);
                }
                Err(e) if e.code() == Some(ErrorCode::NotFound) && !followed => {
                    followed = true;
                    self.follow_backup().await?;
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// [`SecureClient::upload_backup`], a failure logged: the keys stay
    /// pending and go with the next upload.
    async fn back_up_quietly(&self) {
        if let Err(e) = self.upload_backup().await {
            tracing::warn!(error = %e, "conversation keys not backed up yet");
        }
    }

    /// The safety number of this user and `user`, from their master keys:
    /// the same on both sides, and unchanged when either adds a device.
    /// Compare it in person or over another channel.
    pub async fn safety_number(&self, user: &UserId) -> Result<String, SecureError> {
        let _op = self.shared.op.lock().await;
        let me = self.user();
        let known = {
            let m = lock(&self.shared.machine);
            m.master_key(user).is_some() && m.master_key(&me).is_some()
        };
        if !known {
            self.refresh_keys(&[me, user.clone()], None).await?;
        }
        let m = lock(&self.shared.machine);
        Ok(m.safety_number(user)?)
    }

    /// Whether `user`'s master key signed their `device`, as known here.
    pub fn device_trust(&self, user: &UserId, device: &DeviceId) -> DeviceTrust {
        lock(&self.shared.machine).device_trust(user, device)
    }
}

fn decrypt_with(m: &mut Machine, message: &ChatMessage) -> Body {
    let Content::Encrypted {
        algorithm,
        device,
        session,
        ciphertext,
    } = &message.content
    else {
        return Body::Clear;
    };
    let ciphertext = match decode_payload(ciphertext, MAX_PAYLOAD) {
        Ok(c) => c,
        Err(e) => {
            return Body::Undecryptable {
                reason: e.to_string(),
            }
        }
    };
    let content = e2e::EncryptedContent {
        algorithm: algorithm.to_string(),
        device: device.clone(),
        session: session.clone(),
        ciphertext,
    };
    match m.decrypt(&message.conv, &message.id, &message.from, &content) {
        Ok(e2e::Decrypted::Plain {
            content,
            sender,
            forwarded,
            trust,
            ..
        }) if is_structured(&content) => match read_media(&content, message) {
            Ok(content) => Body::Media {
                content,
                sender,
                trust,
                forwarded,
            },
            Err(reason) => Body::Undecryptable { reason },
        },
        Ok(e2e::Decrypted::Plain {
            content,
            sender,
            forwarded,
            trust,
            ..
        }) => match String::from_utf8(content) {
            Ok(text) => Body::Text {
                text,
                sender,
                trust,
                forwarded,
            },
            Err(_) => Body::Undecryptable {
                reason: "the decrypted content is not text".into(),
            },
        },
        Ok(e2e::Decrypted::Waiting { session }) => Body::Waiting { session },
        Err(e) => Body::Undecryptable {
            reason: e.to_string(),
        },
    }
}

/// Whether a decrypted content is a MessagePack map (its first byte a
/// fixmap's, 0x80 to 0x8F, which never begins UTF-8 text) rather than text
/// (docs/E2E.md, *Formats*).
fn is_structured(content: &[u8]) -> bool {
    matches!(content.first(), Some(0x80..=0x8f))
}

/// A decrypted structured content: a photo, file or voice message whose
/// file is encrypted and listed in the envelope, or why not.
fn read_media(bytes: &[u8], message: &ChatMessage) -> Result<Content, String> {
    let content: Content = rmp_serde::from_slice(bytes)
        .map_err(|e| format!("the decrypted content is malformed: {e}"))?;
    check_media(&content, &message.media)?;
    Ok(content)
}

/// What a media content inside the ciphertext must be: an image, file or
/// voice content, its file encrypted, and listed in the envelope (which is
/// what keeps the file stored).
fn check_media(content: &Content, listed: &[chatcore::model::MediaId]) -> Result<(), String> {
    let Some(media) = content.media() else {
        return Err(format!(
            "a structured content is a photo, file or voice message, not {}",
            content.kind()
        ));
    };
    if content.encryption().is_none() {
        return Err("a file in an encrypted message must be encrypted".into());
    }
    if !listed.contains(media) {
        return Err("the file is not listed in the message's envelope".into());
    }
    Ok(())
}

impl SecureEvents {
    /// The next event, after processing: to-device payloads and key counts
    /// are handled here and never returned; messages come decrypted. `None`
    /// after [`SecureEvent::Closed`].
    ///
    /// Processing a push may send requests (acknowledgements, key queries,
    /// uploads) and wait for their replies; keep calling `recv` so pushes
    /// do not pile up behind them.
    pub async fn recv(&mut self) -> Option<SecureEvent> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            if let Some(e) = lock(&self.shared.notices).pop_front() {
                return Some(e);
            }
            match self.events.recv().await? {
                Event::Closed(close) => return Some(SecureEvent::Closed(close)),
                Event::Push(frame) => self.handle(frame).await,
            }
        }
    }

    fn secure(&self) -> SecureClient {
        SecureClient {
            shared: self.shared.clone(),
        }
    }

    async fn handle(&mut self, frame: ServerFrame) {
        let shared = self.shared.clone();
        match frame {
            ServerFrame::ToDevice { messages } => {
                let _op = shared.op.lock().await;
                if let Err(e) = self.process_to_device(messages).await {
                    // Unacknowledged payloads come again after a reconnect.
                    tracing::warn!(error = %e, "to-device payloads not processed");
                }
            }
            ServerFrame::KeyCounts {
                id: None,
                one_time,
                fallback_unused,
            } => {
                let _op = shared.op.lock().await;
                let counts = KeyCountsInfo {
                    one_time,
                    fallback_unused,
                };
                if let Err(e) = self.secure().publish_keys(counts, false).await {
                    tracing::warn!(error = %e, "one-time keys not topped up");
                }
            }
            ServerFrame::Message { message } => {
                let secure = self.secure();
                let mut decrypted = secure.decrypt_message((*message).clone());
                if let Body::Waiting { .. } = decrypted.body {
                    // Its key may sit among the deferred to-device payloads,
                    // from a sender whose keys are reachable only through
                    // the conversation.
                    let _op = shared.op.lock().await;
                    if let Some(events) = secure.retry_through(&decrypted.message.conv).await {
                        self.queue.extend(events);
                        decrypted = secure.decrypt_message(decrypted.message);
                    }
                }
                if !matches!(decrypted.body, Body::Waiting { .. }) {
                    self.resolved_elsewhere(&decrypted);
                }
                self.queue.push_back(SecureEvent::Message(decrypted));
            }
            ServerFrame::DevicesChanged { user } => {
                // Whose devices changed: their keys are queried again now,
                // so that a new device is known (and reported) before the
                // next message; `send_encrypted` still queries the members
                // before each send, as the push is best effort.
                let _op = shared.op.lock().await;
                if let Err(e) = self
                    .secure()
                    .refresh_keys(std::slice::from_ref(&user), None)
                    .await
                {
                    tracing::warn!(error = %e, %user, "device list not refreshed");
                }
                self.queue
                    .push_back(SecureEvent::Push(ServerFrame::DevicesChanged { user }));
            }
            other => self.queue.push_back(SecureEvent::Push(other)),
        }
    }

    /// A message read at once need not wait any more (it may also have
    /// been remembered from a history page).
    fn resolved_elsewhere(&self, message: &SecureMessage) {
        let mut waiting = lock(&self.shared.waiting);
        for list in waiting.by_session.values_mut() {
            list.retain(|m| m.id != message.message.id);
        }
    }

    async fn process_to_device(
        &mut self,
        messages: Vec<ToDeviceMessage>,
    ) -> Result<(), SecureError> {
        let secure = self.secure();
        let mut acks = Vec::new();
        let mut results = Vec::new();
        let mut deferred_users = Vec::new();
        let mut saved = {
            let mut m = lock(&self.shared.machine);
            for message in messages {
                acks.push(ToDeviceAck {
                    from_device: message.from_device.clone(),
                    id: message.id.clone(),
                });
                let payload = match decode_payload(&message.payload, MAX_PAYLOAD) {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "malformed to-device payload dropped");
                        continue;
                    }
                };
                let incoming = e2e::ToDeviceIn {
                    from_user: message.from_user,
                    from_device: message.from_device,
                    kind: message.kind,
                    id: message.id,
                    payload,
                    ts: message.ts,
                };
                let r = m.receive_to_device(&incoming, now());
                if let Ok(Received::Deferred { user }) = &r {
                    deferred_users.push(user.clone());
                }
                results.push(r);
            }
            secure.persist(&m)?
        };
        self.queue.extend(secure.absorb(results));
        if !deferred_users.is_empty() {
            // The senders' keys: without a conversation, the server answers
            // for users this one may reach; a message waiting in a
            // conversation retries through it (`retry_through`).
            secure.refresh_keys(&deferred_users, None).await?;
            let results = {
                let mut m = lock(&self.shared.machine);
                let r = m.retry_deferred(now());
                saved = secure.persist(&m)?;
                r
            };
            self.queue.extend(secure.absorb(results));
        }
        // Acknowledged only once processed and saved: a payload kept for
        // later (deferred) is in the saved state. The newest save covers
        // the ones before it.
        saved.done().await?;
        for chunk in acks.chunks(PAYLOADS_PER_FRAME) {
            secure.shared.client.ack_to_device(chunk).await?;
        }
        // The keys received are saved: back them up.
        secure.back_up_quietly().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatcore::model::MessageId;

    fn message(id: &str) -> ChatMessage {
        ChatMessage {
            media: Vec::new(),
            expires_at: None,
            mentions: Vec::new(),
            rel: None,
            id: MessageId::from(id),
            conv: ConversationId::from("g:1"),
            seq: 1,
            from: UserId::from("u"),
            client_id: id.into(),
            ts: 0,
            content: Content::Text { text: "x".into() },
        }
    }

    fn session(n: u32) -> SessionRef {
        SessionRef {
            conv: ConversationId::from("g:1"),
            user: UserId::from("u"),
            device: DeviceId::from("d"),
            session: format!("s{n}"),
        }
    }

    #[test]
    fn waiting_messages_are_bounded_deduplicated_and_taken_once() {
        let mut w = Waiting::default();
        w.add(session(0), message("m0"));
        w.add(session(0), message("m0"));
        assert_eq!(w.take(&session(0)).len(), 1, "a message waits once");
        assert!(w.take(&session(0)).is_empty(), "and is taken once");
        for i in 0..(MAX_WAITING as u32 + 10) {
            w.add(session(i % 3), message(&format!("m{i}")));
        }
        assert_eq!(w.order.len(), MAX_WAITING);
        let total: usize = (0..3).map(|i| w.take(&session(i)).len()).sum();
        assert_eq!(total, MAX_WAITING, "the oldest went first");
    }

    /// Apps run `SecureEvents::recv` in its own task and send from others.
    #[test]
    fn the_futures_are_send() {
        fn send<T: Send>(_: &T) {}
        fn check(client: SecureClient, mut events: SecureEvents, conv: ConversationId) {
            let events_task = async move { events.recv().await };
            send(&events_task);
            let client_task = async move {
                client.send_encrypted(&conv, "x").await?;
                client.verify_device(&DeviceId::from("d")).await?;
                client.safety_number(&UserId::from("u")).await?;
                client.enable_backup().await?;
                client.restore_backup("x").await?;
                let user = UserId::from("u");
                let plain = chatcore::protocol::CallSignal::default();
                let sealed = client
                    .seal_call_signal("c", &conv, &user, None, &plain)
                    .await?;
                let push = chatcore::protocol::CallSignalPush {
                    call: "c".into(),
                    device: DeviceId::from("d"),
                    sdp: None,
                    candidates: Vec::new(),
                    sealed: sealed.sealed.first().map(|s| s.payload.clone()),
                };
                client.open_call_signal(&user, &push).await?;
                client.history(&conv, None, None).await.map(|_| ())
            };
            send(&client_task);
        }
        let _ = check;
    }
}
