//! What the server checks of end-to-end encryption keys: the signatures
//! devices put on their keys. It never holds a private key and never reads
//! what the keys protect; it refuses keys that do not verify, so that a
//! client fetching them from the directory gets what the device signed.
//!
//! Keys and signatures travel as unpadded standard base64 (as vodozemac
//! and Matrix write them). A signature is Ed25519 over a canonical text
//! that names the key's owner, so that a signature cannot be moved to
//! another user or device:
//!
//! - a device's identity: `chatcore-device-keys-v1` `\n` user `\n`
//!   device `\n` algorithm `\n` signing key `\n` agreement key, signed by
//!   the signing key itself;
//! - a one-time or fallback key: `chatcore-one-time-key-v1` `\n` user
//!   `\n` device `\n` key id `\n` key, signed by the device's signing key;
//! - a user's master signing key: `chatcore-master-key-v1` `\n` user `\n`
//!   key, signed by the master key itself;
//! - a device vouched for by its user's master key:
//!   `chatcore-device-signature-v1` `\n` user `\n` device `\n` signing key
//!   `\n` agreement key, signed by the master key.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use ring::signature::{UnparsedPublicKey, ED25519};

use crate::error::{invalid, CoreError};
use crate::model::{Content, DeviceId, UserId};
use crate::store::{DeviceKeys, MasterKey, OneTimeKey};

/// The algorithm of Olm devices (Ed25519 signing, Curve25519 agreement).
pub const OLM_V1: &str = "olm.v1";

/// The algorithm of encrypted conversation messages: Megolm, a session
/// per sending device whose key reaches the members' devices over Olm.
pub const MEGOLM_V1: &str = "megolm.v1";

/// Characters of a Megolm session id (an Ed25519 key in base64 is 43).
const MAX_SESSION_ID: usize = 128;

/// Bytes of an Ed25519 or Curve25519 public key.
const KEY_BYTES: usize = 32;
/// Bytes of an Ed25519 signature.
const SIGNATURE_BYTES: usize = 64;
/// Characters of a key id.
const MAX_KEY_ID: usize = 64;

/// The text a device signs to vouch for its identity keys.
pub fn device_keys_text(
    user: &UserId,
    device: &DeviceId,
    algorithm: &str,
    signing_key: &str,
    agreement_key: &str,
) -> String {
    format!(
        "chatcore-device-keys-v1\n{user}\n{device}\n{algorithm}\n{signing_key}\n{agreement_key}"
    )
}

/// The text a device signs to vouch for one of its one-time keys.
pub fn one_time_key_text(user: &UserId, device: &DeviceId, id: &str, key: &str) -> String {
    format!("chatcore-one-time-key-v1\n{user}\n{device}\n{id}\n{key}")
}

/// The text a user's master signing key signs to claim its owner: the
/// self-signature that the directory stores beside the key, so that a
/// master key cannot be moved to another user.
pub fn master_key_text(user: &UserId, key: &str) -> String {
    format!("chatcore-master-key-v1\n{user}\n{key}")
}

/// The text a user's master signing key signs to vouch for one of the
/// user's devices (after the user confirmed the device on another one). It
/// names both identity keys, so the signature does not carry over to other
/// keys under the same device id.
pub fn device_signature_text(
    user: &UserId,
    device: &DeviceId,
    signing_key: &str,
    agreement_key: &str,
) -> String {
    format!("chatcore-device-signature-v1\n{user}\n{device}\n{signing_key}\n{agreement_key}")
}

/// Decodes unpadded base64 of exactly `len` bytes.
fn decode(field: &str, value: &str, len: usize) -> Result<Vec<u8>, CoreError> {
    let bytes = STANDARD_NO_PAD
        .decode(value)
        .map_err(|_| invalid(field, format!("{field} is not unpadded base64")))?;
    if bytes.len() != len {
        return Err(invalid(
            field,
            format!("{field} is {} bytes, not {len}", bytes.len()),
        ));
    }
    Ok(bytes)
}

/// Checks that `signature` (base64) is `signing_key`'s (base64) over `text`.
pub fn verify(signing_key: &str, text: &str, signature: &str) -> Result<(), CoreError> {
    let key = decode("signing_key", signing_key, KEY_BYTES)?;
    let sig = decode("signature", signature, SIGNATURE_BYTES)?;
    UnparsedPublicKey::new(&ED25519, key)
        .verify(text.as_bytes(), &sig)
        .map_err(|_| invalid("signature", "the signature does not verify"))
}

