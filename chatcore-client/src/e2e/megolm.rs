//! Megolm sessions per conversation: an outbound session this device
//! encrypts with, shared over Olm with every member device; inbound
//! sessions of every sender (this device's own included, so that its
//! messages read back), and the forwarding of history to the user's own
//! verified devices.
//!
//! Rotation: a new outbound session when a device it was shared with is no
//! longer a member (a member left or was removed, a device was removed or
//! revoked), after [`MAX_SESSION_MESSAGES`] messages or
//! [`MAX_SESSION_AGE`]. A device added to a conversation gets the current
//! session at its current index: it reads from the time it joined, not
//! before.

use std::collections::{BTreeMap, BTreeSet};

use chatcore::model::{ConversationId, DeviceId, MessageId, Millis, UserId};
use chatcore::protocol::DeviceRef;
use serde::{Deserialize, Serialize};
use vodozemac::megolm::{
    DecryptionError, ExportedSessionKey, GroupSession, InboundGroupSession, MegolmMessage,
    SessionConfig, SessionKey,
};

use super::olm::Body;
use super::{malformed, DeviceTrust, E2eError, Machine, Outcome, Received, ToDeviceOut};

/// The algorithm of encrypted conversation contents.
pub const MEGOLM_V1: &str = "megolm.v1";
/// Messages an outbound session encrypts before it is replaced.
pub const MAX_SESSION_MESSAGES: u32 = 100;
/// How long an outbound session is used before it is replaced (a week).
pub const MAX_SESSION_AGE: Millis = 7 * 24 * 60 * 60 * 1000;
/// Sessions remembered as awaited (messages arrived before their key).
const MAX_WAITING: usize = 1024;
/// Message ids remembered per inbound session (the lowest indices go first).
const MAX_SEEN_PER_SESSION: usize = 1024;

/// An encrypted conversation content, as the server stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptedContent {
    /// [`MEGOLM_V1`].
    pub algorithm: String,
    /// The sending device.
    pub device: DeviceId,
    /// The Megolm session id.
    pub session: String,
    /// A vodozemac Megolm message (binary form) whose plaintext is the
    /// MessagePack map `{ type: "content", conv: str, content: bin }`: the
    /// conversation it was sent to (checked where it arrives) and the
    /// application's content bytes.
    pub ciphertext: Vec<u8>,
}

/// A content encrypted for a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Encrypted {
    /// To send to the conversation, after `to_device`.
    pub content: EncryptedContent,
    /// Room keys for the member devices that did not have the session yet:
    /// send them first (with their ids, retried as they are).
    pub to_device: Vec<ToDeviceOut>,
    /// Member devices that got no key: their keys are unknown or no
    /// one-time key could be claimed. They cannot read this message.
    pub without_key: Vec<DeviceRef>,
}

/// A Megolm session: its conversation, the device that created it, its id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SessionRef {
    /// The conversation.
    pub conv: ConversationId,
    /// The user whose device created it.
    pub user: UserId,
    /// That device.
    pub device: DeviceId,
    /// The session id.
    pub session: String,
}

/// A decrypted conversation content, or why not yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decrypted {
    /// The content.
    Plain {
        /// The application's content bytes.
        content: Vec<u8>,
        /// The device that sent it.
        sender: DeviceRef,
        /// The message's index in its session.
        index: u32,
        /// The key came from another own device, not from the sender.
        forwarded: bool,
        /// The sending device's trust now.
        trust: DeviceTrust,
    },
    /// The session's key has not arrived yet: [`Received::RoomKey`] with
    /// `waiting` says when to try again.
    Waiting {
        /// The awaited session.
        session: SessionRef,
    },
}

#[derive(Serialize, Deserialize)]
struct Plaintext {
    #[serde(rename = "type")]
    kind: String,
    conv: ConversationId,
    #[serde(with = "serde_bytes")]
    content: Vec<u8>,
}

const CONTENT: &str = "content";

pub(super) type DeviceKey = (UserId, DeviceId);

