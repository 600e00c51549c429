//! Encrypted key backups: `create_backup`, `get_backup`, `update_backup`,
//! `delete_backup`, `put_backup_keys`, `get_backup_keys`. Each user has at
//! most one current backup, reachable only by that user's devices; the
//! server keeps its keys as opaque bytes and never holds what decrypts
//! them (the recovery key stays with the user). See docs/E2E.md.

use crate::commands::check_name;
use crate::commands::messaging::spend_send_budget;
use crate::e2e;
use crate::error::{invalid, CoreError};
use crate::model::ConversationId;
use crate::protocol::{BackupInfo, BackupKeyInfo, BackupKeyRef, ServerFrame};
use crate::request::Caller;
use crate::server::Server;
use crate::store::{Backup, BackupKey, PutKeys, StoreError};

/// Keys one `put_backup_keys` may carry.
pub(crate) const MAX_KEYS_PER_PUT: usize = 1000;

fn info(b: Backup) -> BackupInfo {
    BackupInfo {
        version: b.version,
        algorithm: b.algorithm,
        auth_data: b.auth_data,
        count: b.count,
        etag: b.etag,
        created_at: b.created_at,
    }
}

/// The store's `NotFound` for a version, in words.
fn not_current(version: &str) -> impl FnOnce(StoreError) -> CoreError + '_ {
    move |e| match e {
        StoreError::NotFound => CoreError::NotFound(format!(
            "{version} is not your current key backup (get_backup tells which is)"
        )),
        other => other.into(),
    }
}

fn check_auth_data(s: &Server, auth_data: &str) -> Result<(), CoreError> {
    let max = s.config.max_backup_key_bytes;
    if auth_data.len() > max {
        return Err(CoreError::TooLarge {
            field: "auth_data".into(),
            message: format!("auth_data is longer than {max} bytes"),
        });
    }
    Ok(())
}

/// `create_backup`.
pub(crate) async fn create(
    s: &Server,
    caller: &Caller,
    id: u32,
    algorithm: String,
    auth_data: String,
) -> Result<ServerFrame, CoreError> {
    check_name("algorithm", &algorithm)?;
    check_auth_data(s, &auth_data)?;
    let backup = Backup::new(
        uuid::Uuid::now_v7().to_string(),
        algorithm,
        auth_data,
        s.now(),
    );
    s.backends
        .backups
        .create(&caller.user, backup.clone())
        .await?;
    Ok(ServerFrame::Backup {
        id,
        backup: info(backup),
    })
}

/// `get_backup`.
pub(crate) async fn get(s: &Server, caller: &Caller, id: u32) -> Result<ServerFrame, CoreError> {
    match s.backends.backups.current(&caller.user).await? {
        Some(backup) => Ok(ServerFrame::Backup {
            id,
            backup: info(backup),
        }),
        None => Err(CoreError::NotFound("you have no key backup".into())),
    }
}

/// `update_backup`.
pub(crate) async fn update(
    s: &Server,
    caller: &Caller,
    id: u32,
    version: String,
    auth_data: String,
) -> Result<ServerFrame, CoreError> {
    check_auth_data(s, &auth_data)?;
    let backup = s
        .backends
        .backups
        .update(&caller.user, &version, auth_data)
        .await
        .map_err(not_current(&version))?;
    Ok(ServerFrame::Backup {
        id,
        backup: info(backup),
    })
}

/// `delete_backup`.
pub(crate) async fn delete(
    s: &Server,
    caller: &Caller,
    id: u32,
    version: String,
) -> Result<ServerFrame, CoreError> {
    s.backends
        .backups
        .delete(&caller.user, &version)
        .await
        .map_err(not_current(&version))?;
    Ok(ServerFrame::Ok { id })
}

/// `put_backup_keys`.
pub(crate) async fn put_keys(
    s: &Server,
    caller: &Caller,
    id: u32,
    version: String,
    keys: Vec<BackupKeyInfo>,
) -> Result<ServerFrame, CoreError> {
    if keys.is_empty() || keys.len() > MAX_KEYS_PER_PUT {
        return Err(invalid("keys", format!("put 1 to {MAX_KEYS_PER_PUT} keys")));
    }
    // Everything is checked before anything is stored.
    let max = s.config.max_backup_key_bytes;
    let mut decoded = Vec::with_capacity(keys.len());
    let mut bytes = 0usize;
    for k in keys {
        if k.conv.as_str().is_empty() {
            return Err(invalid("conv", "each key names its conversation"));
        }
        check_name("session", &k.session)?;
        let data = e2e::decode_payload(&k.data, max).map_err(|_| {
            invalid(
                "data",
                format!("a key's data is 1 to {max} bytes in unpadded standard base64"),
            )
        })?;
        bytes += data.len() + k.session.len() + k.conv.as_str().len();
        decoded.push(BackupKey::new(
            k.conv,
            k.session,
            (k.first_index, k.forwarded, k.verified),
            data,
        ));
    }
    spend_send_budget(s, caller, bytes, s.now()).await?;
    let outcome = s
        .backends
        .backups
        .put_keys(&caller.user, &version, &decoded, s.config.max_backup_keys)
        .await
        .map_err(not_current(&version))?;
    match outcome {
        PutKeys::Stored(backup) => Ok(ServerFrame::Backup {
            id,
            backup: info(backup),
        }),
        PutKeys::Full => Err(CoreError::LimitReached(format!(
            "a key backup holds at most {} keys; nothing was stored",
            s.config.max_backup_keys
        ))),
    }
}

/// `get_backup_keys`.
pub(crate) async fn get_keys(
    s: &Server,
    caller: &Caller,
    id: u32,
    version: String,
    after: Option<BackupKeyRef>,
    limit: Option<u32>,
) -> Result<ServerFrame, CoreError> {
    let page = s.config.max_page;
    let limit = limit.map_or(page, |l| (l as usize).clamp(1, page));
    let after: Option<(ConversationId, String)> = after.map(|a| (a.conv, a.session));
    let mut keys = s
        .backends
        .backups
        .keys(
            &caller.user,
            &version,
            after.as_ref().map(|(c, s)| (c, s.as_str())),
            limit + 1,
        )
        .await
        .map_err(not_current(&version))?;
    let more = keys.len() > limit;
    keys.truncate(limit);
    Ok(ServerFrame::BackupKeys {
        id,
        keys: keys
            .into_iter()
            .map(|k| BackupKeyInfo {
                conv: k.conv,
                session: k.session,
                first_index: k.first_index,
                forwarded: k.forwarded,
                verified: k.verified,
                data: e2e::encode_payload(&k.data),
            })
            .collect(),
        more,
    })
}
