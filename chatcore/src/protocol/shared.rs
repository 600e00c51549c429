//! A stored entry on its way to many connections.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};

use super::{Codec, ServerFrame};
use crate::model::Message;

/// A message (or notice) pushed to every connection of its recipients:
/// shared without a copy, and its `message` frame encoded at most once per
/// codec however many connections it goes to (a group's fan-out is one
/// encoding, not one per member device). On the wire and through a broker
/// it is exactly a [`Message`]; the encodings are a cache of this process.
#[derive(Clone)]
pub struct SharedMessage(Arc<Inner>);

struct Inner {
    message: Arc<Message>,
    msgpack: OnceLock<Option<Vec<u8>>>,
    json: OnceLock<Option<Vec<u8>>>,
    named: OnceLock<Option<Vec<u8>>>,
}

impl SharedMessage {
    /// Shares `message`.
    pub fn new(message: Arc<Message>) -> Self {
        Self(Arc::new(Inner {
            message,
            msgpack: OnceLock::new(),
            json: OnceLock::new(),
            named: OnceLock::new(),
        }))
    }

    /// The message.
    pub fn message(&self) -> &Arc<Message> {
        &self.0.message
    }

    /// Whether another frame or event still holds this message, so that an
    /// encoding is worth keeping for it. A direct message's push is usually
    /// the only holder by the time it is written: caching its bytes would
    /// cost an allocation and a copy for nobody. A stale answer costs only
    /// that, or an encoding more: both paths write the same bytes.
    pub fn is_shared(&self) -> bool {
        Arc::strong_count(&self.0) > 1
    }

    /// The whole `message` frame carrying it, encoded in `codec`: computed
    /// by the first connection that needs it, reused by the others. `None`
    /// if it cannot be encoded (a bug: every message encodes).
    pub fn frame_bytes(&self, codec: Codec) -> Option<&[u8]> {
        let cell = match codec {
            Codec::MsgPack => &self.0.msgpack,
            Codec::Json => &self.0.json,
        };
        cell.get_or_init(|| {
            let frame = ServerFrame::Message {
                message: self.clone(),
            };
            let mut buf = Vec::with_capacity(Codec::FRAME_CAPACITY);
            match codec.encode_frame_into(&frame, &mut buf) {
                Ok(()) => Some(buf),
                Err(e) => {
                    tracing::error!(error = %e, "cannot encode a message frame");
                    None
                }
            }
        })
        .as_deref()
    }

    /// The message alone in MessagePack with its field names (as
    /// `rmp_serde::to_vec_named` writes it, and as it serializes inside an
    /// event): what a broker between nodes carries, encoded once however
    /// many topics the message is published to (two for a direct message,
    /// one per member for a group's). `None` if it cannot be encoded (a
    /// bug: every message encodes).
    pub fn named_msgpack(&self) -> Option<&[u8]> {
        self.0
            .named
            .get_or_init(|| {
                let mut buf = Vec::with_capacity(Codec::FRAME_CAPACITY);
                match rmp_serde::encode::write_named(&mut buf, &*self.0.message) {
                    Ok(()) => Some(buf),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode a message for the broker");
                        None
                    }
                }
            })
            .as_deref()
    }
}

impl Deref for SharedMessage {
    type Target = Message;

    fn deref(&self) -> &Message {
        &self.0.message
    }
}

impl From<Message> for SharedMessage {
    fn from(m: Message) -> Self {
        Self::new(Arc::new(m))
    }
}

impl From<Arc<Message>> for SharedMessage {
    fn from(m: Arc<Message>) -> Self {
        Self::new(m)
    }
}

impl PartialEq for SharedMessage {
    fn eq(&self, other: &Self) -> bool {
        self.0.message == other.0.message
    }
}

impl Eq for SharedMessage {}

impl fmt::Debug for SharedMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.message.fmt(f)
    }
}

impl Serialize for SharedMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.message.serialize(s)
    }
}

impl<'de> Deserialize<'de> for SharedMessage {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Message::deserialize(d).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::SharedMessage;
    use crate::protocol::{Codec, ServerFrame};
    use crate::testkit::samples;

    #[test]
    fn a_message_frame_is_encoded_once_per_codec_with_the_bytes_of_the_frame() {
        for frame in samples::server_frames() {
            let ServerFrame::Message { message } = &frame else {
                continue;
            };
            let shared = SharedMessage::new(message.message().clone());
            let copy = shared.clone();
            for codec in [Codec::MsgPack, Codec::Json] {
                let first = shared.frame_bytes(codec).expect("encodes");
                assert_eq!(first, codec.encode(&frame).unwrap().as_slice());
                let again = copy.frame_bytes(codec).expect("cached");
                assert!(
                    std::ptr::eq(first, again),
                    "one encoding, shared by the clones"
                );
            }
        }
    }
}
