//! The blob conformance suite: what every [`BlobStore`] must do, written
//! once as async tests over an `Arc<dyn BlobStore>`, in the style of
//! [`super::conformance`].
//!
//! Each case gets a fresh, empty store from the [`BlobFactory`] (a
//! filesystem store a new directory, a GridFS store a new database) and
//! panics when the store breaks the trait's contract. [`run_all`] runs them
//! all and reports every failing case by name.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, StreamExt};
use sha2::{Digest, Sha256};

use super::BoxFuture;
use crate::model::{MediaId, Millis, UserId};
use crate::store::{BlobBody, BlobMeta, BlobStore, ByteRange, StoreError};

/// Makes a fresh blob store for one case: every call returns a store that
/// shares no blob with those of earlier calls.
pub trait BlobFactory: Send + Sync {
    /// A new, empty store.
    fn blobs(&self) -> BoxFuture<'_, Arc<dyn BlobStore>>;
}

impl<F, Fut> BlobFactory for F
where
    F: Fn() -> Fut + Send + Sync,
    Fut: Future<Output = Arc<dyn BlobStore>> + Send + 'static,
{
    fn blobs(&self) -> BoxFuture<'_, Arc<dyn BlobStore>> {
        Box::pin(self())
    }
}

/// One case.
pub type Case = fn(Arc<dyn BlobStore>) -> BoxFuture<'static, ()>;

cases!(
    pub fn cases;
    blobs_stream_in_and_out_whole,
    blobs_empty_blob_round_trips,
    blobs_ranges_are_clamped_like_http,
    blobs_missing_ids_are_none,
    blobs_malformed_ids_are_refused_or_missing,
    blobs_duplicate_id_conflicts_and_keeps_the_first,
    blobs_body_error_leaves_nothing,
    blobs_dropped_upload_leaves_nothing,
    blobs_over_max_bytes_leaves_nothing,
    blobs_delete_then_get_is_none,
    blobs_concurrent_puts_of_different_ids,
    blobs_concurrent_puts_of_one_id_admit_one,
    blobs_keep_owner_and_time_and_list_by_age_in_pages,
);

/// Runs every case against a fresh store from `factory`; panics listing
/// each failing case and its message.
pub async fn run_all(factory: &dyn BlobFactory) {
    super::run_cases("blob conformance", cases(), || factory.blobs()).await;
}

/// When the cases' blobs are stored, unless a case says otherwise.
const CREATED: Millis = 1_700_000_000_000;

/// The owner and time of the cases' blobs.
fn meta() -> BlobMeta {
    BlobMeta::new(UserId::from("owner-1"), CREATED)
}

/// A limit no case reaches.
const NO_LIMIT: u64 = 1 << 40;

/// `len` deterministic bytes that differ with `seed` (a small xorshift).
pub fn sample(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x.to_le_bytes()[0]
        })
        .collect()
}

/// `data` cut into chunks of uneven sizes (1 byte to ~64 KiB), as a network
/// delivers them.
fn chunks_of(data: &[u8]) -> Vec<Bytes> {
    let sizes = [1usize, 7, 4096, 65_536, 1000, 31_337, 65_535, 12];
    let mut out = Vec::new();
    let mut at = 0;
    let mut i = 0;
    while at < data.len() {
        let n = sizes[i % sizes.len()].min(data.len() - at);
        out.push(Bytes::copy_from_slice(&data[at..at + n]));
        at += n;
        i += 1;
    }
    out
}

/// `data` as a body of many chunks.
pub fn body_of(data: &[u8]) -> BlobBody {
    Box::pin(stream::iter(chunks_of(data).into_iter().map(Ok)))
}

/// The first `good` bytes of `data`, then an error: a truncated upload.
pub fn failing_body(data: &[u8], good: usize) -> BlobBody {
    let head = chunks_of(&data[..good]).into_iter().map(Ok);
    let tail = std::iter::once(Err(io::Error::new(
        io::ErrorKind::ConnectionReset,
        "the client went away",
    )));
    Box::pin(stream::iter(head.chain(tail)))
}

/// The first `good` bytes of `data`, then nothing ever again: an upload
/// whose `put` is dropped while it waits.
pub fn stalled_body(data: &[u8], good: usize) -> BlobBody {
    let head = chunks_of(&data[..good]).into_iter().map(Ok);
    Box::pin(stream::iter(head).chain(stream::pending()))
}

/// Lowercase hex SHA-256 of `data`, computed here to check the store's.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads blob `id` (or `range` of it) whole: its size, the served range and
/// the bytes; `None` when missing.
pub async fn read(
    store: &dyn BlobStore,
    id: &MediaId,
    range: Option<ByteRange>,
) -> Option<(u64, std::ops::Range<u64>, Vec<u8>)> {
    let read = store.get(id, range).await.expect("get")?;
    let mut body = read.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        bytes.extend_from_slice(&chunk.expect("a chunk of the body"));
    }
    Some((read.size, read.served, bytes))
}

