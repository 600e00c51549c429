//! The end-to-end machine between several devices, in memory: real
//! vodozemac, a small stand-in for the server's key directory and to-device
//! queues, messages passed by hand.

use std::collections::BTreeMap;

use chatcore_client::chatcore::e2e::{device_signature_text, master_key_text, verify, OLM_V1};
use chatcore_client::chatcore::model::{ConversationId, DeviceId, MessageId, Millis, UserId};
use chatcore_client::chatcore::protocol::{
    ClaimedKey, DeviceKeysInfo, DeviceRef, IdentityKeys, KeyCountsInfo, MasterKeyInfo, SignedKey,
};
use chatcore_client::e2e::{
    safety_number, Decrypted, DeviceChange, DeviceTrust, E2eError, EncryptedContent, Machine,
    MasterKeyUpload, Outcome, Received, ToDeviceIn, ToDeviceOut, UserKeys, MAX_SESSION_AGE,
    MAX_SESSION_MESSAGES, ONE_TIME_KEY_TARGET,
};

const T0: Millis = 1_700_000_000_000;
const STORE_KEY: [u8; 32] = [42; 32];

type Key = (UserId, DeviceId);

fn key(user: &str, device: &str) -> Key {
    (UserId::from(user), DeviceId::from(device))
}

fn conv(id: &str) -> ConversationId {
    ConversationId::from(id)
}

/// What the server's key directory holds for a device.
struct Published {
    identity: IdentityKeys,
    one_time: Vec<SignedKey>,
    fallback: Option<SignedKey>,
    master_signature: Option<String>,
}

/// The devices, the directory, and the to-device queues.
struct World {
    machines: BTreeMap<Key, Machine>,
    directory: BTreeMap<Key, Published>,
    masters: BTreeMap<UserId, MasterKeyInfo>,
    inbox: BTreeMap<Key, Vec<ToDeviceIn>>,
    now: Millis,
}

impl World {
    fn new() -> Self {
        Self {
            machines: BTreeMap::new(),
            directory: BTreeMap::new(),
            masters: BTreeMap::new(),
            inbox: BTreeMap::new(),
            now: T0,
        }
    }

    /// A new device that uploaded its keys.
    fn add(&mut self, user: &str, device: &str) -> Key {
        let k = key(user, device);
        let mut m = Machine::new(k.0.clone(), k.1.clone());
        let upload = m.keys_to_upload(KeyCountsInfo::default());
        m.mark_keys_published();
        self.directory.insert(
            k.clone(),
            Published {
                identity: upload.device_keys.unwrap(),
                one_time: upload.one_time_keys,
                fallback: upload.fallback_key,
                master_signature: None,
            },
        );
        self.machines.insert(k.clone(), m);
        k
    }

    fn m(&mut self, k: &Key) -> &mut Machine {
        self.machines.get_mut(k).unwrap()
    }

    fn info(&self, k: &Key) -> DeviceKeysInfo {
        DeviceKeysInfo {
            user: k.0.clone(),
            device: k.1.clone(),
            keys: self.directory[k].identity.clone(),
            master_signature: None,
        }
    }

    fn query(&self, user: &UserId) -> UserKeys {
        UserKeys {
            user: user.clone(),
            master_key: self.masters.get(user).cloned(),
            devices: self
                .directory
                .iter()
                .filter(|(k, _)| k.0 == *user)
                .map(|(k, p)| DeviceKeysInfo {
                    master_signature: p.master_signature.clone(),
                    ..self.info(k)
                })
                .collect(),
        }
    }

    /// `who` queries the keys of `users`.
    fn sync(&mut self, who: &Key, users: &[&str]) -> Vec<DeviceChange> {
        let mut changes = Vec::new();
        for u in users {
            let answer = self.query(&UserId::from(*u));
            changes.extend(self.m(who).receive_device_keys(answer));
        }
        changes
    }

    /// Everyone queries everyone.
    fn sync_all(&mut self) {
        let users: Vec<String> = self.directory.keys().map(|k| k.0 .0.clone()).collect();
        let users: Vec<&str> = users.iter().map(String::as_str).collect();
        let keys: Vec<Key> = self.machines.keys().cloned().collect();
        for k in keys {
            self.sync(&k, &users);
        }
    }

    fn claim(&mut self, devices: &[DeviceRef]) -> Vec<ClaimedKey> {
        devices
            .iter()
            .filter_map(|d| {
                let p = self
                    .directory
                    .get_mut(&(d.user.clone(), d.device.clone()))?;
                let (key, fallback) = match p.one_time.pop() {
                    Some(k) => (k, false),
                    None => (p.fallback.clone()?, true),
                };
                Some(ClaimedKey {
                    user: d.user.clone(),
                    device: d.device.clone(),
                    key,
                    fallback,
                })
            })
            .collect()
    }

    /// Runs a step that may ask for claims until it is ready.
    fn ready<T>(
        &mut self,
        who: &Key,
        mut step: impl FnMut(&mut Machine, Millis) -> Result<Outcome<T>, E2eError>,
    ) -> T {
        for _ in 0..3 {
            let now = self.now;
            match step(self.m(who), now).unwrap() {
                Outcome::Ready(t) => return t,
                Outcome::NeedsClaims(devices) => {
                    let claimed = self.claim(&devices);
                    let failed = self.m(who).receive_claimed_keys(&devices, &claimed, now);
                    assert!(failed.is_empty(), "{failed:?}");
                }
            }
        }
        panic!("claims did not converge");
    }

    fn post(&mut self, from: &Key, messages: Vec<ToDeviceOut>) {
        for out in messages {
            assert_eq!(out.kind, OLM_V1);
            assert!(
                (&out.user, &out.device) != (&from.0, &from.1),
                "a device never messages itself"
            );
            let delivered = out.delivered(&from.0, &from.1, self.now);
            self.inbox
                .entry((out.user, out.device))
                .or_default()
                .push(delivered);
        }
    }

    /// Delivers `who`'s queued to-device messages.
    fn deliver(&mut self, who: &Key) -> Vec<Result<Received, E2eError>> {
        let now = self.now;
        let inbox = self.inbox.remove(who).unwrap_or_default();
        let m = self.m(who);
        inbox
            .iter()
            .map(|msg| m.receive_to_device(msg, now))
            .collect()
    }

    fn deliver_all(&mut self) {
        let keys: Vec<Key> = self.inbox.keys().cloned().collect();
        for k in keys {
            for r in self.deliver(&k) {
                r.unwrap();
            }
        }
    }

    /// The member devices of a conversation of `users`, as `from` tracks them.
    fn members(&mut self, from: &Key, users: &[&str]) -> Vec<DeviceRef> {
        let users: Vec<UserId> = users.iter().map(|u| UserId::from(*u)).collect();
        self.m(from).devices_of(&users)
    }

    /// `from` sends `text` to `c` whose members are `users`; room keys are
    /// delivered to everyone.
    fn send(
        &mut self,
        from: &Key,
        c: &ConversationId,
        users: &[&str],
        text: &str,
    ) -> EncryptedContent {
        let members = self.members(from, users);
        self.send_to(from, c, &members, text)
    }

    /// The same with the member devices given by hand.
    fn send_to(
        &mut self,
        from: &Key,
        c: &ConversationId,
        members: &[DeviceRef],
        text: &str,
    ) -> EncryptedContent {
        let sent = self.ready(from, |m, now| m.encrypt(c, members, text.as_bytes(), now));
        // The server took the room keys (as the SecureClient confirms once
        // `send_to_device` is answered).
        let targets = targets_of(&sent.to_device);
        self.m(from)
            .confirm_shared(c, &sent.content.session, &targets);
        self.post(from, sent.to_device);
        self.deliver_all();
        sent.content
    }

