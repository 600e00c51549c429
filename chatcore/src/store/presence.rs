use async_trait::async_trait;

use super::StoreResult;
use crate::model::{Millis, Presence, UserId};

/// Who is online. Connections are counted per user across every node, so a
/// user is online while any of their devices is connected anywhere.
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// Records connection `conn` (unique across nodes) of `user`. Returns true
    /// when this made the user go from offline to online. Idempotent per `conn`.
    async fn connect(&self, user: &UserId, conn: &str, now: Millis) -> StoreResult<bool>;

    /// Forgets connection `conn`. Returns true when it was the user's last, in
    /// which case the user's `last_seen` becomes `now`. Idempotent per `conn`.
    async fn disconnect(&self, user: &UserId, conn: &str, now: Millis) -> StoreResult<bool>;

    /// Presence of each user, in the order asked. Users never seen are
    /// offline with `last_seen: None`.
    async fn get(&self, users: &[UserId]) -> StoreResult<Vec<Presence>>;

    /// Renews the liveness of node `node` (the part of its connection keys
    /// before the `/`) at `now`, and takes over the connections of the
    /// nodes not heard from for `ttl_ms` (by the `now` of their last
    /// sweep or connection): removes them, and returns the users who went
    /// offline by it, with `last_seen` the dead node's last heartbeat.
    /// Atomic: when several nodes sweep at once, each such user is
    /// returned by one of them only. A node calls it regularly, several
    /// times per `ttl_ms` (chatcore's `Server::sweep_presence`).
    ///
    /// The default does nothing and returns nothing: a store that lives in
    /// one process (the memory store) dies with every connection it knows.
    async fn sweep(&self, node: &str, now: Millis, ttl_ms: u64) -> StoreResult<Vec<Presence>> {
        let _ = (node, now, ttl_ms);
        Ok(Vec::new())
    }

    /// How many connections `user` has across every node, for the cap of
    /// connections per account, when this store counts them across nodes;
    /// `None` (the default) when it knows one process only, whose own
    /// count the node keeps exactly.
    async fn connections(&self, user: &UserId) -> StoreResult<Option<usize>> {
        let _ = user;
        Ok(None)
    }

    /// Whether `node`'s liveness lapsed at `now`: it renewed it more than
    /// `ttl_ms` before, or other nodes' sweeps took its connections over and
    /// forgot it. Asked before the node's own [`PresenceStore::sweep`]
    /// renews it, so that a node that stalled past the TTL and came back
    /// records its live connections again ([`PresenceStore::connect`] is
    /// idempotent). The default: never (one process never outlives itself).
    async fn lapsed(&self, node: &str, now: Millis, ttl_ms: u64) -> StoreResult<bool> {
        let _ = (node, now, ttl_ms);
        Ok(false)
    }
}
