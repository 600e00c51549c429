//! Olm channels between devices, carried by to-device messages: session
//! setup from claimed one-time keys, encryption for one device, and the
//! receiving side (pre-key and normal messages), processed exactly once per
//! (sending device, id) although the server delivers at least once.

use std::collections::{BTreeMap, HashSet, VecDeque};

use chatcore::e2e::{one_time_key_text, verify, OLM_V1};
use chatcore::model::{ConversationId, DeviceId, Millis, UserId};
use chatcore::protocol::{ClaimedKey, DeviceRef};
use serde::{Deserialize, Serialize};
use vodozemac::megolm::{ExportedSessionKey, SessionKey};
use vodozemac::olm::{OlmMessage, Session, SessionConfig};
use vodozemac::Curve25519PublicKey;

use super::megolm::{device_key, InboundSource, NewKey};
use super::{malformed, DeviceTrust, E2eError, Machine, Outcome};

/// Olm sessions kept per peer device; older ones are dropped.
const MAX_SESSIONS_PER_DEVICE: usize = 8;
/// Processed to-device ids remembered to drop redeliveries.
const MAX_PROCESSED: usize = 4096;
/// To-device messages kept while their sender's keys are unknown.
const MAX_DEFERRED: usize = 256;
/// How long a to-device message waits for its sender's keys (by its `ts`).
const DEFER_FOR: Millis = 7 * 24 * 60 * 60 * 1000;
/// How long a device whose one-time key claim failed is not asked for again.
const CLAIM_RETRY_AFTER: Millis = 10 * 60 * 1000;

/// A to-device message to send (`send_to_device` of the server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToDeviceOut {
    /// The recipient user.
    pub user: UserId,
    /// The recipient device.
    pub device: DeviceId,
    /// Always [`chatcore::e2e::OLM_V1`].
    pub kind: String,
    /// Unique per sending device: a retry sends the same id and the server
    /// stores it once.
    pub id: String,
    /// MessagePack map `{ type: "olm.v1", sender_key: str, message_type:
    /// int, body: bin }`: the sender's Curve25519 key (base64), the Olm
    /// message type (0 pre-key, 1 normal) and the Olm message bytes.
    ///
    /// The Olm plaintext is a MessagePack map `{ type, sender,
    /// sender_device, sender_key, recipient, recipient_device,
    /// recipient_key, ...}` (the keys are the Ed25519 keys of the two
    /// devices, base64), checked on receipt against where it came from and
    /// where it arrived; by `type`, the other fields are:
    /// - `room_key`: `conv`, `session`, `key` (a Megolm session key, base64);
    /// - `forwarded_room_key`: `conv`, `session`, `key` (an exported Megolm
    ///   key, base64), `session_user`, `session_device`, `session_sender_key`
    ///   (who created the session and their Curve25519 key);
    /// - `master_key`: `key` (the master private key, base64);
    /// - `custom`: `kind` (str), `data` (bin), an application's payload.
    pub payload: Vec<u8>,
}

impl ToDeviceOut {
    /// The message as the recipient's server delivers it, sent by
    /// `from_user`'s `from_device` at `ts` (for tests and loopbacks).
    pub fn delivered(&self, from_user: &UserId, from_device: &DeviceId, ts: Millis) -> ToDeviceIn {
        ToDeviceIn {
            from_user: from_user.clone(),
            from_device: from_device.clone(),
            kind: self.kind.clone(),
            id: self.id.clone(),
            payload: self.payload.clone(),
            ts,
        }
    }
}

/// A to-device message as the server delivers it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToDeviceIn {
    /// The sending user (set by the server).
    pub from_user: UserId,
    /// The sending device (set by the server).
    pub from_device: DeviceId,
    /// The kind; this machine handles [`chatcore::e2e::OLM_V1`].
    pub kind: String,
    /// The sender's id of the message.
    pub id: String,
    /// See [`ToDeviceOut::payload`].
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// When the server stored it.
    pub ts: Millis,
}

