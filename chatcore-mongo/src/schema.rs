//! Collection names and indexes.
//!
//! Every unique index is named `unique_<field>`, where `<field>` is what a
//! violation reports in `StoreError::Conflict { field }` (see
//! `error::conflict_field`). TTL indexes (`expireAfterSeconds: 0` on a Date)
//! only bound storage: the server deletes expired documents lazily, so every
//! read still checks expiry itself.

use std::time::Duration;

use mongodb::bson::{doc, Bson, Document};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};

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
/// One document per conversation: kind, settings, members, head, version.
pub(crate) const CONVERSATIONS: &str = "conversations";
/// Delivery cursors, one document per (user, device, conversation).
pub(crate) const CURSORS: &str = "cursors";
/// Read markers, one document per (user, conversation).
pub(crate) const READ_MARKERS: &str = "read_markers";
/// Delivery and read receipts, one document per (conversation, member).
pub(crate) const RECEIPTS: &str = "receipts";
/// Presence, one document per user.
pub(crate) const PRESENCE: &str = "presence";
/// Failed-login windows, one document per key.
pub(crate) const RATE_LIMITS: &str = "rate_limits";
/// Spent budgets (`RateLimiter::spend`), one document per key and fixed window.
pub(crate) const BUDGETS: &str = "budgets";
/// Contacts, requests and blocks, one document per pair of users: `_id`
/// is the pair's key.
pub(crate) const CONTACTS: &str = "contacts";
/// Users' reports of users, one document per reporter and reported user:
/// `_id` is the report's key.
pub(crate) const REPORTS: &str = "reports";
/// Each device's identity keys: `_id` is `<user>|<device>`.
pub(crate) const DEVICE_KEYS: &str = "device_keys";
/// One-time keys, one document each (`claimed` once handed out):
/// `_id` is `<user>|<device>|<key id>`.
pub(crate) const ONE_TIME_KEYS: &str = "one_time_keys";
/// Per device: the bound's counter of one-time keys waiting (`n`), and
/// the fallback key. `_id` is `<user>|<device>`.
pub(crate) const KEY_COUNTS: &str = "key_counts";
/// Each user's master signing key: `_id` is the user.
pub(crate) const MASTER_KEYS: &str = "master_keys";
/// To-device payloads waiting for their target device.
pub(crate) const TO_DEVICE: &str = "to_device";
/// Per target device: the bound's counter of payloads waiting (`n`).
pub(crate) const TO_DEVICE_COUNTS: &str = "to_device_counts";
/// Each user's current key backup: `_id` is the user.
pub(crate) const BACKUPS: &str = "backups";
/// The keys of the backups: `_id` is `<user>|<version>|<conv>|<session>`.
pub(crate) const BACKUP_KEYS: &str = "backup_keys";
/// The GridFS bucket `media` of [`crate::MongoBlobStore`]: its files: one document per stored blob, `filename` the media id.
pub(crate) const MEDIA_FILES: &str = "media.files";
/// The bucket's chunks: `files_id`, `n`, `data`.
pub(crate) const MEDIA_CHUNKS: &str = "media.chunks";
/// The calls going on, one document per call: `_id` is the call's id.
pub(crate) const CALLS: &str = "calls";
/// Each user in a call (their claim): `_id` is the user, so one call per
/// user.
pub(crate) const CALL_USERS: &str = "call_users";
/// What the database is: one document, `_id: "schema"`, holding the
/// version of the layout that wrote it.
pub(crate) const META: &str = "meta";

/// Every collection this store writes, for tools and tests that look at
/// all of the data (e.g. to prove that no plaintext of an encrypted
/// conversation is stored): listing them from the server is not possible
/// on every MongoDB-compatible server.
pub const COLLECTIONS: &[&str] = &[
    USERS,
    SESSIONS,
    RESETS,
    MESSAGES,
    CONVERSATIONS,
    CURSORS,
    READ_MARKERS,
    RECEIPTS,
    PRESENCE,
    RATE_LIMITS,
    BUDGETS,
    CONTACTS,
    REPORTS,
    DEVICE_KEYS,
    ONE_TIME_KEYS,
    KEY_COUNTS,
    MASTER_KEYS,
    TO_DEVICE,
    TO_DEVICE_COUNTS,
    BACKUPS,
    BACKUP_KEYS,
    MEDIA_FILES,
    MEDIA_CHUNKS,
    CALLS,
    CALL_USERS,
    META,
];

