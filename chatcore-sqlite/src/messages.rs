//! Conversations, their logs, cursors, read markers, receipts and unread
//! counts.
//!
//! Every change runs on the single writer inside the group's transaction,
//! so an append reads the head, checks the sender's membership and the
//! blocks, and writes the entry at head + 1 with nothing in between: seqs
//! are gap-free by construction, and a retry finds the first attempt
//! through the `(sender, client_id)` unique index. A seq is never claimed
//! without its entry, so `read_after` has nothing to wait for.
//!
//! A receipt is one row per (conversation, member) in `receipts`, raised
//! in place by the same write job as the cursor or read marker that
//! raises it (one statement each, no savepoint: see [`raise_receipt`]), so
//! the two commit or fail together and the receipt is never ahead of them.
//!
//! A deletion rewrites its target's row and those of the target's edits
//! and reactions in the append's own write (see [`tombstone`]), and
//! `expire` does the same for the entries its partial index finds due. The
//! rows are rewritten in place, so every read, the idempotency index's
//! included, sees the tombstone, and no copy of the content is left.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::{
    Content, ConversationId, ConversationKind, DeviceId, MediaId, Message, MessageId, Millis,
    Receipt, Rel, RelKind, Role, UserId,
};
use chatcore::store::{
    Appended, Changed, ConversationState, GroupInfo, Listing, Member, MessageStore, NewMessage,
    Pending, StoreError, StoreResult, Unread,
};
use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, ToSql};

use crate::cache::{ConvCache, Entry};
use crate::db::{Db, Unguarded};
use crate::error::map_err;
use crate::ids::{LogId, StoredId};
use crate::{from_json, limit_i64, to_i64, to_json, to_u64};

/// The message store.
#[derive(Clone)]
pub struct SqliteMessageStore {
    db: Arc<Db>,
}

impl SqliteMessageStore {
    pub(crate) fn new(db: Arc<Db>) -> Self {
        Self { db }
    }
}

/// An entry's columns, its conversation's id joined in (`messages.conv`
/// is the conversation's integer key: 8 bytes in every row and index entry
/// instead of the id's 40 to 80).
const MESSAGE_COLUMNS: &str = "m.id, c.id, m.seq, m.sender, m.client_id, m.ts, m.content, \
                               m.rel_kind, m.rel_target, m.mentions, m.expires_at, m.media";

/// The entries of one conversation, by id (`?1`).
const MESSAGES_OF: &str = "messages m JOIN conversations c ON c.key = m.conv WHERE m.conv = \
                           (SELECT key FROM conversations WHERE id = ?1)";

/// [`MESSAGES_OF`] through the index `$index`: a conversation's entries
/// come in seq order through its primary key, which the planner would
/// rather walk (sorting nothing) than probe a few index entries, having no
/// statistics to tell it how few those are.
macro_rules! messages_of_by {
    ($index:literal) => {
        concat!(
            "messages m INDEXED BY ",
            $index,
            " JOIN conversations c ON c.key = m.conv WHERE m.conv = (SELECT key FROM \
             conversations WHERE id = ?1)"
        )
    };
}

/// An entry as read from [`MESSAGE_COLUMNS`], before decoding.
struct MessageRow {
    id: LogId,
    conv: String,
    seq: i64,
    from: LogId,
    client_id: String,
    ts: Millis,
    content: String,
    rel_kind: Option<String>,
    rel_target: Option<LogId>,
    mentions: Option<String>,
    expires_at: Option<Millis>,
    media: Option<String>,
}

fn message_row(row: &Row<'_>) -> rusqlite::Result<MessageRow> {
    Ok(MessageRow {
        id: row.get(0)?,
        conv: row.get(1)?,
        seq: row.get(2)?,
        from: row.get(3)?,
        client_id: row.get(4)?,
        ts: row.get(5)?,
        content: row.get(6)?,
        rel_kind: row.get(7)?,
        rel_target: row.get(8)?,
        mentions: row.get(9)?,
        expires_at: row.get(10)?,
        media: row.get(11)?,
    })
}

/// A stored `rel_kind` back to its kind.
fn rel_kind_of(name: &str) -> StoreResult<RelKind> {
    [
        RelKind::Reply,
        RelKind::Edit,
        RelKind::Reaction,
        RelKind::Delete,
    ]
    .into_iter()
    .find(|k| k.as_str() == name)
    .ok_or_else(|| StoreError::Corrupt(format!("unknown relation kind {name:?}")))
}

fn into_message(r: MessageRow) -> StoreResult<Message> {
    let rel = match (r.rel_kind, r.rel_target) {
        (Some(kind), Some(LogId(target))) => Some(Rel::new(rel_kind_of(&kind)?, MessageId(target))),
        (None, None) => None,
        _ => {
            return Err(StoreError::Corrupt(
                "a relation with a kind or a target only".into(),
            ))
        }
    };
    let mentions = match r.mentions {
        Some(json) => from_json::<Vec<String>>(&json, "mentions")?
            .into_iter()
            .map(UserId)
            .collect(),
        None => Vec::new(),
    };
    let media = match r.media {
        Some(json) => from_json::<Vec<String>>(&json, "media")?
            .into_iter()
            .map(MediaId)
            .collect(),
        None => Vec::new(),
    };
    Ok(Message {
        media,
        id: MessageId(r.id.0),
        conv: ConversationId(r.conv),
        seq: to_u64(r.seq, "seq")?,
        from: UserId(r.from.0),
        client_id: r.client_id,
        ts: r.ts,
        rel,
        mentions,
        expires_at: r.expires_at,
        content: from_json::<Content>(&r.content, "content")?,
    })
}

