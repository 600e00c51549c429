//! The connections: one writer thread that commits concurrent writes in
//! groups, and a bounded pool of reader connections used on tokio's
//! blocking threads. No SQLite call ever runs on an async worker.
//!
//! # Group commit
//! Every write is a closure sent to the writer thread. The thread takes the
//! first waiting write, then every other one already queued (up to
//! [`MAX_BATCH`]), and runs them all in one `BEGIN IMMEDIATE` transaction,
//! each inside a savepoint of its own so that one write's failure (a
//! `Conflict`, a `NotMember`) undoes only that write (appends, which check
//! everything before their one change, run without one: see
//! [`Db::write_unguarded`]). One `COMMIT` (one
//! fsync of the WAL under `synchronous=FULL`) then makes the whole group
//! durable, and only then is each caller answered: an `Ok` always means
//! "on disk". When the commit fails (disk full, I/O error), every write of
//! the group is answered with the error and nothing of it is stored.
//!
//! # Checkpoints
//! A checkpoint copies the WAL's pages into the database file and fsyncs
//! it. SQLite runs it inside the commit that fills the WAL past its limit,
//! so every write waiting for the writer waited for 64 MiB to be copied:
//! that stall was most of the durable relay's p99. Here the writer's commits
//! never checkpoint the WAL whole; a thread of its own copies it, on a
//! connection of its own, in `PASSIVE` mode (it never waits for, nor holds
//! up, the writer or the readers), each time the writer's commits leave
//! [`crate::SqliteConfig::checkpoint_bytes`] of WAL. The WAL starts again
//! from its beginning only after a checkpoint that copied every frame, which
//! a thread beside a busy writer never quite makes (frames keep coming), so
//! once the thread has copied the bulk the writer finishes it between two
//! groups: a `PASSIVE` checkpoint of the few frames committed meanwhile,
//! and the next group starts the WAL again. The thread runs at the lowest
//! priority (on Linux), so that on a busy core the copying waits for the
//! writer and the connections rather than the other way round. Should the thread fall behind by
//! four times the limit (readers holding old snapshots), the writer
//! checkpoints itself, as SQLite would.

use std::cell::Cell;
use std::ffi::c_int;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatcore::store::{StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::cache::ConvCache;
use crate::error::{map_err, map_open_err};
use crate::lock::ProcessLock;

/// The most writes one transaction commits. Bounds a transaction's size
/// (and so the latency of the first write in it) under a flood.
pub(crate) const MAX_BATCH: usize = 512;

/// Writes waiting for the writer thread; a caller beyond this waits (async)
/// for room, which is the back-pressure on a disk slower than the load.
const QUEUE: usize = 4 * MAX_BATCH;

/// What the writer calls when the group's fate is known: `Some(err)` if
/// the group's commit failed.
type Done = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// A write: run on the writer's connection (`Err` when it cannot run at
/// all), it returns its completion and, when it failed, its own error.
type Job = Box<dyn FnOnce(Result<&Connection, &StoreError>) -> Done + Send>;

/// How a write run by [`Db::write_unguarded`] failed.
pub(crate) enum Unguarded {
    /// Before it changed anything: only this write fails.
    Before(StoreError),
    /// After it changed something: the whole group is rolled back.
    After(StoreError),
}

/// Tunables shared by the connections.
#[derive(Clone, Debug)]
pub(crate) struct ConnOptions {
    pub(crate) path: PathBuf,
    pub(crate) read_only: bool,
    pub(crate) busy_timeout: Duration,
    pub(crate) max_page_count: Option<u64>,
    /// The page size of a database created here (`PRAGMA page_size`);
    /// an existing file keeps its own.
    pub(crate) page_size: u32,
    /// Bytes of WAL between checkpoints (see *Checkpoints* above).
    pub(crate) checkpoint_bytes: u64,
}

thread_local! {
    /// The frames in the WAL after the last commit on this thread's
    /// connection (the writer's), as SQLite's WAL hook tells them.
    static WAL_FRAMES: Cell<c_int> = const { Cell::new(0) };
}

/// The writer's WAL hook: remembers how full the WAL is. Registering a
/// hook also turns SQLite's own checkpoints in the commit off.
fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(frames));
    Ok(())
}

