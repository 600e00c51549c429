//! Blobs in memory, up to a fixed number of bytes.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use super::lock;
use crate::model::{MediaId, Millis};
use crate::store::{
    check_media_id, interrupted, BlobBody, BlobInfo, BlobMeta, BlobRead, BlobStore, BlobTally,
    ByteRange, StoreError, StoreResult,
};
use crate::IdMap;

/// Chunks a read is served in: a slice of the stored bytes each, no copy.
const READ_CHUNK: usize = 64 * 1024;

/// Blobs in memory: the reference of [`BlobStore`], bounded by a total
/// number of bytes (stored blobs plus uploads under way), beyond which a
/// `put` fails with [`StoreError::Full`] and stores nothing. Unlike the
/// other stores it holds each blob whole, in memory: that is its storage.
pub struct MemoryBlobStore {
    inner: Arc<Mutex<Inner>>,
    capacity: u64,
}

#[derive(Default)]
struct Inner {
    blobs: IdMap<MediaId, Held>,
    /// Bytes of stored blobs and of uploads under way (reserved as each
    /// chunk arrives, so concurrent uploads cannot overshoot together).
    used: u64,
}

struct Held {
    bytes: Bytes,
    info: BlobInfo,
}

impl MemoryBlobStore {
    /// The capacity of [`MemoryBlobStore::default`]: 256 MiB.
    pub const DEFAULT_CAPACITY: u64 = 256 * 1024 * 1024;

    /// An empty store that holds at most `capacity` bytes.
    pub fn new(capacity: u64) -> Self {
        Self {
            inner: Arc::default(),
            capacity,
        }
    }

    /// Bytes held now: stored blobs and uploads under way.
    pub fn used(&self) -> u64 {
        lock(&self.inner).used
    }
}

impl Default for MemoryBlobStore {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

/// Bytes an upload has reserved; given back when it fails or its future
/// is dropped, kept (as the stored blob's) once it is committed.
struct Reservation<'a> {
    inner: &'a Mutex<Inner>,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut s = lock(self.inner);
        s.used = s.used.saturating_sub(self.bytes);
    }
}

#[async_trait]
impl BlobStore for MemoryBlobStore {
    async fn put(
        &self,
        id: &MediaId,
        meta: BlobMeta,
        mut body: BlobBody,
        max_bytes: u64,
    ) -> StoreResult<BlobInfo> {
        check_media_id(id)?;
        let conflict = || StoreError::Conflict {
            field: "media".to_owned(),
        };
        if lock(&self.inner).blobs.contains_key(id) {
            return Err(conflict());
        }
        let mut reserved = Reservation {
            inner: &self.inner,
            bytes: 0,
        };
        let mut tally = BlobTally::new(max_bytes);
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| interrupted(&e))?;
            tally.add(&chunk)?;
            let len = u64::try_from(chunk.len()).unwrap_or(u64::MAX);
            {
                let mut s = lock(&self.inner);
                if s.used.saturating_add(len) > self.capacity {
                    return Err(StoreError::Full);
                }
                s.used += len;
                reserved.bytes += len;
            }
            buf.extend_from_slice(&chunk);
        }
        let info = tally.finish(meta);
        let mut s = lock(&self.inner);
        if s.blobs.contains_key(id) {
            return Err(conflict());
        }
        s.blobs.insert(
            id.clone(),
            Held {
                bytes: buf.freeze(),
                info: info.clone(),
            },
        );
        // The bytes are the stored blob's now: not given back on drop.
        reserved.bytes = 0;
        drop(s);
        Ok(info)
    }

    async fn get(&self, id: &MediaId, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>> {
        let bytes = match lock(&self.inner).blobs.get(id) {
            Some(held) => held.bytes.clone(),
            None => return Ok(None),
        };
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let served = match range {
            Some(r) => r.resolve(size)?,
            None => 0..size,
        };
        let (start, end) = (
            usize::try_from(served.start).unwrap_or(usize::MAX),
            usize::try_from(served.end).unwrap_or(usize::MAX),
        );
        let part = bytes.slice(start.min(bytes.len())..end.min(bytes.len()));
        let chunks = (0..part.len())
            .step_by(READ_CHUNK)
            .map(move |at| Ok(part.slice(at..(at + READ_CHUNK).min(part.len()))));
        let chunks: Vec<_> = chunks.collect();
        Ok(Some(BlobRead::new(
            size,
            served,
            Box::pin(futures_util::stream::iter(chunks)),
        )))
    }

    async fn info(&self, id: &MediaId) -> StoreResult<Option<BlobInfo>> {
        Ok(lock(&self.inner).blobs.get(id).map(|h| h.info.clone()))
    }

    async fn delete(&self, id: &MediaId) -> StoreResult<bool> {
        let mut s = lock(&self.inner);
        match s.blobs.remove(id) {
            Some(held) => {
                s.used = s.used.saturating_sub(held.info.size);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn list(
        &self,
        created_before: Millis,
        after: Option<&MediaId>,
        limit: usize,
    ) -> StoreResult<Vec<MediaId>> {
        let s = lock(&self.inner);
        let mut ids: Vec<MediaId> = s
            .blobs
            .iter()
            .filter(|(id, held)| {
                held.info.created_at < created_before && after.is_none_or(|a| *id > a)
            })
            .map(|(id, _)| id.clone())
            .collect();
        drop(s);
        ids.sort_unstable();
        ids.truncate(limit);
        Ok(ids)
    }
}