/// Asserts that no blob `id` is visible in any way.
async fn assert_absent(store: &dyn BlobStore, id: &MediaId, what: &str) {
    assert!(
        store.get(id, None).await.expect("get").is_none(),
        "{what}: get sees the blob"
    );
    assert_eq!(
        store.info(id).await.expect("info"),
        None,
        "{what}: info sees the blob"
    );
}

const BIG: usize = 3 * 1024 * 1024 + 12_345;

async fn blobs_stream_in_and_out_whole(s: Arc<dyn BlobStore>) {
    let data = sample(BIG, 1);
    let id = MediaId::generate();
    let info = s
        .put(&id, meta(), body_of(&data), NO_LIMIT)
        .await
        .expect("put");
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.sha256, sha256_hex(&data));
    let (size, served, bytes) = read(&*s, &id, None).await.expect("stored");
    assert_eq!(size, data.len() as u64);
    assert_eq!(served, 0..data.len() as u64);
    assert!(bytes == data, "the bytes read differ from those written");
    let again = s.info(&id).await.expect("info").expect("present");
    assert_eq!((again.size, &again.sha256), (info.size, &info.sha256));
    assert_eq!(again.created_at, info.created_at);
    assert!(again.created_at > 0);
    // A body of exactly max_bytes is allowed.
    let exact = MediaId::generate();
    let small = sample(1000, 2);
    let info = s
        .put(&exact, meta(), body_of(&small), 1000)
        .await
        .expect("put at the limit");
    assert_eq!(info.size, 1000);
}

async fn blobs_empty_blob_round_trips(s: Arc<dyn BlobStore>) {
    let id = MediaId::generate();
    let info = s
        .put(&id, meta(), body_of(&[]), NO_LIMIT)
        .await
        .expect("put");
    assert_eq!(info.size, 0);
    assert_eq!(info.sha256, sha256_hex(&[]));
    let (size, served, bytes) = read(&*s, &id, None).await.expect("stored");
    assert_eq!((size, served, bytes.len()), (0, 0..0, 0));
    assert_eq!(
        s.get(&id, Some(ByteRange::starting_at(0))).await.err(),
        Some(StoreError::RangeNotSatisfiable { size: 0 })
    );
}

async fn blobs_ranges_are_clamped_like_http(s: Arc<dyn BlobStore>) {
    let data = sample(BIG, 3);
    let len = data.len() as u64;
    let id = MediaId::generate();
    s.put(&id, meta(), body_of(&data), NO_LIMIT)
        .await
        .expect("put");
    let cases = [
        ("first byte", ByteRange::inclusive(0, 0), 0..1),
        (
            "middle, across chunk boundaries",
            ByteRange::inclusive(300_000, 1_300_000),
            300_000..1_300_001,
        ),
        (
            "to the end",
            ByteRange::starting_at(1_000_001),
            1_000_001..len,
        ),
        (
            "last byte",
            ByteRange::inclusive(len - 1, len - 1),
            len - 1..len,
        ),
        (
            "last byte, open",
            ByteRange::starting_at(len - 1),
            len - 1..len,
        ),
        (
            "end past the blob is clamped",
            ByteRange::inclusive(len - 10, len + 1000),
            len - 10..len,
        ),
        ("everything", ByteRange::starting_at(0), 0..len),
    ];
    for (what, range, want) in cases {
        let (size, served, bytes) = read(&*s, &id, Some(range)).await.expect("stored");
        assert_eq!(size, len, "{what}: size");
        assert_eq!(served, want, "{what}: served");
        let (a, b) = (want.start as usize, want.end as usize);
        assert!(bytes == data[a..b], "{what}: wrong bytes");
    }
    for (what, range) in [
        ("start at the end", ByteRange::starting_at(len)),
        (
            "start past the end",
            ByteRange::inclusive(len + 5, len + 10),
        ),
        ("end before start", ByteRange::inclusive(10, 9)),
    ] {
        assert_eq!(
            s.get(&id, Some(range)).await.err(),
            Some(StoreError::RangeNotSatisfiable { size: len }),
            "{what}"
        );
    }
}

async fn blobs_missing_ids_are_none(s: Arc<dyn BlobStore>) {
    let id = MediaId::generate();
    assert_absent(&*s, &id, "never stored").await;
    assert!(s
        .get(&id, Some(ByteRange::starting_at(5)))
        .await
        .expect("get")
        .is_none());
    assert!(!s.delete(&id).await.expect("delete"));
}

