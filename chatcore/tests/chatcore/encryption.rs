//! The server's side of end-to-end encryption through whole sessions:
//! to-device payloads (live, after a sign-in, in batches, until
//! acknowledged, bounded, only to whom the sender may reach), key counts
//! pushed when claims leave a device low, and encrypted conversations
//! (plain text refused from the notice on, the envelope checked, previews
//! without text).

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chatcore::e2e::{device_keys_text, one_time_key_text, MEGOLM_V1, OLM_V1};
use chatcore::model::{Audience, Content, ConversationId, DeviceId, UserId};
use chatcore::protocol::{
    ClientFrame, DeviceRef, ErrorCode, IdentityKeys, KeyCountsInfo, OutgoingToDevice, ServerFrame,
    SignedKey, ToDeviceAck, ToDeviceMessage, UndeliveredReason,
};
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Server};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::sync::Arc;

use super::sessions::{code, server, Client};

const PW: &str = "tangerine submarine orchestra 77";

fn b64(b: &[u8]) -> String {
    STANDARD_NO_PAD.encode(b)
}

/// A signed-in device with identity keys uploaded.
struct Device {
    client: Client,
    user: UserId,
    device: DeviceId,
    token: String,
    pair: Ed25519KeyPair,
}

impl Device {
    async fn sign_in(s: &Arc<Server>, frame: impl FnOnce(u32) -> ClientFrame) -> Device {
        let mut client = Client::connect(s).await;
        let ServerFrame::Session {
            user,
            device,
            token: Some(token),
            keys,
            ..
        } = client.req(frame).await
        else {
            panic!("sign-in refused")
        };
        assert_eq!(keys, KeyCountsInfo::default(), "a new device has no keys");
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let signing = b64(pair.public_key().as_ref());
        let agreement = b64(&[5u8; 32]);
        let text = device_keys_text(&user, &device, OLM_V1, &signing, &agreement);
        let identity = IdentityKeys {
            algorithm: OLM_V1.into(),
            signing_key: signing,
            agreement_key: agreement,
            signature: b64(pair.sign(text.as_bytes()).as_ref()),
        };
        let reply = client
            .req(|id| ClientFrame::UploadKeys {
                id,
                device_keys: Some(identity),
                one_time_keys: Vec::new(),
                fallback_key: None,
                master_key: None,
                signatures: Vec::new(),
            })
            .await;
        assert!(matches!(reply, ServerFrame::KeyCounts { .. }), "{reply:?}");
        Device {
            client,
            user,
            device,
            token,
            pair,
        }
    }

    async fn register(s: &Arc<Server>, name: &str, phone: &str) -> Device {
        let (name, phone) = (name.to_owned(), phone.to_owned());
        Self::sign_in(s, |id| ClientFrame::Register {
            id,
            username: name.clone(),
            email: format!("{name}@example.com"),
            phone,
            display_name: name,
            password: PW.into(),
            device: "laptop".into(),
        })
        .await
    }

    async fn login(s: &Arc<Server>, name: &str) -> Device {
        let name = name.to_owned();
        Self::sign_in(s, |id| ClientFrame::Login {
            id,
            login: name,
            password: PW.into(),
            device: "phone".into(),
        })
        .await
    }

    /// Drops the connection and signs in again with the token: the
    /// session reply, and the pushes that followed it.
    async fn reconnect(&mut self, s: &Arc<Server>) -> (ServerFrame, Vec<ServerFrame>) {
        self.client = Client::connect(s).await;
        let token = self.token.clone();
        let reply = self
            .client
            .req(|id| ClientFrame::Resume { id, token })
            .await;
        let pushes = self.client.drain().await;
        (reply, pushes)
    }

    fn to(&self, id: &str, payload: &str) -> OutgoingToDevice {
        OutgoingToDevice {
            user: self.user.clone(),
            device: Some(self.device.clone()),
            id: id.into(),
            payload: b64(payload.as_bytes()),
        }
    }

    async fn send_to_device(&mut self, messages: Vec<OutgoingToDevice>) -> ServerFrame {
        self.client
            .req(|id| ClientFrame::SendToDevice {
                id,
                kind: OLM_V1.into(),
                messages,
                conv: None,
            })
            .await
    }

    async fn ack(&mut self, got: &[ToDeviceMessage]) {
        let messages = got
            .iter()
            .map(|m| ToDeviceAck {
                from_device: m.from_device.clone(),
                id: m.id.clone(),
            })
            .collect();
        let reply = self
            .client
            .req(|id| ClientFrame::AckToDevice { id, messages })
            .await;
        assert!(matches!(reply, ServerFrame::Ok { .. }), "{reply:?}");
    }
}

