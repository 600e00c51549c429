//! chatcore's integration tests, in one binary: conformance and model
//! property tests against the memory backends, the codec against the shared
//! vectors, and whole sessions over in-process channels.

mod backup;
mod codec;
mod devices;
mod encryption;
mod groups;
mod keys;
mod life;
mod receipts;
mod requests;
mod sessions;
mod typing;

use chatcore::testkit::{conformance, model};
use chatcore::Backends;
use std::sync::Arc;

#[tokio::test]
async fn memory_backends_pass_the_conformance_suite() {
    conformance::run_all(&|| async { Backends::memory() }).await;
}

#[test]
fn memory_backends_pass_the_session_model() {
    let cases = std::env::var("CHATCORE_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    model::check(Arc::new(|| async { Backends::memory() }), cases);
}

#[test]
fn memory_backends_pass_the_group_model() {
    let cases = std::env::var("CHATCORE_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    chatcore::testkit::groups::check(Arc::new(|| async { Backends::memory() }), cases);
}

#[test]
fn memory_backends_pass_the_key_directory_model() {
    let cases = std::env::var("CHATCORE_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    chatcore::testkit::keys::check(Arc::new(|| async { Backends::memory() }), cases);
}

#[test]
fn memory_backends_pass_the_to_device_model() {
    let cases = std::env::var("CHATCORE_MODEL_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    chatcore::testkit::to_device::check(Arc::new(|| async { Backends::memory() }), cases);
}
