use async_trait::async_trait;

use super::StoreResult;
use crate::model::{DeviceId, Millis, UserId};

/// An opaque payload from one device to another (Olm session setup, room
/// keys, later call signalling): the server routes it and never reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToDevice {
    /// The sender's id for it: a retry with the same id from the same
    /// device to the same target is stored once.
    pub id: String,
    /// Sending user.
    pub from_user: UserId,
    /// Sending device.
    pub from_device: DeviceId,
    /// Target user.
    pub to_user: UserId,
    /// Target device.
    pub to_device: DeviceId,
    /// What it carries (kind-specific, e.g. `olm.v1`), for the receiver.
    pub kind: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// When the server took it.
    pub ts: Millis,
}

impl ToDevice {
    /// A payload `id` of `kind` from one device to another, taken at `ts`.
    pub fn new(
        id: String,
        (from_user, from_device): (UserId, DeviceId),
        (to_user, to_device): (UserId, DeviceId),
        kind: String,
        payload: Vec<u8>,
        ts: Millis,
    ) -> Self {
        Self {
            id,
            from_user,
            from_device,
            to_user,
            to_device,
            kind,
            payload,
            ts,
        }
    }
}

/// Outcome of queueing one [`ToDevice`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queued {
    /// Stored for its target.
    Stored,
    /// Stored before (the same sender device, id and target): not again.
    Duplicate,
    /// The target device's queue is full: not stored.
    Full,
}

/// Per-device queues of to-device payloads, kept until the target device
/// acknowledges them.
#[async_trait]
pub trait ToDeviceStore: Send + Sync {
    /// Queues each payload for its target device, at most `max` waiting
    /// per target (atomically against concurrent queueing and acks): the
    /// outcome of each, in the order given.
    async fn enqueue(&self, items: &[ToDevice], max: usize) -> StoreResult<Vec<Queued>>;

    /// Up to `limit` payloads waiting for the device, oldest first.
    async fn pending(
        &self,
        user: &UserId,
        device: &DeviceId,
        limit: usize,
    ) -> StoreResult<Vec<ToDevice>>;

    /// Deletes the device's payloads sent by `from_device` under `ids`
    /// (given as `(from_device, id)`): they were processed. Unknown ones
    /// are ignored.
    async fn ack(
        &self,
        user: &UserId,
        device: &DeviceId,
        ids: &[(DeviceId, String)],
    ) -> StoreResult<()>;

    /// Deletes the device's queue.
    async fn remove_device(&self, user: &UserId, device: &DeviceId) -> StoreResult<()>;
}
