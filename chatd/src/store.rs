//! The store chosen at start-up.

use anyhow::Context as _;
use chatcore::store::Mailer;
use chatcore::Backends;
use chatcore_mongo::MongoStore;
use chatcore_sqlite::SqliteStore;
use std::path::Path;
use std::sync::Arc;

use crate::config::{MediaSpec, Secret, StoreSpec};

/// The database used when the URI names none (`mongodb://host/<db>` names one).
const DEFAULT_DB: &str = "chatcore";

/// The backends `spec` names, with `mailer` for outgoing mail and media
/// where `media` says (the store's own place when `None`), and the SQLite
/// store whose writes `/readyz` checks, if it is one.
pub(crate) async fn backends(
    spec: &StoreSpec,
    media: Option<&MediaSpec>,
    mailer: Arc<dyn Mailer>,
) -> anyhow::Result<(Backends, Option<SqliteStore>)> {
    let (mut backends, probe) = store_backends(spec, media.is_none(), mailer).await?;
    match media {
        None => {}
        Some(MediaSpec::Memory) => {
            tracing::warn!("media files are kept in memory: they are gone at exit");
            backends.blobs = Arc::new(chatcore::memory::MemoryBlobStore::default());
        }
        Some(MediaSpec::Dir(dir)) => backends.blobs = Arc::new(media_files(dir).await?),
    }
    Ok((backends, probe))
}

/// Puts the shared state of several nodes in the Redis at `url`: events
/// between the nodes (the broker), presence, the rate limiters and the
/// calls going on. Returns
/// the broker, whose counters chatd's metrics show.
pub(crate) async fn redis(
    url: &Secret,
    backends: &mut Backends,
) -> anyhow::Result<Arc<chatcore_redis::RedisBroker>> {
    let config = chatcore_redis::RedisConfig::new(url.0.as_str(), REDIS_PREFIX);
    let store = chatcore_redis::RedisStore::connect(&config)
        .await
        .context("cannot reach Redis (--redis)")?;
    let broker = Arc::new(
        store
            .broker(BROKER_BACKLOG)
            .await
            .context("cannot subscribe on Redis (--redis)")?,
    );
    *backends = store.backends(backends.clone());
    backends.broker = broker.clone();
    tracing::info!(
        "using Redis for events between nodes, presence, rate limits and calls: \
         several nodes on this Redis and store behave as one server"
    );
    Ok(broker)
}

/// Every Redis key and channel of chatd starts with `chatd:`.
const REDIS_PREFIX: &str = "chatd";

/// Events waiting to be published to Redis at most (then shed, counted).
const BROKER_BACKLOG: usize = 65_536;

/// The media directory `dir`, created if need be.
async fn media_files(dir: &Path) -> anyhow::Result<crate::media::FsBlobStore> {
    let blobs = crate::media::FsBlobStore::open(dir)
        .await
        .with_context(|| format!("cannot open the media directory {}", dir.display()))?;
    tracing::info!(path = %blobs.root().display(), "media are stored as files in this directory");
    Ok(blobs)
}

/// The backends of the store `spec`, with its own media store when
/// `own_media` (beside a SQLite file, GridFS beside MongoDB).
async fn store_backends(
    spec: &StoreSpec,
    own_media: bool,
    mailer: Arc<dyn Mailer>,
) -> anyhow::Result<(Backends, Option<SqliteStore>)> {
    let memory = Backends::memory_with_mailer(mailer);
    match spec {
        StoreSpec::Memory => {
            tracing::warn!(
                "using the in-memory store: every account and message lives only as long as this \
                 process (use --store sqlite:PATH or mongodb://... to keep them)"
            );
            Ok((memory, None))
        }
        StoreSpec::Mongo(uri) => {
            let db = chatcore_mongo::mongodb::options::ClientOptions::parse(&uri.0)
                .await
                .context("invalid MongoDB URI")?
                .default_database
                .unwrap_or_else(|| DEFAULT_DB.to_owned());
            // Fails fast when no server answers within the selection timeout:
            // the indexes must exist before the first write is served.
            let store = MongoStore::connect(&uri.0, &db)
                .await
                .with_context(|| format!("cannot open the MongoDB store (database {db})"))?;
            tracing::info!(
                db,
                "using the MongoDB store: accounts, sessions and history are durable"
            );
            let mut backends = store.backends(memory.clone());
            // Presence says who is connected to this process now: it must not
            // outlive the process (a killed node would leave its users
            // "online" forever). One node keeps it in memory; several nodes
            // need a shared presence store with expiry (see docs/MONGO.md).
            backends.presence = memory.presence;
            Ok((backends, None))
        }
        StoreSpec::Sqlite(path) => {
            let store = open_sqlite(path).await?;
            tracing::info!(
                path = %store.path().display(),
                "using the SQLite store: accounts, sessions and history are durable in this file"
            );
            let mut backends = store.backends(memory);
            // A `file:` URI names no directory to put media beside: they
            // stay in memory there (read-only and test databases).
            if own_media && !path.to_str().is_some_and(|p| p.starts_with("file:")) {
                backends.blobs = Arc::new(media_files(&media_dir(store.path())).await?);
            }
            Ok((backends, Some(store)))
        }
    }
}

