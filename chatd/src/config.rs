//! Settings from flags, `CHATD_*` environment variables and an optional TOML
//! file, in that order of precedence, resolved into one [`Settings`].

use anyhow::{bail, Context as _};
use clap::{Args, Parser, ValueEnum};
use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use url::Url;

use crate::proxy::TrustedProxies;

const AFTER_HELP: &str = "\
Every option can also be set by its environment variable (shown in brackets) or, \
with the long name's dashes as underscores, in the --config TOML file \
(e.g. `max_connections = 500`, `allowed_origin = [\"https://chat.example\"]`). \
Flags override the environment, which overrides the file.

Stores:   sqlite:PATH (default sqlite:./chatd-data/chatd.db; durable, one file, its directory created),
          memory (data lives as long as the process: tests and demos), mongodb://host[:port]/[db] (durable, several nodes)
Backup:   chatd [--store sqlite:PATH] backup DEST writes a consistent copy of the SQLite database to DEST
          while the server keeps running (SQLite's online backup API; the copy is integrity-checked)
Mailers:  dir:<path> (one .eml file per mail; default dir:./chatd-mail),
          smtp://[user[:pass]@]host[:port] (see --smtp-starttls), smtps://host[:port] (implicit TLS)";

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "chatd",
    version,
    about = "chatd: the WebSocket daemon of the chatcore messenger engine",
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    /// TOML file with any of the options below.
    #[arg(long, env = "CHATD_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Print the bound address (e.g. `127.0.0.1:8080`) alone on a stdout line once listening, and
    /// the metrics listener's on the next line unless it is off (for scripts and tests that
    /// listen on port 0).
    #[arg(long)]
    print_addr: bool,

    /// LOAD TESTING ONLY: at start, create N accounts `lt0..lt{N-1}` sharing the password of
    /// --load-test-password (hashed once), each with one session, and write `username user_id token`
    /// lines to --load-test-tokens. With the memory or SQLite store (a fresh file) only.
    #[arg(long, value_name = "N", requires = "load_test_tokens")]
    load_test_accounts: Option<usize>,

    /// LOAD TESTING ONLY: where --load-test-accounts writes the tokens.
    #[arg(long, value_name = "FILE", requires = "load_test_accounts")]
    load_test_tokens: Option<PathBuf>,

    /// LOAD TESTING ONLY: the password of the --load-test-accounts accounts.
    #[arg(
        long,
        value_name = "PASSWORD",
        default_value = "load-test only: Xq7!vR2#pL9"
    )]
    load_test_password: String,

    /// LOAD TESTING ONLY: derive each --load-test-accounts user's id from SEED and its index
    /// instead of a fresh one, so that nodes started with the same SEED (each on its own memory
    /// store, sharing --redis) hold the same users under the same ids; tokens stay random, each
    /// node's own.
    #[arg(long, value_name = "SEED", requires = "load_test_accounts")]
    load_test_seed: Option<u64>,

    #[command(flatten)]
    options: Options,

    #[command(subcommand)]
    command: Option<Command>,
}

/// What to do instead of serving.
#[derive(clap::Subcommand, Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    /// Write a consistent copy of the SQLite database of --store to DEST while a server may be
    /// running on it (SQLite's online backup API); the copy is integrity-checked before it is
    /// renamed to DEST.
    Backup {
        /// Where the copy goes (replaced if it exists).
        dest: PathBuf,
    },
}

