//! chatd on the SQLite store (chatcore-sqlite), on real files in
//! temporary directories: restarts, SIGKILL in the middle of sends, the
//! online backup, the default data directory, and the faults of a file
//! that is corrupt, locked by another process, or on a full disk.

use super::*;
use chatcore_sqlite::rusqlite;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

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

/// SIGTERM, then wait for a clean exit.
async fn stop(mut chatd: Chatd) {
    chatd.terminate();
    let exit = timeout(T, chatd.child.wait())
        .await
        .expect("chatd exits")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
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

/// The id of an existing user.
async fn session_user(chatd: &Chatd, name: &str) -> UserId {
    let (c, _e) = chatd.connect().await;
    c.login(name, PASSWORD, "lookup").await.expect("login").user
}

/// Sends from `sender` to `to` on 16 tasks until `stop` says so or a
/// send fails; every acknowledged send lands in the returned map (seq ->
/// client id, message id). Returns once `at_least` are acknowledged, with
/// the tasks still running.
struct Burst {
    acked: Arc<Mutex<BTreeMap<u64, (String, chatcore_client::chatcore::model::MessageId)>>>,
    count: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Burst {
    async fn start(client: Arc<Client>, to: UserId, per_task: usize, at_least: usize) -> Burst {
        let acked = Arc::new(Mutex::new(BTreeMap::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let tasks = (0..16)
            .map(|worker| {
                let (client, acked, count, to) =
                    (client.clone(), acked.clone(), count.clone(), to.clone());
                tokio::spawn(async move {
                    for i in 0..per_task {
                        let cid = format!("burst-{worker}-{i}");
                        match client.send(&to, &cid, text(&cid)).await {
                            Ok(sent) => {
                                acked
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .insert(sent.seq, (cid, sent.message_id));
                                count.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(_) => return,
                        }
                    }
                })
            })
            .collect();
        let burst = Burst {
            acked,
            count,
            tasks,
        };
        timeout(T, async {
            while burst.count.load(Ordering::SeqCst) < at_least {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("sends acknowledged");
        burst
    }

    fn acked(&self) -> BTreeMap<u64, (String, chatcore_client::chatcore::model::MessageId)> {
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn finish(self) -> BTreeMap<u64, (String, chatcore_client::chatcore::model::MessageId)> {
        for task in self.tasks {
            timeout(T, task)
                .await
                .expect("sender ends")
                .expect("sender task");
        }
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The whole history of `conv` as `reader` sees it, checked gap-free and
/// holding each client id once.
async fn whole_history(
    reader: &Client,
    conv: &ConversationId,
) -> Vec<chatcore_client::chatcore::model::Message> {
    let mut stored = Vec::new();
    let mut before = None;
    loop {
        let page = reader.history(conv, before, Some(200)).await.unwrap();
        before = page.messages.first().map(|m| m.seq);
        let more = page.more;
        stored.splice(0..0, page.messages);
        if !more {
            break;
        }
    }
    let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "gap-free"
    );
    let mut cids: Vec<&str> = stored.iter().map(|m| m.client_id.as_str()).collect();
    cids.sort_unstable();
    cids.dedup();
    assert_eq!(cids.len(), stored.len(), "each client id once");
    stored
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
    let chatd = start_on(&dir).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    let bob_token = bob.session.token.clone().expect("token");
    let first = alice
        .client
        .send(&bob.id(), "r1", text("before the restart"))
        .await
        .unwrap();
    alice
        .client
        .send(&bob.id(), "r2", text("also before"))
        .await
        .unwrap();
    bob.client.ack(&first.conv, first.seq).await.unwrap();
    drop((alice, bob));
    stop(chatd).await;

    let chatd = start_on(&dir).await;
    let (bob, _bob_events) = chatd.connect().await;
    bob.resume(&bob_token)
        .await
        .expect("the session survived the restart");
    let page = bob.sync(None).await.unwrap();
    assert_eq!(
        page.messages
            .iter()
            .map(|m| (m.seq, text_of(&m.content)))
            .collect::<Vec<_>>(),
        [(2, "also before")],
        "the device cursor survived: only the unacknowledged message is synced"
    );
    let (alice, _alice_events) = chatd.connect().await;
    alice
        .login("alice", PASSWORD, "laptop")
        .await
        .expect("the account survived");
    let third = alice
        .send(&bob.user().expect("signed in"), "r3", text("after"))
        .await
        .unwrap();
    assert_eq!(third.seq, 3, "the conversation's sequence continues");
    let (again, _e) = chatd.connect().await;
    let mut dup = registration("alice");
    dup.phone = "+449900000001".into();
    assert_eq!(
        server_code(again.register(&dup).await),
        ErrorCode::Conflict,
        "unique keys survived"
    );
}

#[tokio::test]
async fn every_send_acknowledged_before_sigkill_is_in_the_history() {
    let dir = TempDir::new("sigkill");
    let mut chatd = start_on(&dir).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    let bob_id = bob.id();
    let burst = Burst::start(Arc::new(alice.client), bob_id.clone(), 25, 60).await;
    chatd.child.start_kill().expect("SIGKILL");
    let _ = chatd.child.wait().await;
    let acked = burst.finish().await;
    assert!(
        acked.len() >= 60 && acked.len() < 400,
        "{} acknowledged",
        acked.len()
    );

    let chatd = start_on(&dir).await;
    let (reader, _events) = chatd.connect().await;
    reader
        .login("bob", PASSWORD, "after the crash")
        .await
        .unwrap();
    let alice_id = session_user(&chatd, "alice").await;
    let conv = reader.open_direct(&alice_id).await.unwrap().conv;
    let stored = whole_history(&reader, &conv).await;
    for (seq, (cid, id)) in &acked {
        let m = stored
            .iter()
            .find(|m| m.seq == *seq)
            .unwrap_or_else(|| panic!("acknowledged seq {seq} lost"));
        assert_eq!((&m.client_id, &m.id), (cid, id), "seq {seq}");
    }
    drop(bob);
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
        .prepare("SELECT seq, client_id, id FROM messages ORDER BY seq")
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
