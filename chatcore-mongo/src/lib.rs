//! # chatcore-mongo
//!
//! MongoDB implementations of chatcore's store traits, on the official
//! `mongodb` driver (tokio runtime): users, sessions, reset tokens,
//! messages, contacts, presence, the login rate limiter and the calls
//! going on. They behave exactly like
//! chatcore's in-memory reference stores and pass the same conformance
//! suite; the broker and the mailer are not storage and stay whatever the
//! caller chose.
//!
//! ```no_run
//! use chatcore::{Backends, Config, Server};
//! use chatcore_mongo::MongoStore;
//!
//! # async fn run() -> Result<(), chatcore::store::StoreError> {
//! // Connects, then creates the collections' indexes (idempotently).
//! let store = MongoStore::connect("mongodb://127.0.0.1:27017/?replicaSet=rs0", "chat").await?;
//! let backends = store.backends(Backends::memory());
//! let server = Server::new(backends, Config::default()).expect("valid config");
//! # let _ = server;
//! # Ok(())
//! # }
//! ```
//!
//! Durable data (accounts, sessions, reset tokens, messages, cursors, read
//! markers, receipts, contacts) is written with journaled majority write concern: once a call
//! returns `Ok`, the write survives a crash and a fail-over. Presence,
//! rate-limit counters and calls are soft state and use the server's default.
//! docs/MONGO.md describes the schema, the indexes and the reasoning behind
//! the gap-free, idempotent message append.
//!
//! # Layout
//! - this file: [`MongoStore`] (connection, index creation, hand-out of the
//!   stores) and [`MongoConfig`].
//! - `error`: the one mapping of driver errors to [`StoreError`].
//! - `schema`: collection names, the indexes, the schema mark.
//! - `users`: [`MongoUserStore`].
//! - `sessions`: [`MongoSessionStore`] and [`MongoResetTokenStore`].
//! - `messages`: [`MongoMessageStore`]: conversations, the seq claim, history,
//!   cursors, read markers, receipts (one document per conversation and
//!   member, raised after the cursor by a compare-and-swap), unread counts.
//! - `contacts`: [`MongoContactStore`]: one document per pair, the
//!   version compare-and-swap, the listings.
//! - `records`: the stored documents of conversations, entries and
//!   relations.
//! - `migrate`: migrations from older schema versions, run at start.
//! - `presence`: [`MongoPresenceStore`].
//! - `limiter`: [`MongoRateLimiter`].
//! - `blobs`: [`MongoBlobStore`]: media in a GridFS bucket.
//! - `calls`: [`MongoCallStore`]: the calls going on, one per user by a
//!   claim document per user, changes by compare-and-set.
//! - `testing` (feature `testing`): jongodb, a MongoDB-compatible server for tests.

use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use chatcore::store::{StoreError, StoreResult};
use chatcore::Backends;
use mongodb::bson::doc;
use mongodb::options::{Acknowledgment, ClientOptions, CollectionOptions, WriteConcern};
use mongodb::{Client, Collection, Database};

mod backups;
mod blobs;
mod calls;
mod contacts;
mod error;
mod keys;
mod limiter;
mod messages;
mod migrate;
mod presence;
mod records;
mod reports;
mod schema;
mod sessions;
#[cfg(feature = "testing")]
pub mod testing;
mod users;

pub use backups::MongoBackupStore;
pub use blobs::MongoBlobStore;
pub use calls::MongoCallStore;
pub use contacts::MongoContactStore;
pub use keys::{MongoKeyStore, MongoToDeviceStore};
pub use limiter::MongoRateLimiter;
pub use messages::MongoMessageStore;
pub use mongodb;
pub use presence::MongoPresenceStore;
pub use reports::MongoReportStore;
pub use schema::{COLLECTIONS, SCHEMA_VERSION};
pub use sessions::{MongoResetTokenStore, MongoSessionStore};
pub use users::MongoUserStore;

/// Connection tunables. Start from `MongoConfig::default()` and change fields.
/// Values given in the URI (`serverSelectionTimeoutMS`, `connectTimeoutMS`,
/// `maxPoolSize`, `appName`) take precedence over these.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct MongoConfig {
    /// How long an operation waits for a usable server before failing with
    /// `Unavailable`. The driver's default (30 s) would hang a request (and
    /// chatd's readiness probe) far too long when MongoDB is down.
    pub server_selection_timeout: Duration,
    /// TCP connect (and TLS handshake) timeout.
    pub connect_timeout: Duration,
    /// Upper bound on any single store call, retries included. A server that
    /// accepts connections but never answers yields `Unavailable` after this.
    pub op_timeout: Duration,
    /// Connections per server; `None` keeps the driver's default (10).
    pub max_pool_size: Option<u32>,
    /// Name reported to the server (visible in its logs and `currentOp`).
    pub app_name: String,
}

