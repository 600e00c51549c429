//! Test support for every backend implementation (feature `testkit`).
//!
//! - [`conformance`]: one suite of generic async tests that every
//!   implementation of the store traits must pass, run here against the
//!   memory stores and by `chatcore-mongo` against MongoDB.
//! - [`broker`]: the same for [`crate::store::Broker`]s, over three nodes on one bus.
//! - [`blobs`]: the same for [`crate::store::BlobStore`]s, over a
//!   [`blobs::BlobFactory`] of fresh stores.
//! - [`model`]: property tests that drive whole sessions through a
//!   [`crate::Server`] over random interleavings of operations and compare
//!   with a simple model of what each device must have received.
//! - [`groups`]: a property test of group membership, roles, seqs, fan-out,
//!   history windows and unread counts, through the request layer.
//! - [`samples`]: one example of every frame, the source of `tests/vectors/`.
//! - [`decoding`]: the differential check of the client-frame decoders that
//!   the codec's property tests, the corpus replay and the fuzz target share.
//!
//! An implementation plugs in through a [`Factory`] that hands out fresh,
//! isolated [`Backends`] (a new database, say) for each test:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use chatcore::Backends;
//! let factory = || async { Backends::memory() };
//! chatcore::testkit::conformance::run_all(&factory).await;
//! # }
//! ```

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;

use futures_util::FutureExt;

use crate::Backends;

/// `$vis fn $list()`: the named case functions of a suite as `(name,
/// Case)` pairs, `Case` being the suite's own case type.
macro_rules! cases {
    ($vis:vis fn $list:ident; $($name:ident),* $(,)?) => {
        /// Every case, by name.
        $vis fn $list() -> Vec<(&'static str, Case)> {
            vec![$((stringify!($name), (|b| Box::pin($name(b))) as Case)),*]
        }
    };
}

/// One case of a suite, run on the subject `T` (backends, a blob store).
type SuiteCase<T> = fn(T) -> BoxFuture<'static, ()>;

/// Runs each case of `suite` on a fresh subject from `fresh`, then panics
/// listing every failing case with its message (a failure does not stop
/// the others).
async fn run_cases<T, Fut>(
    suite: &str,
    cases: Vec<(&'static str, SuiteCase<T>)>,
    fresh: impl Fn() -> Fut,
) where
    Fut: Future<Output = T>,
{
    let mut failures = Vec::new();
    for (name, case) in cases {
        let subject = fresh().await;
        if let Err(panic) = AssertUnwindSafe(case(subject)).catch_unwind().await {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failures.push(format!("{name}: {msg}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{suite} failures:\n{}",
        failures.join("\n")
    );
}

pub mod blobs;
pub mod broker;
pub mod conformance;
pub mod decoding;
pub mod groups;
pub mod keys;
mod life;
pub mod model;
pub mod samples;
pub mod to_device;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Makes fresh backends for one test. Every call must return backends that
/// share no data with those of earlier calls.
pub trait Factory: Send + Sync {
    /// New, empty, isolated backends.
    fn backends(&self) -> BoxFuture<'_, Backends>;
}

impl<F, Fut> Factory for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Backends> + Send + 'static,
{
    fn backends(&self) -> BoxFuture<'_, Backends> {
        Box::pin(self())
    }
}

/// What a step of a model test returns: `Err` says what broke the model.
pub(crate) type Check<T> = Result<T, String>;

/// `Err(msg())` unless `cond`.
pub(crate) fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Check<()> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Runs `cases` random scenarios of `ops` on a fresh current-thread
/// runtime each; panics (after shrinking) with `name` and the first
/// scenario that breaks the model. Shared by the model tests.
pub(crate) fn check_scenarios<S, F, Fut>(name: &str, cases: u32, ops: S, scenario: F)
where
    S: proptest::strategy::Strategy,
    F: Fn(S::Value) -> Fut,
    Fut: Future<Output = Check<()>>,
{
    use proptest::test_runner::{Config, TestCaseError, TestRunner};
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let result = TestRunner::new(config).run(&ops, |ops| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        rt.block_on(scenario(ops)).map_err(TestCaseError::fail)
    });
    if let Err(e) = result {
        panic!("{name} failed: {e}");
    }
}
