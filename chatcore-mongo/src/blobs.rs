//! [`MongoBlobStore`]: media in the GridFS layout, bucket `media`
//! (`media.files`, `media.chunks`), readable by any GridFS tool.
//!
//! Each upload gets a fresh ObjectId as its GridFS `_id`; the media id is
//! the file's `filename`, unique by the index `unique_media`. The media id
//! is never the GridFS `_id`: a second upload of an existing id would then
//! write chunks under the first one's `_id`, and the clean-up of that
//! failed upload would delete the first blob's chunks.
//!
//! Atomic visibility: the chunks (255 KiB each, journaled and majority
//! acknowledged) are written first, the `media.files` document last, with
//! the SHA-256 in `metadata.sha256`; reads look a blob up by its files
//! document only. The metadata also holds the uploader (`metadata.owner`,
//! absent on files stored before schema 8) and when the blob was stored on
//! the caller's clock (`metadata.created_at`, milliseconds; `uploadDate`
//! is the same instant), which [`BlobStore::list`] filters on: the
//! server's clock, not the driver's, so that tests can move time. An upload that fails (body error, `max_bytes`, a lost
//! race for the id) deletes its chunks before `put` returns; one whose
//! future is dropped has them deleted by a task spawned from the drop. What
//! a crash leaves (chunks without a files document) is never visible, and
//! is for the garbage collection of media to remove (docs/MONGO.md).
//!
//! Why not the driver's `GridFsBucket` upload stream: it writes the files
//! document when the stream is closed, with metadata given when it is
//! opened, before the SHA-256 is known (a later update would need a second
//! visibility rule); and on an empty bucket it issues `create`, which
//! jongodb, the test server, lacks. The layout is the same, so the
//! driver's bucket (`database().gridfs_bucket(..)` named `media`) reads
//! what this store writes.
//!
//! Ranges read only the chunks they need (`n` from `start / chunkSize`),
//! where the driver's download stream always starts at the first chunk.

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::{stream, StreamExt, TryStreamExt};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{doc, oid::ObjectId, Binary, Bson, DateTime, Document};
use mongodb::Collection;

use chatcore::model::{MediaId, Millis, UserId};

/// Bytes per chunk: GridFS's default (255 KiB), which keeps a chunk and its
/// document under 256 KiB.
const CHUNK_SIZE: usize = 255 * 1024;
const CHUNK_SIZE_I32: i32 = 255 * 1024;
use chatcore::store::{
    check_media_id, interrupted, BlobBody, BlobInfo, BlobMeta, BlobRead, BlobStore, BlobTally,
    ByteRange, StoreError, StoreResult,
};

use crate::schema::{MEDIA_CHUNKS, MEDIA_FILES};
use crate::Inner;

/// Media in GridFS. Cheap to clone.
#[derive(Clone)]
pub struct MongoBlobStore {
    inner: Arc<Inner>,
    files: Collection<Document>,
    chunks: Collection<Document>,
}

impl MongoBlobStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            files: inner.durable(MEDIA_FILES),
            chunks: inner.durable(MEDIA_CHUNKS),
            inner,
        }
    }

    /// The stored (complete) file of blob `id`.
    async fn file(&self, id: &MediaId) -> StoreResult<Option<File>> {
        if check_media_id(id).is_err() {
            return Ok(None);
        }
        let found =
            self.inner
                .run(self.files.find_one(
                    doc! { "filename": id.as_str(), "metadata.sha256": { "$exists": true } },
                ))
                .await?;
        found.map(|d| File::read(&d, id)).transpose()
    }

    /// Writes `body` as chunks of file `file_id`, then its files document
    /// (what makes it visible).
    async fn write(
        &self,
        id: &MediaId,
        file_id: ObjectId,
        meta: BlobMeta,
        mut body: BlobBody,
        max_bytes: u64,
    ) -> StoreResult<BlobInfo> {
        let mut tally = BlobTally::new(max_bytes);
        let mut buf = Vec::with_capacity(CHUNK_SIZE);
        let mut n: i64 = 0;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| interrupted(&e))?;
            tally.add(&chunk)?;
            let mut rest = &chunk[..];
            while !rest.is_empty() {
                let take = (CHUNK_SIZE - buf.len()).min(rest.len());
                buf.extend_from_slice(&rest[..take]);
                rest = &rest[take..];
                if buf.len() == CHUNK_SIZE {
                    let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK_SIZE));
                    self.insert_chunk(file_id, n, full).await?;
                    n += 1;
                }
            }
        }
        if !buf.is_empty() {
            self.insert_chunk(file_id, n, buf).await?;
        }
        let owner = meta.owner.0.clone();
        let info = tally.finish(meta);
        let file = doc! {
            "_id": file_id,
            "length": i64::try_from(info.size).unwrap_or(i64::MAX),
            "chunkSize": CHUNK_SIZE_I32,
            "uploadDate": DateTime::from_millis(info.created_at),
            "filename": id.as_str(),
            "metadata": {
                "sha256": &info.sha256,
                "owner": owner,
                "created_at": info.created_at,
            },
        };
        self.inner.run(self.files.insert_one(file)).await?;
        Ok(info)
    }

    async fn insert_chunk(&self, file_id: ObjectId, n: i64, data: Vec<u8>) -> StoreResult<()> {
        let chunk = doc! {
            "_id": ObjectId::new(),
            "files_id": file_id,
            "n": n,
            "data": Binary { subtype: BinarySubtype::Generic, bytes: data },
        };
        self.inner
            .run(self.chunks.insert_one(chunk))
            .await
            .map(|_| ())
    }
}

