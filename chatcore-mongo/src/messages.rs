//! Conversations, their logs, delivery cursors, read markers and receipts.
//!
//! # How an entry gets its seq
//!
//! The `conversations` document is the only place where a seq is decided,
//! and it is decided together with the membership check and the entry
//! itself, in one single-document conditional update (atomic on MongoDB
//! and on jongodb alike):
//!
//! 1. Read the conversation: its head `last_seq = n`, `version`, members,
//!    `blocked` (non-empty: refused with `Blocked`, unless a retry), and
//!    `head`, the entry at `n`.
//! 2. Look up, in one query, an earlier message under the sender's client
//!    id (a retry: answered with that message, nothing stored) and whether
//!    `head` has its copy in `messages` (if not, its writer died or is
//!    still on its way: copy it now).
//! 3. Claim: `update_one({_id, last_seq: n, version}, {$set: {last_seq:
//!    n + 1, last_ts, head: <the entry>}})`. Matching on `version` pins the
//!    members read in 1 (every membership change bumps it), so a sender
//!    removed meanwhile matches nothing; so does a concurrent claim of
//!    n + 1; so does a block stored meanwhile (`blocked`, read in 1 and
//!    refused there, changes only with `version`). Nothing matched: read
//!    again (1). The membership and block checks, the seq and the entry
//!    itself are one atomic write, durable under the collection's majority
//!    write concern.
//! 4. Copy the entry into `messages` at `(conv, n + 1)`, where history,
//!    sync and unread counts read it.
//!
//! What this gives, with no transaction (jongodb's do not isolate) and no
//! `findAndModify` (jongodb's is a find, then an update by `_id` that
//! ignores the filter, then a find: neither the membership check nor the
//! returned seq would hold):
//!
//! - Gap-free seqs: seq n + 1 is claimed only after entry n is in
//!   `messages` (2), so `messages` holds every entry but at most the newest,
//!   which is then in the conversation's `head`. A writer that dies after
//!   its claim leaves nothing to fill with a void: its entry is stored, and
//!   the next writer, or a reader (`conversation`, `conversations`), copies
//!   it.
//! - Membership atomic with the append: a send racing the sender's removal
//!   either claims before the removal's notice or matches nothing and gets
//!   `NotMember`.
//! - Idempotency without burnt seqs: a retry finds its first message in
//!   `messages` (2) or, while its twin is in flight, as the conversation's
//!   `head` (1), whose copy step is then left to the twin.
//! - Cost: four round trips per uncontended append; each claim lost to a
//!   concurrent writer costs three more, and is that writer's success.
//!
//! A change of settings or members ([`MessageStore::change`]) is the same
//! compare-and-swap on `version` (and `last_seq` when it writes a notice,
//! which becomes the head like any entry).
//!
//! # Receipts
//!
//! A member's receipt in a conversation is one document of `receipts`,
//! `{conv, user, delivered, read, at}` (unique on `(conv, user)`), raised
//! in place: acknowledging or reading any number of messages never adds
//! one. An ack touches two documents, the device's cursor and the user's
//! receipt, and neither a transaction (jongodb's do not isolate) nor
//! `findAndModify` with `$max` (jongodb has no `$max`, and its
//! `findAndModify` neither re-checks the filter at the write nor returns
//! the document it wrote) makes them one atomic write here. What holds
//! instead:
//!
//! - **Order**: the cursor (or read marker) is raised first, the receipt
//!   after it, once the first write is durable. A crash or error between
//!   the two leaves the receipt behind what was acknowledged, never ahead
//!   of it; the receipt is raised on every call, whether the cursor rose
//!   or not, so the client's next ack or read (a retry, a later message)
//!   brings it up.
//! - **Highest wins**: the receipt is a compare-and-swap on its marks, as
//!   presence is: read `(delivered, read)`; if the new marks are no higher,
//!   nothing is written (`None`); else `update_one({conv, user, delivered,
//!   read}, {$set: the new marks, at})`, or, for a first receipt,
//!   `insert_one` arbitrated by the unique index; no match or a duplicate
//!   key means another device raised it meanwhile: read again. Marks only
//!   rise, so a pair of values never comes back and the swap has no ABA.
//!   The receipt returned is exactly the one written, so two devices
//!   racing never both report the same rise.
//! - **Cost**: one read when nothing rises (the other devices' acks of a
//!   message), one read and one write when a mark rises, after the
//!   cursor's one conditional upsert: three round trips for the first ack
//!   of a message, two for the others.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::Collection;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

use chatcore::model::{
    Content, ConversationId, DeviceId, MediaId, Message, MessageId, Millis, Receipt, UserId,
};
use chatcore::store::{
    Appended, Changed, ConversationState, Listing, Member, MessageStore, NewMessage, StoreError,
    StoreResult, Unread,
};

use crate::records::{bson_of, decode, info_doc, member_doc, pending_docs, ConvDoc, MessageDoc};
use crate::schema::{CONVERSATIONS, CURSORS, MESSAGES, READ_MARKERS, RECEIPTS};
use crate::{limit_i64, to_i64, to_u64, Inner};

/// Claims one append may lose to concurrent writers of the same
/// conversation before giving up with `Unavailable`. Every lost claim is
/// another writer's success, so this bounds only pathological contention.
const MAX_CLAIMS: usize = 10_000;

/// Batches in a row in which `expire` changed nothing (other nodes took
/// every entry it found) before it gives up until its next call.
const MAX_IDLE_EXPIRY_ROUNDS: usize = 3;

/// The relation kinds whose entries lose their content with their target.
const GO_WITH_TARGET: [&str; 2] = ["edit", "reaction"];

