//! In-memory implementations of every backend trait: the reference the
//! other implementations are held to, and the default store of a single node.
//!
//! Each store keeps its state behind one `std::sync::Mutex` that is never
//! held across an `.await`, which makes every method atomic: the simplest
//! correct answer to the concurrency contracts in [`crate::store`].

use async_trait::async_trait;
use std::collections::{BTreeMap, VecDeque};

use crate::{IdMap, IdSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::model::{DeviceId, MediaId, Millis, Presence, Privacy, UserId};
use crate::store::{
    Broker, BrokerHandler, Event, Mail, Mailer, NewUser, PresenceStore, ProfileUpdate, Quota,
    RateLimiter, ResetToken, ResetTokenStore, SearchQuery, SessionRecord, SessionStore, StoreError,
    StoreResult, Topic, UserRecord, UserStore,
};

mod backups;
mod blobs;
mod calls;
mod contacts;
mod conversations;
mod keys;
mod reports;
mod to_device;
pub use backups::MemoryBackupStore;
pub use blobs::MemoryBlobStore;
pub use calls::MemoryCallStore;
pub use contacts::MemoryContactStore;
pub use conversations::MemoryMessageStore;
pub use keys::MemoryKeyStore;
pub use reports::MemoryReportStore;
pub use to_device::MemoryToDeviceStore;

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
    /// How many users have each avatar.
    by_avatar: IdMap<String, u32>,
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
        let s = &mut *s;
        let rec = s.by_id.get_mut(id).ok_or(StoreError::NotFound)?;
        let before = rec.avatar.clone();
        rec.apply(update);
        if rec.avatar != before {
            if let Some(old) = before {
                if let Some(n) = s.by_avatar.get_mut(&old) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        s.by_avatar.remove(&old);
                    }
                }
            }
            if let Some(new) = &rec.avatar {
                *s.by_avatar.entry(new.clone()).or_default() += 1;
            }
        }
        Ok(rec.clone())
    }

    async fn avatars_in_use(&self, ids: &[MediaId]) -> StoreResult<Vec<MediaId>> {
        let s = lock(&self.inner);
        Ok(ids
            .iter()
            .filter(|id| s.by_avatar.contains_key(id.as_str()))
            .cloned()
            .collect())
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> StoreResult<()> {
        let mut s = lock(&self.inner);
        let rec = s.by_id.get_mut(id).ok_or(StoreError::NotFound)?;
        rec.password_hash = hash.to_owned();
        Ok(())
    }

    async fn set_privacy(&self, id: &UserId, privacy: &Privacy) -> StoreResult<UserRecord> {
        let mut s = lock(&self.inner);
        let rec = s.by_id.get_mut(id).ok_or(StoreError::NotFound)?;
        rec.privacy = *privacy;
        Ok(rec.clone())
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

    async fn extend(&self, token_hash: &str, now: Millis, expires_at: Millis) -> StoreResult<()> {
        let mut s = lock(&self.inner);
        let rec = s.get_mut(token_hash).ok_or(StoreError::NotFound)?;
        rec.expires_at = expires_at;
        rec.last_active = now;
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

    async fn devices(&self, user: &UserId, now: Millis) -> StoreResult<Vec<SessionRecord>> {
        let mut live: Vec<SessionRecord> = lock(&self.inner)
            .values()
            .filter(|rec| &rec.user == user && now < rec.expires_at)
            .cloned()
            .collect();
        live.sort_by(|a, b| {
            (a.created_at, &a.device, &a.token_hash).cmp(&(b.created_at, &b.device, &b.token_hash))
        });
        Ok(live)
    }

    async fn rename_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        name: &str,
    ) -> StoreResult<bool> {
        let mut found = false;
        for rec in lock(&self.inner).values_mut() {
            if &rec.user == user && &rec.device == device {
                rec.device_name = name.to_owned();
                found = true;
            }
        }
        Ok(found)
    }

    async fn revoke_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<bool> {
        let mut s = lock(&self.inner);
        let before = s.len();
        s.retain(|_, rec| &rec.user != user || &rec.device != device);
        Ok(s.len() < before)
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

/// The nodes of one process that share events: what [`MemoryBroker::on`]
/// joins, so that tests can run several nodes (each its own [`Server`](crate::Server)
/// and hub) as one service without a broker server. A broker made with
/// [`MemoryBroker::new`] is alone on a bus of its own.
#[derive(Clone, Default)]
pub struct MemoryBus {
    nodes: Arc<RwLock<Vec<std::sync::Weak<BrokerNode>>>>,
}

impl MemoryBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Default)]
struct BrokerNode {
    handler: RwLock<Option<Arc<dyn BrokerHandler>>>,
    /// The topics this node subscribed to: only their events reach it.
    topics: RwLock<crate::IdSet<Topic>>,
}

/// The in-process broker: publishing hands the event to the hub of every
/// node on the bus that subscribed to its topic, this one included, before
/// `publish` returns (so the order of one publisher's events is kept on
/// every topic). The reference of [`Broker`]'s subscription semantics
/// (the broker conformance suite, `chatcore::testkit::broker`, feature `testkit`).
pub struct MemoryBroker {
    node: Arc<BrokerNode>,
    /// `None` for a broker alone on a bus of its own ([`MemoryBroker::new`]):
    /// it delivers to itself without going through the bus.
    bus: Option<MemoryBus>,
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBroker {
    /// A broker alone on its own bus: one node.
    pub fn new() -> Self {
        Self {
            node: Arc::default(),
            bus: None,
        }
    }

    /// A broker for one more node on `bus`.
    pub fn on(bus: &MemoryBus) -> Self {
        let node = Arc::new(BrokerNode::default());
        let mut nodes = bus.nodes.write().unwrap_or_else(|p| p.into_inner());
        nodes.retain(|n| n.strong_count() > 0);
        nodes.push(Arc::downgrade(&node));
        drop(nodes);
        Self {
            node,
            bus: Some(bus.clone()),
        }
    }
}

impl BrokerNode {
    /// Hands `event` to this node's hub if the node subscribed to `topic`.
    /// `checked: false` skips the check in release builds: a node alone on
    /// its bus has a hub that drops every topic without a local listener
    /// anyway, and the lookup of the topic cost 1% of a relayed message.
    /// Debug builds (every test) always check, so that a hub that failed to
    /// subscribe loses its events there, as it would between nodes.
    fn deliver(&self, topic: &Topic, event: &Arc<Event>, checked: bool) {
        if checked || cfg!(debug_assertions) {
            let subscribed = self
                .topics
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(topic);
            if !subscribed {
                return;
            }
        }
        let handler = self
            .handler
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(h) = handler {
            h.deliver(topic, event.clone());
        }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    fn attach(&self, handler: Arc<dyn BrokerHandler>) {
        *self.node.handler.write().unwrap_or_else(|p| p.into_inner()) = Some(handler);
    }

    async fn publish(&self, topic: &Topic, event: Event) -> StoreResult<()> {
        let event = Arc::new(event);
        match &self.bus {
            None => self.node.deliver(topic, &event, false),
            Some(bus) => {
                let nodes = bus.nodes.read().unwrap_or_else(|p| p.into_inner());
                for node in nodes.iter().filter_map(std::sync::Weak::upgrade) {
                    node.deliver(topic, &event, true);
                }
            }
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &Topic) -> StoreResult<()> {
        self.node
            .topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(topic.clone());
        Ok(())
    }

    async fn unsubscribe(&self, topic: &Topic) -> StoreResult<()> {
        self.node
            .topics
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(topic);
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
    is::<dyn crate::store::MessageStore>(Arc::new(MemoryMessageStore::new()));
    is::<dyn PresenceStore>(Arc::new(MemoryPresenceStore::new()));
    is::<dyn Broker>(Arc::new(MemoryBroker::new()));
    is::<dyn Mailer>(Arc::new(MemoryMailer::new()));
    is::<dyn RateLimiter>(Arc::new(MemoryRateLimiter::new()));
    is::<dyn crate::store::BlobStore>(Arc::new(MemoryBlobStore::default()));
}