    fn read(
        &mut self,
        who: &Key,
        c: &ConversationId,
        sender: &Key,
        content: &EncryptedContent,
    ) -> Result<Decrypted, E2eError> {
        self.m(who).decrypt(c, &id_of(content), &sender.0, content)
    }

    fn read_text(
        &mut self,
        who: &Key,
        c: &ConversationId,
        sender: &Key,
        content: &EncryptedContent,
    ) -> String {
        match self.read(who, c, sender, content) {
            Ok(Decrypted::Plain {
                content, sender: s, ..
            }) => {
                assert_eq!((s.user, s.device), sender.clone());
                String::from_utf8(content).unwrap()
            }
            other => panic!("{who:?} could not read: {other:?}"),
        }
    }

    /// The user's first device creates the master key; the directory stores it.
    fn create_master(&mut self, k: &Key) -> MasterKeyUpload {
        let upload = self.m(k).create_master_key().unwrap();
        self.masters.insert(k.0.clone(), upload.master_key.clone());
        self.directory.get_mut(k).unwrap().master_signature = Some(upload.device_signature.clone());
        upload
    }

    /// `signer` signs `device` (same user); the directory stores it.
    fn sign(&mut self, signer: &Key, device: &Key) -> String {
        let info = self.info(device);
        let signature = self.m(signer).sign_device(&info).unwrap();
        self.directory.get_mut(device).unwrap().master_signature = Some(signature.clone());
        signature
    }

    fn revoke(&mut self, k: &Key) {
        self.directory.remove(k);
        self.machines.remove(k);
        self.inbox.remove(k);
    }
}

/// The server's id of a message: here one per ciphertext (a Megolm
/// message ends with its unique signature).
fn id_of(content: &EncryptedContent) -> MessageId {
    let tail = &content.ciphertext[content.ciphertext.len().saturating_sub(8)..];
    MessageId(tail.iter().map(|b| format!("{b:02x}")).collect())
}

fn targets_of(out: &[ToDeviceOut]) -> Vec<DeviceRef> {
    out.iter()
        .map(|o| DeviceRef {
            user: o.user.clone(),
            device: o.device.clone(),
        })
        .collect()
}

fn is_waiting(r: Result<Decrypted, E2eError>) -> bool {
    matches!(r, Ok(Decrypted::Waiting { .. }))
}

#[test]
fn two_users_with_two_devices_each_read_everything() {
    let mut w = World::new();
    let (a1, a2) = (w.add("alice", "a1"), w.add("alice", "a2"));
    let (b1, b2) = (w.add("bob", "b1"), w.add("bob", "b2"));
    w.sync_all();
    let dm = conv("dm:alice:bob");
    let everyone = [a1.clone(), a2.clone(), b1.clone(), b2.clone()];
    for round in 0..3 {
        for sender in &everyone {
            let text = format!("round {round} from {sender:?}");
            let content = w.send(sender, &dm, &["alice", "bob"], &text);
            assert_eq!(content.device, sender.1);
            for reader in &everyone {
                // Every device, the sender's own included.
                assert_eq!(w.read_text(reader, &dm, sender, &content), text);
            }
        }
    }
    // An app that lists the sender's own device among the members: it
    // gets no room key from itself.
    let mut members = w.members(&a1, &["alice", "bob"]);
    members.push(DeviceRef {
        user: a1.0.clone(),
        device: a1.1.clone(),
    });
    let content = w.send_to(&a1, &dm, &members, "self listed");
    assert_eq!(w.read_text(&a1, &dm, &a1, &content), "self listed");
    assert_eq!(w.read_text(&b2, &dm, &a1, &content), "self listed");
    // Olm both ways over established sessions (normal messages after the
    // pre-key ones), for an application payload.
    for (from, to) in [(&a1, &b2), (&b2, &a1), (&a1, &b2)] {
        let target = DeviceRef {
            user: to.0.clone(),
            device: to.1.clone(),
        };
        let out = w.ready(from, |m, now| {
            m.encrypt_to_device(&target, "call.offer", b"sdp", now)
        });
        w.post(from, vec![out]);
        let got = w.deliver(to).pop().unwrap().unwrap();
        assert_eq!(
            got,
            Received::Custom {
                from: DeviceRef {
                    user: from.0.clone(),
                    device: from.1.clone()
                },
                kind: "call.offer".into(),
                data: b"sdp".to_vec(),
            }
        );
    }
}

#[test]
fn a_removed_member_cannot_read_what_follows() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    let c = w.add("carol", "c1");
    let c2 = w.add("carol", "c2");
    w.sync_all();
    let group = conv("g:tea");
    let all = ["alice", "bob", "carol"];
    for sender in [&a, &b, &c] {
        let content = w.send(sender, &group, &all, "hello all");
        for reader in [&a, &b, &c, &c2] {
            assert_eq!(w.read_text(reader, &group, sender, &content), "hello all");
        }
    }
    let before = w.send(&a, &group, &all, "before").session;

    // Carol leaves: the app tells each remaining sender the new members.
    let remaining = w.members(&a, &["alice", "bob"]);
    assert!(w.m(&a).update_members(&group, &remaining));
    assert!(!w.m(&a).update_members(&group, &remaining), "rotates once");
    let after = w.send(&a, &group, &["alice", "bob"], "after carol left");
    assert_ne!(after.session, before);
    assert!(w.inbox.is_empty());
    assert_eq!(w.read_text(&b, &group, &a, &after), "after carol left");
    // Carol's machines, which hold every earlier key, cannot read it.
    assert!(is_waiting(w.read(&c, &group, &a, &after)));
    assert!(is_waiting(w.read(&c2, &group, &a, &after)));

    // Bob never calls update_members: encrypting with the new member list
    // notices by itself that carol's devices had the session.
    let bob_after = w.send(&b, &group, &["alice", "bob"], "bob after");
    assert_eq!(w.read_text(&a, &group, &b, &bob_after), "bob after");
    assert!(is_waiting(w.read(&c, &group, &b, &bob_after)));
}

#[test]
fn a_revoked_device_gets_no_new_session() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let (b1, b2) = (w.add("bob", "b1"), w.add("bob", "b2"));
    w.sync_all();
    let dm = conv("dm:alice:bob");
    let first = w.send(&a, &dm, &["alice", "bob"], "one");
    assert_eq!(w.read_text(&b2, &dm, &a, &first), "one");
    // The app's member list, which it may not refresh at once.
    let stale = w.members(&a, &["alice", "bob"]);

    // Bob revokes b2 (keeping its machine aside to try with its keys).
    let stolen = w.machines.remove(&b2).unwrap();
    w.revoke(&b2);
    w.machines.insert(b2.clone(), stolen);
    let changes = w.sync(&a, &["bob"]);
    assert_eq!(
        changes,
        vec![DeviceChange::Removed(DeviceRef {
            user: b2.0.clone(),
            device: b2.1.clone()
        })]
    );
    assert_eq!(w.m(&a).device_trust(&b2.0, &b2.1), DeviceTrust::Unknown);

    let second = w.send_to(&a, &dm, &stale, "two");
    assert_ne!(
        second.session, first.session,
        "the session shared with b2 is not used again"
    );
    assert!(!w.inbox.contains_key(&b2));
    assert_eq!(w.read_text(&b1, &dm, &a, &second), "two");
    assert!(is_waiting(w.read(&b2, &dm, &a, &second)));
}