/// The layout (collections, documents, indexes) this build reads and
/// writes. A database marked with a larger number was written by a newer
/// build: `check_version` refuses it. A change that an older build could
/// misread raises it, with a migration from the previous one in
/// `check_version` and a line in docs/MONGO.md.
///
/// - 1: direct conversations only, `conversations` a head cache.
/// - 2: conversations are stored things (kind, settings, member records,
///   versions, invites, the head entry); see `migrate.rs`.
/// - 3: contacts and blocks: the `contacts` collection, `blocked` on
///   conversations, `privacy` on users. Nothing is rewritten (a missing
///   field reads as nobody blocked, default privacy); the mark keeps a
///   build that would ignore blocks and privacy off the database.
/// - 4: message requests and group invitations: `pending` on
///   conversations, `unaccepted` on relations, `groups` in privacy, the
///   `reports` collection. Nothing is rewritten (a missing field reads as
///   nothing pending, everyone); the mark keeps a build that would list
///   requests as chats, and let invitees be ignored, off the database.
///   The key directory's collections (`device_keys`, `one_time_keys`,
///   `key_counts`) and the to-device queues (`to_device`,
///   `to_device_counts`) start empty.
/// - 5: end-to-end encryption: `encrypted` on conversations, `master` on
///   device keys, the `master_keys` collection. Nothing is rewritten (a
///   missing field reads as not encrypted, not signed); the mark keeps a
///   build that would take plain text into an encrypted conversation off
///   the database. The key backups (`backups`, `backup_keys`) came later
///   within schema 5: they start empty, and a build without them reads
///   nothing else differently.
/// - 6: delivery and read receipts: the `receipts` collection (one document
///   per conversation and member, starting empty: a member's receipt
///   appears at its first ack or read), `read_receipts` in privacy.
///   Nothing is rewritten (privacy without `read_receipts` shares them);
///   the mark keeps a build that would drop a user's `read_receipts: false`
///   at its next privacy change, and acknowledge without raising receipts,
///   off the database.
/// - 7: a message's life: `rel` (`{kind, target}`), `mentions` and
///   `expires_at` on entries, `notice` on edits, reactions and deletions
///   too, `expire_after` and `deleting` on conversations; the indexes
///   `conv_rel_target` and `expires_at` on messages. Nothing is rewritten
///   (an entry without them relates to nothing, mentions nobody, never
///   expires; a conversation without them has no timer and no deletion
///   under way); the indexes are created at start like every other. The
///   mark keeps a build that would count edits and reactions as unread,
///   show deleted or expired contents, and drop a conversation's timer at
///   its next change, off the database. Media (the GridFS bucket `media`:
///   `media.files`, `media.chunks`) came later within schema 7: they start
///   empty, and a build without them reads nothing else differently.
/// - 8: the garbage collection of unreferenced media: a blob's files
///   document holds its uploader (`metadata.owner`) and when it was stored
///   on the server's clock (`metadata.created_at`, milliseconds, which
///   `uploadDate` now equals too); the indexes `media` on messages,
///   `avatar` on users, `info_avatar` on conversations and
///   `filename_created_at` on `media.files`. The migration copies
///   `uploadDate` into `metadata.created_at` of the files stored before
///   (their owner stays unknown). The mark keeps a build that would store
///   blobs without a time, which the collection would never list, off the
///   database. The calls going on (`calls`, `call_users`) came later
///   within schema 8: they start empty, and a build without them reads
///   nothing else differently.
pub const SCHEMA_VERSION: i64 = 8;

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

