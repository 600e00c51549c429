//! Olm: the device's account and its channels to single devices.

use vodozemac::olm::{OlmMessage, PreKeyMessage, SessionConfig};
use vodozemac::{Curve25519PublicKey, KeyId};
use wasm_bindgen::prelude::wasm_bindgen;

use crate::{pickle_error, pickle_key, Error, ErrorCode};

/// Olm message type of a pre-key message (the first ones of a session).
const PRE_KEY: u32 = 0;
/// Olm message type of a normal message.
const NORMAL: u32 = 1;

fn curve25519(what: &str, key: &str) -> Result<Curve25519PublicKey, Error> {
    Curve25519PublicKey::from_base64(key).map_err(|e| {
        Error::new(
            ErrorCode::InvalidKey,
            format!("the {what} is not a Curve25519 key: {e}"),
        )
    })
}

/// An Olm message from its type (0 pre-key, 1 normal) and bytes.
fn olm_message(message_type: u32, body: &[u8]) -> Result<OlmMessage, Error> {
    if message_type != PRE_KEY && message_type != NORMAL {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!("an Olm message type is 0 (pre-key) or 1 (normal), not {message_type}"),
        ));
    }
    // A u32 always fits a usize on wasm32 and on the 64-bit hosts.
    OlmMessage::from_parts(message_type as usize, body).map_err(|e| {
        Error::new(
            ErrorCode::InvalidMessage,
            format!("not an Olm message: {e}"),
        )
    })
}

fn pre_key_message(message_type: u32, body: &[u8]) -> Result<PreKeyMessage, Error> {
    match olm_message(message_type, body)? {
        OlmMessage::PreKey(m) => Ok(m),
        OlmMessage::Normal(_) => Err(Error::new(
            ErrorCode::InvalidArgument,
            "a new inbound session needs a pre-key message (type 0)",
        )),
    }
}

/// A one-time or fallback key: its id and its public Curve25519 key (base64).
#[wasm_bindgen]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OneTimeKey {
    id: String,
    key: String,
}

#[wasm_bindgen]
impl OneTimeKey {
    /// The key's id (base64), unique within the account.
    #[wasm_bindgen(getter)]
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// The public Curve25519 key (base64).
    #[wasm_bindgen(getter)]
    pub fn key(&self) -> String {
        self.key.clone()
    }
}

fn keys_in_order(keys: impl IntoIterator<Item = (KeyId, Curve25519PublicKey)>) -> Vec<OneTimeKey> {
    let mut keys: Vec<_> = keys.into_iter().collect();
    keys.sort_by_key(|(id, _)| *id);
    keys.into_iter()
        .map(|(id, key)| OneTimeKey {
            id: id.to_base64(),
            key: key.to_base64(),
        })
        .collect()
}

/// A device's Olm account: its identity keys (Ed25519 to sign, Curve25519
/// to agree), the private halves of its one-time and fallback keys, and
/// the sessions it opens or accepts.
#[wasm_bindgen]
pub struct Account {
    inner: vodozemac::olm::Account,
}

impl Default for Account {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl Account {
    /// A new account with fresh identity keys and no one-time keys.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Account {
        Account {
            inner: vodozemac::olm::Account::new(),
        }
    }

    /// The Ed25519 identity key (base64): what the account signs with.
    #[wasm_bindgen(getter, js_name = ed25519Key)]
    pub fn ed25519_key(&self) -> String {
        self.inner.ed25519_key().to_base64()
    }

    /// The Curve25519 identity key (base64): what peers open sessions to.
    #[wasm_bindgen(getter, js_name = curve25519Key)]
    pub fn curve25519_key(&self) -> String {
        self.inner.curve25519_key().to_base64()
    }

    /// The Ed25519 signature (base64) of `message` by the identity key.
    pub fn sign(&self, message: &[u8]) -> String {
        self.inner.sign(message).to_base64()
    }

    /// How many one-time keys may be published at once (50).
    #[wasm_bindgen(getter, js_name = maxNumberOfOneTimeKeys)]
    pub fn max_number_of_one_time_keys(&self) -> u32 {
        u32::try_from(self.inner.max_number_of_one_time_keys()).unwrap_or(u32::MAX)
    }

