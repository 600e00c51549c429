//! The key directory through `request::dispatch`: uploads checked by
//! signature, identities that never change, one-time keys claimed once then
//! the fallback, and who may see and claim whose keys.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chatcore::e2e::{
    device_keys_text, device_signature_text, master_key_text, one_time_key_text, OLM_V1,
};
use chatcore::error::CoreError;
use chatcore::model::{Audience, ConversationId, DeviceId, UserId};
use chatcore::protocol::{
    ClaimedKey, ClientFrame, DeviceRef, DeviceSignature, ErrorCode, IdentityKeys, MasterKeyInfo,
    ServerFrame, SignedKey,
};
use chatcore::request::{dispatch, Caller, Out, Who};
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Server};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::sync::Arc;

const PW: &str = "tangerine submarine orchestra 77";

async fn register(s: &Arc<Server>, name: &str, phone: &str) -> Caller {
    let mut out = Out::default();
    dispatch(
        s,
        Who::new(None, None),
        ClientFrame::Register {
            id: 1,
            username: name.into(),
            email: format!("{name}@example.com"),
            phone: phone.into(),
            display_name: name.into(),
            password: PW.into(),
            device: "test".into(),
        },
        &mut out,
    )
    .await
    .expect("registered");
    let s = out.sign_in.expect("signed in");
    Caller::new(
        s.user,
        s.device,
        s.token_hash,
        Arc::from(format!("conn-{name}")),
    )
}

async fn req(s: &Arc<Server>, who: &Caller, frame: ClientFrame) -> Result<ServerFrame, CoreError> {
    let mut out = Out::default();
    dispatch(s, Who::new(None, Some(who)), frame, &mut out).await
}

/// A device's signing key pair, and its signed keys.
struct Keys {
    pair: Ed25519KeyPair,
    identity: IdentityKeys,
}

fn b64(b: &[u8]) -> String {
    STANDARD_NO_PAD.encode(b)
}

fn keys_of(c: &Caller) -> Keys {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let signing = b64(pair.public_key().as_ref());
    let agreement = b64(&[5u8; 32]);
    let text = device_keys_text(&c.user, &c.device, OLM_V1, &signing, &agreement);
    let identity = IdentityKeys {
        algorithm: OLM_V1.into(),
        signing_key: signing,
        agreement_key: agreement,
        signature: b64(pair.sign(text.as_bytes()).as_ref()),
    };
    Keys { pair, identity }
}

fn otk(c: &Caller, k: &Keys, id: &str) -> SignedKey {
    let key = b64(&[id.len() as u8; 32]);
    let text = one_time_key_text(&c.user, &c.device, id, &key);
    SignedKey {
        id: id.into(),
        key,
        signature: b64(k.pair.sign(text.as_bytes()).as_ref()),
    }
}

fn upload(
    identity: Option<&Keys>,
    one_time: Vec<SignedKey>,
    fallback: Option<SignedKey>,
) -> ClientFrame {
    ClientFrame::UploadKeys {
        id: 1,
        device_keys: identity.map(|k| k.identity.clone()),
        one_time_keys: one_time,
        fallback_key: fallback,
        master_key: None,
        signatures: Vec::new(),
    }
}

fn code(r: Result<ServerFrame, CoreError>) -> ErrorCode {
    r.expect_err("refused").code()
}

fn claim(c: &Caller, conv: Option<ConversationId>) -> ClientFrame {
    ClientFrame::ClaimKeys {
        id: 1,
        devices: vec![DeviceRef {
            user: c.user.clone(),
            device: c.device.clone(),
        }],
        conv,
    }
}

