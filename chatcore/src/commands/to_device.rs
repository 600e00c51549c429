//! The to-device queue on the wire: `send_to_device`, `ack_to_device`, and
//! the `to_device` pushes. A device sends opaque payloads (Olm session
//! setup, conversation keys, later call signalling) to devices of users it
//! may reach ([`keys::reachable`], the key directory's rule); each waits in
//! its target device's queue until that device acknowledges it, is pushed
//! live and again after every sign-in of the device, so it arrives at least
//! once, and the receiver processes it once by its `(from_device, id)`.

use std::collections::HashMap;

use crate::commands::messaging::spend_send_budget;
use crate::commands::{check_name, keys};
use crate::e2e;
use crate::error::{invalid, CoreError};
use crate::model::{ConversationId, DeviceId, UserId};
use crate::protocol::{
    OutgoingToDevice, ServerFrame, ToDeviceAck, ToDeviceMessage, Undelivered, UndeliveredReason,
};
use crate::request::{Caller, Out};
use crate::server::Server;
use crate::store::{Event, Queued, ToDevice, Topic};

/// Payloads one `send_to_device` may carry (before a user's devices are
/// counted out), and ids one `ack_to_device` may name.
pub(crate) const MAX_MESSAGES: usize = 1000;
/// Payloads one `to_device` push carries at most, and their bytes.
pub(crate) const BATCH: usize = 100;
pub(crate) const BATCH_BYTES: usize = 256 * 1024;

/// A stored payload as a `to_device` push carries it.
pub(crate) fn message_of(t: ToDevice) -> ToDeviceMessage {
    ToDeviceMessage {
        id: t.id,
        from_user: t.from_user,
        from_device: t.from_device,
        kind: t.kind,
        payload: e2e::encode_payload(&t.payload),
        ts: t.ts,
    }
}

/// `send_to_device`.
pub(crate) async fn send(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    kind: String,
    messages: Vec<OutgoingToDevice>,
    conv: Option<ConversationId>,
) -> Result<ServerFrame, CoreError> {
    check_name("kind", &kind)?;
    if messages.is_empty() || messages.len() > MAX_MESSAGES {
        return Err(invalid(
            "messages",
            format!("send 1 to {MAX_MESSAGES} payloads"),
        ));
    }
    // Everything is checked before anything is queued.
    let mut decoded = Vec::with_capacity(messages.len());
    let mut bytes = 0usize;
    for m in messages {
        check_name("id", &m.id)?;
        let payload = e2e::decode_payload(&m.payload, s.config.max_to_device_bytes)?;
        bytes = bytes.saturating_add(payload.len());
        decoded.push((m.user, m.device, m.id, payload));
    }
    let now = s.now();
    spend_send_budget(s, caller, bytes, now).await?;
    let mut users: Vec<UserId> = decoded.iter().map(|m| m.0.clone()).collect();
    users.sort();
    users.dedup();
    if users.len() > keys::MAX_TARGETS {
        return Err(invalid(
            "messages",
            format!("address at most {} users", keys::MAX_TARGETS),
        ));
    }
    let ok = keys::reachable(s, caller, &users, conv.as_ref()).await?;
    // The devices of each reachable user that have keys: those a payload
    // may go to.
    let mut devices: HashMap<UserId, Vec<DeviceId>> = HashMap::new();
    for user in users.iter().filter(|u| ok.contains(*u)) {
        let keyed = s.backends.keys.identities(user).await?;
        devices.insert(user.clone(), keyed.into_iter().map(|k| k.device).collect());
    }
    let me = (caller.user.clone(), caller.device.clone());
    let mut items = Vec::new();
    let mut undelivered = Vec::new();
    for (user, device, pid, payload) in decoded {
        let known = devices.get(&user).map(Vec::as_slice).unwrap_or_default();
        let targets: Vec<DeviceId> = match &device {
            Some(d) if known.contains(d) => vec![d.clone()],
            Some(_) => Vec::new(),
            // Every device of the user but the sending one.
            None => known
                .iter()
                .filter(|d| !(user == me.0 && **d == me.1))
                .cloned()
                .collect(),
        };
        if targets.is_empty() {
            undelivered.push(Undelivered {
                user,
                device,
                reason: UndeliveredReason::Unknown,
            });
            continue;
        }
        for d in targets {
            items.push(ToDevice::new(
                pid.clone(),
                me.clone(),
                (user.clone(), d),
                kind.clone(),
                payload.clone(),
                now,
            ));
        }
    }
    let outcomes = s
        .backends
        .to_device
        .enqueue(&items, s.config.max_to_device_queue)
        .await?;
    let mut queued = 0u32;
    for (item, outcome) in items.into_iter().zip(outcomes) {
        match outcome {
            Queued::Stored => {
                queued = queued.saturating_add(1);
                let (user, device) = (item.to_user.clone(), item.to_device.clone());
                out.publish(
                    Topic::User(user),
                    Event::ToDevice {
                        device,
                        message: Box::new(message_of(item)),
                    },
                );
            }
            // Pushed when it was stored, and again at every sign-in until
            // acknowledged: nothing to push now.
            Queued::Duplicate => queued = queued.saturating_add(1),
            Queued::Full => undelivered.push(Undelivered {
                user: item.to_user,
                device: Some(item.to_device),
                reason: UndeliveredReason::Full,
            }),
        }
    }
    Ok(ServerFrame::ToDeviceSent {
        id,
        queued,
        undelivered,
    })
}

/// `ack_to_device`.
pub(crate) async fn ack(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    messages: Vec<ToDeviceAck>,
) -> Result<ServerFrame, CoreError> {
    if messages.len() > MAX_MESSAGES {
        return Err(invalid(
            "messages",
            format!("acknowledge at most {MAX_MESSAGES} payloads at once"),
        ));
    }
    let ids: Vec<(DeviceId, String)> = messages
        .into_iter()
        .map(|m| (m.from_device, m.id))
        .collect();
    s.backends
        .to_device
        .ack(&caller.user, &caller.device, &ids)
        .await?;
    out.to_device_acked = true;
    Ok(ServerFrame::Ok { id })
}

/// The payloads waiting for `device` that one push carries, oldest first,
/// and whether more wait behind them.
pub(crate) async fn waiting(
    s: &Server,
    user: &UserId,
    device: &DeviceId,
) -> Result<(Vec<ToDeviceMessage>, bool), CoreError> {
    let pending = s.backends.to_device.pending(user, device, BATCH).await?;
    let full = pending.len() == BATCH;
    let mut bytes = 0usize;
    let mut messages = Vec::with_capacity(pending.len());
    for t in pending {
        bytes = bytes.saturating_add(t.payload.len());
        if bytes > BATCH_BYTES && !messages.is_empty() {
            return Ok((messages, true));
        }
        messages.push(message_of(t));
    }
    Ok((messages, full))
}
