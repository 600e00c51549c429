//! chatcore-sqlite on real database files in temporary directories: the
//! conformance suite and the model tests every store runs, then what is
//! specific to SQLite (schema versions, durability, backup, faults).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chatcore::model::{Content, ConversationId, Message, Rel, RelKind, UserId};
use chatcore::store::{
    ConversationState, MessageStore, NewMessage, NewUser, StoreError, UserStore,
};
use chatcore::testkit::{conformance, model};
use chatcore::Backends;
use chatcore_sqlite::{rusqlite, SqliteConfig, SqliteStore, SCHEMA_VERSION};

/// A temporary directory that lives as long as the test binary: each
/// store gets a fresh file in it.
fn tmp() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

fn fresh_path() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    tmp().join(format!("db{}.sqlite", N.fetch_add(1, Ordering::Relaxed)))
}

/// Hands out fresh SQLite-backed `Backends`, one file per call.
fn factory() -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Backends> + Send>>
       + Send
       + Sync
       + 'static {
    move || {
        Box::pin(async move {
            SqliteStore::open(fresh_path())
                .await
                .expect("open")
                .backends(Backends::memory())
        })
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("CHATCORE_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------
// chatcore's suites
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_on_sqlite() {
    conformance::run_all(&factory()).await;
}

#[test]
fn whole_sessions_match_the_model_on_sqlite() {
    model::check(Arc::new(factory()), cases(32));
}

#[test]
fn groups_match_the_model_on_sqlite() {
    chatcore::testkit::groups::check(Arc::new(factory()), cases(16));
}

#[test]
fn keys_match_the_model_on_sqlite() {
    chatcore::testkit::keys::check(Arc::new(factory()), cases(16));
}

#[test]
fn to_device_delivery_matches_the_model_on_sqlite() {
    chatcore::testkit::to_device::check(Arc::new(factory()), cases(16));
}

// ---------------------------------------------------------------------------
// What is specific to SQLite
// ---------------------------------------------------------------------------

fn text(t: &str) -> Content {
    Content::Text { text: t.to_owned() }
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
        T0,
    )
}

const T0: i64 = 1_700_000_000_000;

/// A direct conversation between two new users of `store`.
async fn pair(store: &SqliteStore) -> (UserId, UserId, ConversationId) {
    let users = store.users();
    let a = users
        .create(new_user("Ann", "+15550000001"))
        .await
        .unwrap()
        .id;
    let b = users
        .create(new_user("Ben", "+15550000002"))
        .await
        .unwrap()
        .id;
    let conv = store
        .messages()
        .open_direct(ConversationState::direct(&a, &b, T0))
        .await
        .unwrap()
        .conv;
    (a, b, conv)
}

fn message(conv: &ConversationId, from: &UserId, cid: &str, body: &str) -> NewMessage {
    NewMessage::new(conv.clone(), from.clone(), cid.to_owned(), T0, text(body))
}

fn seqs(v: &[Message]) -> Vec<u64> {
    v.iter().map(|m| m.seq).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let (a, conv) = {
        let store = SqliteStore::open(&path).await.unwrap();
        let (a, _b, conv) = pair(&store).await;
        for i in 0..5 {
            store
                .messages()
                .append(message(&conv, &a, &format!("c{i}"), "hi"))
                .await
                .unwrap();
        }
        (a, conv)
    };
    let store = SqliteStore::open(&path).await.unwrap();
    let history = store.messages().history(&conv, None, 100).await.unwrap();
    assert_eq!(seqs(&history), [1, 2, 3, 4, 5]);
    let retry = store
        .messages()
        .append(message(&conv, &a, "c2", "hi"))
        .await
        .unwrap();
    assert!(retry.duplicate, "the idempotency index survived");
    assert_eq!(retry.message.seq, 3);
}

#[tokio::test]
async fn a_new_database_gets_the_configured_page_size_and_an_existing_one_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let page_size = |path: &Path| {
        let c = rusqlite::Connection::open(path).unwrap();
        let size: i64 = c.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
        size
    };
    let mut small = SqliteConfig::default();
    small.page_size = 1024;
    let conv = {
        let store = SqliteStore::open_with(&path, small).await.unwrap();
        let (a, _b, conv) = pair(&store).await;
        store
            .messages()
            .append(message(&conv, &a, "c1", "hi"))
            .await
            .unwrap();
        conv
    };
    assert_eq!(page_size(&path), 1024);
    let mut large = SqliteConfig::default();
    large.page_size = 8192;
    let store = SqliteStore::open_with(&path, large).await.unwrap();
    let history = store.messages().history(&conv, None, 10).await.unwrap();
    assert_eq!(seqs(&history), [1], "the file reads as before");
    drop(store);
    assert_eq!(
        page_size(&path),
        1024,
        "an existing file keeps its page size"
    );
    let fresh = dir.path().join("default.db");
    drop(SqliteStore::open(&fresh).await.unwrap());
    assert_eq!(
        page_size(&fresh),
        i64::from(chatcore_sqlite::DEFAULT_PAGE_SIZE)
    );
}