/// The options that may come from flags, environment or file. All optional
/// here; [`Settings::resolve`] supplies the defaults.
#[derive(Args, Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Address to listen on (default: 127.0.0.1:8080). Port 0 picks a free port.
    #[arg(long, env = "CHATD_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// URL at which users reach this server, e.g. `https://chat.example` (default: `http://<listen address>`).
    /// Used for the link in password-reset mails, and its origin is always an allowed Origin.
    #[arg(long, env = "CHATD_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,

    /// Where data is kept: `sqlite:PATH`, `memory` or `mongodb://...` (default:
    /// sqlite:./chatd-data/chatd.db, whose directory is created at start).
    #[arg(long, env = "CHATD_STORE", value_name = "STORE")]
    store: Option<String>,

    /// A Redis shared by several chatd nodes (`redis://host:port/`): events between the nodes
    /// (pub/sub), presence with node liveness and the rate limiters go through it, so that the
    /// nodes behind one load balancer behave as one server (with a shared `mongodb://` store).
    /// Without it, all of that stays in this process.
    #[arg(long, env = "CHATD_REDIS", value_name = "URL")]
    redis: Option<String>,

    /// With --redis: how long a node may go without renewing its liveness before the other
    /// nodes turn its users offline, in milliseconds (default: 30000). Each node renews it
    /// three times per period.
    #[arg(long, env = "CHATD_PRESENCE_TTL_MS", value_name = "MS")]
    presence_ttl_ms: Option<u64>,

    /// A STUN or TURN server for calls, as clients reach it: `stun:HOST:3478`,
    /// `turn:HOST:3478?transport=udp`, `turns:HOST:5349`; repeat, or comma-separate in the
    /// variable. TURN URLs need --turn-secret (default: none; calls then connect only where
    /// the two devices reach each other directly).
    #[arg(
        long,
        env = "CHATD_TURN_URLS",
        value_name = "URL",
        value_delimiter = ','
    )]
    turn_url: Option<Vec<String>>,

    /// The TURN server's shared secret (coturn's `static-auth-secret` with `use-auth-secret`):
    /// chatd makes each user short-lived TURN credentials with it. Prefer the environment
    /// variable or --turn-secret-file: flags are visible in the process list.
    #[arg(
        long,
        env = "CHATD_TURN_SECRET",
        value_name = "SECRET",
        hide_env_values = true
    )]
    turn_secret: Option<String>,

    /// A file whose first line is the TURN shared secret (instead of --turn-secret).
    #[arg(long, env = "CHATD_TURN_SECRET_FILE", value_name = "FILE")]
    turn_secret_file: Option<PathBuf>,

    /// How long a TURN credential is accepted after chatd made it, in seconds (default:
    /// 86400). Clients ask for fresh ones before each call.
    #[arg(long, env = "CHATD_TURN_TTL_SECS", value_name = "SECS")]
    turn_ttl_secs: Option<u64>,

    /// Where uploaded media files are kept: `dir:PATH` or `memory` (default: beside the SQLite
    /// database, `<db>-media`; in GridFS with a `mongodb://` store; in memory with `--store memory`).
    #[arg(long, env = "CHATD_MEDIA", value_name = "MEDIA")]
    media: Option<String>,

    /// How mail (password resets) is sent: `dir:<path>`, `smtp://...` or `smtps://...` (default: dir:./chatd-mail).
    #[arg(long, env = "CHATD_MAILER", value_name = "MAILER")]
    mailer: Option<String>,

    /// Sender address of mails (default: `chatd <noreply@localhost>`).
    #[arg(long, env = "CHATD_MAIL_FROM", value_name = "ADDRESS")]
    mail_from: Option<String>,

    /// STARTTLS on `smtp://` mailers (default: required). `never` sends in clear text (local relays and tests only).
    #[arg(long, env = "CHATD_SMTP_STARTTLS", value_name = "MODE")]
    smtp_starttls: Option<StartTls>,

    /// SMTP user name (overrides one in the mailer URL).
    #[arg(long, env = "CHATD_SMTP_USERNAME", value_name = "USER")]
    smtp_username: Option<String>,

    /// SMTP password (overrides one in the mailer URL). Prefer the environment
    /// variable or the file: flags are visible in the process list.
    #[arg(
        long,
        env = "CHATD_SMTP_PASSWORD",
        value_name = "PASSWORD",
        hide_env_values = true
    )]
    smtp_password: Option<String>,

    /// Origin allowed to open WebSockets, exactly as browsers send it (`https://chat.example`);
    /// repeat, or comma-separate in the variable. The public URL's origin is always allowed;
    /// requests without Origin (non-browser clients) are allowed.
    #[arg(
        long,
        env = "CHATD_ALLOWED_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    allowed_origin: Option<Vec<String>>,

    /// Address of the separate listener for `/metrics` (default: 127.0.0.1:9090); `off` disables it.
    /// Metrics are not served on --listen: they reveal traffic figures to whoever can reach the port.
    #[arg(long, env = "CHATD_METRICS_LISTEN", value_name = "ADDR|off")]
    metrics_listen: Option<String>,

    /// Bearer token the metrics listener requires (`Authorization: Bearer <token>`) (default: none).
    #[arg(
        long,
        env = "CHATD_METRICS_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    metrics_token: Option<String>,

    /// PEM file with the TLS certificate chain (leaf first); with --tls-key, the listener speaks
    /// HTTPS/WSS only (TLS 1.2 and 1.3). Both files are re-read on SIGHUP and when they change.
    #[arg(long, env = "CHATD_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,

    /// PEM file with the TLS private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(long, env = "CHATD_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,

    /// Seconds between checks whether the --tls-cert/--tls-key files changed; 0 reloads on SIGHUP
    /// only (default: 10).
    #[arg(long, env = "CHATD_TLS_RELOAD_SECS", value_name = "SECS")]
    tls_reload_secs: Option<u64>,

    /// Reverse proxy (CIDR such as `10.0.0.0/8`, or one address) whose `X-Forwarded-For` and PROXY
    /// protocol headers give the client address; repeat, or comma-separate in the variable
    /// (default: none: the socket's peer is the client).
    #[arg(
        long,
        env = "CHATD_TRUSTED_PROXIES",
        value_name = "CIDR",
        value_delimiter = ','
    )]
    trusted_proxy: Option<Vec<String>>,

    /// Connections from --trusted-proxy peers must start with a PROXY protocol header (v1 or v2),
    /// e.g. from HAProxy `send-proxy` or nginx `proxy_protocol on`; others are served as they come.
    #[arg(
        long,
        env = "CHATD_PROXY_PROTOCOL",
        value_name = "BOOL",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    proxy_protocol: Option<bool>,

    /// Largest WebSocket message (one frame) accepted, in bytes; larger ones close the connection with 1009
    /// (default: 65536).
    #[arg(long, env = "CHATD_MAX_MESSAGE_BYTES", value_name = "BYTES")]
    max_message_bytes: Option<usize>,

    /// Most WebSocket connections served at once; more are refused with 503 (default: 10000).
    #[arg(long, env = "CHATD_MAX_CONNECTIONS", value_name = "N")]
    max_connections: Option<usize>,

    /// Pushes queued per connection; a client that lets more pile up is closed with 4008
    /// and catches up by sync (default: 256).
    #[arg(long, env = "CHATD_OUTBOUND_QUEUE", value_name = "FRAMES")]
    outbound_queue: Option<usize>,

    /// Seconds between WebSocket pings the server sends (default: 25).
    #[arg(long, env = "CHATD_PING_INTERVAL_SECS", value_name = "SECS")]
    ping_interval_secs: Option<u64>,

    /// Seconds without any traffic (frames or pongs) after which a connection is closed with 1001
    /// (default: 60).
    #[arg(long, env = "CHATD_IDLE_TIMEOUT_SECS", value_name = "SECS")]
    idle_timeout_secs: Option<u64>,

    /// Seconds a connection may stay signed out before it is closed with 1008 (default: 10).
    #[arg(long, env = "CHATD_AUTH_TIMEOUT_SECS", value_name = "SECS")]
    auth_timeout_secs: Option<u64>,

    /// Connections not yet signed in allowed at once; more are closed at once with 1013 "try
    /// again later" (default: 1000).
    #[arg(long, env = "CHATD_MAX_UNAUTHENTICATED", value_name = "N")]
    max_unauthenticated: Option<usize>,

    /// The share of --max-unauthenticated one client address may hold (IPv6: per /64); more from
    /// that address are closed with 1013 (default: 100).
    #[arg(long, env = "CHATD_MAX_UNAUTHENTICATED_PER_ADDRESS", value_name = "N")]
    max_unauthenticated_per_address: Option<usize>,

    /// WebSocket connections one client address may hold, signed in or not (IPv6: per /64); more
    /// are closed with 4029 (default: 300).
    #[arg(long, env = "CHATD_MAX_CONNECTIONS_PER_ADDRESS", value_name = "N")]
    max_connections_per_address: Option<usize>,

    /// Connections one account may hold; a sign-in beyond it gets `limit_reached` and close 4029
    /// (default: 20).
    #[arg(long, env = "CHATD_MAX_CONNECTIONS_PER_USER", value_name = "N")]
    max_connections_per_user: Option<usize>,

    /// Bytes of messages one user may send per minute, across all their connections; each message
    /// counts its text but at least 512 bytes. Past it `send` gets `rate_limited` (default:
    /// 4194304, 4 MiB).
    #[arg(long, env = "CHATD_SEND_BYTES_PER_MINUTE", value_name = "BYTES")]
    send_bytes_per_minute: Option<u32>,

    /// `typing` events one connection may send per minute; more are answered `ok` and dropped
    /// (default: 120).
    #[arg(long, env = "CHATD_TYPING_PER_MINUTE", value_name = "N")]
    typing_per_minute: Option<u32>,

    /// How long a `typing` push holds without another, in milliseconds; clients resend about
    /// every half of it while the user writes (default: 6000).
    #[arg(long, env = "CHATD_TYPING_TTL_MS", value_name = "MS")]
    typing_ttl_ms: Option<u32>,

    /// How far before a `receipts` request's `since` receipts are read again, in milliseconds:
    /// covers clocks of several nodes that disagree (default: 10000).
    #[arg(long, env = "CHATD_RECEIPT_OVERLAP_MS", value_name = "MS")]
    receipt_overlap_ms: Option<u64>,

    /// How long after sending it a message may be edited by its sender, in milliseconds
    /// (default: 86400000, a day).
    #[arg(long, env = "CHATD_EDIT_WINDOW_MS", value_name = "MS")]
    edit_window_ms: Option<u64>,

    /// How long a call rings unanswered before it ends as missed, in milliseconds (default:
    /// 60000).
    #[arg(long, env = "CHATD_CALL_RING_TIMEOUT_MS", value_name = "MS")]
    call_ring_timeout_ms: Option<u64>,

    /// How long a device in a call may be without its connection before the call ends, in
    /// milliseconds (default: 30000); a device that signs in again within it keeps the call.
    #[arg(long, env = "CHATD_CALL_GRACE_MS", value_name = "MS")]
    call_grace_ms: Option<u64>,

    /// How often calls past those times are looked for and ended, in milliseconds (default:
    /// 1000).
    #[arg(long, env = "CHATD_CALL_SWEEP_MS", value_name = "MS")]
    call_sweep_ms: Option<u64>,

    /// Calls one user may start per minute, across nodes (default: 20).
    #[arg(long, env = "CHATD_CALL_INVITES_PER_MINUTE", value_name = "N")]
    call_invites_per_minute: Option<u32>,

    /// How often the content of messages whose disappearing timer is up is removed from the
    /// store, in milliseconds (default: 60000). Clients drop their copies on time by themselves.
    #[arg(long, env = "CHATD_EXPIRE_SWEEP_MS", value_name = "MS")]
    expire_sweep_ms: Option<u64>,

    /// How long an uploaded file that no message, profile or group refers to is kept before it
    /// is deleted, in milliseconds (default: 86400000, a day): the time between an upload and
    /// the message that sends it, and how long a deleted message's files stay.
    #[arg(long, env = "CHATD_MEDIA_GRACE_MS", value_name = "MS")]
    media_grace_ms: Option<u64>,

    /// How often files that nothing refers to (past --media-grace-ms) are looked for and
    /// deleted, in milliseconds (default: 3600000, an hour).
    #[arg(long, env = "CHATD_MEDIA_SWEEP_MS", value_name = "MS")]
    media_sweep_ms: Option<u64>,

    /// The largest media file an upload may carry, in bytes (default: 26214400, 25 MiB).
    #[arg(long, env = "CHATD_MAX_MEDIA_BYTES", value_name = "BYTES")]
    max_media_bytes: Option<u64>,

    /// Media uploads per user per minute (default: 30).
    #[arg(long, env = "CHATD_MEDIA_UPLOADS_PER_MINUTE", value_name = "N")]
    media_uploads_per_minute: Option<u32>,

    /// Bytes of media a user may upload per day (default: 1073741824, 1 GiB).
    #[arg(long, env = "CHATD_MEDIA_BYTES_PER_DAY", value_name = "BYTES")]
    media_bytes_per_day: Option<u64>,

    /// Registrations allowed per hour on the whole service, whatever the addresses; bounds how
    /// fast anyone can probe which emails and phones have accounts (default: 1000).
    #[arg(long, env = "CHATD_SIGNUPS_PER_HOUR", value_name = "N")]
    signups_per_hour: Option<u32>,

    /// Current members a group may have; `add_members` and `join` beyond it get `limit_reached`
    /// (default: 1000).
    #[arg(long, env = "CHATD_MAX_GROUP_MEMBERS", value_name = "N")]
    max_group_members: Option<usize>,

    /// Attempts to join a group by invite token allowed per user per --join-window-secs, so
    /// tokens cannot be guessed (default: 30).
    #[arg(long, env = "CHATD_JOIN_ATTEMPTS", value_name = "N")]
    join_attempts: Option<u32>,

    /// The window of --join-attempts, in seconds (default: 600).
    #[arg(long, env = "CHATD_JOIN_WINDOW_SECS", value_name = "SECS")]
    join_window_secs: Option<u64>,

    /// Contact requests a user may send per --contact-requests-window-secs (default: 50).
    #[arg(long, env = "CHATD_CONTACT_REQUESTS", value_name = "N")]
    contact_requests: Option<u32>,

    /// The window of --contact-requests, in seconds (default: 86400).
    #[arg(long, env = "CHATD_CONTACT_REQUESTS_WINDOW_SECS", value_name = "SECS")]
    contact_requests_window_secs: Option<u64>,

    /// How long a user whose contact request was declined waits before asking the same
    /// user again, in seconds (default: 604800, a week).
    #[arg(long, env = "CHATD_CONTACT_RETRY_SECS", value_name = "SECS")]
    contact_retry_secs: Option<u64>,

    /// Keys of other devices a user may claim per --key-claims-window-secs (default: 1000).
    #[arg(long, env = "CHATD_KEY_CLAIMS", value_name = "N")]
    key_claims: Option<u32>,

    /// The window of --key-claims, in seconds (default: 3600).
    #[arg(long, env = "CHATD_KEY_CLAIMS_WINDOW_SECS", value_name = "SECS")]
    key_claims_window_secs: Option<u64>,

    /// One-time keys a device may keep on the server (default: 100).
    #[arg(long, env = "CHATD_MAX_ONE_TIME_KEYS", value_name = "N")]
    max_one_time_keys: Option<usize>,

    /// To-device payloads that may wait for one device; past it a sender is told `full`
    /// (default: 1000).
    #[arg(long, env = "CHATD_MAX_TO_DEVICE_QUEUE", value_name = "N")]
    max_to_device_queue: Option<usize>,

    /// Largest to-device payload, in bytes; its base64 must fit in --max-message-bytes
    /// (default: 32768).
    #[arg(long, env = "CHATD_MAX_TO_DEVICE_BYTES", value_name = "BYTES")]
    max_to_device_bytes: Option<usize>,

    /// Conversation keys a user's encrypted key backup may hold (default: 100000).
    #[arg(long, env = "CHATD_MAX_KEY_BACKUP_KEYS", value_name = "N")]
    max_key_backup_keys: Option<usize>,

    /// Largest encrypted key, and largest description (`auth_data`), in a user's key backup,
    /// in bytes (default: 4096).
    #[arg(long, env = "CHATD_MAX_KEY_BACKUP_BYTES", value_name = "BYTES")]
    max_key_backup_bytes: Option<usize>,

    /// Registrations and password-reset requests allowed per client address per hour (default: 30).
    #[arg(long, env = "CHATD_SIGNUPS_PER_ADDRESS_PER_HOUR", value_name = "N")]
    signups_per_address_per_hour: Option<u32>,

    /// Failed logins allowed per account in 15 minutes; then `rate_limited` with the time to wait
    /// (default: 10).
    #[arg(long, env = "CHATD_LOGIN_FAILURES_PER_ACCOUNT", value_name = "N")]
    login_failures_per_account: Option<u32>,

    /// Failed logins allowed per client address in 15 minutes (default: 100).
    #[arg(long, env = "CHATD_LOGIN_FAILURES_PER_ADDRESS", value_name = "N")]
    login_failures_per_address: Option<u32>,

    /// Requests per second allowed per connection, sustained; above it requests get `rate_limited`
    /// (default: 50).
    #[arg(long, env = "CHATD_FRAMES_PER_SECOND", value_name = "N")]
    frames_per_second: Option<u32>,

    /// Requests allowed in a burst above the sustained rate (default: 200).
    #[arg(long, env = "CHATD_FRAME_BURST", value_name = "N")]
    frame_burst: Option<u32>,

    /// How long `/readyz` waits for the store to answer before it says unready, in milliseconds
    /// (default: 2000).
    #[arg(long, env = "CHATD_READYZ_TIMEOUT_MS", value_name = "MS")]
    readyz_timeout_ms: Option<u64>,

    /// Seconds to wait for connections to close at shutdown before exiting anyway (default: 10).
    #[arg(long, env = "CHATD_SHUTDOWN_TIMEOUT_SECS", value_name = "SECS")]
    shutdown_timeout_secs: Option<u64>,

    /// Log filter, in tracing's EnvFilter syntax, e.g. `info` or `chatd=debug,chatcore=info` (default: info).
    #[arg(long, env = "CHATD_LOG", value_name = "FILTER")]
    log: Option<String>,

    /// Log format: `text` or `json` (one object per line) (default: text).
    #[arg(long, env = "CHATD_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<LogFormat>,

    /// FOR TESTS ONLY: argon2id memory cost in KiB (min 8). Lowers password-hash strength to make test
    /// suites fast; never set it in production (default: chatcore's OWASP cost, 19456).
    #[arg(long, env = "CHATD_ARGON2_M_KIB", value_name = "KIB")]
    argon2_m_kib: Option<u32>,
}

