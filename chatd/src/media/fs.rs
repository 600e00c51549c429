//! [`FsBlobStore`]: one file per blob under a directory.
//!
//! Layout: `ROOT/ab/abcdef…` for the blob `abcdef…` (the first two
//! characters of its id fan the files out over 256 directories). Each file
//! is a header followed by the blob's bytes. The header, in the format
//! this build writes (magic `chatblb2`), is 256 bytes:
//!
//! | bytes | what |
//! |---|---|
//! | 0..8 | the magic `chatblb2` |
//! | 8..16 | the blob's size, u64 little-endian |
//! | 16..24 | when it was stored (the caller's clock, [`BlobMeta`]), i64 milliseconds, little-endian |
//! | 24..56 | its SHA-256 |
//! | 56..64 | zero (reserved) |
//! | 64 | the length `n` of the uploader's user id in bytes, at most [`MAX_OWNER`] |
//! | 65..65+n | the uploader's user id, UTF-8 |
//! | 65+n..256 | zero (reserved) |
//!
//! Files of the first format (magic `chatblb1`, written before uploaders
//! were recorded) have the first 64 bytes only, and read with no owner;
//! they are never rewritten. `info` reads one header; [`BlobStore::list`]
//! walks the directories in id order and reads the header of each file
//! past `after` for its time, until it has `limit`.
//!
//! Atomic visibility and durability, as the SQLite store promises (an
//! acknowledged write survives a power loss): a blob is written to a
//! temporary file `ROOT/ab/.abcdef….RANDOM.tmp` beside its final place,
//! fsynced, then hard-linked to its final name (which fails if the name
//! exists: two puts of one id cannot replace each other), and the directory
//! is fsynced before `put` returns. The temporary name is removed after;
//! an upload that fails or is dropped removes its temporary file at once,
//! and one left by a crash is removed by the next [`FsBlobStore::open`].
//! Every path is made from an id that [`check_media_id`] accepted.
//!
//! File I/O runs on tokio's blocking pool (`tokio::fs`), never on the async
//! workers.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use chatcore::model::{MediaId, Millis, UserId};
use chatcore::store::{
    check_media_id, interrupted, BlobBody, BlobInfo, BlobMeta, BlobRead, BlobStore, BlobTally,
    ByteRange, StoreError, StoreResult,
};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

/// Bytes before the blob's in each file this build writes.
const HEADER_LEN: u64 = 256;
/// The first bytes of every blob file this build writes (and its format's
/// version): the header holds the uploader.
const MAGIC: &[u8; 8] = b"chatblb2";
/// Bytes before the blob's in a file of the first format.
const V1_HEADER_LEN: u64 = 64;
/// The magic of the first format, without the uploader.
const V1_MAGIC: &[u8; 8] = b"chatblb1";
/// The longest uploader's user id a header holds, in bytes (chatcore's ids
/// are 36); a longer one is refused by `put`.
pub(crate) const MAX_OWNER: usize = 128;
/// Bytes read from a file at a time when serving it. Each read is a trip
/// to the blocking pool and back: 64 KiB reads made a 10 MiB download 160
/// trips and half of chatd's CPU in task switches (docs/BENCHMARKS.md,
/// *Media upload and download*); 512 KiB makes it 20.
const READ_CHUNK: usize = 512 * 1024;
/// Bytes of an upload gathered before they are written: hyper hands the
/// body over in pieces of at most 16 KiB, and writing each alone was one
/// blocking-pool trip per piece (640 for 10 MiB). What an upload holds in
/// memory is about this much, twice (here and in the file's buffer).
const WRITE_BATCH: usize = 256 * 1024;
/// Temporary files older than this are a crashed upload's, removed at open.
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// Blobs as files under one directory. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct FsBlobStore {
    root: Arc<PathBuf>,
}

impl FsBlobStore {
    /// The store in `root`, created if missing. Temporary files that a
    /// crashed process left (older than an hour, so an upload of another
    /// process sharing the directory is not cut short) are removed.
    pub(crate) async fn open(root: &Path) -> io::Result<Self> {
        tokio::fs::create_dir_all(root).await?;
        let root = std::path::absolute(root)?;
        let sweep = root.clone();
        tokio::task::spawn_blocking(move || remove_stale_temps(&sweep, STALE_TEMP))
            .await
            .map_err(io::Error::other)??;
        Ok(Self {
            root: Arc::new(root),
        })
    }

    /// The directory the blobs are in.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of blob `id` (checked by [`check_media_id`]).
    fn dir_of(&self, id: &MediaId) -> PathBuf {
        self.root.join(&id.as_str()[..2])
    }

