//! The backend traits: one small contract per domain.
//!
//! Each trait is object-safe (`Arc<dyn Trait>` is how the server holds them),
//! `Send + Sync`, and documents its contract on every method: ordering,
//! idempotency, expiry and which outcome is `Ok(None)` versus an error. The
//! in-memory implementations in [`crate::memory`] are the reference; the
//! conformance suite in `chatcore::testkit` holds every implementation to them.

mod backups;
mod blobs;
mod broker;
mod calls;
mod contacts;
mod keys;
mod limiter;
mod mailer;
mod messages;
mod presence;
mod reports;
mod sessions;
mod to_device;
mod users;

pub use backups::{Backup, BackupKey, BackupStore, PutKeys};
pub use blobs::{
    check_media_id, interrupted, BlobBody, BlobInfo, BlobMeta, BlobRead, BlobStore, BlobTally,
    ByteRange,
};
pub use broker::{Broker, BrokerHandler, Event, Revocation, Topic};
pub use calls::{Answered, CallOffer, CallRecord, CallStore, OfferFor, SealedOffer, Started};
pub use contacts::{pair_key, ContactStore, ContactView, Link, Relation, Written};
pub use keys::{
    Claimed, DeviceKeys, IdentitySet, KeyCounts, KeyStore, MasterKey, MasterSignature, OneTimeKey,
};
pub use limiter::{Quota, RateLimiter};
pub use mailer::{Mail, Mailer};
pub use messages::{
    Appended, Changed, ConversationState, GroupInfo, Listing, Member, MessageStore, NewMessage,
    Pending, Unread,
};
pub use presence::PresenceStore;
pub use reports::{Report, ReportStore};
pub use sessions::{ResetToken, ResetTokenStore, SessionRecord, SessionStore};
pub use to_device::{Queued, ToDevice, ToDeviceStore};
pub use users::{display_name_words, NewUser, ProfileUpdate, SearchQuery, UserRecord, UserStore};

/// Why a backend call failed. Callers treat `Conflict` and `NotFound` as
/// answers about the data, and `Unavailable` as "try again later".
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken; `field` names it (`username`, `email`, `phone`, ...).
    #[error("{field} is already taken")]
    Conflict {
        /// The unique field that collided.
        field: String,
    },
    /// The record to change does not exist.
    #[error("not found")]
    NotFound,
    /// The writer is not a current member of the conversation it writes to.
    #[error("not a member")]
    NotMember,
    /// The direct conversation takes no messages: one of its users blocks
    /// the other ([`ConversationState::blocked`]).
    #[error("blocked")]
    Blocked,
    /// The writer has not accepted the conversation: it is a message
    /// request to them ([`ConversationState::pending`]).
    #[error("not accepted")]
    NotAccepted,
    /// The conversation is end-to-end encrypted and the entry is plain
    /// text ([`ConversationState::encrypted`]).
    #[error("the conversation is encrypted")]
    Encrypted,
    /// The backend could not be reached or did not answer in time.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with data this code cannot read (a bug or a
    /// manual edit of the database).
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The backend's data was written by a newer version of this software,
    /// whose layout this build does not know: serving it could lose or
    /// mangle what the newer version wrote. The operator upgrades first.
    #[error("incompatible store: {0}")]
    Incompatible(String),
    /// A blob was longer than the caller's limit ([`BlobStore::put`]'s
    /// `max_bytes`): nothing was stored.
    #[error("larger than {max} bytes")]
    TooLarge {
        /// The limit it broke.
        max: u64,
    },
    /// The store has no room left for what was written (a bounded store's
    /// capacity, a full disk): nothing was stored.
    #[error("no space left in the store")]
    Full,
    /// The bytes to store ended with an error before they were complete
    /// (the client went away, a truncated body): nothing was stored. The
    /// message is the body's error.
    #[error("the body was interrupted: {0}")]
    Interrupted(String),
    /// A byte range starts at or past the end of the blob, or ends before
    /// it starts ([`ByteRange::resolve`]); `size` is the blob's, for an
    /// HTTP `416` with `Content-Range: bytes */size`.
    #[error("range not satisfiable (the blob has {size} bytes)")]
    RangeNotSatisfiable {
        /// The whole blob's size in bytes.
        size: u64,
    },
}

/// Result of a backend call.
pub type StoreResult<T> = Result<T, StoreError>;
