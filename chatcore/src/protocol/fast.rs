//! Decoding of the frequent client frames without buffering.
//!
//! serde decodes an internally tagged enum (`{"type": "send", ...}`) by
//! first copying the whole map into an intermediate tree, because the tag
//! may come anywhere in it. That tree was the largest single cost of a
//! relayed message. Every encoder we know of (ours, the TypeScript
//! binding) writes the tag first, so for the frames that come in streams
//! (`send`, `ack`, `read`, `sync`, `history`, `focus`, `ping`) this
//! decoder reads the tag first and hands the rest of the map straight to
//! the variant's fields.
//!
//! The `send` frame, one per relayed message, is read from MessagePack
//! bytes by hand ([`decode_msgpack_send`]): even tag-first, serde's
//! generic path cost twice as many instructions.
//!
//! Both only ever answer with a frame; anything else (another frame type,
//! the tag not first, any error) makes [`Codec::decode_client`] use the
//! derived decoder, which accepts any key order and words the errors. So
//! this path cannot accept or refuse anything the derived one would not;
//! tests check both agree on every frame and on broken bytes.
//!
//! [`Codec::decode_client`]: super::Codec::decode_client

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

use super::ClientFrame;
use crate::e2e::MEGOLM_V1;
use crate::model::{Content, ConversationId, DeviceId, UserId};

/// A client frame decoded by the fast path.
pub(crate) struct FastFrame(pub(crate) ClientFrame);

/// Why the fast path declined; never shown to anyone.
const DECLINED: &str = "not a frame for the fast path";

impl<'de> Deserialize<'de> for FastFrame {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FrameVisitor)
    }
}

struct FrameVisitor;

impl<'de> Visitor<'de> for FrameVisitor {
    type Value = FastFrame;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map whose first key is `type`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastFrame, A::Error> {
        if map.next_key_seed(StrIs("type"))? != Some(true) {
            return Err(de::Error::custom(DECLINED));
        }
        let tag = map.next_value_seed(TagSeed)?;
        let rest = MapAccessDeserializer::new(StrKeys(map));
        let frame = match tag {
            Tag::Send => {
                let b = SendBody::deserialize(rest)?;
                ClientFrame::Send {
                    media: Vec::new(),
                    id: b.id,
                    conv: b.conv,
                    to: b.to,
                    client_id: b.client_id,
                    rel: None,
                    mentions: Vec::new(),
                    content: b.content.0,
                }
            }
            Tag::Ack => {
                let b = SeqBody::deserialize(rest)?;
                ClientFrame::Ack {
                    id: b.id,
                    conv: b.conv,
                    seq: b.seq,
                }
            }
            Tag::Read => {
                let b = SeqBody::deserialize(rest)?;
                ClientFrame::Read {
                    id: b.id,
                    conv: b.conv,
                    seq: b.seq,
                }
            }
            Tag::Sync => {
                let b = SyncBody::deserialize(rest)?;
                ClientFrame::Sync {
                    id: b.id,
                    limit: b.limit,
                }
            }
            Tag::History => {
                let b = HistoryBody::deserialize(rest)?;
                ClientFrame::History {
                    id: b.id,
                    conv: b.conv,
                    before: b.before,
                    limit: b.limit,
                }
            }
            Tag::Focus => {
                let b = FocusBody::deserialize(rest)?;
                ClientFrame::Focus {
                    id: b.id,
                    conv: b.conv,
                }
            }
            Tag::Ping => ClientFrame::Ping {
                id: IdBody::deserialize(rest)?.id,
            },
            Tag::Other => return Err(de::Error::custom(DECLINED)),
        };
        Ok(FastFrame(frame))
    }
}

