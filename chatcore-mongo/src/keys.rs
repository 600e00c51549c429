//! The key directory: identity keys, one-time keys (each claimed once),
//! fallback keys; and the to-device queues.
//!
//! # Handing a one-time key out once, without transactions
//!
//! Each one-time key is a document of `one_time_keys` with `claimed:
//! false`. A claim reads a candidate and flips it with one conditional
//! update (`{_id, claimed: false}` → `claimed: true`): of concurrent
//! claimers only the one whose update matched owns the key; the others
//! read the next candidate. A claimed key stays, flagged, so that its id
//! is never uploaded again.
//!
//! # Bounds
//!
//! How many keys a device has waiting (and how many payloads wait for a
//! device) is bounded with a counter document per device, raised by one
//! conditional `$inc` that matches only while the new total fits (an
//! upsert that finds no fitting document collides with the existing one
//! on `_id`: over the bound), the pattern of the send budgets. A claim,
//! an acknowledgement or a failed insert lowers it again. A crash between
//! the two writes leaves the counter high, which only refuses an upload
//! early until the device's keys are claimed.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, Binary, Document};
use mongodb::Collection;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use chatcore::model::{DeviceId, Millis, UserId};
use chatcore::store::{
    Claimed, DeviceKeys, IdentitySet, KeyCounts, KeyStore, MasterKey, MasterSignature, OneTimeKey,
    Queued, StoreError, StoreResult, ToDevice, ToDeviceStore,
};

use crate::schema::{
    DEVICE_KEYS, KEY_COUNTS, MASTER_KEYS, ONE_TIME_KEYS, TO_DEVICE, TO_DEVICE_COUNTS,
};
use crate::{limit_i64, Inner};

/// Claims one target may lose to concurrent claimers before giving up.
const MAX_CLAIM_ROUNDS: usize = 1_000;

fn device_key(user: &UserId, device: &DeviceId) -> String {
    format!("{}|{}", user.0, device.0)
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct DeviceKeysDoc {
    #[serde(rename = "_id")]
    key: String,
    user: String,
    device: String,
    algorithm: String,
    signing_key: String,
    agreement_key: String,
    signature: String,
    uploaded_at: Millis,
    /// The master key's signature of the device, once there is one: the
    /// master key that made it and the signature. Absent before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    master: Option<MasterSignatureDoc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct MasterSignatureDoc {
    key: String,
    signature: String,
}

/// A user's master key: `_id` is the user.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct MasterKeyDoc {
    #[serde(rename = "_id")]
    user: String,
    key: String,
    signature: String,
    uploaded_at: Millis,
}

impl DeviceKeysDoc {
    fn of(k: &DeviceKeys) -> Self {
        Self {
            key: device_key(&k.user, &k.device),
            user: k.user.0.clone(),
            device: k.device.0.clone(),
            algorithm: k.algorithm.clone(),
            signing_key: k.signing_key.clone(),
            agreement_key: k.agreement_key.clone(),
            signature: k.signature.clone(),
            uploaded_at: k.uploaded_at,
            // Signed by the master key later, never at upload.
            master: None,
        }
    }