pub(super) fn device_key(d: &DeviceRef) -> DeviceKey {
    (d.user.clone(), d.device.clone())
}

pub(super) struct Outbound {
    pub(super) session: GroupSession,
    pub(super) created: Millis,
    /// Devices that were sent the session, and from which index: whether
    /// or not the send reached the server, they may hold it (a device that
    /// leaves makes the session rotate).
    pub(super) shared_with: BTreeMap<DeviceKey, u32>,
    /// Those of `shared_with` whose room key the server has not yet been
    /// seen to take (the send may have died with the link): they are sent
    /// the key again with the next message until
    /// [`Machine::confirm_shared`].
    pub(super) unconfirmed: BTreeSet<DeviceKey>,
}

/// Who a session's key came from.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct InboundSource {
    /// The device that created the session.
    pub(super) sender: DeviceRef,
    /// Its Curve25519 key: of the Olm session that delivered the key, or
    /// as the forwarding own device stated it.
    pub(super) sender_key: String,
    pub(super) forwarded: bool,
}

pub(super) struct Inbound {
    pub(super) session: InboundGroupSession,
    pub(super) conv: ConversationId,
    pub(super) source: InboundSource,
    /// The message id that each index arrived with, to refuse replays.
    pub(super) seen: BTreeMap<u32, MessageId>,
}

