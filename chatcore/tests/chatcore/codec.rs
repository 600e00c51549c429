//! The codecs: exact agreement with tests/vectors/frames.json, round trips
//! of arbitrary frames, and no panic on arbitrary bytes.

use chatcore::model::{
    Content, ConversationId, MediaId, Message, MessageId, Presence, Rel, RelKind, UserId,
};
use chatcore::protocol::{ClientFrame, Codec, ConversationList, ErrorCode, ServerFrame};
use chatcore::testkit::{decoding, samples};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::TestCaseError;
use serde::Serialize;
use std::path::PathBuf;

fn vectors_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors/frames.json")
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct Vector {
    name: String,
    direction: String,
    #[serde(rename = "type")]
    kind: String,
    json: String,
    msgpack: String,
}

#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
struct VectorFile {
    comment: String,
    protocol_version: u32,
    vectors: Vec<Vector>,
}

fn vector<T: Serialize>(direction: &str, kind: &str, frame: &T) -> Vector {
    let json = Codec::Json.encode(frame).expect("encodes");
    Vector {
        name: format!("{direction}/{kind}"),
        direction: direction.into(),
        kind: kind.into(),
        json: String::from_utf8(json).expect("json is utf-8"),
        msgpack: hex::encode(Codec::MsgPack.encode(frame).expect("encodes")),
    }
}

fn expected_vectors() -> VectorFile {
    let mut vectors = Vec::new();
    for f in samples::client_frames() {
        let mut v = vector("client", f.type_name(), &f);
        if let ClientFrame::Send { conv: Some(_), .. } = &f {
            // Two examples of `send`: to a user and to a conversation.
            v.name = format!("{}/conv", v.name);
        }
        vectors.push(v);
    }
    for f in samples::server_frames() {
        let mut v = vector("server", samples::server_type_name(&f), &f);
        if let ServerFrame::Message { message } = &f {
            // Several examples of one type: named by what they carry.
            v.name = format!("{}/{}", v.name, message.content.kind());
        }
        vectors.push(v);
    }
    VectorFile {
        comment: "Every frame type encoded by the Rust types (chatcore::testkit::samples). Regenerate with: \
                  UPDATE_VECTORS=1 cargo test -p chatcore --test chatcore vectors"
            .into(),
        protocol_version: chatcore::protocol::PROTOCOL_VERSION,
        vectors,
    }
}

/// The file agrees with the Rust types: regenerate it with UPDATE_VECTORS=1
/// after a deliberate protocol change (and update every binding).
#[test]
fn vectors_match_the_rust_types() {
    let expected = expected_vectors();
    let path = vectors_path();
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        let text = serde_json::to_string_pretty(&expected).expect("serialises") + "\n";
        std::fs::write(&path, text).expect("writes vectors");
    }
    let text = std::fs::read_to_string(&path).expect("tests/vectors/frames.json exists");
    let on_disk: VectorFile = serde_json::from_str(&text).expect("vectors file parses");
    assert_eq!(
        on_disk, expected,
        "tests/vectors/frames.json is stale: the protocol changed"
    );
}

/// Both forms of `v` decode to the same frame, one of `known`, which
/// re-encodes to exactly the bytes on disk.
fn check_vector<T>(v: &Vector, known: &[T])
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = hex::decode(&v.msgpack).expect("hex");
    let from_mp: T = Codec::MsgPack.decode(&bytes).expect("decodes msgpack");
    let from_json: T = Codec::Json.decode(v.json.as_bytes()).expect("decodes json");
    assert_eq!(from_mp, from_json, "{}", v.name);
    assert!(known.contains(&from_mp), "{}", v.name);
    assert_eq!(
        Codec::MsgPack.encode(&from_mp).expect("encodes"),
        bytes,
        "{}",
        v.name
    );
    assert_eq!(
        Codec::Json.encode(&from_json).expect("encodes"),
        v.json.as_bytes(),
        "{}",
        v.name
    );
}

/// The bytes on disk decode to the sample frames and re-encode to the very same bytes.
#[test]
fn vectors_decode_and_reencode_exactly() {
    let text = std::fs::read_to_string(vectors_path()).expect("vectors exist");
    let file: VectorFile = serde_json::from_str(&text).expect("parses");
    let clients = samples::client_frames();
    let servers = samples::server_frames();
    assert_eq!(file.vectors.len(), clients.len() + servers.len());
    for v in &file.vectors {
        if v.direction == "client" {
            check_vector(v, &clients);
        } else {
            check_vector(v, &servers);
        }
    }
}

