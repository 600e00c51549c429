//! The codecs: exact agreement with tests/vectors/frames.json, round trips
//! of arbitrary frames, and no panic on arbitrary bytes.

use chatcore::model::{Content, ConversationId, Message, MessageId, Presence, UserId};
use chatcore::protocol::{ClientFrame, Codec, ErrorCode, ServerFrame};
use chatcore::testkit::samples;
use proptest::prelude::*;
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
        vectors.push(vector("client", f.type_name(), &f));
    }
    for f in samples::server_frames() {
        vectors.push(vector("server", samples::server_type_name(&f), &f));
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
    s().prop_map(|text| Content::Text { text })
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
                id,
                to,
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
        id.prop_map(|id| ClientFrame::Conversations { id }),
        id.prop_map(|id| ClientFrame::Ping { id }),
    ];
    prop_oneof![a, b, c]
}

fn message() -> impl Strategy<Value = Message> {
    (
        s(),
        conv(),
        any::<u64>(),
        uid(),
        s(),
        any::<i64>(),
        content(),
    )
        .prop_map(|(id, conv, seq, from, client_id, ts, content)| Message {
            id: MessageId(id),
            conv,
            seq,
            from,
            client_id,
            ts,
            content,
        })
}

fn server_frame() -> impl Strategy<Value = ServerFrame> {
    let id = any::<u32>();
    prop_oneof![
        message().prop_map(|message| ServerFrame::Message {
            message: message.into()
        }),
        (
            id,
            conv(),
            proptest::collection::vec(message(), 0..4),
            any::<bool>()
        )
            .prop_map(|(id, conv, messages, more)| ServerFrame::Messages {
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
        (conv(), uid(), s(), any::<u64>(), any::<u64>()).prop_map(
            |(conv, from, mid, seq, unread)| ServerFrame::Alert {
                conv,
                from,
                message_id: MessageId(mid),
                seq,
                unread
            }
        ),
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
            let bytes = codec.encode(&frame).expect("encodes");
            let back: ServerFrame = codec.decode(&bytes).expect("decodes");
            prop_assert_eq!(&back, &frame);
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = Codec::MsgPack.decode_client(&bytes);
        let _ = Codec::Json.decode_client(&bytes);
        let _ = Codec::MsgPack.decode::<ServerFrame>(&bytes);
    }

    #[test]
    fn truncated_and_mutated_frames_never_panic_and_both_decoders_agree(frame in client_frame(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        // `decode_client` reads frequent frames on a fast path and falls
        // back to the derived decoder: it must accept exactly what the
        // derived decoder accepts, as the same frame.
        for codec in [Codec::MsgPack, Codec::Json] {
            let bytes = codec.encode(&frame).expect("encodes");
            let mut mutated = bytes.clone();
            if !mutated.is_empty() {
                let i = flip.0.index(mutated.len());
                mutated[i] ^= flip.1;
            }
            for b in [&bytes[..cut.index(bytes.len() + 1)], &mutated[..]] {
                let fast = codec.decode_client(b).ok();
                let derived = codec.decode::<ClientFrame>(b).ok();
                prop_assert_eq!(fast, derived, "{:?} {:?}", codec, b);
            }
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