    /// The file of blob `id`, `None` for a malformed id.
    fn path_of(&self, id: &MediaId) -> Option<PathBuf> {
        check_media_id(id).ok()?;
        Some(self.dir_of(id).join(id.as_str()))
    }

    /// Reads and checks the header of the blob file `file`: the blob's
    /// description and where its bytes start.
    async fn header(file: &mut tokio::fs::File, id: &MediaId) -> StoreResult<(BlobInfo, u64)> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("blob file {id}: {what}"));
        let mut h = [0u8; HEADER_LEN as usize];
        let short = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => corrupt("shorter than its header"),
            _ => io_error(e),
        };
        file.read_exact(&mut h[..V1_HEADER_LEN as usize])
            .await
            .map_err(short)?;
        if &h[..8] == MAGIC {
            file.read_exact(&mut h[V1_HEADER_LEN as usize..])
                .await
                .map_err(short)?;
        }
        let len = file.metadata().await.map_err(io_error)?.len();
        parse_header(&h, len).map_err(corrupt)
    }

    /// Opens blob `id`'s file and reads its header; `None` when missing.
    async fn open_blob(
        &self,
        id: &MediaId,
    ) -> StoreResult<Option<(tokio::fs::File, BlobInfo, u64)>> {
        let Some(path) = self.path_of(id) else {
            return Ok(None);
        };
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(e)),
        };
        let (info, start) = Self::header(&mut file, id).await?;
        Ok(Some((file, info, start)))
    }
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(
        &self,
        id: &MediaId,
        meta: BlobMeta,
        mut body: BlobBody,
        max_bytes: u64,
    ) -> StoreResult<BlobInfo> {
        check_media_id(id)?;
        if meta.owner.0.len() > MAX_OWNER {
            return Err(StoreError::Corrupt(format!(
                "blob {id}: the uploader's id is longer than {MAX_OWNER} bytes"
            )));
        }
        let conflict = || StoreError::Conflict {
            field: "media".to_owned(),
        };
        let dir = self.dir_of(id);
        let path = dir.join(id.as_str());
        if tokio::fs::try_exists(&path).await.map_err(io_error)? {
            return Err(conflict());
        }
        if !tokio::fs::try_exists(&dir).await.map_err(io_error)? {
            tokio::fs::create_dir_all(&dir).await.map_err(io_error)?;
            // The new directory's entry must survive a power loss too.
            sync_dir(self.root.to_path_buf()).await?;
        }
        let temp =
            Temp::new(dir.join(format!(".{id}.{}.tmp", &MediaId::generate().as_str()[..16])));
        let written = async {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp.path)
                .await
                .map_err(io_error)?;
            file.write_all(&[0u8; HEADER_LEN as usize])
                .await
                .map_err(io_error)?;
            let mut tally = BlobTally::new(max_bytes);
            let mut batch = Vec::with_capacity(WRITE_BATCH);
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(|e| interrupted(&e))?;
                tally.add(&chunk)?;
                batch.extend_from_slice(&chunk);
                if batch.len() >= WRITE_BATCH {
                    file.write_all(&batch).await.map_err(io_error)?;
                    batch.clear();
                }
            }
            file.write_all(&batch).await.map_err(io_error)?;
            drop(batch);
            let owner = meta.owner.0.clone();
            let info = tally.finish(meta);
            let mut header = [0u8; HEADER_LEN as usize];
            header[..8].copy_from_slice(MAGIC);
            header[8..16].copy_from_slice(&info.size.to_le_bytes());
            header[16..24].copy_from_slice(&info.created_at.to_le_bytes());
            unhex(&info.sha256, &mut header[24..56]);
            // At most MAX_OWNER (checked above), so it fits in a byte.
            header[64] = u8::try_from(owner.len()).unwrap_or(0);
            header[65..65 + owner.len()].copy_from_slice(owner.as_bytes());
            file.seek(SeekFrom::Start(0)).await.map_err(io_error)?;
            file.write_all(&header).await.map_err(io_error)?;
            file.flush().await.map_err(io_error)?;
            file.sync_all().await.map_err(io_error)?;
            drop(file);
            // A link, not a rename: it fails when the name exists, where a
            // rename would replace a blob stored by a concurrent put.
            match tokio::fs::hard_link(&temp.path, &path).await {
                Ok(()) => Ok(info),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(conflict()),
                Err(e) => Err(io_error(e)),
            }
        }
        .await;
        // Gone before `put` answers, whatever the outcome: the blob is
        // linked in place, or nothing of the upload is left.
        temp.remove().await;
        let info = written?;
        sync_dir(dir).await?;
        Ok(info)
    }

    async fn get(&self, id: &MediaId, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>> {
        let Some((mut file, info, start)) = self.open_blob(id).await? else {
            return Ok(None);
        };
        let served = match range {
            Some(r) => r.resolve(info.size)?,
            None => 0..info.size,
        };
        file.seek(SeekFrom::Start(start + served.start))
            .await
            .map_err(io_error)?;
        let reader = file.take(served.end - served.start);
        let body = tokio_util::io::ReaderStream::with_capacity(reader, READ_CHUNK);
        Ok(Some(BlobRead::new(info.size, served, Box::pin(body))))
    }

    async fn info(&self, id: &MediaId) -> StoreResult<Option<BlobInfo>> {
        Ok(self.open_blob(id).await?.map(|(_, info, _)| info))
    }

    async fn delete(&self, id: &MediaId) -> StoreResult<bool> {
        let Some(path) = self.path_of(id) else {
            return Ok(false);
        };
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                sync_dir(self.dir_of(id)).await?;
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error(e)),
        }
    }

    async fn list(
        &self,
        created_before: Millis,
        after: Option<&MediaId>,
        limit: usize,
    ) -> StoreResult<Vec<MediaId>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let root = self.root.clone();
        let after = after.map(|a| a.as_str().to_owned());
        tokio::task::spawn_blocking(move || list_blobs(&root, created_before, after, limit))
            .await
            .map_err(|e| StoreError::Unavailable(format!("the listing task failed: {e}")))?
            .map_err(io_error)
    }
}

