//! # chatcore-sqlite
//!
//! SQLite implementations of chatcore's store traits: users, sessions,
//! reset tokens, messages, contacts, presence, reports, the key directory,
//! the to-device queues, the rate limiter and the calls going on, in one
//! database file. They behave exactly like chatcore's in-memory reference
//! stores and pass the same conformance suite and model tests; the broker
//! and the mailer are not storage and stay whatever the caller chose. This
//! is the durable store of a single node (chatd's default); MongoDB
//! (`chatcore-mongo`) is the store of several.
//!
//! ```
//! use chatcore::{Backends, Config, Server};
//! use chatcore_sqlite::SqliteStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir().join(format!("chatcore-sqlite-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! // Creates the file if needed and brings its schema up to date.
//! let store = SqliteStore::open(dir.join("chat.db")).await?;
//! let server = Server::new(store.backends(Backends::memory()), Config::default())?;
//! # let _ = server;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! # Durability and speed
//! - WAL journal, `synchronous = FULL`: a commit returns only after the
//!   WAL is fsynced, so an acknowledged message survives a power loss, not
//!   only a crash of the process. (`NORMAL` would lose the last commits on a
//!   power cut, which breaks "acknowledged means stored".)
//! - `foreign_keys = ON`; tables are `STRICT`.
//! - One writer thread owns the only writing connection and commits
//!   concurrent writes in groups: every write already queued when a
//!   transaction starts joins it, so one fsync serves them all (group
//!   commit, see `db.rs`). That is what makes a durable relay fast.
//! - Reads run on a bounded pool of reader connections on tokio's blocking
//!   threads; WAL lets them read while the writer writes. No SQLite call
//!   runs on an async worker.
//! - The writer keeps the conversations it touched in memory (it is the
//!   only writer of the file): an append reads no state back, and
//!   `MessageStore::conversation` is answered from the committed copy.
//! - Checkpoints every 16k WAL pages: a hot page goes to the WAL at every
//!   commit but into the file once per checkpoint.
//! - The rate limiter's spend budgets (charged on every send, meaningful
//!   for a minute) stay in memory; failed-login windows are stored.
//!
//! Why rusqlite and not sqlx: rusqlite's synchronous API on a thread of its
//! own is exactly the shape group commit needs (one connection, a loop that
//! drains a queue into one transaction), it bundles SQLite (no system
//! library, the same version everywhere) and exposes the online backup
//! API, and it ties the store to no async runtime; sqlx would run the same
//! blocking calls on threads of its own behind an async pool that commits
//! every write separately.
//!
//! # Schema
//! A numbered list of SQL steps (`schema.rs`) applied at open in one
//! transaction; `PRAGMA user_version` is the schema version and a database
//! written by a newer build is refused with `StoreError::Incompatible`, as
//! chatcore-mongo does. Only one process may serve a database file at a
//! time (the writer's cache assumes it, and presence forgets the previous
//! process's connections at open): a store that writes holds an exclusive
//! lock on `PATH-lock` beside the file, and a second one is refused at open
//! with `Unavailable` ("another process holds it"). [`backup`] and
//! read-only tools may read the file meanwhile.
//!
//! # Layout
//! - this file: [`SqliteStore`] (open, hand-out of the stores, online
//!   backup) and [`SqliteConfig`].
//! - `db`: the writer thread with group commit, the reader pool.
//! - `lock`: the lock file that keeps a second process off the database.
//! - `cache`: the conversations the writer knows, so that appends and
//!   reads of a conversation's state do not read it back from the file.
//! - `ids`: how the log stores message and user ids (UUIDs as 16 bytes).
//! - `error`: the one mapping of SQLite errors to [`StoreError`].
//! - `schema`: the migration steps and the version check.
//! - `users`: [`SqliteUserStore`].
//! - `sessions`: [`SqliteSessionStore`] and [`SqliteResetTokenStore`].
//! - `messages`: [`SqliteMessageStore`]: conversations, the log, cursors,
//!   read markers, receipts (one row per conversation and member, raised
//!   in the same write as the cursor or marker), unread counts.
//! - `contacts`: [`SqliteContactStore`].
//! - `presence`: [`SqlitePresenceStore`].
//! - `reports`: [`SqliteReportStore`].
//! - `keys`: [`SqliteKeyStore`], the key directory.
//! - `to_device`: [`SqliteToDeviceStore`], the to-device queues.
//! - `backups`: [`SqliteBackupStore`], the encrypted key backups.
//! - `limiter`: [`SqliteRateLimiter`].
//! - `calls`: [`SqliteCallStore`], the calls going on (their sides are
//!   marked gone at open: the previous process's connections are gone).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chatcore::store::{StoreError, StoreResult};
use chatcore::Backends;
use rusqlite::OpenFlags;