/// The media directory beside the SQLite database `db`: `chat.db-media`
/// for `chat.db`, named like SQLite's own `-wal` and `-shm` files so that
/// two databases in one directory do not share it.
fn media_dir(db: &Path) -> std::path::PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push("-media");
    db.with_file_name(name)
}

/// Opens the SQLite database at `path`, creating its directory. The
/// error says what is wrong with the file (corrupt, locked, read-only,
/// full, written by a newer chatd).
pub(crate) async fn open_sqlite(path: &Path) -> anyhow::Result<SqliteStore> {
    // `file:...?mode=ro` and the like are SQLite URIs: passed on as they are.
    if path.to_str().is_some_and(|p| p.starts_with("file:")) {
        return SqliteStore::open(path)
            .await
            .with_context(|| format!("cannot open the SQLite store {}", path.display()));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir)
            .await
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    // The absolute path, so that the log says where data lives.
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    SqliteStore::open(&path)
        .await
        .with_context(|| format!("cannot open the SQLite store {}", path.display()))
}

/// `chatd backup DEST`: copies the database at `source` to `dest` while a
/// server may be writing to it.
pub(crate) async fn backup(source: &Path, dest: &Path) -> anyhow::Result<()> {
    let report = chatcore_sqlite::backup(source.to_path_buf(), dest.to_path_buf())
        .await
        .with_context(|| format!("cannot back {} up to {}", source.display(), dest.display()))?;
    tracing::info!(
        source = %source.display(),
        dest = %report.path.display(),
        pages = report.pages,
        bytes = report.bytes,
        "backup written and integrity-checked"
    );
    // The media directory beside the database, after it: every file the
    // copied database refers to was stored before it was copied (a file is
    // written whole before any message can name it), and files never
    // change, so copying the finished ones gives a consistent pair.
    let media = media_dir(source);
    if tokio::fs::try_exists(&media).await.unwrap_or(false) {
        let to = media_dir(&report.path);
        let files = tokio::task::spawn_blocking({
            let (media, to) = (media.clone(), to.clone());
            move || copy_media(&media, &to)
        })
        .await
        .context("the media copy panicked")?
        .with_context(|| format!("cannot copy {} to {}", media.display(), to.display()))?;
        tracing::info!(dest = %to.display(), files, "media copied");
    }
    Ok(())
}

/// Copies every finished blob file under `from` (not the temporary ones,
/// whose names start with a dot) to the same place under `to`; how many.
fn copy_media(from: &Path, to: &Path) -> std::io::Result<u64> {
    let mut copied = 0;
    for dir in std::fs::read_dir(from)? {
        let dir = dir?;
        if !dir.file_type()?.is_dir() {
            continue;
        }
        let target = to.join(dir.file_name());
        std::fs::create_dir_all(&target)?;
        for file in std::fs::read_dir(dir.path())? {
            let file = file?;
            let name = file.file_name();
            if name.to_string_lossy().starts_with('.') || !file.file_type()?.is_file() {
                continue;
            }
            let copy = target.join(&name);
            std::fs::copy(file.path(), &copy)?;
            // A backup is kept: on the disk before it is reported done.
            std::fs::File::open(&copy)?.sync_all()?;
            copied += 1;
        }
    }
    Ok(copied)
}