/// STARTTLS policy of an `smtp://` mailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum StartTls {
    /// Refuse to send unless the server upgrades to TLS.
    Required,
    /// Upgrade when the server offers it.
    Opportunistic,
    /// Plain text.
    Never,
}

/// Log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// A secret that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(pub(crate) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Which store backs the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoreSpec {
    /// chatcore's in-memory stores.
    Memory,
    /// A MongoDB deployment (chatcore-mongo); the URI may name the database.
    Mongo(Secret),
    /// A SQLite database file (chatcore-sqlite).
    Sqlite(PathBuf),
}

impl StoreSpec {
    /// The store for logs: where data lives, without secrets.
    pub(crate) fn describe(&self) -> String {
        match self {
            StoreSpec::Memory => "memory (nothing kept at exit)".to_owned(),
            StoreSpec::Mongo(_) => "mongodb".to_owned(),
            StoreSpec::Sqlite(path) if path.to_str().is_some_and(|p| p.starts_with("file:")) => {
                format!("sqlite:{}", path.display())
            }
            StoreSpec::Sqlite(path) => {
                let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
                format!("sqlite:{}", path.display())
            }
        }
    }
}

/// Where media files are kept, when `--media` overrides the store's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MediaSpec {
    /// In memory (bounded): gone at exit.
    Memory,
    /// One file per blob under a directory.
    Dir(PathBuf),
}