/// An index of the documents where `field` exists only.
fn partial(keys: Document, field: &str, name: &str) -> IndexModel {
    IndexModel::builder()
        .keys(keys)
        .options(
            IndexOptions::builder()
                .name(name.to_owned())
                .partial_filter_expression(doc! { field: { "$exists": true } })
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
                // Which files are users' avatars (`avatars_in_use`).
                index(doc! { "avatar": 1 }, "avatar"),
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
                // The edits, reactions and deletions of a page of targets
                // (`related`), and a deletion's edits and reactions: only
                // the entries that point at something.
                partial(
                    doc! { "conv": 1, "rel.target": 1 },
                    "rel.target",
                    "conv_rel_target",
                ),
                // What is due to expire, oldest first (`expire`): only the
                // entries that still expire. Not a TTL index: the entry
                // stays, without its content.
                partial(doc! { "expires_at": 1 }, "expires_at", "expires_at"),
                // Which files live entries list (`media_in_use`): multikey,
                // only the entries that list some (a tombstone unsets it).
                partial(doc! { "media": 1 }, "media", "media"),
            ],
        ),
        (
            CONVERSATIONS,
            vec![
                // A user's conversations, newest activity first, ties by id:
                // the paged list, past members included.
                index(
                    doc! { "members.user": 1, "last_ts": -1, "_id": 1 },
                    "members_user_last_ts",
                ),
                // Joining by invite link: the token's hash.
                index(doc! { "invite": 1 }, "invite"),
                // Which files are groups' avatars (`media_in_use`).
                index(doc! { "info.avatar": 1 }, "info_avatar"),
                // A user's requests list: what waits for their answer.
                index(
                    doc! { "pending.user": 1, "last_ts": -1, "_id": 1 },
                    "pending_user_last_ts",
                ),
            ],
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
        (
            RECEIPTS,
            // A member's receipt (the raise's compare-and-swap), and a
            // conversation's receipts in user order (`receipts`).
            vec![unique(doc! { "conv": 1, "user": 1 }, "unique_receipt")],
        ),
        (
            CONTACTS,
            vec![
                // Every listing: `{listed: "<view>:<user>", _id > after}`
                // sorted by `_id`, an exact range (multikey on `listed`).
                index(doc! { "listed": 1, "_id": 1 }, "listed_key"),
                // A user's pairs in key order: the listing of a view that
                // has no tag yet, and whatever needs all of a user's pairs.
                index(doc! { "users": 1, "_id": 1 }, "users_key"),
            ],
        ),
        (REPORTS, vec![index(doc! { "at": -1, "_id": 1 }, "at_key")]),
        (
            DEVICE_KEYS,
            vec![index(doc! { "user": 1, "device": 1 }, "user_device")],
        ),
        (
            ONE_TIME_KEYS,
            // A device's unclaimed keys: what a claim reads.
            vec![index(
                doc! { "user": 1, "device": 1, "claimed": 1 },
                "user_device_claimed",
            )],
        ),
        (
            TO_DEVICE,
            // A device's queue, in arrival order.
            vec![index(
                doc! { "to_user": 1, "to_device": 1, "order": 1 },
                "target_order",
            )],
        ),
        (
            MEDIA_FILES,
            vec![
                // One file per media id: a second upload of an id fails
                // when its files document is written.
                unique(doc! { "filename": 1 }, "unique_media"),
                // GridFS's own index, made here so the driver need not.
                index(
                    doc! { "filename": 1, "uploadDate": 1 },
                    "filename_upload_date",
                ),
                // The collection's candidates (`list`): by media id, with
                // the time each was stored, read from the index alone.
                index(
                    doc! { "filename": 1, "metadata.created_at": 1 },
                    "filename_created_at",
                ),
            ],
        ),
        (
            MEDIA_CHUNKS,
            // GridFS's: a file's chunks in order, each once.
            vec![unique(doc! { "files_id": 1, "n": 1 }, "unique_chunk")],
        ),
        (
            BACKUP_KEYS,
            // A backup's keys in page order; the user's keys of old versions.
            vec![index(
                doc! { "user": 1, "version": 1, "conv": 1, "session": 1 },
                "user_version_conv_session",
            )],
        ),
        (RATE_LIMITS, vec![ttl("expire_at")]),
        (BUDGETS, vec![ttl("expire_at")]),
        (
            CALLS,
            // The calls oldest first (`due`).
            vec![index(doc! { "started_at": 1, "_id": 1 }, "started_at_id")],
        ),
    ]
}

/// Reads the database's schema mark: refuses a database marked with a
/// newer version; migrates one marked with an older version, or not marked
/// (a database from before the mark has the version-1 layout; a new one has
/// nothing to migrate), then marks it with [`SCHEMA_VERSION`]. Idempotent
/// and safe for several nodes at once: every migration rewrites only
/// documents still in the old layout, and the mark only ever rises.
pub(crate) async fn check_version(inner: &Inner) -> StoreResult<()> {
    let meta = inner.durable::<Document>(META);
    let version = read_mark(inner, &meta).await?;
    if let Some(v) = version.filter(|v| *v >= SCHEMA_VERSION) {
        return refuse_newer(v);
    }
    crate::migrate::run(inner, version.unwrap_or(1)).await?;
    let raised = inner
        .run(
            meta.update_one(
                doc! { "_id": "schema", "version": { "$lt": SCHEMA_VERSION } },
                doc! { "$set": { "version": SCHEMA_VERSION } },
            )
            .upsert(true),
        )
        .await;
    match raised {
        // Marked meanwhile by another node, with this version or a newer one.
        Ok(_) | Err(StoreError::Conflict { .. }) => {}
        Err(e) => return Err(e),
    }
    match read_mark(inner, &meta).await? {
        Some(v) => refuse_newer(v),
        None => Err(StoreError::Corrupt(format!(
            "{META}: the schema mark was not written"
        ))),
    }
}

/// The schema mark's version, if the database has one.
async fn read_mark(inner: &Inner, meta: &Collection<Document>) -> StoreResult<Option<i64>> {
    let Some(mark) = inner.run(meta.find_one(doc! { "_id": "schema" })).await? else {
        return Ok(None);
    };
    match mark.get("version") {
        Some(Bson::Int64(v)) => Ok(Some(*v)),
        Some(Bson::Int32(v)) => Ok(Some(i64::from(*v))),
        _ => Err(StoreError::Corrupt(format!(
            "{META}: the schema mark has no integer version"
        ))),
    }
}

fn refuse_newer(version: i64) -> StoreResult<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_indexed_collection_is_listed() {
        for (name, _) in indexes() {
            assert!(COLLECTIONS.contains(&name), "{name} is not in COLLECTIONS");
        }
    }
}
