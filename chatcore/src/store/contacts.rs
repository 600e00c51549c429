use async_trait::async_trait;

use super::StoreResult;
use crate::model::{Millis, UserId};

/// The contact link between two users.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Link {
    /// Neither is the other's contact, and nothing is asked.
    None,
    /// `by` asked the other to become contacts at `at`.
    Requested {
        /// Who asked.
        by: UserId,
        /// When.
        at: Millis,
    },
    /// Contacts of each other since `since`.
    Contacts {
        /// When the request was accepted.
        since: Millis,
    },
}

/// What two users are to each other: one record per pair, changed as a
/// whole (see [`ContactStore::change`]), so that a request, its acceptance
/// and a block never interleave into a state neither side asked for.
/// Per-user fields are arrays in the order of `users`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Relation {
    /// The pair, the smaller id first ([`Relation::new`] orders them).
    pub users: [UserId; 2],
    /// The contact link.
    pub link: Link,
    /// When each user blocked the other (`None`: does not block).
    pub blocked: [Option<Millis>; 2],
    /// Before this time each user may not ask the other again: a request
    /// of theirs was declined.
    pub retry_at: [Option<Millis>; 2],
    /// Whether each user has a message request from the other that they
    /// have not accepted (the direct conversation's
    /// [`pending`](super::ConversationState::pending), mirrored here so
    /// that whatever shows presence, which reads the relation, hides the
    /// user's from the one who wrote to them).
    pub unaccepted: [bool; 2],
    /// Counts changes: 0 for a pair never stored; a change is stored only
    /// over the version before it.
    pub version: u64,
}

impl Relation {
    /// The pair `a`, `b` with nothing between them (not stored yet).
    pub fn new(a: &UserId, b: &UserId) -> Self {
        let users = if a <= b {
            [a.clone(), b.clone()]
        } else {
            [b.clone(), a.clone()]
        };
        Self {
            users,
            link: Link::None,
            blocked: [None, None],
            retry_at: [None, None],
            unaccepted: [false, false],
            version: 0,
        }
    }

    /// The pair's key: both ids in order, which no other pair shares.
    pub fn key(&self) -> String {
        pair_key(&self.users[0], &self.users[1])
    }

    /// `user`'s index in `users`; `None` if the pair is not theirs.
    pub fn side(&self, user: &UserId) -> Option<usize> {
        self.users.iter().position(|u| u == user)
    }

    /// The other user of the pair, seen from `user` (who must be one of them).
    pub fn other(&self, user: &UserId) -> &UserId {
        if self.users[0] == *user {
            &self.users[1]
        } else {
            &self.users[0]
        }
    }

    /// Whether `user` blocks the other.
    pub fn blocks(&self, user: &UserId) -> bool {
        self.side(user).is_some_and(|i| self.blocked[i].is_some())
    }

    /// Whether either user blocks the other.
    pub fn any_block(&self) -> bool {
        self.blocked.iter().any(Option::is_some)
    }

    /// Whether the two are contacts.
    pub fn are_contacts(&self) -> bool {
        matches!(self.link, Link::Contacts { .. })
    }

    /// Whether the pair is back to nothing between them. A store keeps such
    /// a record all the same: its version is what stops a writer holding
    /// an older read from passing as the pair's first writer.
    pub fn is_empty(&self) -> bool {
        self.link == Link::None
            && self.blocked == [None, None]
            && self.retry_at == [None, None]
            && self.unaccepted == [false, false]
    }

    /// Whether `user` has not accepted the other's message request.
    pub fn awaits(&self, user: &UserId) -> bool {
        self.side(user).is_some_and(|i| self.unaccepted[i])
    }
}

/// The key of the pair `a`, `b`, whichever order they come in.
pub fn pair_key(a: &UserId, b: &UserId) -> String {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    format!("{}|{}", lo.0, hi.0)
}

/// Which of a user's relations a listing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContactView {
    /// Contacts.
    Contacts,
    /// Requests the user received and has not answered.
    Incoming,
    /// Requests the user sent that are not answered.
    Outgoing,
    /// Users the user blocks.
    Blocked,
}

impl ContactView {
    /// Whether `relation` belongs in `user`'s listing of this view. The
    /// one definition every store follows. Incoming requests from a user
    /// the listing user blocks are not shown.
    pub fn shows(self, relation: &Relation, user: &UserId) -> bool {
        let Some(side) = relation.side(user) else {
            return false;
        };
        match (self, &relation.link) {
            (ContactView::Contacts, Link::Contacts { .. }) => true,
            (ContactView::Incoming, Link::Requested { by, .. }) => {
                by != user && relation.blocked[side].is_none()
            }
            (ContactView::Outgoing, Link::Requested { by, .. }) => by == user,
            (ContactView::Blocked, _) => relation.blocked[side].is_some(),
            _ => false,
        }
    }
}

/// How a compare-and-swap write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// Stored.
    Done,
    /// Someone changed the record first: read it again and decide anew.
    Stale,
}

/// What users are to each other: contacts, requests, blocks.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// The stored relation of `a` and `b` (in either order); `Ok(None)` if
    /// none was ever stored (the caller then starts from [`Relation::new`]).
    async fn relation(&self, a: &UserId, b: &UserId) -> StoreResult<Option<Relation>>;

    /// The stored relations of `user` with each of `others` that has one,
    /// in any order.
    async fn relations(&self, user: &UserId, others: &[UserId]) -> StoreResult<Vec<Relation>>;

    /// Stores `relation` if the stored one's version is `relation.version -
    /// 1` (for version 1: if none is stored); [`Written::Stale`] otherwise.
    async fn change(&self, relation: &Relation) -> StoreResult<Written>;

    /// `user`'s relations that `view` shows ([`ContactView::shows`]),
    /// ordered by [`Relation::key`], strictly after the key `after`, at
    /// most `limit`.
    async fn list(
        &self,
        user: &UserId,
        view: ContactView,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Relation>>;
}
