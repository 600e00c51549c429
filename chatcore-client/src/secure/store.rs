//! Where a [`super::SecureClient`] keeps its state between runs, and the
//! thread that saves it there in order, off the async workers.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};

use super::lock;

/// Where the device's encrypted state is kept between runs.
pub trait MachineStore: Send + Sync {
    /// The bytes saved last, or `None` when nothing was saved yet.
    fn load(&self) -> std::io::Result<Option<Vec<u8>>>;
    /// Replaces the saved bytes; when it returns, a later `load` sees them
    /// (also after a crash, for a durable store).
    fn save(&self, bytes: &[u8]) -> std::io::Result<()>;
}

/// Keeps the state in memory: for tests, and apps that start afresh each
/// time. Clones share the same bytes.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    bytes: Arc<Mutex<Option<Vec<u8>>>>,
}

impl MachineStore for MemoryStore {
    fn load(&self) -> std::io::Result<Option<Vec<u8>>> {
        Ok(lock(&self.bytes).clone())
    }

    fn save(&self, bytes: &[u8]) -> std::io::Result<()> {
        *lock(&self.bytes) = Some(bytes.to_vec());
        Ok(())
    }
}

/// Keeps the state in one file, replaced atomically (written beside it,
/// synced, then renamed over it), so a crash leaves the old or the new
/// state, never half of one.
#[derive(Clone, Debug)]
pub struct FileStore {
    path: PathBuf,
}

impl FileStore {
    /// A store at `path` (its directory must exist).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl MachineStore for FileStore {
    fn load(&self) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(&self.path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn save(&self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        // A temporary name of this save's own: two savers of one file (an
        // application's mistake, or a client started again while the old
        // one still saves) never write into each other's temporary file.
        static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut tmp = self.path.clone().into_os_string();
        tmp.push(format!(".tmp-{}-{n}", std::process::id()));
        let tmp = PathBuf::from(tmp);
        let written = std::fs::File::create(&tmp).and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        });
        if written.is_err() {
            // Nothing half-written is left beside the state.
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

/// Saves the state on a thread of its own: a save may write and sync a
/// file, which must not hold up an async worker. Saves land in the order
/// they were asked for; each is the whole state, so while one is written,
/// the ones asked for meanwhile collapse into the newest.
pub(super) struct Saver {
    shared: Arc<SaverShared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

struct SaverShared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

#[derive(Default)]
struct Queue {
    /// The newest state not yet handed to the store.
    newest: Option<Vec<u8>>,
    /// Who waits for `newest` (or an older state it replaced) to be saved.
    waiters: Vec<tokio::sync::oneshot::Sender<Result<(), String>>>,
    /// The client is gone: save what is queued, then stop.
    closed: bool,
}

/// A save asked of the [`Saver`]: [`Saving::done`] waits until it (or a
/// newer state) is in the store.
#[must_use = "a save is only known to be done once awaited"]
pub(super) struct Saving(tokio::sync::oneshot::Receiver<Result<(), String>>);

impl Saving {
    /// Waits until the state is saved, or the store failed.
    pub(super) async fn done(self) -> std::io::Result<()> {
        match self.0.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(why)) => Err(std::io::Error::other(why)),
            Err(_) => Err(std::io::Error::other("the state's saver stopped")),
        }
    }
}

impl Saver {
    /// A saver into `store`, with its thread.
    pub(super) fn new(store: Arc<dyn MachineStore>) -> std::io::Result<Self> {
        let shared = Arc::new(SaverShared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let on_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("chatcore-e2e-save".into())
            .spawn(move || on_thread.run(store.as_ref()))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Queues `bytes` to be saved; the returned [`Saving`] tells when.
    pub(super) fn save(&self, bytes: Vec<u8>) -> Saving {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.queue(bytes, Some(tx));
        Saving(rx)
    }

    /// Queues `bytes` to be saved, with nobody waiting: for changes that
    /// nothing sent depends on (a failure is logged by the thread).
    pub(super) fn save_later(&self, bytes: Vec<u8>) {
        self.queue(bytes, None);
    }

    fn queue(
        &self,
        bytes: Vec<u8>,
        waiter: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
    ) {
        let mut q = lock(&self.shared.queue);
        q.newest = Some(bytes);
        q.waiters.extend(waiter);
        drop(q);
        self.shared.wake.notify_one();
    }
}

impl Drop for Saver {
    /// Waits until what is queued is saved: once the client is gone, its
    /// state is in the store, and a later client on the same store (the
    /// same device started again) never has its saves overwritten by an
    /// older state landing late.
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::warn!("the end-to-end state's saver panicked");
            }
        }
    }
}

