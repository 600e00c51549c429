//! Conversations and their logs in memory.

use async_trait::async_trait;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use super::lock;
use crate::model::{
    Content, ConversationId, DeviceId, MediaId, Message, MessageId, Millis, Receipt, RelKind,
    UserId,
};
use crate::store::{
    Appended, Changed, ConversationState, Listing, Member, MessageStore, NewMessage, StoreError,
    StoreResult, Unread,
};
use crate::{IdMap, IdSet};

/// Conversations in memory.
#[derive(Default)]
pub struct MemoryMessageStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    convs: IdMap<ConversationId, Conv>,
    /// sender -> client_id -> the message: the idempotency index.
    /// Nested rather than keyed by a pair so a lookup borrows the frame's
    /// strings instead of cloning them into a key.
    by_client_id: IdMap<UserId, IdMap<String, Arc<Message>>>,
    /// Every conversation a user is or was a member of, or was invited to
    /// (the listings filter: [`Listing::shows`]).
    by_member: IdMap<UserId, IdSet<ConversationId>>,
    /// Active invite token hash -> group.
    by_invite: HashMap<String, ConversationId>,
    cursors: IdMap<(UserId, DeviceId), HashMap<ConversationId, u64>>,
    /// user -> conversation -> read marker (nested for clone-free lookups).
    read: IdMap<UserId, IdMap<ConversationId, u64>>,
    /// The entries that expire, by when: `(expires_at, conv, seq)`.
    expiring: BTreeSet<(Millis, ConversationId, u64)>,
}

struct Conv {
    state: ConversationState,
    /// The current members' ids, shared by the appends until a change.
    recipients: Arc<[Member]>,
    /// `messages[i].seq == i + 1`. Shared with the pushes of each message.
    messages: Vec<Arc<Message>>,
    /// Each sender's message seqs (not notices), ascending: unread counts
    /// by binary search instead of a scan of every unread message. A list,
    /// not a map: a conversation has few senders, and comparing a few ids
    /// costs less than hashing one.
    by_sender: Vec<(UserId, Vec<u64>)>,
    /// Each member's receipt, ordered by user (a few per conversation).
    receipts: Vec<Receipt>,
    /// Message id -> seq ([`IdKey`]), made the first time an id is looked
    /// up here and kept from then on: a conversation where nothing points
    /// at a message (the plain relay) never pays for it.
    by_id: Option<IdMap<IdKey, u64>>,
    /// Target id -> the seqs of the edits, reactions and deletions that
    /// point at it, ascending.
    related: IdMap<MessageId, Vec<u64>>,
    /// Each member's seqs of the messages that mention it, ascending.
    mentions: Vec<(UserId, Vec<u64>)>,
    /// How many live entries list each uploaded file (a deletion or expiry
    /// takes its entries' away): what [`MessageStore::media_in_use`] reads.
    media: IdMap<MediaId, u32>,
}

impl Conv {
    /// Raises `user`'s receipt to `delivered` (and `read`, when given) at
    /// `at`; returns it if a mark rose.
    fn raise(
        &mut self,
        user: &UserId,
        delivered: u64,
        read: Option<u64>,
        at: Millis,
    ) -> Option<Receipt> {
        if delivered == 0 {
            return None;
        }
        let i = match self.receipts.binary_search_by(|r| r.user.cmp(user)) {
            Ok(i) => i,
            Err(i) => {
                self.receipts.insert(
                    i,
                    Receipt {
                        conv: self.state.conv.clone(),
                        user: user.clone(),
                        delivered: 0,
                        read: 0,
                        at,
                    },
                );
                i
            }
        };
        let r = &mut self.receipts[i];
        let read = read.unwrap_or(0).max(r.read);
        let delivered = delivered.max(r.delivered).max(read);
        if (delivered, read) == (r.delivered, r.read) {
            return None;
        }
        r.delivered = delivered;
        r.read = read;
        r.at = at;
        Some(r.clone())
    }
}

impl Conv {
    fn new(state: ConversationState) -> Self {
        Self {
            recipients: recipients(&state),
            state,
            messages: Vec::new(),
            by_sender: Vec::new(),
            receipts: Vec::new(),
            by_id: None,
            related: IdMap::default(),
            mentions: Vec::new(),
            media: IdMap::default(),
        }
    }