/// The store when none is configured: durable, beside the working directory.
pub(crate) const DEFAULT_STORE: &str = "sqlite:./chatd-data/chatd.db";

/// How mail is sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MailerSpec {
    /// One file per mail in a directory.
    Dir(PathBuf),
    /// An SMTP relay.
    Smtp(SmtpSpec),
}

/// An SMTP relay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SmtpSpec {
    /// Host name or address.
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
    /// TLS from the first byte (`smtps://`).
    pub(crate) implicit_tls: bool,
    /// STARTTLS policy when not implicit.
    pub(crate) starttls: StartTls,
    /// User name and password, if the relay wants them.
    pub(crate) credentials: Option<(String, Secret)>,
}

/// Accounts to create at start for a load test (`--load-test-accounts`).
#[derive(Clone, Debug)]
pub(crate) struct LoadTest {
    pub(crate) accounts: usize,
    pub(crate) tokens: PathBuf,
    pub(crate) password: Secret,
    /// `--load-test-seed`: user ids derived from it, the same on every node.
    pub(crate) seed: Option<u64>,
}

/// The certificate and key files of `--tls-cert`/`--tls-key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
    /// Zero: reload on SIGHUP only.
    pub(crate) reload_every: Duration,
}

/// Everything chatd runs with, defaults applied and validated.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) listen: SocketAddr,
    pub(crate) print_addr: bool,
    /// `None`: derived from the bound address at start.
    pub(crate) public_url: Option<Url>,
    pub(crate) store: StoreSpec,
    pub(crate) redis: Option<Secret>,
    pub(crate) presence_ttl_ms: u64,
    /// `--turn-url`: STUN and TURN URLs for calls.
    pub(crate) turn_urls: Vec<String>,
    pub(crate) turn_secret: Option<Secret>,
    pub(crate) turn_ttl: Duration,
    pub(crate) media: Option<MediaSpec>,
    /// `chatd backup DEST`: copy the database instead of serving.
    pub(crate) backup: Option<PathBuf>,
    pub(crate) mailer: MailerSpec,
    pub(crate) mail_from: String,
    pub(crate) allowed_origins: Vec<String>,
    /// `None`: `--metrics-listen off`.
    pub(crate) metrics_listen: Option<SocketAddr>,
    pub(crate) metrics_token: Option<Secret>,
    pub(crate) tls: Option<TlsFiles>,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) proxy_protocol: bool,
    pub(crate) max_message_bytes: usize,
    pub(crate) max_connections: usize,
    pub(crate) outbound_queue: usize,
    pub(crate) ping_interval: Duration,
    pub(crate) idle_timeout: Duration,
    pub(crate) auth_timeout: Duration,
    pub(crate) max_unauthenticated: usize,
    pub(crate) max_unauthenticated_per_address: usize,
    pub(crate) max_connections_per_address: usize,
    pub(crate) max_connections_per_user: usize,
    pub(crate) send_bytes_per_minute: u32,
    pub(crate) typing_per_minute: u32,
    pub(crate) typing_ttl_ms: u32,
    pub(crate) receipt_overlap_ms: u64,
    pub(crate) edit_window_ms: u64,
    pub(crate) expire_sweep: Duration,
    pub(crate) call_ring_timeout: Duration,
    pub(crate) call_grace: Duration,
    pub(crate) call_sweep: Duration,
    pub(crate) call_invites_per_minute: u32,
    pub(crate) media_grace_ms: u64,
    pub(crate) media_sweep: Duration,
    pub(crate) max_media_bytes: u64,
    pub(crate) media_uploads_per_minute: u32,
    pub(crate) media_bytes_per_day: u64,
    pub(crate) signups_per_hour: u32,
    pub(crate) signups_per_address_per_hour: u32,
    pub(crate) max_group_members: usize,
    pub(crate) join_attempts: u32,
    pub(crate) join_window: Duration,
    pub(crate) contact_requests: u32,
    pub(crate) contact_requests_window: Duration,
    pub(crate) contact_retry: Duration,
    pub(crate) key_claims: u32,
    pub(crate) key_claims_window: Duration,
    pub(crate) max_one_time_keys: usize,
    pub(crate) max_to_device_queue: usize,
    pub(crate) max_to_device_bytes: usize,
    pub(crate) max_key_backup_keys: usize,
    pub(crate) max_key_backup_bytes: usize,
    pub(crate) login_failures_per_account: u32,
    pub(crate) login_failures_per_address: u32,
    pub(crate) frames_per_second: u32,
    pub(crate) frame_burst: u32,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) readyz_timeout: Duration,
    pub(crate) log: String,
    pub(crate) log_format: LogFormat,
    pub(crate) argon2_m_kib: Option<u32>,
    pub(crate) load_test: Option<LoadTest>,
}

impl Settings {
    /// Reads the command line, the environment and the config file.
    pub(crate) fn load() -> anyhow::Result<Settings> {
        Self::from_cli(Cli::parse())
    }

