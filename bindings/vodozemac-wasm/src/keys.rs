//! Ed25519 keys outside an account (the user's master key), signature
//! checks, key checks and vodozemac's base64.

use vodozemac::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature};
use wasm_bindgen::prelude::wasm_bindgen;

use crate::{Error, ErrorCode};

fn ed25519_public(what: &str, key: &str) -> Result<Ed25519PublicKey, Error> {
    Ed25519PublicKey::from_base64(key).map_err(|e| {
        Error::new(
            ErrorCode::InvalidKey,
            format!("the {what} is not an Ed25519 public key: {e}"),
        )
    })
}

/// An Ed25519 key pair held by the application: the user's master key,
/// which signs the user's devices.
#[wasm_bindgen]
pub struct Ed25519SecretKey {
    inner: vodozemac::Ed25519SecretKey,
}

impl Default for Ed25519SecretKey {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen]
impl Ed25519SecretKey {
    /// A new random key pair.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Ed25519SecretKey {
        Ed25519SecretKey {
            inner: vodozemac::Ed25519SecretKey::new(),
        }
    }

    /// The key pair from its private half (`toBase64()`).
    #[wasm_bindgen(js_name = fromBase64)]
    pub fn from_base64(secret: &str) -> Result<Ed25519SecretKey, Error> {
        let inner = vodozemac::Ed25519SecretKey::from_base64(secret).map_err(|e| {
            Error::new(
                ErrorCode::InvalidKey,
                format!("not an Ed25519 private key: {e}"),
            )
        })?;
        Ok(Ed25519SecretKey { inner })
    }

    /// The private half (base64): keep it secret, encrypted at rest.
    #[wasm_bindgen(js_name = toBase64)]
    pub fn to_base64(&self) -> String {
        self.inner.to_base64()
    }

    /// The public half (base64).
    #[wasm_bindgen(getter, js_name = publicKey)]
    pub fn public_key(&self) -> String {
        self.inner.public_key().to_base64()
    }

    /// The signature (base64) of `message`.
    pub fn sign(&self, message: &[u8]) -> String {
        self.inner.sign(message).to_base64()
    }
}

/// Whether `signature` (base64) is the Ed25519 signature of `message` by
/// `publicKey` (base64). False for a signature that does not match; throws
/// when the key or the signature is malformed.
#[wasm_bindgen(js_name = verifyEd25519)]
pub fn verify_ed25519(
    #[wasm_bindgen(js_name = publicKey)] public_key: &str,
    message: &[u8],
    signature: &str,
) -> Result<bool, Error> {
    let key = ed25519_public("public key", public_key)?;
    let signature = Ed25519Signature::from_base64(signature).map_err(|e| {
        Error::new(
            ErrorCode::InvalidMessage,
            format!("not an Ed25519 signature: {e}"),
        )
    })?;
    Ok(key.verify(message, &signature).is_ok())
}

/// Throws (code `invalid_key`) unless `key` is a Curve25519 public key (base64).
#[wasm_bindgen(js_name = checkCurve25519Key)]
pub fn check_curve25519_key(key: &str) -> Result<(), Error> {
    Curve25519PublicKey::from_base64(key)
        .map(|_| ())
        .map_err(|e| {
            Error::new(
                ErrorCode::InvalidKey,
                format!("not a Curve25519 public key: {e}"),
            )
        })
}

/// Throws (code `invalid_key`) unless `key` is an Ed25519 public key (base64).
#[wasm_bindgen(js_name = checkEd25519Key)]
pub fn check_ed25519_key(key: &str) -> Result<(), Error> {
    ed25519_public("key", key).map(|_| ())
}

/// `bytes` in vodozemac's base64 (standard alphabet, no padding).
#[wasm_bindgen(js_name = base64Encode)]
pub fn base64_encode(bytes: &[u8]) -> String {
    vodozemac::base64_encode(bytes)
}

/// The bytes of vodozemac's base64 (standard alphabet, no padding);
/// throws (code `invalid_argument`) on anything else.
#[wasm_bindgen(js_name = base64Decode)]
pub fn base64_decode(text: &str) -> Result<Vec<u8>, Error> {
    vodozemac::base64_decode(text).map_err(|e| {
        Error::new(
            ErrorCode::InvalidArgument,
            format!("not unpadded base64: {e}"),
        )
    })
}