/// Checkpoints the WAL when the writer asks, until the writer is gone;
/// raises `copied` after each, for the writer to finish it.
fn run_checkpointer(
    conn: Connection,
    asks: std::sync::mpsc::Receiver<()>,
    copied: &AtomicBool,
    counters: &Counters,
) {
    // Copying the WAL is background work: on a busy core the writer and the
    // connections come first (Linux: this thread's nice value, 19).
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19) {
        tracing::debug!(error = %e, "SQLite: the checkpoint thread keeps its priority");
    }
    while asks.recv().is_ok() {
        // Asks that came meanwhile are answered by this checkpoint.
        while asks.try_recv().is_ok() {}
        checkpoint(&conn, counters);
        copied.store(true, Ordering::Release);
    }
}

/// One `PASSIVE` checkpoint: as much of the WAL as no reader still needs.
fn checkpoint(conn: &Connection, counters: &Counters) {
    match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
    }) {
        Ok((frames, copied)) => {
            counters.checkpoints.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(frames, copied, "SQLite: checkpoint");
        }
        // Busy (another checkpoint) or an I/O error: the next ask tries again.
        Err(e) => tracing::warn!(error = %map_err(e), "SQLite: checkpoint failed"),
    }
}

/// Opens one connection with the pragmas every connection needs.
pub(crate) fn open_conn(o: &ConnOptions, reader: bool) -> StoreResult<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    if o.read_only {
        flags |= OpenFlags::SQLITE_OPEN_READ_ONLY;
    } else {
        flags |= OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(&o.path, flags).map_err(|e| at(&o.path, e))?;
    conn.busy_timeout(o.busy_timeout)
        .map_err(|e| at(&o.path, e))?;
    // `foreign_keys` is per connection and off by default; `synchronous`
    // too (see the crate doc for why FULL).
    // A page cache large enough for the hot pages of every busy
    // conversation (64 MiB for the writer, 16 MiB per reader).
    let cache = if reader { -16_384 } else { -65_536 };
    conn.execute_batch(&format!(
        "PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; PRAGMA cache_size = {cache};"
    ))
    .map_err(|e| at(&o.path, e))?;
    if !reader {
        // Effective only while the file is empty (a new database): every
        // page a commit touches is written whole to the WAL, and a message
        // touches a few pages (its conversation's log, the client-id index),
        // so smaller pages write fewer bytes per message.
        if !o.read_only {
            conn.execute_batch(&format!("PRAGMA page_size = {};", o.page_size))
                .map_err(|e| at(&o.path, e))?;
        }
        let page: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .map_err(|e| at(&o.path, e))?;
        // Checkpoints (copying the WAL's pages into the file, then an fsync
        // of the file) every `checkpoint_bytes` of WAL (64 MiB by default)
        // rather than SQLite's 1k pages: a
        // busy conversation's pages are written to the WAL at every commit
        // but copied once per checkpoint, so fewer checkpoints write less.
        // The WAL is cut back to that size after each. The checkpointer thread
        // runs them (see *Checkpoints*); SQLite's own, in the commit, stay
        // as the setting for a connection without that thread.
        let bytes = i64::try_from(o.checkpoint_bytes).unwrap_or(i64::MAX);
        conn.execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {bytes};",
            (bytes / page.max(512)).max(1)
        ))
        .map_err(|e| at(&o.path, e))?;
        // A deleted or expired message's content must leave the file, not
        // linger in a page's free space or a free page until something
        // reuses it: SQLite overwrites what it frees with zeros. Appends
        // free nothing, so the relay does not pay for it. Copies in the WAL
        // last until its frames are overwritten after a checkpoint (at most
        // the WAL's size limit later); a clean shutdown checkpoints and
        // removes the WAL.
        conn.execute_batch("PRAGMA secure_delete = ON;")
            .map_err(|e| at(&o.path, e))?;
    }
    if reader {
        conn.execute_batch("PRAGMA query_only = ON;")
            .map_err(|e| at(&o.path, e))?;
    }
    if let Some(pages) = o.max_page_count {
        let _: i64 = conn
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
                r.get(0)
            })
            .map_err(|e| at(&o.path, e))?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A driver error about the file at `path`, with the path in the message.
