//! The shared state of one node: backends, configuration, the local hub,
//! the password hasher, the clock and the metrics.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::account::{Argon2Config, PasswordHasher, PasswordPolicy};
use crate::error::CoreError;
use crate::hub::Hub;
use crate::limits::{Admission, Caps};
use crate::memory::{
    MemoryBackupStore, MemoryBlobStore, MemoryBroker, MemoryCallStore, MemoryContactStore,
    MemoryKeyStore, MemoryMailer, MemoryMessageStore, MemoryPresenceStore, MemoryRateLimiter,
    MemoryReportStore, MemoryResetTokenStore, MemorySessionStore, MemoryToDeviceStore,
    MemoryUserStore,
};
use crate::model::{now_millis, Millis};
use crate::protocol::ErrorCode;
use crate::store::{
    BackupStore, BlobStore, Broker, BrokerHandler, CallStore, ContactStore, KeyStore, Mailer,
    MessageStore, PresenceStore, Quota, RateLimiter, ReportStore, ResetTokenStore, SessionStore,
    ToDeviceStore, UserStore,
};

/// Every backend the engine uses, chosen at start-up.
#[derive(Clone)]
#[non_exhaustive]
pub struct Backends {
    /// Accounts.
    pub users: Arc<dyn UserStore>,
    /// Session tokens.
    pub sessions: Arc<dyn SessionStore>,
    /// Password-reset tokens.
    pub resets: Arc<dyn ResetTokenStore>,
    /// Messages, cursors, read markers.
    pub messages: Arc<dyn MessageStore>,
    /// Contacts, contact requests, blocks.
    pub contacts: Arc<dyn ContactStore>,
    /// Who is online.
    pub presence: Arc<dyn PresenceStore>,
    /// Users' reports of users, for the operator.
    pub reports: Arc<dyn ReportStore>,
    /// Devices' public keys: the key directory of end-to-end encryption.
    pub keys: Arc<dyn KeyStore>,
    /// Payloads from device to device, queued until acknowledged.
    pub to_device: Arc<dyn ToDeviceStore>,
    /// Users' encrypted key backups.
    pub backups: Arc<dyn BackupStore>,
    /// Media: opaque bytes (images, files, voice notes, profile pictures).
    pub blobs: Arc<dyn BlobStore>,
    /// The calls going on.
    pub calls: Arc<dyn CallStore>,
    /// Event fan-out between nodes.
    pub broker: Arc<dyn Broker>,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Login attempt counting.
    pub limiter: Arc<dyn RateLimiter>,
}

impl Backends {
    /// All-in-memory backends with the given mailer: one node, nothing survives the process.
    pub fn memory_with_mailer(mailer: Arc<dyn Mailer>) -> Self {
        Self {
            users: Arc::new(MemoryUserStore::new()),
            sessions: Arc::new(MemorySessionStore::new()),
            resets: Arc::new(MemoryResetTokenStore::new()),
            messages: Arc::new(MemoryMessageStore::new()),
            contacts: Arc::new(MemoryContactStore::new()),
            presence: Arc::new(MemoryPresenceStore::new()),
            reports: Arc::new(MemoryReportStore::new()),
            keys: Arc::new(MemoryKeyStore::new()),
            to_device: Arc::new(MemoryToDeviceStore::new()),
            backups: Arc::new(MemoryBackupStore::new()),
            blobs: Arc::new(MemoryBlobStore::default()),
            calls: Arc::new(MemoryCallStore::new()),
            broker: Arc::new(MemoryBroker::new()),
            mailer,
            limiter: Arc::new(MemoryRateLimiter::new()),
        }
    }

    /// All-in-memory backends, mail kept in a [`MemoryMailer`].
    pub fn memory() -> Self {
        Self::memory_with_mailer(Arc::new(MemoryMailer::new()))
    }
}