impl Default for MongoConfig {
    fn default() -> Self {
        Self {
            server_selection_timeout: Duration::from_secs(3),
            connect_timeout: Duration::from_secs(3),
            op_timeout: Duration::from_secs(10),
            max_pool_size: None,
            app_name: "chatcore".to_owned(),
        }
    }
}

/// A connection to one MongoDB database, from which the stores are made.
/// Cheap to clone; every clone and every store shares one connection pool.
#[derive(Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

/// What every store holds: the database and the timeouts.
pub(crate) struct Inner {
    client: Client,
    db: Database,
    op_timeout: Duration,
}

impl Inner {
    /// A collection whose writes are journaled and majority-acknowledged.
    pub(crate) fn durable<T: Send + Sync>(&self, name: &str) -> Collection<T> {
        let wc = WriteConcern::builder()
            .w(Acknowledgment::Majority)
            .journal(true)
            .build();
        self.db
            .collection_with_options(name, CollectionOptions::builder().write_concern(wc).build())
    }

    /// A collection of soft state, written with the server's default concern.
    pub(crate) fn soft<T: Send + Sync>(&self, name: &str) -> Collection<T> {
        self.db.collection(name)
    }

    /// Runs one driver operation under the operation timeout, mapping its error.
    pub(crate) async fn run<T>(
        &self,
        op: impl IntoFuture<Output = mongodb::error::Result<T>>,
    ) -> StoreResult<T> {
        match tokio::time::timeout(self.op_timeout, op.into_future()).await {
            Ok(result) => result.map_err(error::map_err),
            Err(_) => Err(StoreError::Unavailable(format!(
                "MongoDB did not answer within {:?}",
                self.op_timeout
            ))),
        }
    }
}

impl MongoStore {
    /// Connects to `uri` with the default [`MongoConfig`], uses database
    /// `db_name`, and creates its indexes (see [`MongoStore::ensure_indexes`]).
    /// `Unavailable` if the URI is invalid or no server answers within the
    /// server selection timeout.
    pub async fn connect(uri: &str, db_name: &str) -> StoreResult<Self> {
        Self::connect_with(uri, db_name, MongoConfig::default()).await
    }

    /// [`MongoStore::connect`] with explicit tunables.
    pub async fn connect_with(uri: &str, db_name: &str, config: MongoConfig) -> StoreResult<Self> {
        let store = Self::connect_lazy(uri, db_name, config).await?;
        store.ensure_indexes().await?;
        Ok(store)
    }

