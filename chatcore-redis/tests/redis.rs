//! chatcore-redis against a real Redis.
//!
//! The server is `CHATCORE_REDIS_URL` when set; otherwise these tests start
//! Debian's `redis-server` (which `scripts/test` installs) on a free
//! loopback port, and it dies with the test process. Without either, every
//! test here fails and says how to get one: none is skipped. Every test
//! uses a key prefix of its own; the fault tests start private servers.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chatcore::model::{CallMedia, ConversationId, DeviceId, Millis, Presence, UserId};
use chatcore::store::{
    Answered, CallRecord, CallStore, PresenceStore, Quota, RateLimiter, Started, StoreError,
};
use chatcore::testkit::conformance;
use chatcore::Backends;
use chatcore_redis::testing::{fresh_prefix, server_url, RedisServer, NO_SERVER};
use chatcore_redis::{RedisConfig, RedisStore, LEASE_PARTS};
use futures_util::FutureExt;

const T0: Millis = 1_700_000_000_000;

async fn store_at(url: &str, prefix: &str) -> RedisStore {
    RedisStore::connect(&RedisConfig::new(url, prefix))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}; {NO_SERVER}"))
}

async fn fresh_store() -> RedisStore {
    store_at(&server_url(), &fresh_prefix()).await
}

/// Memory backends with Redis's presence and limiter, under a fresh prefix.
async fn fresh_backends() -> Backends {
    fresh_store().await.backends(Backends::memory())
}

/// A raw connection to the shared server, to look at and spoil keys.
async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(server_url())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw connection")
}

// ---------------------------------------------------------------------------
// The conformance suite
// ---------------------------------------------------------------------------

/// Every presence, limiter and call case of chatcore's conformance suite,
/// on Redis; failures are listed together.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_presence_limiter_and_call_cases() {
    let cases: Vec<_> = conformance::cases()
        .into_iter()
        .filter(|(name, _)| {
            name.starts_with("presence_")
                || name.starts_with("limiter_")
                || name.starts_with("calls_")
        })
        .collect();
    assert!(
        cases
            .iter()
            .filter(|(n, _)| n.starts_with("calls_"))
            .count()
            >= 3,
        "the suite's call cases"
    );
    assert!(
        cases.len() >= 7,
        "the suite's presence, limiter and call cases"
    );
    let mut failures = Vec::new();
    for (name, case) in cases {
        let b = fresh_backends().await;
        if let Err(panic) = AssertUnwindSafe(case(b)).catch_unwind().await {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{name}: {msg}"));
        }
    }
    assert!(failures.is_empty(), "failures:\n{}", failures.join("\n"));
}

/// The whole suite on memory backends with Redis's presence, limiter and
/// calls: the rest of the engine's cases see them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_whole_suite_with_redis_presence_limiter_and_calls() {
    conformance::run_all(&|| async { fresh_backends().await }).await;
}

// ---------------------------------------------------------------------------
// Presence across nodes
// ---------------------------------------------------------------------------

fn offline(user: &UserId, seen: Millis) -> Presence {
    Presence::of(user.clone(), false, Some(seen))
}

fn sorted(mut v: Vec<Presence>) -> Vec<Presence> {
    v.sort_by(|a, b| a.user.cmp(&b.user));
    v
}

/// Node B stops heartbeating: after the TTL, node A's sweep reports B's
/// users offline exactly once, last seen at B's last heartbeat; a user with
/// a connection on A stays online; B's registration is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_nodes_users_go_offline_once_after_the_ttl() {
    let prefix = fresh_prefix();
    // Two nodes: two connections to Redis, one prefix.
    let a = store_at(&server_url(), &prefix).await.presence();
    let b = store_at(&server_url(), &prefix).await.presence();
    const TTL: u64 = 30_000;
    let (only_b, both, only_a) = (UserId::generate(), UserId::generate(), UserId::generate());
    assert!(b.connect(&only_b, "b/1", T0).await.unwrap());
    assert!(!b.connect(&only_b, "b/2", T0).await.unwrap());
    assert!(b.connect(&both, "b/3", T0).await.unwrap());
    assert!(!a.connect(&both, "a/1", T0).await.unwrap());
    assert!(a.connect(&only_a, "a/2", T0).await.unwrap());
    // Both heartbeat; B's last is at T0 + 1000.
    assert_eq!(a.sweep("a", T0 + 1000, TTL).await.unwrap(), vec![]);
    assert_eq!(b.sweep("b", T0 + 1000, TTL).await.unwrap(), vec![]);
    let b_last = T0 + 1000;
    // Just before the TTL: B is still alive.
    assert_eq!(
        a.sweep("a", b_last + TTL as i64 - 1, TTL).await.unwrap(),
        vec![]
    );
    // At the TTL: B's users with no other connection go offline.
    let swept = a.sweep("a", b_last + TTL as i64, TTL).await.unwrap();
    assert_eq!(swept, vec![offline(&only_b, b_last)]);
    assert_eq!(
        a.sweep("a", b_last + TTL as i64 + 10, TTL).await.unwrap(),
        vec![],
        "reported once"
    );
    let p = a
        .get(&[only_b.clone(), both.clone(), only_a.clone()])
        .await
        .unwrap();
    assert_eq!(p[0], offline(&only_b, b_last));
    assert_eq!((p[1].online, p[2].online), (true, true));
    // `both` goes offline when its connection on A closes, as usual.
    assert!(a.disconnect(&both, "a/1", T0 + 40_000).await.unwrap());
    // A late disconnect from B of a swept connection changes nothing.
    assert!(!b.disconnect(&only_b, "b/1", T0 + 50_000).await.unwrap());
    assert_eq!(
        a.get(std::slice::from_ref(&only_b)).await.unwrap()[0],
        offline(&only_b, b_last)
    );
    let mut raw = raw().await;
    let nodes: Vec<String> = redis::cmd("ZRANGE")
        .arg(format!("{prefix}:{{presence}}:nodes"))
        .arg(0)
        .arg(-1)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(nodes, vec!["a".to_owned()], "the dead node is unregistered");
}

