//! The idle, churn and login scenarios.

use anyhow::{Context as _, Result};
use futures_util::{SinkExt as _, StreamExt as _};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::net;
use crate::proto::{self, Account, Incoming};
use crate::relay::{self, RelayOpts, Target};
use crate::sio;
use crate::stats::{self, CpuWindow, RelayReport};
use crate::xmpp;

/// What the idle scenario measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct IdleReport {
    pub(crate) target: String,
    pub(crate) n: usize,
    pub(crate) connected: usize,
    pub(crate) alive_after_hold: usize,
    pub(crate) connect_secs: f64,
    pub(crate) hold_secs: f64,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_after_kib: u64,
    pub(crate) bytes_per_conn: f64,
}

impl IdleReport {
    pub(crate) fn line(&self) -> String {
        format!(
            "{:<9} idle n={}: connected {} in {:.1} s, {} still up after {:.0} s; RSS {} -> {} KiB = {:.0} bytes ({:.2} KiB) per connection",
            self.target,
            self.n,
            self.connected,
            self.connect_secs,
            self.alive_after_hold,
            self.hold_secs,
            self.rss_before_kib,
            self.rss_after_kib,
            self.bytes_per_conn,
            self.bytes_per_conn / 1024.0
        )
    }
}

/// Holds `n` authenticated (chatd: `resume`) idle connections for `hold`.
pub(crate) async fn idle(
    addr: SocketAddr,
    target: Target,
    n: usize,
    hold: Duration,
    server_pid: u32,
) -> Result<IdleReport> {
    if let Target::Ejabberd(password) = &target {
        // The accounts exist before the RSS is first read, as chatd's
        // load-test accounts do: registered in-band on connections of their own.
        register_xmpp(addr, password, n).await?;
    }
    let rss_before = stats::rss_kib(server_pid)?;
    let alive = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(256));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (target, alive, failed, gate) =
            (target.clone(), alive.clone(), failed.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let setup = async {
                let _permit = gate.acquire().await?;
                let src = net::source_for(i);
                match &target {
                    Target::Chatd(accounts)
                    | Target::ChatdE2e(accounts)
                    | Target::ChatdReceipts(accounts) => {
                        let acct = accounts.get(i).context("not enough accounts")?;
                        let mut ws =
                            net::connect(addr, "/ws", src, Some("chatcore.v1.msgpack"), true)
                                .await?;
                        proto::resume(&mut ws, &acct.token).await?;
                        Ok::<_, anyhow::Error>(ws)
                    }
                    Target::Ceiling | Target::CeilingAck => {
                        let mut ws = net::connect(addr, "/", src, None, true).await?;
                        ws.send(Message::text(format!("P {} 0", 1_000_000 + i)))
                            .await?;
                        Ok(ws)
                    }
                    Target::SocketIo(accounts) => {
                        let acct = accounts.get(i).context("not enough accounts")?;
                        sio::connect(addr, src, &acct.token).await
                    }
                    Target::Ejabberd(password) => {
                        xmpp::connect_with(addr, src, i, password, false, true).await
                    }
                }
            };
            let mut ws = match setup.await {
                Ok(ws) => ws,
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("idle connection {i} failed: {e:#}");
                    }
                    return;
                }
            };
            alive.fetch_add(1, Ordering::Relaxed);
            // Reading answers the server's WebSocket pings; Engine.IO's are
            // answered here, and XMPP stream management's `<r/>`.
            let xmpp = matches!(target, Target::Ejabberd(_));
            let mut handled: u32 = 0;
            while let Some(Ok(m)) = ws.next().await {
                if m.is_close() {
                    break;
                }
                let reply = if xmpp {
                    match xmpp::classify(&m) {
                        xmpp::Incoming::Delivered(_)
                        | xmpp::Incoming::Error
                        | xmpp::Incoming::Stanza => {
                            handled = handled.wrapping_add(1);
                            None
                        }
                        xmpp::Incoming::AckRequest => Some(xmpp::encode_ack(handled)),
                        xmpp::Incoming::Closed(_) => break,
                        xmpp::Incoming::Acked(_) | xmpp::Incoming::Other => None,
                    }
                } else if matches!(&m, Message::Text(t) if t.as_str() == "2") {
                    Some(Message::text("3"))
                } else {
                    None
                };
                if let Some(r) = reply {
                    if ws.send(r).await.is_err() {
                        break;
                    }
                }
            }
            alive.fetch_sub(1, Ordering::Relaxed);
        }));
    }
    while alive.load(Ordering::Relaxed) + failed.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let connected = alive.load(Ordering::Relaxed);
    tokio::time::sleep(hold).await;
    let rss_after = stats::rss_kib(server_pid)?;
    let alive_after_hold = alive.load(Ordering::Relaxed);
    for t in &tasks {
        t.abort();
    }
    Ok(IdleReport {
        target: target.name().into(),
        n,
        connected,
        alive_after_hold,
        connect_secs,
        hold_secs: hold.as_secs_f64(),
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        bytes_per_conn: (rss_after.saturating_sub(rss_before) * 1024) as f64 / n.max(1) as f64,
    })
}