/// The blob's description in header `h` (the first format's 64 bytes or
/// this one's 256) of a file of `len` bytes, and where its bytes start.
fn parse_header(h: &[u8; HEADER_LEN as usize], len: u64) -> Result<(BlobInfo, u64), &'static str> {
    let (start, owner) = if &h[..8] == MAGIC {
        let n = usize::from(h[64]);
        if n > MAX_OWNER {
            return Err("the uploader's id is too long");
        }
        let owner =
            std::str::from_utf8(&h[65..65 + n]).map_err(|_| "the uploader's id is not UTF-8")?;
        (HEADER_LEN, Some(UserId::from(owner)))
    } else if &h[..8] == V1_MAGIC {
        (V1_HEADER_LEN, None)
    } else {
        return Err("not a blob file of a known format");
    };
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&h[at..at + 8]);
        b
    };
    let size = u64::from_le_bytes(word(8));
    let created_at = i64::from_le_bytes(word(16));
    if len != start.saturating_add(size) {
        return Err("its length disagrees with its header");
    }
    let mut info = BlobInfo::new(
        size,
        hex(&h[24..56]),
        BlobMeta::new(UserId::from(""), created_at),
    );
    info.owner = owner;
    Ok((info, start))
}

/// [`BlobStore::list`] on the blocking pool: the shard directories in
/// order from `after`'s, in each the well-formed names (no temporary file:
/// theirs start with a dot) past `after` in order, each kept if its
/// header's time is before `created_before`. A file removed meanwhile is
/// skipped; so is one whose header cannot be read (logged): what cannot
/// be dated is never offered for deletion.
fn list_blobs(
    root: &Path,
    created_before: Millis,
    after: Option<String>,
    limit: usize,
) -> io::Result<Vec<MediaId>> {
    use std::io::Read as _;
    let is_shard =
        |n: &str| n.len() == 2 && n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let mut shards: Vec<String> = std::fs::read_dir(root)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_shard(n))
        .collect();
    shards.sort_unstable();
    let first = after.as_deref().map_or("", |a| &a[..a.len().min(2)]);
    let mut out = Vec::new();
    for shard in shards.iter().filter(|s| s.as_str() >= first) {
        let dir = root.join(shard);
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut names: Vec<MediaId> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with(shard.as_str()))
            .filter_map(|n| MediaId::parse(&n))
            .filter(|id| after.as_deref().is_none_or(|a| id.as_str() > a))
            .collect();
        names.sort_unstable();
        for id in names {
            let mut file = match std::fs::File::open(dir.join(id.as_str())) {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let mut h = [0u8; HEADER_LEN as usize];
            let want =
                if file.read_exact(&mut h[..V1_HEADER_LEN as usize]).is_ok() && &h[..8] == MAGIC {
                    file.read_exact(&mut h[V1_HEADER_LEN as usize..])
                } else {
                    Ok(())
                };
            let len = file.metadata()?.len();
            match want
                .map_err(|_| "shorter than its header")
                .and_then(|()| parse_header(&h, len))
            {
                Ok((info, _)) if info.created_at < created_before => {
                    out.push(id);
                    if out.len() == limit {
                        return Ok(out);
                    }
                }
                Ok(_) => {}
                Err(what) => {
                    tracing::warn!(media = %id, problem = what, "a blob file left out of the listing");
                }
            }
        }
    }
    Ok(out)
}