/// A node that dies before its first sweep is known from its connections'
/// heartbeat; one that comes back (connects again) is alive again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connecting_is_a_heartbeat() {
    let s = fresh_store().await.presence();
    let u = UserId::generate();
    s.connect(&u, "b/1", T0).await.unwrap();
    assert_eq!(s.sweep("a", T0 + 5000, 10_000).await.unwrap(), vec![]);
    s.connect(&UserId::generate(), "b/2", T0 + 8000)
        .await
        .unwrap();
    assert_eq!(
        s.sweep("a", T0 + 17_000, 10_000).await.unwrap(),
        vec![],
        "b's heartbeat moved to its last connection"
    );
    let swept = s.sweep("a", T0 + 18_000, 10_000).await.unwrap();
    assert_eq!(swept.len(), 2);
    assert!(swept.contains(&offline(&u, T0 + 8000)));
}

/// Several nodes sweep the same dead node at once (with more users than
/// one script run handles): every user is reported exactly once overall.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_sweeps_report_each_user_once() {
    let prefix = fresh_prefix();
    let dead = store_at(&server_url(), &prefix).await.presence();
    const USERS: usize = 2500;
    let users: Vec<UserId> = (0..USERS).map(|_| UserId::generate()).collect();
    let started = Instant::now();
    let connects: Vec<_> = users
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let dead = dead.clone();
            let u = u.clone();
            tokio::spawn(async move { dead.connect(&u, &format!("dead/{i}"), T0).await })
        })
        .collect();
    for c in connects {
        assert!(c.await.unwrap().unwrap());
    }
    eprintln!("{USERS} connects: {:?}", started.elapsed());
    let mut sweepers = Vec::new();
    for n in 0..3 {
        let s = store_at(&server_url(), &prefix).await.presence();
        sweepers.push(tokio::spawn(async move {
            s.sweep(&format!("live{n}"), T0 + 60_000, 30_000).await
        }));
    }
    let mut all = Vec::new();
    for s in sweepers {
        all.extend(s.await.unwrap().unwrap());
    }
    eprintln!("3 concurrent sweeps: {:?}", started.elapsed());
    assert_eq!(all.len(), USERS, "each user once");
    let expected: Vec<Presence> = users.iter().map(|u| offline(u, T0)).collect();
    assert_eq!(sorted(all), sorted(expected));
    let p = dead.get(&users[..10]).await.unwrap();
    assert!(p.iter().all(|p| !p.online && p.last_seen == Some(T0)));
}

/// The sweep's node renews itself: a node that keeps sweeping is never
/// swept, whatever the others' clocks say.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sweeping_node_stays_alive() {
    let s = fresh_store().await.presence();
    let u = UserId::generate();
    s.connect(&u, "a/1", T0).await.unwrap();
    for i in 1..=5 {
        let t = T0 + i * 20_000;
        assert_eq!(s.sweep("a", t, 30_000).await.unwrap(), vec![]);
        assert_eq!(s.sweep("b", t + 1, 30_000).await.unwrap(), vec![]);
    }
    assert!(s.get(std::slice::from_ref(&u)).await.unwrap()[0].online);
}

/// The race of a stalled node coming back: it asks whether its liveness
/// lapsed (not yet, by its clock), another node's sweep takes its users
/// over (they are past the TTL by that node's clock), then its own sweep
/// renews it. Its next question must say it lapsed, so that it records its
/// connections again; without the takeover mark it found its heartbeat
/// fresh, and its users stayed offline until they reconnected (seen in the
/// 500,000-connection benchmark). The mark is consumed: asked again, no.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_taken_over_between_its_check_and_its_sweep_learns_it_lapsed() {
    let prefix = fresh_prefix();
    let x = store_at(&server_url(), &prefix).await.presence();
    let y = store_at(&server_url(), &prefix).await.presence();
    let u = UserId::generate();
    assert!(x.connect(&u, "x/1", T0).await.unwrap());
    assert!(
        !x.lapsed("x", T0 + 5_000, 10_000).await.unwrap(),
        "alive by its clock"
    );
    let taken = y.sweep("y", T0 + 10_000, 10_000).await.unwrap();
    assert_eq!(taken, vec![offline(&u, T0)], "dead by the other's");
    assert_eq!(x.sweep("x", T0 + 5_001, 10_000).await.unwrap(), vec![]);
    assert!(
        x.lapsed("x", T0 + 6_000, 10_000).await.unwrap(),
        "its users were taken over: it must record them again"
    );
    assert!(
        !x.lapsed("x", T0 + 6_001, 10_000).await.unwrap(),
        "told once"
    );
}

// ---------------------------------------------------------------------------
// Limiters across nodes
// ---------------------------------------------------------------------------