#[test]
fn a_new_signed_device_reads_history_and_an_unsigned_one_gets_nothing() {
    let mut w = World::new();
    let a1 = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    w.create_master(&a1);
    w.sync_all();
    let dm = conv("dm:alice:bob");
    let from_alice = w.send(&a1, &dm, &["alice", "bob"], "from alice");
    let from_bob = w.send(&b, &dm, &["alice", "bob"], "from bob");

    // Two new devices; the user confirms only a3 on a1.
    let a3 = w.add("alice", "a3");
    let a4 = w.add("alice", "a4");
    w.sign(&a1, &a3);
    let changes = w.sync(&a1, &["alice"]);
    assert!(changes.contains(&DeviceChange::Added(DeviceRef {
        user: a4.0.clone(),
        device: a4.1.clone()
    })));
    w.sync(&a3, &["alice", "bob"]);
    w.sync(&a4, &["alice", "bob"]);
    assert_eq!(w.m(&a1).device_trust(&a3.0, &a3.1), DeviceTrust::Verified);
    assert_eq!(w.m(&a1).device_trust(&a4.0, &a4.1), DeviceTrust::Unverified);
    assert_eq!(w.m(&a3).device_trust(&a1.0, &a1.1), DeviceTrust::Verified);

    // The history: before, the new device cannot read it.
    assert!(is_waiting(w.read(&a3, &dm, &a1, &from_alice)));
    let forwarded = w.ready(&a1, |m, now| m.forward_keys(&a3.1, None, now));
    assert!(!forwarded.is_empty());
    w.post(&a1, forwarded);
    let received = w.deliver(&a3);
    assert!(
        received.iter().all(|r| matches!(
            r,
            Ok(Received::RoomKey {
                forwarded: true,
                ..
            })
        )),
        "{received:?}"
    );
    assert!(received
        .iter()
        .any(|r| matches!(r, Ok(Received::RoomKey { waiting: true, .. }))));
    assert_eq!(w.read_text(&a3, &dm, &a1, &from_alice), "from alice");
    assert_eq!(w.read_text(&a3, &dm, &b, &from_bob), "from bob");

    // The unsigned device: a1 refuses to forward, and a3 refuses what a4
    // forwards.
    assert!(matches!(
        w.m(&a1).forward_keys(&a4.1, None, T0),
        Err(E2eError::Refused(_))
    ));
    assert!(
        matches!(
            w.m(&b).forward_keys(&a3.1, None, T0),
            Err(E2eError::Refused(_))
        ),
        "not to other users' devices"
    );
    assert!(is_waiting(w.read(&a4, &dm, &b, &from_bob)));
    // a4 holds a session a3 lacks (its own, in a conversation with Bob).
    let side = conv("g:side");
    let a4_side = w.send(&a4, &side, &["bob"], "a4 to bob");
    let from_a4 = w.ready(&a4, |m, now| m.forward_keys(&a3.1, None, now));
    assert!(!from_a4.is_empty());
    w.post(&a4, from_a4);
    let refused = w.deliver(&a3);
    assert!(!refused.is_empty());
    assert!(
        refused
            .iter()
            .all(|r| matches!(r, Err(E2eError::Refused(_)))),
        "{refused:?}"
    );
    assert!(is_waiting(w.read(&a3, &side, &a4, &a4_side)));

    // The master private key goes to a3, which then signs a4.
    assert!(!w.m(&a3).has_master_key());
    let secret = w.ready(&a1, |m, now| m.share_master_key(&a3.1, now));
    w.post(&a1, vec![secret]);
    assert!(matches!(
        w.deliver(&a3).pop().unwrap(),
        Ok(Received::MasterKey { .. })
    ));
    assert!(w.m(&a3).has_master_key());
    let signature = w.sign(&a3, &a4);
    let master = w.masters[&a1.0].key.clone();
    let a4_keys = w.directory[&a4].identity.clone();
    verify(
        &master,
        &device_signature_text(&a4.0, &a4.1, &a4_keys.signing_key, &a4_keys.agreement_key),
        &signature,
    )
    .unwrap();
    let changes = w.sync(&a1, &["alice"]);
    assert_eq!(
        changes,
        vec![DeviceChange::Signed(DeviceRef {
            user: a4.0.clone(),
            device: a4.1.clone()
        })]
    );
    // The master key never goes to an unsigned device.
    let a5 = w.add("alice", "a5");
    w.sync(&a1, &["alice"]);
    assert!(matches!(
        w.m(&a1).share_master_key(&a5.1, T0),
        Err(E2eError::Refused(_))
    ));
}

#[test]
fn safety_numbers_are_the_same_on_both_sides_and_survive_new_devices() {
    let mut w = World::new();
    let a1 = w.add("alice", "a1");
    let b1 = w.add("bob", "b1");
    w.create_master(&a1);
    w.create_master(&b1);
    w.sync_all();
    let alice_side = w.m(&a1).safety_number(&b1.0).unwrap();
    let bob_side = w.m(&b1).safety_number(&a1.0).unwrap();
    assert_eq!(alice_side, bob_side);
    let groups: Vec<&str> = alice_side.split(' ').collect();
    assert_eq!(groups.len(), 12);
    assert!(groups
        .iter()
        .all(|g| g.len() == 5 && g.bytes().all(|b| b.is_ascii_digit())));

    let a2 = w.add("alice", "a2");
    w.sign(&a1, &a2);
    w.sync_all();
    assert_eq!(w.m(&b1).safety_number(&a1.0).unwrap(), bob_side);
    assert_eq!(w.m(&a2).safety_number(&b1.0).unwrap(), bob_side);

    // Another master key gives another number, and names matter.
    let (ka, kb) = (w.masters[&a1.0].key.clone(), w.masters[&b1.0].key.clone());
    assert_eq!(safety_number(&a1.0, &ka, &b1.0, &kb).unwrap(), bob_side);
    assert_ne!(safety_number(&a1.0, &kb, &b1.0, &ka).unwrap(), bob_side);
    assert_ne!(
        safety_number(&UserId::from("mallory"), &ka, &b1.0, &kb).unwrap(),
        bob_side
    );
    assert!(safety_number(&a1.0, "short", &b1.0, &kb).is_err());
}

#[test]
fn the_state_survives_a_round_trip_and_refuses_a_wrong_key_or_tampering() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    w.create_master(&a);
    w.sync_all();
    let dm = conv("dm:alice:bob");
    let old = w.send(&a, &dm, &["alice", "bob"], "before restart");

    for k in [&a, &b] {
        let bytes = w.m(k).to_bytes(&STORE_KEY).unwrap();
        let restored = Machine::from_bytes(&bytes, &STORE_KEY).unwrap();
        w.machines.insert(k.clone(), restored);
    }
    assert!(w.m(&a).has_master_key());
    // Old messages still read; the outbound session goes on (no new key).
    assert_eq!(w.read_text(&b, &dm, &a, &old), "before restart");
    let next = w.send(&a, &dm, &["alice", "bob"], "after restart");
    assert_eq!(next.session, old.session);
    assert_eq!(w.read_text(&b, &dm, &a, &next), "after restart");
    // Olm sessions too, both ways.
    for (from, to) in [(&b, &a), (&a, &b)] {
        let target = DeviceRef {
            user: to.0.clone(),
            device: to.1.clone(),
        };
        let out = w
            .m(from)
            .encrypt_to_device(&target, "ping", b"1", T0)
            .unwrap();
        let Outcome::Ready(out) = out else {
            panic!("the Olm session was lost")
        };
        w.post(from, vec![out]);
        assert!(matches!(
            w.deliver(to).pop().unwrap(),
            Ok(Received::Custom { .. })
        ));
    }

    let bytes = w.m(&a).to_bytes(&STORE_KEY).unwrap();
    assert!(matches!(
        Machine::from_bytes(&bytes, &[7; 32]),
        Err(E2eError::StoreDecrypt)
    ));
    for i in [0, 4, 10, bytes.len() / 2, bytes.len() - 1] {
        let mut tampered = bytes.clone();
        tampered[i] ^= 1;
        assert!(
            Machine::from_bytes(&tampered, &STORE_KEY).is_err(),
            "byte {i}"
        );
    }
    let mut tampered = bytes.clone();
    tampered[bytes.len() / 2] ^= 0x80;
    assert!(matches!(
        Machine::from_bytes(&tampered, &STORE_KEY),
        Err(E2eError::StoreDecrypt)
    ));
    for len in [0, 3, 16, bytes.len() - 1] {
        assert!(Machine::from_bytes(&bytes[..len], &STORE_KEY).is_err());
    }
    let mut newer = bytes.clone();
    newer[4] = 9;
    assert!(matches!(
        Machine::from_bytes(&newer, &STORE_KEY),
        Err(E2eError::StoreTooNew { .. })
    ));
    // Two writes of the same state differ (fresh nonce).
    assert_ne!(w.m(&a).to_bytes(&STORE_KEY).unwrap(), bytes);
}