/// Tunables of the engine. Start from `Config::default()` and change fields.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Name and version announced in `welcome`.
    pub server_name: String,
    /// Lifetime of a session token; each `resume` extends it by as much.
    pub session_ttl: Duration,
    /// Lifetime of a password-reset token.
    pub reset_ttl: Duration,
    /// Text before the token in the reset mail's link (the web client's reset page).
    pub reset_link_prefix: String,
    /// Password rules.
    pub password_policy: PasswordPolicy,
    /// argon2id cost of new hashes; older, cheaper hashes are upgraded at login.
    pub argon2: Argon2Config,
    /// Hashes computed at once (each holds `argon2.m_kib` of memory).
    pub hash_concurrency: usize,
    /// Failed logins allowed per account.
    pub login_per_account: Quota,
    /// Failed logins allowed per client address.
    pub login_per_address: Quota,
    /// Registrations and reset requests allowed per client address.
    pub signup_per_address: Quota,
    /// Registrations allowed on the whole service (every node, through the
    /// rate limiter), whatever the addresses: `register` tells whether an
    /// email or phone has an account (uniqueness makes it visible), and a
    /// prober who changes address sidesteps the per-address quota, so this
    /// caps how fast anyone can enumerate.
    pub signup_global: Quota,
    /// What one user may send, across all of the user's connections (and
    /// nodes, through the rate limiter): `max` bytes per `window_ms`, each
    /// message counting its content's size but at least
    /// [`Config::send_min_cost`] bytes. Past it, `send` answers
    /// `rate_limited` and stores nothing.
    pub send_budget: Quota,
    /// What the smallest message costs against [`Config::send_budget`]: the
    /// cost of storing a record, whatever its text.
    pub send_min_cost: u64,
    /// `typing` events one connection may send per `window_ms`; past it they
    /// are answered `ok` and dropped (a hint is not worth an error).
    pub typing_budget: Quota,
    /// How long a `typing` push holds without another (clients send one
    /// about every half of it while the user writes).
    pub typing_ttl_ms: u32,
    /// How far before a `receipts` request's `since` the receipts are read
    /// again: receipts are stamped by the clock of the node that stored
    /// them, which may lag the one asked. Marks only rise, so a receipt
    /// read twice is harmless.
    pub receipt_overlap_ms: u64,
    /// How long after sending it a message may be edited by its sender.
    pub edit_window_ms: u64,
    /// How long an uploaded file that nothing refers to is kept before
    /// [`Server::collect_media`] deletes it: the time a client has between
    /// uploading a file and sending the message (or setting the avatar)
    /// that lists it, and the time a deleted message's files stay.
    pub media_grace_ms: u64,
    /// Pushes buffered per connection; a connection that lets this many pile
    /// up is disconnected (it catches up by sync).
    pub outbound_queue: usize,
    /// How long a connection may stay unauthenticated.
    pub auth_timeout: Duration,
    /// Connections not yet signed in allowed at once on this node; more are
    /// turned away at once ([`crate::session::Disconnect::Overloaded`]), so a
    /// flood of idle sockets cannot crowd out users who sign in.
    pub max_unauthenticated: usize,
    /// The share of `max_unauthenticated` one client address may hold
    /// ([`crate::limits::AddrKey`]: IPv6 per /64), so that one address
    /// cannot exhaust it for everyone else.
    pub max_unauthenticated_per_address: usize,
    /// Connections one client address may hold on this node, signed in or
    /// not; more are closed at once ([`crate::session::Disconnect::TooManyFromAddress`]).
    pub max_connections_per_address: usize,
    /// Connections one account may hold on this node; a sign-in beyond it
    /// gets `limit_reached` and the connection closes
    /// ([`crate::session::Disconnect::TooManyForAccount`]).
    pub max_connections_per_user: usize,
    /// Undecodable frames in a row after which the connection is closed
    /// ([`crate::session::Disconnect::InvalidFrames`]): a client that sends
    /// garbage is broken or hostile, and each error costs an answer.
    pub max_invalid_frames: u32,
    /// Requests per second allowed per connection (sustained).
    pub frames_per_second: u32,
    /// Requests allowed in a burst above the sustained rate.
    pub frame_burst: u32,
    /// Largest text message, in bytes.
    pub max_text_bytes: usize,
    /// Largest other string field (names, ids, about), in bytes.
    pub max_field_bytes: usize,
    /// Largest page of history, sync or directory.
    pub max_page: usize,
    /// Presence subscriptions a connection may hold for its conversations.
    pub max_watched: usize,
    /// Current members a group may have.
    pub max_group_members: usize,
    /// Attempts to join a group by invite token allowed per user (through
    /// the rate limiter), so that tokens cannot be guessed.
    pub join_attempts: Quota,
    /// Contact requests a user may send (through the rate limiter).
    pub contact_requests: Quota,
    /// How long a user whose contact request was declined waits before
    /// asking the same user again (milliseconds).
    pub contact_retry_ms: u64,
    /// One-time keys a device may keep on the server.
    pub max_one_time_keys: usize,
    /// Keys of other devices a user may claim (through the rate limiter),
    /// so that nobody drains a device's one-time keys.
    pub key_claims: Quota,
    /// Largest to-device payload, in bytes (decoded).
    pub max_to_device_bytes: usize,
    /// To-device payloads that may wait for one device; past it, a sender
    /// gets `undelivered` with reason `full` for that device.
    pub max_to_device_queue: usize,
    /// Keys a user's backup may hold (conversation keys: a user who sends
    /// and reads a lot makes a few thousand a year).
    pub max_backup_keys: usize,
    /// Largest encrypted key in a backup, in bytes (decoded); also bounds
    /// a backup's `auth_data`, in characters.
    pub max_backup_key_bytes: usize,
    /// How long a node may go without renewing its liveness in a shared
    /// presence store ([`Server::sweep_presence`]) before another node's
    /// sweep takes its users offline (milliseconds). Nodes sweep several
    /// times per TTL.
    pub presence_ttl_ms: u64,
    /// The STUN and TURN servers handed to clients for calls
    /// (`ice_servers`).
    pub ice: IceConfig,
    /// How long a call rings unanswered before it ends as missed
    /// ([`Server::sweep_calls`]).
    pub call_ring_timeout_ms: u64,
    /// How long a device in a call may be without a connection before the
    /// call ends as `gone` (a reconnect within it keeps the call).
    pub call_grace_ms: u64,
    /// Calls one user may start per window, across nodes.
    pub call_invites: Quota,
}

