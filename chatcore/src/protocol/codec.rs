use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::fast::{decode_msgpack_send, FastFrame};
use super::prescan::check_msgpack_claims;
use super::{ClientFrame, ServerFrame};

/// How frames are turned into bytes. Chosen per connection by the WebSocket
/// subprotocol; both carry the very same schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Codec {
    /// MessagePack with named fields, sent as binary WebSocket messages. The default.
    MsgPack,
    /// JSON, sent as text WebSocket messages: for debugging and zero-dependency clients.
    Json,
}

/// A frame that could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// The bytes are not a valid frame.
    #[error("invalid frame: {0}")]
    Decode(String),
    /// A frame could not be encoded (a bug: every frame type is encodable).
    #[error("cannot encode frame: {0}")]
    Encode(String),
}

/// A client frame that failed to decode, with the request id if one could
/// still be read from it, so the error reply can name the request.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct DecodeError {
    /// The `id` field of the broken frame, when it had a readable one.
    pub id: Option<u32>,
    /// What was wrong.
    pub error: ProtocolError,
}

impl Codec {
    /// Bytes to reserve for an encoded frame: most fit (a message push with
    /// a short text is about 200).
    pub const FRAME_CAPACITY: usize = 256;

    /// Subprotocol name for MessagePack.
    pub const MSGPACK_SUBPROTOCOL: &'static str = "chatcore.v1.msgpack";
    /// Subprotocol name for JSON.
    pub const JSON_SUBPROTOCOL: &'static str = "chatcore.v1.json";

    /// The codec a WebSocket subprotocol name selects.
    pub fn from_subprotocol(name: &str) -> Option<Codec> {
        match name.trim() {
            Self::MSGPACK_SUBPROTOCOL => Some(Codec::MsgPack),
            Self::JSON_SUBPROTOCOL => Some(Codec::Json),
            _ => None,
        }
    }

    /// The subprotocol name of this codec.
    pub fn subprotocol(self) -> &'static str {
        match self {
            Codec::MsgPack => Self::MSGPACK_SUBPROTOCOL,
            Codec::Json => Self::JSON_SUBPROTOCOL,
        }
    }

    /// Whether frames travel as WebSocket text (JSON) rather than binary messages.
    pub fn is_text(self) -> bool {
        matches!(self, Codec::Json)
    }

    /// Encodes any frame type.
    pub fn encode<T: Serialize>(self, frame: &T) -> Result<Vec<u8>, ProtocolError> {
        // Most frames fit: spares the reallocations of growing from empty.
        let mut buf = Vec::with_capacity(Self::FRAME_CAPACITY);
        self.encode_into(frame, &mut buf)?;
        Ok(buf)
    }

    /// Encodes any frame type at the end of `out`: several frames can share
    /// one buffer (chatd encodes a batch of frames into one allocation).
    pub fn encode_into<T: Serialize>(
        self,
        frame: &T,
        out: &mut impl std::io::Write,
    ) -> Result<(), ProtocolError> {
        match self {
            Codec::MsgPack => rmp_serde::encode::write_named(out, frame)
                .map_err(|e| ProtocolError::Encode(e.to_string())),
            Codec::Json => {
                serde_json::to_writer(out, frame).map_err(|e| ProtocolError::Encode(e.to_string()))
            }
        }
    }

    /// Encodes a server frame at the end of `out`, the frames of every
    /// relayed message (`sent`, a text `message`) by hand in MessagePack
    /// (the `protocol::encode` module): the same bytes as [`Codec::encode_into`], for
    /// fewer instructions.
    ///
    /// A `message` frame is encoded once per codec and message, however many
    /// connections it goes to ([`super::SharedMessage::frame_bytes`]), unless
    /// this frame is the message's last holder.
    pub fn encode_server_into(
        self,
        frame: &ServerFrame,
        out: &mut impl std::io::Write,
    ) -> Result<(), ProtocolError> {
        if let ServerFrame::Message { message } = frame {
            if !message.is_shared() {
                return self.encode_frame_into(frame, out);
            }
            if let Some(bytes) = message.frame_bytes(self) {
                return out
                    .write_all(bytes)
                    .map_err(|e| ProtocolError::Encode(e.to_string()));
            }
        }
        self.encode_frame_into(frame, out)
    }

    /// [`Codec::encode_server_into`] without the cache of shared messages.
    pub(crate) fn encode_frame_into(
        self,
        frame: &ServerFrame,
        out: &mut impl std::io::Write,
    ) -> Result<(), ProtocolError> {
        if self == Codec::MsgPack
            && super::encode::write_msgpack(frame, out)
                .map_err(|e| ProtocolError::Encode(e.to_string()))?
        {
            return Ok(());
        }
        self.encode_into(frame, out)
    }

    /// Decodes any frame type. Never panics, whatever the bytes, and holds
    /// heap in proportion to the bytes, whatever their length prefixes say.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, ProtocolError> {
        match self {
            Codec::MsgPack => {
                // rmp-serde hands serde every length prefix as a size hint
                // to reserve from: refuse the ones the bytes cannot back.
                check_msgpack_claims(bytes)?;
                rmp_serde::from_slice(bytes).map_err(|e| ProtocolError::Decode(e.to_string()))
            }
            Codec::Json => {
                serde_json::from_slice(bytes).map_err(|e| ProtocolError::Decode(e.to_string()))
            }
        }
    }

    /// Decodes a client frame; on failure, recovers the request id if the
    /// bytes are at least a map with a numeric `id`.
    pub fn decode_client(self, bytes: &[u8]) -> Result<ClientFrame, DecodeError> {
        // The frequent frames, tag first, without serde's buffering; the
        // derived decoder below takes everything else and words the errors.
        if self == Codec::MsgPack {
            if let Some(frame) = decode_msgpack_send(bytes) {
                return Ok(frame);
            }
        }
        if let Some(frame) = self.decode_tag_first(bytes) {
            return Ok(frame);
        }
        self.decode(bytes).map_err(|error| DecodeError {
            id: self.decode::<IdOnly>(bytes).ok().and_then(|f| f.id),
            error,
        })
    }

    /// The tag-first path of [`Codec::decode_client`] alone: `None` when it
    /// declines. Crate-visible for the differential tests (`testkit::decoding`).
    pub(crate) fn decode_tag_first(self, bytes: &[u8]) -> Option<ClientFrame> {
        self.decode::<FastFrame>(bytes)
            .ok()
            .map(|FastFrame(frame)| frame)
    }
}

/// The lenient view of a broken frame used to find its request id.
#[derive(Deserialize)]
struct IdOnly {
    id: Option<u32>,
}