/// Spends from two limiter instances (two nodes, two connections) at once
/// never pass more than the budget in total.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_spends_from_two_nodes_never_exceed_the_budget() {
    let prefix = fresh_prefix();
    let l1: Arc<dyn RateLimiter> = Arc::new(store_at(&server_url(), &prefix).await.limiter());
    let l2: Arc<dyn RateLimiter> = Arc::new(store_at(&server_url(), &prefix).await.limiter());
    let q = Quota {
        max: 1000,
        window_ms: 60_000,
    };
    let start = T0 - T0 % 60_000;
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let l = if i % 2 == 0 { l1.clone() } else { l2.clone() };
            // Costs of 7 and 8: 1000 is reached exactly only by some mixes.
            let cost = 7 + (i % 3 == 0) as u64;
            tokio::spawn(async move { (cost, l.spend("race", cost, q, start + i).await) })
        })
        .collect();
    let mut spent = 0;
    for t in tasks {
        let (cost, r) = t.await.unwrap();
        if r.unwrap().is_none() {
            spent += cost;
        }
    }
    assert!(spent <= 1000, "spent {spent} of 1000");
    // What one node leased and did not spend is lost to the other: at most
    // a lease (a sixteenth of the budget), and less than a spend besides.
    assert!(
        spent > 1000 - 8 - 1000 / LEASE_PARTS,
        "a refused spend adds nothing: spent {spent}"
    );
    // The sliding window is shared too.
    let w = Quota {
        max: 5,
        window_ms: 60_000,
    };
    for i in 0..3 {
        l1.record("w", w, T0 + i).await.unwrap();
        l2.record("w", w, T0 + i).await.unwrap();
    }
    assert_eq!(l2.check("w", w, T0 + 10).await.unwrap(), Some(59_990));
}

/// A node leases a sixteenth of a budget at a time and spends it without
/// Redis; the other node spends what is left, exactly, and the whole budget
/// passes through one node.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn budgets_are_leased_in_sixteenths_and_spent_exactly_through_one_node() {
    let prefix = fresh_prefix();
    let l1 = store_at(&server_url(), &prefix).await.limiter();
    let l2 = store_at(&server_url(), &prefix).await.limiter();
    let mut raw = raw().await;
    let q = Quota {
        max: 1600,
        window_ms: 60_000,
    };
    let start = T0 - T0 % 60_000;
    let key = format!("{prefix}:rl:b:{start}:s");
    let counter = |raw: &mut redis::aio::MultiplexedConnection| {
        let mut raw = raw.clone();
        let key = key.clone();
        async move {
            redis::cmd("GET")
                .arg(key)
                .query_async::<u64>(&mut raw)
                .await
                .unwrap()
        }
    };
    assert_eq!(l1.spend("s", 10, q, start).await.unwrap(), None);
    assert_eq!(counter(&mut raw).await, 100, "a sixteenth leased");
    for i in 0..9 {
        assert_eq!(l1.spend("s", 10, q, start + i).await.unwrap(), None);
    }
    assert_eq!(
        counter(&mut raw).await,
        100,
        "spent from the lease, not from Redis"
    );
    assert_eq!(l1.spend("s", 10, q, start + 20).await.unwrap(), None);
    assert_eq!(counter(&mut raw).await, 200, "the next sixteenth");
    // A spend larger than a lease takes what it needs.
    assert_eq!(l2.spend("s", 250, q, start + 30).await.unwrap(), None);
    assert_eq!(counter(&mut raw).await, 450);
    // Through one node, the whole budget: node 2 spends the rest but what
    // node 1 holds (90), to the unit; then it is refused.
    let mut spent = 250;
    while l2.spend("s", 1, q, start + 40).await.unwrap().is_none() {
        spent += 1;
        assert!(spent <= 1600);
    }
    assert_eq!(spent, 1600 - 200);
    assert_eq!(counter(&mut raw).await, 1600);
    // Node 1 still spends what it leased, and no more.
    for _ in 0..9 {
        assert_eq!(l1.spend("s", 10, q, start + 50).await.unwrap(), None);
    }
    assert_eq!(
        l1.spend("s", 10, q, start + 50).await.unwrap(),
        Some(60_000 - 50)
    );
    // The next window starts afresh, on both.
    assert_eq!(l1.spend("s", 1600, q, start + 60_000).await.unwrap(), None);
    assert!(l2.spend("s", 1, q, start + 60_001).await.unwrap().is_some());
}

/// Every limiter key has an expiry: budgets until their window ends (plus
/// slack), sliding windows for their length (plus slack).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn limiter_keys_expire() {
    let prefix = fresh_prefix();
    let l = store_at(&server_url(), &prefix).await.limiter();
    let q = Quota {
        max: 10,
        window_ms: 60_000,
    };
    let start = T0 - T0 % 60_000;
    l.spend("s", 1, q, start + 20_000).await.unwrap();
    l.record("r", q, T0).await.unwrap();
    let raw = raw().await;
    let ttl = |key: String| {
        let mut raw = raw.clone();
        async move {
            redis::cmd("PTTL")
                .arg(key)
                .query_async::<i64>(&mut raw)
                .await
                .unwrap()
        }
    };
    let budget = ttl(format!("{prefix}:rl:b:{start}:s")).await;
    assert!(
        budget > 30_000 && budget <= 45_000,
        "budget expires 40 s (+5 s) later: {budget}"
    );
    let window = ttl(format!("{prefix}:rl:w:r")).await;
    assert!(
        window > 55_000 && window <= 65_000,
        "window expires after its length (+5 s): {window}"
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:rl:*"))
        .query_async(&mut raw.clone())
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    for k in keys {
        assert!(ttl(k.clone()).await > 0, "{k} has no expiry");
    }
    l.clear("r").await.unwrap();
    assert_eq!(ttl(format!("{prefix}:rl:w:r")).await, -2, "cleared");
}