/// Where calls find their way through NATs: STUN and TURN servers, and
/// TURN credentials in the shared-secret scheme of coturn's
/// `use-auth-secret` (the "TURN REST API": username `expiry:user`,
/// password base64(HMAC-SHA1(secret, username))), so that chatd and the
/// TURN server share one secret and nothing else.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct IceConfig {
    /// `stun:`, `turn:` and `turns:` URLs, in order of preference. TURN
    /// URLs get credentials when [`IceConfig::turn_secret`] is set.
    pub urls: Vec<String>,
    /// The TURN server's `static-auth-secret`.
    pub turn_secret: Option<TurnSecret>,
    /// How long a TURN credential is accepted after it is made, in
    /// milliseconds (rounded up to whole seconds on the wire).
    pub turn_ttl_ms: u64,
}

/// A TURN shared secret: never shown by `Debug`, so never logged.
#[derive(Clone)]
pub struct TurnSecret(Arc<str>);

impl TurnSecret {
    /// The secret `s`.
    pub fn new(s: impl Into<Arc<str>>) -> Self {
        Self(s.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TurnSecret(<redacted>)")
    }
}

impl Config {
    /// Largest ciphertext of an encrypted message, in bytes: the unpadded
    /// base64 of the largest text with room for what encryption adds (its
    /// envelope, padding, MAC and signature).
    pub fn max_ciphertext_bytes(&self) -> usize {
        self.max_text_bytes.saturating_add(1024).saturating_mul(4) / 3
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server_name: format!("chatcore/{}", env!("CARGO_PKG_VERSION")),
            session_ttl: Duration::from_secs(30 * 24 * 3600),
            reset_ttl: Duration::from_secs(30 * 60),
            reset_link_prefix: "/#reset=".to_owned(),
            password_policy: PasswordPolicy::default(),
            argon2: Argon2Config::default(),
            hash_concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            login_per_account: Quota {
                max: 10,
                window_ms: 15 * 60 * 1000,
            },
            login_per_address: Quota {
                max: 100,
                window_ms: 15 * 60 * 1000,
            },
            signup_per_address: Quota {
                max: 30,
                window_ms: 60 * 60 * 1000,
            },
            signup_global: Quota {
                max: 1000,
                window_ms: 60 * 60 * 1000,
            },
            send_budget: Quota {
                max: 4 * 1024 * 1024,
                window_ms: 60 * 1000,
            },
            send_min_cost: 512,
            typing_budget: Quota {
                max: 120,
                window_ms: 60 * 1000,
            },
            typing_ttl_ms: 6000,
            receipt_overlap_ms: 10_000,
            edit_window_ms: 24 * 60 * 60 * 1000,
            media_grace_ms: 24 * 60 * 60 * 1000,
            outbound_queue: 256,
            auth_timeout: Duration::from_secs(10),
            max_unauthenticated: 1000,
            max_unauthenticated_per_address: 100,
            max_connections_per_address: 300,
            max_connections_per_user: 20,
            max_invalid_frames: 20,
            frames_per_second: 50,
            frame_burst: 200,
            max_text_bytes: 16 * 1024,
            max_field_bytes: 1024,
            max_page: 200,
            max_watched: 256,
            max_group_members: 1000,
            join_attempts: Quota {
                max: 30,
                window_ms: 10 * 60 * 1000,
            },
            contact_requests: Quota {
                max: 50,
                window_ms: 24 * 3600 * 1000,
            },
            contact_retry_ms: 7 * 24 * 3600 * 1000,
            max_one_time_keys: 100,
            key_claims: Quota {
                max: 1000,
                window_ms: 3600 * 1000,
            },
            max_to_device_bytes: 32 * 1024,
            max_to_device_queue: 1000,
            max_backup_keys: 100_000,
            max_backup_key_bytes: 4 * 1024,
            presence_ttl_ms: 30_000,
            ice: IceConfig {
                urls: Vec::new(),
                turn_secret: None,
                turn_ttl_ms: 24 * 60 * 60 * 1000,
            },
            call_ring_timeout_ms: 60_000,
            call_grace_ms: 30_000,
            call_invites: Quota {
                max: 20,
                window_ms: 60 * 1000,
            },
        }
    }
}

