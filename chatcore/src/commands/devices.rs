//! A user's devices: `devices`, `rename_device`, `revoke_device`, and what
//! every path that ends devices shares (deleting their keys and to-device
//! queues, telling whoever encrypts to them).
//!
//! A device is a sign-in ([`crate::store::SessionRecord`]): it lives as
//! long as its session, and a user reads and changes only their own. Who
//! hears that a user's device set changed ([`Event::DevicesChanged`]): the
//! user's other connections, and the current members of every conversation
//! the user is a current member of (they encrypt to the user's devices).
//! A device that merely signs in is announced to the user's own devices
//! only: others learn of it when it uploads keys, the first moment they
//! can encrypt to it.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use crate::account::normalize_device_name;
use crate::error::CoreError;
use crate::model::{ConversationId, DeviceId, Millis, UserId};
use crate::protocol::{DeviceInfo, ServerFrame};
use crate::request::{Caller, Out};
use crate::server::Server;
use crate::store::{Event, Listing, Revocation, Topic};

/// The longest device id accepted (the server's are UUIDs, 36 bytes).
const MAX_DEVICE_ID: usize = 64;

/// Refuses a device id the server cannot have made, before any lookup.
fn check_device(device: &DeviceId) -> Result<(), CoreError> {
    let id = device.as_str();
    let well_formed = !id.is_empty()
        && id.len() <= MAX_DEVICE_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if well_formed {
        Ok(())
    } else {
        Err(CoreError::InvalidArgument {
            field: "device".into(),
            message: format!(
                "device is a device id from device_list (1 to {MAX_DEVICE_ID} letters, digits, \
                 '-' or '_')"
            ),
        })
    }
}

fn not_found() -> CoreError {
    CoreError::NotFound("you have no such device".into())
}

/// `devices`: the caller's live devices, oldest sign-in first.
pub(crate) async fn devices(
    s: &Server,
    caller: &Caller,
    id: u32,
) -> Result<ServerFrame, CoreError> {
    let sessions = s.backends.sessions.devices(&caller.user, s.now()).await?;
    let keyed: HashSet<DeviceId> = s
        .backends
        .keys
        .identities(&caller.user)
        .await?
        .into_iter()
        .map(|k| k.device)
        .collect();
    // One entry per device; should a device hold several sessions, it
    // signed in with the first and was active with the latest.
    let mut devices: Vec<DeviceInfo> = Vec::with_capacity(sessions.len());
    for session in sessions {
        if let Some(d) = devices.iter_mut().find(|d| d.device == session.device) {
            if session.last_active > d.last_active {
                d.last_active = session.last_active;
                d.name = session.device_name;
            }
            continue;
        }
        devices.push(DeviceInfo {
            keys: keyed.contains(&session.device),
            current: session.device == caller.device,
            device: session.device,
            name: session.device_name,
            created_at: session.created_at,
            last_active: session.last_active,
        });
    }
    Ok(ServerFrame::DeviceList { id, devices })
}

/// `rename_device`.
pub(crate) async fn rename_device(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    device: DeviceId,
    name: String,
) -> Result<ServerFrame, CoreError> {
    check_device(&device)?;
    let name_error = |message: String| CoreError::InvalidArgument {
        field: "name".into(),
        message,
    };
    // 64 characters are at most 256 bytes: far longer is refused unread.
    if name.len() > s.config.max_field_bytes {
        return Err(name_error("name has 0 to 64 characters".into()));
    }
    let name = normalize_device_name(&name).map_err(|e| match e {
        CoreError::InvalidArgument { message, .. } => {
            name_error(message.replacen("device", "name", 1))
        }
        other => other,
    })?;
    let live = s.backends.sessions.devices(&caller.user, s.now()).await?;
    if !live.iter().any(|d| d.device == device) {
        return Err(not_found());
    }
    if !s
        .backends
        .sessions
        .rename_device(&caller.user, &device, &name)
        .await?
    {
        return Err(not_found());
    }
    // The user's other devices show the list; nobody else sees names.
    out.publish(
        Topic::User(caller.user.clone()),
        Event::DevicesChanged {
            user: caller.user.clone(),
            origin: Some(caller.conn.clone()),
        },
    );
    Ok(ServerFrame::Ok { id })
}

