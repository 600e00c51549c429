//! The key directory of end-to-end encryption: `upload_keys`, `query_keys`,
//! `claim_keys`. The server checks each key's signature ([`crate::e2e`])
//! and who may see whose keys; it never holds a private key.
//!
//! Who may see a user's devices and claim their keys: the user itself,
//! and whoever may reach the user: a contact, someone the user's settings
//! let start a direct conversation, the other member of an existing direct
//! conversation, or a fellow member of a conversation named in the request
//! (so that a group encrypts to all its members whatever their settings).
//! Users the caller may not reach, unknown users and devices without keys
//! are left out of the reply alike, so that nothing is learnt from it.

use std::collections::HashSet;

use crate::commands::conversations::visible;
use crate::contacts as rules;
use crate::e2e;
use crate::error::CoreError;
use crate::model::{ConversationId, UserId};
use crate::protocol::{
    ClaimedKey, DeviceKeysInfo, DeviceRef, DeviceSignature, IdentityKeys, KeyCountsInfo,
    MasterKeyInfo, ServerFrame, SignedKey, UserMasterKey,
};
use crate::request::{Caller, Out};
use crate::server::Server;
use crate::store::{
    DeviceKeys, Event, IdentitySet, KeyCounts, MasterKey, MasterSignature, OneTimeKey, Topic,
};

/// Users a `query_keys` may name, and devices a `claim_keys`.
pub(crate) const MAX_TARGETS: usize = 100;

fn identity_of(k: &DeviceKeys) -> IdentityKeys {
    IdentityKeys {
        algorithm: k.algorithm.clone(),
        signing_key: k.signing_key.clone(),
        agreement_key: k.agreement_key.clone(),
        signature: k.signature.clone(),
    }
}

fn signed(k: &OneTimeKey) -> SignedKey {
    SignedKey {
        id: k.id.clone(),
        key: k.key.clone(),
        signature: k.signature.clone(),
    }
}

/// The fields of `upload_keys`.
pub(crate) struct Upload {
    pub(crate) identity: Option<IdentityKeys>,
    pub(crate) one_time: Vec<SignedKey>,
    pub(crate) fallback: Option<SignedKey>,
    pub(crate) master_key: Option<MasterKeyInfo>,
    pub(crate) signatures: Vec<DeviceSignature>,
}