/// Checks a device's identity keys: a known algorithm, well-formed keys,
/// and the signing key's signature over them.
pub fn check_device_keys(keys: &DeviceKeys) -> Result<(), CoreError> {
    if keys.algorithm != OLM_V1 {
        return Err(invalid("algorithm", format!("the algorithm is {OLM_V1}")));
    }
    decode("agreement_key", &keys.agreement_key, KEY_BYTES)?;
    let text = device_keys_text(
        &keys.user,
        &keys.device,
        &keys.algorithm,
        &keys.signing_key,
        &keys.agreement_key,
    );
    verify(&keys.signing_key, &text, &keys.signature)
}

/// Checks a one-time (or fallback) key of the device whose identity is
/// `device`: a well-formed id and key, signed by the device.
pub fn check_one_time_key(device: &DeviceKeys, key: &OneTimeKey) -> Result<(), CoreError> {
    if key.id.is_empty()
        || key.id.chars().count() > MAX_KEY_ID
        || key.id.chars().any(|c| c.is_control())
    {
        return Err(invalid(
            "id",
            format!("a key id has 1 to {MAX_KEY_ID} characters, none a control"),
        ));
    }
    decode("key", &key.key, KEY_BYTES)?;
    let text = one_time_key_text(&device.user, &device.device, &key.id, &key.key);
    verify(&device.signing_key, &text, &key.signature)
}

/// Checks a master key: a well-formed Ed25519 key with its own signature
/// over [`master_key_text`].
pub fn check_master_key(key: &MasterKey) -> Result<(), CoreError> {
    decode("master_key", &key.key, KEY_BYTES)?;
    verify(
        &key.key,
        &master_key_text(&key.user, &key.key),
        &key.signature,
    )
}

/// Checks `signature`, by the master key `master`, over the identity keys
/// of `device` ([`device_signature_text`]).
pub fn check_device_signature(
    master: &str,
    device: &DeviceKeys,
    signature: &str,
) -> Result<(), CoreError> {
    let text = device_signature_text(
        &device.user,
        &device.device,
        &device.signing_key,
        &device.agreement_key,
    );
    verify(master, &text, signature)
}

/// Whether `b` is a byte of the standard base64 alphabet. Comparisons
/// only, no table: the compiler checks 16 bytes at a time with them.
fn is_base64_byte(b: u8) -> bool {
    // `| 0x20` folds A-Z onto a-z and moves no other byte into a-z.
    ((b | 0x20).wrapping_sub(b'a') < 26) | (b.wrapping_sub(b'0') < 10) | (b == b'+') | (b == b'/')
}

/// Whether `value` is unpadded standard base64 (without decoding it).
/// Folded without a branch, so that it vectorises: every relayed encrypted
/// message passes here.
fn is_base64(value: &str) -> bool {
    let bytes = value.as_bytes();
    let chunks = bytes.chunks_exact(16);
    let rest = chunks.remainder().iter().all(|&b| is_base64_byte(b));
    bytes.len() % 4 != 1
        && rest
        && chunks.fold(true, |ok, chunk| {
            ok & chunk.iter().fold(true, |ok, &b| ok & is_base64_byte(b))
        })
}

/// Checks the envelope of an encrypted message that `device` sends: a
/// known algorithm, the sending device named truthfully, a session id and
/// a ciphertext in unpadded base64. What it encrypts is never looked at.
pub fn check_encrypted(content: &Content, device: &DeviceId) -> Result<(), CoreError> {
    let Content::Encrypted {
        algorithm,
        device: sender,
        session,
        ciphertext,
    } = content
    else {
        return Ok(());
    };
    if algorithm != MEGOLM_V1 {
        return Err(invalid(
            "algorithm",
            format!("messages are encrypted with {MEGOLM_V1}"),
        ));
    }
    if sender != device {
        return Err(invalid(
            "device",
            "device names the sending device: this connection's",
        ));
    }
    if session.is_empty() || session.len() > MAX_SESSION_ID || !is_base64(session) {
        return Err(invalid(
            "session",
            format!("a session id is 1 to {MAX_SESSION_ID} characters of base64"),
        ));
    }
    if ciphertext.is_empty() || !is_base64(ciphertext) {
        return Err(invalid(
            "ciphertext",
            "the ciphertext is unpadded standard base64",
        ));
    }
    Ok(())
}

/// The bytes of a to-device payload as the wire carries it: unpadded
/// standard base64 of 1 to `max` bytes.
pub fn decode_payload(payload: &str, max: usize) -> Result<Vec<u8>, CoreError> {
    let bytes = STANDARD_NO_PAD
        .decode(payload)
        .map_err(|_| invalid("payload", "a payload is unpadded standard base64"))?;
    if bytes.is_empty() || bytes.len() > max {
        return Err(invalid(
            "payload",
            format!("a payload has 1 to {max} bytes"),
        ));
    }
    Ok(bytes)
}