fn collect(
    stmt: &mut rusqlite::CachedStatement<'_>,
    params: impl rusqlite::Params,
) -> StoreResult<Vec<Message>> {
    let rows = stmt.query_map(params, message_row).map_err(map_err)?;
    let mut out = Vec::new();
    for row in rows {
        out.push(into_message(row.map_err(map_err)?)?);
    }
    Ok(out)
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Member => "member",
        Role::Admin => "admin",
        Role::Owner => "owner",
    }
}

fn role_of(name: &str) -> StoreResult<Role> {
    match name {
        "member" => Ok(Role::Member),
        "admin" => Ok(Role::Admin),
        "owner" => Ok(Role::Owner),
        other => Err(StoreError::Corrupt(format!("unknown role {other:?}"))),
    }
}

fn kind_name(kind: ConversationKind) -> &'static str {
    match kind {
        ConversationKind::Direct => "direct",
        ConversationKind::Group => "group",
    }
}

/// A conversation row, before its members are read.
struct ConvRow {
    id: String,
    kind: String,
    created_at: Millis,
    title: String,
    description: String,
    avatar: Option<String>,
    history_visible: bool,
    last_seq: i64,
    last_ts: Millis,
    version: i64,
    invite: Option<String>,
    blocked: String,
    encrypted: bool,
    expire_after: Option<Millis>,
}

const CONV_COLUMNS: &str = "id, kind, created_at, title, description, avatar, history_visible, \
                            last_seq, last_ts, version, invite, blocked, encrypted, expire_after";

fn conv_row(r: &Row<'_>) -> rusqlite::Result<ConvRow> {
    conv_row_at(r, 0)
}

/// [`CONV_COLUMNS`] read from column `at` on.
fn conv_row_at(r: &Row<'_>, at: usize) -> rusqlite::Result<ConvRow> {
    Ok(ConvRow {
        id: r.get(at)?,
        kind: r.get(at + 1)?,
        created_at: r.get(at + 2)?,
        title: r.get(at + 3)?,
        description: r.get(at + 4)?,
        avatar: r.get(at + 5)?,
        history_visible: r.get(at + 6)?,
        last_seq: r.get(at + 7)?,
        last_ts: r.get(at + 8)?,
        version: r.get(at + 9)?,
        invite: r.get(at + 10)?,
        blocked: r.get(at + 11)?,
        encrypted: r.get(at + 12)?,
        expire_after: r.get(at + 13)?,
    })
}

/// The members of `conv`, in the order they first joined.
fn members(c: &Connection, conv: &str) -> StoreResult<Vec<Member>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT user, role, joined_seq, joined_at, left_seq, muted_until FROM members WHERE \
             conv = ?1 ORDER BY pos",
        )
        .map_err(map_err)?;
    let rows = stmt
        .query_map([conv], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Millis>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<Millis>>(5)?,
            ))
        })
        .map_err(map_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (user, role, joined_seq, joined_at, left_seq, muted_until) = row.map_err(map_err)?;
        let mut m = Member::new(
            UserId(user),
            role_of(&role)?,
            to_u64(joined_seq, "joined_seq")?,
            joined_at,
        );
        m.left_seq = left_seq.map(|s| to_u64(s, "left_seq")).transpose()?;
        m.muted_until = muted_until;
        out.push(m);
    }
    Ok(out)
}