/// A key for an inbound session.
pub(super) enum NewKey<'a> {
    /// From the session's creator.
    Shared(&'a SessionKey),
    /// Forwarded by an own device.
    Exported(&'a ExportedSessionKey),
}

#[derive(Default)]
pub(super) struct MegolmState {
    pub(super) outbound: BTreeMap<ConversationId, Outbound>,
    /// Keyed by the creating device and the session id.
    pub(super) inbound: BTreeMap<(UserId, DeviceId, String), Inbound>,
    pub(super) waiting: BTreeSet<SessionRef>,
}

impl MegolmState {
    /// A device is gone: sessions it got are not used again.
    pub(super) fn device_removed(&mut self, device: &DeviceRef) {
        let key = device_key(device);
        self.outbound
            .retain(|_, o| !o.shared_with.contains_key(&key));
    }
}

impl Machine {
    /// Encrypts `content` for the conversation `conv` whose member devices
    /// are `members` (all devices of all members, this user's other
    /// devices included; see [`Machine::devices_of`]). Rotates the session
    /// when a device it was shared with is not among `members`, or when it
    /// is too old or used too often; returns the room keys for the devices
    /// that lack the session, or first the devices to claim keys for.
    pub fn encrypt(
        &mut self,
        conv: &ConversationId,
        members: &[DeviceRef],
        content: &[u8],
        now: Millis,
    ) -> Result<Outcome<Encrypted>, E2eError> {
        let me = device_key(&self.me());
        let mut member_set: BTreeSet<DeviceKey> = BTreeSet::new();
        let mut targets = Vec::new();
        let mut without_key = Vec::new();
        let mut seen = BTreeSet::new();
        for d in members {
            let key = device_key(d);
            if key == me || !seen.insert(key.clone()) {
                continue;
            }
            // A device no longer tracked (removed, revoked) counts as gone
            // even if the app still lists it.
            if self.devices.get(&d.user, &d.device).is_some() {
                member_set.insert(key);
                targets.push(d.clone());
            } else {
                without_key.push(d.clone());
            }
        }
        let rotate = match self.megolm.outbound.get(conv) {
            None => true,
            Some(o) => {
                o.session.message_index() >= MAX_SESSION_MESSAGES
                    || now.saturating_sub(o.created) >= MAX_SESSION_AGE
                    || o.shared_with.keys().any(|k| !member_set.contains(k))
            }
        };
        if let (false, Some(o)) = (rotate, self.megolm.outbound.get(conv)) {
            // A device whose key was sent but not confirmed gets it again:
            // the first send may have been lost with the link.
            targets.retain(|d| {
                let k = device_key(d);
                !o.shared_with.contains_key(&k) || o.unconfirmed.contains(&k)
            });
        }
        let claims = self.needs_claims(&targets, now);
        if !claims.is_empty() {
            return Ok(Outcome::NeedsClaims(claims));
        }
        if rotate {
            self.new_outbound(conv, now);
        }
        let Some(outbound) = self.megolm.outbound.get(conv) else {
            return Err(E2eError::Refused("no outbound session".into()));
        };
        let session = outbound.session.session_id();
        let key = outbound.session.session_key().to_base64();
        let index = outbound.session.message_index();

        let mut to_device = Vec::new();
        let mut shared = Vec::new();
        for target in targets {
            if !self.has_session(&target) {
                without_key.push(target);
                continue;
            }
            let body = Body::RoomKey {
                conv: conv.clone(),
                session: session.clone(),
                key: key.clone(),
            };
            to_device.push(self.olm_encrypt(&target, body)?);
            shared.push(device_key(&target));
        }
        let plaintext = Plaintext {
            kind: CONTENT.into(),
            conv: conv.clone(),
            content: content.to_vec(),
        };
        let bytes = rmp_serde::to_vec_named(&plaintext).map_err(malformed)?;
        let Some(outbound) = self.megolm.outbound.get_mut(conv) else {
            return Err(E2eError::Refused("no outbound session".into()));
        };
        // Counted as holding the key at once (for rotation), but
        // unconfirmed until the server took the room keys.
        for k in shared {
            outbound.shared_with.entry(k.clone()).or_insert(index);
            outbound.unconfirmed.insert(k);
        }
        let message = outbound.session.encrypt(&bytes);
        Ok(Outcome::Ready(Encrypted {
            content: EncryptedContent {
                algorithm: MEGOLM_V1.into(),
                device: self.device.clone(),
                session,
                ciphertext: message.to_bytes(),
            },
            to_device,
            without_key,
        }))
    }

    fn new_outbound(&mut self, conv: &ConversationId, now: Millis) {
        let session = GroupSession::new(SessionConfig::version_1());
        // This device reads its own messages back (and forwards them).
        let inbound = InboundGroupSession::new(&session.session_key(), SessionConfig::version_1());
        let source = InboundSource {
            sender: self.me(),
            sender_key: self.agreement_key(),
            forwarded: false,
        };
        self.megolm.inbound.insert(
            (self.user.clone(), self.device.clone(), session.session_id()),
            Inbound {
                session: inbound,
                conv: conv.clone(),
                source,
                seen: BTreeMap::new(),
            },
        );
        self.megolm.outbound.insert(
            conv.clone(),
            Outbound {
                session,
                created: now,
                shared_with: BTreeMap::new(),
                unconfirmed: BTreeSet::new(),
            },
        );
    }

    /// The members of `conv` are now `members` (after a member left or was
    /// removed, or a device was revoked): when a device that has the
    /// current session is no longer among them, the next message uses a new
    /// session. Returns whether it will.
    pub fn update_members(&mut self, conv: &ConversationId, members: &[DeviceRef]) -> bool {
        let set: BTreeSet<DeviceKey> = members.iter().map(device_key).collect();
        let me = device_key(&self.me());
        let stale = self
            .megolm
            .outbound
            .get(conv)
            .is_some_and(|o| o.shared_with.keys().any(|k| *k != me && !set.contains(k)));
        if stale {
            self.megolm.outbound.remove(conv);
        }
        stale
    }

    /// The server took the room keys of `conv`'s `session` that
    /// [`Machine::encrypt`] made for `devices` (its answer to the
    /// `send_to_device` came): they are not sent again. Until then every
    /// later message sends them again, so that a key lost with a dead link
    /// (or a restart before the answer) is made good by the next attempt.
    pub fn confirm_shared(&mut self, conv: &ConversationId, session: &str, devices: &[DeviceRef]) {
        let Some(o) = self.megolm.outbound.get_mut(conv) else {
            return;
        };
        if o.session.session_id() != session {
            return;
        }
        for d in devices {
            o.unconfirmed.remove(&device_key(d));
        }
    }

    /// The next message to `conv` uses a new session.
    pub fn rotate(&mut self, conv: &ConversationId) {
        self.megolm.outbound.remove(conv);
    }

    /// Adds an inbound session from a key received over Olm.
    pub(super) fn add_inbound(
        &mut self,
        conv: ConversationId,
        session: String,
        source: InboundSource,
        key: NewKey<'_>,
    ) -> Result<Received, E2eError> {
        let mut new = match key {
            NewKey::Shared(k) => InboundGroupSession::new(k, SessionConfig::version_1()),
            NewKey::Exported(k) => InboundGroupSession::import(k, SessionConfig::version_1()),
        };
        if new.session_id() != session {
            return Err(E2eError::Misbound(
                "the key is not the named session's".into(),
            ));
        }
        let forwarded = source.forwarded;
        let map_key = (
            source.sender.user.clone(),
            source.sender.device.clone(),
            session.clone(),
        );
        let session_ref = SessionRef {
            conv: conv.clone(),
            user: source.sender.user.clone(),
            device: source.sender.device.clone(),
            session,
        };
        match self.megolm.inbound.get_mut(&map_key) {
            Some(old) => {
                if old.conv != conv || old.source.sender_key != source.sender_key {
                    return Err(E2eError::Misbound(
                        "the session is known for another conversation or sender key".into(),
                    ));
                }
                // Keep whichever reads further back.
                if new.first_known_index() < old.session.first_known_index()
                    && new.connected(&mut old.session)
                {
                    old.session = new;
                }
            }
            None => {
                self.megolm.inbound.insert(
                    map_key,
                    Inbound {
                        session: new,
                        conv,
                        source,
                        seen: BTreeMap::new(),
                    },
                );
            }
        }
        let waiting = self.megolm.waiting.remove(&session_ref);
        Ok(Received::RoomKey {
            session: session_ref,
            forwarded,
            waiting,
        })
    }

    /// Decrypts the content of the message `message` (the server's id) that
    /// `sender`'s device `content.device` sent to `conv`. The session's key
    /// must have come over Olm from that very device (or forwarded by an
    /// own verified device), and the plaintext must name `conv`: a message
    /// replayed into another conversation is refused, and so is one
    /// replayed in the same conversation under another message id.
    /// Decrypting the same message again is fine.
    pub fn decrypt(
        &mut self,
        conv: &ConversationId,
        message_id: &MessageId,
        sender: &UserId,
        content: &EncryptedContent,
    ) -> Result<Decrypted, E2eError> {
        if content.algorithm != MEGOLM_V1 {
            return Err(E2eError::Unsupported(content.algorithm.clone()));
        }
        let message = MegolmMessage::from_bytes(&content.ciphertext).map_err(malformed)?;
        let key = (
            sender.clone(),
            content.device.clone(),
            content.session.clone(),
        );
        if !self.megolm.inbound.contains_key(&key)
            && self
                .megolm
                .inbound
                .keys()
                .any(|(_, _, session)| *session == content.session)
        {
            return Err(E2eError::Misbound(
                "the session's key came from another device than the claimed sender".into(),
            ));
        }
        let Some(inbound) = self.megolm.inbound.get_mut(&key) else {
            let session = SessionRef {
                conv: conv.clone(),
                user: sender.clone(),
                device: content.device.clone(),
                session: content.session.clone(),
            };
            if self.megolm.waiting.len() < MAX_WAITING {
                self.megolm.waiting.insert(session.clone());
            }
            return Ok(Decrypted::Waiting { session });
        };
        if inbound.conv != *conv {
            return Err(E2eError::WrongConversation);
        }
        let decrypted = inbound.session.decrypt(&message).map_err(|e| match e {
            DecryptionError::UnknownMessageIndex(first_known, index) => {
                E2eError::BeforeKey { index, first_known }
            }
            e => E2eError::MegolmDecrypt(e.to_string()),
        })?;
        let forwarded = inbound.source.forwarded;
        let plaintext: Plaintext =
            rmp_serde::from_slice(&decrypted.plaintext).map_err(malformed)?;
        if plaintext.kind != CONTENT {
            return Err(E2eError::Unsupported(plaintext.kind));
        }
        if plaintext.conv != *conv {
            return Err(E2eError::WrongConversation);
        }
        let trust = self.device_trust(sender, &content.device);
        // A tracked device must still have the key that delivered the session.
        if let Some(d) = self.devices.get(sender, &content.device) {
            let source_key = self
                .megolm
                .inbound
                .get(&key)
                .map(|i| i.source.sender_key.clone());
            if source_key.as_deref() != Some(d.agreement_key.as_str()) {
                return Err(E2eError::Misbound(
                    "the session was not delivered by the sending device".into(),
                ));
            }
        }
        if let Some(inbound) = self.megolm.inbound.get_mut(&key) {
            let index = decrypted.message_index;
            match inbound.seen.get(&index) {
                Some(first) if first != message_id => {
                    return Err(E2eError::Replayed {
                        index,
                        first: first.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    inbound.seen.insert(index, message_id.clone());
                    if inbound.seen.len() > MAX_SEEN_PER_SESSION {
                        inbound.seen.pop_first();
                    }
                }
            }
        }
        Ok(Decrypted::Plain {
            content: plaintext.content,
            sender: DeviceRef {
                user: sender.clone(),
                device: content.device.clone(),
            },
            index: decrypted.message_index,
            forwarded,
            trust,
        })
    }

    /// Forwards the conversation keys this device holds (of `convs`, or all
    /// with `None`) to another device of the same user that the master key
    /// signed, so that it reads the history this device can read. Refused
    /// for other users' devices and unverified ones.
    pub fn forward_keys(
        &mut self,
        device: &DeviceId,
        convs: Option<&[ConversationId]>,
        now: Millis,
    ) -> Result<Outcome<Vec<ToDeviceOut>>, E2eError> {
        let target = DeviceRef {
            user: self.user.clone(),
            device: device.clone(),
        };
        if *device == self.device || self.device_trust(&self.user, device) != DeviceTrust::Verified
        {
            return Err(E2eError::Refused(
                "keys are forwarded only to the user's other devices that the master key signed"
                    .into(),
            ));
        }
        let claims = self.needs_claims(std::slice::from_ref(&target), now);
        if !claims.is_empty() {
            return Ok(Outcome::NeedsClaims(claims));
        }
        let bodies: Vec<Body> = self
            .megolm
            .inbound
            .iter()
            .filter(|(_, i)| convs.is_none_or(|c| c.contains(&i.conv)))
            .map(|((user, device, session), i)| Body::ForwardedRoomKey {
                conv: i.conv.clone(),
                session: session.clone(),
                key: i.session.export_at_first_known_index().to_base64(),
                session_user: user.clone(),
                session_device: device.clone(),
                session_sender_key: i.source.sender_key.clone(),
            })
            .collect();
        let mut out = Vec::with_capacity(bodies.len());
        for body in bodies {
            out.push(self.olm_encrypt(&target, body)?);
        }
        Ok(Outcome::Ready(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format the TypeScript binding implements.
    #[test]
    fn the_megolm_plaintext_names_its_conversation() {
        let plaintext = Plaintext {
            kind: CONTENT.into(),
            conv: ConversationId::from("g:1"),
            content: vec![7, 8],
        };
        let bytes = rmp_serde::to_vec_named(&plaintext).unwrap();
        // fixmap of 3: "type": "content", "conv": "g:1", "content": bin [7, 8]
        let mut expected = vec![0x83, 0xa4];
        expected.extend_from_slice(b"type");
        expected.push(0xa7);
        expected.extend_from_slice(b"content");
        expected.push(0xa4);
        expected.extend_from_slice(b"conv");
        expected.push(0xa3);
        expected.extend_from_slice(b"g:1");
        expected.push(0xa7);
        expected.extend_from_slice(b"content");
        expected.extend_from_slice(&[0xc4, 2, 7, 8]);
        assert_eq!(bytes, expected);
    }
}
