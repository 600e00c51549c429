use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use super::StoreResult;
use crate::model::{ConversationId, DeviceId, Presence, Privacy, Profile, Receipt, UserId};
use crate::protocol::{
    CallInfo, CallSignalPush, ContactInfo, ConversationSummary, DirectoryEntry, KeyCountsInfo,
    SharedMessage, ToDeviceMessage,
};

/// Where events are published. Every connection of a user listens on
/// `User(user)`; connections watching someone's presence listen on
/// `Presence(user)`; connections showing the unfiltered first page of the
/// directory listen on `Directory`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "t", content = "u", rename_all = "snake_case")]
pub enum Topic {
    /// Everything for the devices of a user.
    User(UserId),
    /// Presence and profile changes of a user.
    Presence(UserId),
    /// Users who registered, for the connections whose directory view is
    /// the unfiltered first page (at most the global registration budget).
    Directory,
}

impl Topic {
    /// A flat channel name, for brokers that need one (`u:<id>`, `p:<id>`, `d`).
    pub fn channel(&self) -> String {
        match self {
            Topic::User(u) => format!("u:{u}"),
            Topic::Presence(u) => format!("p:{u}"),
            Topic::Directory => "d".to_owned(),
        }
    }
}

/// What travels through the broker. Serializable so that a broker between
/// nodes can carry it: externally tagged (`{"message": {...}}`), so that a
/// decoder reads the variant first and its fields straight into it (an
/// internally tagged enum is first copied whole into an intermediate tree,
/// which was the largest cost of receiving a message from another node).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// A stored message for the topic's user.
    Message {
        /// The message, shared by every connection it is pushed to (and
        /// encoded once for all of them).
        message: SharedMessage,
        /// The topic's user muted the conversation: no alert.
        muted: bool,
        /// The connection that sent it, which has its `sent` reply already
        /// and must not get it again.
        origin: Option<Arc<str>>,
    },
    /// The topic's user read a conversation up to `seq` on one device; its
    /// other devices clear their unread count.
    Read {
        /// The conversation.
        conv: ConversationId,
        /// The read marker.
        seq: u64,
        /// The connection that read, which knows already.
        origin: Arc<str>,
    },
    /// A fellow member's receipt in a conversation of the topic's user rose
    /// (it received or read further): the user's connections push it.
    Receipt(Arc<Receipt>),
    /// `user` is writing in `conv` (or stopped), for the topic's user, a
    /// fellow member. Ephemeral: a connection whose queue is full drops it
    /// rather than being closed for it.
    Typing {
        /// The conversation.
        conv: ConversationId,
        /// Who writes.
        user: UserId,
        /// Writing, or stopped.
        typing: bool,
    },
    /// A user's presence changed.
    Presence(Presence),
    /// A user changed their contact card; published to their `Presence`
    /// topic (who watches them) and their `User` topic (their other devices).
    Profile {
        /// The contact card now.
        profile: Box<Profile>,
        /// The connection that changed it, which has its reply already.
        origin: Arc<str>,
    },
    /// Someone registered (to `Directory`).
    NewUser(Box<DirectoryEntry>),
    /// The topic's user's relation with `with` changed: their connections
    /// refresh what they show of `with` (presence, profile changes) and,
    /// when `contact` is given, push it (the user's view changed).
    Relation {
        /// The other user.
        with: UserId,
        /// Whether the two are contacts now.
        contacts: bool,
        /// Whether `with`'s presence is hidden from the topic's user
        /// whatever the settings: either blocks the other, or `with` has
        /// not accepted the user's message request (never pushed as such).
        hidden: bool,
        /// The user's new view of the pair, to push.
        contact: Option<Box<ContactInfo>>,
        /// The connection that asked (it has the reply).
        origin: Option<Arc<str>>,
    },
    /// `user` changed their privacy settings: their own connections push
    /// them, the connections watching their presence apply them.
    Privacy {
        /// Whose settings.
        user: UserId,
        /// The settings now.
        privacy: Privacy,
        /// The connection that asked (it has the reply).
        origin: Option<Arc<str>>,
    },
    /// The topic's user was invited to a group.
    Invited(Box<ConversationSummary>),
    /// The topic's user answered a message request or invitation.
    Answered {
        /// The conversation.
        conv: ConversationId,
        /// Accepted, or declined.
        accepted: bool,
        /// The connection that answered (it has the reply).
        origin: Arc<str>,
    },
    /// Sessions of the topic's user were revoked: the connections signed in
    /// with them close (4001).
    Revoked(Revocation),
    /// A to-device payload for one of the topic's user's devices.
    ToDevice {
        /// The target device.
        device: DeviceId,
        /// The payload, as pushed.
        message: Box<ToDeviceMessage>,
    },
    /// Claims left one of the topic's user's devices few one-time keys:
    /// it tops them up.
    KeyCounts {
        /// The device.
        device: DeviceId,
        /// What it has left.
        counts: KeyCountsInfo,
    },
    /// A call of the topic's user changed (it rings, was answered, ended):
    /// their connections push `call_state`, but the one that caused it
    /// (it has the reply).
    Call {
        /// The call now.
        call: Box<CallInfo>,
        /// The connection that caused it.
        origin: Option<Arc<str>>,
    },
    /// Signalling of a call for one of the topic's user's devices, or for
    /// every one of them (`device: None`, the plain offer of an invite).
    CallSignal {
        /// The target device; `None`: all of the user's.
        device: Option<DeviceId>,
        /// What is pushed (`sealed` already the target device's).
        signal: Box<CallSignalPush>,
    },
    /// The device set of `user` changed (a device signed in, uploaded its
    /// identity keys for the first time, or was removed): the topic's
    /// user's connections push `devices_changed` so that clients query
    /// again. Published to `user`'s own topic and to the topics of the
    /// users who share a conversation with `user`.
    DevicesChanged {
        /// Whose devices changed.
        user: UserId,
        /// The connection that caused it, which knows already.
        origin: Option<Arc<str>>,
    },
}