/// The users who have not accepted `conv`, in their order.
fn pending(c: &Connection, conv: &str) -> StoreResult<Vec<Pending>> {
    let mut stmt = c
        .prepare_cached("SELECT user, by, at FROM conv_pending WHERE conv = ?1 ORDER BY pos")
        .map_err(map_err)?;
    let rows = stmt
        .query_map([conv], |r| {
            Ok(Pending::new(
                UserId(r.get(0)?),
                UserId(r.get(1)?),
                r.get(2)?,
            ))
        })
        .map_err(map_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(map_err)
}

fn into_state(c: &Connection, row: ConvRow) -> StoreResult<ConversationState> {
    let mut s = ConversationState::direct(&UserId::from(""), &UserId::from(""), row.created_at);
    s.kind = match row.kind.as_str() {
        "direct" => ConversationKind::Direct,
        "group" => ConversationKind::Group,
        other => {
            return Err(StoreError::Corrupt(format!(
                "unknown conversation kind {other:?}"
            )))
        }
    };
    let mut info = GroupInfo::default();
    info.title = row.title;
    info.description = row.description;
    info.avatar = row.avatar;
    info.history_visible = row.history_visible;
    s.info = info;
    s.members = members(c, &row.id)?;
    s.pending = pending(c, &row.id)?;
    s.conv = ConversationId(row.id);
    s.last_seq = to_u64(row.last_seq, "last_seq")?;
    s.last_ts = row.last_ts;
    s.version = to_u64(row.version, "version")?;
    s.invite = row.invite;
    s.blocked = from_json::<Vec<String>>(&row.blocked, "blocked")?
        .into_iter()
        .map(UserId)
        .collect();
    s.encrypted = row.encrypted;
    s.expire_after = row.expire_after;
    Ok(s)
}

fn load(c: &Connection, conv: &str) -> StoreResult<Option<ConversationState>> {
    Ok(load_keyed(c, conv)?.map(|(_, state)| state))
}

/// [`load`] with the conversation's integer key.
fn load_keyed(c: &Connection, conv: &str) -> StoreResult<Option<(i64, ConversationState)>> {
    let row = c
        .prepare_cached(&format!(
            "SELECT key, {CONV_COLUMNS} FROM conversations WHERE id = ?1"
        ))
        .and_then(|mut s| {
            s.query_row([conv], |r| Ok((r.get::<_, i64>(0)?, conv_row_at(r, 1)?)))
                .optional()
        })
        .map_err(map_err)?;
    row.map(|(key, r)| Ok((key, into_state(c, r)?))).transpose()
}

/// Writes the members and the pending users of `state`, replacing those
/// stored.
fn write_members(c: &Connection, state: &ConversationState) -> StoreResult<()> {
    c.execute("DELETE FROM members WHERE conv = ?1", [&state.conv.0])
        .map_err(map_err)?;
    let mut insert = c
        .prepare_cached(
            "INSERT INTO members (conv, user, pos, role, joined_seq, joined_at, left_seq, \
             muted_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(map_err)?;
    for (pos, m) in state.members.iter().enumerate() {
        insert
            .execute(params![
                state.conv.0,
                m.user.0,
                pos as i64,
                role_name(m.role),
                to_i64(m.joined_seq),
                m.joined_at,
                m.left_seq.map(to_i64),
                m.muted_until,
            ])
            .map_err(map_err)?;
    }
    c.execute("DELETE FROM conv_pending WHERE conv = ?1", [&state.conv.0])
        .map_err(map_err)?;
    let mut insert = c
        .prepare_cached(
            "INSERT INTO conv_pending (conv, user, pos, by, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(map_err)?;
    for (pos, p) in state.pending.iter().enumerate() {
        insert
            .execute(params![state.conv.0, p.user.0, pos as i64, p.by.0, p.at])
            .map_err(map_err)?;
    }
    Ok(())
}

fn blocked_json(state: &ConversationState) -> StoreResult<String> {
    to_json(
        &state
            .blocked
            .iter()
            .map(|u| u.0.as_str())
            .collect::<Vec<_>>(),
    )
}

/// Inserts a new conversation with its members; its integer key.
fn insert_conv(c: &Connection, s: &ConversationState) -> StoreResult<i64> {
    let blocked = blocked_json(s)?;
    c.prepare_cached(&format!(
        "INSERT INTO conversations ({CONV_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
         ?10, ?11, ?12, ?13, ?14)"
    ))
    .and_then(|mut st| {
        st.execute(params![
            s.conv.0,
            kind_name(s.kind),
            s.created_at,
            s.info.title,
            s.info.description,
            s.info.avatar,
            s.info.history_visible,
            to_i64(s.last_seq),
            s.last_ts,
            to_i64(s.version),
            s.invite,
            blocked,
            s.encrypted,
            s.expire_after,
        ])
    })
    .map_err(map_err)?;
    let key = c.last_insert_rowid();
    write_members(c, s)?;
    Ok(key)
}

/// Writes `msg` at `seq` in the conversation of integer key `key`, to lose
/// its content at `expires_at`, and moves the head there. A stand-alone
/// message also gets a row in `mentions` for each other member it
/// mentions (what `unread` counts); a deletion removes the content of its
/// target and of the target's edits and reactions ([`tombstone`]), in the
/// same transaction.
fn insert_entry(
    c: &Connection,
    key: i64,
    msg: NewMessage,
    seq: u64,
    expires_at: Option<Millis>,
) -> StoreResult<Message> {
    let content = to_json(&msg.content)?;
    let mentions = if msg.mentions.is_empty() {
        None
    } else {
        Some(to_json(
            &msg.mentions
                .iter()
                .map(|u| u.0.as_str())
                .collect::<Vec<_>>(),
        )?)
    };
    let media = if msg.media.is_empty() {
        None
    } else {
        Some(to_json(
            &msg.media.iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        )?)
    };
    let stands_alone = msg.stands_alone();
    c.prepare_cached(
        "INSERT INTO messages (conv, seq, id, sender, client_id, ts, notice, content, rel_kind, \
         rel_target, mentions, expires_at, media) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, \
         ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut s| {
        s.execute(params![
            key,
            to_i64(seq),
            StoredId::of(&msg.id.0),
            StoredId::of(&msg.from.0),
            msg.client_id,
            msg.ts,
            !stands_alone,
            content,
            msg.rel.as_ref().map(|r| r.kind.as_str()),
            msg.rel.as_ref().map(|r| StoredId::of(&r.target.0)),
            mentions,
            expires_at,
            media,
        ])
    })
    .map_err(map_err)?;
    if stands_alone {
        let mut mention = c
            .prepare_cached("INSERT OR IGNORE INTO mentions (conv, user, seq) VALUES (?1, ?2, ?3)")
            .map_err(map_err)?;
        // A member cannot alert itself: its own mentions are not counted.
        for user in msg.mentions.iter().filter(|u| **u != msg.from) {
            mention
                .execute(params![key, StoredId::of(&user.0), to_i64(seq)])
                .map_err(map_err)?;
        }
    }
    if let Some(rel) = msg.rel.as_ref().filter(|r| r.kind == RelKind::Delete) {
        tombstone(c, key, &StoredId::of(&rel.target.0), None)?;
    }
    c.prepare_cached(
        "UPDATE conversations SET last_seq = ?2, last_ts = max(last_ts, ?3) WHERE key = ?1",
    )
    .and_then(|mut s| s.execute(params![key, to_i64(seq), msg.ts]))
    .map_err(map_err)?;
    Ok(msg.into_message(seq, expires_at))
}

/// Removes the content of the entry of conversation `key` whose id is
/// `target` and of the edits and reactions pointing at it: each becomes
/// `Content::Deleted` without `expires_at`, keeping the rest of its row.
/// With `due`, the entry is the one at that seq, and only if it still
/// expires (it was not deleted meanwhile): false, and nothing changed,
/// otherwise.
fn tombstone(c: &Connection, key: i64, target: &dyn ToSql, due: Option<i64>) -> StoreResult<bool> {
    let deleted = to_json(&Content::Deleted {})?;
    let changed = match due {
        Some(seq) => c
            .prepare_cached(
                "UPDATE messages SET content = ?3, expires_at = NULL, media = NULL WHERE conv = ?1 AND seq = ?2 \
                 AND expires_at IS NOT NULL",
            )
            .and_then(|mut s| s.execute(params![key, seq, deleted])),
        None => c
            .prepare_cached(
                "UPDATE messages SET content = ?3, expires_at = NULL, media = NULL WHERE conv = ?1 AND id = ?2",
            )
            .and_then(|mut s| s.execute(params![key, target, deleted])),
    }
    .map_err(map_err)?;
    if due.is_some() && changed == 0 {
        return Ok(false);
    }
    c.prepare_cached(
        "UPDATE messages SET content = ?3, expires_at = NULL, media = NULL WHERE conv = ?1 AND rel_target = ?2 \
         AND rel_target IS NOT NULL AND rel_kind IN ('edit', 'reaction') AND content <> ?3",
    )
    .and_then(|mut s| s.execute(params![key, target, deleted]))
    .map_err(map_err)?;
    Ok(true)
}

/// How many ids one `IN (...)` of [`MessageStore::media_in_use`] binds:
/// far below SQLite's limit of variables (32766), few distinct statements
/// in the cache.
pub(crate) const IN_CHUNK: usize = 500;

/// `n` numbered placeholders from `?{first}` on, comma-separated.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn by_client_id(c: &Connection, from: &str, client_id: &str) -> StoreResult<Option<Message>> {
    c.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m JOIN conversations c ON c.key = m.conv WHERE \
         m.sender = ?1 AND m.client_id = ?2"
    ))
    .and_then(|mut s| {
        s.query_row(params![StoredId::of(from), client_id], message_row)
            .optional()
    })
    .map_err(map_err)?
    .map(into_message)
    .transpose()
}