// ---------------------------------------------------------------------------
// Calls across nodes
// ---------------------------------------------------------------------------

fn a_call(id: &str, caller: &UserId, callee: &UserId) -> CallRecord {
    CallRecord::new(
        id.to_owned(),
        ConversationId::direct(caller, callee),
        (caller.clone(), DeviceId::from("dev-a"), "a/1".to_owned()),
        callee.clone(),
        CallMedia::Voice,
        false,
        T0,
    )
}

/// Two nodes (two connections, one prefix): a call started through one is
/// seen, rung, answered, taken and ended through the other; the answer
/// raced from both nodes has one winner; a gone side marked on one node is
/// due on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn calls_are_shared_by_the_nodes() {
    let prefix = fresh_prefix();
    let a = store_at(&server_url(), &prefix).await.calls();
    let b = store_at(&server_url(), &prefix).await.calls();
    let (alice, bob, carol) = (UserId::generate(), UserId::generate(), UserId::generate());
    let call = a_call("c1", &alice, &bob);
    assert_eq!(a.start(&call).await.unwrap(), Started::Started);
    assert_eq!(b.get("c1").await.unwrap(), Some(call.clone()));
    assert_eq!(b.of_user(&bob).await.unwrap(), Some(call.clone()));
    assert_eq!(
        b.start(&a_call("c2", &carol, &bob)).await.unwrap(),
        Started::CalleeBusy
    );
    assert!(b.set_ringing("c1").await.unwrap().is_some());
    assert_eq!(a.set_ringing("c1").await.unwrap(), None);
    // Both nodes answer at once, for two devices: one wins.
    let (d1, d2) = (DeviceId::from("d1"), DeviceId::from("d2"));
    let (r1, r2) = tokio::join!(
        a.answer("c1", &d1, "a/2", T0 + 1),
        b.answer("c1", &d2, "b/1", T0 + 2)
    );
    let (r1, r2) = (r1.unwrap(), r2.unwrap());
    let winner = match (&r1, &r2) {
        (Answered::Answered(w), Answered::Taken(t))
        | (Answered::Taken(t), Answered::Answered(w)) => {
            assert_eq!(w, t);
            w.clone()
        }
        other => panic!("one answer wins: {other:?}"),
    };
    assert_eq!(a.get("c1").await.unwrap(), Some(winner.clone()));
    let (dev, conn) = (
        winner.answered_by.clone().unwrap(),
        winner.callee_conn.clone().unwrap(),
    );
    // The answering connection closes (node B sees it), node A's sweep ends it.
    b.conn_closed(&bob, &dev, &conn, T0 + 10).await.unwrap();
    let due = a.due(T0, T0 + 11).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].callee_gone_at, Some(T0 + 10));
    let (e1, e2) = tokio::join!(a.end("c1"), b.end("c1"));
    assert_eq!(
        [e1.unwrap(), e2.unwrap()].iter().flatten().count(),
        1,
        "one node ends it"
    );
    assert_eq!(a.of_user(&alice).await.unwrap(), None);
    assert_eq!(b.of_user(&bob).await.unwrap(), None);
    assert!(a.due(T0 + 1000, T0 + 1000).await.unwrap().is_empty());
}

/// Every call key expires a day after the call's last change, so that a
/// call no node ends does not keep its users busy for ever; a user's key
/// left naming an expired call does not make them busy; ended calls leave
/// no key behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn call_keys_expire_and_ended_calls_leave_nothing() {
    let prefix = fresh_prefix();
    let c = store_at(&server_url(), &prefix).await.calls();
    let (alice, bob, carol) = (UserId::generate(), UserId::generate(), UserId::generate());
    c.start(&a_call("c1", &alice, &bob)).await.unwrap();
    let mut raw = raw().await;
    for key in [
        format!("{prefix}:{{calls}}:call:c1"),
        format!("{prefix}:{{calls}}:of:{alice}"),
        format!("{prefix}:{{calls}}:of:{bob}"),
    ] {
        let ttl: i64 = redis::cmd("PTTL")
            .arg(&key)
            .query_async(&mut raw)
            .await
            .unwrap();
        let day = i64::try_from(chatcore_redis::CALL_TTL_MS).unwrap();
        assert!(ttl > day - 60_000 && ttl <= day, "{key}: {ttl}");
    }
    // The call's hash is lost (as by its expiry): its users are free again.
    redis::cmd("DEL")
        .arg(format!("{prefix}:{{calls}}:call:c1"))
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    assert_eq!(c.of_user(&alice).await.unwrap(), None);
    assert_eq!(
        c.start(&a_call("c2", &carol, &alice)).await.unwrap(),
        Started::Started
    );
    // `due` drops the lost call's id.
    assert!(c
        .due(T0 + 1, T0)
        .await
        .unwrap()
        .iter()
        .all(|r| r.id == "c2"));
    assert!(c.end("c2").await.unwrap().is_some());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:{{calls}}:*"))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        keys,
        vec![format!("{prefix}:{{calls}}:of:{bob}")],
        "only the key left by the lost call"
    );
}

// ---------------------------------------------------------------------------
// Bad data and faults
// ---------------------------------------------------------------------------

