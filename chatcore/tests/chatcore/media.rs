//! Media messages through whole sessions: a photo, a file and a voice note
//! listing their uploaded files in the envelope; what is refused (an
//! unknown or malformed id, a content whose file is not listed, a file as
//! a reaction, a thumbnail too large, a file's key in the clear); an encrypted message listing its
//! files beside the ciphertext; what a version-7 client sees; a deletion
//! dropping the list.

use std::sync::Arc;

use chatcore::model::{Content, ConversationId, MediaId, Message, Rel, RelKind};
use chatcore::protocol::{ClientFrame, ErrorCode, ServerFrame};
use chatcore::testkit::model::fast_config;
use chatcore::{Backends, Server};
use futures_util::stream;

use crate::life::history;
use crate::sessions::{contacts, Client, PW};

/// A file uploaded straight into the server's blob store.
async fn uploaded(s: &Server, bytes: &'static [u8]) -> MediaId {
    let id = MediaId::generate();
    let body = Box::pin(stream::iter([Ok(bytes::Bytes::from_static(bytes))]));
    s.backends().blobs.put(&id, body, 1 << 20).await.unwrap();
    id
}

async fn send(
    c: &mut Client,
    conv: &ConversationId,
    client_id: &str,
    rel: Option<Rel>,
    media: Vec<MediaId>,
    content: Content,
) -> ServerFrame {
    let conv = conv.clone();
    c.req(|id| ClientFrame::Send {
        id,
        conv: Some(conv),
        to: None,
        client_id: client_id.into(),
        rel,
        mentions: Vec::new(),
        media,
        content,
    })
    .await
}

fn image(media: &MediaId) -> Content {
    Content::Image {
        encryption: None,
        media: media.clone(),
        mime: "image/png".into(),
        width: 4,
        height: 3,
        size: 8,
        thumbnail: Some("iVBORw0KGgo".into()),
        caption: Some("the view".into()),
    }
}

fn code(f: &ServerFrame) -> Option<ErrorCode> {
    match f {
        ServerFrame::Error { code, .. } => Some(*code),
        _ => None,
    }
}