/// A room key whose `send_to_device` was lost with the link (the server
/// never answered) goes again with the next message, also after a restart
/// from the state saved meanwhile; once confirmed it goes no more.
#[test]
fn a_room_key_whose_send_was_not_confirmed_goes_again() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    w.sync_all();
    let dm = conv("dm:alice:bob");
    let members = w.members(&a, &["bob"]);
    let lost = w.ready(&a, |m, now| m.encrypt(&dm, &members, b"lost", now));
    assert_eq!(targets_of(&lost.to_device).len(), 1, "a key for bob");
    // The device restarts from the state saved before the send.
    let bytes = w.m(&a).to_bytes(&STORE_KEY).unwrap();
    w.machines
        .insert(a.clone(), Machine::from_bytes(&bytes, &STORE_KEY).unwrap());
    let again = w.ready(&a, |m, now| m.encrypt(&dm, &members, b"sent again", now));
    assert_eq!(
        again.content.session, lost.content.session,
        "the same session"
    );
    let targets = targets_of(&again.to_device);
    assert_eq!(targets.len(), 1, "the unconfirmed key goes again");
    w.post(&a, again.to_device);
    w.deliver_all();
    assert_eq!(w.read_text(&b, &dm, &a, &again.content), "sent again");
    // Confirmed, and saved so: no key again. A confirmation of another
    // session changes nothing.
    w.m(&a).confirm_shared(&dm, "another-session", &targets);
    w.m(&a)
        .confirm_shared(&dm, &again.content.session, &targets);
    let bytes = w.m(&a).to_bytes(&STORE_KEY).unwrap();
    w.machines
        .insert(a.clone(), Machine::from_bytes(&bytes, &STORE_KEY).unwrap());
    let next = w.ready(&a, |m, now| m.encrypt(&dm, &members, b"next", now));
    assert!(next.to_device.is_empty(), "no key once confirmed");
    assert_eq!(w.read_text(&b, &dm, &a, &next.content), "next");
}

#[test]
fn a_redelivered_to_device_message_is_processed_once() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    w.sync_all();
    let target = DeviceRef {
        user: b.0.clone(),
        device: b.1.clone(),
    };
    let out = w.ready(&a, |m, now| m.encrypt_to_device(&target, "x", b"once", now));
    let msg = out.delivered(&a.0, &a.1, T0);
    assert!(matches!(
        w.m(&b).receive_to_device(&msg, T0),
        Ok(Received::Custom { .. })
    ));
    assert_eq!(
        w.m(&b).receive_to_device(&msg, T0).unwrap(),
        Received::Duplicate
    );
    // Still known after a restart.
    let bytes = w.m(&b).to_bytes(&STORE_KEY).unwrap();
    let mut restored = Machine::from_bytes(&bytes, &STORE_KEY).unwrap();
    assert_eq!(
        restored.receive_to_device(&msg, T0).unwrap(),
        Received::Duplicate
    );

    // The same for a room key: a second delivery does not re-add it.
    let dm = conv("dm");
    let content = w.send(&a, &dm, &["alice", "bob"], "hi");
    assert_eq!(w.read_text(&b, &dm, &a, &content), "hi");
}

#[test]
fn a_message_from_an_unknown_device_waits_for_its_keys() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    // Alice knows Bob; Bob does not know Alice yet.
    w.sync(&a, &["bob"]);
    let dm = conv("dm");
    let content = w.send(&a, &dm, &["bob"], "early");
    assert!(is_waiting(w.read(&b, &dm, &a, &content)));
    // The kept message and the awaited session survive a restart.
    let bytes = w.m(&b).to_bytes(&STORE_KEY).unwrap();
    w.machines
        .insert(b.clone(), Machine::from_bytes(&bytes, &STORE_KEY).unwrap());
    // Nothing to retry while the keys are still unknown.
    assert!(w.m(&b).retry_deferred(T0).is_empty());
    w.sync(&b, &["alice"]);
    let retried = w.m(&b).retry_deferred(T0);
    assert!(
        matches!(
            retried.as_slice(),
            [Ok(Received::RoomKey { waiting: true, .. })]
        ),
        "{retried:?}"
    );
    assert_eq!(w.read_text(&b, &dm, &a, &content), "early");
    assert!(w.m(&b).retry_deferred(T0).is_empty(), "processed once");
}

