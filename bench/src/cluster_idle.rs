//! The cluster-idle scenario (issue 21, item 6b): idle authenticated
//! connections held across several chatd nodes that share one Redis, the
//! clients spread over several generator processes, as every process here
//! may open at most 20,000 files.
//!
//! - Each node runs on the memory store and creates its own load-test
//!   accounts (a MongoDB test server cannot hold 100,000 of them); presence
//!   and the broker go through the private Redis. A user connects to the
//!   node that created it.
//! - The generators are this binary's hidden `idle-clients` subcommand: each
//!   opens and signs in (`resume`) its share, prints a `ready` line, holds
//!   until asked (`report` on stdin: how many are still up) and exits when
//!   its stdin closes.
//! - Presence, per node: an observer (`lt0`) lists the directory page of
//!   `lt1…` (`search_users`, 200 users), all connected (by a generator, or by
//!   this process for the sample: the first of them by username) and must
//!   show online; then the sample's connections close here, and the observer
//!   must be pushed each one offline with a last-seen (through Redis
//!   pub/sub), and list them so. Redis's own record is checked too: the users
//!   it holds per node add up to the connections held.

use anyhow::{bail, Context as _, Result};
use chatcore::protocol::{ClientFrame, Codec, ServerFrame};
use futures_util::{SinkExt as _, StreamExt as _};
use std::collections::{BTreeMap, HashSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Ws};
use crate::proto::{self, Account};
use crate::redis::RedisProc;
use crate::stats::{self, CpuWindow};
use crate::{AllOpts, ServerProc};

/// Connections per source address (as `net`): far below the ephemeral ports
/// of one (source, destination) pair.
const PER_SOURCE: usize = 4_000;

/// The source address of connection `j` of a run whose addresses start at
/// slot `base`: 127.1.0.10 and up (any 127/8 address is loopback), 240 per
/// third octet, so a million connections fit, and no two generators share
/// an address (each address's ports are the kernel's to hand out, across
/// processes).
pub(crate) fn source(base: usize, j: usize) -> Ipv4Addr {
    let s = base + j / PER_SOURCE;
    Ipv4Addr::new(
        127,
        (1 + s / (256 * 240)) as u8,
        ((s / 240) % 256) as u8,
        (10 + s % 240) as u8,
    )
}

/// A fresh range of source slots for each run: the ports a run leaves in
/// TIME_WAIT stay taken for a minute (see `net::EPOCH`).
fn source_base() -> usize {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as usize;
    // 400 slots (1.6 million connections) per 10-second window, 150 windows.
    (secs / 10 % 150) * 400
}

/// The hidden `idle-clients` subcommand: one generator process.
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct ClientOpts {
    /// ADDR,TOKENS,FROM,TO: sign in the accounts on lines FROM..TO of the tokens file TOKENS, each on
    /// a connection to ADDR (repeatable).
    #[arg(long = "target", required = true)]
    targets: Vec<String>,
    /// The first source slot of this generator's connections (see `cluster_idle::source`).
    #[arg(long, default_value_t = 0)]
    source_base: usize,
    /// Connection attempts in flight at once.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Where to write each connection's connect-and-sign-in time (microseconds, one a line).
    #[arg(long)]
    latencies: Option<PathBuf>,
}

/// What a generator says once all its connections are up (or failed).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Ready {
    pub(crate) n: usize,
    pub(crate) connected: usize,
    pub(crate) failed: usize,
    pub(crate) connect_secs: f64,
}

/// A generator's answer to `report`.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct Alive {
    pub(crate) alive: usize,
    pub(crate) dropped: usize,
    /// The connections not up (failed, or dropped while held): their node's address and username.
    pub(crate) down: Vec<(SocketAddr, String)>,
    /// Why the dropped ones ended (close code and reason, or error), and how many each.
    pub(crate) ended: BTreeMap<String, usize>,
}