pub(crate) fn at(path: &Path, e: rusqlite::Error) -> StoreError {
    match map_open_err(e) {
        StoreError::Unavailable(m) => {
            StoreError::Unavailable(format!("SQLite database {}: {m}", path.display()))
        }
        StoreError::Corrupt(m) => {
            StoreError::Corrupt(format!("SQLite database {}: {m}", path.display()))
        }
        other => other,
    }
}

/// Counts of the writer's work since open.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) writes: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
}

/// The database files open in this process, by canonical path.
static OPEN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// This process's claim on a file: a second [`crate::SqliteStore`] on the
/// same file would have a writer and a cache of its own, and each cache
/// would miss the other's writes. Released when the store is dropped.
pub(crate) struct OpenMark(Option<PathBuf>);

impl OpenMark {
    /// Claims `path`; `Unavailable` if this process has it open already.
    /// A path that cannot be resolved (an in-memory database) is not claimed.
    pub(crate) fn claim(path: &Path) -> StoreResult<Self> {
        let Ok(canonical) = std::fs::canonicalize(path) else {
            return Ok(Self(None));
        };
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        if open.contains(&canonical) {
            return Err(StoreError::Unavailable(format!(
                "SQLite database {}: already open in this process (clone the SqliteStore instead \
                 of opening the file twice)",
                path.display()
            )));
        }
        open.push(canonical.clone());
        Ok(Self(Some(canonical)))
    }
}

impl Drop for OpenMark {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            OPEN.lock()
                .unwrap_or_else(|p| p.into_inner())
                .retain(|p| *p != path);
        }
    }
}

/// The writer thread's handle and the reader pool.
pub(crate) struct Db {
    _mark: OpenMark,
    /// Other processes kept off the file (`None`: read-only or in memory).
    _lock: Option<ProcessLock>,
    writer: mpsc::Sender<Job>,
    pub(crate) counters: Arc<Counters>,
    /// The conversations the writer knows (see `cache.rs`).
    pub(crate) cache: Arc<ConvCache>,
    readers: Mutex<Vec<Connection>>,
    read_permits: Semaphore,
    pub(crate) options: ConnOptions,
}

impl Db {
    /// Starts the writer thread on `writer` (already migrated) and keeps
    /// `readers` for the reads.
    pub(crate) fn start(
        mark: OpenMark,
        lock: Option<ProcessLock>,
        writer: Connection,
        readers: Vec<Connection>,
        options: ConnOptions,
    ) -> StoreResult<Arc<Self>> {
        let (tx, rx) = mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let counted = counters.clone();
        let cache = Arc::new(ConvCache::default());
        let cached = cache.clone();
        // A database in memory has no WAL: SQLite's own settings stand.
        let checkpointer = if options.read_only || !options.path.is_file() {
            None
        } else {
            let conn = Connection::open_with_flags(
                &options.path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| at(&options.path, e))?;
            conn.busy_timeout(options.busy_timeout)
                .map_err(|e| at(&options.path, e))?;
            let page: i64 = writer
                .query_row("PRAGMA page_size", [], |r| r.get(0))
                .map_err(|e| at(&options.path, e))?;
            writer.wal_hook(Some(note_wal_frames));
            let (asks, asked) = std::sync::mpsc::sync_channel(1);
            let counted = counters.clone();
            let copied = Arc::new(AtomicBool::new(false));
            let told = copied.clone();
            let thread = std::thread::Builder::new()
                .name("chatcore-sqlite-checkpoint".to_owned())
                .spawn(move || run_checkpointer(conn, asked, &told, &counted))
                .map_err(|e| {
                    StoreError::Unavailable(format!("cannot start the checkpoint thread: {e}"))
                })?;
            let bytes = i64::try_from(options.checkpoint_bytes).unwrap_or(i64::MAX);
            let frames = c_int::try_from((bytes / page.max(512)).max(1)).unwrap_or(c_int::MAX);
            Some(Checkpointer {
                asks,
                thread,
                frames,
                copied,
                asked: Cell::new(false),
            })
        };
        std::thread::Builder::new()
            .name("chatcore-sqlite-writer".to_owned())
            .spawn(move || run_writer(writer, rx, checkpointer, &counted, &cached))
            .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
        Ok(Arc::new(Self {
            _mark: mark,
            _lock: lock,
            writer: tx,
            counters,
            cache,
            read_permits: Semaphore::new(readers.len().max(1)),
            readers: Mutex::new(readers),
            options,
        }))
    }