/// Compare-and-swaps one raise of a receipt may lose before giving up with
/// `Unavailable`: only the user's own devices race for it.
const MAX_RECEIPT_SWAPS: usize = 1_000;

/// A stored receipt (see the module docs).
#[derive(Deserialize)]
struct ReceiptDoc {
    user: String,
    delivered: i64,
    read: i64,
    at: Millis,
}

/// A cursor or read marker position.
#[derive(Deserialize)]
struct MarkDoc {
    conv: String,
    seq: i64,
}

/// Where an entry is in the log, for the head check.
#[derive(Deserialize)]
struct SlotDoc {
    #[serde(rename = "_id")]
    id: String,
    conv: String,
    seq: i64,
}

/// Conversations and everything positioned by seq, in five collections:
/// `conversations`, `messages`, `cursors`, `read_markers`, `receipts` (see
/// the module docs for how an entry is appended and a receipt raised).
#[derive(Clone)]
pub struct MongoMessageStore {
    inner: Arc<Inner>,
    messages: Collection<MessageDoc>,
    convs: Collection<ConvDoc>,
    cursors: Collection<Document>,
    read_markers: Collection<Document>,
    receipts: Collection<ReceiptDoc>,
}

impl MongoMessageStore {
    /// Runs an aggregation over the messages and collects what it yields.
    async fn aggregate(&self, pipeline: Vec<Document>) -> StoreResult<Vec<Document>> {
        let cursor = self
            .inner
            .run(
                self.messages
                    .clone_with_type::<Document>()
                    .aggregate(pipeline),
            )
            .await?;
        self.inner.run(cursor.try_collect()).await
    }

    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            messages: inner.durable(MESSAGES),
            convs: inner.durable(CONVERSATIONS),
            cursors: inner.durable(CURSORS),
            read_markers: inner.durable(READ_MARKERS),
            receipts: inner.durable(RECEIPTS),
            inner,
        }
    }

    async fn load(&self, conv: &str) -> StoreResult<Option<ConvDoc>> {
        self.inner
            .run(self.convs.find_one(doc! { "_id": conv }))
            .await
    }

    /// The message `from` sent under `client_id`, if any.
    async fn by_client_id(&self, from: &str, client_id: &str) -> StoreResult<Option<Message>> {
        let found = self
            .inner
            .run(
                self.messages
                    .find_one(doc! { "from": from, "client_id": client_id }),
            )
            .await?;
        found.map(MessageDoc::into_message).transpose()
    }

    /// The earlier message under `entry`'s client id as a duplicate, or `err`.
    async fn duplicate_or(&self, entry: &MessageDoc, err: StoreError) -> StoreResult<Appended> {
        match self.by_client_id(&entry.from, &entry.client_id).await? {
            Some(m) => Ok(Appended::duplicate(m)),
            None => Err(err),
        }
    }

    /// The id of the entry at `(conv, seq)` in `messages`, if any.
    async fn slot(&self, conv: &str, seq: i64) -> StoreResult<Option<String>> {
        let slots = self.messages.clone_with_type::<SlotDoc>();
        let found = self
            .inner
            .run(
                slots
                    .find_one(doc! { "conv": conv, "seq": seq })
                    .projection(doc! { "_id": 1, "conv": 1, "seq": 1 }),
            )
            .await?;
        Ok(found.map(|s| s.id))
    }

    /// Copies `entry` into `messages` at its seq, whoever does it first.
    /// True when the slot holds `entry`; false when it holds a void
    /// instead: the sender's client id was taken meanwhile by a message in
    /// another conversation (a client reusing a client id at once in two
    /// conversations), and the void keeps the log gap-free.
    async fn copy(&self, entry: &MessageDoc) -> StoreResult<bool> {
        match self.inner.run(self.messages.insert_one(entry)).await {
            Ok(_) => return Ok(true),
            Err(StoreError::Conflict { .. }) => {}
            Err(e) => return Err(e),
        }
        // Several unique indexes may refuse the same insert (a second copy
        // collides on `_id`, its seq and its client id at once): the slot
        // tells what happened.
        for _ in 0..3 {
            match self.slot(&entry.conv, entry.seq).await? {
                Some(id) => return Ok(id == entry.id),
                None => {
                    let void = MessageDoc::void(&entry.conv, entry.seq, &entry.from, entry.ts);
                    match self.inner.run(self.messages.insert_one(&void)).await {
                        Ok(_) => return Ok(false),
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "conversation {}: cannot settle seq {}",
            entry.conv, entry.seq
        )))
    }

    /// Copies the heads of `convs` that are missing from `messages` (their
    /// writers died between claim and copy, or are still on their way),
    /// with one query for the whole list.
    async fn settle(&self, convs: &[&ConvDoc]) -> StoreResult<()> {
        self.settle_heads(convs).await?;
        for c in convs {
            self.finish_deletion(c).await?;
        }
        Ok(())
    }

    /// The copy part of [`Self::settle`].
    async fn settle_heads(&self, convs: &[&ConvDoc]) -> StoreResult<()> {
        let heads: Vec<&MessageDoc> = convs.iter().filter_map(|c| c.pending_head()).collect();
        if heads.is_empty() {
            return Ok(());
        }
        let clauses: Vec<Document> = heads
            .iter()
            .map(|h| doc! { "conv": &h.conv, "seq": h.seq })
            .collect();
        let slots = self.messages.clone_with_type::<SlotDoc>();
        let cursor = self
            .inner
            .run(
                slots
                    .find(doc! { "$or": clauses })
                    .projection(doc! { "_id": 1, "conv": 1, "seq": 1 }),
            )
            .await?;
        let found: Vec<SlotDoc> = self.inner.run(cursor.try_collect()).await?;
        for h in heads {
            if !found.iter().any(|s| s.conv == h.conv && s.seq == h.seq) {
                self.copy(h).await?;
            }
        }
        Ok(())
    }

    /// Does again the removal of content that the deletion `c.deleting`
    /// (the head) may not have finished, then clears the mark: see
    /// [`Self::tombstone`]. Nothing to do, and no round trip, when the mark
    /// is clear.
    async fn finish_deletion(&self, c: &ConvDoc) -> StoreResult<()> {
        let Some(target) = &c.deleting else {
            return Ok(());
        };
        self.tombstone(&c.conv, target).await?;
        self.inner
            .run(self.convs.update_one(
                doc! { "_id": &c.conv, "deleting": target },
                doc! { "$unset": { "deleting": "" } },
            ))
            .await?;
        Ok(())
    }

    /// Removes the content of `target` in `conv` and of the edits and
    /// reactions pointing at it, in one `update_many` (`unique_seq` is not
    /// needed: `_id` and `conv_rel_target` find them): each becomes
    /// `Content::Deleted` without `expires_at`, keeping the rest. Not
    /// atomic across documents, and need not be: it is the same whenever
    /// it runs, so the deletion's mark (`deleting`) has it done again until
    /// it has run to the end once.
    async fn tombstone(&self, conv: &str, target: &str) -> StoreResult<()> {
        let (set, unset) = tombstone_update("")?;
        self.inner
            .run(self.messages.update_many(
                doc! { "conv": conv, "$or": [
                    { "_id": target },
                    { "rel.target": target, "rel.kind": { "$in": GO_WITH_TARGET.to_vec() } },
                ] },
                doc! { "$set": set, "$unset": unset },
            ))
            .await?;
        Ok(())
    }

    /// Claims `entry.seq == c.last_seq + 1` for `entry`, if `c` is still the
    /// stored conversation's head and version, writing `more` too. False
    /// when a concurrent writer or change came first.
    async fn claim(&self, c: &ConvDoc, entry: &MessageDoc, more: Document) -> StoreResult<bool> {
        let mut set = more;
        set.insert("last_seq", entry.seq);
        set.insert("last_ts", c.last_ts.max(entry.ts));
        set.insert("head", entry.to_bson()?);
        let r = self
            .inner
            .run(self.convs.update_one(
                doc! { "_id": &c.conv, "last_seq": c.last_seq, "version": c.version },
                doc! { "$set": set },
            ))
            .await?;
        Ok(r.matched_count == 1)
    }

    /// Whether `conv` exists, for telling `Stale` from `NotFound`.
    async fn exists(&self, conv: &str) -> StoreResult<bool> {
        let n = self
            .inner
            .run(self.convs.count_documents(doc! { "_id": conv }).limit(1))
            .await?;
        Ok(n > 0)
    }

    /// `seq` raised to at least `seq` in the `(filter)` document of `coll`,
    /// creating it if absent: a `$max` built from operations every
    /// MongoDB-compatible server supports (a conditional update, and an
    /// insert whose unique index arbitrates between racing creators).
    async fn raise(
        &self,
        coll: &Collection<Document>,
        filter: Document,
        seq: u64,
    ) -> StoreResult<()> {
        let seq = to_i64(seq);
        let mut below = filter.clone();
        below.insert("seq", doc! { "$lt": seq });
        let set = doc! { "$set": { "seq": seq } };
        let first = self
            .inner
            .run(coll.update_one(below.clone(), set.clone()).upsert(true))
            .await;
        if matches!(first, Err(StoreError::Conflict { .. })) {
            // The document exists already (the upsert's filter missed it
            // because its seq is not below ours, or another writer created
            // it meanwhile): raise it if it is still below.
            self.inner.run(coll.update_one(below, set)).await?;
            return Ok(());
        }
        first.map(|_| ())
    }

    /// Raises `user`'s receipt in `conv` to `delivered` and `read` (the
    /// caller passes `read <= delivered`), stamped `at`: the
    /// compare-and-swap of the module docs. The receipt written when a mark
    /// rose; `None` when none did, and for seq 0 (nothing received).
    async fn raise_receipt(
        &self,
        user: &UserId,
        conv: &ConversationId,
        delivered: u64,
        read: u64,
        at: Millis,
    ) -> StoreResult<Option<Receipt>> {
        if delivered == 0 {
            return Ok(None);
        }
        let key = doc! { "conv": &conv.0, "user": &user.0 };
        let raw = self.receipts.clone_with_type::<Document>();
        for _ in 0..MAX_RECEIPT_SWAPS {
            let stored =
                self.inner
                    .run(self.receipts.find_one(key.clone()).projection(
                        doc! { "_id": 0, "user": 1, "delivered": 1, "read": 1, "at": 1 },
                    ))
                    .await?;
            let (was_delivered, was_read) = match &stored {
                Some(r) => (to_u64(r.delivered, "delivered")?, to_u64(r.read, "read")?),
                None => (0, 0),
            };
            let new_read = was_read.max(read);
            let new_delivered = was_delivered.max(delivered).max(new_read);
            if (new_delivered, new_read) == (was_delivered, was_read) {
                return Ok(None);
            }
            let marks = doc! {
                "delivered": to_i64(new_delivered),
                "read": to_i64(new_read),
                "at": at,
            };
            let won = match &stored {
                Some(r) => {
                    let mut unchanged = key.clone();
                    unchanged.insert("delivered", r.delivered);
                    unchanged.insert("read", r.read);
                    let done = self
                        .inner
                        .run(raw.update_one(unchanged, doc! { "$set": marks }))
                        .await?;
                    done.matched_count == 1
                }
                None => {
                    let mut first = key.clone();
                    first.extend(marks);
                    match self.inner.run(raw.insert_one(first)).await {
                        Ok(_) => true,
                        // Created meanwhile by another device: read it.
                        Err(StoreError::Conflict { .. }) => false,
                        Err(e) => return Err(e),
                    }
                }
            };
            if won {
                return Ok(Some(Receipt {
                    conv: conv.clone(),
                    user: user.clone(),
                    delivered: new_delivered,
                    read: new_read,
                    at,
                }));
            }
        }
        Err(StoreError::Unavailable(format!(
            "{RECEIPTS}: the receipt of {user} in {conv} kept changing under {MAX_RECEIPT_SWAPS} \
             attempts to raise it"
        )))
    }

    async fn find_messages(
        &self,
        filter: Document,
        sort: Document,
        limit: usize,
    ) -> StoreResult<Vec<MessageDoc>> {
        let cursor = self
            .inner
            .run(
                self.messages
                    .find(filter)
                    .sort(sort)
                    .limit(limit_i64(limit)),
            )
            .await?;
        self.inner.run(cursor.try_collect()).await
    }
}

