//! vodozemac for JavaScript: the small part of it that the TypeScript
//! binding's end-to-end encryption uses (what `chatcore_client::e2e` uses in
//! Rust), compiled to WebAssembly with wasm-bindgen.
//!
//! The JavaScript names are camelCase; bytes are `Uint8Array`, keys,
//! signatures and pickles base64 strings (unpadded, as vodozemac writes
//! them). Every failure is a thrown `Error` whose `name` is
//! `VodozemacError` and whose `code` says what went wrong ([`ErrorCode`]);
//! nothing here panics on input, so a bad key, a tampered message or a
//! pickle opened with the wrong key never aborts the wasm instance.
//!
//! The formats are vodozemac's own, so whatever the Rust client writes the
//! browser reads, and the other way round: Olm messages as (type, bytes),
//! Megolm messages as bytes, session keys as base64, pickles as vodozemac's
//! encrypted pickles (its JSON pickle, encrypted with a 32-byte key).
//!
//! # Layout
//! - `error`: [`Error`] and [`ErrorCode`], the thrown `VodozemacError`.
//! - `olm`: [`Account`] (identity, one-time and fallback keys, new
//!   sessions) and [`Session`] (an Olm channel to one device).
//! - `megolm`: [`GroupSession`] (outbound) and [`InboundGroupSession`].
//! - `keys`: [`Ed25519SecretKey`] (the user's master key),
//!   [`verify_ed25519`], key checks and base64.
//!
//! Built by `build.sh` beside this file, into `chatd/web/vodozemac/`.

mod error;
mod keys;
mod megolm;
mod olm;

pub use error::{Error, ErrorCode};
pub use keys::{
    base64_decode, base64_encode, check_curve25519_key, check_ed25519_key, verify_ed25519,
    Ed25519SecretKey,
};
pub use megolm::{DecryptedGroupMessage, GroupSession, InboundGroupSession};
pub use olm::{Account, InboundSession, OlmEncrypted, OneTimeKey, Session};

/// The 32-byte key of an encrypted pickle, or [`ErrorCode::InvalidArgument`].
fn pickle_key(key: &[u8]) -> Result<[u8; 32], Error> {
    <[u8; 32]>::try_from(key).map_err(|_| {
        Error::new(
            ErrorCode::InvalidArgument,
            format!("a pickle key is 32 bytes, not {}", key.len()),
        )
    })
}

/// A pickle that did not load: wrong key, tampered or not a pickle of this kind.
fn pickle_error(what: &str, e: vodozemac::PickleError) -> Error {
    Error::new(
        ErrorCode::Pickle,
        format!("the {what} pickle does not load with this key (wrong key, tampered or not a {what} pickle): {e}"),
    )
}
