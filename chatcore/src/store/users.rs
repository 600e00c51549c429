use async_trait::async_trait;
use unicode_normalization::UnicodeNormalization;

use super::StoreResult;
use crate::model::{MediaId, Millis, Privacy, Profile, UserId};

/// A user to create. The `*_key` fields are the normalised forms that
/// uniqueness and lookups use; chatcore computes them, stores only compare.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewUser {
    /// The new id.
    pub id: UserId,
    /// Username as typed.
    pub username: String,
    /// NFKC + lowercase username: unique.
    pub username_key: String,
    /// Email as typed.
    pub email: String,
    /// Normalised email: unique.
    pub email_key: String,
    /// Phone in E.164: unique.
    pub phone: String,
    /// Display name.
    pub display_name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Registration time.
    pub created_at: Millis,
}

impl NewUser {
    /// Assembles a new user record from already-validated, normalised parts.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: UserId,
        username: String,
        username_key: String,
        email: String,
        email_key: String,
        phone: String,
        display_name: String,
        password_hash: String,
        created_at: Millis,
    ) -> Self {
        Self {
            id,
            username,
            username_key,
            email,
            email_key,
            phone,
            display_name,
            password_hash,
            created_at,
        }
    }
}

/// A stored user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct UserRecord {
    /// Id.
    pub id: UserId,
    /// Username as typed.
    pub username: String,
    /// Normalised username.
    pub username_key: String,
    /// Email as typed.
    pub email: String,
    /// Normalised email.
    pub email_key: String,
    /// E.164 phone.
    pub phone: String,
    /// Display name.
    pub display_name: String,
    /// About text.
    pub about: String,
    /// Avatar reference.
    pub avatar: Option<String>,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Registration time.
    pub created_at: Millis,
    /// Privacy settings.
    pub privacy: Privacy,
}

impl UserRecord {
    /// The record a [`NewUser`] becomes: empty about text, no avatar.
    pub fn from_new(user: NewUser) -> Self {
        Self {
            id: user.id,
            username: user.username,
            username_key: user.username_key,
            email: user.email,
            email_key: user.email_key,
            phone: user.phone,
            display_name: user.display_name,
            about: String::new(),
            avatar: None,
            password_hash: user.password_hash,
            created_at: user.created_at,
            privacy: Privacy::default(),
        }
    }

    /// The public contact card (no email, phone or hash).
    pub fn profile(&self) -> Profile {
        Profile {
            user: self.id.clone(),
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            about: self.about.clone(),
            avatar: self.avatar.clone(),
        }
    }

    /// Whether the user matches a directory prefix (see [`UserStore::search`]).
    pub fn matches_prefix(&self, prefix: &str) -> bool {
        self.username_key.starts_with(prefix)
            || display_name_words(&self.display_name)
                .iter()
                .any(|w| w.starts_with(prefix))
    }

    /// Applies a profile update in place.
    pub fn apply(&mut self, update: &ProfileUpdate) {
        if let Some(name) = &update.display_name {
            self.display_name.clone_from(name);
        }
        if let Some(about) = &update.about {
            self.about.clone_from(about);
        }
        if let Some(avatar) = &update.avatar {
            self.avatar.clone_from(avatar);
        }
    }
}

/// The searchable words of a display name: the whole name and each
/// whitespace-separated word, NFKC-normalised and lowercased. A store that
/// cannot match prefixes of arbitrary words indexes these.
pub fn display_name_words(name: &str) -> Vec<String> {
    let norm: String = name.nfkc().collect::<String>().to_lowercase();
    let mut words: Vec<String> = norm.split_whitespace().map(str::to_owned).collect();
    let whole = norm.trim().to_owned();
    if !whole.is_empty() && !words.contains(&whole) {
        words.push(whole);
    }
    words
}

/// A change to a profile; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProfileUpdate {
    /// New display name.
    pub display_name: Option<String>,
    /// New about text.
    pub about: Option<String>,
    /// New avatar: `Some(None)` removes it.
    pub avatar: Option<Option<String>>,
}

/// A directory search.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SearchQuery {
    /// Lowercase NFKC prefix; empty matches everyone.
    pub prefix: String,
    /// Only users whose `username_key` sorts after this (paging cursor).
    pub after: Option<String>,
    /// At most this many results.
    pub limit: usize,
}

impl SearchQuery {
    /// A query for `prefix`, after `after`, at most `limit` results.
    pub fn new(prefix: impl Into<String>, after: Option<String>, limit: usize) -> Self {
        Self {
            prefix: prefix.into(),
            after,
            limit,
        }
    }
}

/// Accounts.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Stores a new user. Fails with `Conflict { field }` (`username`,
    /// `email` or `phone`) when a unique key is taken, in which case nothing is
    /// stored. Two concurrent creates with the same key: exactly one succeeds.
    async fn create(&self, user: NewUser) -> StoreResult<UserRecord>;

    /// The user with this id; `Ok(None)` if there is none.
    async fn get(&self, id: &UserId) -> StoreResult<Option<UserRecord>>;

    /// The users with these ids that exist, in any order. A store over a
    /// network overrides this with one round trip.
    async fn get_many(&self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(u) = self.get(id).await? {
                found.push(u);
            }
        }
        Ok(found)
    }

    /// The user whose normalised username is `key`; `Ok(None)` if none.
    async fn find_by_username(&self, key: &str) -> StoreResult<Option<UserRecord>>;

    /// The user whose normalised email is `key`; `Ok(None)` if none.
    async fn find_by_email(&self, key: &str) -> StoreResult<Option<UserRecord>>;

    /// Users whose `username_key`, or any word of whose display name (see
    /// [`display_name_words`]), starts with `query.prefix`, ordered by
    /// `username_key`, strictly after `query.after`, at most `query.limit`.
    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<UserRecord>>;

    /// Applies `update` and returns the new record; `NotFound` if no such user.
    async fn update_profile(&self, id: &UserId, update: &ProfileUpdate) -> StoreResult<UserRecord>;

    /// Replaces the password hash; `NotFound` if no such user.
    async fn set_password_hash(&self, id: &UserId, hash: &str) -> StoreResult<()>;

    /// Replaces the privacy settings and returns the new record; `NotFound`
    /// if no such user.
    async fn set_privacy(&self, id: &UserId, privacy: &Privacy) -> StoreResult<UserRecord>;

    /// Those of `ids` that are some user's avatar: what the garbage
    /// collection of unreferenced blobs keeps. Found through an index, not
    /// by a scan of every user; any order.
    async fn avatars_in_use(&self, ids: &[MediaId]) -> StoreResult<Vec<MediaId>>;
}