async fn blobs_malformed_ids_are_refused_or_missing(s: Arc<dyn BlobStore>) {
    for bad in [
        "../../etc/passwd",
        "",
        "ab",
        "0123456789ABCDEF0123456789ABCDEF",
    ] {
        let id = MediaId::from(bad);
        assert!(
            matches!(
                s.put(&id, meta(), body_of(b"x"), NO_LIMIT).await,
                Err(StoreError::Corrupt(_))
            ),
            "put {bad:?}"
        );
        assert_absent(&*s, &id, bad).await;
        assert!(!s.delete(&id).await.expect("delete"), "delete {bad:?}");
    }
}

async fn blobs_duplicate_id_conflicts_and_keeps_the_first(s: Arc<dyn BlobStore>) {
    let id = MediaId::generate();
    let first = sample(200_000, 4);
    let info = s
        .put(&id, meta(), body_of(&first), NO_LIMIT)
        .await
        .expect("put");
    let second = sample(300_000, 5);
    assert_eq!(
        s.put(&id, meta(), body_of(&second), NO_LIMIT).await,
        Err(StoreError::Conflict {
            field: "media".into()
        })
    );
    let (_, _, bytes) = read(&*s, &id, None).await.expect("the first is kept");
    assert!(bytes == first, "the first blob changed");
    assert_eq!(s.info(&id).await.expect("info"), Some(info));
}

async fn blobs_body_error_leaves_nothing(s: Arc<dyn BlobStore>) {
    let data = sample(BIG, 6);
    let id = MediaId::generate();
    let r = s
        .put(&id, meta(), failing_body(&data, 1_500_000), NO_LIMIT)
        .await;
    assert!(
        matches!(r, Err(StoreError::Interrupted(_))),
        "a failing body: {r:?}"
    );
    assert_absent(&*s, &id, "after a body error").await;
    // An error before any byte, too.
    let r = s.put(&id, meta(), failing_body(&data, 0), NO_LIMIT).await;
    assert!(matches!(r, Err(StoreError::Interrupted(_))), "{r:?}");
    assert_absent(&*s, &id, "after an immediate error").await;
    // The id is free for a complete upload afterwards.
    s.put(&id, meta(), body_of(&data[..1000]), NO_LIMIT)
        .await
        .expect("a retry with the same id");
    let (_, _, bytes) = read(&*s, &id, None).await.expect("stored");
    assert!(bytes == data[..1000]);
}

async fn blobs_dropped_upload_leaves_nothing(s: Arc<dyn BlobStore>) {
    let data = sample(BIG, 7);
    let id = MediaId::generate();
    let put = s.put(&id, meta(), stalled_body(&data, 1_200_000), NO_LIMIT);
    assert!(
        tokio::time::timeout(Duration::from_millis(500), put)
            .await
            .is_err(),
        "a put whose body stalls must wait"
    );
    assert_absent(&*s, &id, "after a dropped upload").await;
    s.put(&id, meta(), body_of(&data[..10]), NO_LIMIT)
        .await
        .expect("a retry with the same id");
}

async fn blobs_over_max_bytes_leaves_nothing(s: Arc<dyn BlobStore>) {
    let data = sample(BIG, 8);
    let id = MediaId::generate();
    let max = 1_000_000;
    assert_eq!(
        s.put(&id, meta(), body_of(&data), max).await,
        Err(StoreError::TooLarge { max })
    );
    assert_absent(&*s, &id, "over max_bytes").await;
    // Known to be too large at once: refused without reading the stall.
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        s.put(&id, meta(), stalled_body(&data, 1_000_001), max),
    )
    .await
    .expect("refused as soon as the limit is passed");
    assert_eq!(r, Err(StoreError::TooLarge { max }));
    assert_absent(&*s, &id, "over max_bytes, body unfinished").await;
    assert_eq!(
        s.put(&id, meta(), body_of(&data[..1]), 0).await,
        Err(StoreError::TooLarge { max: 0 })
    );
}

async fn blobs_delete_then_get_is_none(s: Arc<dyn BlobStore>) {
    let data = sample(300_000, 9);
    let (id, other) = (MediaId::generate(), MediaId::generate());
    s.put(&id, meta(), body_of(&data), NO_LIMIT)
        .await
        .expect("put");
    s.put(&other, meta(), body_of(&data[..5]), NO_LIMIT)
        .await
        .expect("put");
    assert!(s.delete(&id).await.expect("delete"));
    assert_absent(&*s, &id, "deleted").await;
    assert!(!s.delete(&id).await.expect("delete again"));
    let (_, _, bytes) = read(&*s, &other, None).await.expect("the other is kept");
    assert!(bytes == data[..5]);
    // A deleted id may be stored again.
    s.put(&id, meta(), body_of(&data[..7]), NO_LIMIT)
        .await
        .expect("put after delete");
    let (_, _, bytes) = read(&*s, &id, None).await.expect("stored again");
    assert!(bytes == data[..7]);
}