    fn into_keys(self) -> DeviceKeys {
        let mut keys = DeviceKeys::new(
            (UserId(self.user), DeviceId(self.device)),
            self.algorithm,
            self.signing_key,
            self.agreement_key,
            self.signature,
            self.uploaded_at,
        );
        keys.master_signature = self
            .master
            .map(|m| MasterSignature::new(m.key, m.signature));
        keys
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct OneTimeKeyDoc {
    /// `<user>|<device>|<key id>`.
    #[serde(rename = "_id")]
    key: String,
    user: String,
    device: String,
    id: String,
    public: String,
    signature: String,
    claimed: bool,
}

/// A device's fallback key, in its `key_counts` document (beside `n`, the
/// bound's counter of one-time keys waiting).
#[derive(Clone, Debug)]
struct FallbackDoc {
    id: String,
    public: String,
    signature: String,
    used: bool,
}

/// Raises the counter `n` of the document `id` by `n` if it stays at most
/// `max`: whether it did.
async fn reserve(
    inner: &Inner,
    coll: &Collection<Document>,
    id: &str,
    n: i64,
    max: i64,
) -> StoreResult<bool> {
    if n > max {
        return Ok(false);
    }
    let filter = doc! { "_id": id, "n": { "$lte": max - n } };
    let inc = doc! { "$inc": { "n": n } };
    match inner
        .run(coll.update_one(filter.clone(), inc.clone()).upsert(true))
        .await
    {
        Ok(_) => Ok(true),
        // The document exists and `n` does not fit, or two first
        // reservations raced to insert it: try once more without inserting.
        Err(StoreError::Conflict { .. }) => {
            let r = inner.run(coll.update_one(filter, inc)).await?;
            Ok(r.matched_count == 1)
        }
        Err(e) => Err(e),
    }
}

/// Lowers the counter of the document `id` by `n`.
async fn release(inner: &Inner, coll: &Collection<Document>, id: &str, n: i64) -> StoreResult<()> {
    if n > 0 {
        inner
            .run(coll.update_one(doc! { "_id": id }, doc! { "$inc": { "n": -n } }))
            .await?;
    }
    Ok(())
}

/// The key directory in `device_keys`, `one_time_keys` and `key_counts`.
#[derive(Clone)]
pub struct MongoKeyStore {
    inner: Arc<Inner>,
    identities: Collection<DeviceKeysDoc>,
    keys: Collection<OneTimeKeyDoc>,
    counts: Collection<Document>,
    masters: Collection<MasterKeyDoc>,
}

impl MongoKeyStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            identities: inner.durable(DEVICE_KEYS),
            keys: inner.durable(ONE_TIME_KEYS),
            counts: inner.durable(KEY_COUNTS),
            masters: inner.durable(MASTER_KEYS),
            inner,
        }
    }

    /// The device's fallback key, if it has one.
    async fn fallback(&self, id: &str) -> StoreResult<Option<FallbackDoc>> {
        let Some(d) = self
            .inner
            .run(self.counts.find_one(doc! { "_id": id }))
            .await?
        else {
            return Ok(None);
        };
        let Ok(f) = d.get_document("fallback") else {
            return Ok(None);
        };
        let text = |k: &str| {
            f.get_str(k)
                .map(str::to_owned)
                .map_err(|_| StoreError::Corrupt(format!("{KEY_COUNTS} {id}: fallback.{k}")))
        };
        Ok(Some(FallbackDoc {
            id: text("id")?,
            public: text("public")?,
            signature: text("signature")?,
            used: f.get_bool("used").unwrap_or(false),
        }))
    }

    /// Claims one unclaimed one-time key of the device, if it has one.
    async fn claim_one(&self, user: &UserId, device: &DeviceId) -> StoreResult<Option<OneTimeKey>> {
        let filter = doc! { "user": &user.0, "device": &device.0, "claimed": false };
        for _ in 0..MAX_CLAIM_ROUNDS {
            let Some(k) = self.inner.run(self.keys.find_one(filter.clone())).await? else {
                return Ok(None);
            };
            let won = self
                .inner
                .run(self.keys.update_one(
                    doc! { "_id": &k.key, "claimed": false },
                    doc! { "$set": { "claimed": true } },
                ))
                .await?;
            if won.modified_count == 1 {
                release(&self.inner, &self.counts, &device_key(user, device), 1).await?;
                return Ok(Some(OneTimeKey::new(k.id, k.public, k.signature)));
            }
        }
        Err(StoreError::Unavailable(format!(
            "gave up claiming a key of {}|{} after {MAX_CLAIM_ROUNDS} contended rounds",
            user.0, device.0
        )))
    }
}

