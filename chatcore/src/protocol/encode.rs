//! Encoding of the two server frames of every relayed message, `sent` and
//! a text `message`, in MessagePack by hand.
//!
//! serde's path (rmp-serde's `write_named`) writes each field through
//! several layers of generic calls and cost about 1,200 instructions per
//! frame, the largest single cost of a relayed message once decoding had
//! its own fast path ([`super::fast`]). This writes the very same bytes:
//! the same keys in the same order, integers in the smallest encoding
//! rmp's `write_uint`/`write_sint` choose, strings as `str`. Any other frame,
//! or content other than text, goes through serde; tests compare both on
//! arbitrary frames.

use std::io::Write;

use super::ServerFrame;
use crate::model::{Content, Message};

/// Writes `frame` if it is one this path encodes: `Ok(false)` otherwise,
/// with nothing written.
pub(crate) fn write_msgpack(frame: &ServerFrame, out: &mut impl Write) -> std::io::Result<bool> {
    match frame {
        ServerFrame::Message { message } if matches!(message.content, Content::Text { .. }) => {
            map(out, 2)?;
            str(out, "type")?;
            str(out, "message")?;
            str(out, "message")?;
            write_message(message, out)?;
            Ok(true)
        }
        ServerFrame::Sent {
            id,
            message_id,
            conv,
            seq,
            ts,
            duplicate,
        } => {
            map(out, 7)?;
            str(out, "type")?;
            str(out, "sent")?;
            str(out, "id")?;
            uint(out, u64::from(*id))?;
            str(out, "message_id")?;
            str(out, message_id.as_str())?;
            str(out, "conv")?;
            str(out, conv.as_str())?;
            str(out, "seq")?;
            uint(out, *seq)?;
            str(out, "ts")?;
            sint(out, *ts)?;
            str(out, "duplicate")?;
            rmp::encode::write_bool(out, *duplicate)?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

fn write_message(m: &Message, out: &mut impl Write) -> std::io::Result<()> {
    let Content::Text { text } = &m.content else {
        return Err(std::io::Error::other(
            "only text content is encoded by hand",
        ));
    };
    map(out, 7)?;
    str(out, "id")?;
    str(out, m.id.as_str())?;
    str(out, "conv")?;
    str(out, m.conv.as_str())?;
    str(out, "seq")?;
    uint(out, m.seq)?;
    str(out, "from")?;
    str(out, m.from.as_str())?;
    str(out, "client_id")?;
    str(out, &m.client_id)?;
    str(out, "ts")?;
    sint(out, m.ts)?;
    str(out, "content")?;
    map(out, 2)?;
    str(out, "kind")?;
    str(out, "text")?;
    str(out, "text")?;
    str(out, text)
}

fn map(out: &mut impl Write, len: u32) -> std::io::Result<()> {
    rmp::encode::write_map_len(out, len).map(|_| ()).map_err(io)
}

fn str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    rmp::encode::write_str(out, s).map_err(io)
}

fn uint(out: &mut impl Write, v: u64) -> std::io::Result<()> {
    rmp::encode::write_uint(out, v).map(|_| ()).map_err(io)
}

fn sint(out: &mut impl Write, v: i64) -> std::io::Result<()> {
    rmp::encode::write_sint(out, v).map(|_| ()).map_err(io)
}

fn io<E: std::fmt::Display>(e: E) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::write_msgpack;
    use crate::protocol::{Codec, ServerFrame};
    use crate::testkit::samples;

    #[test]
    fn writes_the_bytes_serde_writes_and_declines_the_rest() {
        let mut by_hand = 0;
        for frame in samples::server_frames() {
            let mut fast = Vec::new();
            let took = write_msgpack(&frame, &mut fast).unwrap();
            if took {
                by_hand += 1;
                let serde = rmp_serde::encode::to_vec_named(&frame).unwrap();
                assert_eq!(fast, serde, "{frame:?}");
            } else {
                assert!(fast.is_empty());
            }
            assert_eq!(
                Codec::MsgPack.encode(&frame).unwrap(),
                rmp_serde::encode::to_vec_named(&frame).unwrap()
            );
        }
        assert_eq!(by_hand, 2, "sent and the text message");
        let notice = samples::server_frames()
            .into_iter()
            .find(
                |f| matches!(f, ServerFrame::Message { message } if !message.content.is_message()),
            )
            .unwrap();
        assert!(!write_msgpack(&notice, &mut Vec::new()).unwrap());
    }
}
