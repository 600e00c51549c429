//! The two wire protocols the Rust load generator speaks: chatcore's
//! (MessagePack frames, as any client sends them) and the ceiling relay's
//! (the payload alone).
//!
//! Setup frames use chatcore's own types; the hot path encodes `send` and
//! decodes pushes with borrowed, partial views of the same schema, so the
//! client's single core stays ahead of the server's.

use anyhow::{bail, Context as _, Result};
use chatcore::model::{ConversationId, UserId};
use chatcore::protocol::{ClientFrame, Codec, ServerFrame};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use tokio_tungstenite::tungstenite::Message;

use crate::net::Ws;

/// One account of the tokens file: `username user_id token` per line.
#[derive(Clone, Debug)]
pub(crate) struct Account {
    pub(crate) username: String,
    pub(crate) user: String,
    pub(crate) token: String,
}

pub(crate) fn read_accounts(path: &std::path::Path) -> Result<Vec<Account>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut it = l.split_whitespace();
            match (it.next(), it.next(), it.next()) {
                (Some(u), Some(id), Some(t)) => Ok(Account {
                    username: u.to_owned(),
                    user: id.to_owned(),
                    token: t.to_owned(),
                }),
                _ => bail!("bad tokens line {l:?}"),
            }
        })
        .collect()
}

async fn send_frame(ws: &mut Ws, frame: &ClientFrame) -> Result<()> {
    ws.send(Message::binary(Codec::MsgPack.encode(frame)?))
        .await?;
    Ok(())
}

/// The next frame that answers request `id` (pushes before it are skipped).
async fn reply(ws: &mut Ws, id: u32) -> Result<ServerFrame> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => {
                let f: ServerFrame = Codec::MsgPack.decode(&b)?;
                if f.id() == Some(id) {
                    return Ok(f);
                }
            }
            Some(Ok(Message::Close(c))) => bail!("closed by the server: {c:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("connection ended"),
        }
    }
}

/// `hello` then `resume` with `token`; returns the signed-in user's id.
pub(crate) async fn resume(ws: &mut Ws, token: &str) -> Result<String> {
    Ok(resume_device(ws, token).await?.0)
}

/// [`resume`], with the signed-in device's id.
pub(crate) async fn resume_device(ws: &mut Ws, token: &str) -> Result<(String, String)> {
    hello(ws).await?;
    send_frame(
        ws,
        &ClientFrame::Resume {
            id: 2,
            token: token.to_owned(),
        },
    )
    .await?;
    match reply(ws, 2).await? {
        ServerFrame::Session { user, device, .. } => Ok((user.0, device.0)),
        other => bail!("resume refused: {other:?}"),
    }
}

pub(crate) async fn hello(ws: &mut Ws) -> Result<()> {
    send_frame(
        ws,
        &ClientFrame::Hello {
            id: 1,
            version: chatcore::protocol::PROTOCOL_VERSION,
            client: Some("chatcore-bench".into()),
        },
    )
    .await?;
    match reply(ws, 1).await? {
        ServerFrame::Welcome { .. } => Ok(()),
        other => bail!("hello refused: {other:?}"),
    }
}

/// A password login (argon2 on the server).
pub(crate) async fn login(ws: &mut Ws, username: &str, password: &str) -> Result<()> {
    hello(ws).await?;
    send_frame(
        ws,
        &ClientFrame::Login {
            id: 2,
            login: username.to_owned(),
            password: password.to_owned(),
            device: "bench".into(),
        },
    )
    .await?;
    match reply(ws, 2).await? {
        ServerFrame::Session { .. } => Ok(()),
        other => bail!("login refused: {other:?}"),
    }
}

/// The direct conversation with `peer`, opened if need be (both sides of a
/// pair may ask at once: they get the same one). Conversation ids are the
/// server's: a version-2 client never builds one.
pub(crate) async fn open_direct(
    ws: &mut Ws,
    peer: &str,
    encrypted: bool,
) -> Result<ConversationId> {
    send_frame(
        ws,
        &ClientFrame::OpenDirect {
            id: 4,
            user: UserId(peer.to_owned()),
            encrypted,
        },
    )
    .await?;
    match reply(ws, 4).await? {
        ServerFrame::Conversation { conversation, .. } => Ok(conversation.conv),
        other => bail!("open_direct refused: {other:?}"),
    }
}

/// A group owned by the caller with the other `members`; returns its id.
pub(crate) async fn create_group(
    ws: &mut Ws,
    title: &str,
    members: &[String],
) -> Result<ConversationId> {
    send_frame(
        ws,
        &ClientFrame::CreateGroup {
            id: 5,
            title: title.to_owned(),
            description: None,
            avatar: None,
            members: members.iter().map(|m| UserId(m.clone())).collect(),
            encrypted: false,
        },
    )
    .await?;
    match reply(ws, 5).await? {
        ServerFrame::Conversation { conversation, .. } => Ok(conversation.conv),
        other => bail!("create_group refused: {other:?}"),
    }
}