/// The to-device payloads among `pushes`, as (id, payload text), in order.
fn payloads(pushes: &[ServerFrame]) -> Vec<(String, String)> {
    delivered(pushes)
        .into_iter()
        .map(|m| {
            let bytes = STANDARD_NO_PAD.decode(&m.payload).unwrap();
            (m.id, String::from_utf8(bytes).unwrap())
        })
        .collect()
}

fn delivered(pushes: &[ServerFrame]) -> Vec<ToDeviceMessage> {
    pushes
        .iter()
        .filter_map(|f| match f {
            ServerFrame::ToDevice { messages } => Some(messages.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn pair(id: &str, text: &str) -> (String, String) {
    (id.to_owned(), text.to_owned())
}

#[tokio::test]
async fn to_device_payloads_wait_for_their_device_until_acknowledged() {
    let s = server();
    let mut alice = Device::register(&s, "alice", "+441111111111").await;
    let mut bob1 = Device::register(&s, "bob", "+442222222222").await;
    let mut bob2 = Device::login(&s, "bob").await;
    bob1.client.drain().await;

    // Live, to the one device named.
    let to_bob1 = bob1.to("p1", "for bob's laptop");
    match alice.send_to_device(vec![to_bob1.clone()]).await {
        ServerFrame::ToDeviceSent {
            queued: 1,
            undelivered,
            ..
        } => assert!(undelivered.is_empty()),
        other => panic!("{other:?}"),
    }
    let got = bob1.client.drain().await;
    assert_eq!(payloads(&got), [pair("p1", "for bob's laptop")]);
    let first = &delivered(&got)[0];
    assert_eq!(
        (&first.from_user, &first.from_device, first.kind.as_str()),
        (&alice.user, &alice.device, OLM_V1)
    );
    assert!(
        payloads(&bob2.client.drain().await).is_empty(),
        "not the other device's"
    );

    // To every device of a user.
    let mut all = bob1.to("p2", "for each of bob's devices");
    all.device = None;
    assert!(matches!(
        alice.send_to_device(vec![all]).await,
        ServerFrame::ToDeviceSent { queued: 2, .. }
    ));
    assert_eq!(
        payloads(&bob1.client.drain().await),
        [pair("p2", "for each of bob's devices")]
    );
    assert_eq!(
        payloads(&bob2.client.drain().await),
        [pair("p2", "for each of bob's devices")]
    );

    // A retry is stored once and not pushed again.
    assert!(matches!(
        alice.send_to_device(vec![to_bob1.clone()]).await,
        ServerFrame::ToDeviceSent { queued: 1, .. }
    ));
    assert!(payloads(&bob1.client.drain().await).is_empty());

    // Unacknowledged payloads come again after a sign-in, oldest first,
    // with what arrived meanwhile.
    drop(std::mem::replace(
        &mut bob1.client,
        Client::connect(&s).await,
    ));
    alice
        .send_to_device(vec![bob1.to("p3", "while away")])
        .await;
    let (reply, pushes) = bob1.reconnect(&s).await;
    assert!(matches!(reply, ServerFrame::Session { .. }), "{reply:?}");
    assert_eq!(
        payloads(&pushes),
        [
            pair("p1", "for bob's laptop"),
            pair("p2", "for each of bob's devices"),
            pair("p3", "while away")
        ]
    );
    // Acknowledged ones never come again.
    bob1.ack(&delivered(&pushes)[..2]).await;
    let (_, pushes) = bob1.reconnect(&s).await;
    assert_eq!(payloads(&pushes), [pair("p3", "while away")]);
    bob1.ack(&delivered(&pushes)).await;
    let (_, pushes) = bob1.reconnect(&s).await;
    assert!(payloads(&pushes).is_empty(), "{pushes:?}");
    // The other device's copy of p2 is its own to acknowledge.
    let (_, pushes) = bob2.reconnect(&s).await;
    assert_eq!(payloads(&pushes), [pair("p2", "for each of bob's devices")]);
}

#[tokio::test]
async fn to_device_reaches_only_devices_the_sender_may_reach() {
    let s = server();
    let mut alice = Device::register(&s, "alice", "+441111111111").await;
    let mut bob = Device::register(&s, "bob", "+442222222222").await;
    let mut carol = Device::register(&s, "carol", "+443333333333").await;
    // Carol takes direct messages from contacts only.
    let reply = carol
        .client
        .req(|id| ClientFrame::SetPrivacy {
            id,
            direct: Some(Audience::Contacts),
            groups: None,
            presence: None,
            read_receipts: None,
        })
        .await;
    assert!(matches!(reply, ServerFrame::Privacy { .. }), "{reply:?}");
    let mut unknown = bob.to("x1", "to a device bob does not have");
    unknown.device = Some(DeviceId::from("no-such-device"));
    let stranger = carol.to("x2", "to carol, who takes contacts only");
    let mut nobody = bob.to("x3", "to nobody");
    nobody.user = UserId::from("no-such-user");
    nobody.device = None;
    match alice
        .send_to_device(vec![unknown, stranger, nobody, bob.to("x4", "fine")])
        .await
    {
        ServerFrame::ToDeviceSent {
            queued: 1,
            undelivered,
            ..
        } => {
            assert_eq!(undelivered.len(), 3, "{undelivered:?}");
            assert!(undelivered
                .iter()
                .all(|u| u.reason == UndeliveredReason::Unknown));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(payloads(&bob.client.drain().await), [pair("x4", "fine")]);
    assert!(payloads(&carol.client.drain().await).is_empty());

    // Everything is checked before anything is queued.
    for (messages, field) in [
        (Vec::new(), "messages"),
        (
            vec![
                bob.to("ok", "fine"),
                OutgoingToDevice {
                    payload: "not base64!".into(),
                    ..bob.to("bad", "")
                },
            ],
            "payload",
        ),
        (vec![bob.to("", "no id")], "id"),
    ] {
        match alice.send_to_device(messages).await {
            ServerFrame::Error {
                code: ErrorCode::InvalidArgument,
                field: Some(f),
                ..
            } => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
    let (_, pushes) = bob.reconnect(&s).await;
    assert_eq!(
        payloads(&pushes),
        [pair("x4", "fine")],
        "nothing of the refused"
    );
    let too_big = OutgoingToDevice {
        payload: b64(&vec![1u8; 32 * 1024 + 1]),
        ..bob.to("big", "")
    };
    let reply = alice.send_to_device(vec![too_big]).await;
    assert!(
        matches!(
            code(&reply),
            Some(ErrorCode::InvalidArgument | ErrorCode::TooLarge)
        ),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_full_queue_refuses_and_a_backlog_comes_in_batches() {
    let mut config = fast_config();
    config.max_to_device_queue = 130;
    let s = Server::new(Backends::memory(), config).unwrap();
    let mut alice = Device::register(&s, "alice", "+441111111111").await;
    let mut bob = Device::register(&s, "bob", "+442222222222").await;
    drop(std::mem::replace(
        &mut bob.client,
        Client::connect(&s).await,
    ));
    let many: Vec<OutgoingToDevice> = (0..140)
        .map(|i| bob.to(&format!("m{i:03}"), &format!("payload {i}")))
        .collect();
    match alice.send_to_device(many).await {
        ServerFrame::ToDeviceSent {
            queued: 130,
            undelivered,
            ..
        } => {
            assert_eq!(undelivered.len(), 10);
            assert!(undelivered
                .iter()
                .all(|u| u.reason == UndeliveredReason::Full
                    && u.device.as_ref() == Some(&bob.device)));
        }
        other => panic!("{other:?}"),
    }
    // 130 waiting: a first push of 100 after the sign-in, the other 30
    // once those are acknowledged.
    let (_, pushes) = bob.reconnect(&s).await;
    let first = delivered(&pushes);
    assert_eq!(first.len(), 100);
    assert_eq!(first[0].id, "m000", "oldest first");
    bob.ack(&first).await;
    let second = delivered(&bob.client.drain().await);
    assert_eq!(second.len(), 30);
    assert_eq!(second[0].id, "m100");
    bob.ack(&second).await;
    assert!(delivered(&bob.client.drain().await).is_empty());
    // Room again.
    assert!(matches!(
        alice.send_to_device(vec![bob.to("again", "room")]).await,
        ServerFrame::ToDeviceSent { queued: 1, .. }
    ));
}

#[tokio::test]
async fn claims_that_leave_a_device_low_push_its_key_counts() {
    let s = server();
    let mut alice = Device::register(&s, "alice", "+441111111111").await;
    let mut bob = Device::register(&s, "bob", "+442222222222").await;
    let keys: Vec<SignedKey> = (0..4u8)
        .map(|i| {
            let (id, key) = (format!("k{i}"), b64(&[i + 1; 32]));
            let text = one_time_key_text(&bob.user, &bob.device, &id, &key);
            SignedKey {
                id,
                key,
                signature: b64(bob.pair.sign(text.as_bytes()).as_ref()),
            }
        })
        .collect();
    let reply = bob
        .client
        .req(|id| ClientFrame::UploadKeys {
            id,
            device_keys: None,
            one_time_keys: keys,
            fallback_key: None,
            master_key: None,
            signatures: Vec::new(),
        })
        .await;
    assert!(
        matches!(reply, ServerFrame::KeyCounts { one_time: 4, .. }),
        "{reply:?}"
    );
    let target = DeviceRef {
        user: bob.user.clone(),
        device: bob.device.clone(),
    };
    let reply = alice
        .client
        .req(|id| ClientFrame::ClaimKeys {
            id,
            devices: vec![target],
            conv: None,
        })
        .await;
    assert!(
        matches!(reply, ServerFrame::ClaimedKeys { .. }),
        "{reply:?}"
    );
    let pushed: Vec<ServerFrame> = bob
        .client
        .drain()
        .await
        .into_iter()
        .filter(|f| matches!(f, ServerFrame::KeyCounts { .. }))
        .collect();
    assert_eq!(
        pushed,
        [ServerFrame::KeyCounts {
            id: None,
            one_time: 3,
            fallback_unused: false
        }],
        "3 of the 100 it may keep: time to top up"
    );
    assert!(alice
        .client
        .drain()
        .await
        .iter()
        .all(|f| !matches!(f, ServerFrame::KeyCounts { .. })));
    let (reply, _) = bob.reconnect(&s).await;
    match reply {
        ServerFrame::Session { keys, .. } => assert_eq!(
            keys,
            KeyCountsInfo {
                one_time: 3,
                fallback_unused: false
            }
        ),
        other => panic!("{other:?}"),
    }
}

fn ciphertext(device: &DeviceId, body: &str) -> Content {
    Content::Encrypted {
        algorithm: MEGOLM_V1.into(),
        device: device.clone(),
        session: b64(&[9u8; 32]),
        ciphertext: b64(body.as_bytes()),
    }
}

async fn send(
    c: &mut Client,
    conv: &ConversationId,
    client_id: &str,
    content: Content,
) -> ServerFrame {
    c.req(|id| ClientFrame::Send {
        media: Vec::new(),
        mentions: Vec::new(),
        rel: None,
        id,
        conv: Some(conv.clone()),
        to: None,
        client_id: client_id.into(),
        content,
    })
    .await
}

fn field_of(f: &ServerFrame) -> Option<&str> {
    match f {
        ServerFrame::Error {
            code: ErrorCode::InvalidArgument,
            field,
            ..
        } => field.as_deref(),
        _ => None,
    }
}

#[tokio::test]
async fn encrypted_conversations_take_only_ciphertext() {
    let s = server();
    let mut alice = Device::register(&s, "alice", "+441111111111").await;
    let mut bob = Device::register(&s, "bob", "+442222222222").await;
    let bob_id = bob.user.clone();
    let reply = alice
        .client
        .req(|id| ClientFrame::OpenDirect {
            id,
            user: bob_id,
            encrypted: true,
        })
        .await;
    let ServerFrame::Conversation { conversation, .. } = reply else {
        panic!("{reply:?}")
    };
    assert!(conversation.encrypted);
    let conv = conversation.conv.clone();
    let notice = bob.client.drain().await;
    assert!(
        notice
            .iter()
            .any(|f| matches!(f, ServerFrame::Message { message }
            if message.content == Content::EncryptionEnabled {} && message.from == alice.user)),
        "{notice:?}"
    );

    let text = Content::Text { text: "hi".into() };
    assert_eq!(
        field_of(&send(&mut alice.client, &conv, "t1", text).await),
        Some("content")
    );
    let forged = ciphertext(&bob.device, "claims to be bob's device");
    assert_eq!(
        field_of(&send(&mut alice.client, &conv, "t2", forged).await),
        Some("device")
    );
    let mut rot13 = ciphertext(&alice.device, "x");
    if let Content::Encrypted { algorithm, .. } = &mut rot13 {
        *algorithm = "rot13".into();
    }
    assert_eq!(
        field_of(&send(&mut alice.client, &conv, "t3", rot13).await),
        Some("algorithm")
    );

    let secret = ciphertext(&alice.device, "opaque to the server");
    let reply = send(&mut alice.client, &conv, "t4", secret.clone()).await;
    assert!(
        matches!(reply, ServerFrame::Sent { seq: 2, .. }),
        "{reply:?}"
    );
    let pushes = bob.client.drain().await;
    assert!(
        pushes
            .iter()
            .any(|f| matches!(f, ServerFrame::Message { message } if message.content == secret)),
        "delivered as sent: {pushes:?}"
    );
    assert!(
        pushes
            .iter()
            .any(|f| matches!(f, ServerFrame::Alert { seq: 2, .. })),
        "an encrypted message alerts like any: {pushes:?}"
    );
    // Bob accepts alice's request and answers in kind; plain text from
    // him is refused too.
    let reply = bob
        .client
        .req(|id| ClientFrame::Accept {
            id,
            conv: conv.clone(),
        })
        .await;
    assert!(
        matches!(reply, ServerFrame::Conversation { .. }),
        "{reply:?}"
    );
    let plain = Content::Text {
        text: "hello".into(),
    };
    assert_eq!(
        field_of(&send(&mut bob.client, &conv, "b1", plain).await),
        Some("content")
    );
    let reply = send(
        &mut bob.client,
        &conv,
        "b2",
        ciphertext(&bob.device, "reply"),
    )
    .await;
    assert!(
        matches!(reply, ServerFrame::Sent { seq: 3, .. }),
        "{reply:?}"
    );
    let list = bob
        .client
        .req(|id| ClientFrame::Conversations {
            id,
            list: None,
            after: None,
            limit: None,
        })
        .await;
    let ServerFrame::Conversations { conversations, .. } = list else {
        panic!("{list:?}")
    };
    let summary = &conversations[0];
    assert!(summary.encrypted);
    let last = summary.last.as_ref().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.preview.as_ref()),
        ("encrypted", None)
    );
    assert_eq!(summary.unread, 1, "alice's ciphertext counts as unread");

    // Asking again changes nothing.
    let reply = alice
        .client
        .req(|id| ClientFrame::Encrypt {
            id,
            conv: conv.clone(),
        })
        .await;
    assert!(
        matches!(reply, ServerFrame::Changed { seq: 0, .. }),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_group_is_encrypted_by_an_admin_or_from_its_creation() {
    let s = server();
    let mut alice = Device::register(&s, "alice", "+441111111111").await;
    let mut bob = Device::register(&s, "bob", "+442222222222").await;
    let bob_id = bob.user.clone();
    let create = |encrypted: bool, members: Vec<UserId>| {
        move |id| ClientFrame::CreateGroup {
            id,
            title: "Tea".into(),
            description: None,
            avatar: None,
            members,
            encrypted,
        }
    };
    let ServerFrame::Conversation { conversation, .. } =
        alice.client.req(create(false, vec![bob_id.clone()])).await
    else {
        panic!()
    };
    assert!(!conversation.encrypted);
    let conv = conversation.conv;
    let plain = Content::Text {
        text: "before".into(),
    };
    assert!(matches!(
        send(&mut bob.client, &conv, "b0", plain).await,
        ServerFrame::Sent { .. }
    ));
    // A member who is not an admin may not turn it on.
    let reply = bob
        .client
        .req(|id| ClientFrame::Encrypt {
            id,
            conv: conv.clone(),
        })
        .await;
    assert_eq!(code(&reply), Some(ErrorCode::Forbidden), "{reply:?}");
    let reply = alice
        .client
        .req(|id| ClientFrame::Encrypt {
            id,
            conv: conv.clone(),
        })
        .await;
    let ServerFrame::Changed { seq, .. } = reply else {
        panic!("{reply:?}")
    };
    assert_eq!(seq, 3);
    let plain = Content::Text {
        text: "after".into(),
    };
    assert_eq!(
        field_of(&send(&mut bob.client, &conv, "b1", plain).await),
        Some("content")
    );
    let reply = send(&mut bob.client, &conv, "b2", ciphertext(&bob.device, "x")).await;
    assert!(
        matches!(reply, ServerFrame::Sent { seq: 4, .. }),
        "{reply:?}"
    );

    let ServerFrame::Conversation { conversation, .. } =
        alice.client.req(create(true, vec![bob_id])).await
    else {
        panic!()
    };
    assert!(conversation.encrypted, "encrypted from the start");
    let plain = Content::Text { text: "no".into() };
    assert_eq!(
        field_of(&send(&mut alice.client, &conversation.conv, "a1", plain).await),
        Some("content")
    );
}
