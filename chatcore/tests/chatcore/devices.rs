//! Devices through whole sessions over in-process channels: the list
//! (names, times, keys, the current one), renaming, revoking (the device's
//! connections close with 4001, its token, keys and to-device queue are
//! gone), every revocation path forgetting what the ended devices left, and
//! who hears `devices_changed`.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chatcore::e2e::{device_keys_text, OLM_V1};
use chatcore::memory::MemoryMailer;
use chatcore::model::{DeviceId, UserId};
use chatcore::protocol::{
    ClientFrame, DeviceInfo, ErrorCode, IdentityKeys, ServerFrame, SignedKey,
};
use chatcore::server::ManualClock;
use chatcore::session::Disconnect;
use chatcore::store::{ToDevice, ToDeviceStore};
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Server};
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair};

const PW: &str = "tangerine submarine orchestra 77";

/// One connection (the sessions tests' client) and the device it signed in as.
struct Client {
    inner: super::sessions::Client,
    device: Option<DeviceId>,
}

impl Client {
    async fn connect(server: &Arc<Server>) -> Client {
        Client {
            inner: super::sessions::Client::connect(server).await,
            device: None,
        }
    }

    async fn req(&mut self, make: impl FnOnce(u32) -> ClientFrame) -> ServerFrame {
        self.inner.req(make).await
    }

    /// Takes a `session` reply's identity.
    fn signed_in(&mut self, reply: ServerFrame) {
        let ServerFrame::Session {
            user,
            device,
            token,
            ..
        } = reply
        else {
            panic!("not signed in: {reply:?}");
        };
        self.inner.user = Some(user);
        self.device = Some(device);
        if token.is_some() {
            self.inner.token = token;
        }
    }

    async fn register(server: &Arc<Server>, name: &str, phone: &str, device: &str) -> Client {
        let mut c = Client::connect(server).await;
        let reply = c
            .req(|id| ClientFrame::Register {
                id,
                username: name.into(),
                email: format!("{name}@example.com"),
                phone: phone.into(),
                display_name: name.into(),
                password: PW.into(),
                device: device.into(),
            })
            .await;
        c.signed_in(reply);
        c
    }

    async fn login(server: &Arc<Server>, name: &str, device: &str) -> Client {
        let mut c = Client::connect(server).await;
        let reply = c
            .req(|id| ClientFrame::Login {
                id,
                login: name.into(),
                password: PW.into(),
                device: device.into(),
            })
            .await;
        c.signed_in(reply);
        c
    }

    async fn resume(server: &Arc<Server>, token: &str) -> Client {
        let mut c = Client::connect(server).await;
        let reply = c
            .req(|id| ClientFrame::Resume {
                id,
                token: token.into(),
            })
            .await;
        c.signed_in(reply);
        c.inner.token = Some(token.to_owned());
        c
    }

    fn user(&self) -> UserId {
        self.inner.user.clone().expect("signed in")
    }

    fn device(&self) -> DeviceId {
        self.device.clone().expect("signed in")
    }

    fn token(&self) -> String {
        self.inner.token.clone().expect("token")
    }

    async fn devices(&mut self) -> Vec<DeviceInfo> {
        match self.req(|id| ClientFrame::Devices { id }).await {
            ServerFrame::DeviceList { devices, .. } => devices,
            other => panic!("devices: {other:?}"),
        }
    }

    async fn rename(&mut self, device: &DeviceId, name: &str) -> ServerFrame {
        self.req(|id| ClientFrame::RenameDevice {
            id,
            device: device.clone(),
            name: name.into(),
        })
        .await
    }

    async fn revoke(&mut self, device: &DeviceId) -> ServerFrame {
        self.req(|id| ClientFrame::RevokeDevice {
            id,
            device: device.clone(),
        })
        .await
    }

    /// Uploads identity keys signed for this device; returns the reply.
    async fn upload_keys(&mut self, pair: &Ed25519KeyPair) -> ServerFrame {
        self.upload_keys_with(pair, Vec::new()).await
    }