/// Looks at conversation `conv`, as a user with the chat open does: the
/// server then pushes its messages without a separate alert.
/// Accepts `conv` if it is a message request to this user; a conversation
/// this user opened itself (nothing to accept) is left as it is.
pub(crate) async fn accept_if_asked(ws: &mut Ws, conv: &ConversationId) -> Result<()> {
    send_frame(
        ws,
        &ClientFrame::Accept {
            id: 5,
            conv: conv.clone(),
        },
    )
    .await?;
    match reply(ws, 5).await? {
        ServerFrame::Conversation { .. } | ServerFrame::Error { .. } => Ok(()),
        other => bail!("accept answered {other:?}"),
    }
}

pub(crate) async fn focus(ws: &mut Ws, conv: &ConversationId) -> Result<()> {
    send_frame(
        ws,
        &ClientFrame::Focus {
            id: 3,
            conv: Some(conv.clone()),
        },
    )
    .await?;
    match reply(ws, 3).await? {
        ServerFrame::Ok { .. } => Ok(()),
        other => bail!("focus refused: {other:?}"),
    }
}

/// The first error frame in `bytes`, for a diagnostic (None if it is not one).
pub(crate) fn describe_error(bytes: &[u8]) -> Option<String> {
    match Codec::MsgPack.decode::<ServerFrame>(bytes) {
        Ok(f @ ServerFrame::Error { .. }) => Some(format!("{f:?}")),
        Ok(_) => None,
        Err(e) => Some(format!("undecodable frame: {e}")),
    }
}

/// `send` as the client encodes it (the same map as `ClientFrame::Send`).
#[derive(Serialize)]
struct SendView<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u32,
    to: &'a str,
    client_id: &'a str,
    content: TextView<'a>,
}

#[derive(Serialize, Deserialize)]
struct TextView<'a> {
    #[serde(rename = "kind", default)]
    _kind: Option<&'a str>,
    #[serde(borrow)]
    text: &'a str,
}

/// `send` of encrypted content, as a client of an encrypted conversation
/// encodes it (the same map as `ClientFrame::Send` with
/// `Content::Encrypted`).
#[derive(Serialize)]
struct EncryptedSendView<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u32,
    to: &'a str,
    client_id: &'a str,
    content: EncryptedView<'a>,
}

#[derive(Serialize)]
struct EncryptedView<'a> {
    kind: &'static str,
    algorithm: &'static str,
    device: &'a str,
    session: &'a str,
    ciphertext: &'a str,
}

/// A Megolm session id as the sending device names it (43 characters of
/// base64, an Ed25519 key's length); the server only checks its form.
pub(crate) const SESSION_ID: &str = "bWVnb2xtIHNlc3Npb24gb2YgdGhlIGJlbmNobWFyayEh";

/// `send` of `ciphertext` (prepared: the server neither can nor needs to
/// tell it from a real one) from `device` to `to`.
pub(crate) fn encode_send_encrypted(
    id: u32,
    to: &str,
    client_id: &str,
    device: &str,
    ciphertext: &str,
) -> Result<Message> {
    let frame = EncryptedSendView {
        kind: "send",
        id,
        to,
        client_id,
        content: EncryptedView {
            kind: "encrypted",
            algorithm: "megolm.v1",
            device,
            session: SESSION_ID,
            ciphertext,
        },
    };
    Ok(Message::binary(rmp_serde::to_vec_named(&frame)?))
}

/// `send` to a conversation (`conv` instead of `to`).
#[derive(Serialize)]
struct ConvSendView<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: u32,
    conv: &'a str,
    client_id: &'a str,
    content: TextView<'a>,
}

pub(crate) fn encode_conv_send(
    id: u32,
    conv: &str,
    client_id: &str,
    text: &str,
) -> Result<Message> {
    let frame = ConvSendView {
        kind: "send",
        id,
        conv,
        client_id,
        content: TextView {
            _kind: Some("text"),
            text,
        },
    };
    Ok(Message::binary(rmp_serde::to_vec_named(&frame)?))
}

pub(crate) fn encode_send(id: u32, to: &str, client_id: &str, text: &str) -> Result<Message> {
    let frame = SendView {
        kind: "send",
        id,
        to,
        client_id,
        content: TextView {
            _kind: Some("text"),
            text,
        },
    };
    Ok(Message::binary(rmp_serde::to_vec_named(&frame)?))
}

#[derive(Deserialize)]
struct TypeView<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
}

#[derive(Deserialize)]
struct PushView<'a> {
    #[serde(borrow)]
    message: MessageView<'a>,
}

#[derive(Deserialize)]
struct MessageView<'a> {
    #[serde(borrow)]
    conv: &'a str,
    seq: u64,
    #[serde(borrow)]
    content: ContentView<'a>,
}

/// Where a pushed message sits: its conversation and seq.
pub(crate) fn position(bytes: &[u8]) -> Option<(&str, u64)> {
    let p = rmp_serde::from_slice::<PushView<'_>>(bytes).ok()?;
    Some((p.message.conv, p.message.seq))
}

