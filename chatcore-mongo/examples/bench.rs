//! Run with: cargo run --release -p chatcore-mongo --example bench [-- MESSAGES]
//!
//! Message append and sync throughput of the MongoDB store, each workload
//! also run on chatcore's in-memory store in the same process as the
//! baseline (the ratio is the cost of the round trips and of the server).
//!
//! The server is `CHATCORE_MONGO_URI` if set, else the jongodb binary that
//! `scripts/test` installs into `.test-deps/` (`JONGODB_BIN` overrides),
//! started on a free loopback port and stopped at the end. Each workload
//! gets a fresh database. MESSAGES (default 1000) is the number of messages
//! each append workload stores.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatcore::memory::MemoryMessageStore;
use chatcore::model::{Content, ConversationId, UserId};
use chatcore::store::{ConversationState, MessageStore, NewMessage};
use chatcore_mongo::MongoStore;

/// Tasks appending at once in the concurrent workloads.
const TASKS: usize = 8;
/// Page size of the sync workload (chatd's default sync page).
const PAGE: usize = 100;

/// A jongodb child process, killed when dropped.
struct Jongo(Child);

impl Drop for Jongo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_jongodb() -> Result<(Jongo, String), String> {
    let bin = std::env::var_os("JONGODB_BIN").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
                "../.test-deps/node_modules/@jongodb/memory-server-bin-linux-x64-gnu/bin/jongodb",
            )
        },
        PathBuf::from,
    );
    let mut child = Command::new(&bin)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {} ({e}): run scripts/test to install it, or set CHATCORE_MONGO_URI",
                bin.display()
            )
        })?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let jongo = Jongo(child);
    let mut lines = BufReader::new(stdout).lines();
    let uri = lines
        .find_map(|l| l.ok()?.strip_prefix("JONGODB_URI=").map(str::to_owned))
        .ok_or("jongodb printed no JONGODB_URI line")?;
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((jongo, uri))
}

fn message(conv: &ConversationId, from: &UserId, i: usize) -> NewMessage {
    NewMessage::new(
        conv.clone(),
        from.clone(),
        format!("bench-{}-{i}", conv.0),
        1_700_000_000_000 + i as i64,
        Content::Text {
            text: format!("message number {i} of the benchmark, a typical short chat line"),
        },
    )
}

/// Two new users and their direct conversation, opened in `store`.
async fn pair(store: &dyn MessageStore) -> (UserId, UserId, ConversationId) {
    let (a, b) = (UserId::generate(), UserId::generate());
    let state = store
        .open_direct(ConversationState::direct(&a, &b, 1_700_000_000_000))
        .await
        .expect("open");
    (a, b, state.conv)
}

/// `n` appends, one after the other, to one conversation.
async fn sequential(store: Arc<dyn MessageStore>, n: usize) -> (Duration, ConversationId) {
    let (a, _, conv) = pair(&*store).await;
    let t = Instant::now();
    for i in 0..n {
        store.append(message(&conv, &a, i)).await.expect("append");
    }
    (t.elapsed(), conv)
}

/// `n` appends by `TASKS` tasks at once, each to its own conversation
/// (`contended == false`) or all to the same one.
async fn concurrent(store: Arc<dyn MessageStore>, n: usize, contended: bool) -> Duration {
    let shared = pair(&*store).await;
    let mut convs = Vec::with_capacity(TASKS);
    for _ in 0..TASKS {
        convs.push(if contended {
            shared.clone()
        } else {
            pair(&*store).await
        });
    }
    let t = Instant::now();
    let tasks: Vec<_> = convs
        .into_iter()
        .enumerate()
        .map(|(k, (a, _, conv))| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in (k..n).step_by(TASKS) {
                    store.append(message(&conv, &a, i)).await.expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let elapsed = t.elapsed();
    if contended {
        let head = store.conversation(&shared.2).await.expect("head");
        assert_eq!(head.map(|h| h.last_seq), Some(n as u64), "gap-free");
    }
    elapsed
}

/// Reads the whole conversation by pages of `PAGE`, as `sync` does, `passes` times.
async fn sync(
    store: Arc<dyn MessageStore>,
    conv: &ConversationId,
    passes: usize,
) -> (Duration, usize) {
    let t = Instant::now();
    let mut read = 0;
    for _ in 0..passes {
        let mut after = 0;
        loop {
            let page = store.read_after(conv, after, PAGE).await.expect("read");
            let Some(last) = page.last() else { break };
            after = last.seq;
            read += page.len();
        }
    }
    (t.elapsed(), read)
}

fn rate(count: usize, d: Duration) -> f64 {
    count as f64 / d.as_secs_f64()
}

fn row(name: &str, count: usize, mongo: Duration, memory: Duration) {
    let (m, b) = (rate(count, mongo), rate(count, memory));
    println!(
        "{name:<34} {count:>6} {m:>12.0} {b:>14.0} {:>10.0}x",
        b / m.max(f64::MIN_POSITIVE)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let (_jongo, uri, server) = match std::env::var("CHATCORE_MONGO_URI") {
        Ok(uri) if !uri.is_empty() => (None, uri, "CHATCORE_MONGO_URI"),
        _ => match start_jongodb() {
            Ok((j, uri)) => (Some(j), uri, "jongodb 0.1.6 (in-memory test server)"),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        },
    };
    let mut dbs = Vec::new();
    let mut mongo = || {
        let uri = uri.clone();
        let db = format!("chatcore_bench_{}", uuid::Uuid::new_v4().simple());
        dbs.push(db.clone());
        async move {
            let store = MongoStore::connect(&uri, &db).await.expect("connect");
            Arc::new(store.messages()) as Arc<dyn MessageStore>
        }
    };
    let memory = || Arc::new(MemoryMessageStore::new()) as Arc<dyn MessageStore>;

    println!(
        "server: {server}; {n} messages per append workload, {TASKS} tasks, sync pages of {PAGE}"
    );
    println!(
        "{:<34} {:>6} {:>12} {:>14} {:>11}",
        "workload", "msgs", "mongo msg/s", "memory msg/s", "mem/mongo"
    );

    let store = mongo().await;
    let (t_mongo, conv_mongo) = sequential(store.clone(), n).await;
    let base = memory();
    let (t_mem, conv_mem) = sequential(base.clone(), n).await;
    row("append, sequential, 1 conv", n, t_mongo, t_mem);

    let passes = 5;
    let (s_mongo, read) = sync(store, &conv_mongo, passes).await;
    let (s_mem, _) = sync(base, &conv_mem, passes).await;
    row("sync (read_after pages)", read, s_mongo, s_mem);

    let t_mongo = concurrent(mongo().await, n, false).await;
    let t_mem = concurrent(memory(), n, false).await;
    row(
        &format!("append, {TASKS} tasks, {TASKS} convs"),
        n,
        t_mongo,
        t_mem,
    );

    let t_mongo = concurrent(mongo().await, n, true).await;
    let t_mem = concurrent(memory(), n, true).await;
    row(
        &format!("append, {TASKS} tasks, 1 conv (contended)"),
        n,
        t_mongo,
        t_mem,
    );

    // Best-effort clean-up on a real server (jongodb has no dropDatabase).
    if let Ok(client) = chatcore_mongo::mongodb::Client::with_uri_str(&uri).await {
        for db in dbs {
            let _ = client.database(&db).drop().await;
        }
    }
}
