//! Run with: cargo run -p vodozemac-wasm --example fixtures > bindings/vodozemac-wasm/tests/fixtures.json
//!
//! Writes what native vodozemac (the Rust client's build, not this crate's
//! wrappers) produces, for the Node tests to read with the wasm build:
//! an Olm account and session pickled natively with their messages, a
//! Megolm session's key, export and messages, and Ed25519 signatures.
//! tests/api.rs checks the committed file natively, so a failure in Node
//! points at the wasm side.

use serde_json::json;
use vodozemac::megolm::{GroupSession, InboundGroupSession, SessionConfig};
use vodozemac::olm::{Account, SessionConfig as OlmConfig};
use vodozemac::{base64_encode, Ed25519SecretKey};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pickle_key: [u8; 32] = std::array::from_fn(|i| i as u8);

    // Olm: Alice (native) opens a session to Bob (native) and sends two
    // pre-key messages; Bob's account is pickled before it reads them.
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1);
    let (_, otk) = bob
        .one_time_keys()
        .into_iter()
        .next()
        .ok_or("no one-time key")?;
    bob.mark_keys_as_published();
    let mut to_bob =
        alice.create_outbound_session(OlmConfig::version_1(), bob.curve25519_key(), otk)?;
    let olm_messages: Vec<_> = ["first from native Alice", "second from native Alice"]
        .iter()
        .map(|text| {
            let (message_type, body) = to_bob.encrypt(text.as_bytes())?.to_parts();
            Ok(json!({ "type": message_type, "body": base64_encode(body), "plaintext": text }))
        })
        .collect::<Result<_, vodozemac::olm::EncryptionError>>()?;
    let account_text = "the account signs this";

    // Megolm: four messages; the key from index 0 and an export at index 2.
    let mut group = GroupSession::new(SessionConfig::version_1());
    let session_key = group.session_key().to_base64();
    let megolm_messages: Vec<_> = (0..4)
        .map(|i| {
            let text = format!("megolm message {i}");
            json!({ "index": i, "ciphertext": base64_encode(group.encrypt(&text).to_bytes()), "plaintext": text })
        })
        .collect();
    let mut from_zero = InboundGroupSession::new(
        &vodozemac::megolm::SessionKey::from_base64(&session_key)?,
        SessionConfig::version_1(),
    );
    let export_at_2 = from_zero.export_at(2).ok_or("no export at 2")?.to_base64();

    let master = Ed25519SecretKey::new();
    let master_text = "the master key signs this";

    let fixtures = json!({
        "comment": "written by bindings/vodozemac-wasm/examples/fixtures.rs with native vodozemac 0.11.1; read by bindings/typescript/test/unit/vodozemac.test.mjs",
        "pickle_key": base64_encode(pickle_key),
        "olm": {
            "alice_curve25519": alice.curve25519_key().to_base64(),
            "alice_session_pickle": to_bob.pickle().encrypt(&pickle_key),
            "session_id": to_bob.session_id(),
            "bob_account_pickle": bob.pickle().encrypt(&pickle_key),
            "bob_ed25519": bob.ed25519_key().to_base64(),
            "bob_curve25519": bob.curve25519_key().to_base64(),
            "messages": olm_messages,
            "account_text": account_text,
            "account_signature": bob.sign(account_text).to_base64(),
        },
        "megolm": {
            "session_id": group.session_id(),
            "session_key": session_key,
            "export_at_2": export_at_2,
            "inbound_pickle": from_zero.pickle().encrypt(&pickle_key),
            "messages": megolm_messages,
        },
        "ed25519": {
            "secret": master.to_base64(),
            "public": master.public_key().to_base64(),
            "text": master_text,
            "signature": master.sign(master_text.as_bytes()).to_base64(),
        },
    });
    println!("{}", serde_json::to_string_pretty(&fixtures)?);
    Ok(())
}