/// Data that is not what this crate writes is `Corrupt`, never a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn malformed_data_is_corrupt() {
    let prefix = fresh_prefix();
    let store = store_at(&server_url(), &prefix).await;
    let (p, l) = (store.presence(), store.limiter());
    let mut raw = raw().await;
    let set = |key: String, value: &'static str| {
        let mut raw = raw.clone();
        async move {
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .query_async::<()>(&mut raw)
                .await
                .unwrap()
        }
    };
    let u = UserId::generate();
    set(format!("{prefix}:{{presence}}:seen:{u}"), "yesterday").await;
    assert!(matches!(
        p.get(std::slice::from_ref(&u)).await,
        Err(StoreError::Corrupt(_))
    ));
    set(format!("{prefix}:{{presence}}:u:{u}"), "not a hash").await;
    assert!(matches!(
        p.connect(&u, "n/1", T0).await,
        Err(StoreError::Corrupt(_))
    ));
    let q = Quota {
        max: 10,
        window_ms: 1000,
    };
    let start = T0 - T0 % 1000;
    set(format!("{prefix}:rl:b:{start}:k"), "lots").await;
    assert!(matches!(
        l.spend("k", 1, q, start).await,
        Err(StoreError::Corrupt(_))
    ));
    set(format!("{prefix}:rl:w:k"), "not a sorted set").await;
    assert!(matches!(
        l.check("k", q, T0).await,
        Err(StoreError::Corrupt(_))
    ));
    let _ = redis::cmd("DEL")
        .arg(format!("{prefix}:rl:w:k"))
        .query_async::<()>(&mut raw)
        .await;
    // A call whose record is not this crate's.
    let c = store.calls();
    let (alice, bob) = (UserId::generate(), UserId::generate());
    c.start(&a_call("c1", &alice, &bob)).await.unwrap();
    redis::cmd("HSET")
        .arg(format!("{prefix}:{{calls}}:call:c1"))
        .arg("rec")
        .arg("garbage")
        .query_async::<()>(&mut raw)
        .await
        .unwrap();
    assert!(matches!(c.get("c1").await, Err(StoreError::Corrupt(_))));
    assert!(matches!(c.of_user(&bob).await, Err(StoreError::Corrupt(_))));
    assert!(matches!(
        c.due(T0 + 1, T0).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(c.end("c1").await, Err(StoreError::Corrupt(_))));
    assert_eq!(c.get("c1").await.unwrap(), None, "removed all the same");
}

/// Redis gone: calls fail with `Unavailable` (soon, not after a hang);
/// Redis back on the same port: the same store works again (the connection
/// reconnects and reloads its scripts).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_down_is_unavailable_and_back_is_served() {
    let mut server = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let store = store_at(&server.url(), &fresh_prefix()).await;
    let (p, l) = (store.presence(), store.limiter());
    let q = Quota {
        max: 10,
        window_ms: 1000,
    };
    let u = UserId::generate();
    assert!(p.connect(&u, "n/1", T0).await.unwrap());
    assert_eq!(l.spend("k", 1, q, T0).await.unwrap(), None);
    server.stop();
    let started = Instant::now();
    assert!(matches!(
        l.spend("k", 1, q, T0).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        p.get(std::slice::from_ref(&u)).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "fails fast: {:?}",
        started.elapsed()
    );
    server.restart().unwrap_or_else(|e| panic!("{e}"));
    // The restarted Redis is empty (no persistence): presence starts afresh.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match p.connect(&u, "n/2", T0 + 5).await {
            Ok(went_online) => {
                assert!(went_online, "a fresh Redis knows nobody");
                break;
            }
            Err(StoreError::Unavailable(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("not back after the restart: {e}"),
        }
    }
    assert_eq!(l.spend("k", 1, q, T0).await.unwrap(), None);
    store.ping().await.unwrap();
}

/// An invalid prefix is refused before connecting.
#[tokio::test]
async fn invalid_prefixes_are_refused() {
    for bad in ["", "a{b}", "a b"] {
        assert!(matches!(
            RedisStore::connect(&RedisConfig::new(server_url(), bad)).await,
            Err(StoreError::Unavailable(_))
        ));
    }
}

/// Two chatcore servers on one Redis: node B's connection keys
/// (`<node id>/<n>`) are taken over by A's `sweep_presence` once B has not
/// swept for `presence_ttl_ms` by A's clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_sweep_each_others_presence() {
    use chatcore::server::ManualClock;
    use chatcore::{Config, Server};
    let prefix = fresh_prefix();
    let mut config = Config::default();
    config.presence_ttl_ms = 10_000;
    config.argon2 = chatcore::account::Argon2Config::new(64, 1, 1);
    let node = |clock: Arc<ManualClock>| {
        let config = config.clone();
        let prefix = prefix.clone();
        async move {
            let b = store_at(&server_url(), &prefix)
                .await
                .backends(Backends::memory());
            Server::with_clock(b, config, clock).unwrap()
        }
    };
    let (ca, cb) = (
        Arc::new(ManualClock::new(T0)),
        Arc::new(ManualClock::new(T0)),
    );
    let (a, b) = (node(ca.clone()).await, node(cb.clone()).await);
    let u = UserId::generate();
    let conn = format!("{}/1", b.node_id());
    assert!(b.backends().presence.connect(&u, &conn, T0).await.unwrap());
    assert_eq!(a.sweep_presence().await.unwrap(), 0);
    assert_eq!(b.sweep_presence().await.unwrap(), 0);
    ca.advance(std::time::Duration::from_millis(9_999));
    assert_eq!(a.sweep_presence().await.unwrap(), 0, "B is within its TTL");
    ca.advance(std::time::Duration::from_millis(1));
    assert_eq!(a.sweep_presence().await.unwrap(), 1, "B is dead");
    let p = a
        .backends()
        .presence
        .get(std::slice::from_ref(&u))
        .await
        .unwrap();
    assert_eq!(p[0], offline(&u, T0));
}

