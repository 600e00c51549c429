//! Accounts.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Bson, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use chatcore::model::{Audience, MediaId, Millis, Privacy, UserId};
use chatcore::store::{
    display_name_words, NewUser, ProfileUpdate, SearchQuery, StoreError, StoreResult, UserRecord,
    UserStore,
};

use crate::records::bson_of;
use crate::schema::USERS;
use crate::{limit_i64, Inner};

/// A stored account. `name_words` holds [`display_name_words`] of the
/// display name, so that directory search is an indexed prefix match.
#[derive(Serialize, Deserialize)]
struct UserDoc {
    #[serde(rename = "_id")]
    id: String,
    username: String,
    username_key: String,
    email: String,
    email_key: String,
    phone: String,
    display_name: String,
    name_words: Vec<String>,
    about: String,
    avatar: Option<String>,
    password_hash: String,
    created_at: Millis,
    /// Absent in documents written before privacy settings existed: those
    /// users have the default, so no migration rewrites them.
    #[serde(default)]
    privacy: PrivacyDoc,
}

/// A stored [`Privacy`]: each setting defaults on its own, so that a
/// setting added later reads as its default from older documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PrivacyDoc {
    #[serde(default)]
    direct: AudienceDoc,
    #[serde(default)]
    groups: AudienceDoc,
    #[serde(default)]
    presence: AudienceDoc,
    /// Absent in documents written before read receipts existed: on.
    #[serde(default = "on")]
    read_receipts: bool,
}

impl Default for PrivacyDoc {
    fn default() -> Self {
        Self {
            direct: AudienceDoc::default(),
            groups: AudienceDoc::default(),
            presence: AudienceDoc::default(),
            read_receipts: true,
        }
    }
}

fn on() -> bool {
    true
}

/// A stored [`Audience`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum AudienceDoc {
    #[default]
    Everyone,
    Contacts,
    Nobody,
}

impl PrivacyDoc {
    fn from_privacy(p: &Privacy) -> Self {
        let audience = |a: Audience| match a {
            Audience::Everyone => AudienceDoc::Everyone,
            Audience::Contacts => AudienceDoc::Contacts,
            Audience::Nobody => AudienceDoc::Nobody,
        };
        Self {
            direct: audience(p.direct),
            groups: audience(p.groups),
            presence: audience(p.presence),
            read_receipts: p.read_receipts,
        }
    }

    fn into_privacy(self) -> Privacy {
        let audience = |a: AudienceDoc| match a {
            AudienceDoc::Everyone => Audience::Everyone,
            AudienceDoc::Contacts => Audience::Contacts,
            AudienceDoc::Nobody => Audience::Nobody,
        };
        let mut p = Privacy::default();
        p.direct = audience(self.direct);
        p.groups = audience(self.groups);
        p.presence = audience(self.presence);
        p.read_receipts = self.read_receipts;
        p
    }
}

impl UserDoc {
    fn from_record(r: &UserRecord) -> Self {
        Self {
            id: r.id.0.clone(),
            username: r.username.clone(),
            username_key: r.username_key.clone(),
            email: r.email.clone(),
            email_key: r.email_key.clone(),
            phone: r.phone.clone(),
            display_name: r.display_name.clone(),
            name_words: display_name_words(&r.display_name),
            about: r.about.clone(),
            avatar: r.avatar.clone(),
            password_hash: r.password_hash.clone(),
            created_at: r.created_at,
            privacy: PrivacyDoc::from_privacy(&r.privacy),
        }
    }

    fn into_record(self) -> UserRecord {
        let mut r = UserRecord::from_new(NewUser::new(
            UserId(self.id),
            self.username,
            self.username_key,
            self.email,
            self.email_key,
            self.phone,
            self.display_name,
            self.password_hash,
            self.created_at,
        ));
        r.about = self.about;
        r.avatar = self.avatar;
        r.privacy = self.privacy.into_privacy();
        r
    }
}