/// Which of a user's sessions a [`Event::Revoked`] ended. A session is one
/// device's sign-in, so its connections are those of the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "scope", content = "device", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Revocation {
    /// Every session (password reset).
    AllDevices,
    /// Every session but this device's (password changed from it).
    AllDevicesExcept(DeviceId),
    /// This device's sessions (logout, `revoke_device`).
    Device(DeviceId),
}

impl Revocation {
    /// Whether a connection of `device` must close.
    pub fn covers(&self, device: &DeviceId) -> bool {
        match self {
            Revocation::AllDevices => true,
            Revocation::AllDevicesExcept(keep) => keep != device,
            Revocation::Device(d) => d == device,
        }
    }
}

/// Receives the events of the topics this node subscribed to.
pub trait BrokerHandler: Send + Sync {
    /// Called once per event per subscribed topic; must not block.
    fn deliver(&self, topic: &Topic, event: Arc<Event>);
}

/// Fans events out to every node with a subscriber on the topic.
#[async_trait]
pub trait Broker: Send + Sync {
    /// Sets the node-local receiver of delivered events. Called once, before
    /// any subscribe.
    fn attach(&self, handler: Arc<dyn BrokerHandler>);

    /// Delivers `event` to every node subscribed to `topic`, this one
    /// included. Order is kept per topic per publisher. Best-effort: a node
    /// that misses it recovers through sync, nothing is lost from the store.
    async fn publish(&self, topic: &Topic, event: Event) -> StoreResult<()>;

    /// Starts delivering `topic` to this node. The node's hub calls it for a
    /// topic's first local subscriber only.
    async fn subscribe(&self, topic: &Topic) -> StoreResult<()>;

    /// Stops delivering `topic` to this node (after its last local subscriber left).
    async fn unsubscribe(&self, topic: &Topic) -> StoreResult<()>;

    /// `Ok` while events between nodes flow; [`super::StoreError::Unavailable`]
    /// while the broker is cut off (reconnecting): the node's readiness
    /// probe reports it. A broker within one process is always ready.
    async fn ready(&self) -> StoreResult<()> {
        Ok(())
    }
}