/// The writer's view of `conv`: from the cache, or read from the file
/// (inside the group's transaction) and remembered.
fn entry(c: &Connection, cache: &ConvCache, conv: &str) -> StoreResult<Option<Entry>> {
    if let Some(e) = cache.working(conv) {
        return Ok(Some(e));
    }
    let Some((key, state)) = load_keyed(c, conv)? else {
        return Ok(None);
    };
    let e = Entry::new(key, state);
    cache.remember(e.clone());
    Ok(Some(e))
}

/// Reads `conv` back after a write to it and makes that the writer's view.
fn reload(c: &Connection, cache: &ConvCache, conv: &str) -> StoreResult<Option<ConversationState>> {
    let loaded = load_keyed(c, conv)?;
    if let Some((key, s)) = &loaded {
        cache.put(Entry::new(*key, s.clone()));
    }
    Ok(loaded.map(|(_, s)| s))
}

/// An append, run without a savepoint (see [`Db::write_unguarded`]): every
/// check reads, and only `insert_entry` changes the file, last.
fn append_in(c: &Connection, cache: &ConvCache, msg: NewMessage) -> Result<Appended, Unguarded> {
    let checked = append_checked(c, cache, &msg).map_err(Unguarded::Before)?;
    let (e, seq) = match checked {
        Checked::Duplicate(existing) => return Ok(Appended::duplicate(*existing)),
        Checked::At(e, seq) => (e, seq),
    };
    let ts = msg.ts;
    // By the stored state: the writer's view of the conversation.
    let expires_at = e.state.expiry_of(&msg);
    let message = insert_entry(c, e.key, msg, seq, expires_at).map_err(Unguarded::After)?;
    let mut next = ConversationState::clone(&e.state);
    next.last_seq = seq;
    next.last_ts = next.last_ts.max(ts);
    let recipients = e.recipients.clone();
    cache.put(Entry {
        key: e.key,
        state: Arc::new(next),
        recipients: recipients.clone(),
    });
    Ok(Appended::stored(message, recipients))
}

/// What the checks of an append found.
enum Checked {
    /// A retry: the message stored under the same `(from, client_id)`
    /// (boxed: a message with its envelope is several times an `At`).
    Duplicate(Box<Message>),
    /// A new entry, at this seq of this conversation.
    At(Entry, u64),
}

