//! # chatd
//!
//! The WebSocket daemon of the chatcore messenger engine: it reads its
//! settings, chooses the store and the mailer, listens for HTTP, upgrades
//! `/ws` to WebSocket connections served by `chatcore::session::serve`, and
//! shuts down cleanly on SIGTERM/SIGINT. Everything the protocol means lives
//! in chatcore; this crate only moves bytes and runs the process.
//!
//! # Layout
//! - `config`: flags, `CHATD_*` environment variables and the TOML file.
//! - `store`: the backends named by `--store`.
//! - `mail`: the `dir:` and SMTP mailers.
//! - `media`: the filesystem blob store (media beside the SQLite database).
//! - `http`: the listeners, routes (`/healthz`, `/readyz`, `/`, `/ws`; `/metrics` on its own
//!   listener) and the upgrade checks.
//! - `tls`: the rustls configuration and its certificate, reloaded on change and SIGHUP.
//! - `proxy`: the client address from `X-Forwarded-For` and PROXY headers of trusted proxies.
//! - `ws`: one WebSocket connection: decode, encode, ping, idle, close.
//! - `metrics`: the Prometheus text rendering.
//! - `web`: the static files embedded from `chatd/web/`.

mod config;
mod http;
mod mail;
mod media;
mod media_http;
mod metrics;
mod proxy;
mod queue;
mod store;
mod tls;
mod web;
mod ws;

use anyhow::Context as _;
use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use url::Url;

use config::{LogFormat, Settings, StoreSpec};