/// Accounts in the `users` collection, with unique indexes on the
/// normalised username, the normalised email and the phone number.
#[derive(Clone)]
pub struct MongoUserStore {
    inner: Arc<Inner>,
    users: Collection<UserDoc>,
}

impl MongoUserStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        let users = inner.durable(USERS);
        Self { inner, users }
    }

    async fn find_one(&self, filter: Document) -> StoreResult<Option<UserRecord>> {
        let found = self.inner.run(self.users.find_one(filter)).await?;
        Ok(found.map(UserDoc::into_record))
    }

    /// After a duplicate-key error, which key is taken, checked in the
    /// reference store's order (username, email, phone, id) so that a user
    /// colliding on several keys gets the same answer from every store.
    async fn taken_field(&self, user: &UserRecord, reported: String) -> StoreResult<String> {
        let checks = [
            ("username", doc! { "username_key": &user.username_key }),
            ("email", doc! { "email_key": &user.email_key }),
            ("phone", doc! { "phone": &user.phone }),
            ("id", doc! { "_id": &user.id.0 }),
        ];
        for (field, filter) in checks {
            if self.inner.run(self.users.find_one(filter)).await?.is_some() {
                return Ok(field.to_owned());
            }
        }
        Ok(reported)
    }
}

/// `^` and the regex-escaped `prefix`: a literal prefix match the server
/// can answer from an index.
fn prefix_regex(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 8);
    out.push('^');
    for c in prefix.chars() {
        if c.is_ascii() && !c.is_ascii_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait]
impl UserStore for MongoUserStore {
    async fn create(&self, user: NewUser) -> StoreResult<UserRecord> {
        let rec = UserRecord::from_new(user);
        match self
            .inner
            .run(self.users.insert_one(UserDoc::from_record(&rec)))
            .await
        {
            Ok(_) => Ok(rec),
            Err(StoreError::Conflict { field }) => Err(StoreError::Conflict {
                field: self.taken_field(&rec, field).await?,
            }),
            Err(e) => Err(e),
        }
    }

    async fn get(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        self.find_one(doc! { "_id": &id.0 }).await
    }

