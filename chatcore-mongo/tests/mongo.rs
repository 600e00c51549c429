//! chatcore-mongo against a real MongoDB wire server.
//!
//! The server is `CHATCORE_MONGO_URI` when set (a real mongod or replica
//! set); otherwise these tests start jongodb, the MongoDB-compatible test
//! server that `scripts/test` installs into `.test-deps/`, on a free
//! loopback port, and it dies with the test process. Without either, every
//! test here fails and says how to get one: none is skipped.
//!
//! Every store gets a database of its own (`chatcore_test_<uuid>`), dropped
//! at the end where the server supports it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatcore::groups::Action;
use chatcore::model::{Content, ConversationId, Message, Rel, RelKind, UserId};
use chatcore::store::{
    Changed, ContactStore, ContactView, ConversationState, GroupInfo, MessageStore, NewMessage,
    NewUser, SessionRecord, SessionStore, StoreError, UserStore,
};
use chatcore::testkit::{conformance, model};
use chatcore::Backends;
use chatcore_mongo::mongodb::bson::{doc, Document};
use chatcore_mongo::{MongoConfig, MongoStore};

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

use chatcore_mongo::testing::{server_uri, Jongo, NO_SERVER};

fn fresh_db() -> String {
    format!("chatcore_test_{}", uuid::Uuid::new_v4().simple())
}

/// Databases to drop when a test ends (a real server keeps them otherwise).
#[derive(Clone, Default)]
struct Cleanup(Arc<Mutex<Vec<String>>>);

impl Cleanup {
    fn add(&self, db: &str) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(db.to_owned());
    }

    /// Drops them through a client of its own (the stores' clients may
    /// belong to runtimes that are gone). jongodb has no dropDatabase: its
    /// data dies with the process, so errors are ignored.
    async fn run(&self) {
        let names = std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()));
        let Ok(client) = chatcore_mongo::mongodb::Client::with_uri_str(server_uri()).await else {
            return;
        };
        for name in names {
            let _ = client.database(&name).drop().await;
        }
    }
}

async fn store_in(cleanup: &Cleanup) -> MongoStore {
    let db = fresh_db();
    cleanup.add(&db);
    MongoStore::connect(&server_uri(), &db)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {}: {e}; {NO_SERVER}", server_uri()))
}

/// Hands out fresh Mongo-backed `Backends`, one database per call.
fn factory(
    cleanup: Cleanup,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Backends> + Send>>
       + Send
       + Sync
       + 'static {
    move || {
        let cleanup = cleanup.clone();
        Box::pin(async move { store_in(&cleanup).await.backends(Backends::memory()) })
    }
}

fn text(t: &str) -> Content {
    Content::Text { text: t.to_owned() }
}

fn new_message(conv: &ConversationId, from: &UserId, client_id: &str) -> NewMessage {
    NewMessage::new(
        conv.clone(),
        from.clone(),
        client_id.to_owned(),
        1_700_000_000_000,
        text(client_id),
    )
}

fn new_user(name: &str, phone: &str) -> NewUser {
    NewUser::new(
        UserId::generate(),
        name.to_owned(),
        name.to_lowercase(),
        format!("{name}@example.com"),
        format!("{}@example.com", name.to_lowercase()),
        phone.to_owned(),
        name.to_owned(),
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA".to_owned(),
        1_700_000_000_000,
    )
}

/// A config that gives up fast, for the outage tests.
fn impatient() -> MongoConfig {
    let mut c = MongoConfig::default();
    c.server_selection_timeout = Duration::from_millis(500);
    c.connect_timeout = Duration::from_millis(500);
    c.op_timeout = Duration::from_secs(2);
    c
}

/// Bounds a future that must end on its own, so a hang fails the test.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within 60 s"))
}

