//! chatcore's integration tests, in one binary: conformance and model
//! property tests against the memory backends, the codec against the shared
//! vectors, and whole sessions over in-process channels.

mod backup;
mod calls;
mod codec;
mod devices;
mod encryption;
mod groups;
mod keys;
mod life;
mod media;
mod presence_sweep;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_blobs_pass_the_blob_conformance_suite() {
    use chatcore::memory::MemoryBlobStore;
    use chatcore::store::BlobStore;
    chatcore::testkit::blobs::run_all(&|| async {
        Arc::new(MemoryBlobStore::new(64 * 1024 * 1024)) as Arc<dyn BlobStore>
    })
    .await;
}

#[tokio::test]
async fn memory_blobs_are_bounded_and_give_back_what_failed_uploads_held() {
    use chatcore::memory::MemoryBlobStore;
    use chatcore::model::MediaId;
    use chatcore::store::{BlobStore, StoreError};
    use chatcore::testkit::blobs::{body_of, failing_body, sample, stalled_body};
    let store = MemoryBlobStore::new(1_000_000);
    let meta = || chatcore::store::BlobMeta::new(chatcore::model::UserId::from("uploader"), 0);
    let data = sample(2_000_000, 1);
    let (a, b) = (MediaId::generate(), MediaId::generate());
    store
        .put(&a, meta(), body_of(&data[..600_000]), u64::MAX)
        .await
        .unwrap();
    assert_eq!(store.used(), 600_000);
    // Over the capacity: nothing stored, nothing kept reserved.
    assert_eq!(
        store
            .put(&b, meta(), body_of(&data[..500_000]), u64::MAX)
            .await,
        Err(StoreError::Full)
    );
    assert_eq!(store.info(&b).await.unwrap(), None);
    assert_eq!(store.used(), 600_000);
    let _ = store
        .put(&b, meta(), failing_body(&data, 300_000), u64::MAX)
        .await;
    assert_eq!(store.used(), 600_000);
    let stalled = store.put(&b, meta(), stalled_body(&data, 300_000), u64::MAX);
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(50), stalled)
            .await
            .is_err()
    );
    assert_eq!(store.used(), 600_000);
    // Deleting frees room.
    assert!(store.delete(&a).await.unwrap());
    assert_eq!(store.used(), 0);
    store
        .put(&b, meta(), body_of(&data[..900_000]), u64::MAX)
        .await
        .unwrap();
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

/// The in-process broker keeps the subscription contract every broker
/// must (three nodes on one bus): only subscribed topics arrive, on every
/// subscribed node, in each publisher's order.
#[tokio::test]
async fn the_memory_broker_passes_the_broker_conformance_suite() {
    use chatcore::memory::{MemoryBroker, MemoryBus};
    use chatcore::store::Broker;
    chatcore::testkit::broker::run_all(&|| async {
        let bus = MemoryBus::new();
        [0, 1, 2].map(|_| Arc::new(MemoryBroker::on(&bus)) as Arc<dyn Broker>)
    })
    .await;
}
