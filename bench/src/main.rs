//! Load generator and side-by-side benchmark of chatd.
//!
//! Run with: `bench/run.sh` (builds in release, installs the Socket.IO
//! peer, raises file-descriptor limits, then runs `bench all`).
//!
//! `bench all` starts each server itself, pinned to CPU 0 (`taskset -c 0`),
//! while it and all the clients run on CPU 1, and prints one table:
//! chatd against the ceiling (a raw tokio-tungstenite relay) and the peer
//! (Socket.IO 4 with the MessagePack parser).
//!
//! # Layout
//! - `net`: client sockets spread over 127.0.0.x source addresses.
//! - `proto`: chatcore's protocol as the generator speaks it.
//! - `relay`: the relay scenario (chatd, ceiling).
//! - `scenarios`: idle, churn, login.
//! - `fanout`: group fan-out (chatd groups, Socket.IO rooms).
//! - `media`: media upload and download over HTTP against a raw loopback copy, and RSS.
//! - `sio`: the Socket.IO peer's protocol (Engine.IO 4 + msgpack parser) in Rust.
//! - `xmpp`: XMPP over WebSocket (RFC 7395) for the ejabberd peer, in Rust.
//! - `ejabberd`: starting and stopping a private ejabberd node.
//! - `ceiling`: the raw relay server.
//! - `redis`: a private redis-server for the multi-node scenarios.
//! - `cluster_idle`: idle connections across several chatd nodes on one Redis, from several
//!   generator processes (`idle-clients`).
//! - `stats`: histograms, CPU and RSS of processes.

mod ceiling;
mod claims;
mod cluster_idle;
mod ejabberd;
mod fanout;
mod media;
mod net;
mod proto;
mod redis;
mod relay;
mod scenarios;
mod sio;
mod stats;
mod xmpp;

use anyhow::{bail, Context as _, Result};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

use ejabberd::Flavor;
use fanout::{FanoutOpts, FanoutReport};
use redis::RedisProc;
use relay::{RelayOpts, Target};
use stats::RelayReport;

#[derive(Parser)]
#[command(
    name = "bench",
    about = "chatd load generator and side-by-side benchmark"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the ceiling: a raw tokio-tungstenite pair relay (prints its address).
    Ceiling {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Serve the media scenario's raw peer: loopback copies into DIR (prints its address).
    MediaPeer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        #[arg(long)]
        dir: PathBuf,
    },
    /// Start every server in turn (CPU 0) and run the scenarios (from here, CPU 1).
    All(Box<AllOpts>),
    /// One-time key claims per second on the key stores (memory, SQLite), no network.
    Claims(claims::ClaimOpts),
    /// One generator process of the cluster-idle scenario (started by `bench all`).
    #[command(hide = true)]
    IdleClients(cluster_idle::ClientOpts),
}

#[derive(clap::Args, Clone)]
struct AllOpts {
    /// The chatd binary (release build).
    #[arg(long, default_value = "target/release/chatd")]
    chatd: PathBuf,
    /// This binary, to start the ceiling server (default: the running one).
    #[arg(long)]
    bench: Option<PathBuf>,
    /// Directory of the Socket.IO peer (server.js, node_modules).
    #[arg(long, default_value = "bench/socketio")]
    socketio: PathBuf,
    /// Directory of the ejabberd peer's config (ejabberd.yml, ejabberdctl.cfg).
    #[arg(long, default_value = "bench/ejabberd")]
    ejabberd: PathBuf,
    /// Scenarios, comma-separated: relay, rate, idle, big, churn, login, fanout, media (not a
    /// default: chatd's media upload and download against a raw loopback copy, and RSS),
    /// cluster-idle (not a default: idle connections across several chatd nodes on one Redis, the
    /// clients in several generator processes; see the --cluster-* options).
    #[arg(
        long,
        default_value = "relay,rate,idle,big,churn,login,fanout",
        value_delimiter = ','
    )]
    only: Vec<String>,
    /// Targets of relay/rate/idle/fanout, comma-separated: ceiling, ceiling-ack (relay only), chatd,
    /// chatd-sqlite (chatd on a fresh SQLite file, durable: relay, rate and fanout only), chatd-e2e
    /// (chatd, each pair's conversation end-to-end encrypted, every message a ciphertext of the
    /// payload's size: relay and rate only), chatd-receipts (chatd, every message acknowledged and
    /// read by its recipient and both receipts pushed to its sender: relay and rate only), chatd-typing
    /// (chatd with --typing-users more users connected, each typing once a second: relay and rate
    /// only), chatd-pinging (the same users each sending `ping` once a second instead: the control
    /// for chatd-typing, what any request at that rate costs), socketio, ejabberd (relay, rate, idle and fanout: MUC rooms; not a default: needs
    /// `apt-get install ejabberd`), ejabberd-sqlite (relay and rate: mod_mam on SQLite; needs
    /// erlang-p1-sqlite3 too), chatd-2nodes and socketio-2nodes (relay and rate: two nodes and a
    /// private Redis, every pair's first user on node A and second on node B; the server's CPU is
    /// the three processes'; reported as chatd-2nodes and socket.io-2nodes).
    #[arg(
        long,
        default_value = "ceiling,ceiling-ack,chatd,chatd-sqlite,socketio",
        value_delimiter = ','
    )]
    targets: Vec<String>,
    #[arg(long, default_value_t = 50)]
    pairs: usize,
    /// Payload bytes per message.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Messages in flight per pair (flat out).
    #[arg(long, default_value_t = 8)]
    window: usize,
    /// Offered load of the fixed-rate runs (`rate`, `login`), messages per second.
    #[arg(long, default_value_t = 30000.0)]
    rate: f64,
    #[arg(long, default_value_t = 2)]
    warmup_secs: u64,
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Connections of the idle comparison.
    #[arg(long, default_value_t = 10_000)]
    idle_n: usize,
    /// Users of the chatd-typing target, connected beside the relay's pairs, in pairs of their own, each
    /// sending `typing` once a second.
    #[arg(long, default_value_t = 10_000)]
    typing_users: usize,
    /// Connections of the big chatd idle run.
    #[arg(long, default_value_t = 100_000)]
    big_n: usize,
    /// Seconds idle connections are held (past one ping interval of 25 s shows pings are answered).
    #[arg(long, default_value_t = 30)]
    hold_secs: u64,
    /// Users connecting and leaving in the churn scenario.
    #[arg(long, default_value_t = 50)]
    churners: usize,
    /// Concurrent password logins in the login storm.
    #[arg(long, default_value_t = 4)]
    loginers: usize,
    /// Group shapes of the fan-out scenario, comma-separated, each GROUPSxMEMBERS (one server
    /// start per shape and target).
    #[arg(long, default_value = "10x100,1x1000", value_delimiter = ',')]
    fanout_groups: Vec<String>,
    /// Members of each fan-out group that send (flat out).
    #[arg(long, default_value_t = 4)]
    fanout_senders: usize,
    /// Messages in flight per fan-out sender: not yet acknowledged, or not yet received by
    /// every other member.
    #[arg(long, default_value_t = 4)]
    fanout_window: usize,
    /// Offered deliveries per second of the fan-out (each shape, all its groups), instead of
    /// flat out: for latency below both saturations.
    #[arg(long)]
    fanout_rate: Option<f64>,
    /// Size of the media scenario's file, in MiB.
    #[arg(long, default_value_t = 10)]
    media_mib: usize,
    /// Timed rounds of the media scenario (each: raw and chatd, upload and download).
    #[arg(long, default_value_t = 11)]
    media_rounds: usize,
    /// Concurrent uploads of the media scenario's RSS runs.
    #[arg(long, default_value_t = 10)]
    media_concurrent: usize,
    /// Seconds each upload of the media scenario's paced RSS run takes.
    #[arg(long, default_value_t = 3.0)]
    media_paced_secs: f64,
    /// chatd nodes of the cluster-idle scenario (not a default: idle connections across nodes that
    /// share a private Redis, each node on the memory store with its own load-test accounts).
    #[arg(long, default_value_t = 6)]
    cluster_nodes: usize,
    /// Idle connections of the cluster-idle scenario, all nodes together.
    #[arg(long, default_value_t = 100_000)]
    cluster_conns: usize,
    /// Seconds the cluster-idle connections are held.
    #[arg(long, default_value_t = 60)]
    cluster_hold_secs: u64,
    /// Generator processes of the cluster-idle scenario (default: enough that each holds at most
    /// the open-file limit less 1,000 sockets).
    #[arg(long)]
    cluster_generators: Option<usize>,
    /// Users of the cluster-idle presence check whose connections close (spread over the nodes).
    #[arg(long, default_value_t = 50)]
    cluster_sample: usize,
    /// CPUs the cluster-idle generators run on (taskset -c).
    #[arg(long, default_value = "1")]
    cluster_generator_cpus: String,
    /// Where to write the results as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
}