/// `typing` in `conv`.
pub(crate) fn encode_typing(id: u32, conv: &ConversationId, typing: bool) -> Result<Message> {
    let frame = ClientFrame::Typing {
        id,
        conv: conv.clone(),
        typing,
    };
    Ok(Message::binary(Codec::MsgPack.encode(&frame)?))
}

/// `ping`: the cheapest request there is (answered `pong`, nothing else).
pub(crate) fn encode_ping(id: u32) -> Result<Message> {
    Ok(Message::binary(
        Codec::MsgPack.encode(&ClientFrame::Ping { id })?,
    ))
}

/// `ack` then `read` of `conv` up to `seq`: the recipient's side of receipts
/// (its device has the message, and the user read it).
pub(crate) fn encode_ack_and_read(id: u32, conv: &str, seq: u64) -> Result<[Message; 2]> {
    let conv = ConversationId(conv.to_owned());
    let ack = ClientFrame::Ack {
        id,
        conv: conv.clone(),
        seq,
    };
    let read = ClientFrame::Read {
        id: id.wrapping_add(1),
        conv,
        seq,
    };
    Ok([
        Message::binary(Codec::MsgPack.encode(&ack)?),
        Message::binary(Codec::MsgPack.encode(&read)?),
    ])
}

/// A pushed entry's content: a message's text or ciphertext, or a notice
/// (neither).
#[derive(Deserialize)]
struct ContentView<'a> {
    #[serde(borrow, default)]
    text: Option<&'a str>,
    #[serde(borrow, default)]
    ciphertext: Option<&'a str>,
}

/// What a server frame means to the load generator.
pub(crate) enum Incoming<'a> {
    /// A message push: its text (or ciphertext).
    Delivered(&'a str),
    /// The acknowledgement of one of our sends.
    Ack,
    /// An error frame.
    Error,
    /// Anything else (alerts, presence, ...).
    Other(&'a str),
}

pub(crate) fn classify(bytes: &[u8]) -> Incoming<'_> {
    let Ok(t) = rmp_serde::from_slice::<TypeView<'_>>(bytes) else {
        return Incoming::Error;
    };
    match t.kind {
        "message" => match rmp_serde::from_slice::<PushView<'_>>(bytes) {
            Ok(p) => match p.message.content.text.or(p.message.content.ciphertext) {
                Some(text) => Incoming::Delivered(text),
                // A notice (a group's creation, members added, ...).
                None => Incoming::Other("notice"),
            },
            Err(_) => Incoming::Error,
        },
        "sent" => Incoming::Ack,
        "error" => Incoming::Error,
        other => Incoming::Other(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatcore::model::Content;

    #[test]
    fn the_lean_send_decodes_as_the_real_frame() {
        let Message::Binary(b) = encode_send(7, "u2", "c1", "hi").unwrap() else {
            panic!("not binary")
        };
        let f: ClientFrame = Codec::MsgPack.decode(&b).unwrap();
        assert_eq!(
            f,
            ClientFrame::Send {
                media: Vec::new(),
                mentions: Vec::new(),
                rel: None,
                id: 7,
                conv: None,
                to: Some(UserId("u2".into())),
                client_id: "c1".into(),
                content: Content::Text { text: "hi".into() },
            }
        );
    }

    #[test]
    fn the_lean_conv_send_decodes_as_the_real_frame() {
        let Message::Binary(b) = encode_conv_send(8, "g:1", "c2", "hi").unwrap() else {
            panic!("not binary")
        };
        let f: ClientFrame = Codec::MsgPack.decode(&b).unwrap();
        assert_eq!(
            f,
            ClientFrame::Send {
                media: Vec::new(),
                mentions: Vec::new(),
                rel: None,
                id: 8,
                conv: Some(ConversationId("g:1".into())),
                to: None,
                client_id: "c2".into(),
                content: Content::Text { text: "hi".into() },
            }
        );
    }

    #[test]
    fn a_notice_push_is_not_a_delivery_nor_an_error() {
        let push = |content: Content| {
            let m = chatcore::model::Message {
                media: Vec::new(),
                expires_at: None,
                mentions: Vec::new(),
                rel: None,
                id: chatcore::model::MessageId("m".into()),
                conv: ConversationId("g:1".into()),
                seq: 1,
                from: UserId("u1".into()),
                client_id: "c".into(),
                ts: 1,
                content,
            };
            Codec::MsgPack
                .encode(&ServerFrame::Message { message: m.into() })
                .unwrap()
        };
        let notice = push(Content::GroupCreated {
            title: "t".into(),
            members: vec![UserId("u2".into())],
        });
        assert!(matches!(classify(&notice), Incoming::Other("notice")));
        let text = push(Content::Text { text: "hi".into() });
        assert!(matches!(classify(&text), Incoming::Delivered("hi")));
    }
}