    /// Stores `msg` as the next entry.
    fn push(&mut self, msg: NewMessage) -> Arc<Message> {
        let seq = self.messages.len() as u64 + 1;
        if msg.stands_alone() {
            push_seq(&mut self.by_sender, &msg.from, seq);
            for (i, user) in msg.mentions.iter().enumerate() {
                // Each mentioned user once, whatever the list repeats.
                if !msg.mentions[..i].contains(user) {
                    push_seq(&mut self.mentions, user, seq);
                }
            }
        }
        if let Some(rel) = msg.rel.as_ref().filter(|r| r.kind != RelKind::Reply) {
            self.related
                .entry(rel.target.clone())
                .or_default()
                .push(seq);
        }
        for id in &msg.media {
            *self.media.entry(id.clone()).or_default() += 1;
        }
        self.state.last_seq = seq;
        self.state.last_ts = self.state.last_ts.max(msg.ts);
        let expires_at = self.state.expiry_of(&msg);
        let message = Arc::new(msg.into_message(seq, expires_at));
        if let Some(by_id) = &mut self.by_id {
            by_id.insert(IdKey::of(&message.id), seq);
        }
        self.messages.push(message.clone());
        message
    }

    /// The seq of the entry with id `id`.
    fn seq_of(&mut self, id: &MessageId) -> Option<u64> {
        let messages = &self.messages;
        let by_id = self
            .by_id
            .get_or_insert_with(|| messages.iter().map(|m| (IdKey::of(&m.id), m.seq)).collect());
        by_id.get(&IdKey::of(id)).copied()
    }

    /// The entry at `seq`.
    fn at(&self, seq: u64) -> Option<&Arc<Message>> {
        self.messages.get(seq_index(seq))
    }

    /// Removes the content of the entry at `seq` and of the edits and
    /// reactions pointing at it; returns the entries it changed.
    fn tombstone(&mut self, seq: u64) -> Vec<Arc<Message>> {
        let Some(target) = self.at(seq).cloned() else {
            return Vec::new();
        };
        let mut seqs = vec![seq];
        if let Some(related) = self.related.get(&target.id) {
            seqs.extend(related.iter().copied().filter(|&q| {
                self.at(q).is_some_and(|m| {
                    matches!(m.rel_kind(), Some(RelKind::Edit | RelKind::Reaction))
                })
            }));
        }
        let mut changed = Vec::new();
        for q in seqs {
            let i = seq_index(q);
            let m = &self.messages[i];
            if m.content == (Content::Deleted {}) {
                continue;
            }
            for id in &m.media {
                if let Some(n) = self.media.get_mut(id) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.media.remove(id);
                    }
                }
            }
            let m = &self.messages[i];
            let mut gone = Message::clone(m);
            gone.content = Content::Deleted {};
            gone.expires_at = None;
            gone.media = Vec::new();
            let gone = Arc::new(gone);
            self.messages[i] = gone.clone();
            changed.push(gone);
        }
        changed
    }

    /// Messages by others than `user` with a seq in `lo..=hi`, and how
    /// many of them mention `user`.
    fn unread(&self, user: &UserId, lo: u64, hi: u64) -> Unread {
        let messages = self
            .by_sender
            .iter()
            .filter(|(sender, _)| sender != user)
            .map(|(_, seqs)| count_in(seqs, lo, hi))
            .sum();
        // A member cannot mention itself to alert itself: its own
        // messages are in neither count.
        let mentions = self
            .mentions
            .iter()
            .find(|(u, _)| u == user)
            .map_or(0, |(_, seqs)| {
                seqs.iter()
                    .filter(|&&q| {
                        (lo..=hi).contains(&q) && self.at(q).is_some_and(|m| m.from != *user)
                    })
                    .count() as u64
            });
        Unread::new(messages, mentions)
    }
}

/// Appends `seq` to `user`'s list in `lists`.
fn push_seq(lists: &mut Vec<(UserId, Vec<u64>)>, user: &UserId, seq: u64) {
    match lists.iter_mut().find(|(u, _)| u == user) {
        Some((_, seqs)) => seqs.push(seq),
        None => lists.push((user.clone(), vec![seq])),
    }
}

/// How many of `seqs` (ascending) lie in `lo..=hi`.
fn count_in(seqs: &[u64], lo: u64, hi: u64) -> u64 {
    if hi < lo {
        return 0;
    }
    (seqs.partition_point(|&q| q <= hi) - seqs.partition_point(|&q| q < lo)) as u64
}

/// A message id as the index keys it: the 128 bits of a UUID in its
/// canonical form (every id chatcore makes), without the allocation a copy
/// of its text would cost on every append; any other text as it is.
#[derive(Clone, PartialEq, Eq, Hash)]
enum IdKey {
    Uuid(u128),
    Other(MessageId),
}

