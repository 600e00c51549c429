//! Migrations from older schema versions, run at start by
//! [`crate::schema::check_version`] before the database is marked with the
//! current version. Each is idempotent: it rewrites only documents still
//! in the old layout, so nodes starting at once, or a start that died
//! half-way and runs again, do no harm.

use std::future::IntoFuture;

use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};

use chatcore::store::{StoreError, StoreResult};

use crate::records::{bson_of, InfoDoc, KindDoc, MemberDoc, RoleDoc, CONV_LAYOUT};
use crate::schema::{CONVERSATIONS, MEDIA_FILES, MESSAGES};
use crate::Inner;

/// Brings a database written by schema version `from` to the current one.
pub(crate) async fn run(inner: &Inner, from: i64) -> StoreResult<()> {
    if from < 2 {
        v1_to_v2(inner).await?;
    }
    // 2 -> 3 (contacts, blocks, privacy) rewrites nothing: conversations
    // without `blocked` block nobody, users without `privacy` have the
    // default, and `contacts` starts empty. Nor does 3 -> 4 (requests,
    // invitations, reports): conversations without `pending` wait for
    // nobody, relations without `unaccepted` hide nothing, privacy without
    // `groups` admits everyone, and `reports` starts empty. Nor does 4 -> 5
    // (encrypted conversations, master keys): conversations without
    // `encrypted` are not, device keys without `master` are not signed,
    // and `master_keys` starts empty. Nor does 5 -> 6 (receipts): privacy
    // without `read_receipts` shares them, and `receipts` starts empty. Nor
    // does 6 -> 7 (a message's life): entries without `rel`, `mentions` or
    // `expires_at` relate to nothing, mention nobody and never expire, and
    // conversations without `expire_after` have no timer; the new indexes
    // are created at start by `ensure_indexes`, like every index.
    if from < 8 {
        v7_to_v8(inner).await?;
    }
    Ok(())
}

/// Schema 8 keeps, in the `metadata` of each blob's files document, when
/// it was stored (`created_at`, milliseconds on the server's clock), which
/// `BlobStore::list` filters on. Files stored before get their
/// `uploadDate`; their uploader (`owner`) stays unknown. Only files
/// without the field are rewritten, each to the same value: idempotent.
/// Unfinished uploads have no files document and need nothing.
async fn v7_to_v8(inner: &Inner) -> StoreResult<()> {
    let files = inner.durable::<Document>(MEDIA_FILES);
    let old = doc! { "metadata.created_at": { "$exists": false } };
    let mut cursor = inner
        .run(
            files
                .find(old)
                .projection(doc! { "_id": 1, "uploadDate": 1 }),
        )
        .await?;
    let mut migrated = 0_u64;
    while let Some(d) = inner.run(cursor.try_next()).await? {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("{MEDIA_FILES} (schema 7): {what}: {d}"));
        let id = d.get("_id").cloned().ok_or_else(|| corrupt("no _id"))?;
        let at = d
            .get_datetime("uploadDate")
            .map_err(|_| corrupt("no uploadDate"))?
            .timestamp_millis();
        inner
            .run(files.update_one(
                doc! { "_id": id, "metadata.created_at": { "$exists": false } },
                doc! { "$set": { "metadata.created_at": at } },
            ))
            .await?;
        migrated += 1;
    }
    if migrated > 0 {
        tracing::info!(migrated, "media files migrated from schema 7 to 8");
    }
    Ok(())
}

/// Schema 1 kept, per direct conversation, `{_id: "dm:<a>:<b>", members:
/// [a, b], last_seq, last_ts}` (a head cache that could lag the messages).
/// Schema 2 documents are conversations of their own ([`crate::records::ConvDoc`]):
/// each old one becomes a direct conversation with the same `_id` (ids are
/// opaque now, so its messages, cursors and read markers stay valid), its
/// members as records joined at seq 0, version 0, no invite, and its head
/// taken from the messages themselves. The old list index is dropped.
async fn v1_to_v2(inner: &Inner) -> StoreResult<()> {
    let convs = inner.durable::<Document>(CONVERSATIONS);
    let messages = inner.durable::<Document>(MESSAGES);
    let old = doc! { "v": { "$exists": false } };
    let mut cursor = inner.run(convs.find(old.clone())).await?;
    let mut migrated = 0_u64;
    while let Some(d) = inner.run(cursor.try_next()).await? {
        let corrupt =
            |what: &str| StoreError::Corrupt(format!("{CONVERSATIONS} (schema 1): {what}: {d}"));
        let id = d
            .get_str("_id")
            .map_err(|_| corrupt("no string _id"))?
            .to_owned();
        let members: Vec<String> = d
            .get_array("members")
            .map_err(|_| corrupt("no members"))?
            .iter()
            .map(|m| {
                m.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| corrupt("a member is not a user id"))
            })
            .collect::<StoreResult<_>>()?;
        let int = |key: &str| match d.get(key) {
            Some(Bson::Int64(v)) => *v,
            Some(Bson::Int32(v)) => i64::from(*v),
            _ => 0,
        };
        // The messages are the truth (schema 1's head could lag them).
        let first = inner
            .run(
                messages
                    .find_one(doc! { "conv": &id })
                    .sort(doc! { "seq": 1 }),
            )
            .await?;
        let newest = inner
            .run(
                messages
                    .find_one(doc! { "conv": &id })
                    .sort(doc! { "seq": -1 }),
            )
            .await?;
        let field = |m: &Option<Document>, key: &str| {
            m.as_ref().and_then(|m| match m.get(key) {
                Some(Bson::Int64(v)) => Some(*v),
                Some(Bson::Int32(v)) => Some(i64::from(*v)),
                _ => None,
            })
        };
        let last_seq = int("last_seq").max(field(&newest, "seq").unwrap_or(0));
        let last_ts = int("last_ts").max(field(&newest, "ts").unwrap_or(0));
        let created_at = field(&first, "ts").unwrap_or(last_ts);
        let members: Vec<MemberDoc> = members
            .into_iter()
            .map(|user| MemberDoc {
                user,
                role: RoleDoc::Member,
                joined_seq: 0,
                joined_at: created_at,
                left_seq: None,
                muted_until: None,
            })
            .collect();
        inner
            .run(convs.update_one(
                doc! { "_id": &id, "v": { "$exists": false } },
                doc! { "$set": {
                    "v": CONV_LAYOUT,
                    "kind": bson_of(&KindDoc::Direct)?,
                    "created_at": created_at,
                    "info": bson_of(&InfoDoc::default())?,
                    "members": bson_of(&members)?,
                    "last_seq": last_seq,
                    "last_ts": last_ts,
                    "version": 0_i64,
                    "invite": Bson::Null,
                } },
            ))
            .await?;
        migrated += 1;
    }
    // Schema 1's list index, on the member ids themselves. Best effort:
    // absent on a new database, and jongodb has no dropIndexes.
    // Called on the driver directly: the failure is expected, not logged
    // as an error.
    let drop = inner
        .db
        .run_command(doc! { "dropIndexes": CONVERSATIONS, "index": "members_last_ts" });
    match tokio::time::timeout(inner.op_timeout, drop.into_future()).await {
        Ok(Ok(_)) => tracing::info!("schema 1's members_last_ts index dropped"),
        Ok(Err(e)) => tracing::debug!(error = %e, "schema 1's members_last_ts index not dropped"),
        Err(_) => tracing::debug!("schema 1's members_last_ts index: no answer"),
    }
    if migrated > 0 {
        tracing::info!(migrated, "conversations migrated from schema 1 to 2");
    }
    Ok(())
}