/// `upload_keys`: the device's identity, the user's master key, the
/// master key's signatures of devices, one-time and fallback keys (the
/// first device uploads its identity, the master key and the master key's
/// signature of itself at once). Every signature is checked before
/// anything is stored: an upload refused for one bad key leaves nothing
/// behind (and its retry is the device's first upload, announced as such).
pub(crate) async fn upload(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    upload: Upload,
) -> Result<ServerFrame, CoreError> {
    let Upload {
        identity,
        one_time,
        fallback,
        master_key,
        signatures,
    } = upload;
    let store = &s.backends.keys;
    let (me, device) = (&caller.user, &caller.device);
    let max = s.config.max_one_time_keys;
    if one_time.len() > max {
        return Err(CoreError::InvalidArgument {
            field: "one_time_keys".into(),
            message: format!("upload at most {max} one-time keys"),
        });
    }
    if signatures.len() > MAX_TARGETS {
        return Err(CoreError::InvalidArgument {
            field: "signatures".into(),
            message: format!("sign at most {MAX_TARGETS} devices at once"),
        });
    }
    let identity = match identity {
        Some(k) => {
            let keys = DeviceKeys::new(
                (me.clone(), device.clone()),
                k.algorithm,
                k.signing_key,
                k.agreement_key,
                k.signature,
                s.now(),
            );
            e2e::check_device_keys(&keys)?;
            Some(keys)
        }
        None => None,
    };
    let keys: Vec<OneTimeKey> = one_time
        .into_iter()
        .map(|k| OneTimeKey::new(k.id, k.key, k.signature))
        .collect();
    let fallback = fallback.map(|k| OneTimeKey::new(k.id, k.key, k.signature));
    let more = !keys.is_empty() || fallback.is_some();
    // The user's devices with keys, this upload's identity included.
    let mut mine = if more || !signatures.is_empty() {
        store.identities(me).await?
    } else {
        Vec::new()
    };
    if let Some(k) = &identity {
        if !mine.iter().any(|m| m.device == k.device) {
            mine.push(k.clone());
        }
    }
    if more {
        let signer = mine.iter().find(|k| k.device == *device).ok_or_else(|| {
            CoreError::InvalidArgument {
                field: "device_keys".into(),
                message: "upload the device's identity keys first".into(),
            }
        })?;
        for k in keys.iter().chain(fallback.as_ref()) {
            e2e::check_one_time_key(signer, k)?;
        }
    }
    let master = master_key.map(|k| MasterKey::new(me.clone(), k.key, k.signature, s.now()));
    if let Some(m) = &master {
        e2e::check_master_key(m)?;
    }
    let mut signed = Vec::with_capacity(signatures.len());
    if !signatures.is_empty() {
        let signer = match &master {
            Some(m) => m.key.clone(),
            None => store
                .master_keys(std::slice::from_ref(me))
                .await?
                .into_iter()
                .next()
                .map(|m| m.key)
                .ok_or_else(|| CoreError::InvalidArgument {
                    field: "signatures".into(),
                    message: "upload the master key first".into(),
                })?,
        };
        for sig in signatures {
            let keys = mine
                .iter()
                .find(|k| k.device == sig.device)
                .ok_or_else(|| CoreError::InvalidArgument {
                    field: "signatures".into(),
                    message: "no device of yours with keys has this id".into(),
                })?;
            e2e::check_device_signature(&signer, keys, &sig.signature)?;
            signed.push((
                sig.device,
                MasterSignature::new(signer.clone(), sig.signature),
            ));
        }
    }
    let mut first = false;
    if let Some(k) = &identity {
        match store.set_identity(k).await? {
            IdentitySet::Stored => first = true,
            IdentitySet::Same => {}
            IdentitySet::Different => {
                return Err(CoreError::Conflict {
                    field: "device_keys".into(),
                })
            }
        }
    }
    let mut master_changed = false;
    if let Some(m) = &master {
        master_changed = store.set_master_key(m).await?;
    }
    let mut signed_any = false;
    for (d, sig) in &signed {
        signed_any |= store.sign_device(me, d, sig).await?;
    }
    if more {
        if !store.add_one_time_keys(me, device, &keys, max).await? {
            return Err(CoreError::LimitReached(format!(
                "a device keeps at most {max} one-time keys on the server"
            )));
        }
        if let Some(f) = &fallback {
            store.set_fallback(me, device, f).await?;
        }
    }
    if first || master_changed || signed_any {
        // Others can encrypt to this device from now on, or must check
        // the user's devices against its master key again.
        super::devices::changed(s, out, me, Some(caller.conn.clone()), true).await?;
    }
    let counts = counts_info(store.counts(me, device).await?);
    Ok(ServerFrame::KeyCounts {
        id: Some(id),
        one_time: counts.one_time,
        fallback_unused: counts.fallback_unused,
    })
}

/// What a device has left, as the wire says it.
pub(crate) fn counts_info(counts: KeyCounts) -> KeyCountsInfo {
    KeyCountsInfo {
        one_time: u32::try_from(counts.one_time).unwrap_or(u32::MAX),
        fallback_unused: counts.fallback_unused,
    }
}

/// Of `users`, those the caller may see the devices of (see the module doc).
pub(crate) async fn reachable(
    s: &Server,
    caller: &Caller,
    users: &[UserId],
    conv: Option<&ConversationId>,
) -> Result<HashSet<UserId>, CoreError> {
    if users.len() > MAX_TARGETS {
        return Err(CoreError::InvalidArgument {
            field: "users".into(),
            message: format!("name at most {MAX_TARGETS}"),
        });
    }
    let me = &caller.user;
    let mut ok: HashSet<UserId> = users.iter().filter(|u| *u == me).cloned().collect();
    if let Some(conv) = conv {
        let state = visible(s, caller, conv).await?;
        if !state.has_member(me) {
            return Err(CoreError::Forbidden(
                "you are not a member of this conversation".into(),
            ));
        }
        ok.extend(users.iter().filter(|u| state.has_member(u)).cloned());
        return Ok(ok);
    }
    let others: Vec<UserId> = users.iter().filter(|u| *u != me).cloned().collect();
    if others.is_empty() {
        return Ok(ok);
    }
    let records = s.backends.users.get_many(&others).await?;
    let relations = s.backends.contacts.relations(me, &others).await?;
    for record in records {
        let relation = relations.iter().find(|r| r.side(&record.id).is_some());
        if relation.is_some_and(|r| r.any_block()) {
            continue;
        }
        let reach = relation.is_some_and(|r| r.are_contacts())
            || rules::may_open_direct(relation, &record.privacy)
            || s.backends
                .messages
                .conversation(&ConversationId::direct(me, &record.id))
                .await?
                .is_some_and(|c| c.has_member(me) && c.has_member(&record.id));
        if reach {
            ok.insert(record.id);
        }
    }
    Ok(ok)
}

