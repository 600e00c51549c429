use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Arc;

use super::StoreResult;
use crate::model::{Content, ConversationId, DeviceId, Message, MessageId, Millis, UserId};

/// A message to append; the store assigns its `seq`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewMessage {
    /// Id to give the message if it is new.
    pub id: MessageId,
    /// Conversation.
    pub conv: ConversationId,
    /// Every member of the conversation (recorded on the first append, so
    /// [`MessageStore::conversations`] can list it for each of them).
    pub members: Vec<UserId>,
    /// Sender.
    pub from: UserId,
    /// Sender's idempotency key.
    pub client_id: String,
    /// Server time.
    pub ts: Millis,
    /// Payload.
    pub content: Content,
}

impl NewMessage {
    /// A message to append.
    pub fn new(
        conv: ConversationId,
        members: Vec<UserId>,
        from: UserId,
        client_id: String,
        ts: Millis,
        content: Content,
    ) -> Self {
        Self {
            id: MessageId::generate(),
            conv,
            members,
            from,
            client_id,
            ts,
            content,
        }
    }
}

/// Outcome of [`MessageStore::append`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Appended {
    /// The stored message: the new one, or the one stored earlier under the
    /// same `(from, client_id)`. Shared, so that a store keeping messages
    /// in memory hands out the stored one without a copy.
    pub message: Arc<Message>,
    /// True when nothing was stored because of an earlier identical key.
    pub duplicate: bool,
}

impl Appended {
    /// An append outcome.
    pub fn new(message: impl Into<Arc<Message>>, duplicate: bool) -> Self {
        Self {
            message: message.into(),
            duplicate,
        }
    }
}

/// A conversation's membership and head.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConversationState {
    /// Conversation.
    pub conv: ConversationId,
    /// Members.
    pub members: Vec<UserId>,
    /// Seq of the newest message (0 if none).
    pub last_seq: u64,
    /// Time of the newest message.
    pub last_ts: Millis,
}

impl ConversationState {
    /// Whether `user` is a member.
    pub fn has_member(&self, user: &UserId) -> bool {
        self.members.contains(user)
    }

    /// The other member of a conversation of two, seen from `me` (a
    /// member); `None` for any other conversation.
    pub fn peer_of(&self, me: &UserId) -> Option<&UserId> {
        match self.members.as_slice() {
            [a, b] if a == me => Some(b),
            [a, b] if b == me => Some(a),
            _ => None,
        }
    }

    /// A conversation state.
    pub fn new(conv: ConversationId, members: Vec<UserId>, last_seq: u64, last_ts: Millis) -> Self {
        Self {
            conv,
            members,
            last_seq,
            last_ts,
        }
    }

    /// Puts a user's conversations in the order
    /// [`MessageStore::conversations`] returns them: newest activity first,
    /// ties by conversation id.
    pub fn sort_newest_first(convs: &mut [ConversationState]) {
        convs.sort_by(|a, b| b.last_ts.cmp(&a.last_ts).then_with(|| a.conv.cmp(&b.conv)));
    }
}

/// Messages, their per-conversation sequence, device cursors and read markers.
#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Appends durably and returns the stored message. The seq is the
    /// conversation's previous last seq + 1: strictly increasing and gap-free
    /// even under concurrent appends to the same conversation. If a message
    /// from the same `from` with the same `client_id` exists (in any
    /// conversation), nothing is stored and that message is returned with
    /// `duplicate: true`. When this returns `Ok`, the message survives a crash.
    async fn append(&self, msg: NewMessage) -> StoreResult<Appended>;

    /// Up to `limit` messages of `conv` with `seq < before` (all if `None`),
    /// the newest ones, returned in ascending seq order.
    async fn history(
        &self,
        conv: &ConversationId,
        before: Option<u64>,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;

    /// Up to `limit` messages of `conv` with `seq > after`, ascending.
    async fn read_after(
        &self,
        conv: &ConversationId,
        after: u64,
        limit: usize,
    ) -> StoreResult<Vec<Message>>;

    /// The conversation's state; `Ok(None)` if nothing was ever appended to it.
    async fn conversation(&self, conv: &ConversationId) -> StoreResult<Option<ConversationState>>;

    /// Every conversation `user` is a member of, newest activity first
    /// (ties by id: [`ConversationState::sort_newest_first`]).
    async fn conversations(&self, user: &UserId) -> StoreResult<Vec<ConversationState>>;

    /// Records that `device` of `user` has received `conv` up to `seq`.
    /// Never moves a cursor backwards: a smaller `seq` is ignored.
    async fn set_cursor(
        &self,
        user: &UserId,
        device: &DeviceId,
        conv: &ConversationId,
        seq: u64,
    ) -> StoreResult<()>;

    /// Every cursor of the device. Conversations it never acknowledged are absent (cursor 0).
    async fn cursors(
        &self,
        user: &UserId,
        device: &DeviceId,
    ) -> StoreResult<HashMap<ConversationId, u64>>;

    /// Records that `user` has read `conv` up to `seq`; never moves backwards.
    async fn mark_read(&self, user: &UserId, conv: &ConversationId, seq: u64) -> StoreResult<()>;

    /// Messages of `conv` sent by others than `user` with seq above the user's read marker.
    async fn unread(&self, user: &UserId, conv: &ConversationId) -> StoreResult<u64>;
}