impl IdKey {
    fn of(id: &MessageId) -> Self {
        // Only the canonical spelling (hyphenated, lower case): another
        // spelling of the same UUID is another id.
        let s = id.as_str();
        let canonical = s.len() == 36 && !s.bytes().any(|b| b.is_ascii_uppercase());
        match uuid::Uuid::try_parse(s) {
            Ok(u) if canonical => IdKey::Uuid(u.as_u128()),
            _ => IdKey::Other(id.clone()),
        }
    }
}

fn recipients(state: &ConversationState) -> Arc<[Member]> {
    state.active().cloned().collect()
}

impl MemoryMessageStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Inner {
    /// Records the message under its sender's client id (replacing what
    /// was there: a tombstone replaces the entry it was).
    fn remember(&mut self, message: &Arc<Message>) {
        self.by_client_id
            .entry(message.from.clone())
            .or_default()
            .insert(message.client_id.clone(), message.clone());
    }

    fn index_members(&mut self, state: &ConversationState) {
        let users = state.members.iter().map(|m| &m.user);
        for user in users.chain(state.pending.iter().map(|p| &p.user)) {
            self.by_member
                .entry(user.clone())
                .or_default()
                .insert(state.conv.clone());
        }
    }
}

/// The index of seq `seq` in a log whose entry at index `i` has seq `i + 1`.
fn seq_index(seq: u64) -> usize {
    usize::try_from(seq.saturating_sub(1)).unwrap_or(usize::MAX)
}

#[async_trait]
impl MessageStore for MemoryMessageStore {
    async fn open_direct(&self, state: ConversationState) -> StoreResult<ConversationState> {
        let mut s = lock(&self.inner);
        if let Some(c) = s.convs.get(&state.conv) {
            return Ok(c.state.clone());
        }
        s.index_members(&state);
        s.convs.insert(state.conv.clone(), Conv::new(state.clone()));
        Ok(state)
    }

    async fn create_group(
        &self,
        state: ConversationState,
        created: NewMessage,
    ) -> StoreResult<Arc<Message>> {
        let mut s = lock(&self.inner);
        if s.convs.contains_key(&state.conv) {
            return Err(StoreError::Conflict {
                field: "conv".into(),
            });
        }
        s.index_members(&state);
        let mut conv = Conv::new(state);
        let message = conv.push(created);
        s.remember(&message);
        s.convs.insert(message.conv.clone(), conv);
        Ok(message)
    }

    async fn append(&self, msg: NewMessage) -> StoreResult<Appended> {
        let mut s = lock(&self.inner);
        let inner = &mut *s;
        // Each map is hashed once: the sender's idempotency index, the
        // client id's slot in it, the conversation.
        let ids = match inner.by_client_id.get_mut(&msg.from) {
            Some(ids) => ids,
            None => inner.by_client_id.entry(msg.from.clone()).or_default(),
        };
        let slot = match ids.entry(msg.client_id.clone()) {
            Entry::Occupied(existing) => {
                return Ok(Appended::duplicate(existing.get().clone()));
            }
            Entry::Vacant(slot) => slot,
        };
        let conv = inner.convs.get_mut(&msg.conv).ok_or(StoreError::NotFound)?;
        if !conv.state.has_member(&msg.from) {
            return Err(StoreError::NotMember);
        }
        if !conv.state.blocked.is_empty() {
            return Err(StoreError::Blocked);
        }
        if conv.state.pending_for(&msg.from).is_some() {
            return Err(StoreError::NotAccepted);
        }
        if conv.state.encrypted && msg.content.is_plaintext() {
            return Err(StoreError::Encrypted);
        }
        let message = conv.push(msg);
        slot.insert(message.clone());
        let recipients = conv.recipients.clone();
        let deleted = match &message.rel {
            Some(rel) if rel.kind == RelKind::Delete => {
                conv.seq_of(&rel.target).map(|seq| conv.tombstone(seq))
            }
            _ => None,
        };
        if let Some(at) = message.expires_at {
            inner
                .expiring
                .insert((at, message.conv.clone(), message.seq));
        }
        for gone in deleted.into_iter().flatten() {
            inner.remember(&gone);
        }
        Ok(Appended::stored(message, recipients))
    }