/// Two servers on one Redis: a call started through one node's store rings
/// unanswered; both nodes sweep at once past the ring timeout and it is
/// ended once; the callee is free on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_sweep_each_others_calls_once() {
    use chatcore::server::ManualClock;
    use chatcore::{Config, Server};
    let prefix = fresh_prefix();
    let mut config = Config::default();
    config.argon2 = chatcore::account::Argon2Config::new(64, 1, 1);
    let ring = config.call_ring_timeout_ms;
    let clock = Arc::new(ManualClock::new(T0));
    let node = || {
        let (config, prefix, clock) = (config.clone(), prefix.clone(), clock.clone());
        async move {
            let b = store_at(&server_url(), &prefix)
                .await
                .backends(Backends::memory());
            Server::with_clock(b, config, clock).unwrap()
        }
    };
    let (a, b) = (node().await, node().await);
    let (alice, bob) = (UserId::generate(), UserId::generate());
    assert_eq!(
        a.backends()
            .calls
            .start(&a_call("c1", &alice, &bob))
            .await
            .unwrap(),
        Started::Started
    );
    assert!(b.backends().calls.of_user(&bob).await.unwrap().is_some());
    assert_eq!(b.sweep_calls().await.unwrap(), 0, "still ringing");
    clock.advance(Duration::from_millis(ring + 1));
    let (ea, eb) = tokio::join!(a.sweep_calls(), b.sweep_calls());
    assert_eq!(ea.unwrap() + eb.unwrap(), 1, "ended once");
    assert_eq!(a.backends().calls.of_user(&bob).await.unwrap(), None);
    assert_eq!(b.backends().calls.of_user(&alice).await.unwrap(), None);
}

/// A node dies holding the callee's side of an answered call: nothing
/// closes its connection, but once the other node's presence sweep takes the
/// dead node's users offline, that side is gone, and the call ends after the
/// grace period (without this it stayed up until a side hung up).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_whose_node_died_ends_after_the_grace() {
    use chatcore::model::DeviceId;
    use chatcore::server::ManualClock;
    use chatcore::{Config, Server};
    let prefix = fresh_prefix();
    let mut config = Config::default();
    config.presence_ttl_ms = 10_000;
    config.argon2 = chatcore::account::Argon2Config::new(64, 1, 1);
    let grace = config.call_grace_ms;
    let node = |clock: Arc<ManualClock>| {
        let (config, prefix) = (config.clone(), prefix.clone());
        async move {
            let b = store_at(&server_url(), &prefix)
                .await
                .backends(Backends::memory());
            Server::with_clock(b, config, clock).unwrap()
        }
    };
    let (ca, cb) = (
        Arc::new(ManualClock::new(T0)),
        Arc::new(ManualClock::new(T0)),
    );
    let (a, b) = (node(ca.clone()).await, node(cb.clone()).await);
    let (alice, bob) = (UserId::generate(), UserId::generate());
    let bob_conn = format!("{}/1", b.node_id());
    assert!(b
        .backends()
        .presence
        .connect(&bob, &bob_conn, T0)
        .await
        .unwrap());
    let calls = &a.backends().calls;
    calls.start(&a_call("c-dead", &alice, &bob)).await.unwrap();
    let device = DeviceId::from("bob-phone");
    calls
        .answer("c-dead", &device, &bob_conn, T0)
        .await
        .unwrap();
    assert_eq!(a.sweep_presence().await.unwrap(), 0);
    // B stops; past its TTL A takes its users over, and Bob's side of the call is gone.
    ca.advance(Duration::from_millis(10_000));
    assert_eq!(a.sweep_presence().await.unwrap(), 1);
    let gone = calls.get("c-dead").await.unwrap().expect("still up");
    assert_eq!(gone.callee_gone_at, Some(T0 + 10_000));
    ca.advance(Duration::from_millis(grace));
    assert_eq!(a.sweep_calls().await.unwrap(), 0, "within the grace");
    ca.advance(Duration::from_millis(1));
    assert_eq!(a.sweep_calls().await.unwrap(), 1);
    assert_eq!(calls.of_user(&alice).await.unwrap(), None);
}

// ---------------------------------------------------------------------------
// The broker
// ---------------------------------------------------------------------------

/// chatcore's broker conformance suite on three nodes of one Redis (each
/// its own connections, as separate processes would have), under a fresh
/// prefix per case.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_conformance_on_three_nodes() {
    use chatcore::store::Broker;
    chatcore::testkit::broker::run_all(&|| async {
        let url = server_url();
        let prefix = fresh_prefix();
        let node = || async {
            let store = store_at(&url, &prefix).await;
            Arc::new(store.broker(10_000).await.expect("broker")) as Arc<dyn Broker>
        };
        [node().await, node().await, node().await]
    })
    .await;
}