/// Where time comes from; tests substitute a [`ManualClock`].
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the epoch.
    fn now(&self) -> Millis;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        now_millis()
    }
}

/// A clock that moves only when told: for testing expiry.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Millis) -> Self {
        Self(AtomicI64::new(start))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(
            i64::try_from(by.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// Upper bounds (milliseconds) of the delivery-latency histogram buckets.
pub const LATENCY_BUCKETS_MS: [u64; 12] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000];

/// Counters the engine keeps; a transport exports them (chatd as Prometheus text).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Connections being served now.
    pub connections: AtomicU64,
    /// Connections ever accepted.
    pub connections_total: AtomicU64,
    /// Client frames received.
    pub frames_in: AtomicU64,
    /// Server frames sent.
    pub frames_out: AtomicU64,
    /// Messages durably appended (not counting idempotent retries).
    pub messages_stored: AtomicU64,
    /// Message pushes handed to connections.
    pub messages_delivered: AtomicU64,
    /// Connections closed for falling behind.
    pub slow_consumers: AtomicU64,
    /// Error frames sent, by [`ErrorCode::ALL`] index.
    pub errors: [AtomicU64; ErrorCode::ALL.len()],
    /// Delivery latency (store time to push): deliveries per bucket of
    /// [`LATENCY_BUCKETS_MS`] (each counted once, in the first bucket whose
    /// bound it does not exceed; the last slot is +Inf). Not cumulative: an
    /// exporter sums them for Prometheus.
    pub latency_buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    /// Sum of delivery latencies in milliseconds.
    pub latency_sum_ms: AtomicU64,
}