    /// Settings from a parsed command line, without a config file.
    #[cfg(test)]
    pub(crate) fn for_tests(cli: Cli) -> Settings {
        Self::resolve(cli.options, cli.print_addr).expect("valid test settings")
    }

    fn from_cli(cli: Cli) -> anyhow::Result<Settings> {
        let file = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str::<Options>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Options::default(),
        };
        let mut settings = Self::resolve(cli.options.or(file), cli.print_addr)?;
        if let Some(Command::Backup { dest }) = cli.command {
            if !matches!(settings.store, StoreSpec::Sqlite(_)) {
                bail!("`chatd backup` copies a SQLite store: give --store sqlite:PATH");
            }
            settings.backup = Some(dest);
        }
        if let (Some(accounts), Some(tokens)) = (cli.load_test_accounts, cli.load_test_tokens) {
            if matches!(settings.store, StoreSpec::Mongo(_)) {
                bail!("--load-test-accounts works with the memory and SQLite stores only");
            }
            settings.load_test = Some(LoadTest {
                accounts,
                tokens,
                password: Secret(cli.load_test_password),
                seed: cli.load_test_seed,
            });
        }
        Ok(settings)
    }

    fn resolve(o: Options, print_addr: bool) -> anyhow::Result<Settings> {
        let secs = |v: Option<u64>, default: u64| Duration::from_secs(v.unwrap_or(default));
        let public_url = o
            .public_url
            .as_deref()
            .map(|u| {
                let url = Url::parse(u).with_context(|| format!("invalid --public-url {u:?}"))?;
                if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                    bail!("--public-url must be an http:// or https:// URL, not {u:?}");
                }
                Ok(url)
            })
            .transpose()?;
        let mut allowed_origins = Vec::new();
        for origin in o.allowed_origin.unwrap_or_default() {
            let origin = origin.trim().trim_end_matches('/');
            if origin.is_empty() {
                continue;
            }
            if origin != "null" && Url::parse(origin).is_err() {
                bail!("--allowed-origin {origin:?} is not an origin like https://chat.example");
            }
            allowed_origins.push(origin.to_owned());
        }
        let metrics_listen = match o.metrics_listen.as_deref().map(str::trim) {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            Some("off") => None,
            Some(a) => Some(a.parse().map_err(|_| {
                anyhow::anyhow!(
                    "--metrics-listen {a:?} is neither an address like 127.0.0.1:9090 nor `off`"
                )
            })?),
        };
        let tls = match (o.tls_cert, o.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                reload_every: secs(o.tls_reload_secs, 10),
            }),
            (None, None) => None,
            _ => bail!("--tls-cert and --tls-key go together"),
        };
        let trusted_proxies = TrustedProxies::parse(&o.trusted_proxy.unwrap_or_default())
            .map_err(anyhow::Error::msg)?;
        let proxy_protocol = o.proxy_protocol.unwrap_or(false);
        if proxy_protocol && trusted_proxies.is_empty() {
            bail!("--proxy-protocol needs --trusted-proxy: the header is accepted from trusted peers only");
        }
        let (turn_urls, turn_secret) = parse_turn(
            o.turn_url.unwrap_or_default(),
            o.turn_secret,
            o.turn_secret_file,
        )?;
        let s = Settings {
            metrics_listen,
            metrics_token: o.metrics_token.filter(|t| !t.is_empty()).map(Secret),
            tls,
            trusted_proxies,
            proxy_protocol,
            listen: o
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            print_addr,
            public_url,
            store: parse_store(o.store.as_deref().unwrap_or(DEFAULT_STORE))?,
            redis: o.redis.as_deref().map(parse_redis).transpose()?,
            presence_ttl_ms: o.presence_ttl_ms.unwrap_or(30_000),
            turn_urls,
            turn_secret,
            turn_ttl: secs(o.turn_ttl_secs, 86_400),
            media: o.media.as_deref().map(parse_media).transpose()?,
            backup: None,
            mailer: parse_mailer(
                o.mailer.as_deref().unwrap_or("dir:./chatd-mail"),
                o.smtp_starttls.unwrap_or(StartTls::Required),
                o.smtp_username,
                o.smtp_password,
            )?,
            mail_from: o
                .mail_from
                .unwrap_or_else(|| "chatd <noreply@localhost>".to_owned()),
            allowed_origins,
            max_message_bytes: o.max_message_bytes.unwrap_or(64 * 1024),
            max_connections: o.max_connections.unwrap_or(10_000),
            outbound_queue: o.outbound_queue.unwrap_or(256),
            ping_interval: secs(o.ping_interval_secs, 25),
            idle_timeout: secs(o.idle_timeout_secs, 60),
            auth_timeout: secs(o.auth_timeout_secs, 10),
            max_unauthenticated: o.max_unauthenticated.unwrap_or(1000),
            max_unauthenticated_per_address: o.max_unauthenticated_per_address.unwrap_or(100),
            max_connections_per_address: o.max_connections_per_address.unwrap_or(300),
            max_connections_per_user: o.max_connections_per_user.unwrap_or(20),
            send_bytes_per_minute: o.send_bytes_per_minute.unwrap_or(4 << 20),
            typing_per_minute: o.typing_per_minute.unwrap_or(120),
            typing_ttl_ms: o.typing_ttl_ms.unwrap_or(6000),
            receipt_overlap_ms: o.receipt_overlap_ms.unwrap_or(10_000),
            edit_window_ms: o.edit_window_ms.unwrap_or(24 * 60 * 60 * 1000),
            expire_sweep: Duration::from_millis(o.expire_sweep_ms.unwrap_or(60_000)),
            call_ring_timeout: Duration::from_millis(o.call_ring_timeout_ms.unwrap_or(60_000)),
            call_grace: Duration::from_millis(o.call_grace_ms.unwrap_or(30_000)),
            call_sweep: Duration::from_millis(o.call_sweep_ms.unwrap_or(1000)),
            call_invites_per_minute: o.call_invites_per_minute.unwrap_or(20),
            media_grace_ms: o.media_grace_ms.unwrap_or(24 * 60 * 60 * 1000),
            media_sweep: Duration::from_millis(o.media_sweep_ms.unwrap_or(60 * 60 * 1000)),
            max_media_bytes: o.max_media_bytes.unwrap_or(25 << 20),
            media_uploads_per_minute: o.media_uploads_per_minute.unwrap_or(30),
            media_bytes_per_day: o.media_bytes_per_day.unwrap_or(1 << 30),
            signups_per_hour: o.signups_per_hour.unwrap_or(1000),
            signups_per_address_per_hour: o.signups_per_address_per_hour.unwrap_or(30),
            max_group_members: o.max_group_members.unwrap_or(1000),
            join_attempts: o.join_attempts.unwrap_or(30),
            join_window: secs(o.join_window_secs, 600),
            contact_requests: o.contact_requests.unwrap_or(50),
            contact_requests_window: secs(o.contact_requests_window_secs, 86_400),
            contact_retry: secs(o.contact_retry_secs, 604_800),
            key_claims: o.key_claims.unwrap_or(1000),
            key_claims_window: secs(o.key_claims_window_secs, 3600),
            max_one_time_keys: o.max_one_time_keys.unwrap_or(100),
            max_to_device_queue: o.max_to_device_queue.unwrap_or(1000),
            max_to_device_bytes: o.max_to_device_bytes.unwrap_or(32 * 1024),
            max_key_backup_keys: o.max_key_backup_keys.unwrap_or(100_000),
            max_key_backup_bytes: o.max_key_backup_bytes.unwrap_or(4 * 1024),
            login_failures_per_account: o.login_failures_per_account.unwrap_or(10),
            login_failures_per_address: o.login_failures_per_address.unwrap_or(100),
            frames_per_second: o.frames_per_second.unwrap_or(50),
            frame_burst: o.frame_burst.unwrap_or(200),
            shutdown_timeout: secs(o.shutdown_timeout_secs, 10),
            readyz_timeout: Duration::from_millis(o.readyz_timeout_ms.unwrap_or(2000)),
            log: o.log.unwrap_or_else(|| "info".to_owned()),
            log_format: o.log_format.unwrap_or(LogFormat::Text),
            argon2_m_kib: o.argon2_m_kib,
            load_test: None,
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !(4096..=(16 << 20)).contains(&self.max_message_bytes) {
            bail!("--max-message-bytes must be between 4096 and 16777216");
        }
        if self.max_connections == 0
            || self.outbound_queue == 0
            || self.max_unauthenticated == 0
            || self.max_unauthenticated_per_address == 0
            || self.max_connections_per_address == 0
            || self.max_connections_per_user == 0
            || self.signups_per_hour == 0
            || self.signups_per_address_per_hour == 0
            || self.login_failures_per_account == 0
            || self.login_failures_per_address == 0
            || self.max_group_members < 2
            || self.join_attempts == 0
            || self.join_window.is_zero()
            || self.contact_requests == 0
            || self.contact_requests_window.is_zero()
            || self.key_claims == 0
            || self.key_claims_window.is_zero()
            || self.max_one_time_keys == 0
            || self.max_to_device_queue == 0
        {
            bail!(
                "--max-connections, --outbound-queue, the --max-unauthenticated*, \
                 --max-connections-per-*, --signups-per-*, --login-failures-per-*, \
                 --join-attempts, --join-window-secs, --contact-requests, \
                 --contact-requests-window-secs, --key-claims, --key-claims-window-secs \
                 --max-one-time-keys and --max-to-device-queue must be at least 1, and \
                 --max-group-members at least 2"
            );
        }
        if self.max_to_device_bytes < 1024
            || self.max_to_device_bytes.saturating_mul(4) / 3 + 1024 > self.max_message_bytes
        {
            bail!(
                "--max-to-device-bytes must be at least 1024, and its base64 (4/3 of it) \
                 plus 1 KiB must fit in --max-message-bytes"
            );
        }
        if self.max_key_backup_keys == 0
            || self.max_key_backup_bytes < 256
            || self.max_key_backup_bytes.saturating_mul(4) / 3 + 1024 > self.max_message_bytes
        {
            bail!(
                "--max-key-backup-keys must be at least 1, and --max-key-backup-bytes at least 256 \
                 with its base64 (4/3 of it) plus 1 KiB within --max-message-bytes"
            );
        }
        if self.max_media_bytes == 0 || self.media_uploads_per_minute == 0 {
            bail!("--max-media-bytes and --media-uploads-per-minute must be at least 1");
        }
        if self.media_bytes_per_day < self.max_media_bytes {
            bail!("--media-bytes-per-day must be at least --max-media-bytes");
        }
        if !(60..=7 * 86_400).contains(&self.turn_ttl.as_secs()) {
            bail!("--turn-ttl-secs must be between 60 and 604800 (a week)");
        }
        if self.presence_ttl_ms < 3 {
            bail!("--presence-ttl-ms must be at least 3");
        }
        if self.call_ring_timeout.is_zero()
            || self.call_grace.is_zero()
            || self.call_sweep.is_zero()
            || self.call_invites_per_minute == 0
        {
            bail!(
                "--call-ring-timeout-ms, --call-grace-ms, --call-sweep-ms and \
                 --call-invites-per-minute must be at least 1"
            );
        }
        if self.expire_sweep.is_zero() || self.media_sweep.is_zero() {
            bail!("--expire-sweep-ms and --media-sweep-ms must be at least 1");
        }
        if self.readyz_timeout.is_zero() {
            bail!("--readyz-timeout-ms must be at least 1");
        }
        if self.typing_per_minute == 0 || !(1000..=60_000).contains(&self.typing_ttl_ms) {
            bail!("--typing-per-minute must be at least 1, and --typing-ttl-ms from 1000 to 60000");
        }
        if self.send_bytes_per_minute < 64 * 1024 {
            bail!("--send-bytes-per-minute must be at least 65536 (four of the largest messages)");
        }
        if self.ping_interval.is_zero() || self.idle_timeout <= self.ping_interval {
            bail!("--ping-interval-secs must be at least 1 and below --idle-timeout-secs");
        }
        if self.auth_timeout.is_zero() || self.frames_per_second == 0 || self.frame_burst == 0 {
            bail!("--auth-timeout-secs, --frames-per-second and --frame-burst must be at least 1");
        }
        if self.argon2_m_kib.is_some_and(|m| m < 8) {
            bail!("--argon2-m-kib must be at least 8");
        }
        Ok(())
    }
}