    /// Uploads identity keys signed for this device, and `one_time` keys.
    async fn upload_keys_with(
        &mut self,
        pair: &Ed25519KeyPair,
        one_time: Vec<SignedKey>,
    ) -> ServerFrame {
        let signing = STANDARD_NO_PAD.encode(pair.public_key().as_ref());
        let agreement = STANDARD_NO_PAD.encode([5u8; 32]);
        let text = device_keys_text(&self.user(), &self.device(), OLM_V1, &signing, &agreement);
        let keys = IdentityKeys {
            algorithm: OLM_V1.into(),
            signing_key: signing,
            agreement_key: agreement,
            signature: STANDARD_NO_PAD.encode(pair.sign(text.as_bytes()).as_ref()),
        };
        self.req(|id| ClientFrame::UploadKeys {
            id,
            device_keys: Some(keys),
            one_time_keys: one_time,
            fallback_key: None,
            master_key: None,
            signatures: Vec::new(),
        })
        .await
    }

    /// The devices of `user` whose keys this connection's user sees.
    async fn keyed_devices(&mut self, user: &UserId) -> Vec<DeviceId> {
        match self
            .req(|id| ClientFrame::QueryKeys {
                id,
                users: vec![user.clone()],
                conv: None,
            })
            .await
        {
            ServerFrame::DeviceKeys { devices, .. } => {
                devices.into_iter().map(|d| d.device).collect()
            }
            other => panic!("query_keys: {other:?}"),
        }
    }

    /// Pushes received so far (a ping round trip first takes in whatever
    /// was published before it).
    async fn drain(&mut self) -> Vec<ServerFrame> {
        self.inner.drain().await
    }

    /// The users named by the `devices_changed` pushes received so far.
    async fn changed(&mut self) -> Vec<UserId> {
        self.drain()
            .await
            .into_iter()
            .filter_map(|f| match f {
                ServerFrame::DevicesChanged { user } => Some(user),
                _ => None,
            })
            .collect()
    }

    async fn closed(self) -> Disconnect {
        self.inner.closed().await
    }

    async fn pings(&mut self) -> bool {
        matches!(
            self.req(|id| ClientFrame::Ping { id }).await,
            ServerFrame::Pong { .. }
        )
    }
}

fn code(f: &ServerFrame) -> Option<(ErrorCode, Option<String>)> {
    match f {
        ServerFrame::Error { code, field, .. } => Some((*code, field.clone())),
        _ => None,
    }
}

fn is_ok(f: &ServerFrame) -> bool {
    matches!(f, ServerFrame::Ok { .. })
}

fn key_pair() -> Ed25519KeyPair {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).expect("key");
    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("key")
}

/// A server on a clock the test moves, its mail, and its to-device queues
/// (queued into directly: sending them is another request family's).
fn server() -> (Arc<Server>, Arc<ManualClock>, Arc<MemoryMailer>, Queues) {
    let mailer = Arc::new(MemoryMailer::new());
    let clock = Arc::new(ManualClock::new(1_750_000_000_000));
    let backends = Backends::memory_with_mailer(mailer.clone());
    let queues = backends.to_device.clone();
    let s = Server::with_clock(backends, fast_config(), clock.clone()).expect("server");
    (s, clock, mailer, queues)
}

type Queues = Arc<dyn ToDeviceStore>;

/// `owner` makes a group with `members`: from now on they share a
/// conversation.
async fn group(owner: &mut Client, members: &[&Client]) {
    let reply = owner
        .req(|id| ClientFrame::CreateGroup {
            id,
            title: "Tea party".into(),
            description: None,
            avatar: None,
            members: members.iter().map(|c| c.user()).collect(),
            encrypted: false,
        })
        .await;
    assert!(code(&reply).is_none(), "{reply:?}");
}

/// Puts a to-device payload in `to`'s queue, as another device would.
async fn queue_for(q: &Queues, from: &Client, to: &Client, id: &str) {
    let item = ToDevice::new(
        id.into(),
        (from.user(), from.device()),
        (to.user(), to.device()),
        "olm.v1".into(),
        b"ciphertext".to_vec(),
        1,
    );
    q.enqueue(&[item], 10).await.expect("queued");
}

