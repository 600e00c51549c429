use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::StoreResult;
use crate::model::{CallMedia, ConversationId, DeviceId, Millis, UserId};

/// A call while it lasts (ringing or answered), as the call store keeps
/// it; an ended call is removed. Not a wire type: it tolerates unknown
/// fields, for stores shared by nodes of several versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CallRecord {
    /// The call's id (the caller chose it).
    pub id: String,
    /// The direct conversation it is made in.
    pub conv: ConversationId,
    /// Who calls.
    pub caller: UserId,
    /// The caller's device in the call.
    pub caller_device: DeviceId,
    /// Who is called.
    pub callee: UserId,
    /// Voice or video.
    pub media: CallMedia,
    /// Whether its signals must be sealed (the conversation was end-to-end
    /// encrypted when it was invited).
    #[serde(default)]
    pub sealed: bool,
    /// When it was invited.
    pub started_at: Millis,
    /// Whether a device of the callee said it rings.
    #[serde(default)]
    pub ringing: bool,
    /// The callee's device that answered.
    #[serde(default)]
    pub answered_by: Option<DeviceId>,
    /// When it was answered.
    #[serde(default)]
    pub answered_at: Option<Millis>,
    /// The connection of the caller's device that holds the call.
    pub caller_conn: String,
    /// The connection of the answering device that holds the call.
    #[serde(default)]
    pub callee_conn: Option<String>,
    /// Since when the caller's connection in the call is gone (until its
    /// device signs in again).
    #[serde(default)]
    pub caller_gone_at: Option<Millis>,
    /// Since when the answering device's connection in the call is gone.
    #[serde(default)]
    pub callee_gone_at: Option<Millis>,
    /// The invite's offer, kept while the call rings so that a device of
    /// the callee that connects meanwhile rings too; dropped once answered
    /// (every later read of the call, one per trickled candidate, would
    /// carry it for nothing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer: Option<CallOffer>,
}

/// A call's offer as the invite carried it: the SDP in the clear, or
/// sealed for each of the callee's devices (opaque to the server).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CallOffer {
    /// The SDP offer, in a conversation that is not end-to-end encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp: Option<String>,
    /// One sealed payload per device of the callee it was sealed for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sealed: Vec<SealedOffer>,
}

/// The offer sealed for one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SealedOffer {
    /// The device it was sealed for.
    pub device: DeviceId,
    /// Its payload, as the caller sent it.
    pub payload: String,
}

impl CallOffer {
    /// An offer in the clear.
    pub fn plain(sdp: String) -> Self {
        Self {
            sdp: Some(sdp),
            sealed: Vec::new(),
        }
    }

    /// An offer sealed per device (`(device, payload)`).
    pub fn sealed(per_device: impl IntoIterator<Item = (DeviceId, String)>) -> Self {
        Self {
            sdp: None,
            sealed: per_device
                .into_iter()
                .map(|(device, payload)| SealedOffer { device, payload })
                .collect(),
        }
    }

    /// What `device` may read of it: the SDP in the clear, or the payload
    /// sealed for it; `None` when it was sealed for other devices only.
    pub fn for_device(&self, device: &DeviceId) -> Option<OfferFor<'_>> {
        if let Some(sdp) = &self.sdp {
            return Some(OfferFor::Plain(sdp));
        }
        self.sealed
            .iter()
            .find(|s| s.device == *device)
            .map(|s| OfferFor::Sealed(&s.payload))
    }
}