/// docs/PROTOCOL.md specifies every frame type the code has, with an example.
#[test]
fn protocol_doc_covers_every_frame_type() {
    let doc = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md"),
    )
    .expect("docs/PROTOCOL.md exists");
    for f in samples::client_frames() {
        let heading = format!("### `{}`", f.type_name());
        assert!(doc.contains(&heading), "PROTOCOL.md lacks {heading}");
    }
    for f in samples::server_frames() {
        let heading = format!("### `{}`", samples::server_type_name(&f));
        assert!(doc.contains(&heading), "PROTOCOL.md lacks {heading}");
    }
    for code in ErrorCode::ALL {
        assert!(
            doc.contains(&format!("`{code}`")),
            "PROTOCOL.md lacks error code {code}"
        );
    }
}

#[test]
fn unknown_fields_and_types_are_refused_with_the_id_recovered() {
    let e = Codec::Json
        .decode_client(br#"{"type":"ping","id":7,"extra":1}"#)
        .expect_err("unknown field refused");
    assert_eq!(e.id, Some(7));
    assert!(e.to_string().contains("extra"), "{e}");
    let e = Codec::Json
        .decode_client(br#"{"type":"teleport","id":8}"#)
        .expect_err("unknown type refused");
    assert_eq!(e.id, Some(8));
    let e = Codec::Json
        .decode_client(br#"{"id":9}"#)
        .expect_err("missing type refused");
    assert_eq!(e.id, Some(9));
    let e = Codec::MsgPack
        .decode_client(&[0xc1, 0x00])
        .expect_err("garbage refused");
    assert_eq!(e.id, None);
    let e = Codec::Json
        .decode_client(br#"{"type":"ack","id":1,"conv":"x","seq":-1}"#)
        .expect_err("negative seq");
    assert_eq!(e.id, Some(1));
}

#[test]
fn subprotocols_select_codecs() {
    assert_eq!(
        Codec::from_subprotocol("chatcore.v1.msgpack"),
        Some(Codec::MsgPack)
    );
    assert_eq!(
        Codec::from_subprotocol("chatcore.v1.json"),
        Some(Codec::Json)
    );
    assert_eq!(Codec::from_subprotocol("chatcore.v2.json"), None);
    assert!(Codec::Json.is_text() && !Codec::MsgPack.is_text());
}

fn s() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "\\PC{0,24}", "[a-z0-9@.+ -]{1,16}"]
}

fn uid() -> impl Strategy<Value = UserId> {
    s().prop_map(UserId)
}

fn conv() -> impl Strategy<Value = ConversationId> {
    s().prop_map(ConversationId)
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        4 => s().prop_map(|text| Content::Text { text }),
        1 => proptest::collection::vec(uid(), 0..3).prop_map(|users| Content::MembersAdded { users }),
        1 => proptest::option::of(uid()).prop_map(|new_owner| Content::MemberLeft { new_owner }),
        1 => (proptest::option::of(s()), proptest::option::of(any::<bool>())).prop_map(
            |(title, history_visible)| Content::GroupUpdated {
                title,
                description: None,
                avatar: None,
                history_visible,
            }
        ),
        1 => Just(Content::Void {}),
        1 => (s(), s(), any::<u32>(), any::<u64>(), proptest::option::of(s())).prop_map(
            |(media, mime, width, size, caption)| Content::Image { encryption: None,
                media: MediaId(media),
                mime,
                width,
                height: width / 2,
                size,
                thumbnail: None,
                caption,
            }
        ),
        1 => (s(), s(), any::<u32>(), proptest::collection::vec(any::<u8>(), 0..8)).prop_map(
            |(media, mime, duration_ms, waveform)| Content::Voice { encryption: None,
                media: MediaId(media),
                mime,
                duration_ms,
                waveform,
                size: 1,
            }
        ),
    ]
}

fn client_frame() -> impl Strategy<Value = ClientFrame> {
    let id = any::<u32>();
    let a = prop_oneof![
        (id, any::<u32>(), proptest::option::of(s())).prop_map(|(id, version, client)| {
            ClientFrame::Hello {
                id,
                version,
                client,
            }
        }),
        (id, s(), s(), s(), s(), s(), s()).prop_map(
            |(id, username, email, phone, display_name, password, device)| {
                ClientFrame::Register {
                    id,
                    username,
                    email,
                    phone,
                    display_name,
                    password,
                    device,
                }
            }
        ),
        (id, s(), s(), s()).prop_map(|(id, login, password, device)| ClientFrame::Login {
            id,
            login,
            password,
            device
        }),
        (id, s()).prop_map(|(id, token)| ClientFrame::Resume { id, token }),
        id.prop_map(|id| ClientFrame::Logout { id }),
        (id, s(), s()).prop_map(|(id, old_password, new_password)| {
            ClientFrame::ChangePassword {
                id,
                old_password,
                new_password,
            }
        }),
        (id, s()).prop_map(|(id, email)| ClientFrame::ResetRequest { id, email }),
        (id, s(), s()).prop_map(|(id, token, new_password)| ClientFrame::ResetConfirm {
            id,
            token,
            new_password
        }),
    ];
    let b = prop_oneof![
        (
            id,
            s(),
            proptest::option::of(s()),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(id, query, after, limit)| ClientFrame::SearchUsers {
                id,
                query,
                after,
                limit
            }),
        (id, uid()).prop_map(|(id, user)| ClientFrame::GetProfile { id, user }),
        (
            id,
            proptest::option::of(s()),
            proptest::option::of(s()),
            proptest::option::of(s())
        )
            .prop_map(
                |(id, display_name, about, avatar)| ClientFrame::UpdateProfile {
                    id,
                    display_name,
                    about,
                    avatar
                }
            ),
        (id, uid(), s(), content()).prop_map(|(id, to, client_id, content)| {
            ClientFrame::Send {
                media: Vec::new(),
                mentions: Vec::new(),
                rel: None,
                id,
                conv: None,
                to: Some(to),
                client_id,
                content,
            }
        }),
        (
            id,
            conv(),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(id, conv, before, limit)| ClientFrame::History {
                id,
                conv,
                before,
                limit
            }),
        (id, proptest::option::of(any::<u32>()))
            .prop_map(|(id, limit)| ClientFrame::Sync { id, limit }),
    ];
    let c = prop_oneof![
        (id, conv(), any::<u64>()).prop_map(|(id, conv, seq)| ClientFrame::Ack { id, conv, seq }),
        (id, conv(), any::<u64>()).prop_map(|(id, conv, seq)| ClientFrame::Read { id, conv, seq }),
        (id, proptest::option::of(conv())).prop_map(|(id, conv)| ClientFrame::Focus { id, conv }),
        (
            id,
            proptest::option::of(prop_oneof![
                Just(ConversationList::Main),
                Just(ConversationList::Requests)
            ]),
            proptest::option::of(s()),
            proptest::option::of(any::<u32>())
        )
            .prop_map(|(id, list, after, limit)| ClientFrame::Conversations {
                id,
                list,
                after,
                limit
            }),
        id.prop_map(|id| ClientFrame::Ping { id }),
    ];
    // Each group boxed: one union of every variant would need more stack
    // than a test thread has, in a debug build, to make a value.
    let d = prop_oneof![
        (id, conv()).prop_map(|(id, conv)| ClientFrame::Accept { id, conv }),
        (id, conv()).prop_map(|(id, conv)| ClientFrame::Decline { id, conv }),
        (
            id,
            uid(),
            proptest::option::of(conv()),
            proptest::option::of(s())
        )
            .prop_map(|(id, user, conv, reason)| ClientFrame::Report {
                id,
                user,
                conv,
                reason
            }),
    ];
    prop_oneof![a.boxed(), b.boxed(), c.boxed(), d.boxed()]
}

fn message() -> impl Strategy<Value = Message> {
    let rel = proptest::option::of((0..4u8, s()).prop_map(|(k, target)| {
        let kind = [
            RelKind::Reply,
            RelKind::Edit,
            RelKind::Reaction,
            RelKind::Delete,
        ][k as usize];
        Rel::new(kind, MessageId(target))
    }));
    (
        (s(), conv(), any::<u64>(), uid(), s(), any::<i64>()),
        (
            rel,
            proptest::collection::vec(uid(), 0..3),
            proptest::option::of(any::<i64>()),
            content(),
            proptest::collection::vec(s().prop_map(MediaId), 0..2),
        ),
    )
        .prop_map(
            |(
                (id, conv, seq, from, client_id, ts),
                (rel, mentions, expires_at, content, media),
            )| {
                Message {
                    media,
                    id: MessageId(id),
                    conv,
                    seq,
                    from,
                    client_id,
                    ts,
                    rel,
                    mentions,
                    expires_at,
                    content,
                }
            },
        )
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    let id = any::<u32>();
    prop_oneof![
        message().prop_map(|message| ServerFrame::Message {
            message: message.into()
        }),
        (id, s(), conv(), any::<u64>(), any::<i64>(), any::<bool>()).prop_map(
            |(id, mid, conv, seq, ts, duplicate)| ServerFrame::Sent {
                expires_at: None,
                id,
                message_id: MessageId(mid),
                conv,
                seq,
                ts,
                duplicate
            }
        ),
        (
            id,
            conv(),
            proptest::collection::vec(message(), 0..4),
            any::<bool>()
        )
            .prop_map(|(id, conv, messages, more)| ServerFrame::Messages {
                related: Vec::new(),
                id,
                conv,
                messages,
                more
            }),
        (uid(), any::<bool>(), proptest::option::of(any::<i64>())).prop_map(
            |(user, online, last_seen)| ServerFrame::Presence {
                presence: Presence {
                    user,
                    online,
                    last_seen
                }
            }
        ),
        (
            proptest::option::of(id),
            proptest::sample::select(ErrorCode::ALL.to_vec()),
            s(),
            proptest::option::of(s()),
            proptest::collection::vec(s(), 0..3),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(id, code, message, field, violations, retry_after_ms)| {
                ServerFrame::Error {
                    id,
                    code,
                    message,
                    field,
                    violations,
                    retry_after_ms,
                }
            }),
        (conv(), uid(), s(), any::<u64>()).prop_map(|(conv, from, mid, seq)| {
            ServerFrame::Alert {
                conv,
                from,
                message_id: MessageId(mid),
                seq,
            }
        }),
        id.prop_map(|id| ServerFrame::Ok { id }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn client_frames_round_trip_in_both_codecs(frame in client_frame()) {
        for codec in [Codec::MsgPack, Codec::Json] {
            let bytes = codec.encode(&frame).expect("encodes");
            let back = codec.decode_client(&bytes).expect("decodes");
            prop_assert_eq!(&back, &frame);
        }
    }

    #[test]
    fn server_frames_round_trip_in_both_codecs(frame in server_frame()) {
        for codec in [Codec::MsgPack, Codec::Json] {
            // The hand-written encoder of the relay's frames writes serde's bytes.
            let mut by_hand = Vec::new();
            codec.encode_server_into(&frame, &mut by_hand).expect("encodes");
            prop_assert_eq!(&by_hand, &codec.encode(&frame).expect("encodes"));
            let bytes = codec.encode(&frame).expect("encodes");
            let back: ServerFrame = codec.decode(&bytes).expect("decodes");
            prop_assert_eq!(&back, &frame);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Codec::MsgPack.decode::<ServerFrame>(&bytes);
        let _ = Codec::Json.decode::<ServerFrame>(&bytes);
        if let Err(e) = decoding::check(&bytes, Some(peak_heap)) {
            return Err(TestCaseError::fail(e));
        }
    }

    #[test]
    fn mutated_frames_decode_alike_on_every_path(
        frame in client_frame(),
        codec in prop_oneof![Just(Codec::MsgPack), Just(Codec::Json)],
        mutations in proptest::collection::vec(mutation(), 0..4),
    ) {
        // `decode_client` reads frequent frames on fast paths and falls back
        // to the derived decoder: whatever the bytes, it must accept exactly
        // what the derived decoder accepts, as the same frame.
        let mut bytes = codec.encode(&frame).expect("encodes");
        for m in &mutations {
            m.apply(&mut bytes);
        }
        if let Err(e) = decoding::check(&bytes, Some(peak_heap)) {
            return Err(TestCaseError::fail(e));
        }
    }

    #[test]
    fn client_frames_decode_whatever_the_key_order(frame in client_frame()) {
        // serde_json's map sorts keys, so `type` mostly is not first.
        let sorted = serde_json::to_vec(&serde_json::to_value(&frame).expect("to value")).expect("encodes");
        prop_assert_eq!(Codec::Json.decode_client(&sorted).expect("decodes"), frame);
    }
}

fn read_doc() -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md"))
        .expect("docs/PROTOCOL.md exists")
}

fn has_null(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Null => true,
        serde_json::Value::Array(a) => a.iter().any(has_null),
        serde_json::Value::Object(o) => o.values().any(has_null),
        _ => false,
    }
}

/// PROTOCOL.md promises that absent optional fields are omitted, never
/// `null`: no frame the server encodes has a `null` (the samples include a
/// profile without a picture and a presence without `last_seen`).
#[test]
fn absent_optional_fields_are_omitted_as_the_document_says() {
    let doc = read_doc();
    assert!(doc.contains("Optional fields that are absent are **omitted**, never"));
    assert!(
        !doc.contains(": null"),
        "an example in PROTOCOL.md shows a null"
    );
    for v in expected_vectors().vectors {
        let json: serde_json::Value = serde_json::from_str(&v.json).expect("json");
        assert!(!has_null(&json), "{} encodes a null: {}", v.name, v.json);
    }
}

/// Every close code the engine uses is in PROTOCOL.md's table, with the
/// meaning the code has.
#[test]
fn protocol_doc_lists_every_close_code() {
    use chatcore::session::Disconnect;
    let doc = read_doc();
    for (d, words) in [
        (Disconnect::ClientClosed, "normal"),
        (Disconnect::Shutdown, "shutting down"),
        (Disconnect::AuthTimeout, "authentication timeout"),
        (Disconnect::InvalidFrames, "undecodable frames"),
        (Disconnect::UnsupportedVersion, "unsupported version"),
        (Disconnect::Overloaded, "signing in"),
        (Disconnect::Revoked, "session revoked"),
        (Disconnect::SlowConsumer, "too slow"),
        (
            Disconnect::TooManyFromAddress,
            "too many connections from this address",
        ),
        (Disconnect::TooManyForAccount, "for this account"),
    ] {
        let row = format!("| {} |", d.close_code());
        let line = doc
            .lines()
            .find(|l| l.starts_with(&row))
            .unwrap_or_else(|| panic!("PROTOCOL.md has no row for close code {}", d.close_code()));
        assert!(
            line.contains(words),
            "close code {}: {line}",
            d.close_code()
        );
    }
    // chatd's own: idle connections and server pings are documented too.
    assert!(doc.contains("idle timeout") && doc.contains("WebSocket ping every 25 s"));
    assert!(
        doc.contains("HTTP 403"),
        "a disallowed Origin is refused at HTTP"
    );
}

/// The peak heap of this thread while `f` runs, from the counting global
/// allocator that `allocation-counter` installs in this test binary.
fn peak_heap(f: &mut dyn FnMut()) -> u64 {
    allocation_counter::measure(f).bytes_max
}

/// Without the counting allocator every heap check would pass vacuously.
#[test]
fn the_heap_probe_counts() {
    let peak = peak_heap(&mut || {
        std::hint::black_box(vec![0u8; 100_000]);
    });
    assert!(peak >= 100_000, "{peak}");
}

/// One change to encoded frame bytes.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR one byte.
    Flip(Index, u8),
    /// Cut the bytes short.
    Truncate(Index),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
    /// Remove up to that many bytes.
    Remove(Index, usize),
    /// Rewrite the first MessagePack map, array or string header at or
    /// after the index into its 32-bit form, claiming that many items.
    Inflate(Index, u32),
    /// Insert a 32-bit MessagePack header (str, bin, array, map or ext,
    /// by the first number) claiming that many items.
    Claim(Index, u8, u32),
}

fn claimed_length() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(u32::MAX),
        Just(1 << 31),
        Just(1 << 16),
        0u32..64,
        any::<u32>()
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1u8..).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), 1usize..16).prop_map(|(i, n)| Mutation::Remove(i, n)),
        (any::<Index>(), claimed_length()).prop_map(|(i, n)| Mutation::Inflate(i, n)),
        (any::<Index>(), any::<u8>(), claimed_length())
            .prop_map(|(i, m, n)| Mutation::Claim(i, m, n)),
    ]
}