fn claimed(r: Result<ServerFrame, CoreError>) -> Vec<ClaimedKey> {
    match r {
        Ok(ServerFrame::ClaimedKeys { keys, .. }) => keys,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn uploads_are_checked_and_keys_are_claimed_once_then_the_fallback() {
    let s = Server::new(Backends::memory(), fast_config()).unwrap();
    let alice = register(&s, "alice", "+441111111111").await;
    let bob = register(&s, "bob", "+442222222222").await;
    let ka = keys_of(&alice);

    // One-time keys need the identity first; a forged identity is refused.
    let early = req(&s, &alice, upload(None, vec![otk(&alice, &ka, "k1")], None)).await;
    assert_eq!(code(early), ErrorCode::InvalidArgument);
    let mut forged = keys_of(&alice);
    forged.identity.agreement_key = b64(&[6u8; 32]);
    assert_eq!(
        code(req(&s, &alice, upload(Some(&forged), vec![], None)).await),
        ErrorCode::InvalidArgument
    );
    let fallback = otk(&alice, &ka, "fb1");
    let reply = req(
        &s,
        &alice,
        upload(
            Some(&ka),
            vec![otk(&alice, &ka, "k1"), otk(&alice, &ka, "k22")],
            Some(fallback.clone()),
        ),
    )
    .await
    .unwrap();
    assert!(matches!(
        reply,
        ServerFrame::KeyCounts {
            one_time: 2,
            fallback_unused: true,
            ..
        }
    ));
    // The identity never changes; the same again is fine.
    assert!(req(&s, &alice, upload(Some(&ka), vec![], None))
        .await
        .is_ok());
    let other = keys_of(&alice);
    assert_eq!(
        code(req(&s, &alice, upload(Some(&other), vec![], None)).await),
        ErrorCode::Conflict
    );
    // A key signed by another device's key is refused, and nothing of the
    // upload is stored.
    let kb = keys_of(&bob);
    let bad = vec![otk(&alice, &ka, "k3"), otk(&alice, &kb, "k4")];
    assert_eq!(
        code(req(&s, &alice, upload(None, bad, None)).await),
        ErrorCode::InvalidArgument
    );
    // Bob may reach Alice (her settings let anyone write): each key once,
    // then the fallback.
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(claimed(req(&s, &bob, claim(&alice, None)).await));
    }
    let ids: Vec<(&str, bool)> = got
        .iter()
        .map(|c| (c.key.id.as_str(), c.fallback))
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&("k1", false)) && ids.contains(&("k22", false)));
    assert_eq!(ids[2], ("fb1", true));
    assert_eq!(got[2].key, fallback);
    // Alice reads what is left, to top up.
    let reply = req(&s, &alice, upload(None, vec![], None)).await.unwrap();
    assert!(matches!(
        reply,
        ServerFrame::KeyCounts {
            one_time: 0,
            fallback_unused: false,
            ..
        }
    ));
    // The directory shows Alice's device to Bob, with its signed keys.
    let shown = req(
        &s,
        &bob,
        ClientFrame::QueryKeys {
            id: 1,
            users: vec![alice.user.clone(), UserId::generate()],
            conv: None,
        },
    )
    .await
    .unwrap();
    let ServerFrame::DeviceKeys { devices, .. } = shown else {
        panic!("{shown:?}")
    };
    assert_eq!(devices.len(), 1, "an unknown user is left out");
    assert_eq!(
        (&devices[0].device, &devices[0].keys),
        (&alice.device, &ka.identity)
    );
}

#[tokio::test]
async fn only_who_may_reach_a_user_sees_and_claims_their_keys() {
    let s = Server::new(Backends::memory(), fast_config()).unwrap();
    let alice = register(&s, "alice", "+441111111111").await;
    let bob = register(&s, "bob", "+442222222222").await;
    let carol = register(&s, "carol", "+443333333333").await;
    let ka = keys_of(&alice);
    let keys: Vec<SignedKey> = (0..5).map(|i| otk(&alice, &ka, &format!("k{i}"))).collect();
    req(&s, &alice, upload(Some(&ka), keys, None))
        .await
        .unwrap();
    // Alice lets only contacts start a conversation: strangers get nothing,
    // and learn nothing from it (an empty answer, as for no keys at all).
    req(
        &s,
        &alice,
        ClientFrame::SetPrivacy {
            id: 1,
            direct: Some(Audience::Contacts),
            groups: None,
            presence: None,
            read_receipts: None,
        },
    )
    .await
    .unwrap();
    assert!(claimed(req(&s, &carol, claim(&alice, None)).await).is_empty());
    let query = |conv| ClientFrame::QueryKeys {
        id: 1,
        users: vec![alice.user.clone()],
        conv,
    };
    assert!(matches!(
        req(&s, &carol, query(None)).await.unwrap(),
        ServerFrame::DeviceKeys { devices, .. } if devices.is_empty()
    ));
    // A fellow member of a group reaches her through the group.
    let group = req(
        &s,
        &bob,
        ClientFrame::CreateGroup {
            id: 1,
            title: "Tea".into(),
            description: None,
            avatar: None,
            members: vec![alice.user.clone(), carol.user.clone()],
            encrypted: false,
        },
    )
    .await
    .unwrap();
    let ServerFrame::Conversation { conversation, .. } = group else {
        panic!("{group:?}")
    };
    let g = conversation.conv;
    assert!(matches!(
        req(&s, &carol, query(Some(g.clone()))).await.unwrap(),
        ServerFrame::DeviceKeys { devices, .. } if devices.len() == 1
    ));
    assert_eq!(
        claimed(req(&s, &carol, claim(&alice, Some(g.clone()))).await).len(),
        1
    );
    // Not through a group the caller is not in.
    let dave = register(&s, "dave", "+444444444444").await;
    assert_eq!(
        code(req(&s, &dave, claim(&alice, Some(g))).await),
        ErrorCode::NotFound
    );
    // Blocked: nothing, even through a group.
    req(
        &s,
        &alice,
        ClientFrame::Block {
            id: 1,
            user: bob.user.clone(),
        },
    )
    .await
    .unwrap();
    assert!(claimed(req(&s, &bob, claim(&alice, None)).await).is_empty());
}