    /// Makes `count` new one-time keys (at most `maxNumberOfOneTimeKeys`),
    /// listed by `oneTimeKeys()` until `markKeysAsPublished()`.
    #[wasm_bindgen(js_name = generateOneTimeKeys)]
    pub fn generate_one_time_keys(&mut self, count: u32) -> Result<(), Error> {
        let max = self.max_number_of_one_time_keys();
        if count > max {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!("at most {max} one-time keys at once, not {count}"),
            ));
        }
        self.inner.generate_one_time_keys(count as usize);
        Ok(())
    }

    /// The one-time keys not yet marked as published, in the order they
    /// were made.
    #[wasm_bindgen(js_name = oneTimeKeys)]
    pub fn one_time_keys(&self) -> Vec<OneTimeKey> {
        keys_in_order(self.inner.one_time_keys())
    }

    /// Makes a new fallback key; the account keeps the previous one's
    /// private half too, for pre-key messages already on their way.
    #[wasm_bindgen(js_name = generateFallbackKey)]
    pub fn generate_fallback_key(&mut self) {
        self.inner.generate_fallback_key();
    }

    /// The fallback key not yet marked as published, if any.
    #[wasm_bindgen(js_name = fallbackKey)]
    pub fn fallback_key(&self) -> Option<OneTimeKey> {
        keys_in_order(self.inner.fallback_key()).into_iter().next()
    }

    /// The server accepted the keys listed by `oneTimeKeys()` and
    /// `fallbackKey()`: they are no longer listed.
    #[wasm_bindgen(js_name = markKeysAsPublished)]
    pub fn mark_keys_as_published(&mut self) {
        self.inner.mark_keys_as_published();
    }

    /// A session to the device with Curve25519 identity key `identityKey`,
    /// from one of its one-time (or fallback) keys, claimed from the
    /// server. Check both keys' signatures first.
    #[wasm_bindgen(js_name = createOutboundSession)]
    pub fn create_outbound_session(
        &self,
        #[wasm_bindgen(js_name = identityKey)] identity_key: &str,
        #[wasm_bindgen(js_name = oneTimeKey)] one_time_key: &str,
    ) -> Result<Session, Error> {
        let identity = curve25519("identity key", identity_key)?;
        let one_time = curve25519("one-time key", one_time_key)?;
        let inner = self
            .inner
            .create_outbound_session(SessionConfig::version_1(), identity, one_time)
            .map_err(|e| Error::new(ErrorCode::Session, format!("no Olm session: {e}")))?;
        Ok(Session { inner })
    }

    /// The session a pre-key message (type 0) from the device with
    /// Curve25519 identity key `identityKey` opens, with the message's
    /// plaintext. Uses up the one-time key the message names.
    #[wasm_bindgen(js_name = createInboundSession)]
    pub fn create_inbound_session(
        &mut self,
        #[wasm_bindgen(js_name = identityKey)] identity_key: &str,
        #[wasm_bindgen(js_name = messageType)] message_type: u32,
        body: &[u8],
    ) -> Result<InboundSession, Error> {
        let identity = curve25519("identity key", identity_key)?;
        let message = pre_key_message(message_type, body)?;
        let created = self
            .inner
            .create_inbound_session(SessionConfig::version_1(), identity, &message)
            .map_err(|e| Error::new(ErrorCode::Session, format!("no Olm session: {e}")))?;
        Ok(InboundSession {
            session: Some(Session {
                inner: created.session,
            }),
            plaintext: created.plaintext,
        })
    }

    /// The account encrypted with a 32-byte key (base64 text).
    pub fn pickle(&self, key: &[u8]) -> Result<String, Error> {
        Ok(self.inner.pickle().encrypt(&pickle_key(key)?))
    }

    /// The account from `pickle()`; throws (code `pickle`) when the key is
    /// not the one it was pickled with or the text was altered.
    #[wasm_bindgen(js_name = fromPickle)]
    pub fn from_pickle(pickle: &str, key: &[u8]) -> Result<Account, Error> {
        let pickle = vodozemac::olm::AccountPickle::from_encrypted(pickle, &pickle_key(key)?)
            .map_err(|e| pickle_error("account", e))?;
        Ok(Account {
            inner: vodozemac::olm::Account::from_pickle(pickle),
        })
    }
}

