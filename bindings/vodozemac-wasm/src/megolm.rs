//! Megolm: one sending session per device and conversation, and the
//! receiving sessions made from its key.

use vodozemac::megolm::{
    DecryptionError, ExportedSessionKey, GroupSessionPickle, InboundGroupSessionPickle,
    MegolmMessage, SessionConfig, SessionKey,
};
use wasm_bindgen::prelude::wasm_bindgen;

use crate::{pickle_error, pickle_key, Error, ErrorCode};

/// A Megolm session to send with: a ratchet that moves one step per message.
#[wasm_bindgen]
pub struct GroupSession {
    inner: vodozemac::megolm::GroupSession,
}

impl Default for GroupSession {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl GroupSession {
    /// A new session with a random ratchet, at index 0.
    #[wasm_bindgen(constructor)]
    pub fn new() -> GroupSession {
        GroupSession {
            inner: vodozemac::megolm::GroupSession::new(SessionConfig::version_1()),
        }
    }

    /// The session's id (base64): its Ed25519 public key.
    #[wasm_bindgen(getter, js_name = sessionId)]
    pub fn session_id(&self) -> String {
        self.inner.session_id()
    }

    /// The key (base64) that lets its holder read from the current index
    /// on, signed by the session: what goes to member devices over Olm.
    #[wasm_bindgen(getter, js_name = sessionKey)]
    pub fn session_key(&self) -> String {
        self.inner.session_key().to_base64()
    }

    /// The index the next message gets.
    #[wasm_bindgen(getter, js_name = messageIndex)]
    pub fn message_index(&self) -> u32 {
        self.inner.message_index()
    }

    /// Encrypts `plaintext` into a Megolm message (bytes) and moves the
    /// ratchet on.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Vec<u8> {
        self.inner.encrypt(plaintext).to_bytes()
    }

    /// The session encrypted with a 32-byte key (base64 text).
    pub fn pickle(&self, key: &[u8]) -> Result<String, Error> {
        Ok(self.inner.pickle().encrypt(&pickle_key(key)?))
    }

    /// The session from `pickle()`; throws (code `pickle`) on a wrong key.
    #[wasm_bindgen(js_name = fromPickle)]
    pub fn from_pickle(pickle: &str, key: &[u8]) -> Result<GroupSession, Error> {
        let pickle = GroupSessionPickle::from_encrypted(pickle, &pickle_key(key)?)
            .map_err(|e| pickle_error("group session", e))?;
        Ok(GroupSession {
            inner: vodozemac::megolm::GroupSession::from_pickle(pickle),
        })
    }
}

/// A Megolm message decrypted: its plaintext and its index in the session
/// (an index seen twice under different message ids is a replay).
#[wasm_bindgen]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecryptedGroupMessage {
    plaintext: Vec<u8>,
    message_index: u32,
}

#[wasm_bindgen]
impl DecryptedGroupMessage {
    /// The plaintext.
    #[wasm_bindgen(getter)]
    pub fn plaintext(&self) -> Vec<u8> {
        self.plaintext.clone()
    }

    /// The message's index in its session.
    #[wasm_bindgen(getter, js_name = messageIndex)]
    pub fn message_index(&self) -> u32 {
        self.message_index
    }
}

/// A Megolm session to receive with: reads the messages of one sending
/// session from its first known index on.
#[wasm_bindgen]
pub struct InboundGroupSession {
    inner: vodozemac::megolm::InboundGroupSession,
}

#[wasm_bindgen]
impl InboundGroupSession {
    /// From a session key (`GroupSession.sessionKey`, signed by the
    /// session); throws (code `invalid_key`) when it is malformed or its
    /// signature does not verify.
    #[wasm_bindgen(constructor)]
    pub fn new(
        #[wasm_bindgen(js_name = sessionKey)] session_key: &str,
    ) -> Result<InboundGroupSession, Error> {
        let key = SessionKey::from_base64(session_key).map_err(|e| {
            Error::new(
                ErrorCode::InvalidKey,
                format!("not a Megolm session key: {e}"),
            )
        })?;
        Ok(InboundGroupSession {
            inner: vodozemac::megolm::InboundGroupSession::new(&key, SessionConfig::version_1()),
        })
    }

    /// From an exported key (`exportAt`, `exportAtFirstKnownIndex`), as
    /// forwarded between a user's devices or restored from a backup.
    pub fn import(
        #[wasm_bindgen(js_name = exportedKey)] exported_key: &str,
    ) -> Result<InboundGroupSession, Error> {
        let key = ExportedSessionKey::from_base64(exported_key).map_err(|e| {
            Error::new(
                ErrorCode::InvalidKey,
                format!("not an exported Megolm session key: {e}"),
            )
        })?;
        Ok(InboundGroupSession {
            inner: vodozemac::megolm::InboundGroupSession::import(&key, SessionConfig::version_1()),
        })
    }

    /// The session's id (base64), the same as the sending session's.
    #[wasm_bindgen(getter, js_name = sessionId)]
    pub fn session_id(&self) -> String {
        self.inner.session_id()
    }

    /// The first message index this session can decrypt.
    #[wasm_bindgen(getter, js_name = firstKnownIndex)]
    pub fn first_known_index(&self) -> u32 {
        self.inner.first_known_index()
    }

    /// Decrypts a Megolm message. Throws with code `unknown_index` (and
    /// `firstKnownIndex`, `messageIndex`) for a message before this
    /// session's first index, `invalid_message` for bytes that are not a
    /// Megolm message, `decrypt` for one altered or of another session.
    pub fn decrypt(&mut self, message: &[u8]) -> Result<DecryptedGroupMessage, Error> {
        let message = MegolmMessage::from_bytes(message).map_err(|e| {
            Error::new(
                ErrorCode::InvalidMessage,
                format!("not a Megolm message: {e}"),
            )
        })?;
        let decrypted = self.inner.decrypt(&message).map_err(|e| match e {
            DecryptionError::UnknownMessageIndex(first_known, index) => {
                Error::unknown_index(first_known, index)
            }
            e => Error::new(
                ErrorCode::Decrypt,
                format!("the Megolm message does not decrypt: {e}"),
            ),
        })?;
        Ok(DecryptedGroupMessage {
            plaintext: decrypted.plaintext,
            message_index: decrypted.message_index,
        })
    }

    /// The key to read from `index` on (base64), or undefined when `index`
    /// is before the first known index.
    #[wasm_bindgen(js_name = exportAt)]
    pub fn export_at(&mut self, index: u32) -> Option<String> {
        self.inner.export_at(index).map(|k| k.to_base64())
    }

    /// The key to read all this session can read (base64).
    #[wasm_bindgen(js_name = exportAtFirstKnownIndex)]
    pub fn export_at_first_known_index(&self) -> String {
        self.inner.export_at_first_known_index().to_base64()
    }

    /// The session encrypted with a 32-byte key (base64 text).
    pub fn pickle(&self, key: &[u8]) -> Result<String, Error> {
        Ok(self.inner.pickle().encrypt(&pickle_key(key)?))
    }

    /// The session from `pickle()`; throws (code `pickle`) on a wrong key.
    #[wasm_bindgen(js_name = fromPickle)]
    pub fn from_pickle(pickle: &str, key: &[u8]) -> Result<InboundGroupSession, Error> {
        let pickle = InboundGroupSessionPickle::from_encrypted(pickle, &pickle_key(key)?)
            .map_err(|e| pickle_error("inbound group session", e))?;
        Ok(InboundGroupSession {
            inner: vodozemac::megolm::InboundGroupSession::from_pickle(pickle),
        })
    }
}