async fn queued(q: &Queues, user: &UserId, device: &DeviceId) -> usize {
    q.pending(user, device, 10).await.expect("pending").len()
}

#[tokio::test]
async fn the_list_shows_names_times_keys_and_the_current_device_and_resume_moves_last_active() {
    let (s, clock, _, _) = server();
    let t0 = s.now();
    let mut laptop = Client::register(&s, "alice", "+441111111111", "Firefox on Linux").await;
    clock.advance(Duration::from_secs(1));
    let mut phone = Client::login(&s, "alice", "  Phone ").await;
    assert!(code(&laptop.upload_keys(&key_pair()).await).is_none());

    let listed = laptop.devices().await;
    assert_eq!(
        listed,
        vec![
            DeviceInfo {
                device: laptop.device(),
                name: "Firefox on Linux".into(),
                created_at: t0,
                last_active: t0,
                keys: true,
                current: true,
            },
            DeviceInfo {
                device: phone.device(),
                name: "Phone".into(),
                created_at: t0 + 1000,
                last_active: t0 + 1000,
                keys: false,
                current: false,
            },
        ],
        "oldest first, the name as normalised at sign-in"
    );
    let seen_by_phone: Vec<(DeviceId, bool)> = phone
        .devices()
        .await
        .into_iter()
        .map(|d| (d.device, d.current))
        .collect();
    assert_eq!(
        seen_by_phone,
        vec![(laptop.device(), false), (phone.device(), true)],
        "current is the asking device"
    );

    // The phone reconnects later: the same device, active now.
    clock.advance(Duration::from_secs(60));
    let token = phone.token();
    drop(phone);
    let phone = Client::resume(&s, &token).await;
    let after = laptop.devices().await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(
        (
            after[1].device.clone(),
            after[1].created_at,
            after[1].last_active
        ),
        (phone.device(), t0 + 1000, t0 + 61_000)
    );
    assert_eq!(after[0].last_active, t0, "the laptop did not resume");

    // Another user sees only their own.
    let mut bob = Client::register(&s, "bob", "+442222222222", "Tablet").await;
    let bobs: Vec<DeviceId> = bob.devices().await.into_iter().map(|d| d.device).collect();
    assert_eq!(bobs, vec![bob.device()]);
}

#[tokio::test]
async fn a_device_is_renamed_by_its_user_only_and_bad_input_is_refused() {
    let (s, clock, _, _) = server();
    let mut laptop = Client::register(&s, "alice", "+441111111111", "Laptop").await;
    let phone = Client::login(&s, "alice", "Phone").await;
    let mut bob = Client::register(&s, "bob", "+442222222222", "Tablet").await;
    let names = |v: Vec<DeviceInfo>| v.into_iter().map(|d| d.name).collect::<Vec<_>>();

    assert!(is_ok(
        &laptop.rename(&phone.device(), "  Work phone ").await
    ));
    assert_eq!(names(laptop.devices().await), vec!["Laptop", "Work phone"]);
    assert!(is_ok(&laptop.rename(&laptop.device(), "").await));
    assert_eq!(
        names(laptop.devices().await),
        vec!["unnamed device", "Work phone"],
        "an empty name is normalised as at sign-in"
    );

    let invalid = |field: &str| Some((ErrorCode::InvalidArgument, Some(field.to_owned())));
    let refused = [
        (phone.device(), "x".repeat(65), invalid("name")),
        (phone.device(), "y".repeat(100_000), invalid("name")),
        (phone.device(), "evil\u{202e}name".into(), invalid("name")),
        (phone.device(), "bell\u{7}".into(), invalid("name")),
        (DeviceId::from(""), "ok".into(), invalid("device")),
        (
            DeviceId::from("d".repeat(65).as_str()),
            "ok".into(),
            invalid("device"),
        ),
        (DeviceId::from("../etc"), "ok".into(), invalid("device")),
        (
            DeviceId::generate(),
            "ok".into(),
            Some((ErrorCode::NotFound, None)),
        ),
    ];
    for (device, name, expected) in refused {
        let reply = laptop.rename(&device, &name).await;
        assert_eq!(code(&reply), expected, "{device:?} {:.20}: {reply:?}", name);
    }
    // Bob cannot rename Alice's phone, and learns nothing from trying.
    let theirs = bob.rename(&phone.device(), "Mine now").await;
    assert_eq!(
        code(&theirs),
        Some((ErrorCode::NotFound, None)),
        "{theirs:?}"
    );
    assert_eq!(
        names(laptop.devices().await),
        vec!["unnamed device", "Work phone"],
        "nothing changed"
    );

    // A device whose session expired is gone: not listed, not renamed.
    let ttl = fast_config().session_ttl;
    clock.advance(ttl - Duration::from_secs(1));
    let laptop_token = laptop.token();
    let mut laptop = Client::resume(&s, &laptop_token).await;
    clock.advance(Duration::from_secs(2));
    assert_eq!(names(laptop.devices().await), vec!["unnamed device"]);
    let expired = laptop.rename(&phone.device(), "Still here?").await;
    assert_eq!(
        code(&expired),
        Some((ErrorCode::NotFound, None)),
        "{expired:?}"
    );
}