    async fn change(
        &self,
        state: &ConversationState,
        notice: Option<NewMessage>,
    ) -> StoreResult<Changed> {
        let mut s = lock(&self.inner);
        let conv = s.convs.get_mut(&state.conv).ok_or(StoreError::NotFound)?;
        let old = &conv.state;
        let head_moved = notice.is_some() && old.last_seq + 1 != state.last_seq;
        if old.version + 1 != state.version || head_moved {
            return Ok(Changed::Stale);
        }
        let old_invite = old.invite.clone();
        conv.state.info = state.info.clone();
        conv.state.members = state.members.clone();
        conv.state.invite = state.invite.clone();
        conv.state.blocked = state.blocked.clone();
        conv.state.pending = state.pending.clone();
        conv.state.encrypted |= state.encrypted;
        conv.state.expire_after = state.expire_after;
        conv.state.version = state.version;
        conv.recipients = recipients(&conv.state);
        let message = notice.map(|n| conv.push(n));
        let conv_id = state.conv.clone();
        if let Some(m) = &message {
            s.remember(m);
        }
        if old_invite != state.invite {
            if let Some(old) = old_invite {
                s.by_invite.remove(&old);
            }
            if let Some(new) = &state.invite {
                s.by_invite.insert(new.clone(), conv_id);
            }
        }
        s.index_members(state);
        Ok(Changed::Done(message))
    }

    async fn set_muted(
        &self,
        user: &UserId,
        conv: &ConversationId,
        until: Option<Millis>,
    ) -> StoreResult<()> {
        let mut s = lock(&self.inner);
        let c = s.convs.get_mut(conv).ok_or(StoreError::NotFound)?;
        let member = c
            .state
            .members
            .iter_mut()
            .find(|m| m.user == *user)
            .ok_or(StoreError::NotFound)?;
        member.muted_until = until;
        c.recipients = recipients(&c.state);
        Ok(())
    }

    async fn by_invite(&self, invite: &str) -> StoreResult<Option<ConversationState>> {
        let s = lock(&self.inner);
        Ok(s.by_invite
            .get(invite)
            .and_then(|id| s.convs.get(id))
            .map(|c| c.state.clone()))
    }

    async fn history(
        &self,
        conv: &ConversationId,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let s = lock(&self.inner);
        let Some(c) = s.convs.get(conv) else {
            return Ok(Vec::new());
        };
        let end = before.map_or(c.messages.len(), |b| seq_index(b).min(c.messages.len()));
        let start = end.saturating_sub(limit);
        Ok(c.messages[start..end]
            .iter()
            .map(|m| Message::clone(m))
            .collect())
    }

    async fn by_ids(&self, conv: &ConversationId, ids: &[MessageId]) -> StoreResult<Vec<Message>> {
        let mut s = lock(&self.inner);
        let Some(c) = s.convs.get_mut(conv) else {
            return Ok(Vec::new());
        };
        let mut seqs: Vec<u64> = ids.iter().filter_map(|id| c.seq_of(id)).collect();
        seqs.sort_unstable();
        seqs.dedup();
        Ok(seqs
            .into_iter()
            .filter_map(|q| c.at(q).map(|m| Message::clone(m)))
            .collect())
    }

    async fn related(
        &self,
        conv: &ConversationId,
        targets: &[MessageId],
        from: Option<&UserId>,
    ) -> StoreResult<Vec<Message>> {
        let s = lock(&self.inner);
        let Some(c) = s.convs.get(conv) else {
            return Ok(Vec::new());
        };
        let mut seqs: Vec<u64> = targets
            .iter()
            .filter_map(|t| c.related.get(t))
            .flatten()
            .copied()
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        Ok(seqs
            .into_iter()
            .filter_map(|q| c.at(q))
            .filter(|m| from.is_none_or(|f| m.from == *f))
            .map(|m| Message::clone(m))
            .collect())
    }

    async fn expire(&self, now: Millis, limit: usize) -> StoreResult<usize> {
        let mut s = lock(&self.inner);
        let inner = &mut *s;
        let mut handled = 0;
        while handled < limit {
            let Some(first) = inner.expiring.first() else {
                break;
            };
            if first.0 > now {
                break;
            }
            let Some((_, conv, seq)) = inner.expiring.pop_first() else {
                break;
            };
            let Some(c) = inner.convs.get_mut(&conv) else {
                continue;
            };
            // An entry deleted meanwhile has no expiry left to handle.
            if c.at(seq).is_none_or(|m| m.expires_at.is_none()) {
                continue;
            }
            for gone in c.tombstone(seq) {
                inner.remember(&gone);
            }
            handled += 1;
        }
        Ok(handled)
    }