#[test]
fn forged_signatures_are_refused() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    let m2 = w.add("mallory", "m1");
    w.create_master(&b);
    w.create_master(&m2);

    // Device keys signed by another key: the device is not tracked.
    let mut answer = w.query(&b.0);
    answer.devices[0].keys.signature = w.directory[&m2].identity.signature.clone();
    let changes = w.m(&a).receive_device_keys(answer);
    assert!(changes.iter().any(|c| matches!(
        c,
        DeviceChange::Rejected {
            device: Some(_),
            ..
        }
    )));
    assert_eq!(w.m(&a).device_trust(&b.0, &b.1), DeviceTrust::Unknown);

    // A master key whose self-signature is another's: not pinned (by a
    // device that never saw Bob's; one that did keeps the pinned key).
    let c = w.add("carol", "c1");
    let mut answer = w.query(&b.0);
    let mut master = answer.master_key.clone().unwrap();
    master.signature = w.masters[&m2.0].signature.clone();
    answer.master_key = Some(master);
    let changes = w.m(&c).receive_device_keys(answer.clone());
    assert!(changes
        .iter()
        .any(|c| matches!(c, DeviceChange::Rejected { device: None, .. })));
    assert_eq!(w.m(&c).master_key(&b.0), None);
    // So the device signature cannot verify either.
    assert_eq!(w.m(&c).device_trust(&b.0, &b.1), DeviceTrust::Unverified);
    let pinned = w.m(&a).master_key(&b.0);
    assert!(pinned.is_some());
    w.m(&a).receive_device_keys(answer);
    assert_eq!(w.m(&a).master_key(&b.0), pinned);

    // Mallory's master key signs Bob's device: not Bob's master key.
    let b_keys = w.directory[&b].identity.clone();
    let info = DeviceKeysInfo {
        user: b.0.clone(),
        device: b.1.clone(),
        keys: b_keys.clone(),
        master_signature: None,
    };
    // Mallory's machine signs only her own devices...
    assert!(matches!(
        w.m(&m2).sign_device(&info),
        Err(E2eError::Refused(_))
    ));
    // ...and her master key's signature of her device is no signature of Bob's.
    let forged_signature = w.directory[&m2].master_signature.clone().unwrap();
    let mut answer = w.query(&b.0);
    answer.devices[0].master_signature = Some(forged_signature);
    let changes = w.m(&a).receive_device_keys(answer);
    assert!(
        changes.iter().any(|c| matches!(
            c,
            DeviceChange::Rejected {
                device: Some(_),
                ..
            }
        )),
        "{changes:?}"
    );
    assert_eq!(w.m(&a).device_trust(&b.0, &b.1), DeviceTrust::Unverified);
    assert!(w.m(&a).master_key(&b.0).is_some());
    // The genuine answer verifies.
    w.sync(&a, &["bob"]);
    assert_eq!(w.m(&a).device_trust(&b.0, &b.1), DeviceTrust::Verified);
    let t = master_key_text(&b.0, &w.masters[&b.0].key);
    verify(&w.masters[&b.0].key, &t, &w.masters[&b.0].signature).unwrap();
    // A server that leaves out the master key and the signature does not
    // unverify the device.
    let mut stripped = w.query(&b.0);
    stripped.master_key = None;
    stripped.devices[0].master_signature = None;
    assert_eq!(w.m(&a).receive_device_keys(stripped), vec![]);
    assert_eq!(w.m(&a).device_trust(&b.0, &b.1), DeviceTrust::Verified);
    assert_eq!(
        w.m(&a).master_key(&b.0).as_ref(),
        Some(&w.masters[&b.0].key)
    );

    // A one-time key not signed by its device: no Olm session.
    let target = DeviceRef {
        user: b.0.clone(),
        device: b.1.clone(),
    };
    let mut claimed = w.claim(std::slice::from_ref(&target));
    claimed[0].key.signature = w.directory[&m2].one_time[0].signature.clone();
    let failed = w
        .m(&a)
        .receive_claimed_keys(std::slice::from_ref(&target), &claimed, T0);
    assert!(
        matches!(failed.as_slice(), [(_, E2eError::BadSignature(_))]),
        "{failed:?}"
    );
    let mut swapped = w.claim(std::slice::from_ref(&target));
    swapped[0].key.key = w.directory[&m2].one_time[0].key.clone();
    let failed = w
        .m(&a)
        .receive_claimed_keys(std::slice::from_ref(&target), &swapped, T0);
    assert!(matches!(
        failed.as_slice(),
        [(_, E2eError::BadSignature(_))]
    ));
    assert!(matches!(
        w.m(&a).encrypt_to_device(&target, "x", b"", T0),
        Err(E2eError::NoSession { .. })
    ));
    // The device is not asked for again at once, later it is.
    assert!(w
        .m(&a)
        .needs_claims(std::slice::from_ref(&target), T0)
        .is_empty());
    assert_eq!(
        w.m(&a)
            .needs_claims(std::slice::from_ref(&target), T0 + 3_600_000),
        vec![target]
    );
}

#[test]
fn sessions_rotate_after_100_messages_and_after_a_week() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    w.sync_all();
    let dm = conv("dm");
    let first = w.send(&a, &dm, &["alice", "bob"], "0");
    for i in 1..MAX_SESSION_MESSAGES {
        let c = w.send(&a, &dm, &["alice", "bob"], &i.to_string());
        assert_eq!(c.session, first.session, "message {i}");
    }
    let rotated = w.send(&a, &dm, &["alice", "bob"], "101st");
    assert_ne!(rotated.session, first.session);
    assert_eq!(w.read_text(&b, &dm, &a, &rotated), "101st");

    w.now += MAX_SESSION_AGE - 1;
    assert_eq!(
        w.send(&a, &dm, &["alice", "bob"], "6 days").session,
        rotated.session
    );
    w.now += 1;
    let week = w.send(&a, &dm, &["alice", "bob"], "a week later");
    assert_ne!(week.session, rotated.session);
    assert_eq!(w.read_text(&b, &dm, &a, &week), "a week later");
}

#[test]
fn a_message_replayed_elsewhere_or_under_another_id_is_refused() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    w.sync_all();
    let (one, two) = (conv("g:one"), conv("g:two"));
    let content = w.send(&a, &one, &["alice", "bob"], "for group one");
    assert!(matches!(
        w.read(&b, &two, &a, &content),
        Err(E2eError::WrongConversation)
    ));
    assert_eq!(w.read_text(&b, &one, &a, &content), "for group one");
    // Read again (history reload): fine. Replayed in the same conversation
    // as another message: refused.
    assert_eq!(w.read_text(&b, &one, &a, &content), "for group one");
    let replay = w
        .m(&b)
        .decrypt(&one, &MessageId::from("m-replayed"), &a.0, &content);
    assert!(
        matches!(replay, Err(E2eError::Replayed { index: 0, ref first }) if *first == id_of(&content)),
        "{replay:?}"
    );
    // Still refused after a restart.
    let bytes = w.m(&b).to_bytes(&STORE_KEY).unwrap();
    let mut restored = Machine::from_bytes(&bytes, &STORE_KEY).unwrap();
    assert!(matches!(
        restored.decrypt(&one, &MessageId::from("m-replayed"), &a.0, &content),
        Err(E2eError::Replayed { .. })
    ));
    // Claiming another sender device than the one that shared the session.
    let a2 = w.add("alice", "a2");
    w.sync_all();
    let mut moved = content.clone();
    moved.device = a2.1.clone();
    assert!(matches!(
        w.read(&b, &one, &a, &moved),
        Err(E2eError::Misbound(_))
    ));
}

#[test]
fn new_members_read_from_the_time_they_joined() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    let c = w.add("carol", "c1");
    w.sync_all();
    let group = conv("g:club");
    let early = w.send(&a, &group, &["alice", "bob"], "before carol");
    let late = w.send(&a, &group, &["alice", "bob", "carol"], "welcome carol");
    assert_eq!(w.read_text(&c, &group, &a, &late), "welcome carol");
    assert!(matches!(
        w.read(&c, &group, &a, &early),
        Err(E2eError::BeforeKey {
            index: 0,
            first_known: 1
        })
    ));
    assert_eq!(w.read_text(&b, &group, &a, &early), "before carol");
}

#[test]
fn olm_messages_bind_sender_and_recipient() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let (b1, b2) = (w.add("bob", "b1"), w.add("bob", "b2"));
    let a2 = w.add("alice", "a2");
    w.sync_all();
    let target = DeviceRef {
        user: b1.0.clone(),
        device: b1.1.clone(),
    };
    let out = w.ready(&a, |m, now| {
        m.encrypt_to_device(&target, "x", b"for b1", now)
    });
    // Re-addressed to b2: not for it.
    let msg = out.delivered(&a.0, &a.1, T0);
    assert!(w.m(&b2).receive_to_device(&msg, T0).is_err());
    // Presented as sent by another device of alice: refused.
    let relabelled = out.delivered(&a2.0, &a2.1, T0);
    assert!(matches!(
        w.m(&b1).receive_to_device(&relabelled, T0),
        Err(E2eError::Misbound(_))
    ));
    // The genuine delivery still works (ids are per sending device).
    assert!(matches!(
        w.m(&b1).receive_to_device(&msg, T0),
        Ok(Received::Custom { .. })
    ));
}

