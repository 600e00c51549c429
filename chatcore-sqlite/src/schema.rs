//! The tables, as a numbered list of migration steps, and the schema
//! version check.
//!
//! `PRAGMA user_version` is the schema version: the number of steps of
//! [`MIGRATIONS`] applied. At open, every missing step runs in one
//! `BEGIN IMMEDIATE` transaction with the new version, so a start that
//! dies half-way leaves the database as it was. A database whose version is
//! larger than this build's [`SCHEMA_VERSION`] was written by a newer
//! build and is refused with `Incompatible`, the rule every chatcore store
//! follows. `PRAGMA application_id` marks the file as chatcore's, so that
//! another program's SQLite database is refused rather than written into.

use chatcore::store::{StoreError, StoreResult};
use rusqlite::Connection;

use crate::error::map_open_err;

/// `PRAGMA application_id` of a chatcore database ("chat" in ASCII).
pub(crate) const APPLICATION_ID: i64 = 0x6368_6174;

/// The stored form of the TEXT column (or parameter) `$col`, by the rule
/// of `ids.rs` ([`crate::ids::StoredId::of`]): a UUID in canonical form
/// (36 characters, lower-case hex, hyphens at 9, 14, 19 and 24) becomes
/// its 16 bytes, anything else stays as it is. `unhex` is SQLite 3.41's.
macro_rules! uuid_blob {
    ($col:literal) => {
        concat!(
            "CASE WHEN length(",
            $col,
            ") = 36 AND ",
            $col,
            " NOT GLOB '*[^-0-9a-f]*' AND substr(",
            $col,
            ", 9, 1) = '-' AND substr(",
            $col,
            ", 14, 1) = '-' AND substr(",
            $col,
            ", 19, 1) = '-' AND substr(",
            $col,
            ", 24, 1) = '-' AND length(replace(",
            $col,
            ", '-', '')) = 32 THEN unhex(replace(",
            $col,
            ", '-', '')) ELSE ",
            $col,
            " END"
        )
    };
}

