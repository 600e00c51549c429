//! Encoding of the two server frames of every relayed message, `sent` and
//! a text or encrypted `message`, in MessagePack by hand.
//!
//! serde's path (rmp-serde's `write_named`) writes each field through
//! several layers of generic calls and cost about 1,200 instructions per
//! frame, the largest single cost of a relayed message once decoding had
//! its own fast path ([`super::fast`]). This writes the very same bytes:
//! the same keys in the same order, integers in the smallest encoding
//! rmp's `write_uint`/`write_sint` choose, strings as `str`. Any other frame,
//! or content other than a message's, goes through serde; tests compare
//! both on arbitrary frames.

use std::io::Write;

use super::ServerFrame;
use crate::e2e::MEGOLM_V1;
use crate::model::{Content, Message};

/// A piece of a fixed run of MessagePack bytes.
enum Piece {
    /// A marker byte (a map's length).
    Byte(u8),
    /// A key: a fixstr (all keys are shorter than 32 bytes).
    Key(&'static str),
}

use Piece::{Byte, Key};

/// The bytes of `pieces`, computed at compile time: a wrong length `N`
/// fails the build, not a frame.
const fn encoded<const N: usize>(pieces: &[Piece]) -> [u8; N] {
    let mut out = [0u8; N];
    let mut at = 0;
    let mut p = 0;
    while p < pieces.len() {
        match pieces[p] {
            Byte(b) => {
                out[at] = b;
                at += 1;
            }
            Key(k) => {
                let b = k.as_bytes();
                assert!(b.len() < 32);
                out[at] = 0xa0 | (b.len() as u8);
                at += 1;
                let mut i = 0;
                while i < b.len() {
                    out[at] = b[i];
                    at += 1;
                    i += 1;
                }
            }
        }
        p += 1;
    }
    assert!(at == N);
    out
}

// Keys written alone, each in one call.
const K_CIPHERTEXT: [u8; 11] = encoded(&[Key("ciphertext")]);
const K_DEVICE: [u8; 7] = encoded(&[Key("device")]);
const K_SESSION: [u8; 8] = encoded(&[Key("session")]);
const K_CLIENT_ID: [u8; 10] = encoded(&[Key("client_id")]);
const K_CONV: [u8; 5] = encoded(&[Key("conv")]);
const K_DUPLICATE: [u8; 10] = encoded(&[Key("duplicate")]);
const K_FROM: [u8; 5] = encoded(&[Key("from")]);
const K_MESSAGE_ID: [u8; 11] = encoded(&[Key("message_id")]);
const K_SEQ: [u8; 4] = encoded(&[Key("seq")]);
const K_TS: [u8; 3] = encoded(&[Key("ts")]);

/// `{"type": "message", "message": {` and the first key, `"id"`.
const MESSAGE_HEAD: [u8; 26] = encoded(&[
    Byte(0x82),
    Key("type"),
    Key("message"),
    Key("message"),
    Byte(0x87),
    Key("id"),
]);

/// `"content": {"kind": "text", "text": ` up to the text's value.
const CONTENT_HEAD: [u8; 24] = encoded(&[
    Key("content"),
    Byte(0x82),
    Key("kind"),
    Key("text"),
    Key("text"),
]);

/// `"content": {"kind": "encrypted", "algorithm": ` up to the algorithm's
/// value.
const ENCRYPTED_HEAD: [u8; 34] = encoded(&[
    Key("content"),
    Byte(0x85),
    Key("kind"),
    Key("encrypted"),
    Key("algorithm"),
]);

/// [`ENCRYPTED_HEAD`] with the algorithm every message of an encrypted
/// conversation names today, up to the sending device's key.
const MEGOLM_HEAD: [u8; 44] = encoded(&[
    Key("content"),
    Byte(0x85),
    Key("kind"),
    Key("encrypted"),
    Key("algorithm"),
    Key(MEGOLM_V1),
]);

/// `{"type": "sent", "id": ` up to the id's value.
const SENT_HEAD: [u8; 14] = encoded(&[Byte(0x87), Key("type"), Key("sent"), Key("id")]);

/// Writes `frame` if it is one this path encodes: `Ok(false)` otherwise,
/// with nothing written.
pub(crate) fn write_msgpack(frame: &ServerFrame, out: &mut impl Write) -> std::io::Result<bool> {
    match frame {
        // The head's field count is fixed: an entry with envelope fields
        // beyond the plain message's goes through serde.
        ServerFrame::Message { message }
            if message.rel.is_some()
                || !message.mentions.is_empty()
                || !message.media.is_empty()
                || message.expires_at.is_some() =>
        {
            Ok(false)
        }
        ServerFrame::Message { message } => match &message.content {
            Content::Text { text } => {
                write_message(message, &CONTENT_HEAD, out)?;
                str(out, text)?;
                Ok(true)
            }
            Content::Encrypted {
                algorithm,
                device,
                session,
                ciphertext,
            } => {
                if algorithm == MEGOLM_V1 {
                    write_message(message, &MEGOLM_HEAD, out)?;
                } else {
                    write_message(message, &ENCRYPTED_HEAD, out)?;
                    str(out, algorithm)?;
                }
                out.write_all(&K_DEVICE)?;
                str(out, device.as_str())?;
                out.write_all(&K_SESSION)?;
                str(out, session)?;
                out.write_all(&K_CIPHERTEXT)?;
                str(out, ciphertext)?;
                Ok(true)
            }
            _ => Ok(false),
        },
        ServerFrame::Sent {
            id,
            message_id,
            conv,
            seq,
            ts,
            duplicate,
            expires_at: None,
        } => {
            out.write_all(&SENT_HEAD)?;
            uint(out, u64::from(*id))?;
            out.write_all(&K_MESSAGE_ID)?;
            str(out, message_id.as_str())?;
            out.write_all(&K_CONV)?;
            str(out, conv.as_str())?;
            out.write_all(&K_SEQ)?;
            uint(out, *seq)?;
            out.write_all(&K_TS)?;
            sint(out, *ts)?;
            out.write_all(&K_DUPLICATE)?;
            out.write_all(&[if *duplicate { 0xc3 } else { 0xc2 }])?;
            Ok(true)
        }
        _ => Ok(false),
    }
}

/// The message's fields up to its content's first value (`content_head`
/// ends with that value's key).
fn write_message(m: &Message, content_head: &[u8], out: &mut impl Write) -> std::io::Result<()> {
    out.write_all(&MESSAGE_HEAD)?;
    str(out, m.id.as_str())?;
    out.write_all(&K_CONV)?;
    str(out, m.conv.as_str())?;
    out.write_all(&K_SEQ)?;
    uint(out, m.seq)?;
    out.write_all(&K_FROM)?;
    str(out, m.from.as_str())?;
    out.write_all(&K_CLIENT_ID)?;
    str(out, &m.client_id)?;
    out.write_all(&K_TS)?;
    sint(out, m.ts)?;
    out.write_all(content_head)
}

/// A string value: its marker and length in one write, then its bytes.
fn str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    let len = s.len();
    let mut head = [0u8; 5];
    let n = if len < 32 {
        head[0] = 0xa0 | len as u8;
        1
    } else if len < 256 {
        head[0] = 0xd9;
        head[1] = len as u8;
        2
    } else if let Ok(l) = u16::try_from(len) {
        head[0] = 0xda;
        head[1..3].copy_from_slice(&l.to_be_bytes());
        3
    } else {
        let l = u32::try_from(len).map_err(|_| std::io::Error::other("string too long"))?;
        head[0] = 0xdb;
        head[1..5].copy_from_slice(&l.to_be_bytes());
        5
    };
    out.write_all(&head[..n])?;
    out.write_all(s.as_bytes())
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
        assert_eq!(by_hand, 3, "sent, the text and the encrypted message");
        // An algorithm the server does not know yet takes the general head.
        for frame in samples::server_frames() {
            let ServerFrame::Message { message } = frame else {
                continue;
            };
            let mut message = crate::model::Message::clone(message.message());
            let crate::model::Content::Encrypted { algorithm, .. } = &mut message.content else {
                continue;
            };
            *algorithm = "mls.v1".to_owned().into();
            let frame = ServerFrame::Message {
                message: crate::protocol::SharedMessage::new(std::sync::Arc::new(message)),
            };
            let mut fast = Vec::new();
            assert!(write_msgpack(&frame, &mut fast).unwrap());
            assert_eq!(fast, rmp_serde::encode::to_vec_named(&frame).unwrap());
        }
        let notice = samples::server_frames()
            .into_iter()
            .find(
                |f| matches!(f, ServerFrame::Message { message } if !message.content.is_message()),
            )
            .unwrap();
        assert!(!write_msgpack(&notice, &mut Vec::new()).unwrap());
    }
}