fn pushed(frames: &[ServerFrame]) -> Vec<Message> {
    frames
        .iter()
        .filter_map(|f| match f {
            ServerFrame::Message { message } => Some(Message::clone(message)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_photo_a_file_and_a_voice_note_carry_their_files_and_bad_ones_are_refused() {
    let s: Arc<Server> = Server::new(Backends::memory(), fast_config()).unwrap();
    let (mut a, mut b, _alice, _bob, conv) = contacts(&s).await;
    let photo = uploaded(&s, b"\x89PNG....").await;
    let doc = uploaded(&s, b"%PDF-1.7").await;
    let voice = uploaded(&s, b"OggS....").await;

    let r = send(
        &mut a,
        &conv,
        "p1",
        None,
        vec![photo.clone()],
        image(&photo),
    )
    .await;
    assert!(matches!(r, ServerFrame::Sent { .. }), "{r:?}");
    let file = Content::File {
        encryption: None,
        media: doc.clone(),
        name: "report.pdf".into(),
        mime: "application/pdf".into(),
        size: 8,
    };
    let r = send(&mut a, &conv, "f1", None, vec![doc.clone()], file.clone()).await;
    assert!(matches!(r, ServerFrame::Sent { .. }), "{r:?}");
    let note = Content::Voice {
        encryption: None,
        media: voice.clone(),
        mime: "audio/ogg".into(),
        duration_ms: 2_500,
        waveform: vec![0, 40, 200, 90],
        size: 8,
    };
    let r = send(&mut a, &conv, "v1", None, vec![voice.clone()], note.clone()).await;
    assert!(matches!(r, ServerFrame::Sent { .. }), "{r:?}");
    let got = pushed(&b.drain().await);
    assert_eq!(got.len(), 3);
    assert_eq!(
        (&got[0].media, &got[0].content),
        (&vec![photo.clone()], &image(&photo))
    );
    assert_eq!(
        (&got[1].media, &got[1].content),
        (&vec![doc.clone()], &file)
    );
    assert_eq!(
        (&got[2].media, &got[2].content),
        (&vec![voice.clone()], &note)
    );

    // Refused, nothing stored: an unknown file, a malformed id, a content
    // whose file is not listed, a file as a reaction, a thumbnail too large.
    let unknown = MediaId::generate();
    let r = send(
        &mut a,
        &conv,
        "x1",
        None,
        vec![unknown.clone()],
        image(&unknown),
    )
    .await;
    assert_eq!(code(&r), Some(ErrorCode::NotFound), "{r:?}");
    let bad = MediaId::from("../../etc/passwd");
    let r = send(&mut a, &conv, "x2", None, vec![bad.clone()], image(&bad)).await;
    assert_eq!(code(&r), Some(ErrorCode::InvalidArgument), "{r:?}");
    let r = send(&mut a, &conv, "x3", None, vec![doc.clone()], image(&photo)).await;
    assert_eq!(code(&r), Some(ErrorCode::InvalidArgument), "{r:?}");
    let first = got[0].id.clone();
    let reaction = Some(Rel::new(RelKind::Reaction, first.clone()));
    let r = send(
        &mut a,
        &conv,
        "x4",
        reaction,
        vec![photo.clone()],
        image(&photo),
    )
    .await;
    assert_eq!(code(&r), Some(ErrorCode::InvalidArgument), "{r:?}");
    let mut big = image(&photo);
    if let Content::Image { thumbnail, .. } = &mut big {
        *thumbnail = Some("A".repeat(11_000));
    }
    let r = send(&mut a, &conv, "x5", None, vec![photo.clone()], big).await;
    assert!(
        matches!(
            code(&r),
            Some(ErrorCode::InvalidArgument | ErrorCode::TooLarge)
        ),
        "{r:?}"
    );
    // A file's key sent in the clear would hand it to the server.
    let mut keyed = image(&photo);
    if let Content::Image { encryption, .. } = &mut keyed {
        *encryption = Some(chatcore::model::FileEncryption {
            key: "A".repeat(43),
            iv: "A".repeat(16),
            sha256: "0".repeat(64),
        });
    }
    let r = send(&mut a, &conv, "x6", None, vec![photo.clone()], keyed).await;
    assert_eq!(code(&r), Some(ErrorCode::InvalidArgument), "{r:?}");
    assert!(
        pushed(&b.drain().await).is_empty(),
        "nothing of those was stored"
    );

    // A version-7 client reads what a media message was, in text.
    let mut old = Client::connect_version(&s, 7).await;
    assert!(matches!(
        old.login("bob", PW).await,
        ServerFrame::Session { .. }
    ));
    let (messages, _) = history(&mut old, &conv, None, 10).await;
    let texts: Vec<&Content> = messages.iter().skip(1).map(|m| &m.content).collect();
    assert_eq!(
        texts,
        [
            &Content::Text {
                text: "📷 Photo: the view".into()
            },
            &Content::Text {
                text: "📎 File: report.pdf".into()
            },
            &Content::Text {
                text: "🎤 Voice message".into()
            },
        ]
    );
    assert!(messages.iter().all(|m| m.media.is_empty()));

    // Deleted for everyone: the list goes with the content.
    let delete = Some(Rel::new(RelKind::Delete, first.clone()));
    let r = send(&mut a, &conv, "d1", delete, Vec::new(), Content::Deleted {}).await;
    assert!(matches!(r, ServerFrame::Sent { .. }), "{r:?}");
    let (messages, _) = history(&mut b, &conv, None, 10).await;
    let gone = messages.iter().find(|m| m.id == first).unwrap();
    assert_eq!((gone.media.len(), &gone.content), (0, &Content::Deleted {}));
}