/// A receipt is one row per (conversation, member), raised in place: 50
/// messages acknowledged one by one, then read, leave one row per member
/// who acknowledged, holding the highest marks, and the log is all that
/// grew.
#[tokio::test]
async fn a_receipt_is_one_row_per_member_whatever_the_messages() {
    use chatcore::model::DeviceId;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (a, b, conv) = pair(&store).await;
    let m = store.messages();
    let (d1, d2) = (DeviceId::generate(), DeviceId::generate());
    for i in 1..=50u64 {
        m.append(message(&conv, &a, &format!("c{i}"), "hi"))
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
    let conn = rusqlite::Connection::open(&path).unwrap();
    let count = |table: &str| -> i64 {
        conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(count("messages"), 50);
    assert_eq!(
        count("receipts"),
        1,
        "one row for the one member who received"
    );
    assert_eq!(count("cursors"), 2, "one per device");
    let row: (String, String, i64, i64, i64) = conn
        .query_row(
            "SELECT c.id, r.user, r.delivered, r.read, r.at FROM receipts r JOIN conversations c \
             ON c.key = r.conv",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(row, (conv.0.clone(), b.0.clone(), 50, 40, T0 + 100));
    // `receipts` reads a conversation's rows through an index, never a scan.
    let mut explain = conn
        .prepare(
            "EXPLAIN QUERY PLAN SELECT user, delivered, read, at FROM receipts WHERE conv = ?1 \
             AND at >= ?2 ORDER BY user",
        )
        .unwrap();
    let plan: Vec<String> = explain
        .query_map(rusqlite::params![1, T0], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter().any(|d| d.starts_with("SEARCH receipts")),
        "{plan:?}"
    );
    assert!(
        !plan.iter().any(|d| d.starts_with("SCAN receipts")),
        "{plan:?}"
    );
    let _ = a;
}

/// Every column of the raw row of entry `seq` of `conv`, as text (BLOB ids
/// as hex), for checking that no copy of a removed content is left.
fn raw_row(conn: &rusqlite::Connection, conv: &ConversationId, seq: u64) -> String {
    let mut stmt = conn
        .prepare(
            "SELECT m.* FROM messages m JOIN conversations c ON c.key = m.conv WHERE c.id = ?1 \
             AND m.seq = ?2",
        )
        .unwrap();
    let n = stmt.column_count();
    stmt.query_row(rusqlite::params![conv.0, seq as i64], |r| {
        Ok((0..n)
            .map(|i| match r.get_ref(i).unwrap() {
                rusqlite::types::ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                rusqlite::types::ValueRef::Blob(b) => {
                    b.iter().map(|x| format!("{x:02x}")).collect::<String>()
                }
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
            .join(" | "))
    })
    .unwrap()
}

/// A deletion and the timer leave, in the file itself, no copy of the
/// content they removed: the rows of the message, of its edit and of its
/// reaction are rewritten in place; and what finds relations and due
/// entries reads an index.
#[tokio::test]
async fn a_deleted_or_expired_content_is_gone_from_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (a, b, conv) = pair(&store).await;
    let m = store.messages();
    let rel = |kind, target: &Message| Some(Rel::new(kind, target.id.clone()));
    let secret = m
        .append(message(&conv, &a, "s", "the secret plan"))
        .await
        .unwrap()
        .message;
    let edit = m
        .append(
            message(&conv, &a, "e", "the secret plan, v2")
                .related(rel(RelKind::Edit, &secret), vec![]),
        )
        .await
        .unwrap()
        .message;
    m.append(
        message(&conv, &b, "x", "secret reaction").related(rel(RelKind::Reaction, &secret), vec![]),
    )
    .await
    .unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        assert!(raw_row(&conn, &conv, secret.seq).contains("the secret plan"));
    }
    let mut delete = NewMessage::new(conv.clone(), a.clone(), "d".into(), T0, Content::Deleted {});
    delete = delete.related(rel(RelKind::Delete, &secret), vec![]);
    m.append(delete).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    for seq in [secret.seq, edit.seq, 3, 4] {
        let row = raw_row(&conn, &conv, seq);
        assert!(!row.contains("secret"), "seq {seq}: {row}");
        assert!(row.contains("deleted"), "seq {seq}: {row}");
    }
    // The timer: the content goes when due, from the file too.
    let state = m.conversation(&conv).await.unwrap().unwrap();
    let mut next = state.clone();
    next.version += 1;
    next.expire_after = Some(3_600_000);
    assert!(matches!(
        m.change(&next, None).await.unwrap(),
        chatcore::store::Changed::Done(None)
    ));
    let gone = m
        .append(message(&conv, &b, "t", "vanishing ink"))
        .await
        .unwrap()
        .message;
    assert_eq!(gone.expires_at, Some(T0 + 3_600_000));
    let edit = m
        .append(
            message(&conv, &b, "te", "vanishing ink, v2")
                .related(rel(RelKind::Edit, &gone), vec![]),
        )
        .await
        .unwrap()
        .message;
    assert!(raw_row(&conn, &conv, gone.seq).contains("vanishing ink"));
    assert_eq!(m.expire(T0 + 3_600_000, 10).await.unwrap(), 1);
    for seq in [gone.seq, edit.seq] {
        let row = raw_row(&conn, &conv, seq);
        assert!(!row.contains("vanishing"), "seq {seq}: {row}");
    }
    assert_eq!(
        m.expire(i64::MAX, 10).await.unwrap(),
        0,
        "nothing left to expire"
    );
    // `related` and `expire` search their partial indexes, `by_ids` its
    // (conv, id) one; none scans the log.
    for (sql, index) in [
        (
            "SELECT seq FROM messages INDEXED BY messages_rel_target WHERE conv = 1 AND \
             rel_target IS NOT NULL AND rel_target IN (?1, ?2) AND rel_kind IN ('edit', \
             'reaction', 'delete') ORDER BY seq",
            "messages_rel_target",
        ),
        (
            "SELECT conv, seq, id FROM messages WHERE expires_at IS NOT NULL AND expires_at <= ?1 \
             ORDER BY expires_at LIMIT ?2",
            "messages_expires_at",
        ),
        (
            "SELECT seq FROM messages INDEXED BY messages_id WHERE conv = 1 AND id IN (?1, ?2) \
             ORDER BY seq",
            "messages_id",
        ),
        (
            "SELECT count(*) FROM mentions WHERE conv = 1 AND user = ?1 AND seq > ?2 AND seq <= ?3",
            "mentions",
        ),
    ] {
        let mut explain = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let n = explain.parameter_count();
        let plan: Vec<String> = explain
            .query_map(rusqlite::params_from_iter(vec![1i64; n]), |r| {
                r.get::<_, String>(3)
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|d| d.starts_with("SEARCH") && d.contains(index)),
            "{sql}: {plan:?}"
        );
        assert!(
            !plan.iter().any(|d| d.starts_with("SCAN")),
            "{sql}: {plan:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_are_committed_in_groups_gap_free() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("chat.db")).await.unwrap();
    let (a, b, conv) = pair(&store).await;
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let (messages, conv) = (store.messages(), conv.clone());
            let from = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move {
                messages
                    .append(message(&conv, &from, &format!("g{i}"), "x"))
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert!(!t.await.unwrap().unwrap().duplicate);
    }
    let stats = store.write_stats();
    assert!(
        stats.commits < stats.writes,
        "concurrent writes share commits: {stats:?}"
    );
    let history = store.messages().history(&conv, None, 1000).await.unwrap();
    assert_eq!(seqs(&history), (1..=400).collect::<Vec<_>>());
}

/// The checkpoint thread keeps the WAL near `checkpoint_bytes` (without it
/// every append would leave its pages in the WAL: megabytes here), and
/// what it copied into the file reads back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpoint_thread_keeps_the_wal_small_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let mut config = SqliteConfig::default();
    config.checkpoint_bytes = 64 * 1024;
    let store = SqliteStore::open_with(&path, config).await.unwrap();
    let (a, _b, conv) = pair(&store).await;
    let text = "w".repeat(2000);
    for i in 0..600 {
        store
            .messages()
            .append(message(&conv, &a, &format!("c{i}"), &text))
            .await
            .unwrap();
    }
    let stats = store.write_stats();
    assert!(stats.checkpoints > 0, "checkpoints ran: {stats:?}");
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let wal_bytes = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    // 600 appends of 2 KB are more than 1.2 MB of pages; a checkpoint (and
    // the next write starting the WAL again) keeps it to a few times 64 KiB.
    assert!(wal_bytes < 600 * 1024, "the WAL is {wal_bytes} bytes");
    let history = store.messages().history(&conv, None, 1000).await.unwrap();
    assert_eq!(seqs(&history), (1..=600).collect::<Vec<_>>());
    drop(store);
    let again = SqliteStore::open(&path).await.unwrap();
    let history = again.messages().history(&conv, None, 1000).await.unwrap();
    assert_eq!(history.len(), 600);
}

#[tokio::test]
async fn a_database_written_by_a_newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(&format!("PRAGMA user_version = {}", SCHEMA_VERSION + 1))
        .unwrap();
    drop(conn);
    match SqliteStore::open(&path).await {
        Err(StoreError::Incompatible(m)) => {
            assert!(m.contains("newer") && m.contains("upgrade"), "{m}");
            assert!(m.contains(&path.display().to_string()), "{m}");
        }
        other => panic!("expected Incompatible, got {other:?}"),
    }
    // Refused without a write: the mark is as the newer build left it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION + 1);
}

#[tokio::test]
async fn a_file_is_opened_once_per_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path).await.unwrap();
    match SqliteStore::open(dir.path().join(".").join("chat.db")).await {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("already open"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    let clone = store.clone();
    drop(store);
    assert!(
        SqliteStore::open(&path).await.is_err(),
        "a clone still holds it"
    );
    drop(clone);
    SqliteStore::open(&path)
        .await
        .expect("free once every handle is gone");
}

#[tokio::test]
async fn another_programs_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE notes (body TEXT)")
        .unwrap();
    drop(conn);
    match SqliteStore::open(&path).await {
        Err(StoreError::Incompatible(m)) => assert!(m.contains("not a chatcore database"), "{m}"),
        other => panic!("expected Incompatible, got {other:?}"),
    }
}

#[tokio::test]
async fn migrations_are_numbered_and_reopening_applies_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    drop(SqliteStore::open(&path).await.unwrap());
    drop(SqliteStore::open(&path).await.unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (v, mode, fk): (i64, String, i64) = (
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap(),
        conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap(),
        conn.query_row(
            "SELECT count(*) FROM pragma_foreign_key_list('messages')",
            [],
            |r| r.get(0),
        )
        .unwrap(),
    );
    assert_eq!((v, mode.as_str(), fk), (SCHEMA_VERSION, "wal", 1));
}

/// Step 2 adds `last_active` to sessions (and what encryption needs): a
/// session a version-1 build stored reads as last active when it was
/// created.
#[tokio::test]
async fn sessions_of_schema_1_read_as_active_since_created() {
    use chatcore::store::SessionStore;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    drop(SqliteStore::open(&path).await.unwrap());
    // Back to version 1's tables (undoing what steps 2, 4, 5, 6, 7, 8 and
    // 9 added; step 3 only changed the log's id columns' type), with one
    // session in them.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE call_users;
         DROP TABLE calls;
         DROP TRIGGER messages_media_insert;
         DROP TRIGGER messages_media_update;
         DROP TRIGGER messages_media_delete;
         DROP TABLE media_refs;
         DROP INDEX users_avatar;
         DROP INDEX conversations_avatar;
         ALTER TABLE messages DROP COLUMN media;
         DROP TABLE mentions;
         DROP INDEX messages_id;
         DROP INDEX messages_rel_target;
         DROP INDEX messages_expires_at;
         ALTER TABLE messages DROP COLUMN rel_kind;
         ALTER TABLE messages DROP COLUMN rel_target;
         ALTER TABLE messages DROP COLUMN mentions;
         ALTER TABLE messages DROP COLUMN expires_at;
         ALTER TABLE conversations DROP COLUMN expire_after;
         DROP TABLE receipts;
         DROP TABLE backup_keys;
         DROP TABLE backups;
         DROP INDEX sessions_user_device;
         ALTER TABLE sessions DROP COLUMN last_active;
         ALTER TABLE conversations DROP COLUMN encrypted;
         ALTER TABLE device_keys DROP COLUMN master_key;
         ALTER TABLE device_keys DROP COLUMN master_signature;
         DROP TABLE master_keys;
         INSERT INTO sessions (token_hash, user, device, device_name, created_at, expires_at)
             VALUES ('h', 'u', 'd', 'Phone', 1000, 9000);
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).await.unwrap();
    let s = store
        .sessions()
        .get("h", 2000)
        .await
        .unwrap()
        .expect("kept");
    assert_eq!(
        (s.created_at, s.last_active, s.device_name.as_str()),
        (1000, 1000, "Phone")
    );
    assert_eq!(
        store
            .sessions()
            .devices(&UserId::from("u"), 2000)
            .await
            .unwrap(),
        vec![s]
    );
    assert_eq!(
        SCHEMA_VERSION, 9,
        "steps 2, 4, 5, 6, 7, 8 and 9 are undone above"
    );
}

/// A stored id in its canonical text form, decoded by SQL alone (not by
/// the store's code): a 16-byte BLOB as a hyphenated UUID, TEXT as it is.
const ID_AS_TEXT: &str =
    "CASE typeof({c}) WHEN 'blob' THEN lower(substr(hex({c}), 1, 8) || '-' || \
                          substr(hex({c}), 9, 4) || '-' || substr(hex({c}), 13, 4) || '-' || \
                          substr(hex({c}), 17, 4) || '-' || substr(hex({c}), 21)) ELSE {c} END";

/// Step 3 stores the log's UUIDs (message ids, senders) as 16-byte BLOBs
/// and keeps other ids as text: a version-2 log reads back the same after
/// it, its retries are still found, and the log goes on.
#[tokio::test]
async fn a_log_of_schema_2_migrates_to_blob_ids_and_reads_back_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let ann = UserId::generate();
    let legacy = UserId::from("legacy-user");
    let conv = store
        .messages()
        .open_direct(ConversationState::direct(&ann, &legacy, T0))
        .await
        .unwrap()
        .conv;
    for (from, cid) in [(&ann, "c1"), (&legacy, "c2"), (&ann, "c3")] {
        store
            .messages()
            .append(message(&conv, from, cid, cid))
            .await
            .unwrap();
    }
    let mut odd = message(&conv, &legacy, "c4", "c4");
    odd.id = chatcore::model::MessageId("not-a-uuid".into());
    store.messages().append(odd).await.unwrap();
    let before = store.messages().history(&conv, None, 100).await.unwrap();
    drop(store);

    // Back to version 2's log: the same rows with every id as TEXT (and
    // without step 4's, 5's, 6's, 8's and 9's tables and columns).
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (id, sender) = (
        ID_AS_TEXT.replace("{c}", "id"),
        ID_AS_TEXT.replace("{c}", "sender"),
    );
    conn.execute_batch(&format!(
        "DROP TABLE call_users;
         DROP TABLE calls;
         DROP TRIGGER messages_media_insert;
         DROP TRIGGER messages_media_update;
         DROP TRIGGER messages_media_delete;
         DROP TABLE media_refs;
         DROP INDEX users_avatar;
         DROP INDEX conversations_avatar;
         DROP TABLE mentions;
         ALTER TABLE conversations DROP COLUMN expire_after;
         DROP TABLE receipts;
         DROP TABLE backup_keys;
         DROP TABLE backups;
         CREATE TABLE messages_v2 (
             conv      INTEGER NOT NULL REFERENCES conversations(key) ON DELETE CASCADE,
             seq       INTEGER NOT NULL,
             id        TEXT NOT NULL,
             sender    TEXT NOT NULL,
             client_id TEXT NOT NULL,
             ts        INTEGER NOT NULL,
             notice    INTEGER NOT NULL,
             content   TEXT NOT NULL,
             PRIMARY KEY (conv, seq)
         ) STRICT, WITHOUT ROWID;
         INSERT INTO messages_v2 SELECT conv, seq, {id}, {sender}, client_id, ts, notice, content
             FROM messages;
         DROP TABLE messages;
         ALTER TABLE messages_v2 RENAME TO messages;
         CREATE UNIQUE INDEX messages_client_id ON messages(sender, client_id);
         PRAGMA user_version = 2;"
    ))
    .unwrap();
    let texts: i64 = conn
        .query_row(
            "SELECT count(*) FROM messages WHERE typeof(id) = 'text' AND typeof(sender) = 'text'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(texts, 4, "a version-2 log");
    drop(conn);

    let store = SqliteStore::open(&path).await.unwrap();
    let after = store.messages().history(&conv, None, 100).await.unwrap();
    assert_eq!(after, before, "the same messages, ids and senders");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let (v, kinds): (i64, String) = (
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap(),
        conn.query_row(
            "SELECT group_concat(typeof(id) || '/' || typeof(sender), ' ') FROM (SELECT id, \
             sender FROM messages ORDER BY seq)",
            [],
            |r| r.get(0),
        )
        .unwrap(),
    );
    assert_eq!(v, SCHEMA_VERSION);
    assert_eq!(kinds, "blob/blob blob/text blob/blob text/text");
    drop(conn);

    // Retries of entries written before the migration are found, from
    // either kind of sender; the log goes on at the next seq.
    for (from, cid, seq) in [(&ann, "c1", 1), (&legacy, "c4", 4)] {
        let retry = store
            .messages()
            .append(message(&conv, from, cid, "again"))
            .await
            .unwrap();
        assert!(retry.duplicate, "{cid}");
        assert_eq!(retry.message.seq, seq);
        assert_eq!(retry.message.id, before[seq as usize - 1].id);
    }
    let next = store
        .messages()
        .append(message(&conv, &ann, "c5", "c5"))
        .await
        .unwrap();
    assert_eq!((next.duplicate, next.message.seq), (false, 5));
    // Unread counts compare the stored sender with the reader.
    let state = store.messages().conversation(&conv).await.unwrap().unwrap();
    assert_eq!(
        store.messages().unread(&legacy, &[&state]).await.unwrap()[0].messages,
        3,
        "ann's c1, c3 and c5"
    );
    assert_eq!(
        store.messages().unread(&ann, &[&state]).await.unwrap()[0].messages,
        2,
        "legacy's c2 and c4"
    );
}

/// Step 8 indexes the files entries list (`media_refs`, kept by
/// triggers) and the avatars: a version-7 file's entries are found after
/// it, and the triggers follow later appends and deletions.
#[tokio::test]
async fn media_of_schema_7_is_indexed_by_step_8() {
    use chatcore::model::MediaId;
    use chatcore::store::ProfileUpdate;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (a, b, conv) = pair(&store).await;
    let [m1, m2, m3, m4, face] = std::array::from_fn::<_, 5, _>(|_| MediaId::generate());
    let first = store
        .messages()
        .append(message(&conv, &a, "c1", "album").with_media(vec![m1.clone(), m2.clone()]))
        .await
        .unwrap()
        .message;
    store
        .messages()
        .append(message(&conv, &b, "c2", "again").with_media(vec![m2.clone()]))
        .await
        .unwrap();
    let mut update = ProfileUpdate::default();
    update.avatar = Some(Some(face.as_str().to_owned()));
    store.users().update_profile(&a, &update).await.unwrap();
    drop(store);

    // Back to version 7: no refs, no triggers, no avatar indexes, no calls.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE call_users;
         DROP TABLE calls;
         DROP TRIGGER messages_media_insert;
         DROP TRIGGER messages_media_update;
         DROP TRIGGER messages_media_delete;
         DROP TABLE media_refs;
         DROP INDEX users_avatar;
         DROP INDEX conversations_avatar;
         PRAGMA user_version = 7;",
    )
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).await.unwrap();
    let ids = [m1.clone(), m2.clone(), m3.clone(), m4.clone(), face.clone()];
    let sorted = |mut v: Vec<MediaId>| {
        v.sort();
        v
    };
    let in_use = store.messages().media_in_use(&ids).await.unwrap();
    assert_eq!(sorted(in_use), sorted(vec![m1.clone(), m2.clone()]));
    assert_eq!(
        store.users().avatars_in_use(&ids).await.unwrap(),
        std::slice::from_ref(&face)
    );
    // The triggers run on what comes after.
    store
        .messages()
        .append(message(&conv, &b, "c3", "new").with_media(vec![m3.clone()]))
        .await
        .unwrap();
    let delete = NewMessage::new(conv.clone(), a.clone(), "d".into(), T0, Content::Deleted {})
        .related(Some(Rel::new(RelKind::Delete, first.id.clone())), vec![]);
    store.messages().append(delete).await.unwrap();
    let in_use = store.messages().media_in_use(&ids).await.unwrap();
    assert_eq!(sorted(in_use), sorted(vec![m2.clone(), m3.clone()]));
    // More ids than one statement binds.
    let many: Vec<MediaId> = (0..1200)
        .map(|_| MediaId::generate())
        .chain([m3.clone()])
        .collect();
    assert_eq!(store.messages().media_in_use(&many).await.unwrap(), [m3]);
    drop(store);

    // Index probes, not scans.
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in [
        "SELECT media FROM media_refs WHERE media IN (?1, ?2) UNION SELECT avatar FROM \
         conversations WHERE avatar IS NOT NULL AND avatar IN (?1, ?2)",
        "SELECT DISTINCT avatar FROM users WHERE avatar IS NOT NULL AND avatar IN (?1, ?2)",
    ] {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(["x", "y"], |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(
            plan.iter().all(|step| !step.starts_with("SCAN")),
            "{sql}: {plan:?}"
        );
    }
}

