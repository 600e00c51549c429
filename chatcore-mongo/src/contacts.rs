//! Contacts, contact requests and blocks: one document per pair of users in
//! `contacts` ([`RelationDoc`]), keyed by [`Relation::key`].
//!
//! Round trips: `relation` one `find_one` by `_id`; `relations` one `find`
//! with `_id: {$in: keys}`; `change` one write (an insert for version 1, a
//! conditional update for later ones); `list` one `find` on the
//! `listed_key` index.
//!
//! `change` is a compare-and-swap on `version` built from the two writes
//! that are atomic on MongoDB and jongodb alike:
//!
//! - version 1 (nothing stored before): `insert_one`. The primary key
//!   arbitrates between racing first writes: every loser gets a duplicate
//!   key, which is `Stale`.
//! - version v > 1: `update_one({_id, version: v - 1}, {$set: ...})`
//!   without upsert (an upsert would store a version over nothing). No
//!   match, whether the version moved on or nothing is stored, is `Stale`.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, Document};
use mongodb::Collection;
use std::sync::Arc;

use chatcore::model::UserId;
use chatcore::store::{
    pair_key, ContactStore, ContactView, Relation, StoreError, StoreResult, Written,
};

use crate::records::{listing_tag, RelationDoc};
use crate::schema::CONTACTS;
use crate::{limit_i64, to_i64, Inner};

/// Relations in the `contacts` collection (see the module docs).
#[derive(Clone)]
pub struct MongoContactStore {
    inner: Arc<Inner>,
    contacts: Collection<RelationDoc>,
}

impl MongoContactStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            contacts: inner.durable(CONTACTS),
            inner,
        }
    }

    async fn find(&self, filter: Document, limit: Option<usize>) -> StoreResult<Vec<Relation>> {
        let mut find = self.contacts.find(filter).sort(doc! { "_id": 1 });
        if let Some(limit) = limit {
            // The whole page in the first batch: one round trip.
            find = find
                .limit(limit_i64(limit))
                .batch_size(u32::try_from(limit).unwrap_or(u32::MAX));
        }
        let cursor = self.inner.run(find).await?;
        let docs: Vec<RelationDoc> = self.inner.run(cursor.try_collect()).await?;
        docs.into_iter().map(RelationDoc::into_relation).collect()
    }

    /// `list` for a view that has no listing tag: the user's pairs in key
    /// order (the `users_key` index), filtered by [`ContactView::shows`]
    /// until `limit` are found. Correct for every view, but it reads the
    /// pairs the view does not show too.
    async fn list_by_scan(
        &self,
        user: &UserId,
        view: ContactView,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Relation>> {
        let mut filter = doc! { "users": &user.0 };
        if let Some(after) = after {
            filter.insert("_id", doc! { "$gt": after });
        }
        let mut cursor = self
            .inner
            .run(self.contacts.find(filter).sort(doc! { "_id": 1 }))
            .await?;
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(d) = self.inner.run(cursor.try_next()).await? else {
                break;
            };
            let r = d.into_relation()?;
            if view.shows(&r, user) {
                out.push(r);
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl ContactStore for MongoContactStore {
    async fn relation(&self, a: &UserId, b: &UserId) -> StoreResult<Option<Relation>> {
        let found = self
            .inner
            .run(self.contacts.find_one(doc! { "_id": pair_key(a, b) }))
            .await?;
        found.map(RelationDoc::into_relation).transpose()
    }

    async fn relations(&self, user: &UserId, others: &[UserId]) -> StoreResult<Vec<Relation>> {
        if others.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = others.iter().map(|o| pair_key(user, o)).collect();
        self.find(doc! { "_id": { "$in": keys } }, None).await
    }

    async fn change(&self, relation: &Relation) -> StoreResult<Written> {
        let record = RelationDoc::from_relation(relation)?;
        match relation.version {
            // No change leads to version 0: it is the pair never stored.
            0 => Ok(Written::Stale),
            1 => match self.inner.run(self.contacts.insert_one(&record)).await {
                Ok(_) => Ok(Written::Done),
                // Stored already, or by a racing first change.
                Err(StoreError::Conflict { .. }) => Ok(Written::Stale),
                Err(e) => Err(e),
            },
            version => {
                let mut set = to_set(&record)?;
                set.remove("_id");
                let r = self
                    .inner
                    .run(self.contacts.update_one(
                        doc! { "_id": &record.key, "version": to_i64(version - 1) },
                        doc! { "$set": set },
                    ))
                    .await?;
                Ok(if r.matched_count == 1 {
                    Written::Done
                } else {
                    Written::Stale
                })
            }
        }
    }

    async fn list(
        &self,
        user: &UserId,
        view: ContactView,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Relation>> {
        // MongoDB reads a limit of 0 as "no limit".
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some(tag) = listing_tag(view, user) else {
            return self.list_by_scan(user, view, after, limit).await;
        };
        let mut filter = doc! { "listed": tag };
        if let Some(after) = after {
            filter.insert("_id", doc! { "$gt": after });
        }
        self.find(filter, Some(limit)).await
    }
}

/// `record` as a document, for `$set`.
fn to_set(record: &RelationDoc) -> StoreResult<Document> {
    mongodb::bson::to_document(record).map_err(|e| StoreError::Corrupt(e.to_string()))
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;
    use chatcore::store::Link;

    /// The scan that serves views without a listing tag lists the tagged
    /// views exactly as their indexed queries do.
    #[tokio::test]
    async fn the_scan_lists_like_the_tags() {
        let db = format!("chatcore_unit_{}", UserId::generate().0.replace('-', ""));
        let store = crate::MongoStore::connect(&crate::testing::server_uri(), &db)
            .await
            .unwrap_or_else(|e| panic!("{e}; {}", crate::testing::NO_SERVER));
        let contacts = store.contacts();
        let me = UserId::generate();
        let others: Vec<UserId> = (0..6).map(|_| UserId::generate()).collect();
        for (i, o) in others.iter().enumerate() {
            let mut r = Relation::new(&me, o);
            r.version = 1;
            let me_side = r.side(&me).unwrap_or(0);
            match i % 3 {
                0 => r.link = Link::Contacts { since: 1 },
                1 => {
                    r.link = Link::Requested {
                        by: o.clone(),
                        at: 1,
                    }
                }
                _ => {
                    r.link = Link::Requested {
                        by: me.clone(),
                        at: 1,
                    }
                }
            }
            if i >= 3 {
                r.blocked[me_side] = Some(2);
            }
            assert_eq!(contacts.change(&r).await.unwrap(), Written::Done);
        }
        for view in crate::records::LISTED_VIEWS {
            for after in [None, Some(pair_key(&me, &others[2]))] {
                for limit in [1, 2, 10] {
                    let tagged = contacts
                        .list(&me, view, after.as_deref(), limit)
                        .await
                        .unwrap();
                    let scanned = contacts
                        .list_by_scan(&me, view, after.as_deref(), limit)
                        .await
                        .unwrap();
                    assert_eq!(tagged, scanned, "{view:?} after {after:?}, {limit}");
                }
            }
        }
        let _ = store.database().drop().await;
    }
}