#[tokio::test]
async fn revoking_a_device_closes_it_and_deletes_its_token_keys_and_queue() {
    let (s, _, _, q) = server();
    let mut laptop = Client::register(&s, "alice", "+441111111111", "Laptop").await;
    let mut phone = Client::login(&s, "alice", "Phone").await;
    let mut bob = Client::register(&s, "bob", "+442222222222", "Tablet").await;
    group(&mut bob, &[&laptop]).await;
    assert!(code(&laptop.upload_keys(&key_pair()).await).is_none());
    assert!(code(&phone.upload_keys(&key_pair()).await).is_none());
    queue_for(&q, &bob, &phone, "m1").await;
    let token = phone.token();

    // Nobody else's device, and no unknown one: not_found, nothing changes.
    let theirs = bob.revoke(&phone.device()).await;
    assert_eq!(
        code(&theirs),
        Some((ErrorCode::NotFound, None)),
        "{theirs:?}"
    );
    let unknown = laptop.revoke(&DeviceId::generate()).await;
    assert_eq!(
        code(&unknown),
        Some((ErrorCode::NotFound, None)),
        "{unknown:?}"
    );
    let bad = laptop.revoke(&DeviceId::from("not a device id")).await;
    assert_eq!(
        code(&bad),
        Some((ErrorCode::InvalidArgument, Some("device".into())))
    );
    assert!(phone.pings().await, "the phone is still signed in");
    assert_eq!(laptop.devices().await.len(), 2);
    assert_eq!(bob.keyed_devices(&laptop.user()).await.len(), 2);
    assert_eq!(queued(&q, &phone.user(), &phone.device()).await, 1);

    let phone_device = phone.device();
    assert!(is_ok(&laptop.revoke(&phone_device).await));
    let closed = phone.closed().await;
    assert_eq!(closed, Disconnect::Revoked);
    assert_eq!(closed.close_code(), 4001);
    let mut again = Client::connect(&s).await;
    let resumed = again
        .req(|id| ClientFrame::Resume {
            id,
            token: token.clone(),
        })
        .await;
    assert_eq!(
        code(&resumed).map(|c| c.0),
        Some(ErrorCode::Unauthenticated),
        "the token no longer resumes"
    );
    assert_eq!(
        bob.keyed_devices(&laptop.user()).await,
        vec![laptop.device()],
        "its keys are gone from the directory"
    );
    assert!(
        queued(&q, &laptop.user(), &phone_device).await == 0,
        "its to-device queue is gone"
    );
    let left: Vec<DeviceId> = laptop
        .devices()
        .await
        .into_iter()
        .map(|d| d.device)
        .collect();
    assert_eq!(left, vec![laptop.device()]);
    assert!(laptop.pings().await, "the revoking device stays");
    let twice = laptop.revoke(&phone_device).await;
    assert_eq!(code(&twice), Some((ErrorCode::NotFound, None)), "gone now");
}