#[tokio::test]
async fn claims_are_budgeted_per_user() {
    let mut config = fast_config();
    config.key_claims.max = 2;
    let s = Server::new(Backends::memory(), config).unwrap();
    let alice = register(&s, "alice", "+441111111111").await;
    let bob = register(&s, "bob", "+442222222222").await;
    let ka = keys_of(&alice);
    let keys: Vec<SignedKey> = (0..5).map(|i| otk(&alice, &ka, &format!("k{i}"))).collect();
    req(&s, &alice, upload(Some(&ka), keys, None))
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(claimed(req(&s, &bob, claim(&alice, None)).await).len(), 1);
    }
    assert_eq!(
        code(req(&s, &bob, claim(&alice, None)).await),
        ErrorCode::RateLimited
    );
    // Too many keys at once, or too many to keep: clear errors.
    let many: Vec<SignedKey> = (0..101)
        .map(|i| otk(&alice, &ka, &format!("m{i}")))
        .collect();
    assert_eq!(
        code(req(&s, &alice, upload(None, many, None)).await),
        ErrorCode::InvalidArgument
    );
    let fill: Vec<SignedKey> = (0..98)
        .map(|i| otk(&alice, &ka, &format!("f{i}")))
        .collect();
    assert_eq!(
        code(req(&s, &alice, upload(None, fill, None)).await),
        ErrorCode::LimitReached,
        "3 left + 98 > 100"
    );
}

/// Signs in `c`'s user on one more device.
async fn login(s: &Arc<Server>, c: &Caller, name: &str) -> Caller {
    let mut out = Out::default();
    dispatch(
        s,
        Who::new(None, None),
        ClientFrame::Login {
            id: 1,
            login: name.into(),
            password: PW.into(),
            device: "second".into(),
        },
        &mut out,
    )
    .await
    .expect("signed in");
    let s = out.sign_in.expect("signed in");
    assert_eq!(s.user, c.user);
    Caller::new(
        s.user,
        s.device,
        s.token_hash,
        Arc::from(format!("conn-{name}-2")),
    )
}

/// A master key pair of `user`, and its upload.
fn master_of(user: &UserId) -> (Ed25519KeyPair, MasterKeyInfo) {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let key = b64(pair.public_key().as_ref());
    let signature = b64(pair.sign(master_key_text(user, &key).as_bytes()).as_ref());
    (pair, MasterKeyInfo { key, signature })
}

fn vouch(master: &Ed25519KeyPair, c: &Caller, k: &Keys) -> DeviceSignature {
    let text = device_signature_text(
        &c.user,
        &c.device,
        &k.identity.signing_key,
        &k.identity.agreement_key,
    );
    DeviceSignature {
        device: c.device.clone(),
        signature: b64(master.sign(text.as_bytes()).as_ref()),
    }
}

fn with_master(
    identity: Option<&Keys>,
    master_key: Option<MasterKeyInfo>,
    signatures: Vec<DeviceSignature>,
) -> ClientFrame {
    match upload(identity, Vec::new(), None) {
        ClientFrame::UploadKeys {
            id,
            device_keys,
            one_time_keys,
            fallback_key,
            ..
        } => ClientFrame::UploadKeys {
            id,
            device_keys,
            one_time_keys,
            fallback_key,
            master_key,
            signatures,
        },
        other => other,
    }
}