/// Registers XMPP users `0..n`, 256 at a time, each on a connection of its own.
async fn register_xmpp(addr: SocketAddr, password: &Arc<str>, n: usize) -> Result<()> {
    let gate = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (gate, password) = (gate.clone(), password.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            // Source addresses of their own (the idle connections' stay free of TIME_WAIT).
            xmpp::register(addr, net::source_for(i + 200_000), i, &password).await
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        t.await?.with_context(|| format!("registering user {i}"))?;
    }
    Ok(())
}

/// What the churn scenario measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct ChurnReport {
    pub(crate) churners: usize,
    pub(crate) connects_per_sec: f64,
    pub(crate) presence_per_sec: f64,
    pub(crate) errors: u64,
    pub(crate) server_cpu: f64,
}

/// `churners` users connect, resume and leave in a loop; their partners
/// stay connected with the conversation open and receive their presence.
pub(crate) async fn churn(
    addr: SocketAddr,
    accounts: Arc<Vec<Account>>,
    churners: usize,
    secs: Duration,
    server_pid: u32,
) -> Result<ChurnReport> {
    let stop = Arc::new(AtomicBool::new(false));
    let connects = Arc::new(AtomicU64::new(0));
    let presence = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    // Watchers first.
    let mut watchers = Vec::new();
    for k in 0..churners {
        let (w, c) = (&accounts[2 * k], &accounts[2 * k + 1]);
        let mut ws = net::connect(
            addr,
            "/ws",
            net::source_for(2 * k),
            Some("chatcore.v1.msgpack"),
            true,
        )
        .await?;
        proto::resume(&mut ws, &w.token).await?;
        let conv = proto::open_direct(&mut ws, &c.user, false).await?;
        proto::focus(&mut ws, &conv).await?;
        let presence = presence.clone();
        watchers.push(tokio::spawn(async move {
            while let Some(Ok(Message::Binary(b))) = ws.next().await {
                if let Incoming::Other("presence") = proto::classify(&b) {
                    presence.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    let mut tasks = Vec::new();
    for k in 0..churners {
        let token = accounts[2 * k + 1].token.clone();
        let (stop, connects, errors) = (stop.clone(), connects.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let src = net::source_for(2 * k + 1 + (i % 4) * 20_000);
                let r = async {
                    let mut ws =
                        net::connect(addr, "/ws", src, Some("chatcore.v1.msgpack"), true).await?;
                    proto::resume(&mut ws, &token).await?;
                    ws.close(None).await?;
                    while let Some(Ok(_)) = ws.next().await {}
                    Ok::<_, anyhow::Error>(())
                }
                .await;
                match r {
                    Ok(()) => connects.fetch_add(1, Ordering::Relaxed),
                    Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (c0, p0) = (
        connects.load(Ordering::Relaxed),
        presence.load(Ordering::Relaxed),
    );
    let cpu = CpuWindow::start(&[server_pid]);
    let t0 = Instant::now();
    tokio::time::sleep(secs).await;
    let el = t0.elapsed().as_secs_f64();
    let report = ChurnReport {
        churners,
        connects_per_sec: (connects.load(Ordering::Relaxed) - c0) as f64 / el,
        presence_per_sec: (presence.load(Ordering::Relaxed) - p0) as f64 / el,
        errors: errors.load(Ordering::Relaxed),
        server_cpu: cpu.percent(),
    };
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    for w in watchers {
        w.abort();
    }
    Ok(report)
}

/// What the login scenario measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct LoginReport {
    pub(crate) loginers: usize,
    pub(crate) logins_per_sec: f64,
    pub(crate) login_errors: u64,
    pub(crate) quiet: RelayReport,
    pub(crate) storm: RelayReport,
}

/// The relay at a fixed rate, quiet and then during a storm of password
/// logins by `loginers` concurrent clients (accounts after the pairs').
pub(crate) async fn login(
    addr: SocketAddr,
    accounts: Arc<Vec<Account>>,
    password: &str,
    loginers: usize,
    opts: &RelayOpts,
    server_pid: u32,
) -> Result<LoginReport> {
    let quiet = relay::run(addr, Target::Chatd(accounts.clone()), opts, server_pid).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let logins = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first = opts.pairs * 2;
    let mut tasks = Vec::new();
    for k in 0..loginers {
        let (stop, logins, errors, accounts) = (
            stop.clone(),
            logins.clone(),
            errors.clone(),
            accounts.clone(),
        );
        let password = password.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let acct = &accounts[first + (k + i * loginers) % (accounts.len() - first)];
                i += 1;
                let r = async {
                    let mut ws = net::connect(
                        addr,
                        "/ws",
                        net::source_for(60_000 + k),
                        Some("chatcore.v1.msgpack"),
                        true,
                    )
                    .await?;
                    proto::login(&mut ws, &acct.username, &password).await?;
                    ws.close(None).await?;
                    while let Some(Ok(_)) = ws.next().await {}
                    Ok::<_, anyhow::Error>(())
                }
                .await;
                match r {
                    Ok(()) => logins.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("login failed: {e:#}");
                        }
                        0
                    }
                };
            }
        }));
    }
    // Let the storm reach its pace before measuring.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let l0 = logins.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let storm = relay::run(addr, Target::Chatd(accounts.clone()), opts, server_pid).await?;
    let logins_per_sec = (logins.load(Ordering::Relaxed) - l0) as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    Ok(LoginReport {
        loginers,
        logins_per_sec,
        login_errors: errors.load(Ordering::Relaxed),
        quiet,
        storm,
    })
}