    /// Builds the client without contacting the server (the driver connects
    /// in the background and on first use). Call [`MongoStore::ensure_indexes`]
    /// before serving. Fails only on an invalid URI (or an SRV lookup).
    pub async fn connect_lazy(uri: &str, db_name: &str, config: MongoConfig) -> StoreResult<Self> {
        let invalid = |e: mongodb::error::Error| {
            StoreError::Unavailable(format!("invalid MongoDB URI or options: {e}"))
        };
        let mut options = ClientOptions::parse(uri).await.map_err(invalid)?;
        options
            .server_selection_timeout
            .get_or_insert(config.server_selection_timeout);
        options
            .connect_timeout
            .get_or_insert(config.connect_timeout);
        if options.max_pool_size.is_none() {
            options.max_pool_size = config.max_pool_size;
        }
        options.app_name.get_or_insert(config.app_name);
        // A write whose connection broke is retried once by the driver, and
        // the server deduplicates it (replica sets and sharded clusters).
        options.retry_writes = Some(true);
        options.retry_reads = Some(true);
        let client = Client::with_options(options).map_err(invalid)?;
        let db = client.database(db_name);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                db,
                op_timeout: config.op_timeout,
            }),
        })
    }

    /// Checks the database's schema version (`Incompatible` when a newer
    /// build wrote it; a new database is marked with this build's
    /// [`SCHEMA_VERSION`]), then creates every collection's indexes.
    /// Idempotent: indexes that exist
    /// with the same definition are left alone, so every node may call it at
    /// start-up. An index that exists under the same name with a different
    /// definition (an older schema) is an error for the operator to resolve.
    pub async fn ensure_indexes(&self) -> StoreResult<()> {
        schema::check_version(&self.inner).await?;
        schema::ensure_indexes(&self.inner).await
    }

    /// Round-trips a `ping` to the server (for readiness probes).
    pub async fn ping(&self) -> StoreResult<()> {
        self.inner
            .run(self.inner.db.run_command(doc! { "ping": 1 }))
            .await
            .map(|_| ())
    }

    /// The database the stores use (for administration and tests).
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// The driver's client.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// The account store.
    pub fn users(&self) -> MongoUserStore {
        MongoUserStore::new(self.inner.clone())
    }

    /// The session-token store.
    pub fn sessions(&self) -> MongoSessionStore {
        MongoSessionStore::new(self.inner.clone())
    }

    /// The password-reset token store.
    pub fn resets(&self) -> MongoResetTokenStore {
        MongoResetTokenStore::new(self.inner.clone())
    }

    /// The message store.
    pub fn messages(&self) -> MongoMessageStore {
        MongoMessageStore::new(self.inner.clone())
    }

    /// The contact store: relations, requests, blocks.
    pub fn contacts(&self) -> MongoContactStore {
        MongoContactStore::new(self.inner.clone())
    }

    /// The presence store.
    pub fn presence(&self) -> MongoPresenceStore {
        MongoPresenceStore::new(self.inner.clone())
    }

    /// The key directory.
    pub fn keys(&self) -> MongoKeyStore {
        MongoKeyStore::new(self.inner.clone())
    }

    /// The to-device queues.
    pub fn to_device(&self) -> MongoToDeviceStore {
        MongoToDeviceStore::new(self.inner.clone())
    }

    /// The encrypted key backups.
    pub fn backups(&self) -> MongoBackupStore {
        MongoBackupStore::new(self.inner.clone())
    }

    /// The report store.
    pub fn reports(&self) -> MongoReportStore {
        MongoReportStore::new(self.inner.clone())
    }

    /// Media, in the GridFS bucket `media`.
    pub fn blobs(&self) -> MongoBlobStore {
        MongoBlobStore::new(self.inner.clone())
    }

    /// The login rate limiter.
    pub fn limiter(&self) -> MongoRateLimiter {
        MongoRateLimiter::new(self.inner.clone())
    }

    /// The calls going on.
    pub fn calls(&self) -> MongoCallStore {
        MongoCallStore::new(self.inner.clone())
    }

    /// `base` with every storage backend replaced by this database's: users,
    /// sessions, reset tokens, messages, contacts, presence, media (GridFS),
    /// the rate limiter and the calls. The broker and the mailer are kept
    /// from `base`.
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
        b.blobs = Arc::new(self.blobs());
        b.limiter = Arc::new(self.limiter());
        b.calls = Arc::new(self.calls());
        b
    }
}

impl std::fmt::Debug for MongoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoStore")
            .field("database", &self.inner.db.name())
            .finish_non_exhaustive()
    }
}

/// Milliseconds or seqs as BSON int64: values beyond `i64::MAX` cannot be
/// stored and saturate (no seq or time gets near it).
pub(crate) fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored int64 back to a seq; negative means the record was edited by hand.
pub(crate) fn to_u64(v: i64, what: &str) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative {what}: {v}")))
}

/// A `limit` for the driver: MongoDB reads 0 as "no limit", so callers
/// handle 0 themselves; larger than `i64::MAX` means everything.
pub(crate) fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Compile-time proof that every store implements its trait as a `dyn` object.
#[allow(dead_code)]
fn _assert_object_safe(s: &MongoStore) {
    use chatcore::store::{
        ContactStore, MessageStore, PresenceStore, RateLimiter, ResetTokenStore, SessionStore,
        UserStore,
    };
    let _: Arc<dyn UserStore> = Arc::new(s.users());
    let _: Arc<dyn SessionStore> = Arc::new(s.sessions());
    let _: Arc<dyn ResetTokenStore> = Arc::new(s.resets());
    let _: Arc<dyn MessageStore> = Arc::new(s.messages());
    let _: Arc<dyn ContactStore> = Arc::new(s.contacts());
    let _: Arc<dyn PresenceStore> = Arc::new(s.presence());
    let _: Arc<dyn RateLimiter> = Arc::new(s.limiter());
    let _: Arc<dyn chatcore::store::BlobStore> = Arc::new(s.blobs());
    let _: Arc<dyn chatcore::store::CallStore> = Arc::new(s.calls());
}