/// A device's part of a [`CallOffer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OfferFor<'a> {
    /// The SDP in the clear.
    Plain(&'a str),
    /// The payload sealed for the device.
    Sealed(&'a str),
}

impl CallRecord {
    /// A call invited now by `caller` (user, device, and the connection
    /// that holds the call): not ringing or answered yet.
    pub fn new(
        id: String,
        conv: ConversationId,
        caller: (UserId, DeviceId, String),
        callee: UserId,
        media: CallMedia,
        sealed: bool,
        started_at: Millis,
    ) -> Self {
        Self {
            id,
            conv,
            caller: caller.0,
            caller_device: caller.1,
            callee,
            media,
            sealed,
            started_at,
            ringing: false,
            answered_by: None,
            answered_at: None,
            caller_conn: caller.2,
            callee_conn: None,
            caller_gone_at: None,
            callee_gone_at: None,
            offer: None,
        }
    }

    /// Whether it rings for `user`: they are its callee and no device of
    /// theirs answered yet.
    pub fn rings_for(&self, user: &UserId) -> bool {
        *user == self.callee && self.answered_by.is_none()
    }

    /// Whether `device` of `user` is one of the call's two devices: the
    /// caller's, or (once answered) the one that answered.
    pub fn in_call(&self, user: &UserId, device: &DeviceId) -> bool {
        (*user == self.caller && *device == self.caller_device)
            || (*user == self.callee && self.answered_by.as_ref() == Some(device))
    }
}

/// What [`CallStore::start`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Started {
    /// The call is recorded: it rings.
    Started,
    /// The caller is in a call already (this one is not recorded).
    CallerBusy,
    /// The callee is in a call (this one is not recorded).
    CalleeBusy,
    /// A call with this id exists.
    Exists,
}

/// What [`CallStore::answer`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answered {
    /// This device answered: the call as it is now.
    Answered(CallRecord),
    /// Another device of the callee had answered it first.
    Taken(CallRecord),
    /// No such call (it ended, or never was).
    Gone,
}

/// The calls going on: at most one per user, shared by every node (the
/// busy check, "answered on another device", a timeout swept by any node).
/// Every change is atomic: of two devices answering at once one wins, of
/// two nodes ending a call at once one ends it.
#[async_trait]
pub trait CallStore: Send + Sync {
    /// Records `call` unless its id is taken or its caller or callee is in
    /// a call (a ringing or answered one).
    async fn start(&self, call: &CallRecord) -> StoreResult<Started>;

    /// The call `id`, while it lasts.
    async fn get(&self, id: &str) -> StoreResult<Option<CallRecord>>;

    /// The call `user` is in (as caller or callee), if any.
    async fn of_user(&self, user: &UserId) -> StoreResult<Option<CallRecord>>;

    /// Marks call `id` as ringing on a device of the callee. Returns it
    /// when this changed it (the first device to ring), `None` when it was
    /// ringing already, answered, or is gone.
    async fn set_ringing(&self, id: &str) -> StoreResult<Option<CallRecord>>;

    /// `device` (of the callee), on connection `conn`, answers call `id` at
    /// `now`, unless another device answered first; the answered call no
    /// longer keeps its offer.
    async fn answer(
        &self,
        id: &str,
        device: &DeviceId,
        conn: &str,
        now: Millis,
    ) -> StoreResult<Answered>;

    /// Ends call `id`: removes it and frees its two users. Returns it to
    /// the one call that removed it (which then records how it ended);
    /// `None` when it was gone already.
    async fn end(&self, id: &str) -> StoreResult<Option<CallRecord>>;

    /// Connection `conn` of `device` of `user` closed at `now`: when it is
    /// the connection that holds that side of `user`'s call, that side is
    /// gone from then (a later close keeps the first time). Another
    /// connection of the same device closing leaves the call alone.
    async fn conn_closed(
        &self,
        user: &UserId,
        device: &DeviceId,
        conn: &str,
        now: Millis,
    ) -> StoreResult<()>;

    /// `device` of `user` signed in again on connection `conn`: when its
    /// side of `user`'s call is gone, `conn` holds it now and it is back
    /// (`true`).
    async fn conn_opened(&self, user: &UserId, device: &DeviceId, conn: &str) -> StoreResult<bool>;

    /// The calls to end now: unanswered and started before
    /// `ringing_before` (whether a device said it rings or not), or with a
    /// side gone since before `gone_before`; oldest first.
    async fn due(
        &self,
        ringing_before: Millis,
        gone_before: Millis,
    ) -> StoreResult<Vec<CallRecord>>;
}