/// A temporary file: removed by `put` before it answers, and when dropped
/// (the `put` future dropped mid-upload). A drop's removal is one `unlink`: on
/// tokio's blocking pool when a runtime is there (a drop cannot await, and
/// file I/O stays off the async workers), in place otherwise.
struct Temp {
    path: PathBuf,
}

impl Temp {
    fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Removes the file now (off the async workers), and disarms the drop.
    async fn remove(mut self) {
        let path = std::mem::take(&mut self.path);
        if let Err(e) = tokio::fs::remove_file(&path).await {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a temporary blob file");
            }
        }
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let path = std::mem::take(&mut self.path);
        if path.as_os_str().is_empty() {
            return; // removed already
        }
        let remove = move || {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a temporary blob file");
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(remove)),
            Err(_) => remove(),
        }
    }
}

/// Fsyncs directory `dir`, so that the names created or removed in it
/// survive a power loss.
async fn sync_dir(dir: PathBuf) -> StoreResult<()> {
    tokio::task::spawn_blocking(move || std::fs::File::open(&dir)?.sync_all())
        .await
        .map_err(|e| StoreError::Unavailable(format!("the fsync task failed: {e}")))?
        .map_err(io_error)
}

/// Removes the temporary files under `root` older than `age`.
fn remove_stale_temps(root: &Path, age: Duration) -> io::Result<()> {
    let now = SystemTime::now();
    for dir in std::fs::read_dir(root)? {
        let dir = dir?;
        if !dir.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(dir.path())? {
            let file = file?;
            let name = file.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with('.') && name.ends_with(".tmp")) {
                continue;
            }
            let modified = file.metadata()?.modified()?;
            if now.duration_since(modified).unwrap_or_default() >= age {
                tracing::info!(path = %file.path().display(), "removing an unfinished upload");
                std::fs::remove_file(file.path())?;
            }
        }
    }
    Ok(())
}

