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

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chatcore::model::{
    Content, ConversationId, ConversationKind, DeviceId, Message, MessageId, Millis, Receipt, Role,
    UserId,
};
use chatcore::store::{
    Appended, Changed, ConversationState, GroupInfo, Listing, Member, MessageStore, NewMessage,
    Pending, StoreError, StoreResult,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

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
const MESSAGE_COLUMNS: &str = "m.id, c.id, m.seq, m.sender, m.client_id, m.ts, m.content";

/// The entries of one conversation, by id (`?1`).
const MESSAGES_OF: &str = "messages m JOIN conversations c ON c.key = m.conv WHERE m.conv = \
                           (SELECT key FROM conversations WHERE id = ?1)";

fn message_row(
    row: &Row<'_>,
) -> rusqlite::Result<(LogId, String, i64, LogId, String, Millis, String)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
    ))
}

fn into_message(
    (LogId(id), conv, seq, LogId(from), client_id, ts, content): (
        LogId,
        String,
        i64,
        LogId,
        String,
        Millis,
        String,
    ),
) -> StoreResult<Message> {
    Ok(Message {
        id: MessageId(id),
        conv: ConversationId(conv),
        seq: to_u64(seq, "seq")?,
        from: UserId(from),
        client_id,
        ts,
        content: from_json::<Content>(&content, "content")?,
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
}

const CONV_COLUMNS: &str = "id, kind, created_at, title, description, avatar, history_visible, \
                            last_seq, last_ts, version, invite, blocked, encrypted";

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
         ?10, ?11, ?12, ?13)"
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
        ])
    })
    .map_err(map_err)?;
    let key = c.last_insert_rowid();
    write_members(c, s)?;
    Ok(key)
}

/// Writes `msg` at `seq` in the conversation of integer key `key` and
/// moves the head there.
fn insert_entry(c: &Connection, key: i64, msg: NewMessage, seq: u64) -> StoreResult<Message> {
    let content = to_json(&msg.content)?;
    c.prepare_cached(
        "INSERT INTO messages (conv, seq, id, sender, client_id, ts, notice, content) VALUES \
         (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .and_then(|mut s| {
        s.execute(params![
            key,
            to_i64(seq),
            StoredId::of(&msg.id.0),
            StoredId::of(&msg.from.0),
            msg.client_id,
            msg.ts,
            !msg.content.is_message(),
            content,
        ])
    })
    .map_err(map_err)?;
    c.prepare_cached(
        "UPDATE conversations SET last_seq = ?2, last_ts = max(last_ts, ?3) WHERE key = ?1",
    )
    .and_then(|mut s| s.execute(params![key, to_i64(seq), msg.ts]))
    .map_err(map_err)?;
    Ok(msg.into_message(seq))
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
        Checked::Duplicate(existing) => return Ok(Appended::duplicate(existing)),
        Checked::At(e, seq) => (e, seq),
    };
    let ts = msg.ts;
    let message = insert_entry(c, e.key, msg, seq).map_err(Unguarded::After)?;
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
    /// A retry: the message stored under the same `(from, client_id)`.
    Duplicate(Message),
    /// A new entry, at this seq of this conversation.
    At(Entry, u64),
}

/// The checks of an append, reads only.
fn append_checked(c: &Connection, cache: &ConvCache, msg: &NewMessage) -> StoreResult<Checked> {
    if let Some(existing) = by_client_id(c, &msg.from.0, &msg.client_id)? {
        return Ok(Checked::Duplicate(existing));
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
                let message = Arc::new(insert_entry(c, key, created, seq)?);
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
                     encrypted = (encrypted OR ?9) WHERE id = ?1",
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
                    ],
                )
                .map_err(map_err)?;
                write_members(c, &state)?;
                let message = match notice {
                    Some(n) => Some(Arc::new(insert_entry(c, key, n, last_seq + 1)?)),
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

    async fn unread(&self, user: &UserId, convs: &[&ConversationState]) -> StoreResult<Vec<u64>> {
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
                let mut count = c
                    .prepare_cached(
                        "SELECT count(*) FROM messages WHERE conv = (SELECT key FROM \
                         conversations WHERE id = ?1) AND seq > ?2 AND seq <= \
                         ?3 AND notice = 0 AND sender <> ?4",
                    )
                    .map_err(map_err)?;
                let mut out = Vec::with_capacity(windows.len());
                for w in &windows {
                    let Some((conv, joined, left)) = w else {
                        out.push(0);
                        continue;
                    };
                    let read: i64 = marker
                        .query_row([&user, conv], |r| r.get(0))
                        .optional()
                        .map_err(map_err)?
                        .unwrap_or(0);
                    let from = to_u64(read, "read marker")?.max(*joined);
                    let to = left.map_or(i64::MAX, to_i64);
                    let n: i64 = count
                        .query_row(params![conv, to_i64(from), to, StoredId::of(&user)], |r| {
                            r.get(0)
                        })
                        .map_err(map_err)?;
                    out.push(to_u64(n, "count")?);
                }
                Ok(out)
            })
            .await
    }
}