// ---------------------------------------------------------------------------
// chatcore's suites
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_on_mongo() {
    let cleanup = Cleanup::default();
    conformance::run_all(&factory(cleanup.clone())).await;
    cleanup.run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_conformance_suite_passes_on_gridfs() {
    use chatcore::store::BlobStore;
    let cleanup = Cleanup::default();
    let made = cleanup.clone();
    chatcore::testkit::blobs::run_all(&move || {
        let made = made.clone();
        async move { Arc::new(store_in(&made).await.blobs()) as Arc<dyn BlobStore> }
    })
    .await;
    cleanup.run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_gridfs_uploads_leave_no_chunks() {
    use chatcore::model::MediaId;
    use chatcore::store::BlobStore;
    use chatcore::testkit::blobs::{body_of, failing_body, sample, stalled_body};
    let cleanup = Cleanup::default();
    let store = store_in(&cleanup).await;
    let blobs = store.blobs();
    let chunks = store.database().collection::<Document>("media.chunks");
    let files = store.database().collection::<Document>("media.files");
    let meta = || chatcore::store::BlobMeta::new(UserId::from("uploader"), 1_000);
    let count = || async {
        (
            chunks.count_documents(doc! {}).await.unwrap(),
            files.count_documents(doc! {}).await.unwrap(),
        )
    };
    let data = sample(2_000_000, 1);
    let id = MediaId::generate();
    // A body error and max_bytes: cleaned before put returns.
    assert!(blobs
        .put(&id, meta(), failing_body(&data, 1_000_000), u64::MAX)
        .await
        .is_err());
    assert_eq!(count().await, (0, 0));
    assert!(blobs
        .put(&id, meta(), body_of(&data), 1_500_000)
        .await
        .is_err());
    assert_eq!(count().await, (0, 0));
    // A dropped upload: the driver deletes its chunks soon after.
    let stalled = blobs.put(&id, meta(), stalled_body(&data, 1_000_000), u64::MAX);
    assert!(tokio::time::timeout(Duration::from_millis(500), stalled)
        .await
        .is_err());
    bounded("the clean-up of a dropped upload", async {
        while count().await != (0, 0) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // A duplicate id: the loser's chunks are deleted, the winner's kept.
    blobs
        .put(&id, meta(), body_of(&data), u64::MAX)
        .await
        .unwrap();
    let stored = count().await;
    assert_eq!(stored.1, 1);
    assert!(blobs
        .put(&id, meta(), body_of(&data), u64::MAX)
        .await
        .is_err());
    assert_eq!(count().await, stored);
    assert!(blobs.delete(&id).await.unwrap());
    assert_eq!(count().await, (0, 0));
    cleanup.run().await;
}

#[test]
fn whole_sessions_match_the_model_on_mongo() {
    let cleanup = Cleanup::default();
    // Each case is a fresh database and a whole scenario (~0.3 s on jongodb):
    // half of the memory backends' default, same variable to raise it.
    let cases = std::env::var("CHATCORE_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(32);
    model::check(Arc::new(factory(cleanup.clone())), cases);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(cleanup.run());
}

#[test]
fn key_claims_match_the_model_on_mongo() {
    let cleanup = Cleanup::default();
    // Concurrent one-time key claims against jongodb: none handed out
    // twice, none lost.
    let cases = std::env::var("CHATCORE_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(16);
    chatcore::testkit::keys::check(Arc::new(factory(cleanup.clone())), cases);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(cleanup.run());
}

#[test]
fn to_device_delivery_matches_the_model_on_mongo() {
    let cleanup = Cleanup::default();
    // Payloads queued, pushed, retried and acknowledged across random
    // reconnects against jongodb: none lost, none after its ack.
    let cases = std::env::var("CHATCORE_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(16);
    chatcore::testkit::to_device::check(Arc::new(factory(cleanup.clone())), cases);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(cleanup.run());
}

#[test]
fn groups_match_the_model_on_mongo() {
    let cleanup = Cleanup::default();
    // Whole group scenarios through the request layer, one database each.
    let cases = std::env::var("CHATCORE_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(16);
    chatcore::testkit::groups::check(Arc::new(factory(cleanup.clone())), cases);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(cleanup.run());
}

// ---------------------------------------------------------------------------
// What is specific to MongoDB
// ---------------------------------------------------------------------------

#[tokio::test]
async fn indexes_are_created_once_and_idempotently() {
    let cleanup = Cleanup::default();
    let store = store_in(&cleanup).await;
    // Again on the same handle, and from a second "node" on the same database.
    store.ensure_indexes().await.unwrap();
    let db = store.database().name().to_owned();
    let again = MongoStore::connect(&server_uri(), &db).await.unwrap();
    again.ensure_indexes().await.unwrap();

    let names = |coll: &'static str| {
        let d = store.database().clone();
        async move {
            let mut n = d
                .collection::<Document>(coll)
                .list_index_names()
                .await
                .unwrap();
            n.sort();
            n
        }
    };
    assert_eq!(
        names("users").await,
        [
            "_id_",
            "avatar",
            "name_words",
            "unique_email",
            "unique_phone",
            "unique_username"
        ]
    );
    assert_eq!(
        names("messages").await,
        [
            "_id_",
            "conv_rel_target",
            "expires_at",
            "media",
            "unique_client_id",
            "unique_seq"
        ]
    );
    assert_eq!(names("sessions").await, ["_id_", "ttl_expires_at", "user"]);
    assert_eq!(
        names("reset_tokens").await,
        ["_id_", "ttl_expires_at", "user"]
    );
    assert_eq!(names("budgets").await, ["_id_", "ttl_expire_at"]);
    assert_eq!(
        names("conversations").await,
        [
            "_id_",
            "info_avatar",
            "invite",
            "members_user_last_ts",
            "pending_user_last_ts"
        ]
    );
    assert_eq!(names("contacts").await, ["_id_", "listed_key", "users_key"]);
    assert_eq!(names("reports").await, ["_id_", "at_key"]);
    assert_eq!(names("device_keys").await, ["_id_", "user_device"]);
    assert_eq!(
        names("one_time_keys").await,
        ["_id_", "user_device_claimed"]
    );
    assert_eq!(names("to_device").await, ["_id_", "target_order"]);
    assert_eq!(names("cursors").await, ["_id_", "unique_cursor"]);
    assert_eq!(names("read_markers").await, ["_id_", "unique_read_marker"]);
    assert_eq!(names("receipts").await, ["_id_", "unique_receipt"]);
    assert_eq!(
        names("media.files").await,
        [
            "_id_",
            "filename_created_at",
            "filename_upload_date",
            "unique_media"
        ]
    );

    // The TTL indexes expire documents at their Date (expireAfterSeconds: 0).
    use futures_util::TryStreamExt;
    let models: Vec<_> = store
        .database()
        .collection::<Document>("reset_tokens")
        .list_indexes()
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let ttl = models
        .iter()
        .find(|m| m.options.as_ref().and_then(|o| o.name.as_deref()) == Some("ttl_expires_at"))
        .expect("ttl index");
    assert_eq!(ttl.keys, doc! { "expires_at": 1 });
    assert_eq!(
        ttl.options.as_ref().and_then(|o| o.expire_after),
        Some(Duration::ZERO)
    );
    cleanup.run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_from_two_nodes_are_gap_free_and_retries_store_once() {
    let cleanup = Cleanup::default();
    let node_a = store_in(&cleanup).await;
    // A second client on the same database: another chatd node.
    let db = node_a.database().name().to_owned();
    let node_b = MongoStore::connect(&server_uri(), &db).await.unwrap();
    let (a, z) = (UserId::generate(), UserId::generate());
    let conv = open(&node_a, &a, &z).await;

    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = if i % 2 == 0 {
            node_a.messages()
        } else {
            node_b.messages()
        };
        let from = if i % 3 == 0 { &z } else { &a };
        let m = new_message(&conv, from, &format!("m{i}"));
        tasks.push(tokio::spawn(async move { store.append(m).await }));
    }
    // Meanwhile, one client id retried ten times over both nodes.
    for i in 0..10 {
        let store = if i % 2 == 0 {
            node_a.messages()
        } else {
            node_b.messages()
        };
        let m = new_message(&conv, &a, "the-retry");
        tasks.push(tokio::spawn(async move { store.append(m).await }));
    }
    let mut seqs = Vec::new();
    let mut retried = Vec::new();
    for t in tasks {
        let r = bounded("append", t).await.unwrap().unwrap();
        if r.message.client_id == "the-retry" {
            retried.push((r.message.seq, r.duplicate));
        } else {
            assert!(!r.duplicate);
            seqs.push(r.message.seq);
        }
    }
    assert_eq!(
        retried.iter().filter(|(_, dup)| !dup).count(),
        1,
        "stored once"
    );
    assert!(
        retried.iter().all(|(s, _)| *s == retried[0].0),
        "one seq for every retry"
    );
    seqs.push(retried[0].0);
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=61).collect::<Vec<u64>>(),
        "exactly 1..=n, no gap"
    );

    let stored: Vec<u64> = node_b
        .messages()
        .read_after(&conv, 0, 1000)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(stored, (1..=61).collect::<Vec<u64>>());
    let head = node_a
        .messages()
        .conversation(&conv)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(head.last_seq, 61);
    cleanup.run().await;
}

/// Opens the direct conversation of `a` and `z` in `store`.
async fn open(store: &MongoStore, a: &UserId, z: &UserId) -> ConversationId {
    store
        .messages()
        .open_direct(ConversationState::direct(a, z, T0))
        .await
        .unwrap()
        .conv
}

const T0: i64 = 1_700_000_000_000;

/// A receipt is one document per (conversation, member), raised in place:
/// 50 messages acknowledged one by one on two devices, then read, leave
/// one document for the one member who received, holding the highest marks.
#[tokio::test]
async fn a_receipt_is_one_document_per_member_whatever_the_messages() {
    use chatcore::model::DeviceId;
    let cleanup = Cleanup::default();
    let store = store_in(&cleanup).await;
    let (a, b) = (UserId::generate(), UserId::generate());
    let conv = open(&store, &a, &b).await;
    let m = store.messages();
    let (d1, d2) = (DeviceId::generate(), DeviceId::generate());
    for i in 1..=50u64 {
        m.append(new_message(&conv, &a, &format!("c{i}")))
            .await
            .unwrap();
        let risen = m
            .set_cursor(&b, &d1, &conv, i, T0 + i as i64)
            .await
            .unwrap();
        assert_eq!(risen.map(|r| r.delivered), Some(i));
        assert_eq!(
            m.set_cursor(&b, &d2, &conv, i, T0 + i as i64)
                .await
                .unwrap(),
            None
        );
    }
    let read = m.mark_read(&b, &conv, 40, true, T0 + 100).await.unwrap();
    assert_eq!(read.map(|r| (r.delivered, r.read)), Some((50, 40)));
    let db = store.database();
    let count = |coll: &'static str| {
        let c = db.collection::<Document>(coll);
        async move { c.count_documents(doc! {}).await.unwrap() }
    };
    assert_eq!(count("messages").await, 50);
    assert_eq!(count("cursors").await, 2, "one per device");
    assert_eq!(
        count("receipts").await,
        1,
        "one for the one member who received"
    );
    let mut raw = db
        .collection::<Document>("receipts")
        .find_one(doc! {})
        .await
        .unwrap()
        .unwrap();
    raw.remove("_id");
    assert_eq!(
        raw,
        doc! {
            "conv": &conv.0, "user": &b.0,
            "delivered": 50_i64, "read": 40_i64, "at": T0 + 100,
        }
    );
    cleanup.run().await;
}

/// What a writer leaves when it dies between its claim and its copy: the
/// conversation's head moved to `seq` with the entry in `head`, and no
/// entry in `messages`.
async fn claim_without_copy(
    store: &MongoStore,
    conv: &ConversationId,
    from: &UserId,
    seq: i64,
    client_id: &str,
) {
    let convs = store.database().collection::<Document>("conversations");
    let r = convs
        .update_one(
            doc! { "_id": &conv.0, "last_seq": seq - 1 },
            doc! { "$set": {
                "last_seq": seq,
                "last_ts": T0 + seq,
                "head": {
                    "_id": format!("crashed-{seq}"), "conv": &conv.0, "seq": seq,
                    "from": &from.0, "client_id": client_id, "ts": T0 + seq,
                    "content": { "kind": "text", "text": client_id },
                },
            } },
        )
        .await
        .unwrap();
    assert_eq!(r.matched_count, 1);
}

#[tokio::test]
async fn a_writer_that_died_after_its_claim_loses_nothing() {
    let cleanup = Cleanup::default();
    let store = store_in(&cleanup).await;
    let messages = store.messages();
    let (a, z) = (UserId::generate(), UserId::generate());
    let conv = open(&store, &a, &z).await;
    messages
        .append(new_message(&conv, &a, "one"))
        .await
        .unwrap();

    // A node died after claiming seq 2 for z's "two".
    claim_without_copy(&store, &conv, &z, 2, "two").await;
    assert_eq!(
        seqs(messages.read_after(&conv, 0, 10).await.unwrap()),
        [1],
        "the log stops before the entry not yet copied"
    );
    // z retries while the entry is only the head: the same message.
    let retry = messages
        .append(new_message(&conv, &z, "two"))
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(
        (retry.message.seq, retry.message.id.0.as_str()),
        (2, "crashed-2")
    );

    // A reader copies it: conversation() (history's way in) and
    // conversations() (sync's) both settle the head.
    let head = messages.conversation(&conv).await.unwrap().unwrap();
    assert_eq!((head.last_seq, head.last_ts), (2, T0 + 2));
    assert_eq!(
        seqs(messages.read_after(&conv, 0, 10).await.unwrap()),
        [1, 2]
    );
    assert_eq!(unread(&messages, &a, &conv).await, 1);

    // Another writer died at seq 3; the next append copies it first.
    claim_without_copy(&store, &conv, &z, 3, "three").await;
    let four = messages
        .append(new_message(&conv, &a, "four"))
        .await
        .unwrap();
    assert_eq!(four.message.seq, 4);
    assert_eq!(
        seqs(messages.read_after(&conv, 0, 10).await.unwrap()),
        [1, 2, 3, 4]
    );
    let retry = messages
        .append(new_message(&conv, &z, "three"))
        .await
        .unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.message.seq, 3);

    // And one more, listed by conversations().
    claim_without_copy(&store, &conv, &z, 5, "five").await;
    let listed = messages
        .conversations(&a, chatcore::store::Listing::Main, None, 10)
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_seq, 5);
    assert_eq!(
        seqs(messages.read_after(&conv, 3, 10).await.unwrap()),
        [4, 5],
        "sync sees the orphaned entry"
    );
    cleanup.run().await;
}

/// A deletion and the timer leave no copy of the content they removed in
/// the stored documents: the message's, its edit's and its reaction's,
/// nor the conversation's head. A deletion whose writer died before it
/// removed anything is finished by the next reader that settles the head.
#[tokio::test]
async fn a_deleted_or_expired_content_is_gone_from_the_documents() {
    let cleanup = Cleanup::default();
    let store = store_in(&cleanup).await;
    let m = store.messages();
    let (a, z) = (UserId::generate(), UserId::generate());
    let conv = open(&store, &a, &z).await;
    let raw_messages = store.database().collection::<Document>("messages");
    let raw_convs = store.database().collection::<Document>("conversations");
    let raw = |id: String| {
        let coll = raw_messages.clone();
        async move {
            coll.find_one(doc! { "_id": &id })
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("no document {id}"))
                .to_string()
        }
    };
    let raw_conv = || {
        let (coll, conv) = (raw_convs.clone(), conv.clone());
        async move {
            coll.find_one(doc! { "_id": &conv.0 })
                .await
                .unwrap()
                .unwrap()
        }
    };
    let send = |from: &UserId, cid: &str, body: &str, rel: Option<(RelKind, &Message)>| {
        let msg = NewMessage::new(conv.clone(), from.clone(), cid.into(), T0, text(body))
            .related(rel.map(|(k, t)| Rel::new(k, t.id.clone())), vec![]);
        let m = m.clone();
        async move { Message::clone(&m.append(msg).await.unwrap().message) }
    };
    let secret = send(&a, "s", "the secret plan", None).await;
    let edit = send(
        &a,
        "e",
        "the secret plan, v2",
        Some((RelKind::Edit, &secret)),
    )
    .await;
    let reaction = send(
        &z,
        "x",
        "secret reaction",
        Some((RelKind::Reaction, &secret)),
    )
    .await;
    assert!(raw(secret.id.0.clone()).await.contains("the secret plan"));
    let delete = NewMessage::new(conv.clone(), a.clone(), "d".into(), T0, Content::Deleted {})
        .related(Some(Rel::new(RelKind::Delete, secret.id.clone())), vec![]);
    m.append(delete).await.unwrap();
    for id in [&secret.id, &edit.id, &reaction.id] {
        let d = raw(id.0.clone()).await;
        assert!(!d.contains("secret"), "{d}");
        assert!(d.contains("deleted"), "{d}");
    }
    assert!(
        !raw_conv().await.contains_key("deleting"),
        "the deletion is done"
    );

    // A writer died after claiming and copying a deletion, before removing
    // anything: the conversation is marked, and the next reader finishes it.
    let other = send(&z, "o", "another secret", None).await;
    let seq = other.seq as i64 + 1;
    let entry = doc! {
        "_id": "crashed-delete", "conv": &conv.0, "seq": seq, "from": &z.0,
        "client_id": "cd", "ts": T0, "content": { "kind": "deleted" }, "notice": true,
        "rel": { "kind": "delete", "target": &other.id.0 },
    };
    let r = raw_convs
        .update_one(
            doc! { "_id": &conv.0, "last_seq": seq - 1 },
            doc! { "$set": { "last_seq": seq, "head": entry.clone(), "deleting": &other.id.0 } },
        )
        .await
        .unwrap();
    assert_eq!(r.matched_count, 1);
    raw_messages.insert_one(entry).await.unwrap();
    assert!(raw(other.id.0.clone()).await.contains("another secret"));
    m.conversation(&conv).await.unwrap().unwrap();
    let d = raw(other.id.0.clone()).await;
    assert!(!d.contains("secret"), "{d}");
    assert!(!raw_conv().await.contains_key("deleting"));

    // The timer: the content goes when due, from the head too.
    let state = m.conversation(&conv).await.unwrap().unwrap();
    let mut next = state.clone();
    next.version += 1;
    next.expire_after = Some(3_600_000);
    assert!(matches!(
        m.change(&next, None).await.unwrap(),
        Changed::Done(None)
    ));
    assert_eq!(
        m.conversation(&conv).await.unwrap().unwrap().expire_after,
        Some(3_600_000)
    );
    let gone = send(&z, "t", "vanishing ink", None).await;
    assert_eq!(gone.expires_at, Some(T0 + 3_600_000));
    let gone_edit = send(&z, "te", "vanishing ink, v2", Some((RelKind::Edit, &gone))).await;
    assert!(raw_conv().await.to_string().contains("vanishing ink"));
    assert_eq!(m.expire(T0 + 3_600_000 - 1, 10).await.unwrap(), 0);
    assert_eq!(m.expire(T0 + 3_600_000, 10).await.unwrap(), 1);
    for id in [&gone.id, &gone_edit.id] {
        let d = raw(id.0.clone()).await;
        assert!(!d.contains("vanishing"), "{d}");
        assert!(!d.contains("expires_at"), "{d}");
    }
    let c = raw_conv().await.to_string();
    assert!(!c.contains("vanishing"), "the head's copy too: {c}");
    let retry = m.append(new_message(&conv, &z, "te")).await.unwrap();
    assert!(retry.duplicate);
    assert_eq!(retry.message.content, Content::Deleted {});
    assert_eq!(m.expire(i64::MAX, 10).await.unwrap(), 0);
    cleanup.run().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_racing_the_senders_removal_lands_before_it_or_is_refused() {
    let cleanup = Cleanup::default();
    let store = store_in(&cleanup).await;
    let messages = store.messages();
    let (a, b) = (UserId::generate(), UserId::generate());
    let mut info = GroupInfo::default();
    info.title = "race".into();
    let state = ConversationState::group(&a, std::slice::from_ref(&b), info, T0);
    let conv = state.conv.clone();
    let created = NewMessage::notice(
        conv.clone(),
        a.clone(),
        T0,
        Content::GroupCreated {
            title: "race".into(),
            members: vec![b.clone()],
        },
    );
    messages.create_group(state, created).await.unwrap();

    let sends: Vec<_> = (0..30)
        .map(|i| {
            let m = store.messages();
            let nm = new_message(&conv, &b, &format!("b{i}"));
            tokio::spawn(async move { m.append(nm).await })
        })
        .collect();
    let removal = {
        let m = store.messages();
        let (a, b, conv) = (a.clone(), b.clone(), conv.clone());
        tokio::spawn(async move {
            loop {
                let state = m.conversation(&conv).await.unwrap().unwrap();
                let (next, content) =
                    chatcore::groups::apply(&state, &a, Action::Remove(b.clone()), T0, 100)
                        .unwrap();
                let notice = content
                    .map(|c| NewMessage::notice(conv.clone(), a.clone(), T0, c))
                    .expect("a removal writes a notice");
                match m.change(&next, Some(notice)).await.unwrap() {
                    Changed::Done(Some(n)) => return n.seq,
                    Changed::Done(None) => panic!("no notice"),
                    Changed::Stale => continue,
                    _ => panic!("unknown outcome"),
                }
            }
        })
    };
    let mut landed = Vec::new();
    let mut refused = 0;
    for t in sends {
        match bounded("send", t).await.unwrap() {
            Ok(r) => {
                assert!(!r.duplicate);
                assert!(r.recipients.iter().any(|m| m.user == b));
                landed.push(r.message.seq);
            }
            Err(StoreError::NotMember) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let removed_at = bounded("removal", removal).await.unwrap();
    assert!(
        landed.iter().all(|&s| s < removed_at),
        "every send that landed is before the removal ({removed_at}): {landed:?}"
    );
    assert_eq!(landed.len() + refused, 30);
    let log = seqs(messages.read_after(&conv, 0, 100).await.unwrap());
    assert_eq!(log, (1..=removed_at).collect::<Vec<u64>>(), "gap-free");
    let after = messages.append(new_message(&conv, &b, "late")).await;
    assert_eq!(after.map(|_| ()), Err(StoreError::NotMember));
    cleanup.run().await;
}

#[tokio::test]
async fn schema_1_conversations_are_migrated_at_start() {
    let cleanup = Cleanup::default();
    let db_name = fresh_db();
    cleanup.add(&db_name);
    let client = chatcore_mongo::mongodb::Client::with_uri_str(server_uri())
        .await
        .unwrap();
    let db = client.database(&db_name);
    let (a, z) = (UserId::from("alice-1"), UserId::from("zed-1"));
    let conv = ConversationId::direct(&a, &z);
    // Schema 1, written through the raw driver: the mark, a conversation
    // whose cached head lags its messages, two messages, a read marker.
    db.collection::<Document>("meta")
        .insert_one(doc! { "_id": "schema", "version": 1_i64 })
        .await
        .unwrap();
    db.collection::<Document>("conversations")
        .insert_one(doc! {
            "_id": &conv.0, "members": [&a.0, &z.0], "last_seq": 1_i64, "last_ts": T0 + 1,
        })
        .await
        .unwrap();
    for (seq, from) in [(1_i64, &a), (2, &z)] {
        db.collection::<Document>("messages")
            .insert_one(doc! {
                "_id": format!("old-{seq}"), "conv": &conv.0, "seq": seq, "from": &from.0,
                "client_id": format!("c{seq}"), "ts": T0 + seq,
                "content": { "kind": "text", "text": "from schema 1" },
            })
            .await
            .unwrap();
    }
    db.collection::<Document>("read_markers")
        .insert_one(doc! { "user": &a.0, "conv": &conv.0, "seq": 1_i64 })
        .await
        .unwrap();

    let store = MongoStore::connect(&server_uri(), &db_name).await.unwrap();
    let mark = db
        .collection::<Document>("meta")
        .find_one(doc! { "_id": "schema" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mark.get_i64("version").unwrap(),
        chatcore_mongo::SCHEMA_VERSION
    );
    let messages = store.messages();
    let state = messages.conversation(&conv).await.unwrap().unwrap();
    assert_eq!(state.kind, chatcore::model::ConversationKind::Direct);
    assert_eq!(
        (state.last_seq, state.last_ts),
        (2, T0 + 2),
        "the head from the messages"
    );
    assert_eq!((state.version, state.invite.as_deref()), (0, None));
    assert_eq!(state.created_at, T0 + 1);
    let members: Vec<(&str, u64, bool)> = state
        .members
        .iter()
        .map(|m| (m.user.0.as_str(), m.joined_seq, m.is_active()))
        .collect();
    assert_eq!(members, [("alice-1", 0, true), ("zed-1", 0, true)]);
    assert_eq!(state.peer_of(&a), Some(&z));
    let listed = messages
        .conversations(&a, chatcore::store::Listing::Main, None, 10)
        .await
        .unwrap();
    assert_eq!(listed, vec![state.clone()]);
    assert_eq!(unread(&messages, &a, &conv).await, 1);
    let retry = messages.append(new_message(&conv, &z, "c2")).await.unwrap();
    assert!(
        retry.duplicate && retry.message.seq == 2,
        "old client ids still count"
    );
    let next = messages
        .append(new_message(&conv, &z, "new"))
        .await
        .unwrap();
    assert_eq!(next.message.seq, 3);
    assert_eq!(next.recipients.len(), 2);
    assert_eq!(
        seqs(messages.history(&conv, None, 10).await.unwrap()),
        [1, 2, 3]
    );

    // Starting again (another node, a restart) changes nothing.
    let snapshot = || async {
        use futures_util::TryStreamExt;
        let docs: Vec<Document> = db
            .collection::<Document>("conversations")
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        docs
    };
    let before = snapshot().await;
    MongoStore::connect(&server_uri(), &db_name).await.unwrap();
    db.collection::<Document>("meta")
        .update_one(
            doc! { "_id": "schema" },
            doc! { "$set": { "version": 1_i64 } },
        )
        .await
        .unwrap();
    MongoStore::connect(&server_uri(), &db_name).await.unwrap();
    assert_eq!(snapshot().await, before, "the migration is idempotent");
    cleanup.run().await;
}

/// Schema 8 keeps a blob's time in `metadata.created_at`: a file stored
/// by a schema-7 build gets its `uploadDate` there at start, reads with no
/// owner, and is listed by that time.
#[tokio::test]
async fn schema_7_media_files_get_their_time_and_no_owner() {
    use chatcore::model::{MediaId, Millis};
    use chatcore::store::BlobStore;
    use chatcore_mongo::mongodb::bson::{oid::ObjectId, Binary, DateTime};
    let cleanup = Cleanup::default();
    let db_name = fresh_db();
    cleanup.add(&db_name);
    let client = chatcore_mongo::mongodb::Client::with_uri_str(server_uri())
        .await
        .unwrap();
    let db = client.database(&db_name);
    db.collection::<Document>("meta")
        .insert_one(doc! { "_id": "schema", "version": 7_i64 })
        .await
        .unwrap();
    let (id, file_id, at) = (MediaId::generate(), ObjectId::new(), T0 + 5);
    let data = b"old bytes".to_vec();
    let sha = {
        let mut tally = chatcore::store::BlobTally::new(u64::MAX);
        tally.add(&data).unwrap();
        tally
            .finish(chatcore::store::BlobMeta::new(UserId::from("x"), 0))
            .sha256
    };
    db.collection::<Document>("media.chunks")
        .insert_one(doc! {
            "_id": ObjectId::new(), "files_id": file_id, "n": 0_i64,
            "data": Binary { subtype: chatcore_mongo::mongodb::bson::spec::BinarySubtype::Generic, bytes: data.clone() },
        })
        .await
        .unwrap();
    db.collection::<Document>("media.files")
        .insert_one(doc! {
            "_id": file_id, "length": data.len() as i64, "chunkSize": 255 * 1024_i32,
            "uploadDate": DateTime::from_millis(at), "filename": id.as_str(),
            "metadata": { "sha256": &sha },
        })
        .await
        .unwrap();

    let store = MongoStore::connect(&server_uri(), &db_name).await.unwrap();
    let file = db
        .collection::<Document>("media.files")
        .find_one(doc! { "_id": file_id })
        .await
        .unwrap()
        .unwrap();
    let metadata = file.get_document("metadata").unwrap();
    assert_eq!(metadata.get_i64("created_at").unwrap(), at);
    assert!(metadata.get("owner").is_none(), "{file}");
    let blobs = store.blobs();
    let info = blobs.info(&id).await.unwrap().expect("stored");
    assert_eq!(
        (info.size, info.created_at, info.owner, info.sha256),
        (data.len() as u64, at, None, sha)
    );
    assert_eq!(
        blobs.list(at + 1, None, 10).await.unwrap(),
        std::slice::from_ref(&id)
    );
    assert!(blobs.list(at, None, 10).await.unwrap().is_empty());
    // Beside a new one, with its owner.
    let new = MediaId::generate();
    let owner = UserId::from("uploader");
    blobs
        .put(
            &new,
            chatcore::store::BlobMeta::new(owner.clone(), at - 1),
            chatcore::testkit::blobs::body_of(b"x"),
            u64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(blobs.info(&new).await.unwrap().unwrap().owner, Some(owner));
    let mut both = vec![id, new];
    both.sort();
    assert_eq!(blobs.list(Millis::MAX, None, 10).await.unwrap(), both);
    let mark = db
        .collection::<Document>("meta")
        .find_one(doc! { "_id": "schema" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(mark.get_i64("version").unwrap(), 8);
    cleanup.run().await;
}

#[tokio::test]
async fn schema_2_databases_need_no_rewrite_for_contacts() {
    let cleanup = Cleanup::default();
    let db_name = fresh_db();
    cleanup.add(&db_name);
    let client = chatcore_mongo::mongodb::Client::with_uri_str(server_uri())
        .await
        .unwrap();
    let db = client.database(&db_name);
    // Schema 2, written through the raw driver: a user without `privacy`,
    // a direct conversation without `blocked`.
    db.collection::<Document>("meta")
        .insert_one(doc! { "_id": "schema", "version": 2_i64 })
        .await
        .unwrap();
    db.collection::<Document>("users")
        .insert_one(doc! {
            "_id": "old-user", "username": "Old", "username_key": "old",
            "email": "old@example.com", "email_key": "old@example.com", "phone": "+15550000020",
            "display_name": "Old", "name_words": ["old"], "about": "", "avatar": null,
            "password_hash": "$argon2id$x", "created_at": T0,
        })
        .await
        .unwrap();
    let (a, z) = (UserId::from("old-user"), UserId::generate());
    let conv = ConversationId::direct(&a, &z);
    db.collection::<Document>("conversations")
        .insert_one(doc! {
            "_id": &conv.0, "v": 2_i64, "kind": "direct", "created_at": T0,
            "info": { "title": "", "description": "", "avatar": null, "history_visible": false },
            "members": [
                { "user": &a.0, "role": "member", "joined_seq": 0_i64, "joined_at": T0,
                  "left_seq": null, "muted_until": null },
                { "user": &z.0, "role": "member", "joined_seq": 0_i64, "joined_at": T0,
                  "left_seq": null, "muted_until": null },
            ],
            "last_seq": 0_i64, "last_ts": T0, "version": 0_i64, "invite": null,
        })
        .await
        .unwrap();
    let before: Vec<Document> = {
        use futures_util::TryStreamExt;
        db.collection::<Document>("users")
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };

    let store = MongoStore::connect(&server_uri(), &db_name).await.unwrap();
    let mark = db
        .collection::<Document>("meta")
        .find_one(doc! { "_id": "schema" })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        mark.get_i64("version").unwrap(),
        chatcore_mongo::SCHEMA_VERSION
    );
    let after: Vec<Document> = {
        use futures_util::TryStreamExt;
        db.collection::<Document>("users")
            .find(doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    assert_eq!(after, before, "nothing rewritten");
    let user = store.users().get(&a).await.unwrap().unwrap();
    assert_eq!(user.privacy, chatcore::model::Privacy::default());
    let messages = store.messages();
    let state = messages.conversation(&conv).await.unwrap().unwrap();
    assert!(state.blocked.is_empty());
    let sent = messages.append(new_message(&conv, &a, "hi")).await.unwrap();
    assert_eq!(sent.message.seq, 1);
    // The old documents take the new fields.
    let mut private = chatcore::model::Privacy::default();
    private.direct = chatcore::model::Audience::Contacts;
    let user = store.users().set_privacy(&a, &private).await.unwrap();
    assert_eq!(user.privacy, private);
    let mut blocked = messages.conversation(&conv).await.unwrap().unwrap();
    blocked.version += 1;
    blocked.blocked = vec![z.clone()];
    assert!(matches!(
        messages.change(&blocked, None).await.unwrap(),
        Changed::Done(None)
    ));
    assert_eq!(
        messages
            .append(new_message(&conv, &a, "again"))
            .await
            .map(|_| ()),
        Err(StoreError::Blocked)
    );
    cleanup.run().await;
}

async fn unread(
    messages: &chatcore_mongo::MongoMessageStore,
    user: &UserId,
    conv: &ConversationId,
) -> u64 {
    let state = messages.conversation(conv).await.unwrap().unwrap();
    messages.unread(user, &[&state]).await.unwrap()[0].messages
}

fn seqs(v: Vec<chatcore::model::Message>) -> Vec<u64> {
    v.iter().map(|m| m.seq).collect()
}

#[tokio::test]
async fn a_database_written_by_a_newer_schema_is_refused_with_a_clear_message() {
    let cleanup = Cleanup::default();
    let store = store_in(&cleanup).await;
    let db = store.database().name().to_owned();
    let meta = store.database().collection::<Document>("meta");
    let mark = meta
        .find_one(doc! { "_id": "schema" })
        .await
        .unwrap()
        .expect("a new database is marked");
    assert_eq!(
        mark.get_i64("version").unwrap(),
        chatcore_mongo::SCHEMA_VERSION
    );
    // Connecting again (another node, a restart) keeps the mark.
    MongoStore::connect(&server_uri(), &db).await.unwrap();
    meta.update_one(
        doc! { "_id": "schema" },
        doc! { "$set": { "version": chatcore_mongo::SCHEMA_VERSION + 1 } },
    )
    .await
    .unwrap();
    match MongoStore::connect(&server_uri(), &db).await {
        Err(StoreError::Incompatible(m)) => {
            assert!(m.contains("newer") && m.contains("upgrade chatd"), "{m}")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
    cleanup.run().await;
}

#[tokio::test]
async fn duplicate_keys_are_conflicts_naming_the_field() {
    let cleanup = Cleanup::default();
    let store = store_in(&cleanup).await;
    let users = store.users();
    let alice = new_user("alice", "+15550000001");
    users.create(alice.clone()).await.unwrap();

    // Colliding on email and phone: reported as the reference store does,
    // username before email before phone.
    let mut both = new_user("bob", "+15550000001");
    both.email_key = alice.email_key.clone();
    assert_eq!(
        users.create(both).await.map(|_| ()),
        Err(StoreError::Conflict {
            field: "email".into()
        })
    );
    // One `$in` query; the missing ids are left out.
    let many = users
        .get_many(&[alice.id.clone(), UserId::from("nobody")])
        .await
        .unwrap();
    assert_eq!(many.len(), 1);
    assert_eq!(many[0].id, alice.id);
    assert!(users.get_many(&[]).await.unwrap().is_empty());
    let mut same_id = new_user("carol", "+15550000003");
    same_id.id = alice.id.clone();
    assert_eq!(
        users.create(same_id).await.map(|_| ()),
        Err(StoreError::Conflict { field: "id".into() })
    );

    let sessions = store.sessions();
    let s = SessionRecord::new(
        "h".into(),
        alice.id.clone(),
        chatcore::model::DeviceId::generate(),
        "phone".into(),
        0,
        10,
    );
    sessions.create(s.clone()).await.unwrap();
    assert_eq!(
        sessions.create(s).await,
        Err(StoreError::Conflict {
            field: "token".into()
        })
    );
    cleanup.run().await;
}

/// A session stored before devices were listed has no `last_active`: it
/// reads as active since it was created, and a resume sets it.
#[tokio::test]
async fn sessions_without_last_active_read_as_active_since_created() {
    let cleanup = Cleanup::default();
    let store = store_in(&cleanup).await;
    store
        .database()
        .collection::<Document>("sessions")
        .insert_one(doc! {
            "_id": "h", "user": "u", "device": "d", "device_name": "Phone",
            "created_at": 1000_i64,
            "expires_at": chatcore_mongo::mongodb::bson::DateTime::from_millis(9000),
        })
        .await
        .unwrap();
    let sessions = store.sessions();
    let s = sessions.get("h", 2000).await.unwrap().expect("kept");
    assert_eq!((s.created_at, s.last_active), (1000, 1000));
    sessions.extend("h", 3000, 9500).await.unwrap();
    let listed = sessions.devices(&UserId::from("u"), 3000).await.unwrap();
    assert_eq!(
        listed.iter().map(|s| s.last_active).collect::<Vec<_>>(),
        vec![3000]
    );
    cleanup.run().await;
}

#[tokio::test]
async fn unreadable_records_are_corrupt_not_missing() {
    let cleanup = Cleanup::default();
    let store = store_in(&cleanup).await;
    let db = store.database();
    db.collection::<Document>("users")
        .insert_one(doc! { "_id": "broken", "username_key": "broken", "created_at": "yesterday" })
        .await
        .unwrap();
    assert!(matches!(
        store.users().get(&UserId::from("broken")).await,
        Err(StoreError::Corrupt(_))
    ));
    let conv = ConversationId::from("dm:p:q");
    db.collection::<Document>("messages")
        .insert_one(doc! {
            "_id": "neg", "conv": &conv.0, "seq": -4_i64, "from": "p", "client_id": "c",
            "ts": 0_i64, "content": { "kind": "text", "text": "x" },
        })
        .await
        .unwrap();
    assert!(matches!(
        store.messages().history(&conv, None, 10).await,
        Err(StoreError::Corrupt(_))
    ));
    // A pair stored out of order would give each user the other's block.
    db.collection::<Document>("contacts")
        .insert_one(doc! {
            "_id": "p|q", "v": 1_i64, "users": ["q", "p"], "link": { "kind": "none" },
            "blocked": [1_i64, null], "retry_at": [null, null], "version": 1_i64,
            "listed": ["blocked:q"],
        })
        .await
        .unwrap();
    let (p, q) = (UserId::from("p"), UserId::from("q"));
    assert!(matches!(
        store.contacts().relation(&p, &q).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        store
            .contacts()
            .list(&q, ContactView::Blocked, None, 10)
            .await,
        Err(StoreError::Corrupt(_))
    ));
    cleanup.run().await;
}

// ---------------------------------------------------------------------------
// Outages
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let uri = format!("mongodb://127.0.0.1:{port}");
    let r = bounded("connect", MongoStore::connect_with(&uri, "x", impatient())).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");

    // A store made while the server was down answers Unavailable, per call.
    let store = MongoStore::connect_lazy(&uri, "x", impatient())
        .await
        .unwrap();
    let r = bounded("get", store.users().get(&UserId::from("u"))).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");

    let r = MongoStore::connect("mongodb://", "x").await;
    assert!(matches!(r, Err(StoreError::Unavailable(m)) if m.contains("invalid")));
}

#[tokio::test]
async fn a_server_that_never_answers_is_unavailable() {
    // Accepts connections and reads nothing: a hung server or a black hole.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("mongodb://{}", listener.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = listener.accept().await {
            held.push(sock);
        }
    });
    let store = MongoStore::connect_lazy(&uri, "x", impatient())
        .await
        .unwrap();
    let r = bounded("ping", store.ping()).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    let r = bounded(
        "append",
        store.messages().conversation(&ConversationId::from("c")),
    )
    .await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    hold.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_recovers_when_the_server_comes_back() {
    // A server of this test's own, to stop and start again on the same port.
    let mut jongo = Jongo::start(0).unwrap_or_else(|e| panic!("{e}"));
    let (port, uri) = (jongo.port, jongo.uri.clone());
    let store = MongoStore::connect_with(&uri, "recovery", impatient())
        .await
        .unwrap();
    let users = store.users();
    users
        .create(new_user("before", "+15550000010"))
        .await
        .unwrap();

    jongo.stop();
    let r = bounded("get while down", users.find_by_username("before")).await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    let r = bounded(
        "create while down",
        users.create(new_user("down", "+15550000011")),
    )
    .await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");

    let _jongo = Jongo::start(port).unwrap_or_else(|e| panic!("{e}"));
    // jongodb keeps data in memory: the restarted server is empty. The same
    // store (same client, no reconnect call) serves again once the driver
    // has found the server back.
    let mut recovered = None;
    for _ in 0..40 {
        match store.ensure_indexes().await {
            Ok(()) => {
                recovered = Some(());
                break;
            }
            Err(StoreError::Unavailable(_)) => tokio::time::sleep(Duration::from_millis(250)).await,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(recovered.is_some(), "the store did not recover within 10 s");
    users
        .create(new_user("after", "+15550000012"))
        .await
        .unwrap();
    assert!(users.find_by_username("after").await.unwrap().is_some());
}

// ---------------------------------------------------------------------------
// Calls
// ---------------------------------------------------------------------------

fn a_call(id: &str, caller: &UserId, callee: &UserId, at: i64) -> chatcore::store::CallRecord {
    chatcore::store::CallRecord::new(
        id.to_owned(),
        ConversationId::direct(caller, callee),
        (
            caller.clone(),
            chatcore::model::DeviceId::from("dev-a"),
            "a/1".to_owned(),
        ),
        callee.clone(),
        chatcore::model::CallMedia::Voice,
        false,
        at,
    )
}

/// Two nodes on one database: a call started on one is answered and ended
/// on the other; calls racing for one callee from two nodes admit one; a
/// claim left by a start that died blocks its user only for the grace
/// minute (by the calls' clock).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_shared_by_the_nodes_and_one_per_user_holds_under_races() {
    use chatcore::model::DeviceId;
    use chatcore::store::{Answered, CallStore, Started};
    use futures_util::TryStreamExt;
    const T0: i64 = 1_700_000_000_000;
    let cleanup = Cleanup::default();
    let db = fresh_db();
    cleanup.add(&db);
    let a = MongoStore::connect(&server_uri(), &db).await.unwrap();
    let b = MongoStore::connect(&server_uri(), &db).await.unwrap();
    let (ca, cb) = (a.calls(), b.calls());
    let (alice, bob) = (UserId::generate(), UserId::generate());
    assert_eq!(
        ca.start(&a_call("c1", &alice, &bob, T0)).await.unwrap(),
        Started::Started
    );
    let Answered::Answered(on) = cb
        .answer("c1", &DeviceId::from("d1"), "b/1", T0 + 1)
        .await
        .unwrap()
    else {
        panic!("answered on the other node");
    };
    assert_eq!(ca.get("c1").await.unwrap(), Some(on.clone()));
    let (e1, e2) = tokio::join!(ca.end("c1"), cb.end("c1"));
    assert_eq!([e1.unwrap(), e2.unwrap()].iter().flatten().count(), 1);

    // Eight callers ring one callee at once, half on each node: one call.
    let callee = UserId::generate();
    let starts = (0..8).map(|i| {
        let store = if i % 2 == 0 { ca.clone() } else { cb.clone() };
        let call = a_call(&format!("race-{i}"), &UserId::generate(), &callee, T0);
        async move { store.start(&call).await.unwrap() }
    });
    let results = futures_util::future::join_all(starts).await;
    assert_eq!(
        results.iter().filter(|r| **r == Started::Started).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == Started::CalleeBusy)
            .count(),
        7
    );
    let held = ca.of_user(&callee).await.unwrap().expect("the winner's");
    assert!(cb.end(&held.id).await.unwrap().is_some());
    // The losers released their callers.
    let claims: Vec<Document> = a
        .database()
        .collection::<Document>("call_users")
        .find(doc! {})
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert!(claims.is_empty(), "{claims:?}");

    // A start that died after claiming its users: they are busy for a
    // minute, then free.
    let (carol, dan) = (UserId::generate(), UserId::generate());
    a.database()
        .collection::<Document>("call_users")
        .insert_one(doc! { "_id": carol.as_str(), "call": "dead", "token": "t", "at": T0 })
        .await
        .unwrap();
    assert_eq!(ca.of_user(&carol).await.unwrap(), None, "no such call");
    assert_eq!(
        ca.start(&a_call("c2", &dan, &carol, T0 + 59_999))
            .await
            .unwrap(),
        Started::CalleeBusy
    );
    assert_eq!(
        ca.start(&a_call("c2", &dan, &carol, T0 + 60_000))
            .await
            .unwrap(),
        Started::Started
    );
    assert_eq!(cb.of_user(&carol).await.unwrap().unwrap().id, "c2");
    assert!(chatcore_mongo::COLLECTIONS.contains(&"calls"));
    assert!(chatcore_mongo::COLLECTIONS.contains(&"call_users"));
    cleanup.run().await;
}
