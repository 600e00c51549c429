//! One-time key claims per second with concurrent claimers, on a key
//! store itself (no network: what the store can hand out): the memory
//! store, and SQLite beside it in the same run.
//!
//!   target/release/bench claims --devices 200 --keys 100 --claimers 16
//!
//! Each device uploads `keys` one-time keys; `claimers` tasks then claim
//! one key of a random device each, until every key is handed out, and
//! the run checks that none was handed out twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{ensure, Result};
use chatcore::memory::MemoryKeyStore;
use chatcore::model::{DeviceId, UserId};
use chatcore::store::{KeyStore, OneTimeKey};

/// Options of the claims benchmark.
#[derive(clap::Args, Clone)]
pub(crate) struct ClaimOpts {
    /// Devices with keys.
    #[arg(long, default_value_t = 200)]
    devices: usize,
    /// One-time keys per device.
    #[arg(long, default_value_t = 100)]
    keys: usize,
    /// Concurrent claimers.
    #[arg(long, default_value_t = 16)]
    claimers: usize,
}

async fn measure(name: &str, store: Arc<dyn KeyStore>, o: &ClaimOpts) -> Result<()> {
    let user = UserId::generate();
    let devices: Vec<DeviceId> = (0..o.devices)
        .map(|i| DeviceId::from(format!("dev{i}").as_str()))
        .collect();
    for d in &devices {
        let keys: Vec<OneTimeKey> = (0..o.keys)
            .map(|i| OneTimeKey::new(format!("{d}-{i}"), format!("key-{d}-{i}"), "sig"))
            .collect();
        ensure!(store.add_one_time_keys(&user, d, &keys, o.keys).await?);
    }
    let total = o.devices * o.keys;
    let per = total / o.claimers;
    let start = Instant::now();
    let tasks: Vec<_> = (0..o.claimers)
        .map(|c| {
            let (store, user, devices) = (store.clone(), user.clone(), devices.clone());
            let n = if c == 0 {
                total - per * (o.claimers - 1)
            } else {
                per
            };
            tokio::spawn(async move {
                let mut got = Vec::with_capacity(n);
                // A xorshift per claimer: which device each claim names.
                let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ (c as u64 + 1);
                while got.len() < n {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let d = &devices[(x % devices.len() as u64) as usize];
                    for k in store.claim(&[(user.clone(), d.clone())]).await? {
                        if !k.fallback {
                            got.push(k.key.id);
                        }
                    }
                }
                anyhow::Ok(got)
            })
        })
        .collect();
    let mut all = HashSet::with_capacity(total);
    for t in tasks {
        for id in t.await?? {
            ensure!(all.insert(id), "a key was handed out twice");
        }
    }
    let secs = start.elapsed().as_secs_f64();
    ensure!(all.len() == total, "keys lost");
    println!(
        "  {name:<7} {total} one-time keys claimed by {} concurrent claimers in {secs:.2} s: {:.0} claims/s, none twice",
        o.claimers,
        total as f64 / secs
    );
    Ok(())
}

/// Runs the claims benchmark on the memory store, then on SQLite.
pub(crate) async fn run(o: ClaimOpts) -> Result<()> {
    println!(
        "== one-time key claims ({} devices x {} keys)",
        o.devices, o.keys
    );
    measure("memory", Arc::new(MemoryKeyStore::new()), &o).await?;
    let dir = std::env::temp_dir().join(format!("bench-claims-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = chatcore_sqlite::SqliteStore::open(dir.join("claims.db")).await?;
    measure("sqlite", Arc::new(sqlite.keys()), &o).await?;
    drop(sqlite);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