#[tokio::test]
async fn revoking_ones_own_device_is_a_logout() {
    let (s, _, _, q) = server();
    let mut laptop = Client::register(&s, "alice", "+441111111111", "Laptop").await;
    let mut other = Client::login(&s, "alice", "Phone").await;
    assert!(code(&laptop.upload_keys(&key_pair()).await).is_none());
    queue_for(&q, &other, &laptop, "m1").await;
    let token = laptop.token();
    let (user, device) = (laptop.user(), laptop.device());
    assert_eq!(other.changed().await, vec![user.clone()], "the keys");
    assert!(is_ok(&laptop.revoke(&device).await));
    assert_eq!(laptop.closed().await, Disconnect::LoggedOut);
    let mut again = Client::connect(&s).await;
    let resumed = again.req(|id| ClientFrame::Resume { id, token }).await;
    assert_eq!(
        code(&resumed).map(|c| c.0),
        Some(ErrorCode::Unauthenticated)
    );
    assert!(other.keyed_devices(&user).await.is_empty(), "keys gone");
    assert_eq!(queued(&q, &user, &device).await, 0, "queue gone");
    assert_eq!(other.changed().await, vec![user]);
}

#[tokio::test]
async fn every_revocation_path_forgets_the_ended_devices() {
    let (s, _, mailer, q) = server();
    let mut laptop = Client::register(&s, "alice", "+441111111111", "Laptop").await;
    let mut phone = Client::login(&s, "alice", "Phone").await;
    let mut bob = Client::register(&s, "bob", "+442222222222", "Tablet").await;
    group(&mut bob, &[&laptop]).await;
    let alice = laptop.user();
    assert!(code(&laptop.upload_keys(&key_pair()).await).is_none());
    assert!(code(&phone.upload_keys(&key_pair()).await).is_none());
    queue_for(&q, &bob, &phone, "m1").await;
    queue_for(&q, &bob, &laptop, "m2").await;
    bob.drain().await;

    // A password change ends the other devices: the phone.
    let changed = laptop
        .req(|id| ClientFrame::ChangePassword {
            id,
            old_password: PW.into(),
            new_password: "velvet thunder cartography 12".into(),
        })
        .await;
    assert!(is_ok(&changed), "{changed:?}");
    let phone_device = phone.device();
    assert_eq!(phone.closed().await, Disconnect::Revoked);
    assert_eq!(bob.keyed_devices(&alice).await, vec![laptop.device()]);
    assert_eq!(queued(&q, &alice, &phone_device).await, 0);
    assert_eq!(
        queued(&q, &alice, &laptop.device()).await,
        1,
        "the laptop keeps its queue"
    );
    assert_eq!(bob.changed().await, vec![alice.clone()]);

    // A reset ends every device.
    let asked = bob
        .req(|id| ClientFrame::ResetRequest {
            id,
            email: "alice@example.com".into(),
        })
        .await;
    assert!(is_ok(&asked));
    let token = mail_token(&mailer, "alice@example.com").await;
    let mut stranger = Client::connect(&s).await;
    let reset = stranger
        .req(|id| ClientFrame::ResetConfirm {
            id,
            token,
            new_password: "marble lantern quietude 31".into(),
        })
        .await;
    assert!(is_ok(&reset), "{reset:?}");
    let laptop_device = laptop.device();
    assert_eq!(laptop.closed().await, Disconnect::Revoked);
    assert!(bob.keyed_devices(&alice).await.is_empty());
    assert_eq!(queued(&q, &alice, &laptop_device).await, 0);
    assert_eq!(bob.changed().await, vec![alice]);
}