mod backups;
mod cache;
mod calls;
mod contacts;
mod db;
mod error;
mod ids;
mod keys;
mod limiter;
mod lock;
mod messages;
mod presence;
mod reports;
mod schema;
mod sessions;
mod to_device;
mod users;

pub use backups::SqliteBackupStore;
pub use calls::SqliteCallStore;
pub use contacts::SqliteContactStore;
pub use keys::SqliteKeyStore;
pub use limiter::SqliteRateLimiter;
pub use messages::SqliteMessageStore;
pub use presence::SqlitePresenceStore;
pub use reports::SqliteReportStore;
pub use rusqlite;
pub use schema::SCHEMA_VERSION;
pub use sessions::{SqliteResetTokenStore, SqliteSessionStore};
pub use to_device::SqliteToDeviceStore;
pub use users::SqliteUserStore;

use db::{at, open_conn, ConnOptions, Db};
use error::map_err;

/// How much room [`SqliteStore::ping`] checks for: as much as a large
/// message takes (chatd's frames are at most 64 KiB).
pub const PROBE_BYTES: usize = 64 * 1024;

/// The page size of new databases (see [`SqliteConfig::page_size`]).
pub const DEFAULT_PAGE_SIZE: u32 = 4096;

/// The default of [`SqliteConfig::checkpoint_bytes`]: 64 MiB.
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;

/// Tunables. Start from `SqliteConfig::default()` and change fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SqliteConfig {
    /// Reader connections (reads beyond this wait for one).
    pub readers: usize,
    /// How long a statement waits for a lock another process holds before
    /// failing with `Unavailable`.
    pub busy_timeout: Duration,
    /// Caps the database's size in pages (`PRAGMA max_page_count`): writes
    /// beyond it fail with `Unavailable`, as on a full disk. `None`: no cap.
    pub max_page_count: Option<u64>,
    /// Opens the file read-only. Every write then fails; a database that
    /// needs its schema written (a new or older one) fails to open.
    pub read_only: bool,
    /// The page size in bytes (a power of two from 512 to 65536) of a
    /// database this opens empty; an existing file keeps the one it was made
    /// with. See the crate documentation for the default.
    pub page_size: u32,
    /// Bytes of WAL after which a checkpoint copies them into the file, on
    /// a thread of its own (the writer's commits never wait for it).
    /// Fewer, larger checkpoints write less in all (a busy page is copied
    /// once per checkpoint); the WAL file grows to about this size.
    pub checkpoint_bytes: u64,
}

impl Default for SqliteConfig {
    fn default() -> Self {
        Self {
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            max_page_count: None,
            read_only: false,
            page_size: DEFAULT_PAGE_SIZE,
            checkpoint_bytes: DEFAULT_CHECKPOINT_BYTES,
        }
    }
}

/// An open database file, from which the stores are made. Cheap to clone;
/// every clone and every store shares the writer thread and the readers.
/// The writer thread ends when the last of them is dropped.
#[derive(Clone)]
pub struct SqliteStore {
    db: Arc<Db>,
    /// The spend budgets of the rate limiter (in memory: see `limiter.rs`).
    budgets: Arc<chatcore::memory::MemoryRateLimiter>,
}