#[async_trait]
impl KeyStore for MongoKeyStore {
    async fn set_identity(&self, keys: &DeviceKeys) -> StoreResult<IdentitySet> {
        let d = DeviceKeysDoc::of(keys);
        match self.inner.run(self.identities.insert_one(&d)).await {
            Ok(_) => Ok(IdentitySet::Stored),
            Err(StoreError::Conflict { .. }) => {
                let stored = self
                    .inner
                    .run(self.identities.find_one(doc! { "_id": &d.key }))
                    .await?
                    .ok_or_else(|| StoreError::Unavailable("device keys vanished".into()))?;
                Ok(if stored.into_keys().same_keys(keys) {
                    IdentitySet::Same
                } else {
                    IdentitySet::Different
                })
            }
            Err(e) => Err(e),
        }
    }

    async fn identities(&self, user: &UserId) -> StoreResult<Vec<DeviceKeys>> {
        let cursor = self
            .inner
            .run(
                self.identities
                    .find(doc! { "user": &user.0 })
                    .sort(doc! { "device": 1 }),
            )
            .await?;
        let docs: Vec<DeviceKeysDoc> = self.inner.run(cursor.try_collect()).await?;
        Ok(docs.into_iter().map(DeviceKeysDoc::into_keys).collect())
    }

    async fn add_one_time_keys(
        &self,
        user: &UserId,
        device: &DeviceId,
        keys: &[OneTimeKey],
        max: usize,
    ) -> StoreResult<bool> {
        let dev = device_key(user, device);
        let id_of = |k: &OneTimeKey| format!("{dev}|{}", k.id);
        let mut fresh: Vec<&OneTimeKey> = Vec::with_capacity(keys.len());
        for k in keys {
            if !fresh.iter().any(|f| f.id == k.id) {
                fresh.push(k);
            }
        }
        // Ids the device used already (claimed or not) are left out.
        let ids: Vec<String> = fresh.iter().map(|k| id_of(k)).collect();
        let cursor = self
            .inner
            .run(
                self.keys
                    .clone_with_type::<Document>()
                    .find(doc! { "_id": { "$in": &ids } })
                    .projection(doc! { "_id": 1 }),
            )
            .await?;
        let used: Vec<Document> = self.inner.run(cursor.try_collect()).await?;
        let used: Vec<&str> = used.iter().filter_map(|d| d.get_str("_id").ok()).collect();
        fresh.retain(|k| !used.contains(&id_of(k).as_str()));
        if fresh.is_empty() {
            return Ok(true);
        }
        let n = i64::try_from(fresh.len()).unwrap_or(i64::MAX);
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        if !reserve(&self.inner, &self.counts, &dev, n, max).await? {
            return Ok(false);
        }
        let mut lost = 0;
        for k in fresh {
            let d = OneTimeKeyDoc {
                key: id_of(k),
                user: user.0.clone(),
                device: device.0.clone(),
                id: k.id.clone(),
                public: k.key.clone(),
                signature: k.signature.clone(),
                claimed: false,
            };
            match self.inner.run(self.keys.insert_one(&d)).await {
                Ok(_) => {}
                // The same upload, retried at once, stored it first.
                Err(StoreError::Conflict { .. }) => lost += 1,
                Err(e) => {
                    release(&self.inner, &self.counts, &dev, lost + 1).await?;
                    return Err(e);
                }
            }
        }
        release(&self.inner, &self.counts, &dev, lost).await?;
        Ok(true)
    }

    async fn set_fallback(
        &self,
        user: &UserId,
        device: &DeviceId,
        key: &OneTimeKey,
    ) -> StoreResult<()> {
        let fallback = doc! {
            "id": &key.id, "public": &key.key, "signature": &key.signature, "used": false,
        };
        self.inner
            .run(
                self.counts
                    .update_one(
                        doc! { "_id": device_key(user, device) },
                        // The counter starts at 0 (reserve matches on it).
                        doc! { "$set": { "fallback": fallback }, "$setOnInsert": { "n": 0_i64 } },
                    )
                    .upsert(true),
            )
            .await?;
        Ok(())
    }