async fn mail_token(mailer: &MemoryMailer, to: &str) -> String {
    for _ in 0..500 {
        if let Some(m) = mailer.outbox().into_iter().find(|m| m.to == to) {
            let line = m
                .body
                .lines()
                .find(|l| l.starts_with("Or enter this code: "))
                .expect("code line");
            return line.trim_start_matches("Or enter this code: ").to_owned();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("no mail to {to}");
}

#[tokio::test]
async fn devices_changed_reaches_own_devices_and_partners_but_not_strangers_nor_the_cause() {
    let (s, _, _, _) = server();
    let mut laptop = Client::register(&s, "alice", "+441111111111", "Laptop").await;
    let mut bob = Client::register(&s, "bob", "+442222222222", "Tablet").await;
    let mut carol = Client::register(&s, "carol", "+443333333333", "Phone").await;
    group(&mut bob, &[&laptop]).await;
    let alice = laptop.user();
    for c in [&mut laptop, &mut bob, &mut carol] {
        c.drain().await;
    }

    // A sign-in: Alice's own devices only.
    let mut phone = Client::login(&s, "alice", "Phone").await;
    assert_eq!(laptop.changed().await, vec![alice.clone()], "sign-in");
    assert!(bob.changed().await.is_empty(), "not before it has keys");
    assert!(carol.changed().await.is_empty());
    assert!(
        phone.changed().await.is_empty(),
        "not the signing-in device"
    );

    // Keys uploaded for the first time: own devices and partners.
    let pair = key_pair();
    assert!(code(&phone.upload_keys(&pair).await).is_none());
    assert_eq!(laptop.changed().await, vec![alice.clone()], "keys");
    assert_eq!(bob.changed().await, vec![alice.clone()], "keys, partner");
    assert!(carol.changed().await.is_empty(), "a stranger");
    assert!(phone.changed().await.is_empty(), "not the uploader");
    // The same keys again change nothing.
    assert!(code(&phone.upload_keys(&pair).await).is_none());
    assert!(laptop.changed().await.is_empty());
    assert!(bob.changed().await.is_empty());

    // A revocation: own devices and partners, not the revoking connection.
    let tablet = Client::login(&s, "alice", "Old tablet").await;
    assert_eq!(laptop.changed().await, vec![alice.clone()]);
    assert_eq!(phone.changed().await, vec![alice.clone()]);
    assert!(is_ok(&laptop.revoke(&tablet.device()).await));
    assert_eq!(tablet.closed().await, Disconnect::Revoked);
    assert!(
        laptop.changed().await.is_empty(),
        "not the revoking connection"
    );
    assert_eq!(phone.changed().await, vec![alice.clone()], "revoke, own");
    assert_eq!(bob.changed().await, vec![alice.clone()], "revoke, partner");
    assert!(carol.changed().await.is_empty(), "revoke, stranger");

    // A logout: own devices and partners.
    assert!(is_ok(&phone.req(|id| ClientFrame::Logout { id }).await));
    assert_eq!(phone.closed().await, Disconnect::LoggedOut);
    assert_eq!(laptop.changed().await, vec![alice.clone()], "logout, own");
    assert_eq!(bob.changed().await, vec![alice], "logout, partner");
    assert!(carol.changed().await.is_empty(), "logout, stranger");
}

/// An upload refused for one bad key stores nothing, not even the identity,
/// so that its corrected retry is the first upload, and announced.
#[tokio::test]
async fn a_refused_upload_stores_no_identity_and_its_retry_is_announced() {
    let (s, _, _, _) = server();
    let mut laptop = Client::register(&s, "alice", "+441111111111", "Laptop").await;
    let mut phone = Client::login(&s, "alice", "Phone").await;
    laptop.drain().await;
    let forged = SignedKey {
        id: "k1".into(),
        key: STANDARD_NO_PAD.encode([7u8; 32]),
        signature: STANDARD_NO_PAD.encode([0u8; 64]),
    };
    let pair = key_pair();
    let refused = phone.upload_keys_with(&pair, vec![forged]).await;
    assert_eq!(
        code(&refused).map(|c| c.0),
        Some(ErrorCode::InvalidArgument),
        "{refused:?}"
    );
    assert!(
        laptop.devices().await.iter().all(|d| !d.keys),
        "no identity stored"
    );
    assert!(laptop.changed().await.is_empty());
    assert!(code(&phone.upload_keys(&pair).await).is_none());
    assert_eq!(
        laptop.changed().await,
        vec![laptop.user()],
        "the retry is announced"
    );
    let keyed: Vec<bool> = laptop.devices().await.iter().map(|d| d.keys).collect();
    assert_eq!(keyed, vec![false, true]);
}