async fn blobs_concurrent_puts_of_different_ids(s: Arc<dyn BlobStore>) {
    let blobs: Vec<(MediaId, Vec<u8>)> = (0..8)
        .map(|i| {
            (
                MediaId::generate(),
                sample(200_000 + i * 1000, 100 + i as u64),
            )
        })
        .collect();
    let puts = blobs.iter().map(|(id, data)| {
        let s = s.clone();
        let (id, body) = (id.clone(), body_of(data));
        tokio::spawn(async move { s.put(&id, meta(), body, NO_LIMIT).await })
    });
    for (r, (_, data)) in futures_util::future::join_all(puts)
        .await
        .into_iter()
        .zip(&blobs)
    {
        let info = r.expect("task").expect("put");
        assert_eq!(info.sha256, sha256_hex(data));
    }
    for (id, data) in &blobs {
        let (_, _, bytes) = read(&*s, id, None).await.expect("stored");
        assert!(&bytes == data, "blob {id} holds another's bytes");
    }
}

async fn blobs_concurrent_puts_of_one_id_admit_one(s: Arc<dyn BlobStore>) {
    let id = MediaId::generate();
    let bodies: Vec<Vec<u8>> = (0..4).map(|i| sample(600_000, 200 + i)).collect();
    let puts = bodies.iter().map(|data| {
        let (s, id, body) = (s.clone(), id.clone(), body_of(data));
        tokio::spawn(async move { s.put(&id, meta(), body, NO_LIMIT).await })
    });
    let results: Vec<_> = futures_util::future::join_all(puts)
        .await
        .into_iter()
        .map(|r| r.expect("task"))
        .collect();
    let won: Vec<usize> = (0..results.len()).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(
        won.len(),
        1,
        "exactly one put of an id succeeds: {results:?}"
    );
    for r in &results {
        if let Err(e) = r {
            assert_eq!(
                e,
                &StoreError::Conflict {
                    field: "media".into()
                }
            );
        }
    }
    let (_, _, bytes) = read(&*s, &id, None).await.expect("stored");
    assert!(
        bytes == bodies[won[0]],
        "the stored bytes are not the winner's"
    );
}

/// A blob keeps who stored it and when (the caller's clock), and `list`
/// pages through those older than a time, by id, after an id.
async fn blobs_keep_owner_and_time_and_list_by_age_in_pages(s: Arc<dyn BlobStore>) {
    let mut ids: Vec<MediaId> = (0..5).map(|_| MediaId::generate()).collect();
    ids.sort();
    for (i, id) in ids.iter().enumerate() {
        let owner = UserId::from(format!("owner-{i}").as_str());
        let at = CREATED + i as Millis * 1000;
        let info = s
            .put(
                id,
                BlobMeta::new(owner.clone(), at),
                body_of(b"x"),
                NO_LIMIT,
            )
            .await
            .expect("put");
        assert_eq!((info.owner.as_ref(), info.created_at), (Some(&owner), at));
        let stored = s.info(id).await.expect("info").expect("stored");
        assert_eq!((stored.owner, stored.created_at), (Some(owner), at));
    }
    // Created strictly before: the first three.
    let before = CREATED + 2001;
    assert_eq!(s.list(before, None, 10).await.expect("list"), ids[..3]);
    assert_eq!(
        s.list(CREATED + 2000, None, 10).await.expect("list"),
        ids[..2]
    );
    assert!(s.list(CREATED, None, 10).await.expect("list").is_empty());
    // In pages of two, after the last id of the page before.
    let page = s.list(Millis::MAX, None, 2).await.expect("list");
    assert_eq!(page, ids[..2]);
    let page = s.list(Millis::MAX, Some(&page[1]), 2).await.expect("list");
    assert_eq!(page, ids[2..4]);
    let page = s.list(Millis::MAX, Some(&page[1]), 2).await.expect("list");
    assert_eq!(page, ids[4..]);
    assert!(s
        .list(Millis::MAX, Some(&ids[4]), 2)
        .await
        .expect("list")
        .is_empty());
    // A deleted blob is no longer listed; an upload under way never is.
    assert!(s.delete(&ids[0]).await.expect("delete"));
    let pending = MediaId::generate();
    let put = s.put(&pending, meta(), stalled_body(&sample(10, 1), 5), NO_LIMIT);
    let listed = tokio::select! {
        _ = put => panic!("a stalled upload finished"),
        listed = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            s.list(Millis::MAX, None, 10).await.expect("list")
        } => listed,
    };
    assert_eq!(listed, ids[1..]);
}