    async fn counts(&self, user: &UserId, device: &DeviceId) -> StoreResult<KeyCounts> {
        let one_time =
            self.inner
                .run(self.keys.count_documents(
                    doc! { "user": &user.0, "device": &device.0, "claimed": false },
                ))
                .await?;
        let fallback = self.fallback(&device_key(user, device)).await?;
        let mut counts = KeyCounts::default();
        counts.one_time = usize::try_from(one_time).unwrap_or(usize::MAX);
        counts.fallback_unused = fallback.is_some_and(|f| !f.used);
        Ok(counts)
    }

    async fn claim(&self, targets: &[(UserId, DeviceId)]) -> StoreResult<Vec<Claimed>> {
        let mut out = Vec::with_capacity(targets.len());
        for (user, device) in targets {
            if let Some(key) = self.claim_one(user, device).await? {
                out.push(Claimed::new(user.clone(), device.clone(), key, false));
                continue;
            }
            let id = device_key(user, device);
            let Some(f) = self.fallback(&id).await? else {
                continue;
            };
            if !f.used {
                self.inner
                    .run(self.counts.update_one(
                        doc! { "_id": &id, "fallback.id": &f.id },
                        doc! { "$set": { "fallback.used": true } },
                    ))
                    .await?;
            }
            let key = OneTimeKey::new(f.id, f.public, f.signature);
            out.push(Claimed::new(user.clone(), device.clone(), key, true));
        }
        Ok(out)
    }

    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<()> {
        let id = device_key(user, device);
        self.inner
            .run(self.identities.delete_one(doc! { "_id": &id }))
            .await?;
        self.inner
            .run(
                self.keys
                    .delete_many(doc! { "user": &user.0, "device": &device.0 }),
            )
            .await?;
        self.inner
            .run(self.counts.delete_one(doc! { "_id": &id }))
            .await?;
        Ok(())
    }

    async fn set_master_key(&self, key: &MasterKey) -> StoreResult<bool> {
        let d = MasterKeyDoc {
            user: key.user.0.clone(),
            key: key.key.clone(),
            signature: key.signature.clone(),
            uploaded_at: key.uploaded_at,
        };
        // Replaced only when the key differs: the same key again changes
        // nothing (and reports so).
        let replaced = self
            .inner
            .run(
                self.masters
                    .replace_one(doc! { "_id": &d.user, "key": { "$ne": &d.key } }, &d),
            )
            .await?;
        if replaced.matched_count == 1 {
            return Ok(true);
        }
        match self.inner.run(self.masters.insert_one(&d)).await {
            Ok(_) => Ok(true),
            // There is one: the same key, or one set meanwhile.
            Err(StoreError::Conflict { .. }) => {
                let stored = self
                    .inner
                    .run(self.masters.find_one(doc! { "_id": &d.user }))
                    .await?;
                Ok(stored.is_some_and(|s| s.key != d.key))
            }
            Err(e) => Err(e),
        }
    }

    async fn master_keys(&self, users: &[UserId]) -> StoreResult<Vec<MasterKey>> {
        let ids: Vec<&str> = users.iter().map(|u| u.0.as_str()).collect();
        let cursor = self
            .inner
            .run(self.masters.find(doc! { "_id": { "$in": ids } }))
            .await?;
        let docs: Vec<MasterKeyDoc> = self.inner.run(cursor.try_collect()).await?;
        Ok(docs
            .into_iter()
            .map(|d| MasterKey::new(UserId(d.user), d.key, d.signature, d.uploaded_at))
            .collect())
    }