impl SqliteStore {
    /// Opens (creating it if needed) the database at `path` with the
    /// default [`SqliteConfig`]; see [`SqliteStore::open_with`].
    pub async fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Self::open_with(path, SqliteConfig::default()).await
    }

    /// Opens the database at `path` (its directory must exist), switches
    /// it to WAL, applies the missing schema steps and starts the writer.
    /// Errors say what is wrong with the file: `Corrupt` when it is not a
    /// database or is damaged, `Incompatible` when a newer build or another
    /// program wrote it, `Unavailable` when another process serves it (see
    /// the crate doc) or it is locked by another
    /// process, read-only, or the disk is full.
    pub async fn open_with(path: impl AsRef<Path>, config: SqliteConfig) -> StoreResult<Self> {
        let options = ConnOptions {
            path: path.as_ref().to_path_buf(),
            read_only: config.read_only,
            busy_timeout: config.busy_timeout,
            max_page_count: config.max_page_count,
            page_size: config.page_size,
            checkpoint_bytes: config.checkpoint_bytes.max(1),
        };
        let readers = config.readers.max(1);
        let db = tokio::task::spawn_blocking(move || open_blocking(options, readers))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening SQLite failed: {e}")))??;
        Ok(Self {
            db,
            budgets: Arc::new(chatcore::memory::MemoryRateLimiter::new()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.db.options.path
    }

    /// Round-trips a write through the writer thread (for readiness
    /// probes): fails while the file is locked by another process,
    /// read-only, or failing I/O, when there is no room for a write of
    /// [`PROBE_BYTES`] (in the database, as `max_page_count` counts it, and
    /// in the WAL, as the disk does), or when the writer has stopped.
    pub async fn ping(&self) -> StoreResult<()> {
        self.db
            .write(|c| {
                let bytes = PROBE_BYTES as i64;
                c.execute(
                    "INSERT INTO probe (at, pad) VALUES (-1, zeroblob(?1))",
                    [bytes],
                )
                .and_then(|_| c.execute("DELETE FROM probe WHERE at = -1", []))
                .and_then(|_| {
                    c.execute("UPDATE probe SET at = at + 1, pad = zeroblob(?1)", [bytes])
                })
                .map_err(map_err)?;
                Ok(())
            })
            .await
    }

    /// How many writes, commits and checkpoints the writer has made since
    /// open: writes over commits is the mean size of a commit group.
    pub fn write_stats(&self) -> WriteStats {
        use std::sync::atomic::Ordering;
        WriteStats {
            writes: self.db.counters.writes.load(Ordering::Relaxed),
            commits: self.db.counters.commits.load(Ordering::Relaxed),
            checkpoints: self.db.counters.checkpoints.load(Ordering::Relaxed),
        }
    }

    /// Writes a consistent copy of the live database to `dest` (see
    /// [`backup`]) while the stores keep serving.
    pub async fn backup_to(&self, dest: impl AsRef<Path>) -> StoreResult<BackupReport> {
        backup(self.path().to_path_buf(), dest.as_ref().to_path_buf()).await
    }

    /// The account store.
    pub fn users(&self) -> SqliteUserStore {
        SqliteUserStore::new(self.db.clone())
    }

    /// The session-token store.
    pub fn sessions(&self) -> SqliteSessionStore {
        SqliteSessionStore::new(self.db.clone())
    }

    /// The password-reset token store.
    pub fn resets(&self) -> SqliteResetTokenStore {
        SqliteResetTokenStore::new(self.db.clone())
    }

    /// The message store.
    pub fn messages(&self) -> SqliteMessageStore {
        SqliteMessageStore::new(self.db.clone())
    }

    /// The contact store: relations, requests, blocks.
    pub fn contacts(&self) -> SqliteContactStore {
        SqliteContactStore::new(self.db.clone())
    }

    /// The presence store.
    pub fn presence(&self) -> SqlitePresenceStore {
        SqlitePresenceStore::new(self.db.clone())
    }

    /// The key directory (end-to-end encryption).
    pub fn keys(&self) -> SqliteKeyStore {
        SqliteKeyStore::new(self.db.clone())
    }

    /// The to-device queues (end-to-end encryption).
    pub fn to_device(&self) -> SqliteToDeviceStore {
        SqliteToDeviceStore::new(self.db.clone())
    }

    /// The encrypted key backups (end-to-end encryption).
    pub fn backups(&self) -> SqliteBackupStore {
        SqliteBackupStore::new(self.db.clone())
    }

    /// The store of users' reports.
    pub fn reports(&self) -> SqliteReportStore {
        SqliteReportStore::new(self.db.clone())
    }

    /// The rate limiter.
    pub fn limiter(&self) -> SqliteRateLimiter {
        SqliteRateLimiter::new(self.db.clone(), self.budgets.clone())
    }

    /// The calls going on.
    pub fn calls(&self) -> SqliteCallStore {
        SqliteCallStore::new(self.db.clone())
    }

    /// `base` with every storage backend replaced by this database's: users,
    /// sessions, reset tokens, messages, contacts, presence, reports, the
    /// key directory, the to-device queues, the key backups, the rate limiter and the calls. The broker,
    /// the mailer and the media (`blobs`: files, not rows; chatd puts a filesystem store beside
    /// the database) are kept from `base`.
    pub fn backends(&self, base: Backends) -> Backends {
        let mut b = base;
        b.users = Arc::new(self.users());
        b.sessions = Arc::new(self.sessions());
        b.resets = Arc::new(self.resets());
        b.messages = Arc::new(self.messages());
        b.contacts = Arc::new(self.contacts());
        b.presence = Arc::new(self.presence());
        b.reports = Arc::new(self.reports());
        b.keys = Arc::new(self.keys());
        b.to_device = Arc::new(self.to_device());
        b.backups = Arc::new(self.backups());
        b.limiter = Arc::new(self.limiter());
        b.calls = Arc::new(self.calls());
        b
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.db.options.path)
            .finish_non_exhaustive()
    }
}

fn open_blocking(options: ConnOptions, readers: usize) -> StoreResult<Arc<Db>> {
    open_db(&options, readers).map_err(|e| match (e, writable(&options)) {
        (StoreError::Unavailable(m), Err(why)) => StoreError::Unavailable(format!("{m} ({why})")),
        (e, _) => e,
    })
}

/// Whether the file (when it exists) can be opened for writing: SQLite's
/// own error on a read-only mount ("unable to open database file") does
/// not say why.
fn writable(options: &ConnOptions) -> Result<(), String> {
    if options.read_only || !options.path.exists() {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .append(true)
        .open(&options.path)
        .map(|_| ())
        .map_err(|e| format!("the file cannot be written: {e}"))
}

fn open_db(options: &ConnOptions, readers: usize) -> StoreResult<Arc<Db>> {
    let options = options.clone();
    let writer = open_conn(&options, false)?;
    let path = options.path.clone();
    let mark = db::OpenMark::claim(&path)?;
    // Before anything is written (the migration forgets presence): a
    // second process serving the file would corrupt the writer's cache.
    let lock = if options.read_only {
        None
    } else {
        lock::ProcessLock::take(&path)?
    };
    // First the schema: on a file that cannot be written it fails with
    // SQLite's own words (read-only, locked, full).
    schema::migrate(&writer).map_err(|e| in_file(&path, e))?;
    let mode: String = writer
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(|e| at(&path, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "SQLite database {}: cannot switch to WAL (journal mode {mode})",
            path.display()
        )));
    }
    let readers = (0..readers)
        .map(|_| open_conn(&options, true))
        .collect::<StoreResult<Vec<_>>>()?;
    Db::start(mark, lock, writer, readers, options)
}