/// The steps, in order: step `i` takes the schema from version `i` to
/// `i + 1`. Never edit a step that has shipped; add one.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: every store of chatcore as of the stored-conversations, contacts
    // and message-requests issues.
    r#"
    CREATE TABLE users (
        id            TEXT PRIMARY KEY NOT NULL,
        username      TEXT NOT NULL,
        username_key  TEXT NOT NULL UNIQUE,
        email         TEXT NOT NULL,
        email_key     TEXT NOT NULL UNIQUE,
        phone         TEXT NOT NULL UNIQUE,
        display_name  TEXT NOT NULL,
        about         TEXT NOT NULL DEFAULT '',
        avatar        TEXT,
        password_hash TEXT NOT NULL,
        created_at    INTEGER NOT NULL,
        -- JSON of chatcore::model::Privacy; NULL is the default.
        privacy       TEXT
    ) STRICT;
    -- Directory search by a prefix of any word of the display name.
    CREATE TABLE user_words (
        word TEXT NOT NULL,
        user TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        PRIMARY KEY (word, user)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX user_words_user ON user_words(user);

    CREATE TABLE sessions (
        token_hash  TEXT PRIMARY KEY NOT NULL,
        user        TEXT NOT NULL,
        device      TEXT NOT NULL,
        device_name TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX sessions_user ON sessions(user);
    CREATE INDEX sessions_expires_at ON sessions(expires_at);

    CREATE TABLE reset_tokens (
        token_hash TEXT PRIMARY KEY NOT NULL,
        user       TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX reset_tokens_user ON reset_tokens(user);
    CREATE INDEX reset_tokens_expires_at ON reset_tokens(expires_at);

    -- `key` stands for the conversation in the log (a small integer
    -- instead of the id in every entry and index entry).
    CREATE TABLE conversations (
        key        INTEGER PRIMARY KEY,
        id         TEXT NOT NULL UNIQUE,
        kind       TEXT NOT NULL CHECK (kind IN ('direct', 'group')),
        created_at INTEGER NOT NULL,
        title       TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        avatar      TEXT,
        history_visible INTEGER NOT NULL DEFAULT 0,
        last_seq   INTEGER NOT NULL,
        last_ts    INTEGER NOT NULL,
        version    INTEGER NOT NULL,
        invite     TEXT,
        -- JSON array of the user ids who block the other (direct only).
        blocked    TEXT NOT NULL DEFAULT '[]'
    ) STRICT;
    CREATE UNIQUE INDEX conversations_invite ON conversations(invite) WHERE invite IS NOT NULL;

    -- Members, current and past; `pos` keeps the order they first joined.
    CREATE TABLE members (
        conv        TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        user        TEXT NOT NULL,
        pos         INTEGER NOT NULL,
        role        TEXT NOT NULL CHECK (role IN ('member', 'admin', 'owner')),
        joined_seq  INTEGER NOT NULL,
        joined_at   INTEGER NOT NULL,
        left_seq    INTEGER,
        muted_until INTEGER,
        PRIMARY KEY (conv, user)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX members_user ON members(user, conv);

    -- Users who have not accepted a conversation (a message request's
    -- recipient, a group's invitees); `pos` keeps their order.
    CREATE TABLE conv_pending (
        conv TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        user TEXT NOT NULL,
        pos  INTEGER NOT NULL,
        by   TEXT NOT NULL,
        at   INTEGER NOT NULL,
        PRIMARY KEY (conv, user)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX conv_pending_user ON conv_pending(user, conv);

    -- The log. `(conv, seq)` is the key: a seq is taken once. `notice`
    -- marks entries that never count as unread.
    CREATE TABLE messages (
        conv      INTEGER NOT NULL REFERENCES conversations(key) ON DELETE CASCADE,
        seq       INTEGER NOT NULL,
        id        TEXT NOT NULL,
        sender    TEXT NOT NULL,
        client_id TEXT NOT NULL,
        ts        INTEGER NOT NULL,
        notice    INTEGER NOT NULL,
        -- JSON of chatcore::model::Content.
        content   TEXT NOT NULL,
        PRIMARY KEY (conv, seq)
    ) STRICT, WITHOUT ROWID;
    -- Idempotent retries: one entry per sender and client id.
    CREATE UNIQUE INDEX messages_client_id ON messages(sender, client_id);

    CREATE TABLE cursors (
        user   TEXT NOT NULL,
        device TEXT NOT NULL,
        conv   TEXT NOT NULL,
        seq    INTEGER NOT NULL,
        PRIMARY KEY (user, device, conv)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE read_markers (
        user TEXT NOT NULL,
        conv TEXT NOT NULL,
        seq  INTEGER NOT NULL,
        PRIMARY KEY (user, conv)
    ) STRICT, WITHOUT ROWID;

    -- One row per pair of users, keyed by chatcore's pair key.
    CREATE TABLE relations (
        key       TEXT PRIMARY KEY NOT NULL,
        user_a    TEXT NOT NULL,
        user_b    TEXT NOT NULL,
        link      TEXT NOT NULL CHECK (link IN ('none', 'requested', 'contacts')),
        link_by   TEXT,
        link_at   INTEGER,
        blocked_a INTEGER,
        blocked_b INTEGER,
        retry_a   INTEGER,
        retry_b   INTEGER,
        unaccepted_a INTEGER NOT NULL DEFAULT 0,
        unaccepted_b INTEGER NOT NULL DEFAULT 0,
        version   INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX relations_user_a ON relations(user_a, key);
    CREATE INDEX relations_user_b ON relations(user_b, key);
    -- Derived from ContactView::shows at every write: the listing tags
    -- ("<view>:<user>") a pair is in, so each listing is one index range.
    CREATE TABLE relation_listings (
        tag TEXT NOT NULL,
        key TEXT NOT NULL REFERENCES relations(key) ON DELETE CASCADE,
        PRIMARY KEY (tag, key)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX relation_listings_key ON relation_listings(key);

    -- Presence: connections of this process (cleared at open) and last seen.
    CREATE TABLE presence_conns (
        user TEXT NOT NULL,
        conn TEXT NOT NULL,
        PRIMARY KEY (user, conn)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE last_seen (
        user TEXT PRIMARY KEY NOT NULL,
        at   INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    -- The rate limiter's failed-login windows: a key's recent events
    -- (JSON array, oldest first). Budgets are kept in memory.
    CREATE TABLE limiter_events (
        key    TEXT PRIMARY KEY NOT NULL,
        events TEXT NOT NULL,
        until  INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;

    -- Users' reports of users, one per reporter and reported user.
    CREATE TABLE reports (
        key      TEXT PRIMARY KEY NOT NULL,
        reporter TEXT NOT NULL,
        user     TEXT NOT NULL,
        conv     TEXT,
        reason   TEXT NOT NULL,
        at       INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX reports_at ON reports(at DESC, key);

    -- The key directory of end-to-end encryption.
    CREATE TABLE device_keys (
        user          TEXT NOT NULL,
        device        TEXT NOT NULL,
        algorithm     TEXT NOT NULL,
        signing_key   TEXT NOT NULL,
        agreement_key TEXT NOT NULL,
        signature     TEXT NOT NULL,
        uploaded_at   INTEGER NOT NULL,
        PRIMARY KEY (user, device)
    ) STRICT, WITHOUT ROWID;
    -- One-time keys in upload order (`n`); a claimed key keeps its id
    -- (never accepted again) and loses its material.
    CREATE TABLE one_time_keys (
        n         INTEGER PRIMARY KEY,
        user      TEXT NOT NULL,
        device    TEXT NOT NULL,
        id        TEXT NOT NULL,
        key       TEXT NOT NULL,
        signature TEXT NOT NULL,
        claimed   INTEGER NOT NULL,
        UNIQUE (user, device, id)
    ) STRICT;
    CREATE INDEX one_time_keys_unclaimed ON one_time_keys(user, device, claimed, n);
    CREATE TABLE fallback_keys (
        user      TEXT NOT NULL,
        device    TEXT NOT NULL,
        id        TEXT NOT NULL,
        key       TEXT NOT NULL,
        signature TEXT NOT NULL,
        used      INTEGER NOT NULL,
        PRIMARY KEY (user, device)
    ) STRICT, WITHOUT ROWID;
    -- To-device queues, oldest first (`n`) per target device.
    CREATE TABLE to_device (
        n           INTEGER PRIMARY KEY,
        to_user     TEXT NOT NULL,
        to_device   TEXT NOT NULL,
        from_user   TEXT NOT NULL,
        from_device TEXT NOT NULL,
        id          TEXT NOT NULL,
        kind        TEXT NOT NULL,
        payload     BLOB NOT NULL,
        ts          INTEGER NOT NULL,
        UNIQUE (to_user, to_device, from_device, id)
    ) STRICT;
    CREATE INDEX to_device_queue ON to_device(to_user, to_device, n);

    -- One row that readiness probes write (SqliteStore::ping).
    CREATE TABLE probe (at INTEGER NOT NULL, pad BLOB) STRICT;
    INSERT INTO probe (at) VALUES (0);
    "#,
    // 2: end-to-end encryption part 1: encrypted conversations, master
    // keys and their signatures of devices; devices are listed with when
    // each was last active (a sign-in or a resume; a session from before
    // reads as active when created).
    r#"
    ALTER TABLE conversations ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE device_keys ADD COLUMN master_key TEXT;
    ALTER TABLE device_keys ADD COLUMN master_signature TEXT;
    CREATE TABLE master_keys (
        user        TEXT PRIMARY KEY NOT NULL,
        key         TEXT NOT NULL,
        signature   TEXT NOT NULL,
        uploaded_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    ALTER TABLE sessions ADD COLUMN last_active INTEGER NOT NULL DEFAULT 0;
    UPDATE sessions SET last_active = created_at;
    CREATE INDEX sessions_user_device ON sessions(user, device);
    "#,
    // 3: the log's message and sender ids as 16-byte BLOBs when they are
    // UUIDs (`ids.rs`): smaller entries in the log and in the `(sender,
    // client_id)` index, so fewer pages per commit and a smaller file. The
    // table is rebuilt (SQLite cannot change a column's type in place).
    concat!(
        "
    CREATE TABLE messages_v3 (
        conv      INTEGER NOT NULL REFERENCES conversations(key) ON DELETE CASCADE,
        seq       INTEGER NOT NULL,
        -- A UUID as its 16 bytes (BLOB), any other id as TEXT.
        id        ANY NOT NULL,
        sender    ANY NOT NULL,
        client_id TEXT NOT NULL,
        ts        INTEGER NOT NULL,
        notice    INTEGER NOT NULL,
        content   TEXT NOT NULL,
        PRIMARY KEY (conv, seq)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO messages_v3 (conv, seq, id, sender, client_id, ts, notice, content)
        SELECT conv, seq, ",
        uuid_blob!("id"),
        ", ",
        uuid_blob!("sender"),
        ", client_id, ts, notice, content FROM messages;
    DROP TABLE messages;
    ALTER TABLE messages_v3 RENAME TO messages;
    CREATE UNIQUE INDEX messages_client_id ON messages(sender, client_id);
    "
    ),
    // 4: encrypted key backups (end-to-end encryption part 2): each user's
    // current backup and its keys, opaque to the server.
    r#"
    CREATE TABLE backups (
        user       TEXT PRIMARY KEY NOT NULL,
        version    TEXT NOT NULL,
        algorithm  TEXT NOT NULL,
        auth_data  TEXT NOT NULL,
        count      INTEGER NOT NULL,
        etag       INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE backup_keys (
        user        TEXT NOT NULL REFERENCES backups(user) ON DELETE CASCADE,
        conv        TEXT NOT NULL,
        session     TEXT NOT NULL,
        first_index INTEGER NOT NULL,
        forwarded   INTEGER NOT NULL,
        verified    INTEGER NOT NULL,
        data        BLOB NOT NULL,
        PRIMARY KEY (user, conv, session)
    ) STRICT, WITHOUT ROWID;
    "#,
    // 5: delivery and read receipts: one row per (conversation, member),
    // raised in place by every ack and read (never one per message), and
    // an index for "what rose since" (`MessageStore::receipts`). Starts
    // empty: a member's receipt appears at its first ack or read after
    // the upgrade.
    r#"
    CREATE TABLE receipts (
        conv      INTEGER NOT NULL REFERENCES conversations(key) ON DELETE CASCADE,
        user      TEXT NOT NULL,
        delivered INTEGER NOT NULL,
        read      INTEGER NOT NULL CHECK (read <= delivered),
        at        INTEGER NOT NULL,
        PRIMARY KEY (conv, user)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX receipts_at ON receipts(conv, at);
    "#,
    // 6: a message's life: the envelope's relation (`rel_kind`, and
    // `rel_target` stored as `id` is, `ids.rs`), its mentions (a JSON
    // array, NULL for none) and when the disappearing-message timer
    // removes its content (`expires_at`), and the conversation's timer
    // (`expire_after`). Indexes: entries by id within a conversation
    // (`by_ids`, and the target of a deletion), edits, reactions and
    // deletions by target (`related`; only entries with a relation are in
    // it), and the entries due to expire (only those with a time). The
    // `mentions` table holds one row per stand-alone message from another
    // member that mentions a user, written in the append's transaction:
    // unread mentions are one range of its key. Older rows need nothing:
    // no relation, no mention, no expiry, no timer.
    r#"
    ALTER TABLE messages ADD COLUMN rel_kind TEXT;
    ALTER TABLE messages ADD COLUMN rel_target ANY;
    ALTER TABLE messages ADD COLUMN mentions TEXT;
    ALTER TABLE messages ADD COLUMN expires_at INTEGER;
    ALTER TABLE conversations ADD COLUMN expire_after INTEGER;
    CREATE INDEX messages_id ON messages(conv, id);
    CREATE INDEX messages_rel_target ON messages(conv, rel_target) WHERE rel_target IS NOT NULL;
    CREATE INDEX messages_expires_at ON messages(expires_at) WHERE expires_at IS NOT NULL;
    CREATE TABLE mentions (
        conv INTEGER NOT NULL REFERENCES conversations(key) ON DELETE CASCADE,
        -- The user mentioned, stored as the log's ids are.
        user ANY NOT NULL,
        seq  INTEGER NOT NULL,
        PRIMARY KEY (conv, user, seq)
    ) STRICT, WITHOUT ROWID;
    "#,
    // 7: the uploaded files an entry carries (`media`, a JSON list of
    // media ids; NULL for none, and on every older row), which a deletion
    // or expiry clears with the content so that the files can be collected.
    r#"
    ALTER TABLE messages ADD COLUMN media TEXT;
    "#,
    // 8: what the garbage collection of unreferenced files asks
    // (`MessageStore::media_in_use`, `UserStore::avatars_in_use`), each an
    // index probe per id. `media_refs` holds one row per file a live entry
    // lists, kept by triggers on `messages` (an insert adds its `media`, a
    // change of `media`, as a deletion's or expiry's tombstone makes it,
    // swaps them, a deletion of the row takes them away) and filled here
    // from the rows step 7 wrote. The avatars of users and of groups get
    // partial indexes (most rows have none).
    r#"
    CREATE TABLE media_refs (
        media TEXT NOT NULL,
        conv  INTEGER NOT NULL,
        seq   INTEGER NOT NULL,
        PRIMARY KEY (media, conv, seq)
    ) STRICT, WITHOUT ROWID;
    INSERT OR IGNORE INTO media_refs (media, conv, seq)
        SELECT j.value, m.conv, m.seq FROM messages m, json_each(m.media) j
        WHERE m.media IS NOT NULL;
    CREATE TRIGGER messages_media_insert AFTER INSERT ON messages
        WHEN NEW.media IS NOT NULL
    BEGIN
        INSERT OR IGNORE INTO media_refs (media, conv, seq)
            SELECT value, NEW.conv, NEW.seq FROM json_each(NEW.media);
    END;
    CREATE TRIGGER messages_media_update AFTER UPDATE OF media ON messages
        WHEN OLD.media IS NOT NEW.media
    BEGIN
        DELETE FROM media_refs WHERE conv = OLD.conv AND seq = OLD.seq
            AND media IN (SELECT value FROM json_each(OLD.media));
        INSERT OR IGNORE INTO media_refs (media, conv, seq)
            SELECT value, NEW.conv, NEW.seq FROM json_each(NEW.media);
    END;
    CREATE TRIGGER messages_media_delete AFTER DELETE ON messages
        WHEN OLD.media IS NOT NULL
    BEGIN
        DELETE FROM media_refs WHERE conv = OLD.conv AND seq = OLD.seq
            AND media IN (SELECT value FROM json_each(OLD.media));
    END;
    CREATE INDEX users_avatar ON users(avatar) WHERE avatar IS NOT NULL;
    CREATE INDEX conversations_avatar ON conversations(avatar) WHERE avatar IS NOT NULL;
    "#,
    // 9: the calls going on (`CallStore`): one row per call with the
    // record as JSON (of chatcore::store::CallRecord), and each user in a
    // call in `call_users`, whose key makes one call per user.
    r#"
    CREATE TABLE calls (
        id         TEXT PRIMARY KEY NOT NULL,
        started_at INTEGER NOT NULL,
        record     TEXT NOT NULL
    ) STRICT;
    CREATE TABLE call_users (
        user TEXT PRIMARY KEY NOT NULL,
        call TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX call_users_call ON call_users(call);
    "#,
];

/// The schema this build reads and writes: the number of `MIGRATIONS`.
/// A database marked with a larger `user_version` is refused.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database on `conn` (the writer's, nothing else open) to
/// [`SCHEMA_VERSION`] in one transaction, after refusing a foreign or newer
/// one, forgets the connections a previous process left in presence and
/// marks the sides of its calls gone.
pub(crate) fn migrate(conn: &Connection) -> StoreResult<()> {
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(map_open_err)?;
    let result = migrate_in_txn(conn);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    let ended = conn.execute_batch(end).map_err(map_open_err);
    result?;
    ended
}

fn migrate_in_txn(conn: &Connection) -> StoreResult<()> {
    let pragma = |name: &str| -> StoreResult<i64> {
        conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
            .map_err(map_open_err)
    };
    let app = pragma("application_id")?;
    let version = pragma("user_version")?;
    let tables: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(map_open_err)?;
    if app != APPLICATION_ID && (app != 0 || tables > 0) {
        return Err(StoreError::Incompatible(format!(
            "this SQLite file is not a chatcore database (application_id {app:#x}, {tables} \
             schema objects): refusing to write into it"
        )));
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::Incompatible(format!(
            "this database was written by a newer chatcore-sqlite (schema version {version}; this \
             build knows {SCHEMA_VERSION} and older): upgrade chatd before serving it"
        )));
    }
    let from = usize::try_from(version)
        .map_err(|_| StoreError::Corrupt(format!("negative schema version {version}")))?;
    for (i, step) in MIGRATIONS.iter().enumerate().skip(from) {
        conn.execute_batch(step).map_err(map_open_err)?;
        tracing::info!(version = i + 1, "SQLite schema migrated");
    }
    if from < MIGRATIONS.len() || app == 0 {
        conn.execute_batch(&format!(
            "PRAGMA user_version = {SCHEMA_VERSION}; PRAGMA application_id = {APPLICATION_ID};"
        ))
        .map_err(map_open_err)?;
    }
    // Only this process serves this file (one writer), so whoever was
    // connected before it started is not connected now.
    conn.execute("DELETE FROM presence_conns", [])
        .map_err(map_open_err)?;
    // Its calls' connections are gone with it: their sides are gone from
    // now (a side gone earlier keeps its time; the callee's side only once
    // answered), so the next sweep ends them and records how.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    conn.execute(
        "UPDATE calls SET record = json_set(record, \
             '$.caller_gone_at', coalesce(json_extract(record, '$.caller_gone_at'), ?1), \
             '$.callee_gone_at', CASE WHEN json_extract(record, '$.callee_conn') IS NULL \
                 THEN json_extract(record, '$.callee_gone_at') \
                 ELSE coalesce(json_extract(record, '$.callee_gone_at'), ?1) END)",
        [now],
    )
    .map_err(map_open_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::ids::StoredId;
    use rusqlite::types::Value;
    use rusqlite::ToSql as _;

    /// Step 3's SQL and `StoredId::of` store every id alike: an id whose
    /// old rows and new rows differed would escape the `(sender,
    /// client_id)` index (a retry stored twice).
    #[test]
    fn step_3_converts_ids_as_the_store_writes_them() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let sql = concat!("SELECT ", uuid_blob!("?1"));
        for id in [
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
            "00000000-0000-0000-0000-000000000000",
            "0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B",
            "0193a1b2c3d47e5f8a9b0c1d2e3f4a5b",
            "0193a1b2-c3d4-7e5f-8a9b0-c1d2e3f4a5b",
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g",
            "0193a1b2-c3d4-7e5f-8a9b--c1d2e3f4a5b",
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b ",
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4aé",
            "alice",
            "",
        ] {
            let by_sql: Value = conn.query_row(sql, [id], |r| r.get(0)).unwrap();
            let by_rust = match StoredId::of(id).to_sql().unwrap() {
                rusqlite::types::ToSqlOutput::Borrowed(v) => Value::from(v),
                other => panic!("{other:?}"),
            };
            assert_eq!(by_sql, by_rust, "{id:?}");
        }
    }
}