// The variants' fields, with the same names, defaults and strictness as
// `ClientFrame`'s (a test compares both decoders on every frame type).

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SendBody {
    id: u32,
    #[serde(default)]
    conv: Option<ConversationId>,
    #[serde(default)]
    to: Option<UserId>,
    client_id: String,
    content: FastContent,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeqBody {
    id: u32,
    conv: ConversationId,
    seq: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    id: u32,
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryBody {
    id: u32,
    conv: ConversationId,
    #[serde(default)]
    before: Option<u64>,
    #[serde(default)]
    limit: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FocusBody {
    id: u32,
    #[serde(default)]
    conv: Option<ConversationId>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdBody {
    id: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBody {
    text: String,
}

/// [`Content`] with its `kind` tag first.
struct FastContent(Content);

impl<'de> Deserialize<'de> for FastContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ContentVisitor)
    }
}

struct ContentVisitor;

impl<'de> Visitor<'de> for ContentVisitor {
    type Value = FastContent;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map whose first key is `kind`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastContent, A::Error> {
        if map.next_key_seed(StrIs("kind"))? != Some(true) || !map.next_value_seed(StrIs("text"))? {
            return Err(de::Error::custom(DECLINED));
        }
        let b = TextBody::deserialize(MapAccessDeserializer::new(StrKeys(map)))?;
        Ok(FastContent(Content::Text { text: b.text }))
    }
}

/// The rest of a map, its keys read as strings only.
///
/// A derived struct also takes an integer key as the index of a field
/// (`0` for `id`), but the derived frame decoder, which buffers the map
/// first, does so for some integer encodings only: rmp-serde hands over a
/// `uint 32` key as a `u32`, which serde's buffer refuses as a field. Found
/// by fuzzing (`fuzz/regressions/decode_client_frame/`). With string keys
/// only, this path declines such maps and the derived decoder decides.
struct StrKeys<A>(A);

impl<'de, A: MapAccess<'de>> MapAccess<'de> for StrKeys<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(StrKey(seed))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

/// Hands a key to `.0` if it is a string; refuses any other key.
struct StrKey<K>(K);

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for StrKey<K> {
    type Value = K::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<K::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, K: DeserializeSeed<'de>> Visitor<'de> for StrKey<K> {
    type Value = K::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<K::Value, E> {
        self.0.deserialize(de::value::StrDeserializer::new(v))
    }
}

/// Whether the next string equals `.0`, without copying it.
struct StrIs(&'static str);

impl<'de> DeserializeSeed<'de> for StrIs {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for StrIs {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

/// The frame types this path decodes.
#[derive(Clone, Copy)]
enum Tag {
    Send,
    Ack,
    Read,
    Sync,
    History,
    Focus,
    Ping,
    Other,
}

struct TagSeed;

impl<'de> DeserializeSeed<'de> for TagSeed {
    type Value = Tag;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Tag, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for TagSeed {
    type Value = Tag;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a frame type")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Tag, E> {
        Ok(match v {
            "send" => Tag::Send,
            "ack" => Tag::Ack,
            "read" => Tag::Read,
            "sync" => Tag::Sync,
            "history" => Tag::History,
            "focus" => Tag::Focus,
            "ping" => Tag::Ping,
            _ => Tag::Other,
        })
    }
}

/// Decodes a MessagePack `send` frame, the one frame of every relayed
/// message, straight from its bytes: serde's generic path, even tag-first,
/// cost about 3,000 instructions per frame. `None` for anything else, and
/// for anything unusual (other key sets, duplicate keys, binary strings,
/// trailing bytes): the callers then try the paths above, which decide.
pub(crate) fn decode_msgpack_send(bytes: &[u8]) -> Option<ClientFrame> {
    let mut r = bytes;
    if rmp::decode::read_map_len(&mut r).ok()? != 5
        || read_raw(&mut r)? != b"type"
        || read_raw(&mut r)? != b"send"
    {
        return None;
    }
    let (mut id, mut conv, mut to, mut client_id, mut content) = (None, None, None, None, None);
    for _ in 0..4 {
        match read_raw(&mut r)? {
            b"id" if id.is_none() => id = Some(rmp::decode::read_int::<u32, _>(&mut r).ok()?),
            b"conv" if conv.is_none() && to.is_none() => conv = Some(read_str(&mut r)?),
            b"to" if to.is_none() && conv.is_none() => to = Some(read_str(&mut r)?),
            b"client_id" if client_id.is_none() => client_id = Some(read_str(&mut r)?),
            b"content" if content.is_none() => content = Some(read_content(&mut r)?),
            _ => return None,
        }
    }
    if !r.is_empty() {
        return None;
    }
    Some(ClientFrame::Send {
        media: Vec::new(),
        id: id?,
        conv: conv.map(|c| ConversationId(c.to_owned())),
        to: to.map(|u| UserId(u.to_owned())),
        client_id: client_id?.to_owned(),
        rel: None,
        mentions: Vec::new(),
        content: content?,
    })
}

/// A message's content: `{"kind": "text", "text"}` or `{"kind":
/// "encrypted", "algorithm", "device", "session", "ciphertext"}`, its keys
/// in any order, each once.
fn read_content(r: &mut &[u8]) -> Option<Content> {
    let len = rmp::decode::read_map_len(r).ok()?;
    if len != 2 && len != 5 {
        return None;
    }
    let mut kind = None;
    // Raw until the kind is known; each is checked as UTF-8 where it is
    // taken, except a known algorithm, which only UTF-8 can equal.
    let mut fields: [Option<&[u8]>; 5] = [None; 5];
    for _ in 0..len {
        let key = read_raw(r)?;
        if key == b"kind" {
            if kind.is_some() {
                return None;
            }
            kind = Some(read_raw(r)?);
            continue;
        }
        let slot = match key {
            b"text" => 0,
            b"algorithm" => 1,
            b"device" => 2,
            b"session" => 3,
            b"ciphertext" => 4,
            _ => return None,
        };
        if fields[slot].is_some() {
            return None;
        }
        fields[slot] = Some(read_raw(r)?);
    }
    let utf8 = |raw: &[u8]| std::str::from_utf8(raw).ok().map(str::to_owned);
    match (kind?, fields) {
        (b"text", [Some(text), None, None, None, None]) => {
            Some(Content::Text { text: utf8(text)? })
        }
        (b"encrypted", [None, Some(algorithm), Some(device), Some(session), Some(ciphertext)]) => {
            Some(Content::Encrypted {
                algorithm: known_algorithm(algorithm)?,
                device: DeviceId(utf8(device)?),
                session: utf8(session)?,
                ciphertext: utf8(ciphertext)?,
            })
        }
        _ => None,
    }
}

/// The algorithm of an encrypted message: the static name when it is the
/// one the server knows (every message of a conversation carries it).
fn known_algorithm(name: &[u8]) -> Option<Cow<'static, str>> {
    if name == MEGOLM_V1.as_bytes() {
        Some(Cow::Borrowed(MEGOLM_V1))
    } else {
        std::str::from_utf8(name)
            .ok()
            .map(|n| Cow::Owned(n.to_owned()))
    }
}

/// A MessagePack string (not binary), borrowed, checked to be UTF-8.
fn read_str<'a>(r: &mut &'a [u8]) -> Option<&'a str> {
    std::str::from_utf8(read_raw(r)?).ok()
}

/// A MessagePack string's bytes (not binary), borrowed and not checked:
/// for keys and tags, compared with ASCII literals, which only valid UTF-8
/// can equal. By hand: `rmp`'s reader cost about 190 instructions per short
/// string, and checking each key as UTF-8 about 80 more.
fn read_raw<'a>(r: &mut &'a [u8]) -> Option<&'a [u8]> {
    let (&marker, rest) = r.split_first()?;
    let (len, rest) = match marker {
        0xa0..=0xbf => (usize::from(marker & 0x1f), rest),
        0xd9 => {
            let (&n, rest) = rest.split_first()?;
            (usize::from(n), rest)
        }
        0xda => {
            let (n, rest) = rest.split_first_chunk::<2>()?;
            (usize::from(u16::from_be_bytes(*n)), rest)
        }
        0xdb => {
            let (n, rest) = rest.split_first_chunk::<4>()?;
            (usize::try_from(u32::from_be_bytes(*n)).ok()?, rest)
        }
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    let (s, rest) = rest.split_at(len);
    *r = rest;
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::FastFrame;
    use crate::protocol::{ClientFrame, Codec};
    use crate::testkit::samples;

    const FAST: [&str; 7] = ["send", "ack", "read", "sync", "history", "focus", "ping"];

    fn fast(codec: Codec, bytes: &[u8]) -> Option<ClientFrame> {
        codec.decode::<FastFrame>(bytes).ok().map(|f| f.0)
    }

    #[test]
    fn takes_the_frequent_frames_and_declines_the_rest() {
        let frames = samples::client_frames();
        for name in FAST {
            assert!(
                frames.iter().any(|f| f.type_name() == name),
                "no sample {name}"
            );
        }
        for frame in frames {
            // A send of anything but text, or that points at another
            // message or mentions members, is the derived decoder's.
            let plain = match &frame {
                ClientFrame::Send {
                    rel,
                    mentions,
                    media,
                    ..
                } => rel.is_none() && mentions.is_empty() && media.is_empty(),
                _ => true,
            };
            let text = plain
                && !matches!(&frame, ClientFrame::Send { content, .. }
                if !matches!(content, crate::model::Content::Text { .. }));
            for codec in [Codec::MsgPack, Codec::Json] {
                let bytes = codec.encode(&frame).expect("encodes");
                let got = fast(codec, &bytes);
                if FAST.contains(&frame.type_name()) && text {
                    assert_eq!(got.as_ref(), Some(&frame), "{codec:?}");
                } else {
                    assert_eq!(got, None, "{codec:?} {}", frame.type_name());
                }
                if codec == Codec::MsgPack {
                    // By hand: every plain send, of text or of ciphertext.
                    let hand = super::decode_msgpack_send(&bytes);
                    if frame.type_name() == "send" && plain {
                        assert_eq!(hand.as_ref(), Some(&frame));
                    } else {
                        assert_eq!(hand, None, "{}", frame.type_name());
                    }
                }
            }
        }
    }

    #[test]
    fn declines_what_it_cannot_read_in_one_pass() {
        let cases: [&[u8]; 5] = [
            // the tag not first: the derived decoder's job
            br#"{"id":1,"type":"ping"}"#,
            br#"{"type":"send","id":1,"to":"u","client_id":"c","content":{"text":"hi","kind":"text"}}"#,
            // unknown field, missing field, duplicate tag: refused by the derived decoder with its words
            br#"{"type":"ping","id":7,"extra":1}"#,
            br#"{"type":"ack","id":1,"conv":"x"}"#,
            br#"{"type":"ping","type":"ping","id":1}"#,
        ];
        for bytes in cases {
            assert!(
                fast(Codec::Json, bytes).is_none(),
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        // The hand-written MessagePack `send` reader takes either key order
        // inside, and declines extra or duplicate keys and trailing bytes.
        fn str(out: &mut Vec<u8>, s: &str) {
            rmp::encode::write_str(out, s).expect("writes");
        }
        let send = |content: &[(&str, &str)], extra: bool| {
            let mut b = Vec::new();
            rmp::encode::write_map_len(&mut b, if extra { 6 } else { 5 }).expect("writes");
            for (k, v) in [("type", "send"), ("to", "u"), ("client_id", "c")] {
                str(&mut b, k);
                str(&mut b, v);
            }
            str(&mut b, "id");
            rmp::encode::write_uint(&mut b, 3).expect("writes");
            str(&mut b, "content");
            rmp::encode::write_map_len(&mut b, content.len() as u32).expect("writes");
            for (k, v) in content {
                str(&mut b, k);
                str(&mut b, v);
            }
            if extra {
                str(&mut b, "x");
                str(&mut b, "y");
            }
            b
        };
        let text_first = send(&[("text", "hi"), ("kind", "text")], false);
        let expected = ClientFrame::Send {
            media: Vec::new(),
            mentions: Vec::new(),
            rel: None,
            id: 3,
            conv: None,
            to: Some("u".into()),
            client_id: "c".into(),
            content: crate::model::Content::Text { text: "hi".into() },
        };
        assert_eq!(
            super::decode_msgpack_send(&text_first),
            Some(expected.clone())
        );
        assert_eq!(
            Codec::MsgPack.decode_client(&text_first).ok(),
            Some(expected)
        );
        let mut trailing = text_first.clone();
        trailing.push(0xc0);
        let declined = [
            trailing,
            send(&[("kind", "text"), ("text", "hi")], true),
            send(&[("kind", "image"), ("text", "hi")], false),
            send(&[("kind", "text"), ("kind", "text")], false),
        ];
        for bytes in declined {
            assert_eq!(super::decode_msgpack_send(&bytes), None, "{bytes:?}");
        }

        // Ciphertext: the known algorithm is the static name, another is
        // read as it is (and refused later by the envelope's check), and
        // invalid UTF-8 in any field is declined like elsewhere.
        let encrypted = |algorithm: &str| {
            send(
                &[
                    ("kind", "encrypted"),
                    ("algorithm", algorithm),
                    ("device", "d"),
                    ("session", "cw"),
                    ("ciphertext", "Y3Q"),
                ],
                false,
            )
        };
        for algorithm in ["megolm.v1", "mls.v1"] {
            let bytes = encrypted(algorithm);
            let hand = super::decode_msgpack_send(&bytes);
            assert_eq!(hand, Codec::MsgPack.decode_client(&bytes).ok());
            let Some(ClientFrame::Send {
                content: crate::model::Content::Encrypted { algorithm: got, .. },
                ..
            }) = hand
            else {
                panic!("{algorithm}: not read by hand");
            };
            assert_eq!(got, algorithm);
            assert_eq!(
                matches!(got, std::borrow::Cow::Borrowed(_)),
                algorithm == "megolm.v1"
            );
        }
        let mut bad_utf8 = encrypted("mls.v1");
        let at = bad_utf8
            .windows(6)
            .position(|w| w == b"mls.v1")
            .expect("there");
        bad_utf8[at] = 0xff;
        assert_eq!(super::decode_msgpack_send(&bad_utf8), None);

        // A `uint 32` key 0 is no field name (a derived struct alone would
        // read it as the index of `id`): declined, and refused behind.
        let mut int_key = Vec::new();
        rmp::encode::write_map_len(&mut int_key, 2).expect("writes");
        str(&mut int_key, "type");
        str(&mut int_key, "ping");
        rmp::encode::write_u32(&mut int_key, 0).expect("writes");
        rmp::encode::write_uint(&mut int_key, 7).expect("writes");
        assert!(fast(Codec::MsgPack, &int_key).is_none());
        assert!(Codec::MsgPack.decode_client(&int_key).is_err());

        // And the derived decoder behind it still reads what is valid.
        assert_eq!(
            Codec::Json.decode_client(cases[0]).ok(),
            Some(ClientFrame::Ping { id: 1 })
        );
        assert!(Codec::Json.decode_client(cases[1]).is_ok());
    }
}