fn recipients(c: &ConvDoc) -> StoreResult<Arc<[Member]>> {
    c.members
        .iter()
        .filter(|m| m.left_seq.is_none())
        .cloned()
        .map(|m| m.into_member())
        .collect()
}

#[async_trait]
impl MessageStore for MongoMessageStore {
    async fn open_direct(&self, state: ConversationState) -> StoreResult<ConversationState> {
        let r = self
            .inner
            .run(self.convs.insert_one(ConvDoc::from_state(&state)))
            .await;
        match r {
            Ok(_) => Ok(state),
            // Opened before, or by the peer at the same moment: the stored one.
            Err(StoreError::Conflict { .. }) => match self.load(&state.conv.0).await? {
                Some(c) => c.into_state(),
                None => Err(StoreError::Unavailable(format!(
                    "conversation {}: refused as a duplicate, then not found",
                    state.conv.0
                ))),
            },
            Err(e) => Err(e),
        }
    }

    async fn create_group(
        &self,
        state: ConversationState,
        created: NewMessage,
    ) -> StoreResult<Arc<Message>> {
        let expires_at = state.expiry_of(&created);
        let mut entry = MessageDoc::new(created, 1);
        entry.expires_at = expires_at;
        let mut c = ConvDoc::from_state(&state);
        c.last_seq = 1;
        c.last_ts = c.last_ts.max(entry.ts);
        c.head = Some(entry.clone());
        match self.inner.run(self.convs.insert_one(&c)).await {
            Ok(_) => {}
            Err(StoreError::Conflict { .. }) => {
                return Err(StoreError::Conflict {
                    field: "conv".into(),
                })
            }
            Err(e) => return Err(e),
        }
        if let Err(e) = self.copy(&entry).await {
            // Stored as the head; readers copy it.
            tracing::warn!(conv = %c.conv, error = %e, "group created, its notice not yet copied");
        }
        Ok(Arc::new(entry.into_message()?))
    }