impl Options {
    /// Each option from `self`, else from `other`.
    fn or(self, other: Options) -> Options {
        macro_rules! pick {
            ($($field:ident),* $(,)?) => {
                Options { $($field: self.$field.or(other.$field)),* }
            };
        }
        pick!(
            listen,
            public_url,
            store,
            redis,
            presence_ttl_ms,
            turn_url,
            turn_secret,
            turn_secret_file,
            turn_ttl_secs,
            media,
            mailer,
            mail_from,
            smtp_starttls,
            smtp_username,
            smtp_password,
            allowed_origin,
            metrics_listen,
            metrics_token,
            tls_cert,
            tls_key,
            tls_reload_secs,
            trusted_proxy,
            proxy_protocol,
            max_message_bytes,
            max_connections,
            outbound_queue,
            ping_interval_secs,
            idle_timeout_secs,
            auth_timeout_secs,
            max_unauthenticated,
            max_unauthenticated_per_address,
            max_connections_per_address,
            max_connections_per_user,
            send_bytes_per_minute,
            typing_per_minute,
            typing_ttl_ms,
            receipt_overlap_ms,
            edit_window_ms,
            expire_sweep_ms,
            call_ring_timeout_ms,
            call_grace_ms,
            call_sweep_ms,
            call_invites_per_minute,
            media_grace_ms,
            media_sweep_ms,
            max_media_bytes,
            media_uploads_per_minute,
            media_bytes_per_day,
            signups_per_hour,
            signups_per_address_per_hour,
            max_group_members,
            join_attempts,
            join_window_secs,
            contact_requests,
            contact_requests_window_secs,
            contact_retry_secs,
            key_claims,
            key_claims_window_secs,
            max_one_time_keys,
            max_to_device_queue,
            max_to_device_bytes,
            max_key_backup_keys,
            max_key_backup_bytes,
            login_failures_per_account,
            login_failures_per_address,
            frames_per_second,
            frame_burst,
            shutdown_timeout_secs,
            readyz_timeout_ms,
            log,
            log_format,
            argon2_m_kib,
        )
    }
}

