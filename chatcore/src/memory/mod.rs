//! In-memory implementations of every backend trait: the reference the
//! other implementations are held to, and the default store of a single node.
//!
//! Each store keeps its state behind one `std::sync::Mutex` that is never
//! held across an `.await`, which makes every method atomic: the simplest
//! correct answer to the concurrency contracts in [`crate::store`].

use async_trait::async_trait;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::{IdMap, IdSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::model::{ConversationId, DeviceId, Message, Millis, Presence, UserId};
use crate::store::{
    Appended, Broker, BrokerHandler, ConversationState, Event, Mail, Mailer, MessageStore,
    NewMessage, NewUser, PresenceStore, ProfileUpdate, Quota, RateLimiter, ResetToken,
    ResetTokenStore, SearchQuery, SessionRecord, SessionStore, StoreError, StoreResult, Topic,
    UserRecord, UserStore,
};

/// Locks a mutex, recovering the data if a panicking thread poisoned it:
/// each method leaves the state consistent before anything can panic.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// Users in memory.
#[derive(Default)]
pub struct MemoryUserStore {
    inner: Mutex<UsersInner>,
}

#[derive(Default)]
struct UsersInner {
    by_id: IdMap<UserId, UserRecord>,
    /// username_key -> id; ordered, which gives search its order.
    by_username: BTreeMap<String, UserId>,
    by_email: IdMap<String, UserId>,
    by_phone: IdMap<String, UserId>,
}

impl MemoryUserStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl UserStore for MemoryUserStore {
    async fn create(&self, user: NewUser) -> StoreResult<UserRecord> {
        let mut s = lock(&self.inner);
        let taken = |field: &str| {
            Err(StoreError::Conflict {
                field: field.to_owned(),
            })
        };
        if s.by_username.contains_key(&user.username_key) {
            return taken("username");
        }
        if s.by_email.contains_key(&user.email_key) {
            return taken("email");
        }
        if s.by_phone.contains_key(&user.phone) {
            return taken("phone");
        }
        if s.by_id.contains_key(&user.id) {
            return taken("id");
        }
        let rec = UserRecord::from_new(user);
        s.by_username
            .insert(rec.username_key.clone(), rec.id.clone());
        s.by_email.insert(rec.email_key.clone(), rec.id.clone());
        s.by_phone.insert(rec.phone.clone(), rec.id.clone());
        s.by_id.insert(rec.id.clone(), rec.clone());
        Ok(rec)
    }

    async fn get(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        Ok(lock(&self.inner).by_id.get(id).cloned())
    }

    async fn find_by_username(&self, key: &str) -> StoreResult<Option<UserRecord>> {
        let s = lock(&self.inner);
        Ok(s.by_username
            .get(key)
            .and_then(|id| s.by_id.get(id))
            .cloned())
    }

    async fn find_by_email(&self, key: &str) -> StoreResult<Option<UserRecord>> {
        let s = lock(&self.inner);
        Ok(s.by_email.get(key).and_then(|id| s.by_id.get(id)).cloned())
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<UserRecord>> {
        let s = lock(&self.inner);
        let start = match &query.after {
            Some(after) => std::ops::Bound::Excluded(after.clone()),
            None => std::ops::Bound::Unbounded,
        };
        Ok(s.by_username
            .range((start, std::ops::Bound::Unbounded))
            .filter_map(|(_, id)| s.by_id.get(id))
            .filter(|u| u.matches_prefix(&query.prefix))
            .take(query.limit)
            .cloned()
            .collect())
    }

    async fn update_profile(&self, id: &UserId, update: &ProfileUpdate) -> StoreResult<UserRecord> {
        let mut s = lock(&self.inner);
        let rec = s.by_id.get_mut(id).ok_or(StoreError::NotFound)?;
        rec.apply(update);
        Ok(rec.clone())
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> StoreResult<()> {
        let mut s = lock(&self.inner);
        let rec = s.by_id.get_mut(id).ok_or(StoreError::NotFound)?;
        rec.password_hash = hash.to_owned();
        Ok(())
    }
}

/// Sessions in memory.
#[derive(Default)]
pub struct MemorySessionStore {
    inner: Mutex<IdMap<String, SessionRecord>>,
}

impl MemorySessionStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl SessionStore for MemorySessionStore {
    async fn create(&self, session: SessionRecord) -> StoreResult<()> {
        let mut s = lock(&self.inner);
        if s.contains_key(&session.token_hash) {
            return Err(StoreError::Conflict {
                field: "token".into(),
            });
        }
        s.insert(session.token_hash.clone(), session);
        Ok(())
    }

    async fn get(&self, token_hash: &str, now: Millis) -> StoreResult<Option<SessionRecord>> {
        let mut s = lock(&self.inner);
        match s.get(token_hash) {
            Some(rec) if now < rec.expires_at => Ok(Some(rec.clone())),
            Some(_) => {
                s.remove(token_hash);
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn extend(&self, token_hash: &str, expires_at: Millis) -> StoreResult<()> {
        let mut s = lock(&self.inner);
        let rec = s.get_mut(token_hash).ok_or(StoreError::NotFound)?;
        rec.expires_at = expires_at;
        Ok(())
    }

    async fn revoke(&self, token_hash: &str) -> StoreResult<bool> {
        Ok(lock(&self.inner).remove(token_hash).is_some())
    }

    async fn revoke_all(&self, user: &UserId, keep: Option<&str>) -> StoreResult<u64> {
        let mut s = lock(&self.inner);
        let before = s.len();
        s.retain(|hash, rec| &rec.user != user || Some(hash.as_str()) == keep);
        Ok((before - s.len()) as u64)
    }
}

/// Reset tokens in memory.
#[derive(Default)]
pub struct MemoryResetTokenStore {
    inner: Mutex<IdMap<String, ResetToken>>,
}

impl MemoryResetTokenStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl ResetTokenStore for MemoryResetTokenStore {
    async fn insert(&self, token: ResetToken) -> StoreResult<()> {
        let mut s = lock(&self.inner);
        // Expired tokens are worthless: drop them here so the map stays bounded.
        let now = token.expires_at;
        s.retain(|_, t| t.expires_at > now - 24 * 3_600_000);
        s.insert(token.token_hash.clone(), token);
        Ok(())
    }

    async fn get(&self, token_hash: &str, now: Millis) -> StoreResult<Option<UserId>> {
        let s = lock(&self.inner);
        Ok(s.get(token_hash)
            .filter(|t| now < t.expires_at)
            .map(|t| t.user.clone()))
    }

    async fn take(&self, token_hash: &str, now: Millis) -> StoreResult<Option<UserId>> {
        let mut s = lock(&self.inner);
        Ok(s.remove(token_hash)
            .filter(|t| now < t.expires_at)
            .map(|t| t.user))
    }

    async fn revoke_user(&self, user: &UserId) -> StoreResult<u64> {
        let mut s = lock(&self.inner);
        let before = s.len();
        s.retain(|_, t| &t.user != user);
        Ok((before - s.len()) as u64)
    }
}

/// Messages in memory.
#[derive(Default)]
pub struct MemoryMessageStore {
    inner: Mutex<MessagesInner>,
}

#[derive(Default)]
struct MessagesInner {
    convs: IdMap<ConversationId, Conv>,
    /// sender -> client_id -> the message: the idempotency index.
    /// Nested rather than keyed by a pair so a lookup borrows the frame's
    /// strings instead of cloning them into a key.
    by_client_id: IdMap<UserId, IdMap<String, Arc<Message>>>,
    by_member: IdMap<UserId, IdSet<ConversationId>>,
    cursors: IdMap<(UserId, DeviceId), HashMap<ConversationId, u64>>,
    /// user -> conversation -> read marker (nested for clone-free lookups).
    read: IdMap<UserId, IdMap<ConversationId, u64>>,
}

struct Conv {
    members: Vec<UserId>,
    /// `messages[i].seq == i + 1`. Shared with the pushes of each message.
    messages: Vec<Arc<Message>>,
    /// Each sender's seqs, ascending: unread counts by binary search instead
    /// of a scan of every unread message on each send. A list, not a map:
    /// a conversation has few senders, and comparing a few ids costs less
    /// than hashing one.
    by_sender: Vec<(UserId, Vec<u64>)>,
}

impl Conv {
    fn state(&self, conv: &ConversationId) -> ConversationState {
        let last = self.messages.last();
        ConversationState::new(
            conv.clone(),
            self.members.clone(),
            last.map_or(0, |m| m.seq),
            last.map_or(0, |m| m.ts),
        )
    }
}

impl MemoryMessageStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The index range of seqs in `lo..hi` (exclusive) in a conversation whose
/// message at index `i` has seq `i + 1`.
fn seq_index(seq: u64) -> usize {
    usize::try_from(seq.saturating_sub(1)).unwrap_or(usize::MAX)
}

#[async_trait]
impl MessageStore for MemoryMessageStore {
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
                return Ok(Appended::new(existing.get().clone(), true));
            }
            Entry::Vacant(slot) => slot,
        };
        let conv = match inner.convs.get_mut(&msg.conv) {
            Some(conv) => conv,
            None => {
                for m in &msg.members {
                    inner
                        .by_member
                        .entry(m.clone())
                        .or_default()
                        .insert(msg.conv.clone());
                }
                inner.convs.entry(msg.conv.clone()).or_insert_with(|| Conv {
                    members: msg.members,
                    messages: Vec::new(),
                    by_sender: Vec::new(),
                })
            }
        };
        let seq = conv.messages.len() as u64 + 1;
        match conv.by_sender.iter_mut().find(|(u, _)| *u == msg.from) {
            Some((_, seqs)) => seqs.push(seq),
            None => conv.by_sender.push((msg.from.clone(), vec![seq])),
        }
        let message = Arc::new(Message {
            id: msg.id,
            conv: msg.conv,
            seq,
            from: msg.from,
            client_id: msg.client_id,
            ts: msg.ts,
            content: msg.content,
        });
        conv.messages.push(message.clone());
        slot.insert(message.clone());
        Ok(Appended::new(message, false))
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

    async fn conversation(&self, conv: &ConversationId) -> StoreResult<Option<ConversationState>> {
        Ok(lock(&self.inner).convs.get(conv).map(|c| c.state(conv)))
    }

    async fn conversations(&self, user: &UserId) -> StoreResult<Vec<ConversationState>> {
        let s = lock(&self.inner);
        let mut out: Vec<ConversationState> = s
            .by_member
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|id| s.convs.get(id).map(|c| c.state(id)))
            .collect();
        ConversationState::sort_newest_first(&mut out);
        Ok(out)
    }

    async fn set_cursor(
        &self,
        user: &UserId,
        device: &DeviceId,
        conv: &ConversationId,
        seq: u64,
    ) -> StoreResult<()> {
        let mut s = lock(&self.inner);
        let cur = s
            .cursors
            .entry((user.clone(), device.clone()))
            .or_default()
            .entry(conv.clone())
            .or_insert(0);
        *cur = (*cur).max(seq);
        Ok(())
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

    async fn mark_read(&self, user: &UserId, conv: &ConversationId, seq: u64) -> StoreResult<()> {
        let mut s = lock(&self.inner);
        let cur = s
            .read
            .entry(user.clone())
            .or_default()
            .entry(conv.clone())
            .or_insert(0);
        *cur = (*cur).max(seq);
        Ok(())
    }

    async fn unread(&self, user: &UserId, conv: &ConversationId) -> StoreResult<u64> {
        let s = lock(&self.inner);
        let read = s
            .read
            .get(user)
            .and_then(|m| m.get(conv))
            .copied()
            .unwrap_or(0);
        let Some(c) = s.convs.get(conv) else {
            return Ok(0);
        };
        Ok(c.by_sender
            .iter()
            .filter(|(sender, _)| sender != user)
            .map(|(_, seqs)| (seqs.len() - seqs.partition_point(|&q| q <= read)) as u64)
            .sum())
    }
}

/// Presence in memory.
#[derive(Default)]
pub struct MemoryPresenceStore {
    inner: Mutex<IdMap<UserId, UserPresence>>,
}

#[derive(Default)]
struct UserPresence {
    conns: IdSet<String>,
    last_seen: Option<Millis>,
}

impl MemoryPresenceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PresenceStore for MemoryPresenceStore {
    async fn connect(&self, user: &UserId, conn: &str, _now: Millis) -> StoreResult<bool> {
        let mut s = lock(&self.inner);
        let p = s.entry(user.clone()).or_default();
        let was_offline = p.conns.is_empty();
        p.conns.insert(conn.to_owned());
        Ok(was_offline)
    }

    async fn disconnect(&self, user: &UserId, conn: &str, now: Millis) -> StoreResult<bool> {
        let mut s = lock(&self.inner);
        let Some(p) = s.get_mut(user) else {
            return Ok(false);
        };
        if p.conns.remove(conn) && p.conns.is_empty() {
            p.last_seen = Some(now);
            return Ok(true);
        }
        Ok(false)
    }

    async fn get(&self, users: &[UserId]) -> StoreResult<Vec<Presence>> {
        let s = lock(&self.inner);
        Ok(users
            .iter()
            .map(|u| {
                let p = s.get(u);
                let online = p.is_some_and(|p| !p.conns.is_empty());
                Presence::of(u.clone(), online, p.and_then(|p| p.last_seen))
            })
            .collect())
    }
}

/// The single-node broker: publishing hands the event straight to this
/// node's hub.
#[derive(Default)]
pub struct MemoryBroker {
    handler: RwLock<Option<Arc<dyn BrokerHandler>>>,
}

impl MemoryBroker {
    /// A broker with no handler attached yet.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    fn attach(&self, handler: Arc<dyn BrokerHandler>) {
        *self.handler.write().unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    async fn publish(&self, topic: &Topic, event: Event) -> StoreResult<()> {
        let handler = self
            .handler
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(h) = handler {
            h.deliver(topic, Arc::new(event));
        }
        Ok(())
    }

    async fn subscribe(&self, _topic: &Topic) -> StoreResult<()> {
        Ok(())
    }

    async fn unsubscribe(&self, _topic: &Topic) -> StoreResult<()> {
        Ok(())
    }
}

/// A mailer that keeps every mail in memory, for tests and embedding.
#[derive(Default)]
pub struct MemoryMailer {
    outbox: Mutex<Vec<Mail>>,
}

impl MemoryMailer {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every mail sent so far, oldest first.
    pub fn outbox(&self) -> Vec<Mail> {
        lock(&self.outbox).clone()
    }
}

#[async_trait]
impl Mailer for MemoryMailer {
    async fn send(&self, mail: Mail) -> StoreResult<()> {
        lock(&self.outbox).push(mail);
        Ok(())
    }
}

/// A sliding-window rate limiter in memory.
#[derive(Default)]
pub struct MemoryRateLimiter {
    inner: Mutex<IdMap<String, VecDeque<Millis>>>,
    /// Fixed-window budgets of `spend`: key -> (window start, window end, spent).
    budgets: Mutex<IdMap<String, (Millis, Millis, u64)>>,
}

impl MemoryRateLimiter {
    /// A limiter with no history.
    pub fn new() -> Self {
        Self::default()
    }
}

/// Drops the events of `q` that have left the window ending at `now`.
fn expire(q: &mut VecDeque<Millis>, quota: Quota, now: Millis) {
    let horizon = now.saturating_sub(i64::try_from(quota.window_ms).unwrap_or(i64::MAX));
    while q.front().is_some_and(|&t| t <= horizon) {
        q.pop_front();
    }
}

#[async_trait]
impl RateLimiter for MemoryRateLimiter {
    async fn check(&self, key: &str, quota: Quota, now: Millis) -> StoreResult<Option<u64>> {
        let mut s = lock(&self.inner);
        let Some(q) = s.get_mut(key) else {
            return Ok(None);
        };
        expire(q, quota, now);
        if q.len() < quota.max as usize {
            return Ok(None);
        }
        let oldest = q.front().copied().unwrap_or(now);
        let wait = oldest + i64::try_from(quota.window_ms).unwrap_or(i64::MAX) - now;
        Ok(Some(u64::try_from(wait).unwrap_or(0).max(1)))
    }

    async fn record(&self, key: &str, quota: Quota, now: Millis) -> StoreResult<()> {
        let mut s = lock(&self.inner);
        // Keep memory bounded under a flood of distinct keys.
        if s.len() > 100_000 {
            s.retain(|_, q| {
                expire(q, quota, now);
                !q.is_empty()
            });
        }
        let q = s.entry(key.to_owned()).or_default();
        expire(q, quota, now);
        q.push_back(now);
        while q.len() > quota.max as usize {
            q.pop_front();
        }
        Ok(())
    }

    async fn clear(&self, key: &str) -> StoreResult<()> {
        lock(&self.inner).remove(key);
        Ok(())
    }

    async fn spend(
        &self,
        key: &str,
        cost: u64,
        quota: Quota,
        now: Millis,
    ) -> StoreResult<Option<u64>> {
        let (start, end) = quota.fixed_window(now);
        let wait = || Some(quota.until_window_end(now));
        if cost > u64::from(quota.max) {
            return Ok(wait());
        }
        let mut s = lock(&self.budgets);
        // Keep memory bounded under a flood of distinct keys: windows that
        // have ended are worth nothing.
        if s.len() > 100_000 {
            s.retain(|_, (_, until, _)| *until > now);
        }
        let spent = match s.get_mut(key) {
            Some(entry) => entry,
            None => s.entry(key.to_owned()).or_insert((start, end, 0)),
        };
        if spent.0 != start {
            *spent = (start, end, 0);
        }
        if spent.2 + cost > u64::from(quota.max) {
            return Ok(wait());
        }
        spent.2 += cost;
        Ok(None)
    }
}

/// Compile-time proof that every memory backend implements its trait as a
/// `dyn` object.
#[allow(dead_code)]
fn _assert_object_safe() {
    fn is<T: ?Sized>(_: Arc<T>) {}
    is::<dyn UserStore>(Arc::new(MemoryUserStore::new()));
    is::<dyn SessionStore>(Arc::new(MemorySessionStore::new()));
    is::<dyn ResetTokenStore>(Arc::new(MemoryResetTokenStore::new()));
    is::<dyn MessageStore>(Arc::new(MemoryMessageStore::new()));
    is::<dyn PresenceStore>(Arc::new(MemoryPresenceStore::new()));
    is::<dyn Broker>(Arc::new(MemoryBroker::new()));
    is::<dyn Mailer>(Arc::new(MemoryMailer::new()));
    is::<dyn RateLimiter>(Arc::new(MemoryRateLimiter::new()));
}