impl SaverShared {
    fn run(&self, store: &dyn MachineStore) {
        loop {
            let (bytes, waiters) = {
                let mut q = lock(&self.queue);
                while q.newest.is_none() && !q.closed {
                    q = self.wake.wait(q).unwrap_or_else(|p| p.into_inner());
                }
                match q.newest.take() {
                    Some(bytes) => (bytes, std::mem::take(&mut q.waiters)),
                    None => return,
                }
            };
            let result = store.save(&bytes).map_err(|e| e.to_string());
            if let Err(why) = &result {
                tracing::warn!(error = %why, "the end-to-end state was not saved");
            }
            for w in waiters {
                let _ = w.send(result.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_saves_replaces_and_reads_nothing_before() {
        let dir = std::env::temp_dir().join(format!(
            "chatcore-secure-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let store = FileStore::new(dir.join("state"));
        assert_eq!(store.load().unwrap(), None);
        store.save(b"one").unwrap();
        store.save(b"two").unwrap();
        assert_eq!(store.load().unwrap().as_deref(), Some(&b"two"[..]));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn memory_store_clones_share_the_bytes() {
        let a = MemoryStore::default();
        let b = a.clone();
        a.save(b"state").unwrap();
        assert_eq!(b.load().unwrap().as_deref(), Some(&b"state"[..]));
    }

    /// Records every save; fails while `fail` is set.
    #[derive(Default)]
    struct Recorder {
        saved: Mutex<Vec<Vec<u8>>>,
        fail: std::sync::atomic::AtomicBool,
    }

    impl MachineStore for Recorder {
        fn load(&self) -> std::io::Result<Option<Vec<u8>>> {
            Ok(lock(&self.saved).last().cloned())
        }

        fn save(&self, bytes: &[u8]) -> std::io::Result<()> {
            if self.fail.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(std::io::Error::other("disk full"));
            }
            lock(&self.saved).push(bytes.to_vec());
            Ok(())
        }
    }

    #[tokio::test]
    async fn the_saver_saves_in_order_and_collapses_what_queued_up() {
        let store = Arc::new(Recorder::default());
        let saver = Saver::new(store.clone()).unwrap();
        let mut savings = Vec::new();
        for i in 0..200u8 {
            if i % 2 == 0 {
                savings.push(saver.save(vec![i]));
            } else {
                saver.save_later(vec![i]);
            }
        }
        for s in savings {
            s.done().await.unwrap();
        }
        let saved: Vec<u8> = lock(&store.saved).iter().map(|b| b[0]).collect();
        assert!(saved.windows(2).all(|w| w[0] < w[1]), "in order: {saved:?}");
        assert!(saved.last() >= Some(&198), "the newest awaited is saved");

        // Nothing waits for the last one; dropping the saver saves it
        // before it returns.
        drop(saver);
        assert_eq!(lock(&store.saved).last(), Some(&vec![199]));
    }

    #[tokio::test]
    async fn a_failed_save_reaches_whoever_waits_for_it() {
        let store = Arc::new(Recorder::default());
        let saver = Saver::new(store.clone()).unwrap();
        store.fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let err = saver.save(b"state".to_vec()).done().await.unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        store.fail.store(false, std::sync::atomic::Ordering::SeqCst);
        saver.save(b"again".to_vec()).done().await.unwrap();
        assert_eq!(store.load().unwrap().as_deref(), Some(&b"again"[..]));
    }
}