/// Deletes an unfinished upload's chunks if the `put` future is dropped
/// before it finished (a drop cannot await: the deletion is spawned).
struct Unfinished {
    chunks: Collection<Document>,
    file_id: Option<ObjectId>,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        let Some(file_id) = self.file_id.take() else {
            return;
        };
        let chunks = self.chunks.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = chunks.delete_many(doc! { "files_id": file_id }).await {
                        tracing::warn!(error = %e, "cannot delete a dropped upload's chunks");
                    }
                });
            }
            Err(_) => {
                tracing::warn!("a dropped upload's chunks are left for the garbage collection")
            }
        }
    }
}

/// A complete file's description.
struct File {
    id: Bson,
    length: u64,
    chunk_size: u64,
    info: BlobInfo,
}

impl File {
    fn read(d: &Document, media: &MediaId) -> StoreResult<Self> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("media file {media}: {what}"));
        let id = d.get("_id").cloned().ok_or_else(|| corrupt("no _id"))?;
        let int = |key: &str| match d.get(key) {
            Some(Bson::Int64(v)) => u64::try_from(*v).ok(),
            Some(Bson::Int32(v)) => u64::try_from(*v).ok(),
            Some(Bson::Double(v)) if v.fract() == 0.0 && *v >= 0.0 => Some(*v as u64),
            _ => None,
        };
        let length = int("length").ok_or_else(|| corrupt("bad length"))?;
        let chunk_size = int("chunkSize")
            .filter(|c| *c > 0)
            .ok_or_else(|| corrupt("bad chunkSize"))?;
        let metadata = d
            .get_document("metadata")
            .map_err(|_| corrupt("no metadata"))?;
        let sha256 = metadata
            .get_str("sha256")
            .map_err(|_| corrupt("bad metadata.sha256"))?
            .to_owned();
        // Schema 8's time, or the upload date of a file from before it
        // that the migration has not reached.
        let created_at: Millis = match metadata.get("created_at") {
            Some(Bson::Int64(v)) => *v,
            Some(Bson::Int32(v)) => i64::from(*v),
            Some(_) => return Err(corrupt("bad metadata.created_at")),
            None => d
                .get_datetime("uploadDate")
                .map_err(|_| corrupt("bad uploadDate"))?
                .timestamp_millis(),
        };
        let owner = match metadata.get("owner") {
            Some(Bson::String(o)) => Some(UserId::from(o.as_str())),
            None | Some(Bson::Null) => None,
            Some(_) => return Err(corrupt("bad metadata.owner")),
        };
        let mut info = BlobInfo::new(length, sha256, BlobMeta::new(UserId::from(""), created_at));
        info.owner = owner;
        Ok(Self {
            id,
            length,
            chunk_size,
            info,
        })
    }
}

#[async_trait]
impl BlobStore for MongoBlobStore {
    async fn put(
        &self,
        id: &MediaId,
        meta: BlobMeta,
        body: BlobBody,
        max_bytes: u64,
    ) -> StoreResult<BlobInfo> {
        check_media_id(id)?;
        let conflict = || StoreError::Conflict {
            field: "media".to_owned(),
        };
        // Any document of the id, complete or not, holds the unique name.
        let exists = self
            .inner
            .run(self.files.find_one(doc! { "filename": id.as_str() }))
            .await?;
        if exists.is_some() {
            return Err(conflict());
        }
        let file_id = ObjectId::new();
        let mut unfinished = Unfinished {
            chunks: self.chunks.clone(),
            file_id: Some(file_id),
        };
        let written = self.write(id, file_id, meta, body, max_bytes).await;
        if written.is_err() {
            // Deletes the chunks written so far before answering; the files
            // document was not written (or was refused: a concurrent put of
            // the id won the unique name). A failed deletion leaves orphan
            // chunks, invisible, for the garbage collection.
            let cleaned = self
                .inner
                .run(self.chunks.delete_many(doc! { "files_id": file_id }))
                .await;
            if let Err(e) = cleaned {
                tracing::warn!(error = %e, media = %id, "cannot delete an aborted upload's chunks");
            }
        }
        unfinished.file_id = None;
        written
    }