/// A frame another program put on a node's channel is dropped and
/// counted; events go on flowing. Redis stopped: the node is not ready,
/// publishing does not block (frames wait in the backlog, then are shed
/// past it); Redis back: the node subscribes again and events flow.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn broker_drops_foreign_frames_and_rides_out_a_redis_restart() {
    use chatcore::model::ConversationId;
    use chatcore::store::{Broker, BrokerHandler, Event, Topic};
    use std::sync::atomic::Ordering;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Got(Mutex<Vec<Event>>);
    impl BrokerHandler for Got {
        fn deliver(&self, _: &Topic, event: Arc<Event>) {
            self.0.lock().unwrap().push(Event::clone(&event));
        }
    }
    let typing = |n: u64| Event::Typing {
        conv: ConversationId::from(format!("c:{n}").as_str()),
        user: UserId::from("w"),
        typing: true,
    };
    async fn until(got: &Got, n: usize) {
        let start = Instant::now();
        while got.0.lock().unwrap().len() < n {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "only {:?}",
                got.0.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    let mut server = RedisServer::start().expect("a private redis-server");
    let url = server.url();
    let prefix = fresh_prefix();
    let a = store_at(&url, &prefix)
        .await
        .broker(4)
        .await
        .expect("broker a");
    let b = store_at(&url, &prefix)
        .await
        .broker(4)
        .await
        .expect("broker b");
    let got = Arc::new(Got::default());
    a.attach(got.clone());
    let topic = Topic::User(UserId::from("u"));
    a.subscribe(&topic).await.expect("subscribe");

    let mut raw = redis::Client::open(url.as_str())
        .expect("url")
        .get_multiplexed_async_connection()
        .await
        .expect("raw");
    let channel = format!("{prefix}:t:{}", topic.channel());
    let _: () = redis::cmd("PUBLISH")
        .arg(&channel)
        .arg(&b"not a frame"[..])
        .query_async(&mut raw)
        .await
        .expect("publish");
    b.publish(&topic, typing(1)).await.expect("publish");
    until(&got, 1).await;
    assert_eq!(a.stats().malformed.load(Ordering::Relaxed), 1);
    assert!(b.ready().await.is_ok());

    server.stop();
    let start = Instant::now();
    while a.ready().await.is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never noticed Redis gone"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Publishing with Redis away returns at once; past the backlog of 4
    // frames (whatever the publisher task holds), frames are shed.
    let start = Instant::now();
    for i in 0..50 {
        b.publish(&topic, typing(100 + i))
            .await
            .expect("publish never fails on a slow Redis");
    }
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "publishing waited for Redis"
    );
    assert!(b.stats().shed.load(Ordering::Relaxed) > 0, "nothing shed");

    server.restart().expect("restart");
    let start = Instant::now();
    while a.ready().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "never reconnected"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Subscribed again by itself: new events arrive.
    let before = got.0.lock().unwrap().len();
    let start = Instant::now();
    let mut n = 1000;
    while got.0.lock().unwrap().len() == before {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no event after the restart"
        );
        b.publish(&topic, typing(n)).await.expect("publish");
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One request on an in-process connection, and its reply (pushes skipped).
/// A user registered as `name` on `server`, through its session layer (so
/// that its hub holds the connection, which is returned to keep it open).
async fn registered(
    server: &Arc<chatcore::Server>,
    name: &str,
    phone: &str,
) -> (chatcore::session::InProcess, UserId) {
    let mut conn = chatcore::session::connect_in_process(
        server.clone(),
        chatcore::session::PeerInfo::new(None),
        64,
        tokio_util::sync::CancellationToken::new(),
    );
    let hello = ask(
        &mut conn,
        chatcore::protocol::ClientFrame::Hello {
            id: 1,
            version: chatcore::protocol::PROTOCOL_VERSION,
            client: None,
        },
    )
    .await;
    assert!(
        matches!(hello, chatcore::protocol::ServerFrame::Welcome { .. }),
        "{hello:?}"
    );
    let reply = ask(
        &mut conn,
        chatcore::protocol::ClientFrame::Register {
            id: 2,
            username: name.into(),
            email: format!("{name}@example.com"),
            phone: phone.into(),
            display_name: name.into(),
            password: "violet harbour anchor 1917".into(),
            device: "d".into(),
        },
    )
    .await;
    let chatcore::protocol::ServerFrame::Session { user, .. } = reply else {
        panic!("register: {reply:?}")
    };
    (conn, user)
}

async fn ask(
    conn: &mut chatcore::session::InProcess,
    frame: chatcore::protocol::ClientFrame,
) -> chatcore::protocol::ServerFrame {
    use futures_util::{SinkExt, StreamExt};
    conn.tx.send(Ok(frame)).await.expect("session alive");
    loop {
        let f = tokio::time::timeout(Duration::from_secs(10), conn.rx.next())
            .await
            .expect("a reply in time")
            .expect("connection open");
        if f.id().is_some() {
            return f;
        }
    }
}

/// A node that stalled past the TTL and comes back: the other node's sweep
/// turned its signed-in user offline; its own next sweep finds its
/// liveness lapsed and records its live connections again, so the user is
/// online again, and a sweep after that (liveness renewed) changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_back_from_a_stall_records_its_connections_again() {
    use chatcore::server::ManualClock;
    use chatcore::{Config, Server};
    let prefix = fresh_prefix();
    let mut config = Config::default();
    config.presence_ttl_ms = 10_000;
    config.argon2 = chatcore::account::Argon2Config::new(64, 1, 1);
    let clock = Arc::new(ManualClock::new(T0));
    let node = || {
        let (config, prefix, clock) = (config.clone(), prefix.clone(), clock.clone());
        async move {
            let b = store_at(&server_url(), &prefix)
                .await
                .backends(Backends::memory());
            Server::with_clock(b, config, clock).unwrap()
        }
    };
    let (a, b) = (node().await, node().await);
    // A user signed in on B, through B's session layer (so B's hub has the
    // connection).
    let (conn, user) = registered(&b, "stalled", "+15550001111").await;
    let online = |s: Arc<Server>, u: UserId| async move {
        s.backends().presence.get(&[u]).await.unwrap()[0].online
    };
    assert_eq!(b.sweep_presence().await.unwrap(), 0);
    assert!(online(a.clone(), user.clone()).await);
    // B stalls: A's sweep past the TTL takes its connection over.
    clock.advance(Duration::from_millis(10_001));
    assert_eq!(a.sweep_presence().await.unwrap(), 1);
    assert!(!online(a.clone(), user.clone()).await, "taken for dead");
    // B is back: its sweep records the live connection again.
    b.sweep_presence().await.unwrap();
    assert!(online(a.clone(), user.clone()).await, "online again");
    clock.advance(Duration::from_millis(1_000));
    assert_eq!(a.sweep_presence().await.unwrap(), 0, "B is alive now");
    assert!(online(a.clone(), user.clone()).await);
    drop(conn);
}

