//! One serving process per database file, across processes.
//!
//! The writer keeps what it knows of conversations (heads, members) in
//! memory because it is the only writer of the file. A second process
//! serving the same file would have a writer and a cache of its own; each
//! would miss the other's appends and hand out the same seqs twice. So a
//! store that writes takes an exclusive `flock` on a lock file beside the
//! database (`PATH-lock`, next to SQLite's `PATH-wal` and `PATH-shm`) and
//! holds it while it is open; a second one is refused at open, naming the
//! file and the holder's pid.
//!
//! Why a lock file and not SQLite's `locking_mode = EXCLUSIVE`: in WAL mode
//! that mode shuts every other connection out, readers included: the
//! store's own reader pool, `chatd backup` (SQLite's online backup API on a
//! connection of its own) and an operator's `sqlite3` would all fail. The
//! lock file shuts out only another store; SQLite's own locks still order
//! every connection's reads and writes. (PostgreSQL's `postmaster.pid` is
//! the same idea.)
//!
//! Why `flock` on a file of its own: the kernel drops it when the process
//! dies, `kill -9` included, so a crash leaves nothing stale to clean up;
//! and it never meets SQLite's POSIX (`fcntl`) locks on the database file,
//! which one process's `close` of any descriptor of that file would
//! release. The lock file is never removed: removing it while a process
//! holds it would let the next one lock a new file of the same name.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use chatcore::store::{StoreError, StoreResult};

/// The lock file's name: the database's plus this.
const SUFFIX: &str = "-lock";

/// An exclusive hold on a database file against other processes, released
/// when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub(crate) struct ProcessLock {
    _file: File,
}

impl ProcessLock {
    /// Takes the lock of the database at `db` (a path or a `file:` URI as
    /// SQLite takes them), without waiting. `Ok(None)` for a database that
    /// lives in memory or that a URI opens read-only. `Unavailable` when another process holds it (or
    /// another open store of this process: the lock belongs to an open
    /// file, not to a process), or when the lock file cannot be created.
    pub(crate) fn take(db: &Path) -> StoreResult<Option<Self>> {
        let Some(file_path) = locked_file(db) else {
            return Ok(None);
        };
        let mut name = file_path.clone().into_os_string();
        name.push(SUFFIX);
        let lock_path = PathBuf::from(name);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| {
                StoreError::Unavailable(format!(
                    "SQLite database {}: cannot create its lock file {}: {e}",
                    db.display(),
                    lock_path.display()
                ))
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => String::new(),
                    pid => format!(" (pid {pid})"),
                };
                return Err(StoreError::Unavailable(format!(
                    "SQLite database {}: another process holds it{holder}: only one chatd may \
                     serve a database file at a time (lock file {}); stop the other one first. \
                     `chatd backup` and read-only tools such as sqlite3 may read the file \
                     meanwhile",
                    db.display(),
                    lock_path.display()
                )));
            }
            Err(TryLockError::Error(e)) => {
                return Err(StoreError::Unavailable(format!(
                    "SQLite database {}: cannot lock {}: {e}",
                    db.display(),
                    lock_path.display()
                )))
            }
        }
        // Who holds it, for the message a second process prints. Only
        // informative: a failure to write it does not stop the store.
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(Some(Self { _file: file }))
    }
}

/// The file SQLite opens for `db`: the path itself, or the file a `file:`
/// URI names; `None` for what needs no lock: a database in memory, or one
/// a URI opens read-only (`mode=ro`, a reader like `chatd backup`).
fn locked_file(db: &Path) -> Option<PathBuf> {
    let s = db.to_str();
    if s.is_some_and(|s| s.is_empty() || s == ":memory:") {
        return None;
    }
    let Some(uri) = s.and_then(|s| s.strip_prefix("file:")) else {
        return Some(db.to_path_buf());
    };
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let path = path.split('#').next().unwrap_or(path);
    if path.is_empty()
        || path == ":memory:"
        || query
            .split('&')
            .any(|kv| kv == "mode=memory" || kv == "mode=ro")
    {
        return None;
    }
    // `file:///p` and `file://localhost/p` are `/p`.
    let path = match path.strip_prefix("//") {
        Some(rest) => rest.strip_prefix("localhost").unwrap_or(rest),
        None => path,
    };
    Some(PathBuf::from(percent_decoded(path)?))
}

/// `%XX` escapes decoded, as SQLite does in URI paths; `None` if the
/// result is not UTF-8.
fn percent_decoded(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_file_and_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("chat.db");
        let first = ProcessLock::take(&db).unwrap().expect("a file is locked");
        // A second open file description conflicts like another process.
        match ProcessLock::take(&db) {
            Err(StoreError::Unavailable(m)) => {
                assert!(m.contains(&db.display().to_string()), "{m}");
                assert!(m.contains("another process holds it"), "{m}");
                assert!(m.contains(&format!("pid {}", std::process::id())), "{m}");
            }
            other => panic!("expected Unavailable, got {other:?}"),
        }
        drop(first);
        ProcessLock::take(&db)
            .unwrap()
            .expect("free once the first is dropped");
    }

    #[test]
    fn uris_name_their_file_and_memory_needs_no_lock() {
        assert_eq!(locked_file(Path::new("")), None);
        assert_eq!(locked_file(Path::new(":memory:")), None);
        assert_eq!(locked_file(Path::new("file::memory:?cache=shared")), None);
        assert_eq!(locked_file(Path::new("file:x.db?mode=memory")), None);
        assert_eq!(locked_file(Path::new("file:/x.db?mode=ro")), None);
        assert_eq!(
            locked_file(Path::new("/var/lib/chat.db")),
            Some(PathBuf::from("/var/lib/chat.db"))
        );
        assert_eq!(
            locked_file(Path::new("file:/var/lib/a%20b.db?mode=rw")),
            Some(PathBuf::from("/var/lib/a b.db"))
        );
        assert_eq!(
            locked_file(Path::new("file:///var/lib/chat.db")),
            Some(PathBuf::from("/var/lib/chat.db"))
        );
        assert_eq!(
            locked_file(Path::new("file://localhost/var/lib/chat.db")),
            Some(PathBuf::from("/var/lib/chat.db"))
        );
    }
}
