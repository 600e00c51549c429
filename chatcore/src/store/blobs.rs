//! Blobs: opaque bytes (media, possibly encrypted by the client) stored and
//! served as streams, never held whole in memory by a store that can avoid
//! it. The server never reads what a blob holds.

use std::io;
use std::ops::Range;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;

use super::{StoreError, StoreResult};
use crate::model::{MediaId, Millis, UserId};

/// A stream of bytes: what [`BlobStore::put`] stores and what
/// [`BlobStore::get`] serves. An `Err` item ends it: on `put` nothing is
/// stored, on `get` the reader stops (the blob is unreadable or the store
/// went away mid-way).
pub type BlobBody = Pin<Box<dyn Stream<Item = Result<Bytes, io::Error>> + Send>>;

/// A stored blob's description.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobInfo {
    /// Bytes in the blob.
    pub size: u64,
    /// SHA-256 of the bytes, lowercase hex: computed by the store while
    /// writing, so that the HTTP layer can give it back to the uploader
    /// (who checks it) and use it as an `ETag`.
    pub sha256: String,
    /// When it was stored (server time), which the garbage collection of
    /// unreferenced blobs compares with its grace period.
    pub created_at: Millis,
    /// Who uploaded it: a message may list it only in a conversation of
    /// which this user is a member. `None` for a blob stored before owners
    /// were recorded, which belongs to nobody.
    pub owner: Option<UserId>,
}

impl BlobInfo {
    /// A description.
    pub fn new(size: u64, sha256: String, meta: BlobMeta) -> Self {
        Self {
            size,
            sha256,
            created_at: meta.created_at,
            owner: Some(meta.owner),
        }
    }
}

/// What the caller of [`BlobStore::put`] says of a new blob.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobMeta {
    /// The signed-in user uploading it.
    pub owner: UserId,
    /// Now, on the server's clock ([`crate::Config`]'s), so that tests of
    /// the collection's grace period move time instead of waiting.
    pub created_at: Millis,
}

impl BlobMeta {
    /// `owner` uploads a blob at `created_at`.
    pub fn new(owner: UserId, created_at: Millis) -> Self {
        Self { owner, created_at }
    }
}

/// Bytes `start..=end` of a blob, as an HTTP `Range: bytes=start-end`
/// names them; `end: None` reads to the end (`bytes=start-`). A suffix
/// range (`bytes=-N`) is `start = size - N` once the size is known
/// ([`BlobStore::info`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ByteRange {
    /// The first byte, counted from 0.
    pub start: u64,
    /// The last byte (inclusive), or `None` for the last of the blob.
    pub end: Option<u64>,
}

impl ByteRange {
    /// From `start` to the end of the blob.
    pub fn starting_at(start: u64) -> Self {
        Self { start, end: None }
    }

    /// Bytes `start` to `end`, both included.
    pub fn inclusive(start: u64, end: u64) -> Self {
        Self {
            start,
            end: Some(end),
        }
    }

    /// The bytes served from a blob of `size` bytes, as a half-open range,
    /// with HTTP's rules (RFC 9110, 14.1.2): an end past the blob is clamped
    /// to its last byte; a start at or past the end (every range of an empty
    /// blob) or after the end is [`StoreError::RangeNotSatisfiable`] (the
    /// HTTP layer answers `416`). Every store answers ranges through this,
    /// so they agree.
    pub fn resolve(&self, size: u64) -> StoreResult<Range<u64>> {
        let last = size.checked_sub(1);
        match (last, self.end) {
            (Some(last), end) if self.start <= last && end.is_none_or(|e| e >= self.start) => {
                let end = end.map_or(last, |e| e.min(last));
                Ok(self.start..end + 1)
            }
            _ => Err(StoreError::RangeNotSatisfiable { size }),
        }
    }
}

/// A blob being read: [`BlobStore::get`]'s answer.
#[non_exhaustive]
pub struct BlobRead {
    /// The whole blob's size, whatever the range (HTTP's `Content-Range:
    /// bytes a-b/size`).
    pub size: u64,
    /// The bytes `body` yields, half-open: `0..size` without a range; the
    /// resolved range otherwise ([`ByteRange::resolve`]).
    pub served: Range<u64>,
    /// The bytes. They may come in chunks of any size; together they are
    /// exactly `served.end - served.start` bytes, or the stream ends with an
    /// error.
    pub body: BlobBody,
}

impl BlobRead {
    /// A read of `served` out of a blob of `size` bytes.
    pub fn new(size: u64, served: Range<u64>, body: BlobBody) -> Self {
        Self { size, served, body }
    }
}

impl std::fmt::Debug for BlobRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobRead")
            .field("size", &self.size)
            .field("served", &self.served)
            .finish_non_exhaustive()
    }
}

