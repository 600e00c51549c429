//! The key directory through `request::dispatch`: uploads checked by
//! signature, identities that never change, one-time keys claimed once then
//! the fallback, and who may see and claim whose keys.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chatcore::e2e::{device_keys_text, one_time_key_text, OLM_V1};
use chatcore::error::CoreError;
use chatcore::model::{Audience, ConversationId, UserId};
use chatcore::protocol::{
    ClaimedKey, ClientFrame, DeviceRef, ErrorCode, IdentityKeys, ServerFrame, SignedKey,
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