#[test]
fn keys_are_topped_up_and_signed() {
    let mut m = Machine::new(UserId::from("alice"), DeviceId::from("a1"));
    let first = m.keys_to_upload(KeyCountsInfo::default());
    let identity = first.device_keys.clone().unwrap();
    assert_eq!(identity, m.identity_keys());
    let text = chatcore_client::chatcore::e2e::device_keys_text(
        m.user(),
        m.device(),
        OLM_V1,
        &identity.signing_key,
        &identity.agreement_key,
    );
    verify(&identity.signing_key, &text, &identity.signature).unwrap();
    assert_eq!(first.one_time_keys.len(), ONE_TIME_KEY_TARGET as usize);
    for k in first.one_time_keys.iter().chain(first.fallback_key.iter()) {
        let text =
            chatcore_client::chatcore::e2e::one_time_key_text(m.user(), m.device(), &k.id, &k.key);
        verify(&identity.signing_key, &text, &k.signature).unwrap();
    }
    // Not published yet: the same keys again.
    assert_eq!(m.keys_to_upload(KeyCountsInfo::default()), first);
    m.mark_keys_published();
    let full = KeyCountsInfo {
        one_time: ONE_TIME_KEY_TARGET,
        fallback_unused: true,
    };
    assert!(m.keys_to_upload(full).is_empty());
    let low = m.keys_to_upload(KeyCountsInfo {
        one_time: ONE_TIME_KEY_TARGET - 5,
        fallback_unused: true,
    });
    assert_eq!(low.one_time_keys.len(), 5);
    assert!(low.device_keys.is_none() && low.fallback_key.is_none());
    m.mark_keys_published();
    let used = m.keys_to_upload(KeyCountsInfo {
        one_time: ONE_TIME_KEY_TARGET,
        fallback_unused: false,
    });
    let fallback = used.fallback_key.unwrap();
    assert_ne!(Some(&fallback), first.fallback_key.as_ref());
}

#[test]
fn a_changed_master_key_or_device_set_is_reported() {
    let mut w = World::new();
    let a = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    w.create_master(&b);
    w.sync_all();
    let old = w.masters[&b.0].key.clone();
    // Bob reinstalls: a new device creates a new master key.
    w.revoke(&b);
    let b9 = w.add("bob", "b9");
    w.masters.remove(&b.0);
    w.create_master(&b9);
    let changes = w.sync(&a, &["bob"]);
    let new = w.masters[&b.0].key.clone();
    assert!(changes.contains(&DeviceChange::MasterKeyChanged {
        user: b.0.clone(),
        old: Some(old),
        new: Some(new)
    }));
    assert!(changes.contains(&DeviceChange::Added(DeviceRef {
        user: b9.0.clone(),
        device: b9.1.clone()
    })));
    assert!(changes.contains(&DeviceChange::Removed(DeviceRef {
        user: b.0.clone(),
        device: b.1.clone()
    })));
    // A device's identity keys never change under the same id, even when
    // the new ones are validly self-signed: the old ones are kept.
    let impostor = Machine::new(b9.0.clone(), b9.1.clone());
    let mut answer = w.query(&b.0);
    assert_eq!(answer.devices.len(), 1);
    answer.devices[0].keys = impostor.identity_keys();
    answer.devices[0].master_signature = None;
    let changes = w.m(&a).receive_device_keys(answer);
    assert_eq!(
        changes,
        vec![DeviceChange::Rejected {
            user: b9.0.clone(),
            device: Some(b9.1.clone()),
            reason: "the device's identity keys changed: kept the old ones".into(),
        }]
    );
    assert_eq!(w.m(&a).device_trust(&b9.0, &b9.1), DeviceTrust::Verified);
    w.sync(&b9, &["alice"]);
    let dm = conv("dm");
    let content = w.send(&a, &dm, &["bob"], "to the real b9");
    assert_eq!(w.read_text(&b9, &dm, &a, &content), "to the real b9");
}

#[test]
fn a_key_from_a_later_index_is_completed_by_an_earlier_forwarded_one() {
    let mut w = World::new();
    let a1 = w.add("alice", "a1");
    let a2 = w.add("alice", "a2");
    let b = w.add("bob", "b1");
    w.create_master(&a1);
    w.sign(&a1, &a2);
    w.sync_all();
    let dm = conv("dm");
    // Bob's list misses a2 at first; a2 gets the session from index 1.
    let without_a2: Vec<DeviceRef> = w
        .members(&b, &["alice", "bob"])
        .into_iter()
        .filter(|d| d.device != a2.1)
        .collect();
    let m0 = w.send_to(&b, &dm, &without_a2, "zero");
    let m1 = w.send(&b, &dm, &["alice", "bob"], "one");
    assert_eq!(m0.session, m1.session);
    assert_eq!(w.read_text(&a2, &dm, &b, &m1), "one");
    assert!(matches!(
        w.read(&a2, &dm, &b, &m0),
        Err(E2eError::BeforeKey {
            index: 0,
            first_known: 1
        })
    ));
    // a1 forwards what it has: from index 0.
    let forwarded = w.ready(&a1, |m, now| {
        m.forward_keys(&a2.1, Some(std::slice::from_ref(&dm)), now)
    });
    w.post(&a1, forwarded);
    for r in w.deliver(&a2) {
        r.unwrap();
    }
    assert_eq!(w.read_text(&a2, &dm, &b, &m0), "zero");
    assert_eq!(w.read_text(&a2, &dm, &b, &m1), "one");
}

// ---------------------------------------------------------------------------
// Key backup

use chatcore_client::chatcore::protocol::{BackupInfo, BackupKeyInfo};
use chatcore_client::e2e::{NewBackup, RecoveryKey, BACKUP_V1};

/// The server's `backup` reply for a backup created with `new`.
fn backup_info(version: &str, new: &NewBackup) -> BackupInfo {
    BackupInfo {
        version: version.into(),
        algorithm: new.algorithm.clone(),
        auth_data: new.auth_data.clone(),
        count: 0,
        etag: 0,
        created_at: T0,
    }
}

fn recovery_error(r: Result<RecoveryKey, E2eError>) -> String {
    match r {
        Err(E2eError::RecoveryKey(why)) => why,
        other => panic!("not refused as a recovery key: {other:?}"),
    }
}

#[test]
fn recovery_keys_round_trip_as_text_and_refuse_typos() {
    let key = RecoveryKey::generate().unwrap();
    let text = key.to_text();
    let groups: Vec<&str> = text.split(' ').collect();
    assert_eq!(groups.len(), 11, "{text}");
    assert!(groups.iter().all(|g| g.len() == 5), "{text}");
    assert!(!format!("{key:?}").contains(groups[3]), "Debug hides it");
    let public = key.public_key().unwrap();
    let same = |t: &str| RecoveryKey::parse(t).unwrap().public_key().unwrap();
    assert_eq!(same(&text), public);
    assert_eq!(same(&text.to_lowercase().replace(' ', "-")), public);
    assert_eq!(same(&text.replace(' ', "")), public);
    assert_eq!(same(&format!("  {}\n", groups.join("  "))), public);
    // Crockford's aliases: O for 0, I and L for 1.
    let aliased = text.replace('0', "o").replace('1', "L");
    assert_eq!(same(&aliased), public);
    let fixed = RecoveryKey::from_bytes([0x11; 32]).to_text();
    assert!(fixed.contains('1') || fixed.contains('0'), "{fixed}");
    assert_eq!(
        same(&fixed.replace('1', "I").replace('0', "O")),
        RecoveryKey::from_bytes([0x11; 32]).public_key().unwrap()
    );

    // One character changed in the middle: the check does not match.
    let compact = text.replace(' ', "");
    let mut chars: Vec<char> = compact.chars().collect();
    chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
    let typo: String = chars.iter().collect();
    let why = recovery_error(RecoveryKey::parse(&typo));
    assert!(why.contains("mistyped"), "{why}");
    // Every single-character change in the key's bytes is caught.
    for i in 1..54 {
        let mut chars: Vec<char> = compact.chars().collect();
        chars[i] = if chars[i] == 'Z' { 'Y' } else { 'Z' };
        let typo: String = chars.iter().collect();
        assert!(
            RecoveryKey::parse(&typo).is_err(),
            "position {i} not caught"
        );
    }
    let why = recovery_error(RecoveryKey::parse(&compact[..54]));
    assert!(why.contains("54 characters"), "{why}");
    let why = recovery_error(RecoveryKey::parse(&format!("{compact}0")));
    assert!(why.contains("56 characters"), "{why}");
    let why = recovery_error(RecoveryKey::parse(&compact.replacen(&compact[..1], "U", 1)));
    assert!(why.contains("'U'"), "{why}");
    recovery_error(RecoveryKey::parse(""));
    let message = E2eError::RecoveryKey("x".into()).to_string();
    assert!(message.contains("recovery key"), "{message}");
}