impl Metrics {
    /// Counts an error frame.
    pub fn error(&self, code: ErrorCode) {
        if let Some(i) = ErrorCode::ALL.iter().position(|c| *c == code) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records one delivery latency.
    pub fn delivered(&self, latency_ms: u64) {
        self.messages_delivered.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ms.fetch_add(latency_ms, Ordering::Relaxed);
        let i = LATENCY_BUCKETS_MS
            .iter()
            .position(|b| latency_ms <= *b)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// One node of the engine. Cheap to share (`Arc<Server>`); transports call
/// [`crate::session::serve`] with it for each connection.
pub struct Server {
    pub(crate) backends: Backends,
    pub(crate) config: Config,
    pub(crate) hub: Arc<Hub>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Metrics,
    /// Distinguishes this node's connection keys from other nodes' in shared presence.
    pub(crate) node_id: String,
    /// This node's liveness lapsed and its live connections are not all
    /// recorded again yet ([`Server::sweep_presence`]): kept until they are,
    /// as the sweep that found it lapsed has renewed it, and a later one
    /// would not find it lapsed again.
    presence_unrecorded: std::sync::atomic::AtomicBool,
    next_conn: AtomicU64,
    /// Connections per address and per account, and those signed out.
    pub(crate) admission: Admission,
}

impl Server {
    /// A node over `backends`, on the system clock. Computes one argon2 hash
    /// (the timing-equaliser for unknown accounts), so it blocks for tens of
    /// milliseconds: call it from blocking context in an async program.
    pub fn new(backends: Backends, config: Config) -> Result<Arc<Self>, CoreError> {
        Self::with_clock(backends, config, Arc::new(SystemClock))
    }

    /// A node with an explicit clock (tests).
    pub fn with_clock(
        backends: Backends,
        config: Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Self>, CoreError> {
        let hasher = PasswordHasher::new(config.argon2, config.hash_concurrency)?;
        let hub = Arc::new(Hub::new(backends.broker.clone()));
        backends
            .broker
            .attach(hub.clone() as Arc<dyn BrokerHandler>);
        Ok(Arc::new(Self {
            backends,
            hub,
            hasher,
            clock,
            metrics: Metrics::default(),
            node_id: uuid::Uuid::new_v4().simple().to_string(),
            presence_unrecorded: std::sync::atomic::AtomicBool::new(false),
            next_conn: AtomicU64::new(1),
            admission: Admission::new(Caps {
                unauthenticated: config.max_unauthenticated,
                unauthenticated_per_address: config.max_unauthenticated_per_address,
                per_address: config.max_connections_per_address,
                per_user: config.max_connections_per_user,
            }),
            config,
        }))
    }

    /// The backends.
    pub fn backends(&self) -> &Backends {
        &self.backends
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Current time by this server's clock.
    pub fn now(&self) -> Millis {
        self.clock.now()
    }

    /// Removes the content of every message whose disappearing-message
    /// timer is up by this server's clock (and of its edits and reactions),
    /// in batches; returns how many messages it handled. The embedder
    /// calls it now and then (chatd: every `--expire-sweep-ms`); clients
    /// drop their own copies at each message's `expires_at` without
    /// waiting for it. Any node may run it, at once with others: a
    /// message handled by one is not handled again.
    pub async fn expire_due(&self) -> Result<usize, CoreError> {
        const BATCH: usize = 500;
        let now = self.now();
        let mut total = 0;
        loop {
            let n = self.backends.messages.expire(now, BATCH).await?;
            total += n;
            if n < BATCH {
                return Ok(total);
            }
        }
    }

    /// Deletes the uploaded files that nothing refers to any more and that
    /// are older than [`Config::media_grace_ms`] by this server's clock:
    /// no live message lists them (a deletion or expiry let go of its
    /// files) and no user or group has them as avatar. Returns how many it
    /// deleted. The embedder calls it now and then (chatd: every
    /// `--media-sweep-ms`); any node may run it, at once with others.
    ///
    /// A file is checked, then deleted: a message sent in between that
    /// lists a file older than the grace period and referred to by nothing
    /// (an upload kept unsent for a day) may name a file that is then gone;
    /// its readers get `not_found` on download. The grace period makes
    /// that window one a client reaches only by sending a day-old upload.
    pub async fn collect_media(&self) -> Result<usize, CoreError> {
        const BATCH: usize = 500;
        let grace = i64::try_from(self.config.media_grace_ms).unwrap_or(i64::MAX);
        let before = self.now().saturating_sub(grace);
        let mut after: Option<crate::model::MediaId> = None;
        let mut deleted = 0;
        loop {
            let page = self
                .backends
                .blobs
                .list(before, after.as_ref(), BATCH)
                .await?;
            let Some(last) = page.last().cloned() else {
                return Ok(deleted);
            };
            let mut kept: std::collections::HashSet<crate::model::MediaId> = self
                .backends
                .messages
                .media_in_use(&page)
                .await?
                .into_iter()
                .collect();
            kept.extend(self.backends.users.avatars_in_use(&page).await?);
            for id in page.iter().filter(|id| !kept.contains(id)) {
                if self.backends.blobs.delete(id).await? {
                    deleted += 1;
                }
            }
            if page.len() < BATCH {
                return Ok(deleted);
            }
            after = Some(last);
        }
    }

    /// Renews this node's liveness in the presence store and takes over the
    /// connections of nodes not heard from for [`Config::presence_ttl_ms`]
    /// ([`PresenceStore::sweep`]): each user who went offline by it is
    /// published to their presence topic as a last disconnect would.
    /// Returns how many. When this node's own liveness had lapsed (it
    /// stalled past the TTL, and other nodes may have taken its connections
    /// over), it then records its live connections again, and their users
    /// are online again; if that fails part way (a store error, a timeout
    /// of a node too busy to reach the store in time), the next sweep
    /// records them all again, though the liveness it renewed is no longer
    /// lapsed. The embedder calls it regularly, several times per
    /// TTL (a node that stops calling it is taken for dead); any node may
    /// run it at once with others: each user is reported by one only. With
    /// a store local to the process (memory) it does nothing.
    pub async fn sweep_presence(&self) -> Result<usize, CoreError> {
        let now = self.now();
        let ttl = self.config.presence_ttl_ms;
        let presence = &self.backends.presence;
        if presence.lapsed(&self.node_id, now, ttl).await? {
            // Remembered before the sweep renews the liveness: if the
            // sweep or the recording below fails, even after the renewal
            // reached the store, the next sweep records them.
            self.presence_unrecorded.store(true, Ordering::SeqCst);
        }
        let offline = presence.sweep(&self.node_id, now, ttl).await?;
        let n = offline.len();
        for p in offline {
            // Their node died: no connection of theirs is left anywhere, so
            // the side of a call they held is gone (from now: the call ends
            // after the grace period, as for a connection that closed).
            if let Some(call) = self.backends.calls.of_user(&p.user).await? {
                let sides = [
                    (
                        &call.caller,
                        Some(&call.caller_device),
                        Some(&call.caller_conn),
                    ),
                    (
                        &call.callee,
                        call.answered_by.as_ref(),
                        call.callee_conn.as_ref(),
                    ),
                ];
                for (user, device, conn) in sides {
                    if let (true, Some(device), Some(conn)) = (*user == p.user, device, conn) {
                        self.backends
                            .calls
                            .conn_closed(user, device, conn, now)
                            .await?;
                    }
                }
            }
            self.publish_presence(p).await;
        }
        if self.presence_unrecorded.load(Ordering::SeqCst) {
            // This node stalled past the TTL (or its record was lost):
            // other nodes may have taken its connections over. Its sweep
            // has renewed it, so no sweep takes them again: record them.
            for (user, conn) in self.hub.local_connections() {
                if presence.connect(&user, &conn, now).await? {
                    let online = crate::model::Presence::of(user, true, None);
                    self.publish_presence(online).await;
                }
            }
            self.presence_unrecorded.store(false, Ordering::SeqCst);
        }
        Ok(n)
    }

    /// Ends the calls whose time is up by this server's clock: those that
    /// rang unanswered for [`Config::call_ring_timeout_ms`] (`missed`:
    /// the callee's conversation alerts like a message), and those with a
    /// device in the call gone for [`Config::call_grace_ms`] (`gone`).
    /// Returns how many it ended. The embedder calls it often (chatd:
    /// every second); any node may run it at once with others: each call
    /// is ended once.
    pub async fn sweep_calls(&self) -> Result<usize, CoreError> {
        let now = self.now();
        let ago = |ms: u64| now.saturating_sub(i64::try_from(ms).unwrap_or(i64::MAX));
        let ringing_before = ago(self.config.call_ring_timeout_ms);
        let due = self
            .backends
            .calls
            .due(ringing_before, ago(self.config.call_grace_ms))
            .await?;
        let mut ended = 0;
        let mut out = crate::request::Out::default();
        for call in due {
            let end = if call.answered_by.is_none() && call.started_at < ringing_before {
                crate::model::CallEnd::Missed
            } else {
                crate::model::CallEnd::Gone
            };
            if crate::commands::calls::end_call(self, &mut out, &call.id, end, now, None)
                .await?
                .is_some()
            {
                ended += 1;
            }
            for (topic, event) in out.events.drain(..) {
                if let Err(e) = self.backends.broker.publish(&topic, event).await {
                    tracing::warn!(error = %e, "call event publish failed");
                }
            }
        }
        Ok(ended)
    }

    /// Publishes `presence` to the user's presence topic (a failure is
    /// logged: presence is best-effort, watchers catch up on their next
    /// read).
    pub(crate) async fn publish_presence(&self, presence: crate::model::Presence) {
        let topic = crate::store::Topic::Presence(presence.user.clone());
        if let Err(e) = self
            .backends
            .broker
            .publish(&topic, crate::store::Event::Presence(presence))
            .await
        {
            tracing::warn!(error = %e, "presence publish failed");
        }
    }

    /// This node's id: the part of its connection keys before the `/` in a
    /// shared presence store.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// Who a session token signs in, for requests outside a connection
    /// (chatd's media uploads and downloads, with the token in an
    /// `Authorization` header): the user and device of a live session, or
    /// `None` for an expired, revoked or unknown token or a deleted
    /// account. It does not extend the session (only `resume` does).
    pub async fn authenticate(
        &self,
        token: &str,
    ) -> Result<Option<(crate::model::UserId, crate::model::DeviceId)>, CoreError> {
        let hash = crate::commands::account::hash_token(token);
        let Some(session) = self.backends.sessions.get(&hash, self.now()).await? else {
            return Ok(None);
        };
        if self.backends.users.get(&session.user).await?.is_none() {
            return Ok(None);
        }
        Ok(Some((session.user, session.device)))
    }

    /// Whether the stores answer and events flow between nodes (for
    /// readiness probes).
    pub async fn ready(&self) -> Result<(), CoreError> {
        self.backends
            .users
            .get(&crate::model::UserId::from("readiness-probe"))
            .await?;
        self.backends
            .messages
            .conversation(&crate::model::ConversationId::from("readiness-probe"))
            .await?;
        self.backends.broker.ready().await?;
        Ok(())
    }

    pub(crate) fn next_conn_key(&self) -> (u64, String) {
        let n = self.next_conn.fetch_add(1, Ordering::Relaxed);
        (n, format!("{}/{n}", self.node_id))
    }
}