/// A file-system error as a store error: a full disk or quota is `Full`,
/// anything else `Unavailable` (logged: it is the operator's to fix).
fn io_error(e: io::Error) -> StoreError {
    match e.kind() {
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => StoreError::Full,
        _ => {
            tracing::error!(error = %e, "media directory error");
            StoreError::Unavailable(format!("media directory: {e}"))
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes the bytes of the hex string `s` (made by [`BlobTally`]) into `out`.
fn unhex(s: &str, out: &mut [u8]) {
    let digit = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => 0,
    };
    for (o, pair) in out.iter_mut().zip(s.as_bytes().chunks(2)) {
        if let [hi, lo] = pair {
            *o = (digit(*hi) << 4) | digit(*lo);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatcore::testkit::blobs::{body_of, failing_body, run_all, sample, stalled_body};

    fn meta() -> BlobMeta {
        BlobMeta::new(UserId::from("uploader"), 1_000)
    }

    /// A fresh directory under the build's temporary directory.
    fn fresh_dir() -> PathBuf {
        std::env::temp_dir()
            .join("chatd-blob-tests")
            .join(MediaId::generate().as_str())
    }

    /// Every file under `root` whose name says it is temporary.
    fn temps(root: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for dir in std::fs::read_dir(root).unwrap() {
            let dir = dir.unwrap().path();
            if dir.is_dir() {
                for f in std::fs::read_dir(&dir).unwrap() {
                    let f = f.unwrap().path();
                    if f.to_string_lossy().ends_with(".tmp") {
                        out.push(f);
                    }
                }
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_filesystem_store_passes_the_blob_conformance_suite() {
        let roots = Arc::new(std::sync::Mutex::new(Vec::new()));
        let made = roots.clone();
        run_all(&move || {
            let made = made.clone();
            async move {
                let root = fresh_dir();
                made.lock().unwrap().push(root.clone());
                Arc::new(FsBlobStore::open(&root).await.unwrap()) as Arc<dyn BlobStore>
            }
        })
        .await;
        for root in roots.lock().unwrap().iter() {
            assert_eq!(temps(root), Vec::<PathBuf>::new(), "temporary files left");
            std::fs::remove_dir_all(root).unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn interrupted_uploads_leave_no_file_and_blobs_fan_out() {
        let root = fresh_dir();
        let store = FsBlobStore::open(&root).await.unwrap();
        let data = sample(1_000_000, 1);
        let id = MediaId::generate();
        let _ = store
            .put(&id, meta(), failing_body(&data, 500_000), u64::MAX)
            .await;
        let _ = store.put(&id, meta(), body_of(&data), 10).await;
        let stalled = store.put(&id, meta(), stalled_body(&data, 500_000), u64::MAX);
        assert!(tokio::time::timeout(Duration::from_millis(200), stalled)
            .await
            .is_err());
        // A dropped upload's temporary file is removed on the blocking
        // pool, after the drop: gone within a bounded wait.
        let gone = tokio::time::timeout(Duration::from_secs(10), async {
            while !temps(&root).is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        assert!(gone.is_ok(), "left: {:?}", temps(&root));
        store
            .put(&id, meta(), body_of(&data), u64::MAX)
            .await
            .unwrap();
        let file = root.join(&id.as_str()[..2]).join(id.as_str());
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            HEADER_LEN + 1_000_000
        );
        assert_eq!(temps(&root), Vec::<PathBuf>::new());
        // A truncated file is reported, not served short.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&file)
            .unwrap()
            .set_len(HEADER_LEN + 10)
            .unwrap();
        assert!(matches!(store.info(&id).await, Err(StoreError::Corrupt(_))));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[tokio::test]
    async fn open_removes_stale_temporary_files_only() {
        let root = fresh_dir();
        let store = FsBlobStore::open(&root).await.unwrap();
        let dir = root.join("ab");
        std::fs::create_dir_all(&dir).unwrap();
        let stale = dir.join(".ab00.x.tmp");
        let fresh = dir.join(".ab01.y.tmp");
        std::fs::write(&stale, b"x").unwrap();
        std::fs::write(&fresh, b"y").unwrap();
        let old = SystemTime::now() - Duration::from_secs(7200);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        drop(store);
        FsBlobStore::open(&root).await.unwrap();
        assert!(!stale.exists());
        assert!(fresh.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// A file of the first format (64-byte header, magic `chatblb1`, no
    /// uploader) reads, serves and lists as before, with no owner.
    #[tokio::test]
    async fn files_of_the_first_format_read_with_no_owner() {
        use futures_util::StreamExt as _;
        let root = fresh_dir();
        let store = FsBlobStore::open(&root).await.unwrap();
        let id = MediaId::generate();
        let data = b"an old photo";
        let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(data));
        let mut h = [0u8; V1_HEADER_LEN as usize];
        h[..8].copy_from_slice(V1_MAGIC);
        h[8..16].copy_from_slice(&(data.len() as u64).to_le_bytes());
        h[16..24].copy_from_slice(&5_000_i64.to_le_bytes());
        h[24..56].copy_from_slice(&digest);
        let dir = root.join(&id.as_str()[..2]);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(id.as_str()), [&h[..], &data[..]].concat()).unwrap();

        let info = store.info(&id).await.unwrap().expect("stored");
        assert_eq!(
            (info.size, info.created_at, info.owner, info.sha256),
            (data.len() as u64, 5_000, None, hex(&digest))
        );
        let read = store
            .get(&id, Some(ByteRange::inclusive(3, 5)))
            .await
            .unwrap()
            .expect("stored");
        let bytes: Vec<u8> = read.body.map(|c| c.unwrap().to_vec()).concat().await;
        assert_eq!(bytes, b"old");
        assert_eq!(
            store.list(5_001, None, 10).await.unwrap(),
            std::slice::from_ref(&id)
        );
        assert!(store.list(5_000, None, 10).await.unwrap().is_empty());
        // Beside a new one, which has its owner and a 256-byte header.
        let new = MediaId::generate();
        store
            .put(&new, meta(), body_of(data), u64::MAX)
            .await
            .unwrap();
        let file = root.join(&new.as_str()[..2]).join(new.as_str());
        assert_eq!(
            std::fs::metadata(&file).unwrap().len(),
            HEADER_LEN + data.len() as u64
        );
        let info = store.info(&new).await.unwrap().expect("stored");
        assert_eq!(info.owner, Some(UserId::from("uploader")));
        let mut both = vec![id.clone(), new.clone()];
        both.sort();
        assert_eq!(store.list(Millis::MAX, None, 10).await.unwrap(), both);
        // An owner longer than the header holds is refused.
        let long = BlobMeta::new(UserId::from("x".repeat(MAX_OWNER + 1).as_str()), 1);
        assert!(matches!(
            store
                .put(&MediaId::generate(), long, body_of(data), u64::MAX)
                .await,
            Err(StoreError::Corrupt(_))
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
