//! chatd on the SQLite store (chatcore-sqlite), on real files in
//! temporary directories: restarts, SIGKILL in the middle of sends, the
//! online backup, the default data directory, and the faults of a file
//! that is corrupt, locked by another process, or on a full disk.

use super::durable::{self, stop, whole_history, Burst};
use super::*;
use chatcore_sqlite::rusqlite;
use std::sync::Arc;

/// A fresh directory under the target dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(what: &str) -> TempDir {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "e2e-sqlite-{what}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn db(&self) -> PathBuf {
        self.0.join("chatd.db")
    }

    fn store_arg(&self) -> String {
        format!("sqlite:{}", self.db().display())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn start_on(dir: &TempDir) -> Chatd {
    Chatd::start(&["--store", &dir.store_arg()]).await
}

/// Runs chatd with `args` to its end (it must not start serving) and
/// returns whether it succeeded and what it logged.
async fn run_to_end(args: &[&str]) -> (bool, String) {
    let out = timeout(
        T,
        Command::new(env!("CARGO_BIN_EXE_chatd"))
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "off"])
            .args(["--log", "warn"])
            .args(args)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("chatd ends")
    .expect("chatd runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_default_store_is_a_sqlite_file_under_chatd_data() {
    let dir = TempDir::new("default");
    let chatd = Chatd::start_with(
        &[],
        Launch {
            cwd: Some(&dir.0),
            ..Launch::default()
        },
    )
    .await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    alice
        .client
        .send(&bob.id(), "d1", text("kept"))
        .await
        .unwrap();
    drop((alice, bob));
    stop(chatd).await;
    let db = dir.0.join("chatd-data").join("chatd.db");
    assert!(db.is_file(), "{} exists", db.display());
    let conn = rusqlite::Connection::open(&db).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM messages", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
}

#[tokio::test]
async fn a_restart_keeps_users_sessions_cursors_and_history() {
    let dir = TempDir::new("restart");
    durable::a_restart_keeps_everything(&dir.store_arg()).await;
}

#[tokio::test]
async fn every_send_acknowledged_before_sigkill_is_in_the_history() {
    let dir = TempDir::new("sigkill");
    durable::every_send_acknowledged_before_sigkill_survives(&dir.store_arg()).await;
}

#[tokio::test]
async fn a_backup_in_the_middle_of_sends_holds_every_message_acknowledged_before_it() {
    let dir = TempDir::new("backup");
    let chatd = start_on(&dir).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    let burst = Burst::start(Arc::new(alice.client), bob.id(), 40, 100).await;
    let before = burst.acked();
    let copy = dir.0.join("copy.db");
    let (ok, log) = run_to_end(&[
        "--store",
        &dir.store_arg(),
        "backup",
        copy.to_str().expect("utf-8 path"),
    ])
    .await;
    assert!(ok, "chatd backup failed: {log}");
    let after = burst.finish().await;
    assert!(
        after.len() > before.len(),
        "sends went on during the backup"
    );

    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    let mut stmt = conn
        .prepare(
            "SELECT seq, client_id, CASE typeof(id) WHEN 'blob' THEN lower(substr(hex(id), 1, 8) \
             || '-' || substr(hex(id), 9, 4) || '-' || substr(hex(id), 13, 4) || '-' || \
             substr(hex(id), 17, 4) || '-' || substr(hex(id), 21)) ELSE id END FROM messages \
             ORDER BY seq",
        )
        .unwrap();
    let rows: Vec<(u64, String, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        (1..=rows.len() as u64).collect::<Vec<_>>(),
        "the copy is gap-free"
    );
    for (seq, (cid, id)) in &before {
        let row = rows
            .iter()
            .find(|r| r.0 == *seq)
            .unwrap_or_else(|| panic!("seq {seq}, acknowledged before the backup, not in it"));
        assert_eq!((&row.1, &row.2), (cid, &id.0), "seq {seq}");
    }
    // The copy serves: chatd starts on it and bob reads the history.
    drop(stmt);
    drop(conn);
    let copy_store = format!("sqlite:{}", copy.display());
    let restored = Chatd::start(&["--store", &copy_store]).await;
    let (reader, _e) = restored.connect().await;
    reader.login("bob", PASSWORD, "restored").await.unwrap();
    drop(bob);
    stop(chatd).await;
}

#[tokio::test]
async fn a_second_chatd_on_the_same_file_is_refused_and_the_first_keeps_serving() {
    let dir = TempDir::new("second");
    let chatd = start_on(&dir).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    let first = alice
        .client
        .send(&bob.id(), "s1", text("before"))
        .await
        .unwrap();

    let (ok, log) = run_to_end(&["--store", &dir.store_arg()]).await;
    assert!(!ok, "a second chatd must not serve the same file");
    assert!(
        log.contains(&dir.db().display().to_string()) && log.contains("another process holds it"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");

    // The first serves on, its seqs untouched by the second's attempt.
    let next = alice
        .client
        .send(&bob.id(), "s2", text("after"))
        .await
        .unwrap();
    assert_eq!(next.seq, first.seq + 1);
    assert_eq!(chatd.http("GET", "/readyz").await.0, 200);
    // A backup (a reader of its own, no lock) works while it serves.
    let copy = dir.0.join("copy.db");
    let (ok, log) = run_to_end(&[
        "--store",
        &dir.store_arg(),
        "backup",
        copy.to_str().expect("utf-8 path"),
    ])
    .await;
    assert!(ok, "chatd backup failed while the server runs: {log}");
    drop((alice, bob));
    stop(chatd).await;

    // Once the first has gone, the file is free again.
    let again = start_on(&dir).await;
    let (reader, _e) = again.connect().await;
    reader.login("bob", PASSWORD, "again").await.unwrap();
    stop(again).await;
}

/// Empties the WAL of the database at `db` into the file, from a
/// connection of this process (as an operator's `sqlite3` would), and
/// restarts it: every connection to the file, chatd's included, sees a new
/// WAL header at its next transaction and drops the pages it has cached.
fn checkpoint_truncate(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.busy_timeout(T).unwrap();
    let (busy, log, done): (i64, i64, i64) = conn
        .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .unwrap();
    assert_eq!((busy, log, done), (0, 0, 0), "the WAL was emptied");
}

#[tokio::test]
async fn a_file_damaged_while_serving_answers_unavailable_fails_readyz_and_keeps_no_half_message() {
    use std::os::unix::fs::FileExt as _;

    let dir = TempDir::new("damaged");
    let chatd = start_on(&dir).await;
    let alice = chatd.user("alice").await;
    let mut bob = chatd.user("bob").await;
    let first = alice
        .client
        .send(&bob.id(), "d1", text("before the damage"))
        .await
        .unwrap();
    drain(&mut bob).await;

    // Every page into the file, then every page but the first (the header
    // and the schema) overwritten with bytes that are no B-tree page: the
    // file as a failing disk or a stray writer would leave it. Root cannot
    // bypass this, and no cached page hides it: the checkpoint made every
    // connection drop its cache.
    checkpoint_truncate(&dir.db());
    let pristine = std::fs::read(dir.db()).unwrap();
    let page = usize::from(u16::from_be_bytes([pristine[16], pristine[17]]));
    assert!(pristine.len() > 2 * page, "more than one page to damage");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.db())
        .unwrap();
    file.write_all_at(&vec![0x5a; pristine.len() - page], page as u64)
        .unwrap();
    file.sync_all().unwrap();

    let r = timeout(
        T,
        alice
            .client
            .send(&bob.id(), "d2", text("on a damaged file")),
    )
    .await
    .expect("no hang on a damaged file");
    assert_eq!(server_code(r), ErrorCode::Unavailable);
    let r = timeout(T, alice.client.history(&first.conv, None, Some(50)))
        .await
        .expect("no hang");
    assert_eq!(server_code(r), ErrorCode::Unavailable, "reads fail too");
    assert_eq!(
        chatd.http("GET", "/readyz").await,
        (503, "store unavailable\n".to_owned())
    );
    assert_eq!(chatd.http("GET", "/healthz").await.0, 200, "alive");
    alice.client.ping().await.expect("the connection stays up");
    assert!(
        drain(&mut bob).await.is_empty(),
        "nothing refused was delivered"
    );

    // The file put back in place (the WAL as chatd left it: a half-written
    // message would be in it) and the caches dropped again: the server
    // serves on, and the refused message took no seq and left nothing.
    file.write_all_at(&pristine, 0).unwrap();
    file.sync_all().unwrap();
    checkpoint_truncate(&dir.db());
    assert_eq!(chatd.http("GET", "/readyz").await.0, 200, "ready again");
    let next = alice
        .client
        .send(&bob.id(), "d3", text("after the restore"))
        .await
        .unwrap();
    assert_eq!(next.seq, first.seq + 1, "the refused message took no seq");
    let stored = whole_history(&alice.client, &first.conv).await;
    assert_eq!(
        stored
            .iter()
            .map(|m| (m.seq, m.client_id.as_str()))
            .collect::<Vec<_>>(),
        [(first.seq, "d1"), (next.seq, "d3")]
    );
    drop((alice, bob));
    stop(chatd).await;
}

#[tokio::test]
async fn a_corrupt_file_is_refused_at_start_with_a_clear_error() {
    let dir = TempDir::new("corrupt");
    std::fs::write(dir.db(), vec![0x5a_u8; 64 * 1024]).unwrap();
    let (ok, log) = run_to_end(&["--store", &dir.store_arg()]).await;
    assert!(!ok, "chatd must not serve a corrupt file");
    assert!(
        log.contains("not a database") && log.contains(&dir.db().display().to_string()),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

#[tokio::test]
async fn a_database_of_a_newer_schema_is_refused_at_start() {
    let dir = TempDir::new("newer");
    let chatd = start_on(&dir).await;
    stop(chatd).await;
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    conn.execute_batch("PRAGMA user_version = 999").unwrap();
    drop(conn);
    let (ok, log) = run_to_end(&["--store", &dir.store_arg()]).await;
    assert!(!ok);
    assert!(log.contains("newer") && log.contains("999"), "{log}");
}

#[tokio::test]
async fn a_file_locked_by_another_process_is_refused_at_start_and_unavailable_while_running() {
    let dir = TempDir::new("locked");
    let chatd = start_on(&dir).await;
    stop(chatd).await;
    let holder = LockHolder::take(&dir.db()).await;
    let (ok, log) = run_to_end(&["--store", &dir.store_arg()]).await;
    assert!(!ok, "chatd must not start on a file another process locks");
    assert!(log.contains("locked"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
    holder.release().await;

    // Once the lock is gone, it starts; locked again while it runs, sends
    // answer `unavailable` (after the busy timeout) and it is not ready.
    let chatd = start_on(&dir).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    alice
        .client
        .send(&bob.id(), "l1", text("before the lock"))
        .await
        .unwrap();
    let holder = LockHolder::take(&dir.db()).await;
    let r = timeout(T, alice.client.send(&bob.id(), "l2", text("while locked")))
        .await
        .expect("no hang");
    assert_eq!(server_code(r), ErrorCode::Unavailable);
    assert_eq!(chatd.http("GET", "/readyz").await.0, 503);
    assert_eq!(chatd.http("GET", "/healthz").await.0, 200);
    holder.release().await;
    let sent = alice
        .client
        .send(&bob.id(), "l3", text("after the lock"))
        .await
        .expect("sends again once the lock is gone");
    assert_eq!(sent.seq, 2, "the refused message took no seq");
    drop((alice, bob));
    stop(chatd).await;
}

/// A second process that holds the database's write lock until released:
/// Python's own SQLite (scripts/test installs python3), another program on
/// the same file as an operator's tool would be.
struct LockHolder(tokio::process::Child);

/// Takes the write lock, says so, and keeps it until stdin closes.
const HOLD_LOCK: &str = "import sqlite3, sys\n\
c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
c.execute('BEGIN EXCLUSIVE')\n\
c.execute('UPDATE probe SET at = at + 1')\n\
print('LOCKED', flush=True)\n\
sys.stdin.readline()\n\
c.execute('ROLLBACK')\n";

impl LockHolder {
    async fn take(db: &Path) -> LockHolder {
        let mut holder = Command::new("python3")
            .arg("-c")
            .arg(HOLD_LOCK)
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(holder.stdout.take().unwrap()).lines();
        timeout(T, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("LOCKED") {
                    return;
                }
            }
            panic!("the lock holder ended without locking");
        })
        .await
        .expect("the lock holder locks");
        LockHolder(holder)
    }

    async fn release(mut self) {
        drop(self.0.stdin.take());
        let _ = timeout(T, self.0.wait()).await;
    }
}

#[tokio::test]
async fn a_full_disk_answers_unavailable_and_stores_no_half_message() {
    let dir = TempDir::new("full");
    // Accounts first, without a limit.
    let chatd = start_on(&dir).await;
    assert_eq!(chatd.http("GET", "/readyz").await.0, 200);
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    let (alice_id, bob_id) = (alice.id(), bob.id());
    drop((alice, bob));
    stop(chatd).await;
    let size = std::fs::metadata(dir.db()).unwrap().len();

    // Then a file size limit a little above what is there: writes past it
    // fail (EFBIG) as on a full disk.
    let blocks = size / 512 + 256;
    let store = dir.store_arg();
    let chatd = Chatd::start_with(
        &["--store", &store],
        Launch {
            fsize_blocks: Some(blocks),
            ..Launch::default()
        },
    )
    .await;
    let (alice, _events) = chatd.connect().await;
    alice.login("alice", PASSWORD, "full").await.unwrap();
    let big = "x".repeat(16 * 1024);
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let cid = format!("full-{i}");
        match timeout(T, alice.send(&bob_id, &cid, text(&big))).await {
            Ok(Ok(sent)) => acked.push((sent.seq, cid)),
            Ok(Err(e)) => {
                refused = Some(e);
                break;
            }
            Err(_) => panic!("a send hung on a full disk"),
        }
    }
    let refused = refused.expect("the file size limit was reached");
    assert_eq!(refused.code(), Some(ErrorCode::Unavailable), "{refused:?}");
    alice
        .ping()
        .await
        .expect("the connection stays up on a full disk");
    assert_eq!(chatd.http("GET", "/healthz").await.0, 200, "alive");
    assert_eq!(
        chatd.http("GET", "/readyz").await,
        (503, "store unavailable\n".to_owned()),
        "not ready while its writes fail"
    );
    stop(chatd).await;

    // Without the limit: everything acknowledged is there, gap-free, and
    // the refused message is not.
    let chatd = start_on(&dir).await;
    let (reader, _e) = chatd.connect().await;
    reader.login("bob", PASSWORD, "after").await.unwrap();
    let conv = reader.open_direct(&alice_id).await.unwrap().conv;
    let stored = whole_history(&reader, &conv).await;
    assert_eq!(
        stored
            .iter()
            .map(|m| (m.seq, m.client_id.clone()))
            .collect::<Vec<_>>(),
        acked
    );
    let sent = alice_after(&chatd, &bob_id).await;
    assert_eq!(sent, acked.len() as u64 + 1, "the log goes on");
}

/// Alice sends one more message after the fault; its seq.
async fn alice_after(chatd: &Chatd, bob: &UserId) -> u64 {
    let (alice, _e) = chatd.connect().await;
    alice.login("alice", PASSWORD, "again").await.unwrap();
    alice
        .send(bob, "after-the-fault", text("space again"))
        .await
        .unwrap()
        .seq
}

#[tokio::test]
async fn a_read_only_mount_is_refused_at_start_with_a_clear_error() {
    let dir = TempDir::new("mount");
    let chatd = start_on(&dir).await;
    stop(chatd).await;
    // The directory bind-mounted read-only in a mount namespace of its
    // own: root cannot write through it either.
    let d = dir.0.display().to_string();
    let probe = std::process::Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(format!(
            "mount --bind '{d}' '{d}' && mount -o remount,ro,bind '{d}' && ! touch '{d}/probe'"
        ))
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("NOTE: no read-only bind mount here (unshare -m refused): test not run");
        return;
    }
    let out = timeout(
        T,
        Command::new("unshare")
            .args(["-m", "sh", "-c"])
            .arg(format!(
                "mount --bind '{d}' '{d}' && mount -o remount,ro,bind '{d}' && exec \"$0\" \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_chatd"))
            .args([
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "off",
                "--log",
                "warn",
            ])
            .args(["--store", &dir.store_arg()])
            .arg("--mailer")
            .arg(format!(
                "dir:{}",
                std::env::temp_dir().join("e2e-ro-mail").display()
            ))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("chatd ends")
    .expect("chatd runs");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "chatd must not serve a read-only file"
    );
    assert!(
        log.to_lowercase().contains("read-only file system"),
        "{log}"
    );
    assert!(!log.contains("panicked"), "{log}");
}

/// Whether `needle` occurs in the database file or what is left of its WAL.
fn file_holds(db: &Path, needle: &str) -> bool {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    [db.to_path_buf(), PathBuf::from(wal)].iter().any(|p| {
        std::fs::read(p)
            .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap_or(false)
    })
}

#[tokio::test]
async fn a_deleted_message_and_its_edits_leave_no_copy_in_the_file() {
    use chatcore_client::chatcore::model::{Rel, RelKind};
    let dir = TempDir::new("life");
    let chatd = start_on(&dir).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    befriend(&alice, &bob).await;
    let (original, edited, kept) = (
        "the original text 7f3e91",
        "the edited text 0c55a2",
        "a reply that stays 4b1d",
    );
    // Long enough to spill into overflow pages, which a deletion frees:
    // SQLite leaves a freed page's bytes as they were unless told not to.
    let long = format!("{} {original}", "lorem ipsum ".repeat(600));
    let sent = alice.client.send_text(&bob.id(), &long).await.unwrap();
    let conv = sent.conv.clone();
    let target = sent.message_id.clone();
    alice
        .client
        .edit_text(&conv, &target, "e1", edited)
        .await
        .unwrap();
    bob.client.react(&conv, &target, "x1", "👍").await.unwrap();
    let reply = Some(Rel::new(RelKind::Reply, target.clone()));
    let text = Content::Text { text: kept.into() };
    bob.client
        .send_related(&conv, "r1", reply, Vec::new(), text)
        .await
        .unwrap();
    assert_eq!(
        server_code(bob.client.edit_text(&conv, &target, "e2", "mine").await),
        ErrorCode::Forbidden,
        "Bob cannot edit Alice's message"
    );
    // The page holding the message comes with its edit and reaction.
    let page = bob
        .client
        .history(&conv, Some(sent.seq + 1), Some(1))
        .await
        .unwrap();
    let kinds: Vec<_> = page.related.iter().map(|m| m.rel_kind()).collect();
    assert_eq!(kinds, [Some(RelKind::Edit), Some(RelKind::Reaction)]);

    alice
        .client
        .delete_message(&conv, &target, "d1")
        .await
        .unwrap();
    let page = bob.client.history(&conv, None, None).await.unwrap();
    let contents: Vec<&Content> = page.messages.iter().map(|m| &m.content).collect();
    assert_eq!(
        contents,
        [
            &Content::Deleted {},
            &Content::Deleted {},
            &Content::Deleted {},
            &Content::Text { text: kept.into() },
            &Content::Deleted {},
        ],
        "the message, its edit and its reaction are tombstones; the reply stays"
    );
    stop(chatd).await;
    // What the WAL still holds goes into the file (a clean stop did it,
    // unless a loaded machine made the stop cut it short); the WAL's old
    // frames are then cut off, as the next checkpoint does in service.
    let conn = rusqlite::Connection::open(dir.db()).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
    drop(conn);
    assert!(file_holds(&dir.db(), kept), "the scan finds a stored text");
    assert!(
        !file_holds(&dir.db(), original),
        "the original text is gone"
    );
    assert!(!file_holds(&dir.db(), edited), "the edited text is gone");
}

#[tokio::test]
async fn a_backup_copies_the_media_files_beside_the_database() {
    use chatcore_client::media::MediaClient;
    let dir = TempDir::new("backup-media");
    let chatd = start_on(&dir).await;
    let alice = chatd.user("alice").await;
    let token = alice.session.token.clone().expect("a token");
    let media = MediaClient::new(&chatd.url(), &token, &ConnectOptions::new()).unwrap();
    let bytes: Vec<u8> = (0..40_000u32).map(|i| (i % 253) as u8).collect();
    let up = media.upload(bytes.clone()).await.unwrap();
    let copy = dir.0.join("copy.db");
    let (ok, log) = run_to_end(&[
        "--store",
        &dir.store_arg(),
        "backup",
        copy.to_str().expect("utf-8 path"),
    ])
    .await;
    assert!(ok, "chatd backup failed: {log}");
    let id = up.id.as_str();
    let copied = dir.0.join("copy.db-media").join(&id[..2]).join(id);
    let on_disk = std::fs::read(&copied).expect("the file is in the backup's media directory");
    assert!(on_disk.ends_with(&bytes), "with its bytes");
    stop(chatd).await;
}

/// The media sweep on SQLite and the media directory beside it.
#[tokio::test]
async fn the_sweep_keeps_an_avatar_and_collects_the_rest() {
    let dir = TempDir::new("sweep");
    super::media::the_sweep_keeps_an_avatar_and_collects_the_rest(&["--store", &dir.store_arg()])
        .await;
}