    async fn append(&self, msg: NewMessage) -> StoreResult<Appended> {
        let mut entry = MessageDoc::new(msg, 0);
        for _ in 0..MAX_CLAIMS {
            let Some(c) = self.load(&entry.conv).await? else {
                return self.duplicate_or(&entry, StoreError::NotFound).await;
            };
            if let Some(h) = &c.head {
                if h.from == entry.from && h.client_id == entry.client_id {
                    // A twin of this send claimed the head: it copies it.
                    return Ok(Appended::duplicate(h.clone().into_message()?));
                }
            }
            if !c.is_active(&entry.from) {
                return self.duplicate_or(&entry, StoreError::NotMember).await;
            }
            if !c.blocked.is_empty() {
                // Pinned by the claim's `version` like the members: a block
                // stored meanwhile makes the claim miss, and the next read
                // sees it.
                return self.duplicate_or(&entry, StoreError::Blocked).await;
            }
            if c.pending.iter().any(|p| p.user == entry.from) {
                // Pinned by `version` like `blocked`.
                return self.duplicate_or(&entry, StoreError::NotAccepted).await;
            }
            if c.encrypted && entry.content.is_plaintext() {
                // Pinned by `version` like `blocked`.
                return self.duplicate_or(&entry, StoreError::Encrypted).await;
            }
            // One query: an earlier message under this client id, and the
            // head's copy.
            let mut either = vec![doc! { "from": &entry.from, "client_id": &entry.client_id }];
            let head = c.pending_head();
            if let Some(h) = head {
                either.push(doc! { "conv": &h.conv, "seq": h.seq });
            }
            let found = self
                .find_messages(doc! { "$or": either }, doc! { "seq": 1 }, 2)
                .await?;
            if let Some(d) = found
                .iter()
                .find(|d| d.from == entry.from && d.client_id == entry.client_id)
            {
                return Ok(Appended::duplicate(d.clone().into_message()?));
            }
            if let Some(h) = head {
                if !found.iter().any(|d| d.conv == h.conv && d.seq == h.seq) {
                    self.copy(h).await?;
                }
            }
            // Entry n's deletion is done before n + 1 is claimed, as its
            // copy is.
            self.finish_deletion(&c).await?;
            entry.seq = c.last_seq + 1;
            entry.expires_at = c.expiry_of(&entry);
            let more = match entry.deletes() {
                Some(target) => doc! { "deleting": target },
                None => Document::new(),
            };
            if !self.claim(&c, &entry, more).await? {
                continue;
            }
            let recipients = recipients(&c)?;
            let copied = self.copy(&entry).await;
            if let Some(target) = entry.deletes() {
                // The claim marked the conversation: should this fail or
                // the process die, the next append or reader does it.
                let mut c = c;
                c.deleting = Some(target.to_owned());
                if let Err(e) = self.finish_deletion(&c).await {
                    tracing::warn!(conv = %entry.conv, seq = entry.seq, error = %e,
                        "deletion stored, its target's content not yet removed");
                }
            }
            return match copied {
                Ok(true) => Ok(Appended::stored(entry.into_message()?, recipients)),
                Ok(false) => {
                    self.duplicate_or(
                        &entry,
                        StoreError::Conflict {
                            field: "client_id".into(),
                        },
                    )
                    .await
                }
                Err(e) => {
                    // The claim stored the entry as the head, durably:
                    // the next writer or reader copies it.
                    tracing::warn!(conv = %entry.conv, seq = entry.seq, error = %e,
                        "message stored as the head, not yet copied");
                    Ok(Appended::stored(entry.into_message()?, recipients))
                }
            };
        }
        Err(StoreError::Unavailable(format!(
            "conversation {}: gave up after {MAX_CLAIMS} contended appends",
            entry.conv
        )))
    }