impl Mutation {
    fn apply(&self, bytes: &mut Vec<u8>) {
        let at = |i: &Index, bytes: &Vec<u8>| i.index(bytes.len() + 1);
        match self {
            Mutation::Flip(i, x) => {
                if !bytes.is_empty() {
                    let i = i.index(bytes.len());
                    bytes[i] ^= x;
                }
            }
            Mutation::Truncate(i) => bytes.truncate(at(i, bytes)),
            Mutation::Insert(i, b) => {
                let i = at(i, bytes);
                bytes.splice(i..i, b.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let i = at(i, bytes);
                bytes.drain(i..(i + n).min(bytes.len()));
            }
            Mutation::Inflate(i, n) => inflate(bytes, at(i, bytes), *n),
            Mutation::Claim(i, m, n) => {
                let i = at(i, bytes);
                let marker = [0xdb, 0xc6, 0xdd, 0xdf, 0xc9][usize::from(*m) % 5];
                let mut header = vec![marker];
                header.extend(n.to_be_bytes());
                if marker == 0xc9 {
                    header.push(*m); // the ext type
                }
                bytes.splice(i..i, header);
            }
        }
    }
}

/// Rewrites the first MessagePack map, array, string or binary header at
/// or after `from` into its 32-bit form, claiming `n` items.
fn inflate(bytes: &mut Vec<u8>, from: usize, n: u32) {
    let found = bytes[from..].iter().enumerate().find_map(|(k, &b)| {
        let (marker, header_len) = match b {
            0x80..=0x8f => (0xdf, 1),
            0x90..=0x9f => (0xdd, 1),
            0xa0..=0xbf => (0xdb, 1),
            0xc4 => (0xc6, 2),
            0xd9 => (0xdb, 2),
            0xda => (0xdb, 3),
            0xdc => (0xdd, 3),
            0xde => (0xdf, 3),
            _ => return None,
        };
        Some((from + k, marker, header_len))
    });
    if let Some((pos, marker, header_len)) = found {
        let end = (pos + header_len).min(bytes.len());
        let mut header = vec![marker];
        header.extend(n.to_be_bytes());
        bytes.splice(pos..end, header);
    }
}

/// Every sample frame, in both codecs, cut at every length, with each byte
/// flipped a few ways and each header inflated to claim 2^32 - 1 items: the
/// systematic cousin of the property tests above, which would only now and
/// then flip, say, a letter of `"kind": "text"` in a `send` frame.
#[test]
fn sample_frames_cut_flipped_or_inflated_anywhere_decode_alike_on_every_path() {
    for frame in samples::client_frames() {
        for codec in [Codec::MsgPack, Codec::Json] {
            let bytes = codec.encode(&frame).expect("encodes");
            for i in 0..=bytes.len() {
                let mut variants = vec![bytes[..i].to_vec()];
                let mut inflated = bytes.clone();
                inflate(&mut inflated, i, u32::MAX);
                variants.push(inflated);
                if i < bytes.len() {
                    for x in [0x01, 0x20, 0x80] {
                        let mut flipped = bytes.clone();
                        flipped[i] ^= x;
                        variants.push(flipped);
                    }
                }
                for b in &variants {
                    if let Err(e) = decoding::check(b, Some(peak_heap)) {
                        panic!("{codec:?} {}: {e}\n{b:02x?}", frame.type_name());
                    }
                }
            }
        }
    }
}

/// The fuzzer's corpus (`scripts/fuzz`) and the inputs of the bugs it found,
/// through the very check the fuzz target makes: CI runs them without a
/// nightly toolchain.
#[test]
fn fuzz_corpus_and_regressions_pass_the_decoding_check() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut checked = 0;
    for dir in [
        "corpus/decode_client_frame",
        "regressions/decode_client_frame",
    ] {
        let entries = std::fs::read_dir(fuzz.join(dir)).expect("the fuzz corpus is committed");
        for entry in entries {
            let path = entry.expect("lists the corpus").path();
            let bytes = std::fs::read(&path).expect("reads a corpus file");
            let outcome = std::panic::catch_unwind(|| decoding::check(&bytes, Some(peak_heap)));
            match outcome {
                Ok(Ok(())) => checked += 1,
                Ok(Err(e)) => panic!("{}: {e}", path.display()),
                Err(_) => panic!("{}: a decoder panicked", path.display()),
            }
        }
    }
    assert!(checked > 0, "no corpus files under {}", fuzz.display());
}

/// A frame nested as deep as a peer likes is refused within the stack of a
/// tokio worker thread (2 MiB), where chatd decodes: serde buffers a tagged
/// frame recursively, one stack frame set per level.
#[test]
fn deeply_nested_frames_are_refused_within_a_worker_stack() {
    let levels = 100_000;
    let mut json = br#"{"id":1,"x":"#.to_vec();
    json.extend(std::iter::repeat_n(b'[', levels));
    let mut msgpack = vec![0x82, 0xa2, b'i', b'd', 0x01, 0xa1, b'x'];
    msgpack.extend(std::iter::repeat_n(0x91, levels));
    msgpack.push(0xc0);
    let worker = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for (codec, bytes) in [(Codec::Json, json), (Codec::MsgPack, msgpack)] {
                assert!(codec.decode_client(&bytes).is_err(), "{codec:?}");
                decoding::check(&bytes, None).expect("decoders agree");
            }
        })
        .expect("spawns");
    worker.join().expect("no stack overflow");
}
