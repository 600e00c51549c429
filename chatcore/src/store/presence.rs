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
}