/// `query_keys`.
pub(crate) async fn query(
    s: &Server,
    caller: &Caller,
    id: u32,
    users: Vec<UserId>,
    conv: Option<ConversationId>,
) -> Result<ServerFrame, CoreError> {
    let ok = reachable(s, caller, &users, conv.as_ref()).await?;
    let mut found = Vec::new();
    let mut seen = HashSet::new();
    for user in users.iter().filter(|u| ok.contains(*u)) {
        if !seen.insert(user) {
            continue;
        }
        found.extend(s.backends.keys.identities(user).await?);
    }
    let reached: Vec<UserId> = seen.into_iter().cloned().collect();
    let masters = s.backends.keys.master_keys(&reached).await?;
    let devices = found
        .iter()
        .map(|k| DeviceKeysInfo {
            user: k.user.clone(),
            device: k.device.clone(),
            keys: identity_of(k),
            // Only the signatures of the user's current master key count.
            master_signature: masters
                .iter()
                .find(|m| m.user == k.user)
                .and_then(|m| k.signed_by(&m.key))
                .map(|sig| sig.signature.clone()),
        })
        .collect();
    let master_keys = masters
        .into_iter()
        .map(|m| UserMasterKey {
            user: m.user,
            master_key: MasterKeyInfo {
                key: m.key,
                signature: m.signature,
            },
        })
        .collect();
    Ok(ServerFrame::DeviceKeys {
        id,
        devices,
        master_keys,
    })
}

/// `claim_keys`.
pub(crate) async fn claim(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    devices: Vec<DeviceRef>,
    conv: Option<ConversationId>,
) -> Result<ServerFrame, CoreError> {
    if devices.len() > MAX_TARGETS {
        return Err(CoreError::InvalidArgument {
            field: "devices".into(),
            message: format!("name at most {MAX_TARGETS}"),
        });
    }
    let users: Vec<UserId> = devices.iter().map(|d| d.user.clone()).collect();
    let ok = reachable(s, caller, &users, conv.as_ref()).await?;
    let mut targets = Vec::with_capacity(devices.len());
    for d in devices {
        let pair = (d.user, d.device);
        if ok.contains(&pair.0) && !targets.contains(&pair) {
            targets.push(pair);
        }
    }
    // Each claim spends a key of someone else's: bounded per caller, so
    // that nobody drains a device's keys.
    let cost = u64::try_from(targets.len()).unwrap_or(u64::MAX);
    if cost > 0 {
        let key = format!("claims:{}", caller.user);
        if let Some(retry_after_ms) = s
            .backends
            .limiter
            .spend(&key, cost, s.config.key_claims, s.now())
            .await?
        {
            return Err(CoreError::RateLimited { retry_after_ms });
        }
    }
    let store = &s.backends.keys;
    let keys: Vec<ClaimedKey> = store
        .claim(&targets)
        .await?
        .into_iter()
        .map(|c| ClaimedKey {
            user: c.user,
            device: c.device,
            key: signed(&c.key),
            fallback: c.fallback,
        })
        .collect();
    // A device left with few keys is told, so that it tops them up
    // without waiting for its next sign-in.
    for k in &keys {
        let counts = counts_info(store.counts(&k.user, &k.device).await?);
        if (counts.one_time as usize) < s.config.max_one_time_keys / 4 || !counts.fallback_unused {
            out.publish(
                Topic::User(k.user.clone()),
                Event::KeyCounts {
                    device: k.device.clone(),
                    counts,
                },
            );
        }
    }
    Ok(ServerFrame::ClaimedKeys { id, keys })
}