/// The checks of an append, reads only.
fn append_checked(c: &Connection, cache: &ConvCache, msg: &NewMessage) -> StoreResult<Checked> {
    if let Some(existing) = by_client_id(c, &msg.from.0, &msg.client_id)? {
        return Ok(Checked::Duplicate(Box::new(existing)));
    }
    let e = entry(c, cache, &msg.conv.0)?.ok_or(StoreError::NotFound)?;
    let state = &e.state;
    if !state.has_member(&msg.from) {
        return Err(StoreError::NotMember);
    }
    if !state.blocked.is_empty() {
        return Err(StoreError::Blocked);
    }
    if state.pending_for(&msg.from).is_some() {
        return Err(StoreError::NotAccepted);
    }
    if state.encrypted && msg.content.is_plaintext() {
        return Err(StoreError::Encrypted);
    }
    let seq = state.last_seq + 1;
    Ok(Checked::At(e, seq))
}

/// Raises `user`'s receipt in `conv` (by id) to `delivered` and `read`
/// (the caller passes `read <= delivered`), stamped `at`: one upsert whose
/// update applies only when a mark rises, and which returns the row it
/// wrote. Marks only rise (`max`), and a row holds `read <= delivered`
/// because both the stored and the given pair do. `None` when nothing
/// rose, for seq 0 (nothing to receive), and for a conversation that does
/// not exist (the `SELECT` yields no row to insert).
fn raise_receipt(
    c: &Connection,
    user: &str,
    conv: &str,
    delivered: u64,
    read: u64,
    at: Millis,
) -> StoreResult<Option<Receipt>> {
    if delivered == 0 {
        return Ok(None);
    }
    // `WHERE` in the `SELECT` is what SQLite needs to parse the `ON
    // CONFLICT` of an `INSERT ... SELECT` as the upsert's.
    let row = c
        .prepare_cached(
            "INSERT INTO receipts (conv, user, delivered, read, at) SELECT key, ?2, ?3, ?4, ?5 \
             FROM conversations WHERE id = ?1 ON CONFLICT (conv, user) DO UPDATE SET delivered \
             = max(receipts.delivered, excluded.delivered), read = max(receipts.read, \
             excluded.read), at = excluded.at WHERE excluded.delivered > receipts.delivered OR \
             excluded.read > receipts.read RETURNING delivered, read, at",
        )
        .and_then(|mut s| {
            s.query_row(
                params![conv, user, to_i64(delivered), to_i64(read), at],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Millis>(2)?,
                    ))
                },
            )
            .optional()
        })
        .map_err(map_err)?;
    row.map(|(delivered, read, at)| {
        Ok(Receipt {
            conv: ConversationId(conv.to_owned()),
            user: UserId(user.to_owned()),
            delivered: to_u64(delivered, "delivered")?,
            read: to_u64(read, "read")?,
            at,
        })
    })
    .transpose()
}

#[async_trait]
impl MessageStore for SqliteMessageStore {
    async fn open_direct(&self, state: ConversationState) -> StoreResult<ConversationState> {
        let cache = self.db.cache.clone();
        self.db
            .write(move |c| {
                if let Some(existing) = entry(c, &cache, &state.conv.0)? {
                    return Ok(ConversationState::clone(&existing.state));
                }
                let key = insert_conv(c, &state)?;
                cache.put(Entry::new(key, state.clone()));
                Ok(state)
            })
            .await
    }