/// `--turn-url`, `--turn-secret` and `--turn-secret-file`: checked URLs and
/// the secret, which TURN URLs need and nothing else uses.
fn parse_turn(
    urls: Vec<String>,
    secret: Option<String>,
    secret_file: Option<PathBuf>,
) -> anyhow::Result<(Vec<String>, Option<Secret>)> {
    let mut out = Vec::new();
    for url in urls {
        let url = url.trim();
        if url.is_empty() {
            continue;
        }
        let rest = ["stun:", "turn:", "turns:"]
            .iter()
            .find_map(|scheme| url.strip_prefix(scheme));
        match rest {
            Some(rest)
                if !rest.is_empty()
                    && !rest.starts_with(['/', ':', '?'])
                    && !url.chars().any(|c| c.is_whitespace() || c.is_control()) => {}
            _ => bail!(
                "--turn-url {url:?} is not a URL like stun:host:3478, \
                 turn:host:3478?transport=udp or turns:host:5349"
            ),
        }
        out.push(url.to_owned());
    }
    let secret = match (secret.filter(|s| !s.is_empty()), secret_file) {
        (Some(_), Some(_)) => bail!("give --turn-secret or --turn-secret-file, not both"),
        (Some(s), None) => Some(Secret(s)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read --turn-secret-file {}", path.display()))?;
            match text.lines().next().map(str::trim) {
                Some(line) if !line.is_empty() => Some(Secret(line.to_owned())),
                _ => bail!("--turn-secret-file {} is empty", path.display()),
            }
        }
        (None, None) => None,
    };
    let turn = out
        .iter()
        .any(|u| u.starts_with("turn:") || u.starts_with("turns:"));
    match (turn, &secret) {
        (true, None) => bail!(
            "a turn: URL needs --turn-secret (or --turn-secret-file): browsers refuse TURN \
             servers without credentials"
        ),
        (false, Some(_)) => bail!("--turn-secret is given but no --turn-url names a turn: server"),
        _ => Ok((out, secret)),
    }
}

fn parse_media(s: &str) -> anyhow::Result<MediaSpec> {
    let s = s.trim();
    match s.strip_prefix("dir:") {
        Some("") => bail!("--media dir: needs a directory, e.g. dir:./chatd-data/media"),
        Some(path) => Ok(MediaSpec::Dir(PathBuf::from(path))),
        None if s == "memory" => Ok(MediaSpec::Memory),
        None => bail!("unknown --media {s:?}: use `dir:PATH` or `memory`"),
    }
}

fn parse_redis(s: &str) -> anyhow::Result<Secret> {
    let s = s.trim();
    if s.starts_with("redis://") || s.starts_with("rediss://") {
        Ok(Secret(s.to_owned()))
    } else {
        bail!("--redis takes a redis:// or rediss:// URL")
    }
}

fn parse_store(s: &str) -> anyhow::Result<StoreSpec> {
    let s = s.trim();
    if s == "memory" {
        Ok(StoreSpec::Memory)
    } else if s.starts_with("mongodb://") || s.starts_with("mongodb+srv://") {
        Ok(StoreSpec::Mongo(Secret(s.to_owned())))
    } else if let Some(path) = s.strip_prefix("sqlite:") {
        if path.is_empty() {
            bail!("--store sqlite: needs a file path, e.g. sqlite:./chatd-data/chatd.db");
        }
        Ok(StoreSpec::Sqlite(PathBuf::from(path)))
    } else {
        bail!("unknown --store {s:?}: use `sqlite:PATH`, `memory` or a `mongodb://` URI")
    }
}