/// `revoke_device`: the device's sessions end at once, its keys and
/// to-device queue are deleted. The caller's own device: a logout.
pub(crate) async fn revoke_device(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    device: DeviceId,
) -> Result<ServerFrame, CoreError> {
    check_device(&device)?;
    if device == caller.device {
        return super::account::logout(s, caller, out, id).await;
    }
    let user = &caller.user;
    // A device whose session expired (and was reaped) may still have keys
    // that others encrypt to: it is the user's to remove too.
    let keyed = s
        .backends
        .keys
        .identities(user)
        .await?
        .iter()
        .any(|k| k.device == device);
    let ended = s.backends.sessions.revoke_device(user, &device).await?;
    if !ended && !keyed {
        return Err(not_found());
    }
    forget(s, user, std::slice::from_ref(&device)).await?;
    tracing::info!(%user, %device, "device revoked");
    out.publish(
        Topic::User(user.clone()),
        Event::Revoked(Revocation::Device(device)),
    );
    changed(s, out, user, Some(caller.conn.clone()), true).await?;
    Ok(ServerFrame::Ok { id })
}

/// Every device of `user` the server knows of: those signed in (at `now`)
/// and those with identity keys. What a revocation of all of them ends.
pub(crate) async fn known(
    s: &Server,
    user: &UserId,
    now: Millis,
) -> Result<BTreeSet<DeviceId>, CoreError> {
    let mut all: BTreeSet<DeviceId> = s
        .backends
        .sessions
        .devices(user, now)
        .await?
        .into_iter()
        .map(|d| d.device)
        .collect();
    all.extend(
        s.backends
            .keys
            .identities(user)
            .await?
            .into_iter()
            .map(|k| k.device),
    );
    Ok(all)
}

/// Deletes what ended devices leave on the server besides their sessions:
/// their keys (nobody may encrypt to them any more) and their to-device
/// queues (nobody will take what waits there).
pub(crate) async fn forget(
    s: &Server,
    user: &UserId,
    devices: &[DeviceId],
) -> Result<(), CoreError> {
    for device in devices {
        s.backends.keys.remove_device(user, device).await?;
        s.backends.to_device.remove_device(user, device).await?;
    }
    Ok(())
}

/// Records that `user`'s device set changed: for the user's own
/// connections (but `origin`) and, with `partners`, for everyone who shares
/// a conversation with the user.
pub(crate) async fn changed(
    s: &Server,
    out: &mut Out,
    user: &UserId,
    origin: Option<Arc<str>>,
    partners: bool,
) -> Result<(), CoreError> {
    let event = |origin: Option<Arc<str>>| Event::DevicesChanged {
        user: user.clone(),
        origin,
    };
    out.publish(Topic::User(user.clone()), event(origin));
    if partners {
        for partner in conversation_partners(s, user).await? {
            out.publish(Topic::User(partner), event(None));
        }
    }
    Ok(())
}

/// The current members of every conversation `user` is a current member
/// of, `user` aside, each once.
async fn conversation_partners(s: &Server, user: &UserId) -> Result<BTreeSet<UserId>, CoreError> {
    let store = &s.backends.messages;
    let page = s.config.max_page.max(1);
    let mut partners = BTreeSet::new();
    let mut after: Option<(Millis, ConversationId)> = None;
    loop {
        let batch = store
            .conversations(user, Listing::All, after.as_ref(), page)
            .await?;
        let full = batch.len() == page;
        after = batch.last().map(|c| (c.last_ts, c.conv.clone()));
        for c in batch.iter().filter(|c| c.has_member(user)) {
            partners.extend(c.active().map(|m| m.user.clone()).filter(|u| u != user));
        }
        if !full {
            break;
        }
    }
    Ok(partners)
}