/// Alice's first device with the master key, Bob, and four Megolm
/// sessions: each one's in a direct conversation and a group.
struct Chat {
    w: World,
    a1: Key,
    b: Key,
    dm: ConversationId,
    group: ConversationId,
    sent: Vec<(ConversationId, Key, EncryptedContent, String)>,
}

fn chat() -> Chat {
    let mut w = World::new();
    let a1 = w.add("alice", "a1");
    let b = w.add("bob", "b1");
    w.create_master(&a1);
    w.sync_all();
    let dm = conv("dm:alice:bob");
    let group = conv("g:tea");
    let mut sent = Vec::new();
    for (from, c, text) in [
        (&a1, &dm, "dm from alice"),
        (&b, &dm, "dm from bob"),
        (&a1, &group, "group from alice"),
        (&b, &group, "group from bob"),
    ] {
        let content = w.send(from, c, &["alice", "bob"], text);
        sent.push((c.clone(), from.clone(), content, text.to_owned()));
    }
    Chat {
        w,
        a1,
        b,
        dm,
        group,
        sent,
    }
}

/// a1 creates a backup (version `v1`) and backs up everything it holds.
fn back_up(c: &mut Chat, recovery: &RecoveryKey) -> (BackupInfo, Vec<BackupKeyInfo>) {
    let new = c.w.m(&c.a1).create_backup(recovery).unwrap();
    assert_eq!(new.algorithm, BACKUP_V1);
    let info = backup_info("v1", &new);
    c.w.m(&c.a1).adopt_backup(&info).unwrap();
    assert_eq!(c.w.m(&c.a1).backup_version(), Some("v1"));
    assert_eq!(c.w.m(&c.a1).keys_not_backed_up(), 4);
    let batch = c.w.m(&c.a1).backup_batch(1000).unwrap().unwrap();
    assert_eq!(batch.version, "v1");
    assert_eq!(batch.keys.len(), 4);
    c.w.m(&c.a1).mark_backed_up(&batch);
    assert_eq!(c.w.m(&c.a1).keys_not_backed_up(), 0);
    (info, batch.keys)
}

/// A fresh device of Alice that knows the directory (the master key pinned).
fn fresh(c: &mut Chat, device: &str) -> Key {
    let k = c.w.add("alice", device);
    c.w.sync(&k, &["alice", "bob"]);
    k
}

#[test]
fn a_backup_restores_the_history_on_a_fresh_device() {
    let mut c = chat();
    let recovery = RecoveryKey::generate().unwrap();
    let (info, keys) = back_up(&mut c, &recovery);
    // The clear fields: Alice's own sessions came from their sender.
    for k in &keys {
        assert_eq!(k.first_index, 0);
        assert_eq!(k.forwarded, 0);
        assert!([&c.dm, &c.group].contains(&&k.conv));
    }
    let own = keys.iter().filter(|k| k.verified).count();
    assert_eq!(own, 2, "a1 is verified, Bob's device is not");
    for k in &keys {
        for (_, _, _, text) in &c.sent {
            assert!(!k.data.contains(text.as_str()));
        }
    }

    // Every device of Alice is lost; she signs in on a9, with no other
    // device online, and types the recovery key.
    c.w.revoke(&c.a1.clone());
    let a9 = fresh(&mut c, "a9");
    let typed = RecoveryKey::parse(&recovery.to_text().to_lowercase()).unwrap();
    for (conv, from, content, _) in c.sent.clone() {
        assert!(is_waiting(c.w.read(&a9, &conv, &from, &content)));
    }
    c.w.m(&a9).adopt_backup(&info).unwrap();
    let results =
        c.w.m(&a9)
            .restore_backup_keys(&typed, &info, &keys)
            .unwrap();
    assert_eq!(results.len(), 4);
    for r in &results {
        assert!(
            matches!(
                r,
                Ok(Received::RoomKey {
                    forwarded: true,
                    waiting: true,
                    ..
                })
            ),
            "{r:?}"
        );
    }
    for (conv, from, content, text) in c.sent.clone() {
        match c.w.read(&a9, &conv, &from, &content) {
            Ok(Decrypted::Plain {
                content, forwarded, ..
            }) => {
                assert_eq!(String::from_utf8(content).unwrap(), text);
                assert!(forwarded, "a restored key is not from the sender");
            }
            other => panic!("{text:?} unreadable: {other:?}"),
        }
    }
    // What came from the backup is not backed up again.
    assert_eq!(c.w.m(&a9).keys_not_backed_up(), 0);

    // The master key: unsealed with the recovery key, it signs a9.
    assert!(!c.w.m(&a9).has_master_key());
    c.w.m(&a9).unseal_master_key(&typed, &info).unwrap();
    assert!(c.w.m(&a9).has_master_key());
    let signature = c.w.m(&a9).sign_own_device().unwrap();
    let master = c.w.masters[&a9.0].key.clone();
    let ids = c.w.directory[&a9].identity.clone();
    verify(
        &master,
        &device_signature_text(&a9.0, &a9.1, &ids.signing_key, &ids.agreement_key),
        &signature,
    )
    .unwrap();
    c.w.directory.get_mut(&a9).unwrap().master_signature = Some(signature);
    let b = c.b.clone();
    c.w.sync(&b, &["alice"]);
    assert_eq!(c.w.m(&b).device_trust(&a9.0, &a9.1), DeviceTrust::Verified);

    // The state keeps the backup across a save.
    let bytes = c.w.m(&a9).to_bytes(&STORE_KEY).unwrap();
    let reopened = Machine::from_bytes(&bytes, &STORE_KEY).unwrap();
    assert_eq!(reopened.backup_version(), Some("v1"));
    assert_eq!(reopened.keys_not_backed_up(), 0);
}

#[test]
fn a_wrong_recovery_key_is_refused() {
    let mut c = chat();
    let recovery = RecoveryKey::generate().unwrap();
    let (info, keys) = back_up(&mut c, &recovery);
    let a9 = fresh(&mut c, "a9");
    let wrong = RecoveryKey::generate().unwrap();
    assert!(matches!(
        c.w.m(&a9).restore_backup_keys(&wrong, &info, &keys),
        Err(E2eError::WrongRecoveryKey)
    ));
    assert!(matches!(
        c.w.m(&a9).unseal_master_key(&wrong, &info),
        Err(E2eError::WrongRecoveryKey)
    ));
    assert!(!c.w.m(&a9).has_master_key());
    let (conv, from, content, _) = c.sent[0].clone();
    assert!(is_waiting(c.w.read(&a9, &conv, &from, &content)));
}