fn parse_mailer(
    s: &str,
    starttls: StartTls,
    username: Option<String>,
    password: Option<String>,
) -> anyhow::Result<MailerSpec> {
    let s = s.trim();
    if let Some(path) = s.strip_prefix("dir:") {
        if path.is_empty() {
            bail!("--mailer dir: needs a directory, e.g. dir:./chatd-mail");
        }
        return Ok(MailerSpec::Dir(PathBuf::from(path)));
    }
    let url = Url::parse(s).map_err(|_| {
        anyhow::anyhow!(
            "unknown --mailer {s:?}: use dir:<path>, smtp://host:port or smtps://host:port"
        )
    })?;
    let implicit_tls = match url.scheme() {
        "smtp" => false,
        "smtps" => true,
        other => bail!("unknown --mailer scheme {other:?}: use dir:, smtp:// or smtps://"),
    };
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .context("the SMTP mailer URL needs a host")?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = url.port().unwrap_or(match (implicit_tls, starttls) {
        (true, _) => 465,
        (false, StartTls::Never) => 25,
        (false, _) => 587,
    });
    let decode = |v: &str| {
        percent_encoding::percent_decode_str(v)
            .decode_utf8_lossy()
            .into_owned()
    };
    let url_user = Some(decode(url.username())).filter(|u| !u.is_empty());
    let url_pass = url.password().map(decode);
    let credentials = match (username.or(url_user), password.or(url_pass)) {
        (Some(user), Some(pass)) => Some((user, Secret(pass))),
        (None, None) => None,
        _ => bail!("SMTP credentials need both a user name and a password"),
    };
    Ok(MailerSpec::Smtp(SmtpSpec {
        host,
        port,
        implicit_tls,
        starttls,
        credentials,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Settings> {
        let cli = Cli::try_parse_from(std::iter::once("chatd").chain(args.iter().copied()))?;
        Settings::resolve(cli.options, cli.print_addr)
    }

    #[test]
    fn defaults() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            s.store,
            StoreSpec::Sqlite(PathBuf::from("./chatd-data/chatd.db"))
        );
        assert_eq!(s.mailer, MailerSpec::Dir("./chatd-mail".into()));
        assert_eq!(s.max_message_bytes, 65536);
        assert_eq!(s.argon2_m_kib, None);
        assert_eq!(
            (s.login_failures_per_account, s.login_failures_per_address),
            (10, 100)
        );
        let s = parse(&["--login-failures-per-account", "3"]).unwrap();
        assert_eq!(s.login_failures_per_account, 3);
        assert!(parse(&["--login-failures-per-address", "0"]).is_err());
        assert_eq!(s.readyz_timeout, Duration::from_secs(2));
        let r = parse(&["--readyz-timeout-ms", "250"]).unwrap();
        assert_eq!(r.readyz_timeout, Duration::from_millis(250));
        assert!(parse(&["--readyz-timeout-ms", "0"]).is_err());
        assert_eq!(
            (s.max_key_backup_keys, s.max_key_backup_bytes),
            (100_000, 4096)
        );
        let s = parse(&[
            "--max-key-backup-keys",
            "10",
            "--max-key-backup-bytes",
            "512",
        ])
        .unwrap();
        assert_eq!((s.max_key_backup_keys, s.max_key_backup_bytes), (10, 512));
        assert!(parse(&["--max-key-backup-keys", "0"]).is_err());
        assert!(parse(&["--max-key-backup-bytes", "100"]).is_err());
        assert!(
            parse(&["--max-key-backup-bytes", "60000"]).is_err(),
            "base64 past a frame"
        );
    }

    #[test]
    fn flags_override_the_file() {
        let file: Options = toml::from_str(
            "listen = \"0.0.0.0:9000\"\nmax_connections = 5\nallowed_origin = [\"https://a.example/\"]",
        )
        .unwrap();
        let cli = Cli::try_parse_from(["chatd", "--max-connections", "7"]).unwrap();
        let s = Settings::resolve(cli.options.or(file), false).unwrap();
        assert_eq!(s.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(s.max_connections, 7);
        assert_eq!(s.allowed_origins, vec!["https://a.example".to_owned()]);
    }

    #[test]
    fn transport_options() {
        let s = parse(&[]).unwrap();
        assert_eq!(s.metrics_listen, Some("127.0.0.1:9090".parse().unwrap()));
        assert_eq!((s.tls.clone(), s.proxy_protocol), (None, false));
        assert!(s.trusted_proxies.is_empty());
        let s = parse(&[
            "--metrics-listen",
            "off",
            "--metrics-token",
            "t0k",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
            "--trusted-proxy",
            "10.0.0.0/8",
            "--trusted-proxy",
            "::1",
            "--proxy-protocol",
        ])
        .unwrap();
        assert_eq!(s.metrics_listen, None);
        assert_eq!(s.metrics_token, Some(Secret("t0k".into())));
        let tls = s.tls.unwrap();
        assert_eq!(
            (tls.cert.to_str(), tls.reload_every.as_secs()),
            (Some("c.pem"), 10)
        );
        assert_eq!(s.trusted_proxies.0.len(), 2);
        assert!(s.proxy_protocol);
        let s = parse(&["--metrics-listen", "127.0.0.1:0", "--proxy-protocol=false"]).unwrap();
        assert_eq!(s.metrics_listen, Some("127.0.0.1:0".parse().unwrap()));
        assert!(!s.proxy_protocol);
        let file: Options = toml::from_str(
            "trusted_proxy = [\"10.0.0.0/8\"]\nproxy_protocol = true\ntls_reload_secs = 0",
        )
        .unwrap();
        assert_eq!(file.proxy_protocol, Some(true));
        assert!(parse(&["--tls-cert", "c.pem"]).is_err());
        assert!(parse(&["--metrics-listen", "nowhere"]).is_err());
        assert!(parse(&["--trusted-proxy", "10.0.0.0/99"]).is_err());
        assert!(
            parse(&["--proxy-protocol"]).is_err(),
            "PROXY headers need trusted peers"
        );
    }

    #[test]
    fn turn_urls_need_a_secret_and_a_secret_needs_turn() {
        let s = parse(&[
            "--turn-url",
            "stun:turn.example:3478",
            "--turn-url",
            "turn:turn.example:3478?transport=udp",
            "--turn-secret",
            "s3cret",
        ])
        .unwrap();
        assert_eq!(s.turn_urls.len(), 2);
        assert_eq!(s.turn_ttl, Duration::from_secs(86_400));
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "the secret is never shown"
        );
        let err = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert!(err(&["--turn-url", "turn:turn.example:3478"]).contains("--turn-secret"));
        assert!(err(&["--turn-secret", "s3cret"]).contains("no --turn-url"));
        assert!(err(&["--turn-url", "http://turn.example"]).contains("is not a URL"));
        assert!(err(&["--turn-url", "turn:"]).contains("is not a URL"));
        let stun = parse(&["--turn-url", "stun:stun.example:3478"]).unwrap();
        assert_eq!(stun.turn_secret, None);
        assert!(err(&["--turn-url", "stun:s:1", "--turn-ttl-secs", "10"]).contains("between 60"));
        // From a file: its first line.
        let dir = std::env::temp_dir().join(format!("chatd-turn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("secret");
        std::fs::write(&file, "from a file\nignored\n").unwrap();
        let path = file.to_str().unwrap();
        let s = parse(&[
            "--turn-url",
            "turns:t.example:5349",
            "--turn-secret-file",
            path,
        ])
        .unwrap();
        assert_eq!(s.turn_secret, Some(Secret("from a file".into())));
        std::fs::write(&file, "\n").unwrap();
        let empty = err(&[
            "--turn-url",
            "turns:t.example:5349",
            "--turn-secret-file",
            path,
        ]);
        assert!(empty.contains("is empty"), "{empty}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        assert!(toml::from_str::<Options>("max_conections = 5").is_err());
    }

    #[test]
    fn mongodb_is_parsed_and_bad_values_refused() {
        let s = parse(&["--store", "mongodb://db:27017/chat"]).unwrap();
        assert!(matches!(s.store, StoreSpec::Mongo(_)));
        assert!(parse(&["--store", "postgres://x"]).is_err());
        let s = parse(&["--store", "sqlite:/var/lib/chatd/chat.db"]).unwrap();
        assert_eq!(s.store, StoreSpec::Sqlite("/var/lib/chatd/chat.db".into()));
        assert_eq!(
            parse(&["--store", "memory"]).unwrap().store,
            StoreSpec::Memory
        );
        assert!(parse(&["--store", "sqlite:"]).is_err());
        assert!(parse(&["--max-message-bytes", "10"]).is_err());
        assert!(parse(&["--ping-interval-secs", "60", "--idle-timeout-secs", "30"]).is_err());
        assert!(parse(&["--media", "s3://bucket"]).is_err());
        assert!(parse(&["--media", "dir:"]).is_err());
        assert_eq!(
            parse(&["--media", "dir:/srv/media"]).unwrap().media,
            Some(MediaSpec::Dir("/srv/media".into()))
        );
        assert_eq!(
            parse(&["--media", "memory"]).unwrap().media,
            Some(MediaSpec::Memory)
        );
        assert_eq!(parse(&[]).unwrap().media, None, "the store's own place");
        assert!(parse(&["--allowed-origin", "not an origin"]).is_err());
        assert!(parse(&["--public-url", "ftp://x"]).is_err());
    }

    #[test]
    fn smtp_urls() {
        let s = parse(&["--mailer", "smtp://me%40x.org:p%3As+s@mail.example:2525"]).unwrap();
        let MailerSpec::Smtp(smtp) = s.mailer else {
            panic!("not smtp")
        };
        assert_eq!((smtp.host.as_str(), smtp.port), ("mail.example", 2525));
        assert!(!smtp.implicit_tls);
        assert_eq!(smtp.starttls, StartTls::Required);
        let (user, pass) = smtp.credentials.unwrap();
        assert_eq!((user.as_str(), pass.0.as_str()), ("me@x.org", "p:s+s"));
        assert!(!format!("{pass:?}").contains("p:s+s"));

        let s = parse(&[
            "--mailer",
            "smtps://mail.example",
            "--smtp-username",
            "u",
            "--smtp-password",
            "p",
        ])
        .unwrap();
        let MailerSpec::Smtp(smtp) = s.mailer else {
            panic!("not smtp")
        };
        assert_eq!(smtp.port, 465);
        assert!(smtp.implicit_tls);
        assert!(smtp.credentials.is_some());
        assert!(parse(&["--mailer", "smtp://h", "--smtp-username", "only-user"]).is_err());
        assert!(parse(&["--mailer", "carrier-pigeon"]).is_err());
    }
}
