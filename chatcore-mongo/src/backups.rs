//! Encrypted key backups: the current backup of each user in `backups`
//! (`_id` is the user), its keys in `backup_keys` (`_id` is
//! `<user>|<version>|<conv>|<session>`), stored as opaque bytes.
//!
//! Without transactions: the bound on keys is the backup document's
//! `count`, raised by one conditional `$inc` before any key is inserted
//! (so a request past it stores nothing) and lowered again for a key that
//! a concurrent request inserted first. A better copy replaces a key by an
//! update whose filter matches only while the stored copy is worse, so of
//! two concurrent puts the better copy stays. Keys of a replaced or deleted
//! version are deleted with it; a put racing a new backup may leave keys
//! under the old version, which no read sees and the next `create` or
//! `delete` removes.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Binary, Document};
use mongodb::options::ReturnDocument;
use mongodb::Collection;
use serde::{Deserialize, Serialize};

use chatcore::model::{ConversationId, Millis, UserId};
use chatcore::store::{Backup, BackupKey, BackupStore, PutKeys, StoreError, StoreResult};

use crate::schema::{BACKUPS, BACKUP_KEYS};
use crate::{limit_i64, Inner};

#[derive(Serialize, Deserialize)]
struct BackupDoc {
    #[serde(rename = "_id")]
    user: String,
    version: String,
    algorithm: String,
    auth_data: String,
    count: i64,
    etag: i64,
    created_at: Millis,
}

impl BackupDoc {
    fn into_backup(self) -> Backup {
        let mut b = Backup::new(
            self.version,
            self.algorithm,
            self.auth_data,
            self.created_at,
        );
        b.count = u64::try_from(self.count).unwrap_or(0);
        b.etag = u64::try_from(self.etag).unwrap_or(0);
        b
    }
}

#[derive(Serialize, Deserialize)]
struct KeyDoc {
    #[serde(rename = "_id")]
    key: String,
    user: String,
    version: String,
    conv: String,
    session: String,
    first_index: i64,
    forwarded: i64,
    verified: bool,
    data: Binary,
}

impl KeyDoc {
    fn into_key(self) -> StoreResult<BackupKey> {
        let index = |n: i64| {
            u32::try_from(n).map_err(|_| StoreError::Corrupt(format!("backup key index {n}")))
        };
        Ok(BackupKey::new(
            ConversationId(self.conv),
            self.session,
            (
                index(self.first_index)?,
                index(self.forwarded)?,
                self.verified,
            ),
            self.data.bytes,
        ))
    }
}

fn key_id(user: &UserId, version: &str, conv: &ConversationId, session: &str) -> String {
    format!("{}|{version}|{}|{session}", user.0, conv.0)
}

/// The filter that matches a stored copy worse than `k`
/// ([`BackupKey::better_than`]).
fn worse_than(k: &BackupKey) -> Document {
    let (fi, fw) = (i64::from(k.first_index), i64::from(k.forwarded));
    let later = vec![
        doc! { "first_index": { "$gt": fi } },
        doc! { "first_index": fi, "forwarded": { "$gt": fw } },
    ];
    if k.verified {
        doc! { "$or": [
            { "verified": false },
            { "verified": true, "$or": later },
        ] }
    } else {
        doc! { "verified": false, "$or": later }
    }
}

/// Key backups in `backups` and `backup_keys`.
#[derive(Clone)]
pub struct MongoBackupStore {
    inner: Arc<Inner>,
    backups: Collection<BackupDoc>,
    keys: Collection<KeyDoc>,
}