/// What `Account.createInboundSession` returns: the new session and the
/// plaintext of the pre-key message that opened it.
#[wasm_bindgen]
pub struct InboundSession {
    session: Option<Session>,
    plaintext: Vec<u8>,
}

#[wasm_bindgen]
impl InboundSession {
    /// The plaintext of the pre-key message.
    #[wasm_bindgen(getter)]
    pub fn plaintext(&self) -> Vec<u8> {
        self.plaintext.clone()
    }

    /// The new session; it can be taken once.
    #[wasm_bindgen(js_name = takeSession)]
    pub fn take_session(&mut self) -> Result<Session, Error> {
        self.session
            .take()
            .ok_or_else(|| Error::new(ErrorCode::InvalidArgument, "the session was already taken"))
    }
}

/// An Olm message to send: its type (0 pre-key, 1 normal) and bytes.
#[wasm_bindgen]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OlmEncrypted {
    message_type: u32,
    body: Vec<u8>,
}

#[wasm_bindgen]
impl OlmEncrypted {
    /// 0 for a pre-key message (until the peer answers), 1 otherwise.
    #[wasm_bindgen(getter, js_name = messageType)]
    pub fn message_type(&self) -> u32 {
        self.message_type
    }

    /// The message's bytes.
    #[wasm_bindgen(getter)]
    pub fn body(&self) -> Vec<u8> {
        self.body.clone()
    }
}

/// An Olm session: a Double Ratchet channel with one other device.
#[wasm_bindgen]
pub struct Session {
    inner: vodozemac::olm::Session,
}

#[wasm_bindgen]
impl Session {
    /// The session's id (base64), the same on both sides.
    #[wasm_bindgen(getter, js_name = sessionId)]
    pub fn session_id(&self) -> String {
        self.inner.session_id()
    }

    /// Encrypts `plaintext` for the peer.
    pub fn encrypt(&mut self, plaintext: &[u8]) -> Result<OlmEncrypted, Error> {
        let message = self
            .inner
            .encrypt(plaintext)
            .map_err(|e| Error::new(ErrorCode::Session, format!("Olm encryption failed: {e}")))?;
        let (message_type, body) = message.to_parts();
        Ok(OlmEncrypted {
            message_type: u32::try_from(message_type).unwrap_or(u32::MAX),
            body,
        })
    }

    /// Decrypts a message of the peer; throws (code `decrypt`) when it was
    /// altered, is not of this session, or was already decrypted.
    pub fn decrypt(
        &mut self,
        #[wasm_bindgen(js_name = messageType)] message_type: u32,
        body: &[u8],
    ) -> Result<Vec<u8>, Error> {
        let message = olm_message(message_type, body)?;
        self.inner.decrypt(&message).map_err(|e| {
            Error::new(
                ErrorCode::Decrypt,
                format!("the Olm message does not decrypt: {e}"),
            )
        })
    }

    /// Whether a pre-key message (type 0) belongs to this session, so that
    /// it is decrypted here rather than opening a new one. False for a
    /// normal message.
    #[wasm_bindgen(js_name = matchesPreKeyMessage)]
    pub fn matches_pre_key_message(
        &self,
        #[wasm_bindgen(js_name = messageType)] message_type: u32,
        body: &[u8],
    ) -> Result<bool, Error> {
        match olm_message(message_type, body)? {
            OlmMessage::PreKey(m) => Ok(m.session_id() == self.inner.session_id()),
            OlmMessage::Normal(_) => Ok(false),
        }
    }

    /// The session encrypted with a 32-byte key (base64 text).
    pub fn pickle(&self, key: &[u8]) -> Result<String, Error> {
        Ok(self.inner.pickle().encrypt(&pickle_key(key)?))
    }

    /// The session from `pickle()`; throws (code `pickle`) on a wrong key.
    #[wasm_bindgen(js_name = fromPickle)]
    pub fn from_pickle(pickle: &str, key: &[u8]) -> Result<Session, Error> {
        let pickle = vodozemac::olm::SessionPickle::from_encrypted(pickle, &pickle_key(key)?)
            .map_err(|e| pickle_error("session", e))?;
        Ok(Session {
            inner: vodozemac::olm::Session::from_pickle(pickle),
        })
    }
}