#[test]
fn a_tampered_backup_key_is_refused_alone() {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use base64::Engine;
    let mut c = chat();
    let recovery = RecoveryKey::generate().unwrap();
    let (info, keys) = back_up(&mut c, &recovery);
    let a9 = fresh(&mut c, "a9");
    let mut tampered = keys.clone();
    // 0: a byte of its ciphertext changed.
    let mut data = STANDARD_NO_PAD.decode(&tampered[0].data).unwrap();
    let last = data.len() - 20;
    data[last] ^= 1;
    tampered[0].data = STANDARD_NO_PAD.encode(&data);
    // 1: moved to another conversation.
    tampered[1].conv = if tampered[1].conv == c.dm {
        c.group.clone()
    } else {
        c.dm.clone()
    };
    // 2: moved to the session of 3.
    tampered[2].session = keys[3].session.clone();
    // Garbage: not base64, too short, an empty entry.
    let mut garbage = keys[3].clone();
    garbage.data = "!!not base64!!".into();
    let mut short = keys[3].clone();
    short.data = STANDARD_NO_PAD.encode([1u8; 40]);
    let mut empty = keys[3].clone();
    empty.data = String::new();
    tampered.extend([garbage, short, empty]);

    let results =
        c.w.m(&a9)
            .restore_backup_keys(&recovery, &info, &tampered)
            .unwrap();
    assert_eq!(results.len(), 7);
    for (i, r) in results.iter().enumerate() {
        if i == 3 {
            assert!(matches!(r, Ok(Received::RoomKey { .. })), "{r:?}");
        } else {
            assert!(r.is_err(), "entry {i} was accepted: {r:?}");
        }
    }
    assert!(
        matches!(results[1], Err(E2eError::Misbound(_))),
        "{:?}",
        results[1]
    );
    assert!(
        matches!(results[2], Err(E2eError::Misbound(_))),
        "{:?}",
        results[2]
    );
    // Only the session of entry 3 reads.
    let readable: Vec<String> = c
        .sent
        .clone()
        .into_iter()
        .filter_map(|(conv, from, content, text)| {
            matches!(
                c.w.read(&a9, &conv, &from, &content),
                Ok(Decrypted::Plain { .. })
            )
            .then_some(text)
        })
        .collect();
    assert_eq!(readable.len(), 1, "{readable:?}");
    // The untampered ones still import afterwards.
    let results =
        c.w.m(&a9)
            .restore_backup_keys(&recovery, &info, &keys)
            .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

#[test]
fn a_backup_signed_by_another_master_key_is_refused() {
    let mut c = chat();
    let recovery = RecoveryKey::generate().unwrap();
    let (info, keys) = back_up(&mut c, &recovery);
    // The server shows a backup made under another master key of "alice"
    // (its own world): its public key is not vouched for.
    let mut other = World::new();
    let x = other.add("alice", "x1");
    other.create_master(&x);
    let forged_recovery = RecoveryKey::generate().unwrap();
    let forged = backup_info("v2", &other.m(&x).create_backup(&forged_recovery).unwrap());
    let a1 = c.a1.clone();
    assert!(matches!(
        c.w.m(&a1).adopt_backup(&forged),
        Err(E2eError::BadSignature(_))
    ));
    assert_eq!(c.w.m(&a1).backup_version(), Some("v1"), "the old one stays");
    let a9 = fresh(&mut c, "a9");
    assert!(matches!(
        c.w.m(&a9)
            .restore_backup_keys(&forged_recovery, &forged, &keys),
        Err(E2eError::BadSignature(_))
    ));
    assert!(matches!(
        c.w.m(&a9).unseal_master_key(&forged_recovery, &forged),
        Err(E2eError::BadSignature(_))
    ));
    // The genuine public key under the forged signature: refused too.
    let mut swapped = info.clone();
    swapped.auth_data = forged.auth_data.clone();
    assert!(c.w.m(&a9).adopt_backup(&swapped).is_err());
    // A device that does not know the master key yet cannot check it.
    let mut lone = Machine::new(UserId::from("alice"), DeviceId::from("a8"));
    assert!(matches!(
        lone.adopt_backup(&info),
        Err(E2eError::BadSignature(_))
    ));
    // Garbage auth_data is an error, not a panic.
    let mut garbage = info.clone();
    garbage.auth_data = "%%%".into();
    assert!(c.w.m(&a9).adopt_backup(&garbage).is_err());
    garbage.auth_data = "AAAA".into();
    assert!(c.w.m(&a9).adopt_backup(&garbage).is_err());
    let mut foreign = info.clone();
    foreign.algorithm = "m.megolm_backup.v1.curve25519-aes-sha2".into();
    assert!(matches!(
        c.w.m(&a9).adopt_backup(&foreign),
        Err(E2eError::Unsupported(_))
    ));
    // A device without the master key cannot create a backup.
    assert!(matches!(
        c.w.m(&a9).create_backup(&recovery),
        Err(E2eError::NoMasterKey)
    ));
}

#[test]
fn later_sessions_are_backed_up_incrementally() {
    let mut c = chat();
    let recovery = RecoveryKey::generate().unwrap();
    let (info, mut keys) = back_up(&mut c, &recovery);
    let a1 = c.a1.clone();
    assert!(c.w.m(&a1).backup_batch(1000).unwrap().is_none());
    // A new conversation: one new session of a1, one of Bob's.
    let side = conv("g:side");
    let from_alice = c.w.send(&a1, &side, &["alice", "bob"], "side from alice");
    let b = c.b.clone();
    let from_bob = c.w.send(&b, &side, &["alice", "bob"], "side from bob");
    assert_eq!(c.w.m(&a1).keys_not_backed_up(), 2);
    let first = c.w.m(&a1).backup_batch(1).unwrap().unwrap();
    assert_eq!(first.keys.len(), 1, "the limit holds");
    c.w.m(&a1).mark_backed_up(&first);
    let second = c.w.m(&a1).backup_batch(1000).unwrap().unwrap();
    assert_eq!(second.keys.len(), 1);
    assert_ne!(first.keys[0].session, second.keys[0].session);
    assert!(first
        .keys
        .iter()
        .chain(&second.keys)
        .all(|k| k.conv == side));
    c.w.m(&a1).mark_backed_up(&second);
    assert_eq!(c.w.m(&a1).keys_not_backed_up(), 0);
    // A batch for an older version marks nothing.
    let more = c.w.send(&a1, &conv("g:third"), &["alice", "bob"], "third");
    let stale = c.w.m(&a1).backup_batch(1000).unwrap().unwrap();
    let new = c.w.m(&a1).create_backup(&recovery).unwrap();
    c.w.m(&a1).adopt_backup(&backup_info("v2", &new)).unwrap();
    c.w.m(&a1).mark_backed_up(&stale);
    assert_eq!(
        c.w.m(&a1).keys_not_backed_up(),
        7,
        "a new version takes everything again"
    );
    c.w.m(&a1).adopt_backup(&backup_info("v2", &new)).unwrap();
    assert_eq!(
        c.w.m(&a1).keys_not_backed_up(),
        7,
        "adopting it again keeps the list"
    );

    keys.extend(first.keys);
    keys.extend(second.keys);
    let a9 = fresh(&mut c, "a9");
    let results =
        c.w.m(&a9)
            .restore_backup_keys(&recovery, &info, &keys)
            .unwrap();
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(
        c.w.read_text(&a9, &side, &a1, &from_alice),
        "side from alice"
    );
    assert_eq!(c.w.read_text(&a9, &side, &b, &from_bob), "side from bob");
    assert!(is_waiting(c.w.read(&a9, &conv("g:third"), &a1, &more)));
}