    async fn create_group(
        &self,
        state: ConversationState,
        created: NewMessage,
    ) -> StoreResult<Arc<Message>> {
        let cache = self.db.cache.clone();
        self.db
            .write(move |c| {
                let exists: Option<i64> = c
                    .query_row(
                        "SELECT 1 FROM conversations WHERE id = ?1",
                        [&state.conv.0],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                if exists.is_some() {
                    return Err(StoreError::Conflict {
                        field: "conv".into(),
                    });
                }
                let key = insert_conv(c, &state)?;
                let seq = state.last_seq + 1;
                let expires_at = state.expiry_of(&created);
                let message = Arc::new(insert_entry(c, key, created, seq, expires_at)?);
                reload(c, &cache, &state.conv.0)?;
                Ok(message)
            })
            .await
    }

    async fn append(&self, msg: NewMessage) -> StoreResult<Appended> {
        let cache = self.db.cache.clone();
        self.db
            .write_unguarded(move |c| append_in(c, &cache, msg))
            .await
    }

    async fn change(
        &self,
        state: &ConversationState,
        notice: Option<NewMessage>,
    ) -> StoreResult<Changed> {
        let state = state.clone();
        let cache = self.db.cache.clone();
        self.db
            .write(move |c| {
                let head: Option<(i64, i64, i64)> = c
                    .query_row(
                        "SELECT key, version, last_seq FROM conversations WHERE id = ?1",
                        [&state.conv.0],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()
                    .map_err(map_err)?;
                let (key, version, last_seq) = head.ok_or(StoreError::NotFound)?;
                let (version, last_seq) =
                    (to_u64(version, "version")?, to_u64(last_seq, "last_seq")?);
                let head_moved = notice.is_some() && last_seq + 1 != state.last_seq;
                if version + 1 != state.version || head_moved {
                    return Ok(Changed::Stale);
                }
                c.execute(
                    "UPDATE conversations SET title = ?2, description = ?3, avatar = ?4, \
                     history_visible = ?5, invite = ?6, blocked = ?7, version = ?8, \
                     encrypted = (encrypted OR ?9), expire_after = ?10 WHERE id = ?1",
                    params![
                        state.conv.0,
                        state.info.title,
                        state.info.description,
                        state.info.avatar,
                        state.info.history_visible,
                        state.invite,
                        blocked_json(&state)?,
                        to_i64(state.version),
                        state.encrypted,
                        state.expire_after,
                    ],
                )
                .map_err(map_err)?;
                write_members(c, &state)?;
                // The notice lands with the new state, as the next entry.
                let message = match notice {
                    Some(n) => {
                        let expires_at = state.expiry_of(&n);
                        Some(Arc::new(insert_entry(c, key, n, last_seq + 1, expires_at)?))
                    }
                    None => None,
                };
                reload(c, &cache, &state.conv.0)?;
                Ok(Changed::Done(message))
            })
            .await
    }

    async fn set_muted(
        &self,
        user: &UserId,
        conv: &ConversationId,
        until: Option<Millis>,
    ) -> StoreResult<()> {
        let (user, conv) = (user.0.clone(), conv.0.clone());
        let cache = self.db.cache.clone();
        self.db
            .write(move |c| {
                let n = c
                    .execute(
                        "UPDATE members SET muted_until = ?3 WHERE conv = ?1 AND user = ?2",
                        params![conv, user, until],
                    )
                    .map_err(map_err)?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                reload(c, &cache, &conv)?;
                Ok(())
            })
            .await
    }

    async fn by_invite(&self, invite: &str) -> StoreResult<Option<ConversationState>> {
        let invite = invite.to_owned();
        self.db
            .read(move |c| {
                let id: Option<String> = c
                    .query_row(
                        "SELECT id FROM conversations WHERE invite = ?1",
                        [invite],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(map_err)?;
                match id {
                    Some(id) => load(c, &id),
                    None => Ok(None),
                }
            })
            .await
    }

    async fn history(
        &self,
        conv: &ConversationId,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let conv = conv.0.clone();
        let before = before.map_or(i64::MAX, to_i64);
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES_OF} AND m.seq < ?2 ORDER BY \
                         m.seq DESC LIMIT ?3"
                    ))
                    .map_err(map_err)?;
                let mut out = collect(&mut stmt, params![conv, before, limit_i64(limit)])?;
                out.reverse();
                Ok(out)
            })
            .await
    }

    async fn by_ids(&self, conv: &ConversationId, ids: &[MessageId]) -> StoreResult<Vec<Message>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let conv = conv.0.clone();
        let ids: Vec<MessageId> = ids.to_vec();
        self.db
            .read(move |c| {
                // `messages_id` (conv, id): one index probe per id, then a
                // sort of what they found.
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM {} AND m.id IN ({}) ORDER BY m.seq",
                        messages_of_by!("messages_id"),
                        placeholders(2, ids.len())
                    ))
                    .map_err(map_err)?;
                let conv: &dyn ToSql = &conv;
                let stored: Vec<StoredId<'_>> = ids.iter().map(|i| StoredId::of(&i.0)).collect();
                let args = std::iter::once(conv).chain(stored.iter().map(|i| i as &dyn ToSql));
                collect(&mut stmt, params_from_iter(args))
            })
            .await
    }

    async fn related(
        &self,
        conv: &ConversationId,
        targets: &[MessageId],
        from: Option<&UserId>,
    ) -> StoreResult<Vec<Message>> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let conv = conv.0.clone();
        let targets: Vec<MessageId> = targets.to_vec();
        let from = from.cloned();
        self.db
            .read(move |c| {
                // `messages_rel_target` (conv, rel_target), partial on
                // `rel_target IS NOT NULL`, which the query states.
                let sender = if from.is_some() {
                    format!(" AND m.sender = ?{}", targets.len() + 2)
                } else {
                    String::new()
                };
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM {} AND m.rel_target IS NOT NULL AND \
                         m.rel_target IN ({}) AND m.rel_kind IN ('edit', 'reaction', \
                         'delete'){sender} ORDER BY m.seq",
                        messages_of_by!("messages_rel_target"),
                        placeholders(2, targets.len())
                    ))
                    .map_err(map_err)?;
                let conv: &dyn ToSql = &conv;
                let stored: Vec<StoredId<'_>> =
                    targets.iter().map(|i| StoredId::of(&i.0)).collect();
                let sender = from.as_ref().map(|f| StoredId::of(&f.0));
                let args = std::iter::once(conv)
                    .chain(stored.iter().map(|i| i as &dyn ToSql))
                    .chain(sender.iter().map(|s| s as &dyn ToSql));
                collect(&mut stmt, params_from_iter(args))
            })
            .await
    }

    async fn expire(&self, now: Millis, limit: usize) -> StoreResult<usize> {
        if limit == 0 {
            return Ok(0);
        }
        self.db
            .write(move |c| {
                // `messages_expires_at`, partial on `expires_at IS NOT
                // NULL`: only the entries that have a time are in it, and
                // a tombstone leaves it. An entry due in the same batch as
                // the message it edits goes with that message and is not
                // counted: read again until `limit` are handled or none
                // is due.
                let mut select = c
                    .prepare_cached(
                        "SELECT conv, seq, id FROM messages WHERE expires_at IS NOT NULL AND \
                         expires_at <= ?1 ORDER BY expires_at LIMIT ?2",
                    )
                    .map_err(map_err)?;
                let mut handled = 0;
                while handled < limit {
                    let due: Vec<(i64, i64, Value)> = select
                        .query_map(params![now, limit_i64(limit - handled)], |r| {
                            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                        })
                        .and_then(|rows| rows.collect())
                        .map_err(map_err)?;
                    if due.is_empty() {
                        break;
                    }
                    for (key, seq, id) in &due {
                        if tombstone(c, *key, id, Some(*seq))? {
                            handled += 1;
                        }
                    }
                }
                Ok(handled)
            })
            .await
    }

    async fn media_in_use(&self, ids: &[MediaId]) -> StoreResult<Vec<MediaId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ids.iter().map(|m| m.as_str().to_owned()).collect();
        self.db
            .read(move |c| {
                // `media_refs`' primary key (media first) and the partial
                // `conversations_avatar`: one probe per id in each. In
                // chunks, to stay far below SQLite's limit of variables;
                // all in this one read.
                let mut out = Vec::new();
                for chunk in ids.chunks(IN_CHUNK) {
                    let mut stmt = c
                        .prepare_cached(&format!(
                            "SELECT media FROM media_refs WHERE media IN ({0}) UNION SELECT \
                             avatar FROM conversations WHERE avatar IS NOT NULL AND avatar IN \
                             ({0})",
                            placeholders(1, chunk.len())
                        ))
                        .map_err(map_err)?;
                    let found = stmt
                        .query_map(params_from_iter(chunk), |r| r.get::<_, String>(0))
                        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                        .map_err(map_err)?;
                    out.extend(found.into_iter().map(MediaId));
                }
                Ok(out)
            })
            .await
    }

    async fn read_after(
        &self,
        conv: &ConversationId,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let conv = conv.0.clone();
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES_OF} AND m.seq > ?2 ORDER BY \
                         m.seq LIMIT ?3"
                    ))
                    .map_err(map_err)?;
                collect(&mut stmt, params![conv, to_i64(after), limit_i64(limit)])
            })
            .await
    }

    async fn last_entries(
        &self,
        heads: &[(ConversationId, u64)],
    ) -> StoreResult<Vec<Option<Message>>> {
        let heads = heads.to_vec();
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {MESSAGE_COLUMNS} FROM {MESSAGES_OF} AND m.seq <= ?2 ORDER BY \
                         m.seq DESC LIMIT 1"
                    ))
                    .map_err(map_err)?;
                let mut out = Vec::with_capacity(heads.len());
                for (conv, head) in &heads {
                    out.push(collect(&mut stmt, params![conv.0, to_i64(*head)])?.pop());
                }
                Ok(out)
            })
            .await
    }

    async fn conversation(&self, conv: &ConversationId) -> StoreResult<Option<ConversationState>> {
        if let Some(state) = self.db.cache.published(&conv.0) {
            return Ok(Some(ConversationState::clone(&state)));
        }
        let conv = conv.0.clone();
        self.db.read(move |c| load(c, &conv)).await
    }

    async fn conversations(
        &self,
        user: &UserId,
        listing: Listing,
        after: Option<&(Millis, ConversationId)>,
        limit: usize,
    ) -> StoreResult<Vec<ConversationState>> {
        let user_id = user.clone();
        let after = after.cloned();
        self.db
            .read(move |c| {
                let cols = CONV_COLUMNS
                    .split(", ")
                    .map(|col| format!("c.{col}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                // The user's conversations in list order, a chunk at a
                // time, kept when `Listing::shows` them (the one definition
                // of the listings) until `limit` are found.
                let mut stmt = c
                    .prepare_cached(&format!(
                        "SELECT {cols} FROM conversations c WHERE c.id IN (SELECT conv FROM \
                         members WHERE user = ?1 UNION SELECT conv FROM conv_pending WHERE user \
                         = ?1) AND (?2 IS NULL OR c.last_ts < ?2 OR (c.last_ts = ?2 AND c.id > \
                         ?3)) ORDER BY c.last_ts DESC, c.id LIMIT ?4"
                    ))
                    .map_err(map_err)?;
                let chunk = limit.clamp(1, 256);
                let mut cursor = after.map(|(ts, id)| (ts, id.0));
                let mut out = Vec::new();
                while out.len() < limit {
                    let (ts, id) = match &cursor {
                        Some((ts, id)) => (Some(*ts), id.clone()),
                        None => (None, String::new()),
                    };
                    let rows = stmt
                        .query_map(params![user_id.0, ts, id, limit_i64(chunk)], conv_row)
                        .map_err(map_err)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map_err(map_err)?;
                    let last = rows.len() < chunk;
                    for row in rows {
                        cursor = Some((row.last_ts, row.id.clone()));
                        let state = into_state(c, row)?;
                        if listing.shows(&state, &user_id) && out.len() < limit {
                            out.push(state);
                        }
                    }
                    if last {
                        break;
                    }
                }
                Ok(out)
            })
            .await
    }

    async fn set_cursor(
        &self,
        user: &UserId,
        device: &DeviceId,
        conv: &ConversationId,
        seq: u64,
        at: Millis,
    ) -> StoreResult<Option<Receipt>> {
        let (user, device, conv) = (user.0.clone(), device.0.clone(), conv.0.clone());
        // The cursor and the receipt in one job: committed together. Without
        // a savepoint (an ack is on the relay's hot path): a failure of the
        // first statement changed nothing; one of the second fails the group.
        self.db
            .write_unguarded(move |c| {
                c.prepare_cached(
                    "INSERT INTO cursors (user, device, conv, seq) VALUES (?1, ?2, ?3, ?4) ON \
                     CONFLICT (user, device, conv) DO UPDATE SET seq = max(seq, excluded.seq)",
                )
                .and_then(|mut s| s.execute(params![user, device, conv, to_i64(seq)]))
                .map_err(|e| Unguarded::Before(map_err(e)))?;
                raise_receipt(c, &user, &conv, seq, 0, at).map_err(Unguarded::After)
            })
            .await
    }

    async fn cursors(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> StoreResult<HashMap<ConversationId, u64>> {
        let (user, device) = (user.0.clone(), device.0.clone());
        self.db
            .read(move |c| {
                let mut stmt = c
                    .prepare_cached("SELECT conv, seq FROM cursors WHERE user = ?1 AND device = ?2")
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map([user, device], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                    })
                    .map_err(map_err)?;
                let mut out = HashMap::new();
                for row in rows {
                    let (conv, seq) = row.map_err(map_err)?;
                    out.insert(ConversationId(conv), to_u64(seq, "cursor")?);
                }
                Ok(out)
            })
            .await
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conv: &ConversationId,
        seq: u64,
        share: bool,
        at: Millis,
    ) -> StoreResult<Option<Receipt>> {
        let (user, conv) = (user.0.clone(), conv.0.clone());
        let read = if share { seq } else { 0 };
        // As `set_cursor`: the marker and the receipt in one job.
        self.db
            .write_unguarded(move |c| {
                c.prepare_cached(
                    "INSERT INTO read_markers (user, conv, seq) VALUES (?1, ?2, ?3) ON CONFLICT \
                     (user, conv) DO UPDATE SET seq = max(seq, excluded.seq)",
                )
                .and_then(|mut s| s.execute(params![user, conv, to_i64(seq)]))
                .map_err(|e| Unguarded::Before(map_err(e)))?;
                raise_receipt(c, &user, &conv, seq, read, at).map_err(Unguarded::After)
            })
            .await
    }

    async fn receipts(&self, conv: &ConversationId, since: Millis) -> StoreResult<Vec<Receipt>> {
        let conv = conv.0.clone();
        self.db
            .read(move |c| {
                // A member's rows are few; `receipts_at` serves a recent
                // `since` in a large group. `user` is TEXT: BINARY collation
                // is byte order.
                let mut stmt = c
                    .prepare_cached(
                        "SELECT user, delivered, read, at FROM receipts WHERE conv = (SELECT key \
                         FROM conversations WHERE id = ?1) AND at >= ?2 ORDER BY user",
                    )
                    .map_err(map_err)?;
                let rows = stmt
                    .query_map(params![conv, since], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Millis>(3)?,
                        ))
                    })
                    .map_err(map_err)?;
                let mut out = Vec::new();
                for row in rows {
                    let (user, delivered, read, at) = row.map_err(map_err)?;
                    out.push(Receipt {
                        conv: ConversationId(conv.clone()),
                        user: UserId(user),
                        delivered: to_u64(delivered, "delivered")?,
                        read: to_u64(read, "read")?,
                        at,
                    });
                }
                Ok(out)
            })
            .await
    }

    async fn unread(
        &self,
        user: &UserId,
        convs: &[&ConversationState],
    ) -> StoreResult<Vec<Unread>> {
        let user = user.0.clone();
        // (conv, from the seq after which to count, up to which seq).
        let windows: Vec<Option<(String, u64, Option<u64>)>> = convs
            .iter()
            .map(|s| {
                s.members
                    .iter()
                    .find(|m| m.user.0 == user)
                    .map(|m| (s.conv.0.clone(), m.joined_seq, m.left_seq))
            })
            .collect();
        self.db
            .read(move |c| {
                let mut marker = c
                    .prepare_cached("SELECT seq FROM read_markers WHERE user = ?1 AND conv = ?2")
                    .map_err(map_err)?;
                // Both counts in one statement: the stand-alone messages
                // of others on `(conv, seq)`, and the rows of `mentions`
                // on its key `(conv, user, seq)`, one range each.
                let mut count = c
                    .prepare_cached(
                        "SELECT (SELECT count(*) FROM messages WHERE conv = k.key AND seq > ?2 \
                         AND seq <= ?3 AND notice = 0 AND sender <> ?4), (SELECT count(*) FROM \
                         mentions WHERE conv = k.key AND user = ?4 AND seq > ?2 AND seq <= ?3) \
                         FROM conversations k WHERE k.id = ?1",
                    )
                    .map_err(map_err)?;
                let mut out = Vec::with_capacity(windows.len());
                for w in &windows {
                    let Some((conv, joined, left)) = w else {
                        out.push(Unread::default());
                        continue;
                    };
                    let read: i64 = marker
                        .query_row([&user, conv], |r| r.get(0))
                        .optional()
                        .map_err(map_err)?
                        .unwrap_or(0);
                    let from = to_u64(read, "read marker")?.max(*joined);
                    let to = left.map_or(i64::MAX, to_i64);
                    let counted: Option<(i64, i64)> = count
                        .query_row(params![conv, to_i64(from), to, StoredId::of(&user)], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })
                        .optional()
                        .map_err(map_err)?;
                    let (messages, mentions) = counted.unwrap_or((0, 0));
                    out.push(Unread::new(
                        to_u64(messages, "count")?,
                        to_u64(mentions, "mention count")?,
                    ));
                }
                Ok(out)
            })
            .await
    }
}