/// `e` with the file's path in its message.
fn in_file(path: &Path, e: StoreError) -> StoreError {
    let p = path.display();
    match e {
        StoreError::Unavailable(m) => StoreError::Unavailable(format!("SQLite database {p}: {m}")),
        StoreError::Corrupt(m) => StoreError::Corrupt(format!("SQLite database {p}: {m}")),
        StoreError::Incompatible(m) => {
            StoreError::Incompatible(format!("SQLite database {p}: {m}"))
        }
        other => other,
    }
}

/// See [`SqliteStore::write_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteStats {
    /// Writes committed.
    pub writes: u64,
    /// Transactions committed (each one fsync of the WAL).
    pub commits: u64,
    /// Checkpoints made (the WAL's pages copied into the file), by the
    /// checkpoint thread or, when it falls far behind, by the writer.
    pub checkpoints: u64,
}

/// What [`backup`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackupReport {
    /// The copy.
    pub path: PathBuf,
    /// Its size in pages.
    pub pages: u64,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Copies the chatcore database at `source` to `dest` with SQLite's online
/// backup API, while another process (or this one) keeps writing to it.
///
/// The copy is one read transaction's snapshot: it holds every write
/// committed (so every message acknowledged) before the copy started, and
/// nothing half-written. Writers are not blocked meanwhile (WAL). The copy
/// is written to `dest` plus `.partial`, checked with `PRAGMA
/// integrity_check`, and only then renamed to `dest`, so `dest` is either
/// absent or a whole, sound database. `source` is opened without creating
/// it and never written (no migration either): a database of a newer
/// schema is copied as it is.
pub async fn backup(source: PathBuf, dest: PathBuf) -> StoreResult<BackupReport> {
    tokio::task::spawn_blocking(move || backup_blocking(&source, &dest))
        .await
        .map_err(|e| StoreError::Unavailable(format!("the backup failed: {e}")))?
}