const LOAD_TEST_PASSWORD: &str = "load-test only: Xq7!vR2#pL9";

/// A server under test, pinned to CPU 0.
struct ServerProc {
    child: Child,
    addr: SocketAddr,
    pid: u32,
}

impl ServerProc {
    async fn start(mut cmd: Command, log: &Path) -> Result<ServerProc> {
        let logf = std::fs::File::create(log)?;
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(logf)
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a server (is taskset installed?)")?;
        let out = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(out).lines();
        let first = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
            .await
            .context("the server did not start in time")??
            .with_context(|| format!("the server exited; see {}", log.display()))?;
        let addr: SocketAddr = first
            .trim()
            .parse()
            .with_context(|| format!("server said {first:?}"))?;
        let pid = child.id().context("no pid")?;
        // Keep draining stdout so the server never blocks on it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(ServerProc { child, addr, pid })
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

fn pinned(program: &Path) -> Command {
    // Each server start begins a scenario: fresh client source addresses.
    net::next_epoch();
    let mut c = Command::new("taskset");
    c.arg("-c").arg("0").arg(program);
    c
}

async fn start_chatd(o: &AllOpts, accounts: usize, tmp: &Path) -> Result<(ServerProc, PathBuf)> {
    start_chatd_on(o, accounts, tmp, None).await
}

/// chatd on the memory store, or on a fresh SQLite file at `db`.
async fn start_chatd_on(
    o: &AllOpts,
    accounts: usize,
    tmp: &Path,
    db: Option<&Path>,
) -> Result<(ServerProc, PathBuf)> {
    start_chatd_with(o, accounts, tmp, db, &[]).await
}

/// [`start_chatd_on`] with more flags.
async fn start_chatd_with(
    o: &AllOpts,
    accounts: usize,
    tmp: &Path,
    db: Option<&Path>,
    extra: &[String],
) -> Result<(ServerProc, PathBuf)> {
    start_chatd_node(o, "chatd", accounts, tmp, db, extra).await
}

/// [`start_chatd_with`] for one of several nodes: its tokens and log are
/// `{name}-tokens.txt` and `{name}.log` in `tmp`.
async fn start_chatd_node(
    o: &AllOpts,
    name: &str,
    accounts: usize,
    tmp: &Path,
    db: Option<&Path>,
    extra: &[String],
) -> Result<(ServerProc, PathBuf)> {
    let tokens = tmp.join(format!("{name}-tokens.txt"));
    let store = match db {
        Some(path) => {
            for suffix in ["", "-wal", "-shm"] {
                let mut p = path.as_os_str().to_owned();
                p.push(suffix);
                let _ = std::fs::remove_file(PathBuf::from(p));
            }
            format!("sqlite:{}", path.display())
        }
        None => "memory".to_owned(),
    };
    let mut c = pinned(&o.chatd);
    c.args(["--listen", "127.0.0.1:0", "--print-addr", "--log", "warn"])
        // Its default port would clash between runs; the bench reads no metrics.
        .args(["--metrics-listen", "off"])
        .args(["--store", &store])
        .arg("--load-test-accounts")
        .arg(accounts.to_string())
        .arg("--load-test-tokens")
        .arg(&tokens)
        .args(["--load-test-password", LOAD_TEST_PASSWORD])
        // The relay sends far above a person's 50 requests/s per connection.
        .args(["--frames-per-second", "1000000", "--frame-burst", "1000000"])
        .args(["--max-connections", "200000"])
        // Every connection comes from 127.0.0.1, and each relay user sends
        // far above a person's budget: the per-address and per-user caps
        // are raised (their cost is still paid: they are checked, not off).
        .args(["--max-connections-per-address", "200000"])
        .args(["--max-unauthenticated-per-address", "1000"])
        .args(["--send-bytes-per-minute", "4000000000"])
        .arg("--mailer")
        .arg(format!("dir:{}", tmp.join("mail").display()))
        .args(extra);
    let s = ServerProc::start(c, &tmp.join(format!("{name}.log"))).await?;
    Ok((s, tokens))
}

async fn start_ceiling(o: &AllOpts, tmp: &Path) -> Result<ServerProc> {
    let me = match &o.bench {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let mut c = pinned(&me);
    c.arg("ceiling");
    ServerProc::start(c, &tmp.join("ceiling.log")).await
}

async fn start_socketio(o: &AllOpts, users: usize, tmp: &Path) -> Result<(ServerProc, PathBuf)> {
    let tokens = tmp.join("sio-tokens.txt");
    let mut c = pinned(Path::new("node"));
    c.arg(o.socketio.join("server.js"))
        .args(["--users", &users.to_string()])
        .arg("--tokens")
        .arg(&tokens);
    let s = ServerProc::start(c, &tmp.join("socketio.log")).await?;
    Ok((s, tokens))
}

/// The seed of the chatd nodes' load-test accounts: the same users, under
/// the same ids, on every node (any value does, as long as all share it).
const NODES_SEED: u64 = 21;

/// Two chatd nodes on `redis`, each on its own memory store with the same
/// load-test users (`--load-test-seed`), their own tokens: the accounts as
/// the relay wants them, user `i` with the token of the node it connects to
/// (even: node A, odd: node B).
async fn start_chatd_pair(
    o: &AllOpts,
    users: usize,
    tmp: &Path,
    redis: &RedisProc,
) -> Result<([ServerProc; 2], Vec<proto::Account>)> {
    let extra = [
        "--redis".to_owned(),
        redis.url.clone(),
        "--load-test-seed".to_owned(),
        NODES_SEED.to_string(),
    ];
    let (a, tokens_a) = start_chatd_node(o, "chatd-a", users, tmp, None, &extra).await?;
    let (b, tokens_b) = start_chatd_node(o, "chatd-b", users, tmp, None, &extra).await?;
    let on_a = proto::read_accounts(&tokens_a)?;
    let on_b: std::collections::HashMap<String, proto::Account> = proto::read_accounts(&tokens_b)?
        .into_iter()
        .map(|a| (a.username.clone(), a))
        .collect();
    let mut accounts = Vec::with_capacity(on_a.len());
    for (i, mine) in on_a.into_iter().enumerate() {
        if i % 2 == 0 {
            accounts.push(mine);
            continue;
        }
        let theirs = on_b
            .get(&mine.username)
            .with_context(|| format!("node B has no user {}", mine.username))?;
        if theirs.user != mine.user {
            bail!(
                "{} is {} on node A and {} on node B: the seed did not hold",
                mine.username,
                mine.user,
                theirs.user
            );
        }
        accounts.push(theirs.clone());
    }
    Ok(([a, b], accounts))
}

/// Two Socket.IO nodes on `redis` (`@socket.io/redis-adapter`), node B
/// reading node A's users and tokens: its accounts serve on both.
async fn start_socketio_pair(
    o: &AllOpts,
    users: usize,
    tmp: &Path,
    redis: &RedisProc,
) -> Result<([ServerProc; 2], PathBuf)> {
    let tokens = tmp.join("sio-a-tokens.txt");
    let mut c = pinned(Path::new("node"));
    c.arg(o.socketio.join("server.js"))
        .args(["--users", &users.to_string()])
        .arg("--tokens")
        .arg(&tokens)
        .args(["--redis", &redis.url]);
    let a = ServerProc::start(c, &tmp.join("socketio-a.log")).await?;
    let mut c = pinned(Path::new("node"));
    c.arg(o.socketio.join("server.js"))
        .arg("--tokens-in")
        .arg(&tokens)
        .args(["--redis", &redis.url]);
    let b = ServerProc::start(c, &tmp.join("socketio-b.log")).await?;
    Ok(([a, b], tokens))
}

/// The relay across two nodes and Redis: the server's CPU is all three's.
async fn relay_two_nodes(
    nodes: &[ServerProc; 2],
    redis: &RedisProc,
    target: Target,
    opts: &RelayOpts,
    name: &str,
) -> Result<RelayReport> {
    let addrs = [nodes[0].addr, nodes[1].addr];
    let procs = [
        ("node-a", nodes[0].pid),
        ("node-b", nodes[1].pid),
        ("redis", redis.pid),
    ];
    let mut r = relay::run_across(&addrs, target, opts, &procs, Some(redis)).await?;
    r.target = name.to_owned();
    Ok(r)
}

fn relay_opts(o: &AllOpts, rate: Option<f64>) -> RelayOpts {
    RelayOpts {
        pairs: o.pairs,
        size: o.size,
        window: o.window,
        rate,
        warmup: Duration::from_secs(o.warmup_secs),
        secs: Duration::from_secs(o.secs),
    }
}

async fn relay_one(
    o: &AllOpts,
    target: &str,
    rate: Option<f64>,
    tmp: &Path,
) -> Result<RelayReport> {
    let opts = relay_opts(o, rate);
    let users = o.pairs * 2;
    let r = match target {
        "ceiling" | "ceiling-ack" => {
            let s = start_ceiling(o, tmp).await?;
            let t = if target == "ceiling" {
                Target::Ceiling
            } else {
                Target::CeilingAck
            };
            let r = relay::run(s.addr, t, &opts, s.pid).await;
            s.stop().await;
            r?
        }
        "chatd" => {
            let (s, tokens) = start_chatd(o, users, tmp).await?;
            let accounts = Arc::new(proto::read_accounts(&tokens)?);
            let r = relay::run(s.addr, Target::Chatd(accounts), &opts, s.pid).await;
            s.stop().await;
            r?
        }
        "chatd-e2e" => {
            let (s, tokens) = start_chatd(o, users, tmp).await?;
            let accounts = Arc::new(proto::read_accounts(&tokens)?);
            let r = relay::run(s.addr, Target::ChatdE2e(accounts), &opts, s.pid).await;
            s.stop().await;
            r?
        }
        "chatd-typing" | "chatd-pinging" => {
            let what = if target == "chatd-typing" {
                relay::Beside::Typing
            } else {
                relay::Beside::Ping
            };
            let (s, tokens) = start_chatd(o, users + o.typing_users, tmp).await?;
            let accounts = Arc::new(proto::read_accounts(&tokens)?);
            let typers =
                relay::start_typers(s.addr, &accounts, users, o.typing_users, what).await?;
            let r = relay::run(s.addr, Target::Chatd(accounts), &opts, s.pid).await;
            let typed = typers.stop().await;
            s.stop().await;
            let mut r = r?;
            r.target = target.into();
            r.typing_per_sec = typed;
            r
        }
        "chatd-receipts" => {
            let (s, tokens) = start_chatd(o, users, tmp).await?;
            let accounts = Arc::new(proto::read_accounts(&tokens)?);
            let r = relay::run(s.addr, Target::ChatdReceipts(accounts), &opts, s.pid).await;
            s.stop().await;
            r?
        }
        "chatd-sqlite" => {
            let db = tmp.join("relay.db");
            let (s, tokens) = start_chatd_on(o, users, tmp, Some(&db)).await?;
            let accounts = Arc::new(proto::read_accounts(&tokens)?);
            let r = relay::run(s.addr, Target::Chatd(accounts), &opts, s.pid).await;
            s.stop().await;
            let mut r = r?;
            r.target = "chatd-sqlite".into();
            r.db_bytes_per_million = db_bytes_per_million(&db, "messages", 1).ok();
            r
        }
        "socketio" => {
            let (s, tokens) = start_socketio(o, users, tmp).await?;
            let accounts = Arc::new(proto::read_accounts(&tokens)?);
            let r = relay::run(s.addr, Target::SocketIo(accounts), &opts, s.pid).await;
            s.stop().await;
            r?
        }
        "chatd-2nodes" => {
            let redis = RedisProc::start(&tmp.join("redis.log")).await?;
            let r = async {
                let (nodes, accounts) = start_chatd_pair(o, users, tmp, &redis).await?;
                let t = Target::Chatd(Arc::new(accounts));
                let r = relay_two_nodes(&nodes, &redis, t, &opts, "chatd-2nodes").await;
                for n in nodes {
                    n.stop().await;
                }
                r
            }
            .await;
            redis.stop().await;
            r?
        }
        "socketio-2nodes" => {
            let redis = RedisProc::start(&tmp.join("redis.log")).await?;
            let r = async {
                let (nodes, tokens) = start_socketio_pair(o, users, tmp, &redis).await?;
                let t = Target::SocketIo(Arc::new(proto::read_accounts(&tokens)?));
                let r = relay_two_nodes(&nodes, &redis, t, &opts, "socket.io-2nodes").await;
                for n in nodes {
                    n.stop().await;
                }
                r
            }
            .await;
            redis.stop().await;
            r?
        }
        "ejabberd" => {
            net::next_epoch();
            let s = ejabberd::Ejabberd::start(&o.ejabberd, tmp, Flavor::Memory).await?;
            let t = Target::Ejabberd(Arc::from(LOAD_TEST_PASSWORD));
            let r = relay::run(s.addr, t, &opts, s.pid).await;
            s.stop().await;
            r?
        }
        "ejabberd-sqlite" => {
            net::next_epoch();
            let s = ejabberd::Ejabberd::start(&o.ejabberd, tmp, Flavor::Sqlite).await?;
            let db = s.db.clone();
            let t = Target::Ejabberd(Arc::from(LOAD_TEST_PASSWORD));
            let r = relay::run(s.addr, t, &opts, s.pid).await;
            s.stop().await;
            let mut r = r?;
            r.target = "ejabberd-sqlite".into();
            // mod_mam keeps a 1:1 message twice: in the sender's and the recipient's archive.
            r.db_bytes_per_million = db.and_then(|db| db_bytes_per_million(&db, "archive", 2).ok());
            r
        }
        other => bail!("unknown target {other}"),
    };
    println!("  {}", r.line());
    Ok(r)
}

/// The size of the SQLite database at `db` (after folding its WAL in)
/// per million messages stored, each stored as `rows_per_message` rows of `table`.
fn db_bytes_per_million(db: &Path, table: &str, rows_per_message: i64) -> Result<f64> {
    use chatcore_sqlite::rusqlite;
    let conn = rusqlite::Connection::open(db)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let rows: i64 = conn.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
    let entries = rows / rows_per_message.max(1);
    let bytes: i64 = conn.query_row(
        "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        [],
        |r| r.get(0),
    )?;
    Ok(bytes as f64 / (entries.max(1) as f64) * 1e6)
}

async fn idle_one(
    o: &AllOpts,
    target: &str,
    n: usize,
    tmp: &Path,
) -> Result<scenarios::IdleReport> {
    let hold = Duration::from_secs(o.hold_secs);
    let r = match target {
        "ceiling" => {
            let s = start_ceiling(o, tmp).await?;
            let r = scenarios::idle(s.addr, Target::Ceiling, n, hold, s.pid).await;
            s.stop().await;
            r?
        }
        "chatd" => {
            let (s, tokens) = start_chatd(o, n, tmp).await?;
            let accounts = Arc::new(proto::read_accounts(&tokens)?);
            let r = scenarios::idle(s.addr, Target::Chatd(accounts), n, hold, s.pid).await;
            s.stop().await;
            r?
        }
        "socketio" => {
            let (s, tokens) = start_socketio(o, n, tmp).await?;
            let accounts = Arc::new(proto::read_accounts(&tokens)?);
            let r = scenarios::idle(s.addr, Target::SocketIo(accounts), n, hold, s.pid).await;
            s.stop().await;
            r?
        }
        "ejabberd" => {
            net::next_epoch();
            let s = ejabberd::Ejabberd::start(&o.ejabberd, tmp, Flavor::Memory).await?;
            let t = Target::Ejabberd(Arc::from(LOAD_TEST_PASSWORD));
            let r = scenarios::idle(s.addr, t, n, hold, s.pid).await;
            s.stop().await;
            r?
        }
        other => bail!("unknown target {other}"),
    };
    println!("  {}", r.line());
    Ok(r)
}

/// The media scenario: chatd on a fresh SQLite file with a media directory
/// beside it, the raw peer storing into a directory inside that one (the
/// same file system), one load-test account's token.
async fn media_one(o: &AllOpts, tmp: &Path) -> Result<media::MediaReport> {
    let dir = tmp.join("media-run");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let blobs = dir.join("media");
    let opts = media::MediaOpts {
        size: o.media_mib << 20,
        rounds: o.media_rounds.max(1),
        concurrent: o.media_concurrent.max(1),
        paced_secs: o.media_paced_secs,
    };
    let me = match &o.bench {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let mut c = pinned(&me);
    c.arg("media-peer").arg("--dir").arg(blobs.join("raw-peer"));
    let peer = ServerProc::start(c, &tmp.join("media-peer.log")).await?;
    let db = dir.join("chatd.db");
    let extra = media::chatd_media_args(&blobs);
    let (s, tokens) = start_chatd_with(o, 1, tmp, Some(&db), &extra).await?;
    let token = proto::read_accounts(&tokens)?
        .into_iter()
        .next()
        .context("no load-test account")?
        .token;
    let r = media::throughput((s.addr, s.pid), &token, (peer.addr, peer.pid), &opts).await;
    s.stop().await;
    peer.stop().await;
    let mut r = r?;
    // RSS on a fresh chatd (its VmHWM not raised by the rounds above), after
    // one warm-up upload and download.
    let db = dir.join("chatd-rss.db");
    let (s, tokens) = start_chatd_with(o, 1, tmp, Some(&db), &extra).await?;
    let token = proto::read_accounts(&tokens)?
        .into_iter()
        .next()
        .context("no load-test account")?
        .token;
    let runs = async {
        let warm = media::MediaOpts {
            rounds: 1,
            concurrent: 1,
            ..opts
        };
        media::warm_up(s.addr, &token, &warm).await?;
        let mut rss = Vec::new();
        for paced in [true, false] {
            let run = tokio::time::timeout(
                Duration::from_secs(300),
                media::concurrent_uploads(s.addr, &token, s.pid, &opts, paced),
            )
            .await
            .context("the concurrent uploads did not finish in 300 s")??;
            rss.push(run);
        }
        anyhow::Ok(rss)
    }
    .await;
    s.stop().await;
    r.rss = runs?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(r)
}

/// `GROUPSxMEMBERS`, as `--fanout-groups` names a shape.
fn parse_shape(s: &str) -> Result<(usize, usize)> {
    let (g, m) = s
        .split_once('x')
        .with_context(|| format!("fan-out shape {s:?} is not GROUPSxMEMBERS"))?;
    Ok((
        g.trim().parse().context("fan-out groups")?,
        m.trim().parse().context("fan-out members")?,
    ))
}

async fn fanout_one(
    o: &AllOpts,
    target: &str,
    groups: usize,
    members: usize,
    tmp: &Path,
) -> Result<FanoutReport> {
    let opts = FanoutOpts {
        groups,
        members,
        senders: o.fanout_senders,
        window: o.fanout_window,
        rate: o.fanout_rate,
        size: o.size,
        warmup: Duration::from_secs(o.warmup_secs),
        secs: Duration::from_secs(o.secs),
    };
    let users = groups * members;
    let r = match target {
        "chatd" => {
            let (s, tokens) = start_chatd(o, users, tmp).await?;
            let accounts = Arc::new(proto::read_accounts(&tokens)?);
            let r = fanout::run(s.addr, Target::Chatd(accounts), &opts, s.pid).await;
            s.stop().await;
            r?
        }
        "chatd-sqlite" => {
            let db = tmp.join("fanout.db");
            let (s, tokens) = start_chatd_on(o, users, tmp, Some(&db)).await?;
            let accounts = Arc::new(proto::read_accounts(&tokens)?);
            let r = fanout::run(s.addr, Target::Chatd(accounts), &opts, s.pid).await;
            s.stop().await;
            let mut r = r?;
            r.target = "chatd-sqlite".into();
            r
        }
        "socketio" => {
            let (s, tokens) = start_socketio(o, users, tmp).await?;
            let accounts = Arc::new(proto::read_accounts(&tokens)?);
            let r = fanout::run(s.addr, Target::SocketIo(accounts), &opts, s.pid).await;
            s.stop().await;
            r?
        }
        "ejabberd" => {
            net::next_epoch();
            let s = ejabberd::Ejabberd::start(&o.ejabberd, tmp, Flavor::Muc).await?;
            let t = Target::Ejabberd(Arc::from(LOAD_TEST_PASSWORD));
            let r = fanout::run(s.addr, t, &opts, s.pid).await;
            s.stop().await;
            r?
        }
        other => bail!("the fan-out scenario has no target {other}"),
    };
    println!("  {}", r.line());
    Ok(r)
}

/// This process's open-file limit (children inherit it).
fn fd_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            l.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(1024)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name")
                    .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_owned())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or("?".into(), |kb| {
            format!("{:.1} GiB", kb as f64 / 1024.0 / 1024.0)
        });
    let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cores = std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0);
    format!(
        "machine: {cores} CPUs ({cpu}), {mem} RAM; this process sees {nproc} CPU(s); load average at start: {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    )
}

async fn all(o: AllOpts) -> Result<()> {
    let tmp = std::env::temp_dir().join(format!("chatd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&tmp)?;
    println!("{}", machine());
    println!("servers pinned to CPU 0 (taskset -c 0); load generator (one process, all clients) on CPU 1 (taskset -c 1)");
    println!(
        "relay: {} pairs, {} B payloads, {} in flight per pair (flat out) or {:.0} msg/s offered (fixed rate); {} s warm-up, {} s measured",
        o.pairs, o.size, o.window, o.rate, o.warmup_secs, o.secs
    );
    let want = |s: &str| o.only.iter().any(|x| x == s);
    let mut results = serde_json::Map::new();
    let mut flat = Vec::new();
    let mut fixed = Vec::new();
    let mut idle = Vec::new();
    if want("relay") {
        println!("== relay, flat out");
        for t in &o.targets {
            flat.push(relay_one(&o, t, None, &tmp).await?);
        }
    }
    if want("rate") {
        println!("== relay, fixed rate");
        for t in o.targets.iter().filter(|t| !t.starts_with("ceiling")) {
            fixed.push(relay_one(&o, t, Some(o.rate), &tmp).await?);
        }
    }
    if want("idle") {
        println!("== idle connections");
        for t in o.targets.iter().filter(|t| {
            !matches!(
                t.as_str(),
                "ceiling-ack"
                    | "chatd-sqlite"
                    | "chatd-e2e"
                    | "chatd-receipts"
                    | "chatd-typing"
                    | "chatd-pinging"
                    | "ejabberd-sqlite"
                    | "chatd-2nodes"
                    | "socketio-2nodes"
            )
        }) {
            idle.push(idle_one(&o, t, o.idle_n, &tmp).await?);
        }
    }
    let mut big = None;
    if want("big") {
        println!("== big idle run (chatd)");
        // Server and generator each hold one descriptor per connection.
        let limit = fd_limit();
        let n = if limit < o.big_n as u64 + 500 {
            let capped = limit.saturating_sub(500) as usize;
            println!(
                "  NOTE: this process may open only {limit} files (RLIMIT_NOFILE, hard limit; raising it needs CAP_SYS_RESOURCE): {} connections cannot be held here; running {capped}",
                o.big_n
            );
            capped
        } else {
            o.big_n
        };
        big = Some(idle_one(&o, "chatd", n, &tmp).await?);
    }
    let mut churn = None;
    if want("churn") {
        println!("== churn (chatd): connect, resume, leave; presence to watchers");
        let (s, tokens) = start_chatd(&o, o.churners * 2, &tmp).await?;
        let accounts = Arc::new(proto::read_accounts(&tokens)?);
        let r = scenarios::churn(
            s.addr,
            accounts,
            o.churners,
            Duration::from_secs(o.secs),
            s.pid,
        )
        .await;
        s.stop().await;
        let r = r?;
        println!(
            "  chatd     churners={}: {:.0} connects+resumes/s, {:.0} presence pushes/s, errors {}, server CPU {:.0}%",
            r.churners, r.connects_per_sec, r.presence_per_sec, r.errors, r.server_cpu
        );
        churn = Some(r);
    }
    let mut login = None;
    if want("login") {
        println!("== login storm (chatd, production argon2 cost) during the fixed-rate relay");
        let (s, tokens) = start_chatd(&o, o.pairs * 2 + 1000, &tmp).await?;
        let accounts = Arc::new(proto::read_accounts(&tokens)?);
        let r = scenarios::login(
            s.addr,
            accounts,
            LOAD_TEST_PASSWORD,
            o.loginers,
            &relay_opts(&o, Some(o.rate)),
            s.pid,
        )
        .await;
        s.stop().await;
        let r = r?;
        println!("  quiet: {}", r.quiet.line());
        println!("  storm: {}", r.storm.line());
        println!(
            "  {} concurrent logins: {:.1} logins/s, errors {}; relay p99 {:.2} ms quiet -> {:.2} ms during the storm ({:.2}x)",
            r.loginers,
            r.logins_per_sec,
            r.login_errors,
            r.quiet.p99_ms,
            r.storm.p99_ms,
            r.storm.p99_ms / r.quiet.p99_ms.max(1e-9)
        );
        login = Some(r);
    }

    let mut fanouts = Vec::new();
    if want("fanout") {
        let targets: Vec<&String> = o
            .targets
            .iter()
            .filter(|t| {
                matches!(
                    t.as_str(),
                    "chatd" | "chatd-sqlite" | "socketio" | "ejabberd"
                )
            })
            .collect();
        let pace = match o.fanout_rate {
            Some(r) => format!("{r:.0} deliveries/s offered, at even intervals"),
            None => format!(
                "{} messages in flight each (until acknowledged and received by every member: flat out)",
                o.fanout_window
            ),
        };
        println!(
            "== group fan-out: {} senders per group, {pace}; targets {}",
            o.fanout_senders,
            targets
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        for shape in &o.fanout_groups {
            let (groups, members) = parse_shape(shape)?;
            // Server and generator each hold one descriptor per connection.
            let limit = fd_limit();
            if (groups * members) as u64 + 500 > limit {
                bail!(
                    "fan-out {shape}: {} connections do not fit under this process's open-file limit of {limit}",
                    groups * members
                );
            }
            for t in &targets {
                fanouts.push(fanout_one(&o, t, groups, members, &tmp).await?);
            }
        }
    }

    let mut cluster = None;
    if want("cluster-idle") {
        println!(
            "== cluster idle: {} connections across {} chatd nodes on one Redis (nodes and Redis on CPU 0, generators on CPU {}), held {} s",
            o.cluster_conns, o.cluster_nodes, o.cluster_generator_cpus, o.cluster_hold_secs
        );
        let r = cluster_idle::run(&o, &tmp).await?;
        println!("  {}", r.line());
        for (k, n) in r.node.iter().enumerate() {
            println!(
                "    node{k}: {} held, RSS {} -> {} KiB ({:.2} KiB per connection), Redis says {}",
                n.held,
                n.rss_before_kib,
                n.rss_after_kib,
                n.rss_after_kib.saturating_sub(n.rss_before_kib) as f64 / n.held.max(1) as f64,
                n.redis_users
                    .map_or("?".into(), |c| format!("{c} users online"))
            );
        }
        if !r.dropped_why.is_empty() {
            println!("    dropped while held: {:?}", r.dropped_why);
        }
        let p = &r.presence;
        println!(
            "    presence: {} of {} listed users online (and {} listed whose connection failed or dropped); {} of {} closed pushed offline with last-seen (last after {:.2} s), {} listed so; CPU while connecting: nodes {:.0}%, Redis {:.0}%, generators {:.0}%; over the hold: nodes {:.0}%, Redis {:.0}%; generators' RSS {} MiB",
            p.listed_online,
            p.listed,
            p.listed_down,
            p.pushed_offline,
            p.sample,
            p.push_secs,
            p.listed_offline,
            r.nodes_cpu_connect,
            r.redis_cpu_connect,
            r.generators_cpu_connect,
            r.nodes_cpu_hold,
            r.redis_cpu_hold,
            r.generators_rss_kib / 1024
        );
        cluster = Some(r);
    }

    let mut media = None;
    if want("media") {
        println!(
            "== media (chatd on SQLite, --media dir:): {} MiB upload + download against a raw loopback copy into the same directory with FsBlobStore's fsyncs, {} rounds each, alternating; then RSS during {} concurrent uploads",
            o.media_mib, o.media_rounds, o.media_concurrent
        );
        let r = media_one(&o, &tmp).await?;
        println!("{r}");
        media = Some(r);
    }

    // The summary against the targets.
    println!();
    println!("| measure | value | target | met |");
    println!("|---|---|---|---|");
    let find = |v: &[RelayReport], t: &str| v.iter().find(|r| r.target == t).cloned();
    let yes = |b: bool| if b { "yes" } else { "NO" };
    if let (Some(c), Some(d)) = (find(&flat, "ceiling"), find(&flat, "chatd")) {
        let x = d.msgs_per_sec / c.msgs_per_sec.max(1.0);
        println!(
            "| chatd relay / ceiling (flat out) | {:.0} / {:.0} msg/s = {x:.2}x | >= 0.6x | {} |",
            d.msgs_per_sec,
            c.msgs_per_sec,
            yes(x >= 0.6)
        );
    }
    if let (Some(c), Some(d)) = (find(&flat, "ceiling-ack"), find(&flat, "chatd")) {
        // Per server CPU-second: both write two frames per message; the
        // generator's core bounds the ceiling, the server's core chatd.
        let per_cpu = |r: &RelayReport| r.msgs_per_sec / (r.server_cpu / 100.0).max(1e-3);
        let x = per_cpu(&d) / per_cpu(&c).max(1.0);
        println!(
            "| chatd relay / acking ceiling, per server CPU-second | {:.0} / {:.0} msg/s = {x:.2}x | >= 0.8x | {} |",
            per_cpu(&d),
            per_cpu(&c),
            yes(x >= 0.8)
        );
    }
    // The durable relay beside the in-memory one (issue 17's targets).
    let per_cpu = |r: &RelayReport| r.msgs_per_sec / (r.server_cpu / 100.0).max(1e-3);
    if let (Some(m), Some(q)) = (find(&flat, "chatd"), find(&flat, "chatd-sqlite")) {
        let x = per_cpu(&q) / per_cpu(&m).max(1.0);
        println!(
            "| SQLite relay / memory relay, per server CPU-second (flat out) | {:.0} / {:.0} msg/s = {x:.2}x ({:.0} / {:.0} msg/s; p99 {:.2} / {:.2} ms) | >= 0.5x | {} |",
            per_cpu(&q),
            per_cpu(&m),
            q.msgs_per_sec,
            m.msgs_per_sec,
            q.p99_ms,
            m.p99_ms,
            yes(x >= 0.5)
        );
    }
    if let (Some(m), Some(q)) = (find(&fixed, "chatd"), find(&fixed, "chatd-sqlite")) {
        let x = per_cpu(&q) / per_cpu(&m).max(1.0);
        let p = q.p99_ms / m.p99_ms.max(1e-9);
        println!(
            "| SQLite relay / memory relay at {:.0} msg/s offered: per server CPU-second; p99 | {:.0} / {:.0} msg/s = {x:.2}x; {:.2} / {:.2} ms = {p:.2}x | >= 0.5x; <= 2x | {} |",
            o.rate,
            per_cpu(&q),
            per_cpu(&m),
            q.p99_ms,
            m.p99_ms,
            yes(x >= 0.5 && p <= 2.0)
        );
    }
    // Encrypted content beside plain text (issue 16): the server does the
    // same work whatever the content (within 10%).
    for (runs, how) in [(&flat, "flat out"), (&fixed, "fixed rate")] {
        if let (Some(p), Some(e)) = (find(runs, "chatd"), find(runs, "chatd-e2e")) {
            let x = per_cpu(&e) / per_cpu(&p).max(1.0);
            println!(
                "| encrypted relay / plain relay, per server CPU-second ({how}; {} B texts and ciphertexts) | {:.0} / {:.0} msg/s = {x:.2}x ({:.0} / {:.0} msg/s; p99 {:.2} / {:.2} ms) | >= 0.9x | {} |",
                p.size,
                per_cpu(&e),
                per_cpu(&p),
                e.msgs_per_sec,
                p.msgs_per_sec,
                e.p99_ms,
                p.p99_ms,
                yes(x >= 0.9)
            );
        }
    }
    // Receipts beside the plain relay (issue 19): every message acknowledged
    // and read by its recipient, both receipts pushed to its sender.
    // Typing beside the plain relay (issue 19): 10,000 users typing once a
    // second change the relay's p99 by at most 20% (judged at the fixed rate).
    for (runs, how) in [(&flat, "flat out"), (&fixed, "fixed rate")] {
        if let (Some(p), Some(t)) = (find(runs, "chatd"), find(runs, "chatd-typing")) {
            let x = t.p99_ms / p.p99_ms.max(0.001);
            let fixed = how == "fixed rate";
            println!(
                "| relay p99 with {} users typing once a second / without ({how}; {:.0} typing/s sent) | {:.2} / {:.2} ms = {x:.2}x ({:.0} / {:.0} msg/s per server CPU-second) | {} | {} |",
                o.typing_users,
                t.typing_per_sec,
                t.p99_ms,
                p.p99_ms,
                per_cpu(&t),
                per_cpu(&p),
                if fixed { "<= 1.2x" } else { "-" },
                if fixed { yes(x <= 1.2) } else { "-" }
            );
        }
        // The control: the same users each sending the cheapest request.
        if let (Some(p), Some(t)) = (find(runs, "chatd"), find(runs, "chatd-pinging")) {
            println!(
                "| control: relay p99 with {} users sending `ping` once a second / without ({how}; {:.0} ping/s sent) | {:.2} / {:.2} ms = {:.2}x ({:.0} / {:.0} msg/s per server CPU-second) | - | - |",
                o.typing_users,
                t.typing_per_sec,
                t.p99_ms,
                p.p99_ms,
                t.p99_ms / p.p99_ms.max(0.001),
                per_cpu(&t),
                per_cpu(&p),
            );
        }
    }
    // The target is on throughput (flat out, where a client acknowledges and
    // reads what arrived together at once); at a fixed rate below
    // saturation every message comes alone and costs its own two receipts.
    for (runs, how, target) in [(&flat, "flat out", true), (&fixed, "fixed rate", false)] {
        if let (Some(p), Some(r)) = (find(runs, "chatd"), find(runs, "chatd-receipts")) {
            let x = per_cpu(&r) / per_cpu(&p).max(1.0);
            println!(
                "| relay with receipts / plain relay, per server CPU-second ({how}; {:.2} receipt pushes per message) | {:.0} / {:.0} msg/s = {x:.2}x ({:.0} / {:.0} msg/s; p99 {:.2} / {:.2} ms) | {} | {} |",
                r.receipts as f64 / (r.delivered.max(1)) as f64,
                per_cpu(&r),
                per_cpu(&p),
                r.msgs_per_sec,
                p.msgs_per_sec,
                r.p99_ms,
                p.p99_ms,
                if target { ">= 0.7x" } else { "-" },
                if target { yes(x >= 0.7) } else { "-" }
            );
        }
    }
    for r in flat.iter().chain(&fixed) {
        if let Some(b) = r.db_bytes_per_million {
            println!(
                "| SQLite database size per million messages ({} B payloads) | {:.0} MiB | - | - |",
                r.size,
                b / (1u64 << 20) as f64
            );
            break;
        }
    }
    if let (Some(s), Some(d)) = (find(&flat, "socket.io"), find(&flat, "chatd")) {
        let x = d.msgs_per_sec / s.msgs_per_sec.max(1.0);
        println!(
            "| chatd relay / Socket.IO (flat out) | {:.0} / {:.0} msg/s = {x:.2}x | >= 1.2x | {} |",
            d.msgs_per_sec,
            s.msgs_per_sec,
            yes(x >= 1.2)
        );
        let p = d.p99_ms / s.p99_ms.max(1e-9);
        println!("| chatd p99 / Socket.IO p99 (same window {}) | {:.2} / {:.2} ms = {p:.2}x | <= 0.5x | {} |", o.window, d.p99_ms, s.p99_ms, yes(p <= 0.5));
    }
    if let (Some(s), Some(d)) = (find(&fixed, "socket.io"), find(&fixed, "chatd")) {
        let p = d.p99_ms / s.p99_ms.max(1e-9);
        println!("| chatd p99 / Socket.IO p99 (both at {:.0} msg/s offered) | {:.2} / {:.2} ms = {p:.2}x | <= 0.5x | {} |", o.rate, d.p99_ms, s.p99_ms, yes(p <= 0.5));
    }
    // Several nodes on Redis (issue 21, 6(a)): every pair across two nodes,
    // the server's CPU the two nodes' and Redis's. The targets are on
    // throughput (flat out); the fixed-rate lines are for latency.
    for (runs, how, target) in [(&flat, "flat out", true), (&fixed, "fixed rate", false)] {
        let Some(x2) = find(runs, "chatd-2nodes") else {
            continue;
        };
        let judged = |t: &'static str, ok: bool| {
            if target {
                (t, yes(ok))
            } else {
                ("-", "-")
            }
        };
        if let Some(s2) = find(runs, "socket.io-2nodes") {
            let x = per_cpu(&x2) / per_cpu(&s2).max(1.0);
            let (t, met) = judged(">= 1.5x", x >= 1.5);
            println!(
                "| cross-node relay, chatd / Socket.IO (2 nodes + Redis each; {how}), per server CPU-second | {:.0} / {:.0} msg/s = {x:.2}x ({:.0} / {:.0} msg/s; p99 {:.2} / {:.2} ms) | {t} | {met} |",
                per_cpu(&x2),
                per_cpu(&s2),
                x2.msgs_per_sec,
                s2.msgs_per_sec,
                x2.p99_ms,
                s2.p99_ms
            );
        }
        if let Some(x1) = find(runs, "chatd") {
            let x = per_cpu(&x2) / per_cpu(&x1).max(1.0);
            let (t, met) = judged(">= 0.5x", x >= 0.5);
            println!(
                "| chatd cross-node relay (2 nodes + Redis) / one node ({how}), per server CPU-second | {:.0} / {:.0} msg/s = {x:.2}x ({:.0} / {:.0} msg/s; p99 {:.2} / {:.2} ms) | {t} | {met} |",
                per_cpu(&x2),
                per_cpu(&x1),
                x2.msgs_per_sec,
                x1.msgs_per_sec,
                x2.p99_ms,
                x1.p99_ms
            );
        }
    }
    if let (Some(s2), Some(s1)) = (find(&flat, "socket.io-2nodes"), find(&flat, "socket.io")) {
        let x = per_cpu(&s2) / per_cpu(&s1).max(1.0);
        println!(
            "| Socket.IO cross-node relay (2 nodes + Redis) / one node (flat out), per server CPU-second | {:.0} / {:.0} msg/s = {x:.2}x | - | - |",
            per_cpu(&s2),
            per_cpu(&s1)
        );
    }
    // The ejabberd peer (issue 23, scenarios 1 and 2: 1:1 relay in memory, and durable on SQLite).
    for ((runs, how), (ours, theirs)) in [(&flat, "flat out"), (&fixed, "fixed rate")]
        .into_iter()
        .flat_map(|r| {
            [
                (r, ("chatd", "ejabberd")),
                (r, ("chatd-sqlite", "ejabberd-sqlite")),
            ]
        })
    {
        if let (Some(d), Some(e)) = (find(runs, ours), find(runs, theirs)) {
            let x = per_cpu(&d) / per_cpu(&e).max(1.0);
            let p = d.p99_ms / e.p99_ms.max(1e-9);
            let at = if d.offered > 0.0 {
                format!("{:.0} msg/s offered", d.offered)
            } else {
                format!("window {}", d.window)
            };
            println!(
                "| {ours} / {theirs} relay ({how}, {at}): per server CPU-second; p99 | {:.0} / {:.0} msg/s = {x:.2}x ({:.0} / {:.0} msg/s); {:.2} / {:.2} ms = {p:.2}x | >= 1.5x; <= 0.5x | {} |",
                per_cpu(&d),
                per_cpu(&e),
                d.msgs_per_sec,
                e.msgs_per_sec,
                d.p99_ms,
                e.p99_ms,
                yes(x >= 1.5 && p <= 0.5)
            );
        }
    }
    for r in &idle {
        println!(
            "| idle RSS per connection, {} (n={}) | {:.2} KiB | {} | {} |",
            r.target,
            r.n,
            r.bytes_per_conn / 1024.0,
            if r.target == "chatd" { "<= 8 KiB" } else { "-" },
            if r.target == "chatd" {
                yes(r.bytes_per_conn <= 8192.0)
            } else {
                "-"
            }
        );
    }
    if let (Some(d), Some(e)) = (
        idle.iter().find(|r| r.target == "chatd"),
        idle.iter().find(|r| r.target == "ejabberd"),
    ) {
        let x = d.bytes_per_conn / e.bytes_per_conn.max(1.0);
        println!(
            "| idle RSS per connection, chatd / ejabberd (n={} / {}; held {} / {}) | {:.2} / {:.2} KiB = {x:.2}x | <= 0.5x | {} |",
            d.n,
            e.n,
            d.alive_after_hold,
            e.alive_after_hold,
            d.bytes_per_conn / 1024.0,
            e.bytes_per_conn / 1024.0,
            yes(x <= 0.5)
        );
    }
    if let Some(b) = &big {
        println!("| chatd concurrent authenticated connections held {:.0} s | {} of {} ({:.2} KiB/conn) | 100000 | {} |", b.hold_secs, b.alive_after_hold, b.n, b.bytes_per_conn / 1024.0, yes(b.alive_after_hold >= 100_000));
        if b.n < 100_000 {
            println!("| (100,000 extrapolated from the per-connection RSS above) | {:.2} GiB of RSS | - | not measured |", b.bytes_per_conn * 100_000.0 / (1u64 << 30) as f64);
        }
    }
    if let Some(c) = &cluster {
        println!(
            "| chatd idle connections across {} nodes on Redis, held {:.0} s ({} generators; connect {:.1} s, p50 {:.1} ms, p99 {:.1} ms per connection) | {} of {} held, {} dropped; nodes' RSS growth {:.2} KiB per connection ({:.2} KiB with their RSS before, the accounts in memory); Redis {} MiB; presence {} | 100000; <= 8 KiB growth | {} |",
            c.nodes,
            c.hold_secs,
            c.generators,
            c.connect_secs,
            c.connect_p50_ms,
            c.connect_p99_ms,
            c.alive_after_hold,
            c.n,
            c.dropped,
            c.kib_per_conn_increase,
            c.kib_per_conn,
            c.redis_rss_kib / 1024,
            if c.presence.ok { "right" } else { "WRONG" },
            // The 8 KiB are the connections' own: the nodes' growth (their RSS
            // before also holds the load-test accounts, in MongoDB in production).
            yes(c.alive_after_hold >= 100_000 && c.kib_per_conn_increase <= 8.0 && c.presence.ok)
        );
    }
    if let Some(c) = &churn {
        println!("| chatd churn: connect + resume + leave | {:.0} /s ({:.0} presence pushes/s) | - | - |", c.connects_per_sec, c.presence_per_sec);
    }
    if let Some(l) = &login {
        let x = l.storm.p99_ms / l.quiet.p99_ms.max(1e-9);
        println!("| relay p99 during login storm / quiet ({:.1} logins/s) | {:.2} / {:.2} ms = {x:.2}x | <= 2x | {} |", l.logins_per_sec, l.storm.p99_ms, l.quiet.p99_ms, yes(x <= 2.0));
    }
    if let Some(m) = &media {
        let med = media::median;
        for (what, raw, chatd, x) in [
            ("upload", &m.raw_up, &m.chatd_up, m.up_ratio()),
            ("download", &m.raw_down, &m.chatd_down, m.down_ratio()),
        ] {
            println!(
                "| media {what} of {} MiB, chatd / raw loopback copy (same dir, same fsyncs; medians of {}) | {:.0} / {:.0} MiB/s = {x:.3}x | >= 0.5x | {} |",
                o.media_mib,
                m.rounds,
                med(chatd),
                med(raw),
                yes(x >= 0.5)
            );
        }
        for r in &m.rss {
            println!(
                "| chatd RSS growth per concurrent upload ({} x {} MiB, {}; {} in flight at once) | {:.0} KiB (VmRSS {} -> peak {} KiB; VmHWM +{:.0} KiB per upload) | < 2048 KiB | {} |",
                r.uploads,
                o.media_mib,
                r.how,
                r.max_in_flight,
                r.growth_per_upload_kib,
                r.rss_before_kib,
                r.rss_peak_kib,
                r.hwm_growth_per_upload_kib,
                yes(r.growth_per_upload_kib < 2048.0 && r.max_in_flight == r.uploads)
            );
        }
    }
    let mut shapes: Vec<(usize, usize)> = fanouts.iter().map(|r| (r.groups, r.members)).collect();
    shapes.dedup();
    for (g, m) in shapes {
        let find = |t: &str| {
            fanouts
                .iter()
                .find(|r| r.target == t && r.groups == g && r.members == m)
        };
        if let (Some(d), Some(q)) = (find("chatd"), find("chatd-sqlite")) {
            let x = q.deliveries_per_server_cpu_sec / d.deliveries_per_server_cpu_sec.max(1.0);
            println!(
                "| group fan-out per server CPU-second, SQLite / memory ({g} x {m}-member groups) | {:.0} / {:.0} deliveries = {x:.2}x (p99 {:.2} / {:.2} ms) | - | - |",
                q.deliveries_per_server_cpu_sec,
                d.deliveries_per_server_cpu_sec,
                q.p99_ms,
                d.p99_ms
            );
        }
        if let (Some(d), Some(e)) = (find("chatd"), find("ejabberd")) {
            let x = d.deliveries_per_server_cpu_sec / e.deliveries_per_server_cpu_sec.max(1.0);
            let p = d.p99_ms / e.p99_ms.max(1e-9);
            println!(
                "| group fan-out, chatd / ejabberd MUC ({g} x {m}-member groups, {}): per server CPU-second; p99 | {:.0} / {:.0} deliveries = {x:.2}x ({:.0} / {:.0} deliveries/s); {:.2} / {:.2} ms = {p:.2}x | >= 1.5x; <= 0.5x | {} |",
                if d.offered > 0.0 {
                    format!("{:.0} deliveries/s offered", d.offered)
                } else {
                    format!("flat out, window {}", d.window)
                },
                d.deliveries_per_server_cpu_sec,
                e.deliveries_per_server_cpu_sec,
                d.deliveries_per_sec,
                e.deliveries_per_sec,
                d.p99_ms,
                e.p99_ms,
                yes(x >= 1.5 && p <= 0.5)
            );
        }
        if let (Some(d), Some(s)) = (find("chatd"), find("socket.io")) {
            let x = d.deliveries_per_server_cpu_sec / s.deliveries_per_server_cpu_sec.max(1.0);
            let (target, met) = if m == 100 {
                (">= 1.5x", yes(x >= 1.5))
            } else {
                ("-", "-")
            };
            println!(
                "| group fan-out per server CPU-second, chatd / Socket.IO ({g} x {m}-member groups) | {:.0} / {:.0} deliveries = {x:.2}x ({:.0} / {:.0} deliveries/s; p99 {:.2} / {:.2} ms) | {target} | {met} |",
                d.deliveries_per_server_cpu_sec,
                s.deliveries_per_server_cpu_sec,
                d.deliveries_per_sec,
                s.deliveries_per_sec,
                d.p99_ms,
                s.p99_ms
            );
        }
    }
    if let Some(path) = &o.json {
        results.insert("flat".into(), serde_json::to_value(&flat)?);
        results.insert("fixed".into(), serde_json::to_value(&fixed)?);
        results.insert("idle".into(), serde_json::to_value(&idle)?);
        results.insert("big".into(), serde_json::to_value(&big)?);
        results.insert("churn".into(), serde_json::to_value(&churn)?);
        results.insert("login".into(), serde_json::to_value(&login)?);
        results.insert("fanout".into(), serde_json::to_value(&fanouts)?);
        results.insert("media".into(), serde_json::to_value(&media)?);
        results.insert("cluster_idle".into(), serde_json::to_value(&cluster)?);
        std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // One worker thread: the process is pinned to one core.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Ceiling { listen } => {
            // The ceiling runs like chatd: tokio's default runtime.
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(ceiling::serve(&listen))
        }
        Cmd::All(o) => rt.block_on(all(*o)),
        Cmd::Claims(o) => rt.block_on(claims::run(o)),
        Cmd::IdleClients(o) => rt.block_on(cluster_idle::clients(o)),
        Cmd::MediaPeer { listen, dir } => {
            // Like chatd: tokio's default runtime.
            let rt = tokio::runtime::Runtime::new()?;
            rt.block_on(media::serve_peer(&listen, dir))
        }
    }
}