/// Each device of `user` as `viewer` sees it: (device, signed by the
/// current master key), and the master key shown.
async fn seen(
    s: &Arc<Server>,
    viewer: &Caller,
    user: &UserId,
) -> (Vec<(DeviceId, bool)>, Option<String>) {
    match req(
        s,
        viewer,
        ClientFrame::QueryKeys {
            id: 1,
            users: vec![user.clone()],
            conv: None,
        },
    )
    .await
    .unwrap()
    {
        ServerFrame::DeviceKeys {
            devices,
            master_keys,
            ..
        } => (
            devices
                .into_iter()
                .map(|d| (d.device, d.master_signature.is_some()))
                .collect(),
            master_keys.into_iter().next().map(|m| m.master_key.key),
        ),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_master_key_vouches_for_the_devices_its_holder_signs() {
    let s = Server::new(Backends::memory(), fast_config()).unwrap();
    let alice = register(&s, "alice", "+441111111111").await;
    let bob = register(&s, "bob", "+442222222222").await;
    let (ak, bk) = (keys_of(&alice), keys_of(&bob));
    req(&s, &bob, upload(Some(&bk), Vec::new(), None))
        .await
        .unwrap();

    // The first device uploads its identity, the master key and the
    // master key's signature of itself, at once.
    let (master, info) = master_of(&alice.user);
    let first = with_master(
        Some(&ak),
        Some(info.clone()),
        vec![vouch(&master, &alice, &ak)],
    );
    req(&s, &alice, first).await.unwrap();
    let mut device_ids = vec![(alice.device.clone(), true)];
    assert_eq!(
        seen(&s, &bob, &alice.user).await,
        (device_ids.clone(), Some(info.key.clone()))
    );

    // A second device is unverified until a holder of the master key signs it.
    let alice2 = login(&s, &alice, "alice").await;
    let ak2 = keys_of(&alice2);
    req(&s, &alice2, upload(Some(&ak2), Vec::new(), None))
        .await
        .unwrap();
    device_ids.push((alice2.device.clone(), false));
    device_ids.sort();
    assert_eq!(seen(&s, &bob, &alice.user).await.0, device_ids);
    // Forged: signed by another key, or for another device: refused, nothing stored.
    let (other, _) = master_of(&alice.user);
    for (sig, what) in [
        (vouch(&other, &alice2, &ak2), "another key"),
        (
            DeviceSignature {
                device: alice2.device.clone(),
                ..vouch(&master, &alice, &ak)
            },
            "another device's signature",
        ),
    ] {
        let r = req(&s, &alice, with_master(None, None, vec![sig])).await;
        assert_eq!(code(r), ErrorCode::InvalidArgument, "{what}");
    }
    assert_eq!(seen(&s, &bob, &alice.user).await.0, device_ids);
    let unknown = DeviceSignature {
        device: DeviceId::from("no-such-device"),
        ..vouch(&master, &alice2, &ak2)
    };
    match req(&s, &alice, with_master(None, None, vec![unknown])).await {
        Err(CoreError::InvalidArgument { field, .. }) => assert_eq!(field, "signatures"),
        other => panic!("{other:?}"),
    }
    // The first device signs the second (any device of alice may send it).
    req(
        &s,
        &alice,
        with_master(None, None, vec![vouch(&master, &alice2, &ak2)]),
    )
    .await
    .unwrap();
    for d in &mut device_ids {
        d.1 = true;
    }
    assert_eq!(seen(&s, &bob, &alice.user).await.0, device_ids);

    // A master key whose self-signature does not verify is refused.
    let (_, mut bad) = master_of(&alice.user);
    bad.signature = info.signature.clone();
    let r = req(&s, &alice, with_master(None, Some(bad), Vec::new())).await;
    assert_eq!(code(r), ErrorCode::InvalidArgument);
    // Bob has no master key: his signatures wait for one.
    let (bob_master, _) = master_of(&bob.user);
    match req(
        &s,
        &bob,
        with_master(None, None, vec![vouch(&bob_master, &bob, &bk)]),
    )
    .await
    {
        Err(CoreError::InvalidArgument { field, message }) => {
            assert_eq!(field, "signatures");
            assert!(message.contains("master key first"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        seen(&s, &alice, &bob.user).await,
        (vec![(bob.device.clone(), false)], None)
    );

    // A new master key (all devices lost, say) voids the old one's
    // signatures until its holder signs again.
    let (master2, info2) = master_of(&alice.user);
    req(
        &s,
        &alice2,
        with_master(None, Some(info2.clone()), Vec::new()),
    )
    .await
    .unwrap();
    for d in &mut device_ids {
        d.1 = false;
    }
    assert_eq!(
        seen(&s, &bob, &alice.user).await,
        (device_ids.clone(), Some(info2.key.clone()))
    );
    req(
        &s,
        &alice2,
        with_master(None, None, vec![vouch(&master2, &alice2, &ak2)]),
    )
    .await
    .unwrap();
    let (shown, _) = seen(&s, &bob, &alice.user).await;
    assert!(shown.contains(&(alice2.device.clone(), true)));
    assert!(shown.contains(&(alice.device.clone(), false)));
}