fn main() -> ExitCode {
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("chatd: {e:#}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = init_logging(&settings) {
        eprintln!("chatd: {e:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(settings));
    // Hashing threads finish their current hash at most; nothing else runs.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("chatd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log)
        .with_context(|| format!("invalid --log filter {:?}", settings.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let installed = match settings.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}

/// The URL users reach this server at, when not configured.
fn default_public_url(addr: SocketAddr, tls: bool) -> anyhow::Result<Url> {
    let host = if addr.ip().is_unspecified() {
        "localhost".to_owned()
    } else {
        match addr {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        }
    };
    let scheme = if tls { "https" } else { "http" };
    Url::parse(&format!("{scheme}://{host}:{}/", addr.port()))
        .context("cannot build the public URL")
}

/// The exact Origins allowed to open WebSockets: the configured ones, the
/// public URL's, and, when the public URL is the default one, the local
/// names a browser on this machine may use.
fn allowed_origins(settings: &Settings, public_url: &Url, addr: SocketAddr) -> Vec<String> {
    let mut origins = settings.allowed_origins.clone();
    origins.push(public_url.origin().ascii_serialization());
    if settings.public_url.is_none() && (addr.ip().is_loopback() || addr.ip().is_unspecified()) {
        let port = addr.port();
        let scheme = public_url.scheme();
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            origins.push(format!("{scheme}://{host}:{port}"));
        }
    }
    origins.sort();
    origins.dedup();
    origins
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    if let (Some(dest), StoreSpec::Sqlite(source)) = (&settings.backup, &settings.store) {
        return store::backup(source, dest).await;
    }
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let metrics_listener = match settings.metrics_listen {
        Some(at) => Some(
            TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen for metrics on {at}"))?,
        ),
        None => None,
    };
    let metrics_addr = metrics_listener
        .as_ref()
        .map(TcpListener::local_addr)
        .transpose()?;
    let certs = match &settings.tls {
        Some(files) => Some(
            tls::CertStore::open(&files.cert, &files.key).with_context(|| {
                format!(
                    "cannot load the TLS certificate {} and key {}",
                    files.cert.display(),
                    files.key.display()
                )
            })?,
        ),
        None => None,
    };
    let public_url = match &settings.public_url {
        Some(url) => url.clone(),
        None => default_public_url(addr, certs.is_some())?,
    };
    let allowed_origins = allowed_origins(&settings, &public_url, addr);

    let mailer = mail::build(&settings.mailer, &settings.mail_from).await?;
    let (mut backends, write_probe) =
        store::backends(&settings.store, settings.media.as_ref(), mailer).await?;
    let broker = match &settings.redis {
        Some(url) => Some(store::redis(url, &mut backends).await?),
        None => None,
    };
    let mut core = chatcore::Config::default();
    core.server_name = format!("chatd/{}", env!("CARGO_PKG_VERSION"));
    core.reset_link_prefix = format!("{}/#reset=", public_url.as_str().trim_end_matches('/'));
    core.outbound_queue = settings.outbound_queue;
    core.auth_timeout = settings.auth_timeout;
    core.max_unauthenticated = settings.max_unauthenticated;
    core.max_unauthenticated_per_address = settings.max_unauthenticated_per_address;
    core.max_connections_per_address = settings.max_connections_per_address;
    core.max_connections_per_user = settings.max_connections_per_user;
    core.send_budget.max = settings.send_bytes_per_minute;
    core.typing_budget = chatcore::store::Quota {
        max: settings.typing_per_minute,
        window_ms: 60 * 1000,
    };
    core.typing_ttl_ms = settings.typing_ttl_ms;
    core.receipt_overlap_ms = settings.receipt_overlap_ms;
    core.edit_window_ms = settings.edit_window_ms;
    core.media_grace_ms = settings.media_grace_ms;
    core.presence_ttl_ms = settings.presence_ttl_ms;
    core.ice.urls = settings.turn_urls.clone();
    core.ice.turn_secret = settings
        .turn_secret
        .as_ref()
        .map(|s| chatcore::TurnSecret::new(s.0.as_str()));
    core.ice.turn_ttl_ms = u64::try_from(settings.turn_ttl.as_millis()).unwrap_or(u64::MAX);
    core.call_ring_timeout_ms =
        u64::try_from(settings.call_ring_timeout.as_millis()).unwrap_or(u64::MAX);
    core.call_grace_ms = u64::try_from(settings.call_grace.as_millis()).unwrap_or(u64::MAX);
    core.call_invites = chatcore::store::Quota {
        max: settings.call_invites_per_minute,
        window_ms: 60_000,
    };
    core.signup_global.max = settings.signups_per_hour;
    core.max_group_members = settings.max_group_members;
    core.join_attempts.max = settings.join_attempts;
    core.join_attempts.window_ms =
        u64::try_from(settings.join_window.as_millis()).unwrap_or(u64::MAX);
    core.key_claims.max = settings.key_claims;
    core.key_claims.window_ms =
        u64::try_from(settings.key_claims_window.as_millis()).unwrap_or(u64::MAX);
    core.max_one_time_keys = settings.max_one_time_keys;
    core.max_to_device_queue = settings.max_to_device_queue;
    core.max_to_device_bytes = settings.max_to_device_bytes;
    core.max_backup_keys = settings.max_key_backup_keys;
    core.max_backup_key_bytes = settings.max_key_backup_bytes;
    core.contact_requests.max = settings.contact_requests;
    core.contact_requests.window_ms =
        u64::try_from(settings.contact_requests_window.as_millis()).unwrap_or(u64::MAX);
    core.contact_retry_ms = u64::try_from(settings.contact_retry.as_millis()).unwrap_or(u64::MAX);
    core.signup_per_address.max = settings.signups_per_address_per_hour;
    core.login_per_account.max = settings.login_failures_per_account;
    core.login_per_address.max = settings.login_failures_per_address;
    core.frames_per_second = settings.frames_per_second;
    core.frame_burst = settings.frame_burst;
    // A text message must fit in one WebSocket message with its frame around it.
    core.max_text_bytes = core
        .max_text_bytes
        .min(settings.max_message_bytes.saturating_sub(1024));
    if let Some(m_kib) = settings.argon2_m_kib {
        tracing::warn!(
            m_kib,
            "argon2 memory cost lowered by --argon2-m-kib: password hashes are weak; for tests only"
        );
        core.argon2.m_kib = m_kib;
    }
    // Computes a first hash (argon2): off the async workers.
    let server = tokio::task::spawn_blocking(move || chatcore::Server::new(backends, core))
        .await
        .context("server start-up panicked")??;

    if let Some(lt) = &settings.load_test {
        provision_load_test(&server, lt).await?;
    }

    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    tokio::spawn(sweep_loop(
        server.clone(),
        settings.expire_sweep,
        shutdown.clone(),
        "disappearing messages removed",
        |s| async move { s.expire_due().await },
    ));
    if broker.is_some() {
        // Renews this node's liveness and turns the users of dead nodes
        // offline, three times per TTL.
        tokio::spawn(sweep_loop(
            server.clone(),
            Duration::from_millis(settings.presence_ttl_ms / 3),
            shutdown.clone(),
            "users of nodes gone silent turned offline",
            |s| async move { s.sweep_presence().await },
        ));
    }
    tokio::spawn(sweep_loop(
        server.clone(),
        settings.call_sweep,
        shutdown.clone(),
        "calls ended (unanswered, or a device gone)",
        |s| async move { s.sweep_calls().await },
    ));
    tokio::spawn(sweep_loop(
        server.clone(),
        settings.media_sweep,
        shutdown.clone(),
        "unreferenced media files deleted",
        |s| async move { s.collect_media().await },
    ));
    let tls_acceptor = match (&certs, &settings.tls) {
        (Some(certs), Some(files)) => {
            tokio::spawn(
                certs
                    .clone()
                    .watch(files.reload_every, shutdown.clone())
                    .context("cannot watch SIGHUP")?,
            );
            Some(tokio_rustls::TlsAcceptor::from(certs.server_config()?))
        }
        _ => None,
    };
    let app = http::App::new(
        server,
        ws::WsSettings {
            max_message_bytes: settings.max_message_bytes,
            ping_interval: settings.ping_interval,
            idle_timeout: settings.idle_timeout,
            close_timeout: Duration::from_secs(3),
        },
        allowed_origins.clone(),
        settings.max_connections,
        shutdown.clone(),
        tracker.clone(),
        http::Edge {
            tls: tls_acceptor,
            trusted_proxies: settings.trusted_proxies.clone(),
            proxy_protocol: settings.proxy_protocol,
            metrics_token: settings.metrics_token.clone(),
        },
        write_probe,
        settings.readyz_timeout,
        media_http::MediaLimits {
            max_bytes: settings.max_media_bytes,
            uploads_per_minute: settings.media_uploads_per_minute,
            bytes_per_day: settings.media_bytes_per_day,
        },
        broker,
    );
    let mut sigterm = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    if let Some(listener) = metrics_listener {
        tokio::spawn(http::metrics_loop(app.clone(), listener));
    }
    let accept = tokio::spawn(http::accept_loop(app, listener));
    tracing::info!(
        %addr,
        tls = settings.tls.is_some(),
        metrics = ?metrics_addr,
        trusted_proxies = ?settings.trusted_proxies.0,
        public_url = %public_url,
        allowed_origins = ?allowed_origins,
        store = %settings.store.describe(),
        "chatd listening; WebSocket endpoint /ws"
    );
    if settings.print_addr {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{addr}")?;
        if let Some(metrics_addr) = metrics_addr {
            writeln!(out, "{metrics_addr}")?;
        }
        out.flush()?;
    }

    let signal_name = tokio::select! {
        _ = sigterm.recv() => "SIGTERM",
        r = tokio::signal::ctrl_c() => {
            r.context("cannot watch SIGINT")?;
            "SIGINT"
        }
    };
    tracing::info!(
        signal = signal_name,
        timeout_secs = settings.shutdown_timeout.as_secs(),
        "shutting down: no new connections; closing open ones with 1001"
    );
    shutdown.cancel();
    tokio::spawn(async move {
        tokio::select! {
            _ = sigterm.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        tracing::warn!("second signal: exiting at once");
        std::process::exit(130);
    });
    if let Err(e) = accept.await {
        tracing::error!(error = %e, "the accept loop failed");
    }
    tracker.close();
    if tokio::time::timeout(settings.shutdown_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = tracker.len(),
            "connections still open at the shutdown timeout; dropping them"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// `--load-test-accounts`: creates the accounts and writes their tokens.
async fn provision_load_test(
    server: &chatcore::Server,
    lt: &config::LoadTest,
) -> anyhow::Result<()> {
    tracing::warn!(
        accounts = lt.accounts,
        tokens = %lt.tokens.display(),
        seed = ?lt.seed,
        "LOAD TEST: creating accounts that share one known password; never do this in production"
    );
    let accounts = chatcore::provision::load_test_accounts_seeded(
        server,
        "lt",
        lt.accounts,
        &lt.password.0,
        lt.seed,
    )
    .await
    .context("cannot create the load-test accounts")?;
    let mut text = String::with_capacity(accounts.len() * 80);
    for a in &accounts {
        text.push_str(&format!("{} {} {}\n", a.username, a.user, a.token));
    }
    tokio::fs::write(&lt.tokens, text)
        .await
        .with_context(|| format!("cannot write {}", lt.tokens.display()))?;
    Ok(())
}

/// Runs `sweep` every `every` until shutdown: the removal of disappearing
/// messages' content, the collection of unreferenced media. A store error
/// is logged and tried again at the next turn: nothing is lost by waiting.
async fn sweep_loop<F, Fut>(
    server: std::sync::Arc<chatcore::Server>,
    every: Duration,
    shutdown: CancellationToken,
    what: &'static str,
    sweep: F,
) where
    F: Fn(std::sync::Arc<chatcore::Server>) -> Fut,
    Fut: std::future::Future<Output = Result<usize, chatcore::CoreError>>,
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match sweep(server.clone()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(count = n, "{what}"),
            Err(e) => tracing::warn!(error = %e, "sweep failed: {what}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_origins_cover_local_names_only_without_a_public_url() {
        let cli = |args: &[&str]| {
            use clap::Parser as _;
            let cli =
                config::Cli::try_parse_from(std::iter::once("chatd").chain(args.iter().copied()))
                    .unwrap();
            config::Settings::for_tests(cli)
        };
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let s = cli(&[]);
        let url = default_public_url(addr, false).unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:8080/");
        let o = allowed_origins(&s, &url, addr);
        assert!(o.contains(&"http://localhost:8080".to_owned()));
        assert!(o.contains(&"http://127.0.0.1:8080".to_owned()));

        // With TLS, pages come from https:// origins.
        let url = default_public_url(addr, true).unwrap();
        assert_eq!(url.as_str(), "https://127.0.0.1:8080/");
        let o = allowed_origins(&s, &url, addr);
        assert!(o.contains(&"https://localhost:8080".to_owned()));
        assert!(!o.iter().any(|o| o.starts_with("http:")), "{o:?}");

        let s = cli(&[
            "--public-url",
            "https://chat.example/",
            "--allowed-origin",
            "https://app.example",
        ]);
        let url = s.public_url.clone().unwrap();
        let o = allowed_origins(&s, &url, addr);
        assert_eq!(
            o,
            vec![
                "https://app.example".to_owned(),
                "https://chat.example".to_owned()
            ]
        );
    }
}