    /// Runs `f` on the writer's connection inside the current group's
    /// transaction and returns its result once the group is committed.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        self.submit(move |conn| in_savepoint(conn, f)).await
    }

    /// [`Db::write`] without the write's own savepoint, for a write that
    /// makes one change, after every check (the append): a savepoint copies
    /// every page the write touches into SQLite's sub-journal first, which
    /// the profile of the relay showed as a large part of an append's cost.
    /// `f` says whether it failed before changing anything (the rest of the
    /// group stands, as with a savepoint) or after: its change cannot be
    /// undone alone, so the whole group is rolled back and every write in it
    /// answered with the error, as when a commit fails.
    pub(crate) async fn write_unguarded<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, Unguarded> + Send + 'static,
    {
        self.submit(move |conn| match f(conn) {
            Ok(v) => Ok(v),
            Err(Unguarded::Before(e)) => Err(e),
            Err(Unguarded::After(e)) => {
                if !conn.is_autocommit() {
                    // The writer sees the transaction gone and fails the group.
                    let _ = conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        })
        .await
    }

    /// Queues `run` for the writer thread and waits for its group's fate.
    async fn submit<T, F>(&self, run: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<StoreResult<T>>();
        let cache = self.cache.clone();
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => {
                    cache.job_started();
                    let result = run(conn);
                    if result.is_err() {
                        cache.job_failed();
                    }
                    result
                }
                Err(e) => Err(e.clone()),
            };
            Box::new(move |commit: Option<&StoreError>| {
                let answer = match commit {
                    Some(e) => Err(e.clone()),
                    None => result,
                };
                // The caller may have gone (a cancelled request): the
                // write stands all the same.
                let _ = tx.send(answer);
            })
        });
        self.writer
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite writer has stopped".into()))?;
        rx.await.map_err(|_| {
            StoreError::Unavailable("the SQLite writer stopped before answering".into())
        })?
    }

    /// Runs `f` on a reader connection, in one read transaction (one
    /// consistent snapshot), on a blocking thread.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let permit = self
            .read_permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the SQLite store is closed".into()))?;
        let db = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let pooled = db.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
            // A connection lost to a panic is replaced.
            let conn = match pooled {
                Some(c) => c,
                None => open_conn(&db.options, true)?,
            };
            let result = in_read_txn(&conn, f);
            db.readers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("a SQLite read failed: {e}")))?;
        drop(permit);
        result
    }
}

fn in_read_txn<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    exec(conn, "BEGIN").map_err(map_err)?;
    let result = f(conn);
    // A read transaction has nothing to keep: end it whatever happened.
    if !conn.is_autocommit() {
        let _ = exec(conn, "COMMIT");
    }
    result
}