/// Redis's presence store whose `connect` fails while `failing` is set, as
/// a node too busy to reach Redis in time sees it (timeouts).
struct FlakyPresence {
    inner: Arc<dyn PresenceStore>,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl PresenceStore for FlakyPresence {
    async fn connect(
        &self,
        user: &UserId,
        conn: &str,
        now: Millis,
    ) -> chatcore::store::StoreResult<bool> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(StoreError::Unavailable("timed out".into()));
        }
        self.inner.connect(user, conn, now).await
    }
    async fn disconnect(
        &self,
        user: &UserId,
        conn: &str,
        now: Millis,
    ) -> chatcore::store::StoreResult<bool> {
        self.inner.disconnect(user, conn, now).await
    }
    async fn get(&self, users: &[UserId]) -> chatcore::store::StoreResult<Vec<Presence>> {
        self.inner.get(users).await
    }
    async fn sweep(
        &self,
        node: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> chatcore::store::StoreResult<Vec<Presence>> {
        self.inner.sweep(node, now, ttl_ms).await
    }
    async fn connections(&self, user: &UserId) -> chatcore::store::StoreResult<Option<usize>> {
        self.inner.connections(user).await
    }
    async fn lapsed(
        &self,
        node: &str,
        now: Millis,
        ttl_ms: u64,
    ) -> chatcore::store::StoreResult<bool> {
        self.inner.lapsed(node, now, ttl_ms).await
    }
}

/// A node back from a stall whose recording of its live connections fails
/// part way (seen in the cluster-idle benchmark: 30 nodes and Redis on one
/// busy core, Redis calls timing out): its sweep has renewed its liveness,
/// so the next sweep no longer finds it lapsed, and must record them all
/// the same. Before, its users stayed offline until they reconnected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_whose_recording_after_a_stall_failed_records_at_the_next_sweep() {
    use chatcore::server::ManualClock;
    use chatcore::{Config, Server};
    let prefix = fresh_prefix();
    let mut config = Config::default();
    config.presence_ttl_ms = 10_000;
    config.argon2 = chatcore::account::Argon2Config::new(64, 1, 1);
    let clock = Arc::new(ManualClock::new(T0));
    let a = Server::with_clock(
        store_at(&server_url(), &prefix)
            .await
            .backends(Backends::memory()),
        config.clone(),
        clock.clone(),
    )
    .unwrap();
    let mut backends = store_at(&server_url(), &prefix)
        .await
        .backends(Backends::memory());
    let flaky = Arc::new(FlakyPresence {
        inner: backends.presence.clone(),
        failing: std::sync::atomic::AtomicBool::new(false),
    });
    backends.presence = flaky.clone();
    let b = Server::with_clock(backends, config, clock.clone()).unwrap();
    let (conn, user) = registered(&b, "flaky", "+15550002222").await;
    let online = |s: Arc<Server>, u: UserId| async move {
        s.backends().presence.get(&[u]).await.unwrap()[0].online
    };
    assert_eq!(b.sweep_presence().await.unwrap(), 0);
    assert!(online(a.clone(), user.clone()).await);
    // B stalls: A's sweep past the TTL takes its connection over.
    clock.advance(Duration::from_millis(10_001));
    assert_eq!(a.sweep_presence().await.unwrap(), 1);
    assert!(!online(a.clone(), user.clone()).await, "taken for dead");
    // B is back, renews its liveness, but cannot record its connection.
    flaky
        .failing
        .store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(b.sweep_presence().await.is_err());
    assert!(!online(a.clone(), user.clone()).await);
    // Redis answers again: B's next sweep records it, though B's liveness
    // is no longer lapsed.
    flaky
        .failing
        .store(false, std::sync::atomic::Ordering::SeqCst);
    clock.advance(Duration::from_millis(1_000));
    b.sweep_presence().await.unwrap();
    assert!(online(a.clone(), user.clone()).await, "online again");
    clock.advance(Duration::from_millis(1_000));
    assert_eq!(a.sweep_presence().await.unwrap(), 0, "B is alive");
    assert!(online(a.clone(), user.clone()).await);
    drop(conn);
}