/// A to-device payload as the wire carries it.
pub fn encode_payload(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base64_bytes_are_the_alphabet() {
        let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for b in 0..=255u8 {
            assert_eq!(is_base64_byte(b), alphabet.contains(&b), "{b:#04x}");
        }
        assert!(is_base64("AAAA") && is_base64("AA") && is_base64(""));
        assert!(!is_base64("AAAAA") && !is_base64("AA==") && !is_base64("A-_A"));
    }
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    struct Device {
        pair: Ed25519KeyPair,
        keys: DeviceKeys,
    }

    fn b64(bytes: &[u8]) -> String {
        STANDARD_NO_PAD.encode(bytes)
    }

    fn device(user: &str, device: &str) -> Device {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let (user, device) = (UserId::from(user), DeviceId::from(device));
        let signing = b64(pair.public_key().as_ref());
        let agreement = b64(&[7u8; 32]);
        let text = device_keys_text(&user, &device, OLM_V1, &signing, &agreement);
        let signature = b64(pair.sign(text.as_bytes()).as_ref());
        let keys = DeviceKeys::new(
            (user, device),
            OLM_V1.into(),
            signing,
            agreement,
            signature,
            0,
        );
        Device { pair, keys }
    }

    fn one_time(d: &Device, id: &str) -> OneTimeKey {
        let key = b64(&[9u8; 32]);
        let text = one_time_key_text(&d.keys.user, &d.keys.device, id, &key);
        OneTimeKey::new(id, key, b64(d.pair.sign(text.as_bytes()).as_ref()))
    }

    #[test]
    fn signed_keys_verify_and_nothing_else_does() {
        let d = device("alice", "phone");
        check_device_keys(&d.keys).unwrap();
        let otk = one_time(&d, "AAAAAQ");
        check_one_time_key(&d.keys, &otk).unwrap();

        // The signature names its owner: it does not move to another device.
        let mut moved = d.keys.clone();
        moved.device = DeviceId::from("laptop");
        assert!(check_device_keys(&moved).is_err());
        let other = device("alice", "laptop");
        assert!(
            check_one_time_key(&other.keys, &otk).is_err(),
            "another device's key"
        );
        // A changed key, or a signature by another key, fails.
        let mut changed = d.keys.clone();
        changed.agreement_key = b64(&[8u8; 32]);
        assert!(check_device_keys(&changed).is_err());
        let mut forged = d.keys.clone();
        forged.signature = other.keys.signature.clone();
        assert!(check_device_keys(&forged).is_err());
        let mut tampered = otk.clone();
        tampered.key = b64(&[1u8; 32]);
        assert!(check_one_time_key(&d.keys, &tampered).is_err());
    }

    #[test]
    fn master_key_texts_name_their_owner() {
        let master = Ed25519KeyPair::from_pkcs8(
            Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .unwrap()
                .as_ref(),
        )
        .unwrap();
        let key = b64(master.public_key().as_ref());
        let alice = UserId::from("alice");
        let text = master_key_text(&alice, &key);
        assert_eq!(text, format!("chatcore-master-key-v1\nalice\n{key}"));
        let self_signature = b64(master.sign(text.as_bytes()).as_ref());
        verify(&key, &text, &self_signature).unwrap();
        // The self-signature does not move to another user.
        let mallory = master_key_text(&UserId::from("mallory"), &key);
        assert!(verify(&key, &mallory, &self_signature).is_err());

        let d = device("alice", "phone");
        let (phone, laptop) = (DeviceId::from("phone"), DeviceId::from("laptop"));
        let text =
            device_signature_text(&alice, &phone, &d.keys.signing_key, &d.keys.agreement_key);
        assert_eq!(
            text,
            format!(
                "chatcore-device-signature-v1\nalice\nphone\n{}\n{}",
                d.keys.signing_key, d.keys.agreement_key
            )
        );
        let signature = b64(master.sign(text.as_bytes()).as_ref());
        verify(&key, &text, &signature).unwrap();
        // Not for another device, nor for other keys under the same id, nor
        // from another key than the master key.
        let other =
            device_signature_text(&alice, &laptop, &d.keys.signing_key, &d.keys.agreement_key);
        assert!(verify(&key, &other, &signature).is_err());
        let swapped = device_signature_text(&alice, &phone, &d.keys.signing_key, &b64(&[8u8; 32]));
        assert!(verify(&key, &swapped, &signature).is_err());
        assert!(verify(&d.keys.signing_key, &text, &signature).is_err());
    }

    #[test]
    fn malformed_keys_get_clear_errors() {
        let d = device("bob", "phone");
        let field_of = |r: Result<(), CoreError>| match r {
            Err(CoreError::InvalidArgument { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let mut short = d.keys.clone();
        short.agreement_key = b64(&[1u8; 31]);
        assert_eq!(field_of(check_device_keys(&short)), "agreement_key");
        let mut padded = d.keys.clone();
        padded.signing_key.push('=');
        assert_eq!(field_of(check_device_keys(&padded)), "signing_key");
        let mut garbage = d.keys.clone();
        garbage.signature = "not base64!".into();
        assert_eq!(field_of(check_device_keys(&garbage)), "signature");
        let mut algorithm = d.keys.clone();
        algorithm.algorithm = "rsa".into();
        assert_eq!(field_of(check_device_keys(&algorithm)), "algorithm");
        let mut long_id = one_time(&d, "x");
        long_id.id = "x".repeat(65);
        assert_eq!(field_of(check_one_time_key(&d.keys, &long_id)), "id");
        let empty = OneTimeKey::new("", b64(&[9u8; 32]), "");
        assert_eq!(field_of(check_one_time_key(&d.keys, &empty)), "id");
    }

    #[test]
    fn master_keys_vouch_for_devices_of_their_user_only() {
        let master = device("carol", "master");
        let key = master.keys.signing_key.clone();
        let user = UserId::from("carol");
        let sign = |text: String| b64(master.pair.sign(text.as_bytes()).as_ref());
        let m = MasterKey::new(
            user.clone(),
            key.clone(),
            sign(master_key_text(&user, &key)),
            0,
        );
        check_master_key(&m).unwrap();
        let mut moved = m.clone();
        moved.user = UserId::from("mallory");
        assert!(check_master_key(&moved).is_err(), "names its user");
        let phone = device("carol", "phone");
        let k = &phone.keys;
        let sig = sign(device_signature_text(
            &k.user,
            &k.device,
            &k.signing_key,
            &k.agreement_key,
        ));
        check_device_signature(&key, k, &sig).unwrap();
        let laptop = device("carol", "laptop");
        assert!(
            check_device_signature(&key, &laptop.keys, &sig).is_err(),
            "not another device"
        );
        assert!(
            check_device_signature(&phone.keys.signing_key, k, &sig).is_err(),
            "not by another key"
        );
    }

    #[test]
    fn encrypted_envelopes_are_checked_not_read() {
        let me = DeviceId::from("DEVICEA");
        let good = || Content::Encrypted {
            algorithm: MEGOLM_V1.into(),
            device: me.clone(),
            session: b64(&[3u8; 32]),
            ciphertext: b64(b"opaque bytes the server cannot read"),
        };
        check_encrypted(&good(), &me).unwrap();
        let field_of = |c: Content| match check_encrypted(&c, &me) {
            Err(CoreError::InvalidArgument { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        let with = |f: &dyn Fn(&mut Content)| {
            let mut c = good();
            f(&mut c);
            c
        };
        let set = |c: &mut Content, name: &str, v: &str| {
            if let Content::Encrypted {
                algorithm,
                device,
                session,
                ciphertext,
            } = c
            {
                match name {
                    "algorithm" => *algorithm = v.to_owned().into(),
                    "device" => *device = DeviceId::from(v),
                    "session" => *session = v.into(),
                    _ => *ciphertext = v.into(),
                }
            }
        };
        assert_eq!(
            field_of(with(&|c| set(c, "algorithm", "rot13"))),
            "algorithm"
        );
        assert_eq!(field_of(with(&|c| set(c, "device", "OTHER"))), "device");
        assert_eq!(field_of(with(&|c| set(c, "session", ""))), "session");
        assert_eq!(
            field_of(with(&|c| set(c, "session", &"A".repeat(129)))),
            "session"
        );
        assert_eq!(
            field_of(with(&|c| set(c, "ciphertext", "AAAA="))),
            "ciphertext"
        );
        assert_eq!(field_of(with(&|c| set(c, "ciphertext", "A"))), "ciphertext");
        assert_eq!(field_of(with(&|c| set(c, "ciphertext", ""))), "ciphertext");
        let bytes = decode_payload("AAEC", 3).unwrap();
        assert_eq!(bytes, [0, 1, 2]);
        assert_eq!(encode_payload(&bytes), "AAEC");
        assert!(decode_payload("AAEC", 2).is_err(), "too long");
        assert!(decode_payload("", 3).is_err(), "empty");
        assert!(decode_payload("a b", 3).is_err(), "not base64");
        assert!(decode_payload("AAE=", 3).is_err(), "padded");
    }
}