    async fn change(
        &self,
        state: &ConversationState,
        notice: Option<NewMessage>,
    ) -> StoreResult<Changed> {
        let conv = state.conv.0.as_str();
        let mut set = doc! {
            "info": bson_of(&info_doc(&state.info))?,
            "members": bson_of(&state.members.iter().map(member_doc).collect::<Vec<_>>())?,
            "invite": state.invite.as_deref().map_or(Bson::Null, |i| Bson::String(i.to_owned())),
            "blocked": state.blocked.iter().map(|u| u.0.as_str()).collect::<Vec<_>>(),
            "pending": bson_of(&pending_docs(&state.pending))?,
            "version": to_i64(state.version),
        };
        if state.encrypted {
            // Set, never unset.
            set.insert("encrypted", true);
        }
        set.insert(
            "expire_after",
            state.expire_after.map_or(Bson::Null, Bson::Int64),
        );
        let stale = || async {
            if self.exists(conv).await? {
                Ok(Changed::Stale)
            } else {
                Err(StoreError::NotFound)
            }
        };
        // Version 0 is a new conversation's: no change leads to it.
        let Some(prev_version) = state.version.checked_sub(1) else {
            return stale().await;
        };
        let prev_version = to_i64(prev_version);
        let Some(notice) = notice else {
            let r = self
                .inner
                .run(self.convs.update_one(
                    doc! { "_id": conv, "version": prev_version },
                    doc! { "$set": set },
                ))
                .await?;
            return if r.matched_count == 1 {
                Ok(Changed::Done(None))
            } else {
                stale().await
            };
        };
        let Some(c) = self.load(conv).await? else {
            return Err(StoreError::NotFound);
        };
        if c.version != prev_version || c.last_seq.checked_add(1) != Some(to_i64(state.last_seq)) {
            return Ok(Changed::Stale);
        }
        self.settle(&[&c]).await?;
        // Stamped by the state it lands with, as the next entry.
        let expires_at = state.expiry_of(&notice);
        let mut entry = MessageDoc::new(notice, state.last_seq);
        entry.expires_at = expires_at;
        if !self.claim(&c, &entry, set).await? {
            return stale().await;
        }
        match self.copy(&entry).await {
            Ok(true) => {}
            // A notice's client id is its own fresh id: never taken.
            Ok(false) => tracing::error!(conv, seq = entry.seq, "a notice's slot holds a void"),
            Err(e) => tracing::warn!(conv, seq = entry.seq, error = %e,
                "notice stored as the head, not yet copied"),
        }
        Ok(Changed::Done(Some(Arc::new(entry.into_message()?))))
    }