#[tokio::test]
async fn a_corrupt_file_is_corrupt_and_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    std::fs::write(
        &path,
        b"this is not a database, only some text that fills a page.".repeat(100),
    )
    .unwrap();
    match SqliteStore::open(&path).await {
        Err(StoreError::Corrupt(m)) => {
            assert!(m.contains("not a database") && m.contains("chat.db"), "{m}")
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn a_missing_directory_is_unavailable_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no").join("such").join("chat.db");
    match SqliteStore::open(&path).await {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("no/such/chat.db"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_file_opened_read_only_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let mut config = SqliteConfig::default();
    config.read_only = true;
    match SqliteStore::open_with(&path, config).await {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("read-only"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_answers_unavailable_and_keeps_no_half_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    let (a, conv) = {
        let store = SqliteStore::open(&path).await.unwrap();
        let (a, _b, conv) = pair(&store).await;
        (a, conv)
    };
    let pages: u64 = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap()
    };
    let mut config = SqliteConfig::default();
    config.max_page_count = Some(pages + 8);
    let store = SqliteStore::open_with(&path, config).await.unwrap();
    let big = "y".repeat(3000);
    let mut stored = 0_u64;
    let err = loop {
        match store
            .messages()
            .append(message(&conv, &a, &format!("f{stored}"), &big))
            .await
        {
            Ok(appended) => {
                stored += 1;
                assert_eq!(appended.message.seq, stored);
                assert!(stored < 1000, "the cap was never reached");
            }
            Err(e) => break e,
        }
    };
    match &err {
        StoreError::Unavailable(m) => assert!(m.contains("full"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(store.ping().await.is_err(), "the readiness probe sees it");
    let history = store.messages().history(&conv, None, 1000).await.unwrap();
    assert_eq!(seqs(&history), (1..=stored).collect::<Vec<_>>());
    let state = store.messages().conversation(&conv).await.unwrap().unwrap();
    assert_eq!(
        state.last_seq, stored,
        "the head did not move for the refused message"
    );
    // A small write still fits, at the next seq.
    let next = store
        .messages()
        .append(message(&conv, &a, "small", "."))
        .await;
    if let Ok(next) = next {
        assert_eq!(next.message.seq, stored + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_backup_is_consistent_and_holds_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("chat.db")).await.unwrap();
    let (a, _b, conv) = pair(&store).await;
    for i in 0..50 {
        store
            .messages()
            .append(message(&conv, &a, &format!("b{i}"), "before"))
            .await
            .unwrap();
    }
    let writer = {
        let (messages, conv, a) = (store.messages(), conv.clone(), a.clone());
        tokio::spawn(async move {
            for i in 0..200 {
                messages
                    .append(message(&conv, &a, &format!("d{i}"), "during"))
                    .await
                    .unwrap();
            }
        })
    };
    let dest = dir.path().join("copy.db");
    let report = store.backup_to(&dest).await.unwrap();
    writer.await.unwrap();
    assert!(report.pages > 0 && report.bytes > 0);
    assert!(!dir.path().join("copy.db.partial").exists());
    let copy = SqliteStore::open(&dest).await.unwrap();
    let history = copy.messages().history(&conv, None, 1000).await.unwrap();
    assert!(history.len() >= 50, "{} entries", history.len());
    assert_eq!(
        seqs(&history),
        (1..=history.len() as u64).collect::<Vec<_>>()
    );
}

/// Step 9 adds the calls (a version-8 file gets them), and a reopened
/// database marks the sides of the calls its previous process left gone
/// from the open (a side gone before keeps its time; an unanswered call's
/// callee has no side), so that the next sweep ends them.
#[tokio::test]
async fn calls_left_by_a_previous_process_are_gone_at_open() {
    use chatcore::model::{CallMedia, DeviceId};
    use chatcore::store::{CallRecord, CallStore, Started};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chat.db");
    drop(SqliteStore::open(&path).await.unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE call_users;
         DROP TABLE calls;
         PRAGMA user_version = 8;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).await.unwrap();
    let call = |id: &str, a: &UserId, b: &UserId| {
        CallRecord::new(
            id.to_owned(),
            ConversationId::direct(a, b),
            (a.clone(), DeviceId::from("da"), "n/1".to_owned()),
            b.clone(),
            CallMedia::Voice,
            false,
            T0,
        )
    };
    let (a, b, c, d) = (
        UserId::generate(),
        UserId::generate(),
        UserId::generate(),
        UserId::generate(),
    );
    let calls = store.calls();
    assert_eq!(
        calls.start(&call("ringing", &a, &b)).await.unwrap(),
        Started::Started
    );
    assert_eq!(
        calls.start(&call("talking", &c, &d)).await.unwrap(),
        Started::Started
    );
    calls
        .answer("talking", &DeviceId::from("dd"), "n/2", T0 + 1)
        .await
        .unwrap();
    calls
        .conn_closed(&c, &DeviceId::from("da"), "n/1", T0 + 2)
        .await
        .unwrap();
    assert_eq!(calls.due(T0, T0).await.unwrap(), vec![]);
    drop((calls, store));

    let store = SqliteStore::open(&path).await.unwrap();
    let calls = store.calls();
    let ringing = calls.get("ringing").await.unwrap().expect("kept");
    let talking = calls.of_user(&d).await.unwrap().expect("kept");
    let opened = ringing.caller_gone_at.expect("the caller's side is gone");
    assert!(opened > T0 + 1000, "gone from the open: {opened}");
    assert_eq!(ringing.callee_gone_at, None, "no callee's side yet");
    assert_eq!(talking.caller_gone_at, Some(T0 + 2), "gone before");
    assert_eq!(talking.callee_gone_at, Some(opened));
    let due = calls.due(T0, opened + 1).await.unwrap();
    assert_eq!(due.len(), 2);
    // The answering device signs in again: its side is back.
    assert!(calls
        .conn_opened(&d, &DeviceId::from("dd"), "n/3")
        .await
        .unwrap());
    assert!(calls.end("talking").await.unwrap().is_some());
    assert_eq!(calls.of_user(&c).await.unwrap(), None);
}