/// Opaque blobs keyed by [`MediaId`], written once and never changed.
///
/// Atomic visibility: a blob is seen (by `get`, `info`, `delete` and a
/// second `put` of its id) only once `put` has written all of it and
/// returned `Ok`. A `put` that fails, or whose future is dropped before it
/// returns, leaves nothing visible and, once it has failed (or soon after
/// it was dropped), nothing stored: no temporary file, no chunk.
///
/// An id that is not [well formed](MediaId::is_well_formed) is never
/// stored (a filesystem store must not turn it into a path): `put` refuses
/// it with [`StoreError::Corrupt`] (a caller's bug: ids come from
/// [`MediaId::generate`] or [`MediaId::parse`]), and `get`, `info` and
/// `delete` answer as for a missing blob ([`check_media_id`]).
#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `body` as blob `id` and returns its size and SHA-256.
    ///
    /// Errors, after which nothing of this call is stored:
    /// - [`StoreError::Conflict`] (field `media`) when `id` exists already,
    ///   or another `put` of it finished first; the stored blob is untouched.
    /// - [`StoreError::TooLarge`] as soon as the body passes `max_bytes`
    ///   (without reading the rest).
    /// - [`StoreError::Full`] when the store has no room left.
    /// - [`StoreError::Interrupted`] when the body yields an error.
    /// - [`StoreError::Unavailable`] when the backend fails.
    ///
    /// Once `Ok` is returned the blob is durable as far as the backend's
    /// promise goes (fsynced, majority-acknowledged).
    async fn put(
        &self,
        id: &MediaId,
        meta: BlobMeta,
        body: BlobBody,
        max_bytes: u64,
    ) -> StoreResult<BlobInfo>;

    /// Reads blob `id`, all of it or the bytes `range` names (see
    /// [`ByteRange::resolve`]: an end past the blob is clamped, a start past
    /// it is [`StoreError::RangeNotSatisfiable`]). `Ok(None)` when there is
    /// no such blob. The body streams from the backend as it is read.
    async fn get(&self, id: &MediaId, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>>;

    /// The blob's size, SHA-256 and creation time, without reading it;
    /// `Ok(None)` when there is no such blob.
    async fn info(&self, id: &MediaId) -> StoreResult<Option<BlobInfo>>;

    /// Deletes blob `id`: `true` if it existed. Reads that started before
    /// may finish or end with an error; later reads find nothing.
    async fn delete(&self, id: &MediaId) -> StoreResult<bool>;

    /// The ids of up to `limit` blobs created before `created_before`
    /// (strictly), ascending by id, after `after` when given: the
    /// candidates of the garbage collection, paged. Uploads under way are
    /// not blobs yet and are never listed.
    async fn list(
        &self,
        created_before: Millis,
        after: Option<&MediaId>,
        limit: usize,
    ) -> StoreResult<Vec<MediaId>>;
}

/// `Ok` when `id` is [well formed](MediaId::is_well_formed), the error
/// [`BlobStore::put`] answers otherwise. Every store checks ids with this
/// before using them.
pub fn check_media_id(id: &MediaId) -> StoreResult<()> {
    if id.is_well_formed() {
        Ok(())
    } else {
        Err(StoreError::Corrupt(format!(
            "not a media id: {:?}",
            id.as_str()
        )))
    }
}

/// Counts and hashes a body's chunks as a store writes them, and stops it
/// at `max_bytes`: the part of [`BlobStore::put`] every store shares.
#[derive(Clone, Debug)]
pub struct BlobTally {
    size: u64,
    max: u64,
    hasher: sha2::Sha256,
}

impl BlobTally {
    /// Nothing counted yet; at most `max_bytes` allowed.
    pub fn new(max_bytes: u64) -> Self {
        Self {
            size: 0,
            max: max_bytes,
            hasher: sha2::Digest::new(),
        }
    }

    /// Counts `chunk`: [`StoreError::TooLarge`] when the body is now longer
    /// than allowed (the store drops what it wrote and reads no further).
    pub fn add(&mut self, chunk: &[u8]) -> StoreResult<()> {
        let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
        self.size = self.size.saturating_add(len);
        if self.size > self.max {
            return Err(StoreError::TooLarge { max: self.max });
        }
        sha2::Digest::update(&mut self.hasher, chunk);
        Ok(())
    }

    /// Bytes counted so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The description of the whole body, stored as `meta` says.
    pub fn finish(self, meta: BlobMeta) -> BlobInfo {
        let digest = sha2::Digest::finalize(self.hasher);
        BlobInfo::new(self.size, sha256_hex(&digest), meta)
    }
}

/// Bytes as lowercase hex.
pub(crate) fn sha256_hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(digest.len() * 2);
    for b in digest {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// The error `put` answers when its body yields `err`.
pub fn interrupted(err: &io::Error) -> StoreError {
    StoreError::Interrupted(err.to_string())
}