    async fn get(&self, id: &MediaId, range: Option<ByteRange>) -> StoreResult<Option<BlobRead>> {
        let Some(file) = self.file(id).await? else {
            return Ok(None);
        };
        let served = match range {
            Some(r) => r.resolve(file.length)?,
            None => 0..file.length,
        };
        if served.is_empty() {
            return Ok(Some(BlobRead::new(
                file.length,
                served,
                Box::pin(stream::empty()),
            )));
        }
        let first = served.start / file.chunk_size;
        let last = (served.end - 1) / file.chunk_size;
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let cursor = self
            .inner
            .run(
                self.chunks
                    .find(doc! { "files_id": &file.id, "n": { "$gte": to_i64(first), "$lte": to_i64(last) } })
                    .sort(doc! { "n": 1 }),
            )
            .await?;
        let (start, end, size, length) = (served.start, served.end, file.chunk_size, file.length);
        let media = id.clone();
        let body = stream::unfold((cursor, first, false), move |(mut cursor, n, done)| {
            let media = media.clone();
            async move {
                if done {
                    return None;
                }
                let corrupt = |what: String| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("media {media}: {what}"))
                };
                let next = match cursor.try_next().await {
                    Ok(next) => next,
                    Err(e) => return Some((Err(io::Error::other(e)), (cursor, n, true))),
                };
                let Some(chunk) = next else {
                    return if n > last {
                        None
                    } else {
                        Some((
                            Err(corrupt(format!("chunk {n} is missing"))),
                            (cursor, n, true),
                        ))
                    };
                };
                let data = match chunk_bytes(chunk, n) {
                    Some(d) => d,
                    None => {
                        return Some((
                            Err(corrupt(format!("chunk {n} is missing or malformed"))),
                            (cursor, n, true),
                        ))
                    }
                };
                let at = n * size;
                let want = size.min(length - at);
                if u64::try_from(data.len()).ok() != Some(want) {
                    return Some((
                        Err(corrupt(format!("chunk {n} has the wrong length"))),
                        (cursor, n, true),
                    ));
                }
                let from = usize::try_from(start.saturating_sub(at)).unwrap_or(0);
                let to = usize::try_from(end.min(at + want) - at).unwrap_or(0);
                let part = Bytes::from(data).slice(from..to);
                Some((Ok(part), (cursor, n + 1, false)))
            }
        });
        Ok(Some(BlobRead::new(file.length, served, Box::pin(body))))
    }

    async fn info(&self, id: &MediaId) -> StoreResult<Option<BlobInfo>> {
        Ok(self.file(id).await?.map(|f| f.info))
    }

    async fn delete(&self, id: &MediaId) -> StoreResult<bool> {
        let Some(file) = self.file(id).await? else {
            return Ok(false);
        };
        // The files document first (GridFS's order), so that no read finds
        // a file whose chunks are half gone; then its chunks.
        let deleted = self
            .inner
            .run(self.files.delete_one(doc! { "_id": &file.id }))
            .await?;
        self.inner
            .run(self.chunks.delete_many(doc! { "files_id": &file.id }))
            .await?;
        // 0: deleted by a concurrent call in between.
        Ok(deleted.deleted_count > 0)
    }

    async fn list(
        &self,
        created_before: Millis,
        after: Option<&MediaId>,
        limit: usize,
    ) -> StoreResult<Vec<MediaId>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // Complete files only (an upload under way has no files document
        // yet, and the document is written with its `metadata.sha256`), by
        // media id on `filename_created_at`, the time read from the index.
        let mut filter = doc! {
            "metadata.sha256": { "$exists": true },
            "metadata.created_at": { "$lt": created_before },
        };
        if let Some(after) = after {
            filter.insert("filename", doc! { "$gt": after.as_str() });
        }
        let cursor = self
            .inner
            .run(
                self.files
                    .find(filter)
                    .sort(doc! { "filename": 1 })
                    .projection(doc! { "_id": 0, "filename": 1 })
                    .limit(i64::try_from(limit).unwrap_or(i64::MAX)),
            )
            .await?;
        let found: Vec<Document> = self.inner.run(cursor.try_collect()).await?;
        found
            .iter()
            .map(|d| {
                d.get_str("filename")
                    .map(MediaId::from)
                    .map_err(|_| StoreError::Corrupt(format!("{MEDIA_FILES}: no filename: {d}")))
            })
            .collect()
    }
}

/// The bytes of chunk document `chunk`, if it is chunk `n`.
fn chunk_bytes(mut chunk: Document, n: u64) -> Option<Vec<u8>> {
    let got = match chunk.get("n")? {
        Bson::Int32(v) => u64::try_from(*v).ok()?,
        Bson::Int64(v) => u64::try_from(*v).ok()?,
        _ => return None,
    };
    if got != n {
        return None;
    }
    match chunk.remove("data")? {
        Bson::Binary(b) => Some(b.bytes),
        _ => None,
    }
}