    async fn media_in_use(&self, ids: &[MediaId]) -> StoreResult<Vec<MediaId>> {
        let s = lock(&self.inner);
        Ok(ids
            .iter()
            .filter(|id| {
                s.convs.values().any(|c| {
                    c.media.contains_key(*id) || c.state.info.avatar.as_deref() == Some(id.as_str())
                })
            })
            .cloned()
            .collect())
    }

    async fn read_after(
        &self,
        conv: &ConversationId,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<Message>> {
        let s = lock(&self.inner);
        let Some(c) = s.convs.get(conv) else {
            return Ok(Vec::new());
        };
        let start = usize::try_from(after)
            .unwrap_or(usize::MAX)
            .min(c.messages.len());
        Ok(c.messages[start..]
            .iter()
            .take(limit)
            .map(|m| Message::clone(m))
            .collect())
    }

    async fn last_entries(
        &self,
        heads: &[(ConversationId, u64)],
    ) -> StoreResult<Vec<Option<Message>>> {
        let s = lock(&self.inner);
        Ok(heads
            .iter()
            .map(|(conv, head)| {
                let c = s.convs.get(conv)?;
                let end = seq_index(head.saturating_add(1)).min(c.messages.len());
                end.checked_sub(1).map(|i| Message::clone(&c.messages[i]))
            })
            .collect())
    }

    async fn conversation(&self, conv: &ConversationId) -> StoreResult<Option<ConversationState>> {
        Ok(lock(&self.inner).convs.get(conv).map(|c| c.state.clone()))
    }

    async fn conversations(
        &self,
        user: &UserId,
        listing: Listing,
        after: Option<&(Millis, ConversationId)>,
        limit: usize,
    ) -> StoreResult<Vec<ConversationState>> {
        let s = lock(&self.inner);
        let mut out: Vec<ConversationState> = s
            .by_member
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| s.convs.get(id))
            .filter(|c| after.is_none_or(|p| c.state.is_after(p)))
            .filter(|c| listing.shows(&c.state, user))
            .map(|c| c.state.clone())
            .collect();
        ConversationState::sort_newest_first(&mut out);
        out.truncate(limit);
        Ok(out)
    }

    async fn set_cursor(
        &self,
        user: &UserId,
        device: &DeviceId,
        conv: &ConversationId,
        seq: u64,
        at: Millis,
    ) -> StoreResult<Option<Receipt>> {
        let mut s = lock(&self.inner);
        let cur = s
            .cursors
            .entry((user.clone(), device.clone()))
            .or_default()
            .entry(conv.clone())
            .or_insert(0);
        *cur = (*cur).max(seq);
        Ok(s.convs
            .get_mut(conv)
            .and_then(|c| c.raise(user, seq, None, at)))
    }

    async fn cursors(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> StoreResult<HashMap<ConversationId, u64>> {
        Ok(lock(&self.inner)
            .cursors
            .get(&(user.clone(), device.clone()))
            .cloned()
            .unwrap_or_default())
    }

    async fn mark_read(
        &self,
        user: &UserId,
        conv: &ConversationId,
        seq: u64,
        share: bool,
        at: Millis,
    ) -> StoreResult<Option<Receipt>> {
        let mut s = lock(&self.inner);
        let cur = s
            .read
            .entry(user.clone())
            .or_default()
            .entry(conv.clone())
            .or_insert(0);
        *cur = (*cur).max(seq);
        Ok(s.convs
            .get_mut(conv)
            .and_then(|c| c.raise(user, seq, share.then_some(seq), at)))
    }

    async fn receipts(&self, conv: &ConversationId, since: Millis) -> StoreResult<Vec<Receipt>> {
        let s = lock(&self.inner);
        Ok(s.convs
            .get(conv)
            .map(|c| {
                c.receipts
                    .iter()
                    .filter(|r| r.at >= since)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn unread(
        &self,
        user: &UserId,
        convs: &[&ConversationState],
    ) -> StoreResult<Vec<Unread>> {
        let s = lock(&self.inner);
        let marks = s.read.get(user);
        Ok(convs
            .iter()
            .map(|state| {
                let Some(c) = s.convs.get(&state.conv) else {
                    return Unread::default();
                };
                let Some(m) = state.member(user) else {
                    return Unread::default();
                };
                let read = marks.and_then(|r| r.get(&state.conv)).copied().unwrap_or(0);
                let hi = m.left_seq.unwrap_or(c.state.last_seq);
                // From the joining entry on, that entry included.
                c.unread(user, read.max(m.joined_seq.saturating_sub(1)) + 1, hi)
            })
            .collect())
    }
}