impl MongoBackupStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            backups: inner.durable(BACKUPS),
            keys: inner.durable(BACKUP_KEYS),
            inner,
        }
    }

    /// The user's backup when `version` is the current one.
    async fn current_at(&self, user: &UserId, version: &str) -> StoreResult<BackupDoc> {
        self.inner
            .run(
                self.backups
                    .find_one(doc! { "_id": &user.0, "version": version }),
            )
            .await?
            .ok_or(StoreError::NotFound)
    }

    /// Deletes the user's keys of every version but `keep`.
    async fn delete_keys_except(&self, user: &UserId, keep: Option<&str>) -> StoreResult<()> {
        let filter = match keep {
            Some(v) => doc! { "user": &user.0, "version": { "$ne": v } },
            None => doc! { "user": &user.0 },
        };
        self.inner.run(self.keys.delete_many(filter)).await?;
        Ok(())
    }

    /// Lowers the backup's count by `n` (keys it reserved room for and
    /// did not insert).
    async fn release(&self, user: &UserId, version: &str, n: i64) -> StoreResult<()> {
        if n > 0 {
            self.inner
                .run(self.backups.update_one(
                    doc! { "_id": &user.0, "version": version },
                    doc! { "$inc": { "count": -n } },
                ))
                .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl BackupStore for MongoBackupStore {
    async fn create(&self, user: &UserId, backup: Backup) -> StoreResult<()> {
        let d = BackupDoc {
            user: user.0.clone(),
            version: backup.version.clone(),
            algorithm: backup.algorithm,
            auth_data: backup.auth_data,
            count: 0,
            etag: 0,
            created_at: backup.created_at,
        };
        self.inner
            .run(
                self.backups
                    .replace_one(doc! { "_id": &user.0 }, &d)
                    .upsert(true),
            )
            .await?;
        self.delete_keys_except(user, Some(&backup.version)).await
    }

    async fn current(&self, user: &UserId) -> StoreResult<Option<Backup>> {
        Ok(self
            .inner
            .run(self.backups.find_one(doc! { "_id": &user.0 }))
            .await?
            .map(BackupDoc::into_backup))
    }

    async fn update(&self, user: &UserId, version: &str, auth_data: String) -> StoreResult<Backup> {
        self.inner
            .run(
                self.backups
                    .find_one_and_update(
                        doc! { "_id": &user.0, "version": version },
                        doc! { "$set": { "auth_data": auth_data } },
                    )
                    .return_document(ReturnDocument::After),
            )
            .await?
            .map(BackupDoc::into_backup)
            .ok_or(StoreError::NotFound)
    }

    async fn delete(&self, user: &UserId, version: &str) -> StoreResult<()> {
        let r = self
            .inner
            .run(
                self.backups
                    .delete_one(doc! { "_id": &user.0, "version": version }),
            )
            .await?;
        if r.deleted_count == 0 {
            return Err(StoreError::NotFound);
        }
        self.delete_keys_except(user, None).await
    }

    async fn put_keys(
        &self,
        user: &UserId,
        version: &str,
        keys: &[BackupKey],
        max: usize,
    ) -> StoreResult<PutKeys> {
        self.current_at(user, version).await?;
        let best: BTreeMap<String, &BackupKey> = BackupKey::best_per_session(keys)
            .into_iter()
            .map(|k| (key_id(user, version, &k.conv, &k.session), k))
            .collect();
        let ids: Vec<&String> = best.keys().collect();
        let cursor = self
            .inner
            .run(self.keys.find(doc! { "_id": { "$in": ids } }))
            .await?;
        let stored: Vec<KeyDoc> = self.inner.run(cursor.try_collect()).await?;
        let known: std::collections::HashSet<String> = stored.into_iter().map(|d| d.key).collect();
        let new: Vec<(&String, &BackupKey)> = best
            .iter()
            .filter(|(id, _)| !known.contains(*id))
            .map(|(id, k)| (id, *k))
            .collect();

        // Room for the new keys, reserved before any is written.
        let n = i64::try_from(new.len()).unwrap_or(i64::MAX);
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        if n > 0 {
            let room = self
                .inner
                .run(self.backups.update_one(
                    doc! { "_id": &user.0, "version": version, "count": { "$lte": max - n } },
                    doc! { "$inc": { "count": n } },
                ))
                .await?;
            if room.matched_count == 0 {
                // Full, or the version went meanwhile.
                self.current_at(user, version).await?;
                return Ok(PutKeys::Full);
            }
        }

        let mut changed = false;
        let (mut inserted, mut lost) = (0i64, 0i64);
        let doc_of = |id: &String, k: &BackupKey| KeyDoc {
            key: id.clone(),
            user: user.0.clone(),
            version: version.to_owned(),
            conv: k.conv.0.clone(),
            session: k.session.clone(),
            first_index: i64::from(k.first_index),
            forwarded: i64::from(k.forwarded),
            verified: k.verified,
            data: Binary {
                subtype: mongodb::bson::spec::BinarySubtype::Generic,
                bytes: k.data.clone(),
            },
        };
        let mut replace: Vec<(&String, &BackupKey)> = best
            .iter()
            .filter(|(id, _)| known.contains(*id))
            .map(|(id, k)| (id, *k))
            .collect();
        for (id, k) in new {
            match self.inner.run(self.keys.insert_one(doc_of(id, k))).await {
                Ok(_) => {
                    changed = true;
                    inserted += 1;
                }
                // A concurrent put inserted it first: not new after all.
                Err(StoreError::Conflict { .. }) => {
                    lost += 1;
                    replace.push((id, k));
                }
                Err(e) => {
                    self.release(user, version, n - inserted).await?;
                    return Err(e);
                }
            }
        }
        self.release(user, version, lost).await?;
        for (id, k) in replace {
            let mut filter = worse_than(k);
            filter.insert("_id", id.as_str());
            let r = self
                .inner
                .run(self.keys.replace_one(filter, doc_of(id, k)))
                .await?;
            changed |= r.modified_count > 0;
        }

        let backup = if changed {
            self.inner
                .run(
                    self.backups
                        .find_one_and_update(
                            doc! { "_id": &user.0, "version": version },
                            doc! { "$inc": { "etag": 1 } },
                        )
                        .return_document(ReturnDocument::After),
                )
                .await?
        } else {
            // Nothing stored: a read, not a write that changes nothing.
            self.inner
                .run(
                    self.backups
                        .find_one(doc! { "_id": &user.0, "version": version }),
                )
                .await?
        };
        backup
            .map(|d| PutKeys::Stored(d.into_backup()))
            .ok_or(StoreError::NotFound)
    }

    async fn keys(
        &self,
        user: &UserId,
        version: &str,
        after: Option<(&ConversationId, &str)>,
        limit: usize,
    ) -> StoreResult<Vec<BackupKey>> {
        self.current_at(user, version).await?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut filter = doc! { "user": &user.0, "version": version };
        if let Some((conv, session)) = after {
            filter.insert(
                "$or",
                vec![
                    doc! { "conv": { "$gt": &conv.0 } },
                    doc! { "conv": &conv.0, "session": { "$gt": session } },
                ],
            );
        }
        let cursor = self
            .inner
            .run(
                self.keys
                    .find(filter)
                    .sort(doc! { "conv": 1, "session": 1 })
                    .limit(limit_i64(limit)),
            )
            .await?;
        let docs: Vec<KeyDoc> = self.inner.run(cursor.try_collect()).await?;
        docs.into_iter().map(KeyDoc::into_key).collect()
    }
}