/// `idle-clients`: opens, signs in and holds its connections; see the module docs.
pub(crate) async fn clients(o: ClientOpts) -> Result<()> {
    let mut jobs: Vec<(SocketAddr, String, String)> = Vec::new();
    let mut files: BTreeMap<String, Vec<Account>> = BTreeMap::new();
    for t in &o.targets {
        let f: Vec<&str> = t.split(',').collect();
        let [addr, tokens, from, to] = f[..] else {
            bail!("--target {t:?} is not ADDR,TOKENS,FROM,TO");
        };
        let addr: SocketAddr = addr.parse().context("--target address")?;
        let (from, to): (usize, usize) = (from.parse()?, to.parse()?);
        if !files.contains_key(tokens) {
            files.insert(tokens.to_owned(), proto::read_accounts(Path::new(tokens))?);
        }
        let accounts = &files[tokens];
        let slice = accounts
            .get(from..to)
            .with_context(|| format!("{tokens} has no lines {from}..{to}"))?;
        jobs.extend(
            slice
                .iter()
                .map(|a| (addr, a.token.clone(), a.username.clone())),
        );
    }
    drop(files);
    let n = jobs.len();
    let alive = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(n)));
    let down = Arc::new(Mutex::new(Vec::new()));
    let ended: Arc<Mutex<BTreeMap<String, usize>>> = Arc::default();
    let gate = Arc::new(Semaphore::new(o.concurrency.max(1)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (j, (addr, token, username)) in jobs.into_iter().enumerate() {
        let (alive, failed, dropped, gate, latencies, down, ended) = (
            alive.clone(),
            failed.clone(),
            dropped.clone(),
            gate.clone(),
            latencies.clone(),
            down.clone(),
            ended.clone(),
        );
        let src = source(o.source_base, j);
        tasks.push(tokio::spawn(async move {
            let setup = async {
                let _permit = gate.acquire().await?;
                let t0 = Instant::now();
                let mut ws =
                    net::connect(addr, "/ws", src, Some("chatcore.v1.msgpack"), true).await?;
                proto::resume(&mut ws, &token).await?;
                let us = t0.elapsed().as_micros() as u64;
                latencies.lock().unwrap_or_else(|p| p.into_inner()).push(us);
                Ok::<_, anyhow::Error>(ws)
            };
            let mut ws = match setup.await {
                Ok(ws) => ws,
                Err(e) => {
                    if failed.fetch_add(1, Ordering::Relaxed) < 3 {
                        eprintln!("connection {j} to {addr} from {src} failed: {e:#}");
                    }
                    down.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((addr, username));
                    return;
                }
            };
            drop(token);
            alive.fetch_add(1, Ordering::Relaxed);
            // Reading answers the server's pings (tungstenite queues the pong
            // and flushes it on the next read).
            // Why it ended: the server's close code, or the error.
            let why = loop {
                match ws.next().await {
                    Some(Ok(Message::Close(c))) => {
                        break c.map_or("close without a code".to_owned(), |c| {
                            format!("close {} {}", u16::from(c.code), c.reason)
                        })
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break format!("error: {e}"),
                    None => break "ended".to_owned(),
                }
            };
            *ended
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(why.clone())
                .or_insert(0) += 1;
            down.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((addr, username));
            alive.fetch_sub(1, Ordering::Relaxed);
            if dropped.fetch_add(1, Ordering::Relaxed) < 3 {
                eprintln!("connection {j} to {addr} ended while held: {why}");
            }
        }));
    }
    while alive.load(Ordering::Relaxed)
        + failed.load(Ordering::Relaxed)
        + dropped.load(Ordering::Relaxed)
        < n
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ready = Ready {
        n,
        connected: alive.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        connect_secs: started.elapsed().as_secs_f64(),
    };
    if let Some(path) = &o.latencies {
        let l = std::mem::take(&mut *latencies.lock().unwrap_or_else(|p| p.into_inner()));
        let mut text = String::with_capacity(l.len() * 8);
        for us in l {
            text.push_str(&us.to_string());
            text.push('\n');
        }
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    // Plain std I/O (bench's tokio has no io-std): stdin is read on a thread of its own.
    let say = |line: String| {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    say(format!("ready {}", serde_json::to_string(&ready)?));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = rx.recv().await {
        if line.trim() == "report" {
            let a = Alive {
                alive: alive.load(Ordering::Relaxed),
                dropped: dropped.load(Ordering::Relaxed),
                down: down.lock().unwrap_or_else(|p| p.into_inner()).clone(),
                ended: ended.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            };
            say(format!("alive {}", serde_json::to_string(&a)?));
        }
    }
    for t in &tasks {
        t.abort();
    }
    Ok(())
}

/// One generator process, as the parent sees it.
struct Generator {
    child: Child,
    stdin: ChildStdin,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    pid: u32,
    latencies: PathBuf,
}

impl Generator {
    /// The next stdout line starting with `tag `, its rest parsed as JSON.
    async fn expect<T: serde::de::DeserializeOwned>(&mut self, tag: &str, log: &Path) -> Result<T> {
        loop {
            let line = self
                .lines
                .next_line()
                .await?
                .with_context(|| format!("a generator exited; see {}", log.display()))?;
            if let Some(rest) = line.strip_prefix(tag).and_then(|r| r.strip_prefix(' ')) {
                return Ok(serde_json::from_str(rest)?);
            }
        }
    }
}

/// One node's figures.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct NodeReport {
    pub(crate) accounts: usize,
    pub(crate) held: usize,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_after_kib: u64,
    /// Users Redis records on this node after the hold.
    pub(crate) redis_users: Option<usize>,
}

/// The presence check's outcome.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct PresenceReport {
    /// Users listed to the observers (all connected), and how many of them showed online.
    pub(crate) listed: usize,
    pub(crate) listed_online: usize,
    /// Users listed whose connection failed or dropped (each must show offline).
    pub(crate) listed_down: usize,
    /// The sample whose connections were closed, the offline pushes (with last-seen) the observers
    /// got for them, and how many the observers then listed offline with a last-seen.
    pub(crate) sample: usize,
    pub(crate) pushed_offline: usize,
    pub(crate) listed_offline: usize,
    /// Seconds from closing the sample until the last offline push.
    pub(crate) push_secs: f64,
    pub(crate) ok: bool,
    /// Why the check could not run, if it could not.
    pub(crate) error: Option<String>,
}

/// What the cluster-idle scenario measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct ClusterIdleReport {
    pub(crate) nodes: usize,
    pub(crate) generators: usize,
    pub(crate) n: usize,
    pub(crate) connected: usize,
    pub(crate) failed: usize,
    pub(crate) alive_after_hold: usize,
    pub(crate) dropped: usize,
    /// Why the dropped connections ended, and how many each.
    pub(crate) dropped_why: BTreeMap<String, usize>,
    pub(crate) hold_secs: f64,
    /// From the generators' start until the last said ready.
    pub(crate) connect_secs: f64,
    /// One connection's TCP connect, WebSocket handshake and `resume` (ms).
    pub(crate) connect_p50_ms: f64,
    pub(crate) connect_p99_ms: f64,
    pub(crate) connect_max_ms: f64,
    pub(crate) node: Vec<NodeReport>,
    pub(crate) rss_sum_kib: u64,
    pub(crate) rss_before_sum_kib: u64,
    /// All nodes' RSS after the hold per connection held, and their growth per connection.
    pub(crate) kib_per_conn: f64,
    pub(crate) kib_per_conn_increase: f64,
    pub(crate) redis_rss_before_kib: u64,
    pub(crate) redis_rss_kib: u64,
    pub(crate) generators_rss_kib: u64,
    /// CPU over the hold (percent of one core): all nodes, Redis.
    pub(crate) nodes_cpu_hold: f64,
    pub(crate) redis_cpu_hold: f64,
    /// CPU while connecting: all nodes, Redis, generators.
    pub(crate) nodes_cpu_connect: f64,
    pub(crate) redis_cpu_connect: f64,
    pub(crate) generators_cpu_connect: f64,
    /// Users Redis records on all nodes together after the hold.
    pub(crate) redis_users: Option<usize>,
    pub(crate) presence: PresenceReport,
}

impl ClusterIdleReport {
    pub(crate) fn line(&self) -> String {
        format!(
            "chatd x{} cluster idle n={} ({} generators): connected {} in {:.1} s (per connection p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms), failed {}, {} still up after {:.0} s (dropped {}); nodes' RSS {} -> {} KiB = {:.2} KiB per connection ({:.2} KiB increase); Redis RSS {} -> {} KiB; presence {}",
            self.nodes,
            self.n,
            self.generators,
            self.connected,
            self.connect_secs,
            self.connect_p50_ms,
            self.connect_p99_ms,
            self.connect_max_ms,
            self.failed,
            self.alive_after_hold,
            self.hold_secs,
            self.dropped,
            self.rss_before_sum_kib,
            self.rss_sum_kib,
            self.kib_per_conn,
            self.kib_per_conn_increase,
            self.redis_rss_before_kib,
            self.redis_rss_kib,
            if self.presence.ok { "ok" } else { "WRONG" },
        )
    }
}

/// How accounts of one node are used: the observer, the sample (held here),
/// and the generators' share (indices into its tokens file).
struct NodePlan {
    addr: SocketAddr,
    pid: u32,
    tokens: PathBuf,
    accounts: Vec<Account>,
    observer: usize,
    sample: Vec<usize>,
    held: Vec<usize>,
}

/// Which of `accounts` the observer's directory page (`lt1…`) lists first:
/// the sample is taken from them.
fn page_order(accounts: &[Account]) -> Vec<usize> {
    let mut v: Vec<usize> = (0..accounts.len())
        .filter(|&i| accounts[i].username.starts_with("lt1"))
        .collect();
    v.sort_by(|&a, &b| accounts[a].username.cmp(&accounts[b].username));
    v
}

/// Runs the scenario; see the module docs.
pub(crate) async fn run(o: &AllOpts, tmp: &Path) -> Result<ClusterIdleReport> {
    let nodes = o.cluster_nodes.max(1);
    let n = o.cluster_conns;
    let limit = crate::fd_limit() as usize;
    // A generator's sockets, and a node's: below the descriptor limit, with room for the rest.
    let per_process = limit.saturating_sub(1000).max(1);
    let generators = o
        .cluster_generators
        .unwrap_or_else(|| n.div_ceil(per_process))
        .max(1);
    let per_node_sample = o.cluster_sample.div_ceil(nodes);
    let share = |k: usize| n / nodes + usize::from(k < n % nodes);
    if share(0) + per_node_sample + 200 > limit {
        bail!(
            "cluster-idle: {} connections per node do not fit under the open-file limit of {limit}; use at least {} nodes",
            share(0),
            n.div_ceil(limit.saturating_sub(per_node_sample + 200).max(1))
        );
    }
    if n.div_ceil(generators) + 100 > limit {
        bail!(
            "cluster-idle: {} connections per generator do not fit under the open-file limit of {limit}; use at least {} generators",
            n.div_ceil(generators),
            n.div_ceil(per_process)
        );
    }
    let redis = RedisProc::start(&tmp.join("redis.log")).await?;
    let redis_port = redis
        .url
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .unwrap_or("6379")
        .to_owned();
    let result = run_on(
        o,
        tmp,
        &redis,
        &redis_port,
        nodes,
        n,
        generators,
        per_node_sample,
    )
    .await;
    redis.stop().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn run_on(
    o: &AllOpts,
    tmp: &Path,
    redis: &RedisProc,
    redis_port: &str,
    nodes: usize,
    n: usize,
    generators: usize,
    per_node_sample: usize,
) -> Result<ClusterIdleReport> {
    let share = |k: usize| n / nodes + usize::from(k < n % nodes);
    let extra = vec![
        "--redis".to_owned(),
        redis.url.clone(),
        // Each node holds its share at once, signed in or not.
        "--max-unauthenticated".to_owned(),
        "2000".to_owned(),
    ];
    // The nodes: created one after another (each hashes the password once and
    // creates its accounts on CPU 0).
    let mut procs: Vec<ServerProc> = Vec::new();
    let mut plans: Vec<NodePlan> = Vec::new();
    for k in 0..nodes {
        let accounts = share(k) + 1 + per_node_sample;
        let name = format!("node{k}");
        let (s, tokens) = match crate::start_chatd_node(o, &name, accounts, tmp, None, &extra).await
        {
            Ok(x) => x,
            Err(e) => {
                for p in procs {
                    p.stop().await;
                }
                return Err(e.context(format!("starting chatd {name}")));
            }
        };
        let accts = proto::read_accounts(&tokens)?;
        let observer = accts
            .iter()
            .position(|a| a.username == "lt0")
            .context("no account lt0")?;
        let sample: Vec<usize> = page_order(&accts)
            .into_iter()
            .take(per_node_sample)
            .collect();
        let skip: HashSet<usize> = sample.iter().copied().chain([observer]).collect();
        let held: Vec<usize> = (0..accts.len()).filter(|i| !skip.contains(i)).collect();
        plans.push(NodePlan {
            addr: s.addr,
            pid: s.pid,
            tokens,
            accounts: accts,
            observer,
            sample,
            held,
        });
        procs.push(s);
    }
    let r = measure(o, tmp, redis, redis_port, &plans, n, generators).await;
    for p in procs {
        p.stop().await;
    }
    r
}

/// A contiguous run of one tokens file's lines: (node, from, to).
fn runs(held: &[usize]) -> Vec<(usize, usize)> {
    let mut out: Vec<(usize, usize)> = Vec::new();
    for &i in held {
        match out.last_mut() {
            Some((_, to)) if *to == i => *to = i + 1,
            _ => out.push((i, i + 1)),
        }
    }
    out
}

async fn measure(
    o: &AllOpts,
    tmp: &Path,
    redis: &RedisProc,
    redis_port: &str,
    plans: &[NodePlan],
    n: usize,
    generators: usize,
) -> Result<ClusterIdleReport> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    let node_pids: Vec<u32> = plans.iter().map(|p| p.pid).collect();
    let rss_before: Vec<u64> = node_pids
        .iter()
        .map(|&p| stats::rss_kib(p))
        .collect::<Result<_>>()?;
    let redis_rss_before = stats::rss_kib(redis.pid)?;
    // Every held connection: (node, line of its tokens file), in node order,
    // split into `generators` contiguous parts.
    let all: Vec<(usize, usize)> = plans
        .iter()
        .enumerate()
        .flat_map(|(k, p)| p.held.iter().map(move |&i| (k, i)))
        .collect();
    assert_eq!(all.len(), n, "every node's share is held");
    let me = match &o.bench {
        Some(p) => p.clone(),
        None => std::env::current_exe()?,
    };
    let base = source_base();
    let per_gen = n.div_ceil(generators);
    let mut gens: Vec<Generator> = Vec::new();
    let log = tmp.join("generators.log");
    let logf = std::fs::File::create(&log)?;
    let started = Instant::now();
    let nodes_cpu = CpuWindow::start(&node_pids);
    let redis_cpu = CpuWindow::start(&[redis.pid]);
    for (g, part) in all.chunks(per_gen.max(1)).enumerate() {
        let mut c = Command::new("taskset");
        c.args(["-c", &o.cluster_generator_cpus])
            .arg(&me)
            .arg("idle-clients");
        // This part's lines, per node, in runs of consecutive lines.
        let mut by_node: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for &(k, i) in part {
            by_node.entry(k).or_default().push(i);
        }
        for (k, lines) in by_node {
            for (from, to) in runs(&lines) {
                c.arg("--target").arg(format!(
                    "{},{},{from},{to}",
                    plans[k].addr,
                    plans[k].tokens.display()
                ));
            }
        }
        // Each generator its own source addresses: a slot per PER_SOURCE connections.
        let latencies = tmp.join(format!("gen{g}-latencies.txt"));
        c.arg("--source-base")
            .arg((base + g * (per_gen.div_ceil(PER_SOURCE) + 1)).to_string())
            .arg("--latencies")
            .arg(&latencies)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(logf.try_clone()?)
            .kill_on_drop(true);
        let mut child = c.spawn().context("cannot start a generator")?;
        let stdin = child.stdin.take().context("no stdin")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let pid = child.id().context("no pid")?;
        gens.push(Generator {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            pid,
            latencies,
        });
    }
    let gen_pids: Vec<u32> = gens.iter().map(|g| g.pid).collect();
    let gens_cpu = CpuWindow::start(&gen_pids);
    let mut connected = 0;
    let mut failed = 0;
    for g in &mut gens {
        let r: Ready = tokio::time::timeout(Duration::from_secs(1800), g.expect("ready", &log))
            .await
            .context("a generator was not ready in 30 minutes")??;
        connected += r.connected;
        failed += r.failed;
    }
    let connect_secs = started.elapsed().as_secs_f64();
    let (nodes_cpu_connect, redis_cpu_connect, generators_cpu_connect) =
        (nodes_cpu.percent(), redis_cpu.percent(), gens_cpu.percent());
    let mut h = stats::histogram();
    for g in &gens {
        let text = std::fs::read_to_string(&g.latencies).unwrap_or_default();
        for l in text.lines() {
            if let Ok(us) = l.trim().parse::<u64>() {
                let _ = h.record(us.clamp(1, 60_000_000));
            }
        }
    }
    println!(
        "  {connected} of {n} connected in {connect_secs:.1} s by {} generators ({failed} failed); holding {} s",
        gens.len(),
        o.cluster_hold_secs
    );
    let nodes_cpu = CpuWindow::start(&node_pids);
    let redis_cpu = CpuWindow::start(&[redis.pid]);
    tokio::time::sleep(Duration::from_secs(o.cluster_hold_secs)).await;
    let (nodes_cpu_hold, redis_cpu_hold) = (nodes_cpu.percent(), redis_cpu.percent());
    let rss_after: Vec<u64> = node_pids
        .iter()
        .map(|&p| stats::rss_kib(p))
        .collect::<Result<_>>()?;
    let redis_rss = stats::rss_kib(redis.pid)?;
    let generators_rss: u64 = gen_pids
        .iter()
        .map(|&p| stats::rss_kib(p).unwrap_or(0))
        .sum();
    let mut alive = 0;
    let mut dropped = 0;
    // Per node, the usernames whose connections are not up.
    let mut down: Vec<HashSet<String>> = vec![HashSet::new(); plans.len()];
    let mut ended: BTreeMap<String, usize> = BTreeMap::new();
    for g in &mut gens {
        g.stdin.write_all(b"report\n").await?;
        g.stdin.flush().await?;
        let a: Alive = tokio::time::timeout(Duration::from_secs(60), g.expect("alive", &log))
            .await
            .context("a generator did not report")??;
        alive += a.alive;
        dropped += a.dropped;
        for (why, c) in a.ended {
            *ended.entry(why).or_insert(0) += c;
        }
        for (addr, name) in a.down {
            if let Some(k) = plans.iter().position(|p| p.addr == addr) {
                down[k].insert(name);
            }
        }
    }
    // Redis's record of who is online where, before the presence check adds its own.
    let redis_nodes = redis_users_per_node(redis_port, plans).await;
    // This process's own connections: source slots after the generators'.
    let own = base + gens.len() * (per_gen.div_ceil(PER_SOURCE) + 1) + 1;
    let presence = presence_check(plans, &down, |i| source(own, i)).await;
    for g in gens {
        drop(g.stdin);
        let mut child = g.child;
        if tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .is_err()
        {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }
    // A check that could not run is a failed check; the rest is still reported.
    let presence = presence.unwrap_or_else(|e| {
        println!("  presence check could not run: {e:#}");
        PresenceReport {
            error: Some(format!("{e:#}")),
            ..PresenceReport::default()
        }
    });
    let redis_counts = match redis_nodes {
        Ok(v) => v,
        Err(e) => {
            println!("  (Redis's per-node users not read: {e:#})");
            vec![None; plans.len()]
        }
    };
    let redis_users = redis_counts.iter().copied().sum::<Option<usize>>();
    let node: Vec<NodeReport> = plans
        .iter()
        .enumerate()
        .map(|(k, p)| NodeReport {
            accounts: p.accounts.len(),
            held: p.held.len(),
            rss_before_kib: rss_before[k],
            rss_after_kib: rss_after[k],
            redis_users: redis_counts[k],
        })
        .collect();
    let rss_sum: u64 = rss_after.iter().sum();
    let rss_before_sum: u64 = rss_before.iter().sum();
    let per = |kib: u64| kib as f64 / alive.max(1) as f64;
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(ClusterIdleReport {
        nodes: plans.len(),
        generators,
        n,
        connected,
        failed,
        alive_after_hold: alive,
        dropped,
        dropped_why: ended,
        hold_secs: o.cluster_hold_secs as f64,
        connect_secs,
        connect_p50_ms: ms(h.value_at_quantile(0.50)),
        connect_p99_ms: ms(h.value_at_quantile(0.99)),
        connect_max_ms: ms(h.max()),
        node,
        rss_sum_kib: rss_sum,
        rss_before_sum_kib: rss_before_sum,
        kib_per_conn: per(rss_sum),
        kib_per_conn_increase: per(rss_sum.saturating_sub(rss_before_sum)),
        redis_rss_before_kib: redis_rss_before,
        redis_rss_kib: redis_rss,
        generators_rss_kib: generators_rss,
        nodes_cpu_hold,
        redis_cpu_hold,
        nodes_cpu_connect,
        redis_cpu_connect,
        generators_cpu_connect,
        redis_users,
        presence,
    })
}

/// Users Redis records on each node (`SCARD` of `…{presence}:n:<node>`,
/// the node found as the one holding a connection of one of its held
/// users), through `redis-cli`.
async fn redis_users_per_node(port: &str, plans: &[NodePlan]) -> Result<Vec<Option<usize>>> {
    let cli = |args: Vec<String>| async move {
        let out = Command::new("redis-cli")
            .args(["-p", port, "--raw"])
            .args(&args)
            .output()
            .await
            .context("cannot run redis-cli")?;
        anyhow::ensure!(out.status.success(), "redis-cli {args:?} failed");
        anyhow::Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let nodes = cli(vec!["KEYS".into(), "*{presence}:nodes".into()]).await?;
    let base = nodes
        .lines()
        .next()
        .and_then(|k| k.strip_suffix(":nodes"))
        .context("no presence node registry in Redis")?
        .to_owned();
    let mut out = Vec::new();
    for p in plans {
        let Some(&i) = p.held.first() else {
            out.push(None);
            continue;
        };
        let user = &p.accounts[i].user;
        let vals = cli(vec!["HVALS".into(), format!("{base}:u:{user}")]).await?;
        let Some(node) = vals.lines().next().filter(|l| !l.is_empty()) else {
            out.push(None);
            continue;
        };
        let c = cli(vec!["SCARD".into(), format!("{base}:n:{node}")]).await?;
        out.push(Some(c.trim().parse().context("SCARD")?));
    }
    Ok(out)
}

async fn send(ws: &mut Ws, frame: &ClientFrame) -> Result<()> {
    ws.send(Message::binary(Codec::MsgPack.encode(frame)?))
        .await?;
    Ok(())
}

/// The next frame: a reply or a push.
async fn next_frame(ws: &mut Ws) -> Result<ServerFrame> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => return Ok(Codec::MsgPack.decode(&b)?),
            Some(Ok(Message::Close(c))) => bail!("closed by the server: {c:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

/// The observer's directory page of `lt1…`: (user id, online, last seen)
/// per username. Presence pushes that arrive first are kept in `pushes`.
async fn search(
    ws: &mut Ws,
    id: u32,
    pushes: &mut Vec<chatcore::model::Presence>,
) -> Result<BTreeMap<String, (String, bool, Option<i64>)>> {
    send(
        ws,
        &ClientFrame::SearchUsers {
            id,
            query: "lt1".into(),
            after: None,
            limit: Some(200),
        },
    )
    .await?;
    loop {
        match next_frame(ws).await? {
            ServerFrame::Users { id: i, users, .. } if i == id => {
                return Ok(users
                    .into_iter()
                    .map(|e| {
                        (
                            e.profile.username,
                            (e.profile.user.0, e.presence.online, e.presence.last_seen),
                        )
                    })
                    .collect())
            }
            ServerFrame::Presence { presence } => pushes.push(presence),
            f @ ServerFrame::Error { .. } => bail!("search_users refused: {f:?}"),
            _ => {}
        }
    }
}

/// A connection signed in with `token`, tried up to five times: a node too
/// busy to reach Redis in time answers `unavailable` (retry later).
async fn sign_in(
    addr: SocketAddr,
    src: &impl Fn(usize) -> Ipv4Addr,
    i: &mut usize,
    token: &str,
) -> Result<Ws> {
    let mut tries = 0;
    loop {
        let r = async {
            let mut ws =
                net::connect(addr, "/ws", src(*i), Some("chatcore.v1.msgpack"), true).await?;
            proto::resume(&mut ws, token).await?;
            anyhow::Ok(ws)
        }
        .await;
        *i += 1;
        match r {
            Ok(ws) => return Ok(ws),
            Err(e) if tries >= 4 => return Err(e.context("signing in for the presence check")),
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

/// The presence check (see the module docs). `src` gives the source
/// address of this process's connection `i`.
async fn presence_check(
    plans: &[NodePlan],
    down: &[HashSet<String>],
    src: impl Fn(usize) -> Ipv4Addr,
) -> Result<PresenceReport> {
    let mut r = PresenceReport::default();
    let mut observers = Vec::new();
    let mut samples: Vec<(usize, Ws, String)> = Vec::new();
    let mut i = 0;
    for (k, p) in plans.iter().enumerate() {
        for &s in &p.sample {
            let a = &p.accounts[s];
            let ws = sign_in(p.addr, &src, &mut i, &a.token).await?;
            samples.push((k, ws, a.username.clone()));
        }
        let ws = sign_in(p.addr, &src, &mut i, &p.accounts[p.observer].token).await?;
        observers.push(ws);
    }
    // Everyone listed is connected: the sample here, the rest by a generator.
    let mut pushes: Vec<Vec<chatcore::model::Presence>> = vec![Vec::new(); plans.len()];
    let mut ok = true;
    for (k, ws) in observers.iter_mut().enumerate() {
        let page = search(ws, 10, &mut pushes[k]).await?;
        for name in plans[k]
            .sample
            .iter()
            .map(|&s| &plans[k].accounts[s].username)
        {
            if !page.contains_key(name) {
                println!("  presence: {name} of node {k} is not on the observer's page");
                ok = false;
            }
        }
        for (name, (_, online, _)) in &page {
            if down[k].contains(name) {
                // A connection that failed or dropped: must show offline.
                r.listed_down += 1;
                if *online {
                    println!("  presence: {name} of node {k} is not connected but listed online");
                    ok = false;
                }
                continue;
            }
            r.listed += 1;
            if *online {
                r.listed_online += 1;
            } else if r.listed - r.listed_online <= 5 {
                println!("  presence: {name} of node {k} is connected but listed offline");
            }
        }
    }
    // The sample leaves.
    r.sample = samples.len();
    let closed_at = Instant::now();
    let mut expected: Vec<HashSet<String>> = vec![HashSet::new(); plans.len()];
    let ids: Vec<BTreeMap<String, String>> = plans
        .iter()
        .map(|p| {
            p.sample
                .iter()
                .map(|&s| (p.accounts[s].user.clone(), p.accounts[s].username.clone()))
                .collect()
        })
        .collect();
    for (k, mut ws, name) in samples {
        expected[k].insert(name);
        let _ = ws.close(None).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_secs(5), ws.next()).await {}
    }
    // Each observer is pushed each of its node's sample offline, with a last-seen.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last_push = closed_at;
    for (k, ws) in observers.iter_mut().enumerate() {
        let mut left: HashSet<String> = expected[k].clone();
        let mut take = |p: &chatcore::model::Presence, left: &mut HashSet<String>| {
            if let Some(name) = ids[k].get(&p.user.0) {
                if !p.online && p.last_seen.is_some() && left.remove(name) {
                    r.pushed_offline += 1;
                    last_push = Instant::now();
                }
            }
        };
        for p in std::mem::take(&mut pushes[k]) {
            take(&p, &mut left);
        }
        while !left.is_empty() {
            let Ok(f) = tokio::time::timeout_at(deadline.into(), next_frame(ws)).await else {
                println!(
                    "  presence: node {k}'s observer was not pushed {} offline within 20 s",
                    left.iter().cloned().collect::<Vec<_>>().join(", ")
                );
                ok = false;
                break;
            };
            if let ServerFrame::Presence { presence } = f? {
                take(&presence, &mut left);
            }
        }
    }
    r.push_secs = last_push.duration_since(closed_at).as_secs_f64();
    // And lists them offline with a last-seen, the others still online.
    for (k, ws) in observers.iter_mut().enumerate() {
        let page = search(ws, 11, &mut Vec::new()).await?;
        for (name, (_, online, seen)) in &page {
            if expected[k].contains(name) {
                if !online && seen.is_some() {
                    r.listed_offline += 1;
                } else {
                    println!("  presence: {name} of node {k} left but is listed online={online} last_seen={seen:?}");
                }
            } else if !online && !down[k].contains(name) {
                println!("  presence: {name} of node {k} is still connected but listed offline");
                ok = false;
            }
        }
    }
    for mut ws in observers {
        let _ = ws.close(None).await;
    }
    r.ok = ok
        && r.listed > 0
        && r.listed_online == r.listed
        && r.pushed_offline == r.sample
        && r.listed_offline == r.sample;
    Ok(r)
}