    /// One `$in` query for the whole list (the conversation list asks for
    /// every peer's profile at once).
    async fn get_many(&self, ids: &[UserId]) -> StoreResult<Vec<UserRecord>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<&str> = ids.iter().map(|u| u.0.as_str()).collect();
        let cursor = self
            .inner
            .run(self.users.find(doc! { "_id": { "$in": ids } }))
            .await?;
        let docs: Vec<UserDoc> = self.inner.run(cursor.try_collect()).await?;
        Ok(docs.into_iter().map(UserDoc::into_record).collect())
    }

    async fn find_by_username(&self, key: &str) -> StoreResult<Option<UserRecord>> {
        self.find_one(doc! { "username_key": key }).await
    }

    async fn find_by_email(&self, key: &str) -> StoreResult<Option<UserRecord>> {
        self.find_one(doc! { "email_key": key }).await
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<UserRecord>> {
        if query.limit == 0 {
            return Ok(Vec::new());
        }
        let mut clauses = Vec::new();
        if !query.prefix.is_empty() {
            let re = prefix_regex(&query.prefix);
            clauses.push(doc! { "$or": [
                { "username_key": { "$regex": &re } },
                { "name_words": { "$regex": &re } },
            ] });
        }
        if let Some(after) = &query.after {
            clauses.push(doc! { "username_key": { "$gt": after } });
        }
        let filter = if clauses.is_empty() {
            doc! {}
        } else {
            doc! { "$and": clauses }
        };
        let cursor = self
            .inner
            .run(
                self.users
                    .find(filter)
                    .sort(doc! { "username_key": 1 })
                    .limit(limit_i64(query.limit)),
            )
            .await?;
        let docs: Vec<UserDoc> = self.inner.run(cursor.try_collect()).await?;
        Ok(docs.into_iter().map(UserDoc::into_record).collect())
    }

    async fn update_profile(&self, id: &UserId, update: &ProfileUpdate) -> StoreResult<UserRecord> {
        let mut set = Document::new();
        if let Some(name) = &update.display_name {
            set.insert("display_name", name);
            set.insert("name_words", display_name_words(name));
        }
        if let Some(about) = &update.about {
            set.insert("about", about);
        }
        if let Some(avatar) = &update.avatar {
            set.insert("avatar", avatar.clone().map_or(Bson::Null, Bson::String));
        }
        if set.is_empty() {
            // MongoDB refuses an empty `$set`; nothing to change anyway.
            return self.get(id).await?.ok_or(StoreError::NotFound);
        }
        let updated = self
            .inner
            .run(
                self.users
                    .find_one_and_update(doc! { "_id": &id.0 }, doc! { "$set": set })
                    .return_document(ReturnDocument::After),
            )
            .await?;
        updated
            .map(UserDoc::into_record)
            .ok_or(StoreError::NotFound)
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> StoreResult<()> {
        let r = self
            .inner
            .run(self.users.update_one(
                doc! { "_id": &id.0 },
                doc! { "$set": { "password_hash": hash } },
            ))
            .await?;
        if r.matched_count == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn set_privacy(&self, id: &UserId, privacy: &Privacy) -> StoreResult<UserRecord> {
        let privacy = bson_of(&PrivacyDoc::from_privacy(privacy))?;
        let updated = self
            .inner
            .run(
                self.users
                    .find_one_and_update(
                        doc! { "_id": &id.0 },
                        doc! { "$set": { "privacy": privacy } },
                    )
                    .return_document(ReturnDocument::After),
            )
            .await?;
        updated
            .map(UserDoc::into_record)
            .ok_or(StoreError::NotFound)
    }

    async fn avatars_in_use(&self, ids: &[MediaId]) -> StoreResult<Vec<MediaId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let wanted: Vec<&str> = ids.iter().map(MediaId::as_str).collect();
        // The index `avatar`: one probe per id; only the field is read.
        let cursor = self
            .inner
            .run(
                self.users
                    .clone_with_type::<Document>()
                    .find(doc! { "avatar": { "$in": &wanted } })
                    .projection(doc! { "_id": 0, "avatar": 1 }),
            )
            .await?;
        let found: Vec<Document> = self.inner.run(cursor.try_collect()).await?;
        let mut out = Vec::with_capacity(found.len());
        for d in found {
            let avatar = d.get_str("avatar").map_err(|_| {
                StoreError::Corrupt(format!("{USERS}: an avatar is not a media id: {d}"))
            })?;
            out.push(MediaId::from(avatar));
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::{prefix_regex, PrivacyDoc};
    use chatcore::model::Privacy;
    use mongodb::bson::{self, doc};

    #[test]
    fn a_missing_privacy_reads_as_the_default() {
        assert_eq!(PrivacyDoc::default().into_privacy(), Privacy::default());
        let old: PrivacyDoc = bson::from_document(doc! {}).unwrap();
        assert_eq!(old, PrivacyDoc::default());
        let partial: PrivacyDoc = bson::from_document(doc! { "presence": "nobody" }).unwrap();
        assert_eq!(partial.direct, PrivacyDoc::default().direct);
        assert!(
            partial.read_receipts,
            "read receipts are on unless turned off"
        );
        let off: PrivacyDoc = bson::from_document(doc! { "read_receipts": false }).unwrap();
        assert!(!off.into_privacy().read_receipts);
    }

    #[test]
    fn prefixes_are_escaped_literally() {
        assert_eq!(prefix_regex("al"), "^al");
        assert_eq!(prefix_regex("a.b*(c"), "^a\\.b\\*\\(c");
        assert_eq!(prefix_regex("ü$"), "^ü\\$");
    }
}