/// Runs one write inside a savepoint: on `Err` its changes are undone and
/// the rest of the group stands.
fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    exec(conn, "SAVEPOINT w").map_err(map_err)?;
    let result = f(conn);
    if conn.is_autocommit() {
        // SQLite rolled the whole transaction back (disk full, I/O
        // error): the writer sees it and fails the group.
        return result;
    }
    if result.is_err() {
        exec(conn, "ROLLBACK TO w").map_err(map_err)?;
    }
    exec(conn, "RELEASE w").map_err(map_err)?;
    result
}

/// Runs one transaction-control statement from the statement cache (they
/// run several times per write: parsing each time would cost more than
/// the write).
fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The writer's side of the checkpoint thread.
struct Checkpointer {
    asks: std::sync::mpsc::SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
    /// WAL frames past which the writer asks for a checkpoint.
    frames: c_int,
    /// Raised by the thread after each checkpoint.
    copied: Arc<AtomicBool>,
    /// A checkpoint was asked for and not finished by the writer yet.
    asked: Cell<bool>,
}

impl Checkpointer {
    /// After a commit: asks the thread for a checkpoint when the WAL is
    /// full enough; once it has copied the bulk, finishes it here (the few
    /// frames committed meanwhile), so that the next group starts the WAL
    /// again; checkpoints here whole when the thread is far behind.
    fn after_commit(&self, conn: &Connection, counters: &Counters) {
        let frames = WAL_FRAMES.with(Cell::get);
        if frames < self.frames {
            // Started again: the next fill asks anew.
            self.asked.set(false);
            return;
        }
        if !self.asked.get() {
            self.copied.store(false, Ordering::Relaxed);
            if self.asks.try_send(()).is_ok() {
                self.asked.set(true);
            }
            return;
        }
        if self.copied.swap(false, Ordering::Acquire) || frames >= self.frames.saturating_mul(4) {
            checkpoint(conn, counters);
            self.asked.set(false);
        }
    }
}

/// The writer thread: groups, transactions, commits, answers.
fn run_writer(
    conn: Connection,
    mut rx: mpsc::Receiver<Job>,
    checkpointer: Option<Checkpointer>,
    counters: &Counters,
    cache: &ConvCache,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let mut done: Vec<Done> = Vec::with_capacity(batch.len());
        let mut in_txn = false;
        for job in batch {
            if !in_txn {
                match exec(&conn, "BEGIN IMMEDIATE") {
                    Ok(()) => in_txn = true,
                    Err(e) => {
                        let err = map_err(e);
                        tracing::warn!(error = %err, "SQLite: cannot begin a write");
                        job(Err(&err))(None);
                        continue;
                    }
                }
            }
            done.push(job(Ok(&conn)));
            if conn.is_autocommit() {
                // The transaction is gone with everything in it.
                let err = StoreError::Unavailable(
                    "SQLite rolled the group's writes back (disk full, I/O error or a damaged \
                     file)"
                        .into(),
                );
                tracing::warn!(error = %err, writes = done.len(), "SQLite: group lost");
                cache.aborted();
                for d in done.drain(..) {
                    d(Some(&err));
                }
                in_txn = false;
            }
        }
        if !in_txn {
            continue;
        }
        match exec(&conn, "COMMIT") {
            Ok(()) => {
                // Published before anyone is answered: a caller that saw
                // its write succeed reads it back.
                cache.committed();
                counters.commits.fetch_add(1, Ordering::Relaxed);
                counters
                    .writes
                    .fetch_add(done.len() as u64, Ordering::Relaxed);
                for d in done {
                    d(None);
                }
                if let Some(c) = &checkpointer {
                    c.after_commit(&conn, counters);
                }
            }
            Err(e) => {
                let err = map_err(e);
                tracing::warn!(error = %err, writes = done.len(), "SQLite: commit failed");
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                for d in done {
                    d(Some(&err));
                }
            }
        }
    }
    // Every handle is gone: the checkpointer stops first, so that closing
    // the writer's connection, the last, checkpoints the WAL and removes it.
    if let Some(c) = checkpointer {
        drop(c.asks);
        let _ = c.thread.join();
    }
    drop(conn);
}