fn backup_blocking(source: &Path, dest: &Path) -> StoreResult<BackupReport> {
    let src = rusqlite::Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| at(source, e))?;
    src.busy_timeout(Duration::from_secs(5))
        .map_err(|e| at(source, e))?;
    src.execute_batch("PRAGMA query_only = ON")
        .map_err(|e| at(source, e))?;
    let app: i64 = src
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(|e| at(source, e))?;
    if app != schema::APPLICATION_ID {
        return Err(StoreError::Incompatible(format!(
            "{} is not a chatcore database (application_id {app:#x})",
            source.display()
        )));
    }
    let mut partial = dest.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // A partial copy left by an earlier failed run is worthless.
    let _ = std::fs::remove_file(&partial);
    let mut dst = rusqlite::Connection::open(&partial).map_err(|e| at(&partial, e))?;
    {
        let copy = rusqlite::backup::Backup::new(&src, &mut dst).map_err(|e| at(&partial, e))?;
        // Every page in one step: one read transaction, one snapshot. Copying
        // in several steps would restart whenever the server commits.
        // A lock held by a writer of the source (outside WAL mode) is
        // waited for a bounded number of times.
        let mut waits = 0;
        loop {
            match copy.step(-1).map_err(|e| at(&partial, e))? {
                rusqlite::backup::StepResult::Done => break,
                rusqlite::backup::StepResult::More => {}
                _ if waits < 100 => {
                    waits += 1;
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => {
                    return Err(StoreError::Unavailable(format!(
                        "{} stayed locked by another connection: no copy made",
                        source.display()
                    )))
                }
            }
        }
    }
    let check: String = dst
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| at(&partial, e))?;
    if check != "ok" {
        return Err(StoreError::Corrupt(format!(
            "the copy {} fails integrity_check: {check}",
            partial.display()
        )));
    }
    let pages: i64 = dst
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .map_err(|e| at(&partial, e))?;
    drop(dst);
    std::fs::rename(&partial, dest).map_err(|e| {
        StoreError::Unavailable(format!("cannot move the copy to {}: {e}", dest.display()))
    })?;
    let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        path: dest.to_path_buf(),
        pages: u64::try_from(pages).unwrap_or(0),
        bytes,
    })
}

/// A seq, count or time as SQLite's INTEGER: values beyond `i64::MAX`
/// saturate (no seq gets near it).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored INTEGER back to a seq; negative means the file was edited by hand.
pub(crate) fn to_u64(v: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

/// A `LIMIT`: larger than `i64::MAX` means everything.
pub(crate) fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A stored value as JSON text.
pub(crate) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> StoreResult<String> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A stored JSON column decoded; `Corrupt` (naming the column) if it does not fit.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// Compile-time proof that every store implements its trait as a `dyn` object.
#[allow(dead_code)]
fn _assert_object_safe(s: &SqliteStore) {
    use chatcore::store::{
        BackupStore, CallStore, ContactStore, KeyStore, MessageStore, PresenceStore, RateLimiter,
        ReportStore, ResetTokenStore, SessionStore, ToDeviceStore, UserStore,
    };
    let _: Arc<dyn ReportStore> = Arc::new(s.reports());
    let _: Arc<dyn KeyStore> = Arc::new(s.keys());
    let _: Arc<dyn ToDeviceStore> = Arc::new(s.to_device());
    let _: Arc<dyn BackupStore> = Arc::new(s.backups());
    let _: Arc<dyn UserStore> = Arc::new(s.users());
    let _: Arc<dyn SessionStore> = Arc::new(s.sessions());
    let _: Arc<dyn ResetTokenStore> = Arc::new(s.resets());
    let _: Arc<dyn MessageStore> = Arc::new(s.messages());
    let _: Arc<dyn ContactStore> = Arc::new(s.contacts());
    let _: Arc<dyn PresenceStore> = Arc::new(s.presence());
    let _: Arc<dyn RateLimiter> = Arc::new(s.limiter());
    let _: Arc<dyn CallStore> = Arc::new(s.calls());
}
