//! The exported functions on the host: the same Rust code the wasm build
//! runs, minus the JavaScript conversions (the Node tests in
//! bindings/typescript/test/unit/vodozemac.test.mjs run the wasm itself), and
//! the committed fixtures of `examples/fixtures.rs` checked with vodozemac
//! directly, so that the Node test decrypting them tests against known-good
//! native output.

use vodozemac_wasm::{
    base64_decode, base64_encode, check_curve25519_key, check_ed25519_key, verify_ed25519, Account,
    Ed25519SecretKey, ErrorCode, GroupSession, InboundGroupSession, Session,
};

const KEY: [u8; 32] = [7; 32];
const OTHER_KEY: [u8; 32] = [8; 32];

/// Alice opens a session to Bob with one of his one-time keys.
fn pair() -> (Account, Session, Account, Session) {
    let alice = Account::new();
    let mut bob = Account::new();
    bob.generate_one_time_keys(1).unwrap();
    let otk = bob.one_time_keys().remove(0);
    bob.mark_keys_as_published();
    let mut to_bob = alice
        .create_outbound_session(&bob.curve25519_key(), &otk.key())
        .unwrap();
    let first = to_bob.encrypt(b"hello bob").unwrap();
    assert_eq!(first.message_type(), 0);
    let mut inbound = bob
        .create_inbound_session(&alice.curve25519_key(), 0, &first.body())
        .unwrap();
    assert_eq!(inbound.plaintext(), b"hello bob");
    let to_alice = inbound.take_session().unwrap();
    assert_eq!(
        inbound.take_session().err().map(|e| e.code()),
        Some(ErrorCode::InvalidArgument)
    );
    (alice, to_bob, bob, to_alice)
}

#[test]
fn olm_both_ways_and_pre_key_matching() {
    let (_alice, mut to_bob, _bob, mut to_alice) = pair();
    assert_eq!(to_bob.session_id(), to_alice.session_id());
    let second = to_bob.encrypt(b"again").unwrap();
    assert!(to_alice
        .matches_pre_key_message(second.message_type(), &second.body())
        .unwrap());
    assert_eq!(
        to_alice
            .decrypt(second.message_type(), &second.body())
            .unwrap(),
        b"again"
    );
    let reply = to_alice.encrypt(b"hi alice").unwrap();
    assert_eq!(reply.message_type(), 1);
    assert!(!to_alice
        .matches_pre_key_message(reply.message_type(), &reply.body())
        .unwrap());
    assert_eq!(
        to_bob.decrypt(reply.message_type(), &reply.body()).unwrap(),
        b"hi alice"
    );
    let after = to_bob.encrypt(b"normal now").unwrap();
    assert_eq!(after.message_type(), 1);
    assert_eq!(to_alice.decrypt(1, &after.body()).unwrap(), b"normal now");
}

#[test]
fn olm_bad_input_is_an_error() {
    let (alice, mut to_bob, mut bob, mut to_alice) = pair();
    let m = to_bob.encrypt(b"x").unwrap();
    let mut tampered = m.body();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let e = to_alice.decrypt(0, &tampered).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Decrypt, "{e}");
    assert_eq!(
        to_alice.decrypt(7, &m.body()).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    assert_eq!(
        to_alice.decrypt(1, b"not olm").unwrap_err().code(),
        ErrorCode::InvalidMessage
    );
    // The session still works after the failures.
    assert_eq!(to_alice.decrypt(0, &m.body()).unwrap(), b"x");
    // The one-time key was used up: the same pre-key message opens nothing.
    let again = to_bob.encrypt(b"y").unwrap();
    let e = bob
        .create_inbound_session(&alice.curve25519_key(), 0, &again.body())
        .err()
        .unwrap();
    assert_eq!(e.code(), ErrorCode::Session, "{e}");
    let e = alice
        .create_outbound_session("not a key", &bob.curve25519_key())
        .err()
        .unwrap();
    assert_eq!(e.code(), ErrorCode::InvalidKey);
    assert!(e.message().contains("identity key"), "{e}");
}