    async fn set_muted(
        &self,
        user: &UserId,
        conv: &ConversationId,
        until: Option<Millis>,
    ) -> StoreResult<()> {
        let r = self
            .inner
            .run(
                self.convs
                    .update_one(
                        doc! { "_id": &conv.0, "members.user": &user.0 },
                        doc! { "$set": { "members.$[m].muted_until": until } },
                    )
                    .array_filters(vec![doc! { "m.user": &user.0 }]),
            )
            .await?;
        if r.matched_count == 1 {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }

    async fn by_invite(&self, invite: &str) -> StoreResult<Option<ConversationState>> {
        let found = self
            .inner
            .run(self.convs.find_one(doc! { "invite": invite }))
            .await?;
        found.map(ConvDoc::into_state).transpose()
    }

    async fn history(
        &self,
        conv: &ConversationId,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let filter = match before {
            Some(b) => doc! { "conv": &conv.0, "seq": { "$lt": to_i64(b) } },
            None => doc! { "conv": &conv.0 },
        };
        let docs = self
            .find_messages(filter, doc! { "seq": -1 }, limit)
            .await?;
        docs.into_iter()
            .rev()
            .map(MessageDoc::into_message)
            .collect()
    }

    async fn by_ids(&self, conv: &ConversationId, ids: &[MessageId]) -> StoreResult<Vec<Message>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One query on `_id` (ids are unique across conversations; `conv`
        // keeps another conversation's out).
        let ids: Vec<&str> = ids.iter().map(|i| i.0.as_str()).collect();
        let docs = self
            .find_messages(
                doc! { "conv": &conv.0, "_id": { "$in": &ids } },
                doc! { "seq": 1 },
                ids.len(),
            )
            .await?;
        docs.into_iter().map(MessageDoc::into_message).collect()
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
        // One query on `conv_rel_target`, partial on `rel.target` existing
        // (which the filter states, so that the index is eligible).
        let targets: Vec<&str> = targets.iter().map(|i| i.0.as_str()).collect();
        let mut filter = doc! {
            "conv": &conv.0,
            "rel.target": { "$exists": true, "$in": &targets },
            "rel.kind": { "$in": ["edit", "reaction", "delete"] },
        };
        if let Some(from) = from {
            filter.insert("from", &from.0);
        }
        let cursor = self
            .inner
            .run(self.messages.find(filter).sort(doc! { "seq": 1 }))
            .await?;
        let docs: Vec<MessageDoc> = self.inner.run(cursor.try_collect()).await?;
        docs.into_iter().map(MessageDoc::into_message).collect()
    }

    async fn media_in_use(&self, ids: &[MediaId]) -> StoreResult<Vec<MediaId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<&str> = ids.iter().map(MediaId::as_str).collect();
        // One aggregation: the live entries listing any of the ids, on the
        // partial multikey index `media` (a tombstone unsets the list, so
        // deleted and expired entries are not in it), each id once; then,
        // through `$unionWith`, the groups whose avatar is one of them, on
        // `info_avatar`.
        let pipeline = vec![
            doc! { "$match": { "media": { "$exists": true, "$in": &wanted } } },
            doc! { "$project": { "_id": 0, "media": 1 } },
            doc! { "$unwind": "$media" },
            doc! { "$match": { "media": { "$in": &wanted } } },
            doc! { "$group": { "_id": "$media" } },
            doc! { "$unionWith": {
                "coll": CONVERSATIONS,
                "pipeline": [
                    { "$match": { "info.avatar": { "$in": &wanted } } },
                    { "$group": { "_id": "$info.avatar" } },
                ],
            } },
        ];
        let found = self.aggregate(pipeline).await?;
        let mut out: Vec<MediaId> = Vec::with_capacity(found.len());
        for d in found {
            let id = d
                .get_str("_id")
                .map_err(|_| StoreError::Corrupt(format!("media in use: not a media id: {d}")))?;
            out.push(MediaId::from(id));
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    async fn expire(&self, now: Millis, limit: usize) -> StoreResult<usize> {
        #[derive(Deserialize)]
        struct Due {
            #[serde(rename = "_id")]
            id: String,
            conv: String,
        }
        let (set, unset) = tombstone_update("")?;
        let (head_set, head_unset) = tombstone_update("head.")?;
        let due_docs = self.messages.clone_with_type::<Due>();
        let (mut handled, mut idle) = (0, 0);
        while handled < limit {
            // 1. The due entries, oldest first, on `expires_at` (partial:
            // only the entries that still expire are in it).
            let cursor = self
                .inner
                .run(
                    due_docs
                        .find(doc! { "expires_at": { "$exists": true, "$lte": now } })
                        .sort(doc! { "expires_at": 1 })
                        .projection(doc! { "_id": 1, "conv": 1 })
                        .limit(limit_i64(limit - handled)),
                )
                .await?;
            let due: Vec<Due> = self.inner.run(cursor.try_collect()).await?;
            if due.is_empty() {
                break;
            }
            let ids: Vec<&str> = due.iter().map(|d| d.id.as_str()).collect();
            let mut convs: Vec<&str> = due.iter().map(|d| d.conv.as_str()).collect();
            convs.sort_unstable();
            convs.dedup();
            // 2. Their edits and reactions first: the entries keep their
            // `expires_at` until 3, so a crash in between leaves them due.
            self.inner
                .run(self.messages.update_many(
                    doc! {
                        "conv": { "$in": &convs },
                        "rel.target": { "$exists": true, "$in": &ids },
                        "rel.kind": { "$in": GO_WITH_TARGET.to_vec() },
                    },
                    doc! { "$set": set.clone(), "$unset": unset.clone() },
                ))
                .await?;
            // 3. The entries still due (an edit due with its message went
            // with it in 2, uncounted).
            let done = self
                .inner
                .run(self.messages.update_many(
                    doc! { "_id": { "$in": &ids }, "expires_at": { "$exists": true } },
                    doc! { "$set": set.clone(), "$unset": unset.clone() },
                ))
                .await?;
            // 4. The copy of any of them that is its conversation's head
            // (what a retry of the head's send is answered with).
            self.inner
                .run(self.convs.update_many(
                    doc! { "_id": { "$in": &convs }, "$or": [
                        { "head._id": { "$in": &ids } },
                        {
                            "head.rel.target": { "$in": &ids },
                            "head.rel.kind": { "$in": GO_WITH_TARGET.to_vec() },
                        },
                    ] },
                    doc! { "$set": head_set.clone(), "$unset": head_unset.clone() },
                ))
                .await?;
            let n = usize::try_from(done.modified_count).unwrap_or(usize::MAX);
            handled += n.min(limit - handled);
            if n == 0 {
                // Every one was handled meanwhile by another node: read
                // again, they are out of the index now. Bounded, should a
                // server keep answering with entries it does not change.
                idle += 1;
                if idle >= MAX_IDLE_EXPIRY_ROUNDS {
                    break;
                }
            }
        }
        Ok(handled)
    }

    async fn read_after(
        &self,
        conv: &ConversationId,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let docs = self
            .find_messages(
                doc! { "conv": &conv.0, "seq": { "$gt": to_i64(after) } },
                doc! { "seq": 1 },
                limit,
            )
            .await?;
        // Only the newest entry can be missing (claimed, not yet copied),
        // so this run has no gap; stopping at one anyway keeps the promise
        // whatever an operator did to the collection.
        let mut out = Vec::with_capacity(docs.len());
        for (expected, d) in (after.saturating_add(1)..).zip(docs) {
            let m = d.into_message()?;
            if m.seq != expected {
                break;
            }
            out.push(m);
        }
        Ok(out)
    }

    async fn last_entries(
        &self,
        heads: &[(ConversationId, u64)],
    ) -> StoreResult<Vec<Option<Message>>> {
        // The highest head asked for each conversation.
        let mut wanted: HashMap<&str, u64> = HashMap::new();
        for (conv, head) in heads.iter().filter(|(_, h)| *h > 0) {
            let w = wanted.entry(conv.0.as_str()).or_default();
            *w = (*w).max(*head);
        }
        let mut newest: HashMap<String, Message> = HashMap::new();
        if !wanted.is_empty() {
            let clauses: Vec<Document> = wanted
                .iter()
                .map(|(c, h)| doc! { "conv": *c, "seq": { "$lte": to_i64(*h) } })
                .collect();
            let pipeline = vec![
                doc! { "$match": { "$or": clauses } },
                doc! { "$sort": { "conv": 1, "seq": -1 } },
                doc! { "$group": { "_id": "$conv", "entry": { "$first": "$$ROOT" } } },
            ];
            let groups = self.aggregate(pipeline).await?;
            for g in groups {
                let entry = g
                    .get_document("entry")
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let m = decode::<MessageDoc>(entry.clone())?.into_message()?;
                newest.insert(m.conv.0.clone(), m);
            }
        }
        let mut out = Vec::with_capacity(heads.len());
        for (conv, head) in heads {
            let found = match newest.get(&conv.0) {
                _ if *head == 0 => None,
                Some(m) if m.seq <= *head => Some(m.clone()),
                // The same conversation asked twice, this time with a
                // lower head: the log is gap-free, so it is that entry.
                Some(_) => self
                    .find_messages(
                        doc! { "conv": &conv.0, "seq": { "$lte": to_i64(*head) } },
                        doc! { "seq": -1 },
                        1,
                    )
                    .await?
                    .pop()
                    .map(MessageDoc::into_message)
                    .transpose()?,
                None => None,
            };
            out.push(found);
        }
        Ok(out)
    }

    async fn conversation(&self, conv: &ConversationId) -> StoreResult<Option<ConversationState>> {
        let Some(c) = self.load(&conv.0).await? else {
            return Ok(None);
        };
        self.settle(&[&c]).await?;
        c.into_state().map(Some)
    }

    async fn conversations(
        &self,
        user: &UserId,
        listing: Listing,
        after: Option<&(Millis, ConversationId)>,
        limit: usize,
    ) -> StoreResult<Vec<ConversationState>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // A direct conversation opened but never written to is not listed:
        // the peer did not choose it.
        let mut all = vec![doc! { "$or": [
            { "kind": { "$ne": "direct" } },
            { "last_seq": { "$gt": 0_i64 } },
        ] }];
        if let Some((ts, conv)) = after {
            all.push(doc! { "$or": [
                { "last_ts": { "$lt": *ts } },
                { "last_ts": *ts, "_id": { "$gt": &conv.0 } },
            ] });
        }
        let filter = match listing {
            Listing::Requests => {
                all.push(doc! { "blocked": { "$ne": &user.0 } });
                doc! { "pending.user": &user.0, "$and": all }
            }
            Listing::Main => doc! {
                "members.user": &user.0,
                "pending.user": { "$ne": &user.0 },
                "$and": all,
            },
            _ => doc! { "members.user": &user.0, "$and": all },
        };
        // `Listing::shows` decides; the query narrows to a superset only
        // where a request the user deleted has nothing new for them (its
        // readable range is empty), which is skipped here: a page is read
        // on until it is full or the cursor ends.
        let find = self
            .convs
            .find(filter)
            .sort(doc! { "last_ts": -1, "_id": 1 })
            .batch_size(u32::try_from(limit).unwrap_or(u32::MAX));
        let mut cursor = match listing {
            Listing::Requests => self.inner.run(find).await?,
            // Exact: a page is at most `limit` documents.
            _ => self.inner.run(find.limit(limit_i64(limit))).await?,
        };
        let mut docs: Vec<ConvDoc> = Vec::with_capacity(limit.min(64));
        while docs.len() < limit {
            let Some(d) = self.inner.run(cursor.try_next()).await? else {
                break;
            };
            docs.push(d);
        }
        self.settle(&docs.iter().collect::<Vec<_>>()).await?;
        let mut states = Vec::with_capacity(docs.len());
        for d in docs {
            let state = d.into_state()?;
            if listing.shows(&state, user) {
                states.push(state);
            }
        }
        Ok(states)
    }

    async fn set_cursor(
        &self,
        user: &UserId,
        device: &DeviceId,
        conv: &ConversationId,
        seq: u64,
        at: Millis,
    ) -> StoreResult<Option<Receipt>> {
        let filter = doc! { "user": &user.0, "device": &device.0, "conv": &conv.0 };
        // The cursor first: the receipt never gets ahead of it (module docs).
        self.raise(&self.cursors, filter, seq).await?;
        self.raise_receipt(user, conv, seq, 0, at).await
    }

    async fn cursors(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> StoreResult<HashMap<ConversationId, u64>> {
        let marks = self.cursors.clone_with_type::<MarkDoc>();
        let cursor = self
            .inner
            .run(
                marks
                    .find(doc! { "user": &user.0, "device": &device.0 })
                    .projection(doc! { "conv": 1, "seq": 1 }),
            )
            .await?;
        let docs: Vec<MarkDoc> = self.inner.run(cursor.try_collect()).await?;
        docs.into_iter()
            .map(|m| Ok((ConversationId(m.conv), to_u64(m.seq, "cursor")?)))
            .collect()
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conv: &ConversationId,
        seq: u64,
        share: bool,
        at: Millis,
    ) -> StoreResult<Option<Receipt>> {
        let filter = doc! { "user": &user.0, "conv": &conv.0 };
        // The read marker first, as the cursor in `set_cursor`.
        self.raise(&self.read_markers, filter, seq).await?;
        let read = if share { seq } else { 0 };
        self.raise_receipt(user, conv, seq, read, at).await
    }

    async fn receipts(&self, conv: &ConversationId, since: Millis) -> StoreResult<Vec<Receipt>> {
        // One query on `unique_receipt` (conv, user): a conversation holds
        // one document per member who received anything.
        let cursor = self
            .inner
            .run(
                self.receipts
                    .find(doc! { "conv": &conv.0, "at": { "$gte": since } })
                    .projection(doc! { "_id": 0, "user": 1, "delivered": 1, "read": 1, "at": 1 })
                    .sort(doc! { "user": 1 }),
            )
            .await?;
        let docs: Vec<ReceiptDoc> = self.inner.run(cursor.try_collect()).await?;
        let mut out = docs
            .into_iter()
            .map(|r| {
                Ok(Receipt {
                    conv: conv.clone(),
                    user: UserId(r.user),
                    delivered: to_u64(r.delivered, "delivered")?,
                    read: to_u64(r.read, "read")?,
                    at: r.at,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        // Byte order whatever the server's string order (a no-op where it is
        // the same, as on MongoDB without a collation).
        out.sort_by(|a, b| a.user.0.as_bytes().cmp(b.user.0.as_bytes()));
        Ok(out)
    }

    async fn unread(
        &self,
        user: &UserId,
        convs: &[&ConversationState],
    ) -> StoreResult<Vec<Unread>> {
        if convs.is_empty() {
            return Ok(Vec::new());
        }
        // Round trip 1: the read markers of every conversation listed.
        let ids: Vec<&str> = convs.iter().map(|c| c.conv.0.as_str()).collect();
        let marks = self.read_markers.clone_with_type::<MarkDoc>();
        let cursor = self
            .inner
            .run(
                marks
                    .find(doc! { "user": &user.0, "conv": { "$in": &ids } })
                    .projection(doc! { "conv": 1, "seq": 1 }),
            )
            .await?;
        let read: HashMap<String, i64> = self
            .inner
            .run(cursor.try_collect::<Vec<MarkDoc>>())
            .await?
            .into_iter()
            .map(|m| (m.conv, m.seq))
            .collect();
        // Round trip 2: two counts per conversation, of the messages by
        // others in (max(read marker, joined), left or head] (on
        // `unique_seq`), and of those that mention the user.
        let mut clauses = Vec::new();
        for c in convs {
            let Some(m) = c.member(user) else { continue };
            let read = read.get(&c.conv.0).copied().unwrap_or(0);
            // From the joining entry on, that entry included (a notice in a
            // group, not counted; a deleted request's next message).
            let lo = read.max(to_i64(m.joined_seq.saturating_sub(1)));
            let mut seq = doc! { "$gt": lo };
            if let Some(left) = m.left_seq {
                if to_i64(left) <= lo {
                    continue;
                }
                seq.insert("$lte", to_i64(left));
            }
            clauses.push(doc! { "conv": &c.conv.0, "seq": seq });
        }
        let mut counts: HashMap<String, Unread> = HashMap::new();
        if !clauses.is_empty() {
            // Both counts from one `$match` in one aggregation: `$facet`
            // runs a `$group` on its documents, and another on those that
            // mention the user (a multikey match on `mentions`; jongodb has
            // no `$cond` to count both in one `$group`).
            let by_conv = doc! { "$group": { "_id": "$conv", "n": { "$sum": 1 } } };
            let pipeline = vec![
                doc! { "$match": {
                    "$or": clauses,
                    "from": { "$ne": &user.0 },
                    "notice": { "$ne": true },
                } },
                doc! { "$facet": {
                    "messages": [by_conv.clone()],
                    "mentions": [{ "$match": { "mentions": &user.0 } }, by_conv],
                } },
            ];
            let facets = self.aggregate(pipeline).await?;
            let corrupt = |e: mongodb::bson::document::ValueAccessError| {
                StoreError::Corrupt(format!("unread counts: {e}"))
            };
            for f in &facets {
                for (facet, mentions) in [("messages", false), ("mentions", true)] {
                    for g in f.get_array(facet).map_err(corrupt)? {
                        let Bson::Document(g) = g else {
                            return Err(StoreError::Corrupt(format!("unread count {g:?}")));
                        };
                        let conv = g.get_str("_id").map_err(corrupt)?;
                        let n = match g.get("n") {
                            Some(Bson::Int32(n)) => i64::from(*n),
                            Some(Bson::Int64(n)) => *n,
                            Some(Bson::Double(n)) => *n as i64,
                            other => {
                                return Err(StoreError::Corrupt(format!("unread count {other:?}")));
                            }
                        };
                        let n = to_u64(n, "unread count")?;
                        let counts = counts.entry(conv.to_owned()).or_default();
                        if mentions {
                            counts.mentions = n;
                        } else {
                            counts.messages = n;
                        }
                    }
                }
            }
        }
        Ok(convs
            .iter()
            .map(|c| {
                if c.member(user).is_none() {
                    return Unread::default();
                }
                counts.get(&c.conv.0).copied().unwrap_or_default()
            })
            .collect())
    }
}

/// The `$set` and `$unset` that make a message document under `prefix`
/// (`""`, or `"head."` for a conversation's head) a tombstone: no content,
/// no expiry, no files (so that they can be collected), the rest kept.
fn tombstone_update(prefix: &str) -> StoreResult<(Document, Document)> {
    let mut set = Document::new();
    set.insert(format!("{prefix}content"), bson_of(&Content::Deleted {})?);
    let mut unset = Document::new();
    unset.insert(format!("{prefix}expires_at"), "");
    unset.insert(format!("{prefix}media"), "");
    Ok((set, unset))
}
