//! Collection names and indexes.
//!
//! Every unique index is named `unique_<field>`, where `<field>` is what a
//! violation reports in `StoreError::Conflict { field }` (see
//! `error::conflict_field`). TTL indexes (`expireAfterSeconds: 0` on a Date)
//! only bound storage: the server deletes expired documents lazily, so every
//! read still checks expiry itself.

use std::time::Duration;

use mongodb::bson::{doc, Document};
use mongodb::options::IndexOptions;
use mongodb::IndexModel;

use crate::Inner;
use chatcore::store::{StoreError, StoreResult};

/// Accounts: `_id` is the user id.
pub(crate) const USERS: &str = "users";
/// Session tokens: `_id` is the token hash.
pub(crate) const SESSIONS: &str = "sessions";
/// Password-reset tokens: `_id` is the token hash.
pub(crate) const RESETS: &str = "reset_tokens";
/// Messages: `_id` is the message id.
pub(crate) const MESSAGES: &str = "messages";
/// One document per conversation: members and a cached head.
pub(crate) const CONVERSATIONS: &str = "conversations";
/// Delivery cursors, one document per (user, device, conversation).
pub(crate) const CURSORS: &str = "cursors";
/// Read markers, one document per (user, conversation).
pub(crate) const READ_MARKERS: &str = "read_markers";
/// Presence, one document per user.
pub(crate) const PRESENCE: &str = "presence";
/// Failed-login windows, one document per key.
pub(crate) const RATE_LIMITS: &str = "rate_limits";
/// Spent budgets (`RateLimiter::spend`), one document per key and fixed window.
pub(crate) const BUDGETS: &str = "budgets";
/// What the database is: one document, `_id: "schema"`, holding the
/// version of the layout that wrote it.
pub(crate) const META: &str = "meta";

/// The layout (collections, documents, indexes) this build reads and
/// writes. A database marked with a larger number was written by a newer
/// build: [`check_version`] refuses it. A change that an older build could
/// misread raises it, with a migration from the previous one in
/// [`check_version`] and a line in docs/MONGO.md.
pub const SCHEMA_VERSION: i64 = 1;

fn index(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(IndexOptions::builder().name(name.to_owned()).build())
        .build()
}

fn unique(keys: Document, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .name(name.to_owned())
                .unique(true)
                .build(),
        )
        .build()
}

fn ttl(field: &str) -> IndexModel {
    IndexModel::builder()
        .keys(doc! { field: 1 })
        .options(
            IndexOptions::builder()
                .name(format!("ttl_{field}"))
                .expire_after(Duration::ZERO)
                .build(),
        )
        .build()
}

/// Every collection with its indexes.
fn indexes() -> Vec<(&'static str, Vec<IndexModel>)> {
    vec![
        (
            USERS,
            vec![
                unique(doc! { "username_key": 1 }, "unique_username"),
                unique(doc! { "email_key": 1 }, "unique_email"),
                unique(doc! { "phone": 1 }, "unique_phone"),
                // Directory search by a prefix of any display-name word.
                index(doc! { "name_words": 1 }, "name_words"),
            ],
        ),
        (
            SESSIONS,
            vec![index(doc! { "user": 1 }, "user"), ttl("expires_at")],
        ),
        (
            RESETS,
            // revoke_user deletes a user's tokens at every password change.
            vec![index(doc! { "user": 1 }, "user"), ttl("expires_at")],
        ),
        (
            MESSAGES,
            vec![
                // The seq slot: claiming it is what appends a message. It
                // also serves history (walked backwards) and read_after.
                unique(doc! { "conv": 1, "seq": 1 }, "unique_seq"),
                // Idempotent retries: one message per sender and client id.
                unique(doc! { "from": 1, "client_id": 1 }, "unique_client_id"),
            ],
        ),
        (
            CONVERSATIONS,
            vec![index(
                doc! { "members": 1, "last_ts": -1 },
                "members_last_ts",
            )],
        ),
        (
            CURSORS,
            vec![unique(
                doc! { "user": 1, "device": 1, "conv": 1 },
                "unique_cursor",
            )],
        ),
        (
            READ_MARKERS,
            vec![unique(doc! { "user": 1, "conv": 1 }, "unique_read_marker")],
        ),
        (RATE_LIMITS, vec![ttl("expire_at")]),
        (BUDGETS, vec![ttl("expire_at")]),
    ]
}

/// Marks a new database with [`SCHEMA_VERSION`] and refuses one marked
/// with a newer version. A database written before the mark existed (the
/// same layout as version 1) is marked 1. Idempotent and safe for several
/// nodes at once: the mark is only ever set on insert.
pub(crate) async fn check_version(inner: &Inner) -> StoreResult<()> {
    let meta = inner.durable::<Document>(META);
    inner
        .run(
            meta.update_one(
                doc! { "_id": "schema" },
                doc! { "$setOnInsert": { "version": SCHEMA_VERSION } },
            )
            .upsert(true),
        )
        .await?;
    let mark = inner.run(meta.find_one(doc! { "_id": "schema" })).await?;
    let version = mark
        .as_ref()
        .and_then(|d| match d.get("version") {
            Some(mongodb::bson::Bson::Int64(v)) => Some(*v),
            Some(mongodb::bson::Bson::Int32(v)) => Some(i64::from(*v)),
            _ => None,
        })
        .ok_or_else(|| {
            StoreError::Corrupt(format!("{META}: the schema mark has no integer version"))
        })?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Incompatible(format!(
            "this database was written by a newer chatcore-mongo (schema version {version}; this \
             build knows {SCHEMA_VERSION} and older): upgrade chatd before serving it"
        )));
    }
    Ok(())
}

/// Creates every index; a no-op for those that exist with the same definition.
pub(crate) async fn ensure_indexes(inner: &Inner) -> StoreResult<()> {
    for (name, models) in indexes() {
        let coll = inner.durable::<Document>(name);
        inner.run(coll.create_indexes(models)).await?;
    }
    Ok(())
}