#[test]
fn one_time_and_fallback_keys() {
    let mut a = Account::new();
    assert_eq!(a.max_number_of_one_time_keys(), 50);
    a.generate_one_time_keys(3).unwrap();
    let keys = a.one_time_keys();
    assert_eq!(keys.len(), 3);
    for k in &keys {
        check_curve25519_key(&k.key()).unwrap();
    }
    assert_eq!(
        a.generate_one_time_keys(51).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
    assert!(a.fallback_key().is_none());
    a.generate_fallback_key();
    assert!(a.fallback_key().is_some());
    a.mark_keys_as_published();
    assert!(a.one_time_keys().is_empty());
    assert!(a.fallback_key().is_none());
}

#[test]
fn megolm_from_the_key_and_from_a_later_export() {
    let mut out = GroupSession::new();
    let key = out.session_key();
    let messages: Vec<Vec<u8>> = (0..4u8).map(|i| out.encrypt(&[i; 5])).collect();
    assert_eq!(out.message_index(), 4);
    let mut inbound = InboundGroupSession::new(&key).unwrap();
    assert_eq!(inbound.session_id(), out.session_id());
    for (i, m) in messages.iter().enumerate() {
        let d = inbound.decrypt(m).unwrap();
        assert_eq!(d.message_index() as usize, i);
        assert_eq!(d.plaintext(), vec![i as u8; 5]);
    }
    let exported = inbound.export_at(2).unwrap();
    let mut later = InboundGroupSession::import(&exported).unwrap();
    assert_eq!(later.first_known_index(), 2);
    let e = later.decrypt(&messages[1]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnknownIndex, "{e}");
    assert_eq!(later.decrypt(&messages[3]).unwrap().plaintext(), [3; 5]);
    assert!(later.export_at(1).is_none());
    assert_eq!(
        InboundGroupSession::import(&later.export_at_first_known_index())
            .unwrap()
            .first_known_index(),
        2
    );
    // Tampered, garbage, another session's: errors, and the session still reads.
    let mut tampered = messages[0].clone();
    tampered[10] ^= 1;
    assert_eq!(
        inbound.decrypt(&tampered).unwrap_err().code(),
        ErrorCode::Decrypt
    );
    assert_eq!(
        inbound.decrypt(b"\x03garbage").unwrap_err().code(),
        ErrorCode::InvalidMessage
    );
    let other = GroupSession::new().encrypt(b"other");
    assert_eq!(
        inbound.decrypt(&other).unwrap_err().code(),
        ErrorCode::Decrypt
    );
    assert_eq!(inbound.decrypt(&messages[0]).unwrap().plaintext(), [0; 5]);
    assert_eq!(
        InboundGroupSession::new("AAAA").err().map(|e| e.code()),
        Some(ErrorCode::InvalidKey)
    );
}

#[test]
fn pickles_round_trip_and_refuse_another_key() {
    let (alice, mut to_bob, _bob, mut to_alice) = pair();
    let back = Account::from_pickle(&alice.pickle(&KEY).unwrap(), &KEY).unwrap();
    assert_eq!(back.ed25519_key(), alice.ed25519_key());
    assert_eq!(back.curve25519_key(), alice.curve25519_key());
    let e = Account::from_pickle(&alice.pickle(&KEY).unwrap(), &OTHER_KEY)
        .err()
        .unwrap();
    assert_eq!(e.code(), ErrorCode::Pickle, "{e}");
    assert!(e.message().contains("account pickle"), "{e}");
    assert_eq!(
        alice.pickle(&[1; 31]).unwrap_err().code(),
        ErrorCode::InvalidArgument
    );

    let mut s = Session::from_pickle(&to_bob.pickle(&KEY).unwrap(), &KEY).unwrap();
    let m = s.encrypt(b"from the pickle").unwrap();
    assert_eq!(
        to_alice.decrypt(m.message_type(), &m.body()).unwrap(),
        b"from the pickle"
    );
    assert!(Session::from_pickle(&to_bob.pickle(&KEY).unwrap(), &OTHER_KEY).is_err());
    let _ = to_bob.encrypt(b"unused").unwrap();

    let mut out = GroupSession::new();
    let inbound = InboundGroupSession::new(&out.session_key()).unwrap();
    let mut out2 = GroupSession::from_pickle(&out.pickle(&KEY).unwrap(), &KEY).unwrap();
    assert_eq!(out2.session_id(), out.session_id());
    let m = out2.encrypt(b"pickled");
    let mut in2 = InboundGroupSession::from_pickle(&inbound.pickle(&KEY).unwrap(), &KEY).unwrap();
    assert_eq!(in2.decrypt(&m).unwrap().plaintext(), b"pickled");
    assert_eq!(
        GroupSession::from_pickle(&out.pickle(&KEY).unwrap(), &OTHER_KEY)
            .err()
            .map(|e| e.code()),
        Some(ErrorCode::Pickle)
    );
    assert_eq!(
        InboundGroupSession::from_pickle("garbage", &KEY)
            .err()
            .map(|e| e.code()),
        Some(ErrorCode::Pickle)
    );
    // An account's pickle is not a session's.
    assert!(Session::from_pickle(&alice.pickle(&KEY).unwrap(), &KEY).is_err());
    let _ = out.encrypt(b"x");
}

#[test]
fn ed25519_master_key_and_checks() {
    let master = Ed25519SecretKey::new();
    let sig = master.sign(b"text");
    assert!(verify_ed25519(&master.public_key(), b"text", &sig).unwrap());
    assert!(!verify_ed25519(&master.public_key(), b"texT", &sig).unwrap());
    let back = Ed25519SecretKey::from_base64(&master.to_base64()).unwrap();
    assert_eq!(back.public_key(), master.public_key());
    assert_eq!(back.sign(b"text"), sig);
    assert_eq!(
        verify_ed25519("bad", b"text", &sig).unwrap_err().code(),
        ErrorCode::InvalidKey
    );
    assert_eq!(
        verify_ed25519(&master.public_key(), b"text", "bad")
            .unwrap_err()
            .code(),
        ErrorCode::InvalidMessage
    );
    assert!(Ed25519SecretKey::from_base64("short").is_err());
    let account = Account::new();
    assert!(verify_ed25519(&account.ed25519_key(), b"m", &account.sign(b"m")).unwrap());
    check_ed25519_key(&account.ed25519_key()).unwrap();
    assert!(check_ed25519_key(&account.curve25519_key()[..10]).is_err());
    assert!(check_curve25519_key("!!").is_err());
    assert_eq!(base64_encode(&[0xff, 0]), "/wA");
    assert_eq!(base64_decode("/wA").unwrap(), [0xff, 0]);
    assert_eq!(
        base64_decode("/wA=!").unwrap_err().code(),
        ErrorCode::InvalidArgument
    );
}

/// The committed fixtures (examples/fixtures.rs) hold what they claim, read
/// with native vodozemac.
#[test]
fn fixtures_decrypt_natively() {
    use vodozemac::megolm::{ExportedSessionKey, SessionConfig, SessionKey};
    use vodozemac::olm::{AccountPickle, OlmMessage, SessionConfig as OlmConfig, SessionPickle};
    use vodozemac::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature};

    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures.json"))
        .unwrap();
    let f: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
    let key: [u8; 32] = vodozemac::base64_decode(s(&f["pickle_key"]))
        .unwrap()
        .try_into()
        .unwrap();

    let olm = &f["olm"];
    let mut bob = vodozemac::olm::Account::from_pickle(
        AccountPickle::from_encrypted(&s(&olm["bob_account_pickle"]), &key).unwrap(),
    );
    let alice = Curve25519PublicKey::from_base64(&s(&olm["alice_curve25519"])).unwrap();
    let messages = olm["messages"].as_array().unwrap();
    let parse = |m: &serde_json::Value| {
        let body = vodozemac::base64_decode(s(&m["body"])).unwrap();
        OlmMessage::from_parts(m["type"].as_u64().unwrap() as usize, &body).unwrap()
    };
    let OlmMessage::PreKey(first) = parse(&messages[0]) else {
        panic!("the first Olm message is a pre-key message")
    };
    let mut created = bob
        .create_inbound_session(OlmConfig::version_1(), alice, &first)
        .unwrap();
    assert_eq!(created.plaintext, s(&messages[0]["plaintext"]).as_bytes());
    assert_eq!(created.session.session_id(), s(&olm["session_id"]));
    assert_eq!(
        created.session.decrypt(&parse(&messages[1])).unwrap(),
        s(&messages[1]["plaintext"]).as_bytes()
    );
    let alice_session = vodozemac::olm::Session::from_pickle(
        SessionPickle::from_encrypted(&s(&olm["alice_session_pickle"]), &key).unwrap(),
    );
    assert_eq!(alice_session.session_id(), s(&olm["session_id"]));
    assert_eq!(
        bob.sign(s(&olm["account_text"])).to_base64(),
        s(&olm["account_signature"])
    );

    let megolm = &f["megolm"];
    let mut inbound = vodozemac::megolm::InboundGroupSession::new(
        &SessionKey::from_base64(&s(&megolm["session_key"])).unwrap(),
        SessionConfig::version_1(),
    );
    let mut later = vodozemac::megolm::InboundGroupSession::import(
        &ExportedSessionKey::from_base64(&s(&megolm["export_at_2"])).unwrap(),
        SessionConfig::version_1(),
    );
    assert_eq!(inbound.session_id(), s(&megolm["session_id"]));
    for m in megolm["messages"].as_array().unwrap() {
        let bytes = vodozemac::base64_decode(s(&m["ciphertext"])).unwrap();
        let message = vodozemac::megolm::MegolmMessage::from_bytes(&bytes).unwrap();
        let index = m["index"].as_u64().unwrap() as u32;
        let d = inbound.decrypt(&message).unwrap();
        assert_eq!(
            (d.message_index, d.plaintext),
            (index, s(&m["plaintext"]).into_bytes())
        );
        assert_eq!(later.decrypt(&message).is_ok(), index >= 2);
    }

    let ed = &f["ed25519"];
    let public = Ed25519PublicKey::from_base64(&s(&ed["public"])).unwrap();
    let signature = Ed25519Signature::from_base64(&s(&ed["signature"])).unwrap();
    public
        .verify(s(&ed["text"]).as_bytes(), &signature)
        .unwrap();
    let secret = vodozemac::Ed25519SecretKey::from_base64(&s(&ed["secret"])).unwrap();
    assert_eq!(secret.public_key(), public);
}