    async fn sign_device(
        &self,
        user: &UserId,
        device: &DeviceId,
        signature: &MasterSignature,
    ) -> StoreResult<bool> {
        let master = doc! { "key": &signature.master_key, "signature": &signature.signature };
        let r = self
            .inner
            .run(self.identities.update_one(
                doc! { "_id": device_key(user, device) },
                doc! { "$set": { "master": master } },
            ))
            .await?;
        Ok(r.matched_count == 1)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct ToDeviceDoc {
    /// `<to user>|<to device>|<from device>|<id>`: a retry collides.
    #[serde(rename = "_id")]
    key: String,
    to_user: String,
    to_device: String,
    from_user: String,
    from_device: String,
    id: String,
    kind: String,
    payload: Binary,
    ts: Millis,
    /// Arrival order within the queue.
    order: ObjectId,
}

impl ToDeviceDoc {
    fn into_item(self) -> ToDevice {
        ToDevice::new(
            self.id,
            (UserId(self.from_user), DeviceId(self.from_device)),
            (UserId(self.to_user), DeviceId(self.to_device)),
            self.kind,
            self.payload.bytes,
            self.ts,
        )
    }
}

/// To-device queues in `to_device`, bounded through `to_device_counts`.
#[derive(Clone)]
pub struct MongoToDeviceStore {
    inner: Arc<Inner>,
    items: Collection<ToDeviceDoc>,
    counts: Collection<Document>,
}

impl MongoToDeviceStore {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            items: inner.durable(TO_DEVICE),
            counts: inner.durable(TO_DEVICE_COUNTS),
            inner,
        }
    }
}

#[async_trait]
impl ToDeviceStore for MongoToDeviceStore {
    async fn enqueue(&self, items: &[ToDevice], max: usize) -> StoreResult<Vec<Queued>> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            let target = device_key(&item.to_user, &item.to_device);
            let key = format!("{target}|{}|{}", item.from_device.0, item.id);
            let twin = self
                .inner
                .run(self.items.find_one(doc! { "_id": &key }))
                .await?
                .is_some();
            if twin {
                out.push(Queued::Duplicate);
                continue;
            }
            if !reserve(&self.inner, &self.counts, &target, 1, max).await? {
                out.push(Queued::Full);
                continue;
            }
            let d = ToDeviceDoc {
                key,
                to_user: item.to_user.0.clone(),
                to_device: item.to_device.0.clone(),
                from_user: item.from_user.0.clone(),
                from_device: item.from_device.0.clone(),
                id: item.id.clone(),
                kind: item.kind.clone(),
                payload: Binary {
                    subtype: mongodb::bson::spec::BinarySubtype::Generic,
                    bytes: item.payload.clone(),
                },
                ts: item.ts,
                order: ObjectId::new(),
            };
            match self.inner.run(self.items.insert_one(&d)).await {
                Ok(_) => out.push(Queued::Stored),
                Err(StoreError::Conflict { .. }) => {
                    release(&self.inner, &self.counts, &target, 1).await?;
                    out.push(Queued::Duplicate);
                }
                Err(e) => {
                    release(&self.inner, &self.counts, &target, 1).await?;
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    async fn pending(
        &self,
        user: &UserId,
        device: &DeviceId,
        limit: usize,
    ) -> StoreResult<Vec<ToDevice>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let cursor = self
            .inner
            .run(
                self.items
                    .find(doc! { "to_user": &user.0, "to_device": &device.0 })
                    .sort(doc! { "order": 1 })
                    .limit(limit_i64(limit)),
            )
            .await?;
        let docs: Vec<ToDeviceDoc> = self.inner.run(cursor.try_collect()).await?;
        Ok(docs.into_iter().map(ToDeviceDoc::into_item).collect())
    }

    async fn ack(
        &self,
        user: &UserId,
        device: &DeviceId,
        ids: &[(DeviceId, String)],
    ) -> StoreResult<()> {
        let target = device_key(user, device);
        for (from, id) in ids {
            let key = format!("{target}|{}|{id}", from.0);
            let r = self
                .inner
                .run(self.items.delete_one(doc! { "_id": key }))
                .await?;
            let gone = i64::try_from(r.deleted_count).unwrap_or(0);
            release(&self.inner, &self.counts, &target, gone).await?;
        }
        Ok(())
    }

    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<()> {
        self.inner
            .run(
                self.items
                    .delete_many(doc! { "to_user": &user.0, "to_device": &device.0 }),
            )
            .await?;
        self.inner
            .run(
                self.counts
                    .delete_one(doc! { "_id": device_key(user, device) }),
            )
            .await?;
        Ok(())
    }
}
