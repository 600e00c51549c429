//! The wire protocol: typed frames, the two codecs, and the stable error codes.
//!
//! One WebSocket message carries one frame. Frames are maps tagged by a `type`
//! string; requests carry a client-chosen `id` that the reply echoes, pushes
//! carry none. The normative description, with an example of every frame, is
//! `docs/PROTOCOL.md`; `tests/vectors/frames.json` holds every frame encoded by
//! these types, and every codec must reproduce those bytes.

mod codec;
mod encode;
mod error;
mod fast;
mod frame;
mod prescan;
mod shared;

pub use codec::{Codec, DecodeError, ProtocolError};
pub use error::ErrorCode;
#[cfg(feature = "testkit")]
pub(crate) use fast::decode_msgpack_send;
pub use frame::{
    BackupInfo, BackupKeyInfo, BackupKeyRef, CallInfo, CallSignal, CallSignalPush, CallStatus,
    ClaimedKey, ClientFrame, ContactAction, ContactInfo, ContactList, ContactState,
    ConversationInfo, ConversationList, ConversationSummary, DeviceInfo, DeviceKeysInfo, DeviceRef,
    DeviceSignature, DirectoryEntry, HangupReason, IceCandidate, IceServer, IdentityKeys,
    KeyCountsInfo, LastEntry, MasterKeyInfo, MemberInfo, OutgoingToDevice, ReceiptInfo,
    RequestInfo, SealedSignal, ServerFrame, SignedKey, ToDeviceAck, ToDeviceMessage, Undelivered,
    UndeliveredReason, UserMasterKey, CALLS_VERSION, LIFE_VERSION, MEDIA_VERSION,
    MIN_PROTOCOL_VERSION, PROTOCOL_VERSION, RECEIPTS_VERSION, TYPING_VERSION,
};
pub use shared::SharedMessage;