/// What an incoming to-device message was.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Received {
    /// It was processed before (a redelivery): nothing to do.
    Duplicate,
    /// The sender's device keys are unknown: the message is kept (up to a
    /// week, 256 messages at most); query the user's keys, feed them, then
    /// call [`Machine::retry_deferred`].
    Deferred {
        /// Whose keys to query.
        user: UserId,
    },
    /// A Megolm session key: messages of that session now decrypt.
    RoomKey {
        /// The session (its conversation, creator and id).
        session: super::SessionRef,
        /// Forwarded by another own device (history), not by its creator.
        forwarded: bool,
        /// Messages of this session were waiting for it: decrypt them again.
        waiting: bool,
    },
    /// Another own device gave this one the master private key.
    MasterKey {
        /// The device that sent it.
        from: DeviceRef,
    },
    /// An application payload sent with [`Machine::encrypt_to_device`].
    Custom {
        /// Who sent it.
        from: DeviceRef,
        /// The application's kind.
        kind: String,
        /// The payload.
        data: Vec<u8>,
    },
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    sender_key: String,
    message_type: u8,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
}

#[derive(Serialize, Deserialize)]
struct Plaintext {
    sender: UserId,
    sender_device: DeviceId,
    sender_key: String,
    recipient: UserId,
    recipient_device: DeviceId,
    recipient_key: String,
    #[serde(flatten)]
    body: Body,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Body {
    RoomKey {
        conv: ConversationId,
        session: String,
        key: String,
    },
    ForwardedRoomKey {
        conv: ConversationId,
        session: String,
        key: String,
        session_user: UserId,
        session_device: DeviceId,
        session_sender_key: String,
    },
    MasterKey {
        key: String,
    },
    Custom {
        kind: String,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
}

#[derive(Default)]
pub(super) struct OlmState {
    /// Sessions per peer Curve25519 key, the one to encrypt with first.
    pub(super) sessions: BTreeMap<String, Vec<Session>>,
    pub(super) processed: VecDeque<(UserId, DeviceId, String)>,
    pub(super) processed_set: HashSet<(UserId, DeviceId, String)>,
    pub(super) deferred: Vec<ToDeviceIn>,
    /// Devices whose claim failed, and when.
    pub(super) claim_failed: BTreeMap<(UserId, DeviceId), Millis>,
}

impl OlmState {
    pub(super) fn remember(&mut self, key: (UserId, DeviceId, String)) {
        if self.processed_set.insert(key.clone()) {
            self.processed.push_back(key);
            while self.processed.len() > MAX_PROCESSED {
                if let Some(old) = self.processed.pop_front() {
                    self.processed_set.remove(&old);
                }
            }
        }
    }
}

impl Machine {
    /// Those of `devices` that have no Olm session with this one and whose
    /// claim did not fail recently: the devices to claim one-time keys for.
    pub fn needs_claims(&self, devices: &[DeviceRef], now: Millis) -> Vec<DeviceRef> {
        devices
            .iter()
            .filter(|d| !self.has_session(d) && !self.claim_failed_recently(d, now))
            .filter(|d| self.devices.get(&d.user, &d.device).is_some())
            .cloned()
            .collect()
    }

    pub(super) fn has_session(&self, d: &DeviceRef) -> bool {
        self.devices
            .get(&d.user, &d.device)
            .and_then(|t| self.olm.sessions.get(&t.agreement_key))
            .is_some_and(|s| !s.is_empty())
    }

    pub(super) fn claim_failed_recently(&self, d: &DeviceRef, now: Millis) -> bool {
        self.olm
            .claim_failed
            .get(&(d.user.clone(), d.device.clone()))
            .is_some_and(|t| now.saturating_sub(*t) < CLAIM_RETRY_AFTER)
    }

    /// Takes in the server's answer to a claim of `requested` devices:
    /// checks each key's signature by its device and opens an Olm session.
    /// Returns the devices that got none, and why; they are not asked for
    /// again for ten minutes (they get no room keys meanwhile).
    pub fn receive_claimed_keys(
        &mut self,
        requested: &[DeviceRef],
        claimed: &[ClaimedKey],
        now: Millis,
    ) -> Vec<(DeviceRef, E2eError)> {
        let mut failed = Vec::new();
        let mut done = HashSet::new();
        for c in claimed {
            let r = DeviceRef {
                user: c.user.clone(),
                device: c.device.clone(),
            };
            match self.open_session(c) {
                Ok(()) => {
                    self.olm
                        .claim_failed
                        .remove(&(c.user.clone(), c.device.clone()));
                    done.insert(device_key(&r));
                }
                Err(e) => failed.push((r, e)),
            }
        }
        for r in requested {
            if !done.contains(&device_key(r)) && !failed.iter().any(|(f, _)| f == r) {
                failed.push((
                    r.clone(),
                    E2eError::Refused("the server had no key for the device".into()),
                ));
            }
        }
        self.olm
            .claim_failed
            .retain(|_, t| now.saturating_sub(*t) < CLAIM_RETRY_AFTER);
        for (r, _) in &failed {
            self.olm
                .claim_failed
                .insert((r.user.clone(), r.device.clone()), now);
        }
        failed
    }

    fn open_session(&mut self, c: &ClaimedKey) -> Result<(), E2eError> {
        let Some(device) = self.devices.get(&c.user, &c.device) else {
            return Err(E2eError::UnknownDevice {
                user: c.user.clone(),
                device: c.device.clone(),
            });
        };
        let text = one_time_key_text(&c.user, &c.device, &c.key.id, &c.key.key);
        verify(&device.signing_key, &text, &c.key.signature).map_err(|_| {
            E2eError::BadSignature("the one-time key is not signed by its device".into())
        })?;
        let one_time = Curve25519PublicKey::from_base64(&c.key.key)
            .map_err(|e| E2eError::BadSignature(format!("one-time key: {e}")))?;
        let identity = Curve25519PublicKey::from_base64(&device.agreement_key)
            .map_err(|e| E2eError::BadSignature(format!("agreement key: {e}")))?;
        let session = self
            .account
            .account
            .create_outbound_session(SessionConfig::version_1(), identity, one_time)
            .map_err(|e| E2eError::BadSignature(e.to_string()))?;
        let key = device.agreement_key.clone();
        self.add_session(key, session);
        Ok(())
    }

    fn add_session(&mut self, key: String, session: Session) {
        let list = self.olm.sessions.entry(key).or_default();
        list.insert(0, session);
        list.truncate(MAX_SESSIONS_PER_DEVICE);
    }

    /// Encrypts an application payload for one device (e.g. call
    /// signalling); it arrives as [`Received::Custom`].
    pub fn encrypt_to_device(
        &mut self,
        target: &DeviceRef,
        kind: &str,
        data: &[u8],
        now: Millis,
    ) -> Result<Outcome<ToDeviceOut>, E2eError> {
        let claims = self.needs_claims(std::slice::from_ref(target), now);
        if !claims.is_empty() {
            return Ok(Outcome::NeedsClaims(claims));
        }
        let body = Body::Custom {
            kind: kind.into(),
            data: data.to_vec(),
        };
        self.olm_encrypt(target, body).map(Outcome::Ready)
    }

    /// Encrypts `body` for `target` over the newest Olm session with it.
    pub(super) fn olm_encrypt(
        &mut self,
        target: &DeviceRef,
        body: Body,
    ) -> Result<ToDeviceOut, E2eError> {
        let Some(device) = self.devices.get(&target.user, &target.device) else {
            return Err(E2eError::UnknownDevice {
                user: target.user.clone(),
                device: target.device.clone(),
            });
        };
        let plaintext = Plaintext {
            sender: self.user.clone(),
            sender_device: self.device.clone(),
            sender_key: self.signing_key(),
            recipient: target.user.clone(),
            recipient_device: target.device.clone(),
            recipient_key: device.signing_key.clone(),
            body,
        };
        self.olm_encrypt_plaintext(target, &plaintext)
    }

    fn olm_encrypt_plaintext(
        &mut self,
        target: &DeviceRef,
        plaintext: &Plaintext,
    ) -> Result<ToDeviceOut, E2eError> {
        let Some(device) = self.devices.get(&target.user, &target.device) else {
            return Err(E2eError::UnknownDevice {
                user: target.user.clone(),
                device: target.device.clone(),
            });
        };
        let bytes = rmp_serde::to_vec_named(plaintext).map_err(malformed)?;
        let sender_key = self.agreement_key();
        let Some(session) = self
            .olm
            .sessions
            .get_mut(&device.agreement_key)
            .and_then(|s| s.first_mut())
        else {
            return Err(E2eError::NoSession {
                user: target.user.clone(),
                device: target.device.clone(),
            });
        };
        let message = session
            .encrypt(&bytes)
            .map_err(|e| E2eError::OlmDecrypt(e.to_string()))?;
        let (message_type, body) = message.to_parts();
        let envelope = Envelope {
            kind: OLM_V1.into(),
            sender_key,
            message_type: u8::try_from(message_type).unwrap_or(u8::MAX),
            body,
        };
        Ok(ToDeviceOut {
            user: target.user.clone(),
            device: target.device.clone(),
            kind: OLM_V1.into(),
            id: uuid::Uuid::new_v4().to_string(),
            payload: rmp_serde::to_vec_named(&envelope).map_err(malformed)?,
        })
    }

    /// Processes an incoming to-device message, once per (sender device,
    /// id): a redelivery returns [`Received::Duplicate`]. A message that
    /// fails (forged, replayed elsewhere, undecryptable) is an error and is
    /// not processed again either.
    pub fn receive_to_device(
        &mut self,
        message: &ToDeviceIn,
        now: Millis,
    ) -> Result<Received, E2eError> {
        if message.kind != OLM_V1 {
            return Err(E2eError::Unsupported(message.kind.clone()));
        }
        let key = (
            message.from_user.clone(),
            message.from_device.clone(),
            message.id.clone(),
        );
        if self.olm.processed_set.contains(&key) {
            return Ok(Received::Duplicate);
        }
        let Some(sender) = self
            .devices
            .get(&message.from_user, &message.from_device)
            .cloned()
        else {
            self.olm
                .deferred
                .retain(|d| now.saturating_sub(d.ts) < DEFER_FOR);
            if !self.olm.deferred.iter().any(|d| {
                d.from_user == message.from_user
                    && d.from_device == message.from_device
                    && d.id == message.id
            }) {
                if self.olm.deferred.len() >= MAX_DEFERRED {
                    self.olm.deferred.remove(0);
                }
                self.olm.deferred.push(message.clone());
            }
            return Ok(Received::Deferred {
                user: message.from_user.clone(),
            });
        };
        self.olm.remember(key);
        let from = DeviceRef {
            user: message.from_user.clone(),
            device: message.from_device.clone(),
        };

        let envelope: Envelope = rmp_serde::from_slice(&message.payload).map_err(malformed)?;
        if envelope.kind != OLM_V1 {
            return Err(E2eError::Unsupported(envelope.kind));
        }
        if envelope.sender_key != sender.agreement_key {
            return Err(E2eError::Misbound(
                "the Olm sender key is not the sending device's".into(),
            ));
        }
        let olm = OlmMessage::from_parts(usize::from(envelope.message_type), &envelope.body)
            .map_err(malformed)?;
        let (bytes, new_session) = self.olm_decrypt(&sender.agreement_key, &olm)?;
        // The session is the sending device's (3DH with its tracked key),
        // whatever the plaintext says; it is kept so that the device's
        // next messages, which reuse its one-time key, still decrypt.
        if let Some(session) = new_session {
            self.add_session(sender.agreement_key.clone(), session);
        }
        let plaintext: Plaintext = rmp_serde::from_slice(&bytes).map_err(malformed)?;
        if plaintext.sender != from.user
            || plaintext.sender_device != from.device
            || plaintext.sender_key != sender.signing_key
        {
            return Err(E2eError::Misbound(
                "the inner sender is not the sending device".into(),
            ));
        }
        if plaintext.recipient != self.user
            || plaintext.recipient_device != self.device
            || plaintext.recipient_key != self.signing_key()
        {
            return Err(E2eError::Misbound(
                "the message was encrypted for another device".into(),
            ));
        }
        match plaintext.body {
            Body::RoomKey { conv, session, key } => {
                let key = SessionKey::from_base64(&key).map_err(malformed)?;
                let source = InboundSource {
                    sender: from,
                    sender_key: sender.agreement_key,
                    forwarded: false,
                };
                self.add_inbound(conv, session, source, NewKey::Shared(&key))
            }
            Body::ForwardedRoomKey {
                conv,
                session,
                key,
                session_user,
                session_device,
                session_sender_key,
            } => {
                if from.user != self.user
                    || self.device_trust(&from.user, &from.device) != DeviceTrust::Verified
                {
                    return Err(E2eError::Refused(
                        "forwarded keys are accepted only from the user's own verified devices"
                            .into(),
                    ));
                }
                if let Some(d) = self.devices.get(&session_user, &session_device) {
                    if d.agreement_key != session_sender_key {
                        return Err(E2eError::Misbound(
                            "the forwarded session's sender key is not its device's".into(),
                        ));
                    }
                }
                let key = ExportedSessionKey::from_base64(&key).map_err(malformed)?;
                let source = InboundSource {
                    sender: DeviceRef {
                        user: session_user,
                        device: session_device,
                    },
                    sender_key: session_sender_key,
                    forwarded: true,
                };
                self.add_inbound(conv, session, source, NewKey::Exported(&key))
            }
            Body::MasterKey { key } => {
                if from.user != self.user
                    || self.device_trust(&from.user, &from.device) != DeviceTrust::Verified
                {
                    return Err(E2eError::Refused(
                        "the master key is accepted only from the user's own verified devices"
                            .into(),
                    ));
                }
                self.accept_master_secret(&key)?;
                Ok(Received::MasterKey { from })
            }
            Body::Custom { kind, data } => Ok(Received::Custom { from, kind, data }),
        }
    }

    /// Decrypts with an existing session of the peer, or a new inbound one
    /// for a pre-key message (returned for the caller to keep).
    fn olm_decrypt(
        &mut self,
        peer: &str,
        message: &OlmMessage,
    ) -> Result<(Vec<u8>, Option<Session>), E2eError> {
        let sessions = self.olm.sessions.entry(peer.to_string()).or_default();
        let pre_key_id = match message {
            OlmMessage::PreKey(m) => Some(m.session_id()),
            OlmMessage::Normal(_) => None,
        };
        let mut last_error = None;
        for i in 0..sessions.len() {
            if pre_key_id
                .as_ref()
                .is_some_and(|id| *id != sessions[i].session_id())
            {
                continue;
            }
            match sessions[i].decrypt(message) {
                Ok(bytes) => {
                    // The session that works comes first for replies.
                    let s = sessions.remove(i);
                    sessions.insert(0, s);
                    return Ok((bytes, None));
                }
                Err(e) => last_error = Some(e.to_string()),
            }
        }
        match message {
            OlmMessage::PreKey(m) => {
                let identity = Curve25519PublicKey::from_base64(peer).map_err(malformed)?;
                let created = self
                    .account
                    .account
                    .create_inbound_session(SessionConfig::version_1(), identity, m)
                    .map_err(|e| E2eError::OlmDecrypt(e.to_string()))?;
                Ok((created.plaintext, Some(created.session)))
            }
            OlmMessage::Normal(_) => {
                Err(E2eError::OlmDecrypt(last_error.unwrap_or_else(|| {
                    "no session with the sending device".into()
                })))
            }
        }
    }

    /// Processes again the messages kept as [`Received::Deferred`] whose
    /// senders' keys are now known; the others stay.
    pub fn retry_deferred(&mut self, now: Millis) -> Vec<Result<Received, E2eError>> {
        let deferred = std::mem::take(&mut self.olm.deferred);
        let mut out = Vec::new();
        for message in deferred {
            if self
                .devices
                .get(&message.from_user, &message.from_device)
                .is_none()
            {
                self.olm.deferred.push(message);
                continue;
            }
            out.push(self.receive_to_device(&message, now));
        }
        out
    }

    /// Sends the master private key to another own device that the master
    /// key signed, so that it can sign the user's later devices.
    pub fn share_master_key(
        &mut self,
        device: &DeviceId,
        now: Millis,
    ) -> Result<Outcome<ToDeviceOut>, E2eError> {
        let Some(secret) = &self.devices.master_secret else {
            return Err(E2eError::NoMasterKey);
        };
        let key = secret.to_base64();
        let target = DeviceRef {
            user: self.user.clone(),
            device: device.clone(),
        };
        if *device == self.device || self.device_trust(&self.user, device) != DeviceTrust::Verified
        {
            return Err(E2eError::Refused(
                "the master key goes only to another own verified device".into(),
            ));
        }
        let claims = self.needs_claims(std::slice::from_ref(&target), now);
        if !claims.is_empty() {
            return Ok(Outcome::NeedsClaims(claims));
        }
        self.olm_encrypt(&target, Body::MasterKey { key })
            .map(Outcome::Ready)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::e2e::UserKeys;
    use chatcore::protocol::{DeviceKeysInfo, KeyCountsInfo};

    fn tracked_by(m: &mut Machine, other: &Machine) {
        m.receive_device_keys(UserKeys {
            user: other.user().clone(),
            master_key: None,
            devices: vec![DeviceKeysInfo {
                user: other.user().clone(),
                device: other.device().clone(),
                keys: other.identity_keys(),
                master_signature: None,
            }],
        });
    }

    /// A sender with an Olm session to a recipient, who knows the sender.
    fn pair() -> (Machine, Machine, DeviceRef) {
        let mut alice = Machine::new(UserId::from("alice"), DeviceId::from("a1"));
        let mut bob = Machine::new(UserId::from("bob"), DeviceId::from("b1"));
        let upload = bob.keys_to_upload(KeyCountsInfo::default());
        bob.mark_keys_published();
        tracked_by(&mut alice, &bob);
        tracked_by(&mut bob, &alice);
        let target = bob.me();
        let claimed = ClaimedKey {
            user: target.user.clone(),
            device: target.device.clone(),
            key: upload.one_time_keys[0].clone(),
            fallback: false,
        };
        let failed = alice.receive_claimed_keys(std::slice::from_ref(&target), &[claimed], 0);
        assert!(failed.is_empty());
        (alice, bob, target)
    }

    /// An Olm plaintext whose inner fields lie about sender or recipient is
    /// refused even though its Olm layer decrypts.
    #[test]
    fn inner_sender_and_recipient_are_checked() {
        type Lie = fn(&mut Plaintext);
        let lies: [(&str, Lie); 6] = [
            ("sender", |p| p.sender = UserId::from("carol")),
            ("sender_device", |p| p.sender_device = DeviceId::from("a2")),
            ("sender_key", |p| p.sender_key = p.recipient_key.clone()),
            ("recipient", |p| p.recipient = UserId::from("carol")),
            ("recipient_device", |p| {
                p.recipient_device = DeviceId::from("b2")
            }),
            ("recipient_key", |p| p.recipient_key = p.sender_key.clone()),
        ];
        for (field, lie) in lies {
            let (mut alice, mut bob, target) = pair();
            let mut plaintext = Plaintext {
                sender: alice.user().clone(),
                sender_device: alice.device().clone(),
                sender_key: alice.signing_key(),
                recipient: target.user.clone(),
                recipient_device: target.device.clone(),
                recipient_key: bob.signing_key(),
                body: Body::Custom {
                    kind: "x".into(),
                    data: vec![],
                },
            };
            let honest = alice.olm_encrypt_plaintext(&target, &plaintext).unwrap();
            let honest = honest.delivered(alice.user(), alice.device(), 0);
            lie(&mut plaintext);
            let forged = alice.olm_encrypt_plaintext(&target, &plaintext).unwrap();
            let forged = forged.delivered(alice.user(), alice.device(), 0);
            assert!(
                matches!(
                    bob.receive_to_device(&forged, 0),
                    Err(E2eError::Misbound(_))
                ),
                "{field}"
            );
            assert!(
                matches!(
                    bob.receive_to_device(&honest, 0),
                    Ok(Received::Custom { .. })
                ),
                "{field}"
            );
        }
    }

    fn plaintext(body: Body) -> Plaintext {
        Plaintext {
            sender: UserId::from("alice"),
            sender_device: DeviceId::from("a1"),
            sender_key: "AK".into(),
            recipient: UserId::from("bob"),
            recipient_device: DeviceId::from("b1"),
            recipient_key: "BK".into(),
            body,
        }
    }

    /// The formats the TypeScript binding implements: flat maps, `type` first-class.
    #[test]
    fn olm_plaintexts_are_flat_maps_tagged_by_type() {
        let bytes = rmp_serde::to_vec_named(&plaintext(Body::RoomKey {
            conv: ConversationId::from("g:1"),
            session: "S".into(),
            key: "K".into(),
        }))
        .unwrap();
        let value: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "sender": "alice", "sender_device": "a1", "sender_key": "AK",
                "recipient": "bob", "recipient_device": "b1", "recipient_key": "BK",
                "type": "room_key", "conv": "g:1", "session": "S", "key": "K",
            })
        );
        let bytes = rmp_serde::to_vec_named(&plaintext(Body::ForwardedRoomKey {
            conv: ConversationId::from("g:1"),
            session: "S".into(),
            key: "K".into(),
            session_user: UserId::from("carol"),
            session_device: DeviceId::from("c1"),
            session_sender_key: "CK".into(),
        }))
        .unwrap();
        let value: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(value["type"], "forwarded_room_key");
        assert_eq!(value["session_sender_key"], "CK");
        let bytes =
            rmp_serde::to_vec_named(&plaintext(Body::MasterKey { key: "M".into() })).unwrap();
        let value: serde_json::Value = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(value["type"], "master_key");

        // An application payload travels as MessagePack bin and comes back.
        let bytes = rmp_serde::to_vec_named(&plaintext(Body::Custom {
            kind: "call".into(),
            data: vec![1, 2, 3],
        }))
        .unwrap();
        assert!(bytes.windows(5).any(|w| w == [0xc4, 3, 1, 2, 3]));
        let back: Plaintext = rmp_serde::from_slice(&bytes).unwrap();
        assert!(matches!(back.body, Body::Custom { data, .. } if data == [1, 2, 3]));
        // An unknown type is an error, not a panic.
        let unknown = serde_json::json!({
            "sender": "alice", "sender_device": "a1", "sender_key": "AK",
            "recipient": "bob", "recipient_device": "b1", "recipient_key": "BK",
            "type": "something_else",
        });
        let bytes = rmp_serde::to_vec_named(&unknown).unwrap();
        assert!(rmp_serde::from_slice::<Plaintext>(&bytes).is_err());
    }

    #[test]
    fn the_envelope_names_its_fields() {
        let envelope = Envelope {
            kind: OLM_V1.into(),
            sender_key: "AK".into(),
            message_type: 0,
            body: vec![9],
        };
        let bytes = rmp_serde::to_vec_named(&envelope).unwrap();
        assert!(bytes.windows(3).any(|w| w == [0xc4, 1, 9]), "body is bin");
        let back: Envelope = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(
            (back.kind.as_str(), back.message_type, back.body),
            (OLM_V1, 0, vec![9])
        );
    }
}
