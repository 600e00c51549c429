//! A lean Rust client of the Socket.IO peer: Engine.IO 4 over a plain
//! WebSocket and Socket.IO packets in `socket.io-msgpack-parser`'s
//! encoding (a MessagePack map `{type, data, nsp, id}` per binary frame),
//! so the peer is driven as hard as chatd by the same generator.

use anyhow::{bail, Result};
use futures_util::{SinkExt as _, StreamExt as _};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Ws};

/// Socket.IO packet types.
const CONNECT: u8 = 0;
const EVENT: u8 = 2;
const ACK: u8 = 3;
const CONNECT_ERROR: u8 = 4;

#[derive(Serialize)]
struct ConnectPacket<'a> {
    #[serde(rename = "type")]
    kind: u8,
    data: Auth<'a>,
    nsp: &'static str,
}

#[derive(Serialize)]
struct Auth<'a> {
    token: &'a str,
}

#[derive(Serialize)]
struct SendPacket<'a> {
    #[serde(rename = "type")]
    kind: u8,
    data: (&'static str, SendBody<'a>),
    nsp: &'static str,
    id: u32,
}

#[derive(Serialize)]
struct SendBody<'a> {
    to: &'a str,
    client_id: &'a str,
    text: &'a str,
}

#[derive(Deserialize)]
struct TypeView {
    #[serde(rename = "type")]
    kind: u8,
}

#[derive(Deserialize)]
struct EventView<'a> {
    #[serde(borrow)]
    data: (&'a str, MessageView<'a>),
}

#[derive(Deserialize)]
struct MessageView<'a> {
    #[serde(borrow)]
    text: &'a str,
}

/// Opens a Socket.IO connection authenticated with `token`.
pub(crate) async fn connect(addr: SocketAddr, src: std::net::Ipv4Addr, token: &str) -> Result<Ws> {
    let mut ws = net::connect(
        addr,
        "/socket.io/?EIO=4&transport=websocket",
        src,
        None,
        false,
    )
    .await?;
    // Engine.IO open packet: `0{...}`.
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.starts_with('0') => {}
        other => bail!("no engine.io open packet: {other:?}"),
    }
    let p = ConnectPacket {
        kind: CONNECT,
        data: Auth { token },
        nsp: "/",
    };
    ws.send(Message::binary(rmp_serde::to_vec_named(&p)?))
        .await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => match rmp_serde::from_slice::<TypeView>(&b) {
                Ok(t) if t.kind == CONNECT => return Ok(ws),
                Ok(t) if t.kind == CONNECT_ERROR => bail!("socket.io refused the token"),
                _ => {}
            },
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => ws.send(Message::text("3")).await?,
            Some(Ok(_)) => {}
            other => bail!("socket.io connect failed: {other:?}"),
        }
    }
}

/// The `send` event, with an acknowledgement id.
pub(crate) fn encode_send(id: u32, to: &str, client_id: &str, text: &str) -> Result<Message> {
    let p = SendPacket {
        kind: EVENT,
        data: (
            "send",
            SendBody {
                to,
                client_id,
                text,
            },
        ),
        nsp: "/",
        id,
    };
    Ok(Message::binary(rmp_serde::to_vec_named(&p)?))
}

/// An event with one argument and an acknowledgement id.
#[derive(Serialize)]
struct EventPacket<'a, T> {
    #[serde(rename = "type")]
    kind: u8,
    data: (&'a str, T),
    nsp: &'static str,
    id: u32,
}

/// An acknowledgement with one argument.
#[derive(Deserialize)]
struct AckView<T> {
    data: (T,),
    id: u32,
}

/// Emits `event` with `body` and waits for its acknowledgement's argument
/// (pushes before it are skipped, pings answered).
async fn request<T: Serialize, R: serde::de::DeserializeOwned>(
    ws: &mut Ws,
    id: u32,
    event: &str,
    body: T,
) -> Result<R> {
    let p = EventPacket {
        kind: EVENT,
        data: (event, body),
        nsp: "/",
        id,
    };
    ws.send(Message::binary(rmp_serde::to_vec_named(&p)?))
        .await?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Binary(b))) => match rmp_serde::from_slice::<TypeView>(&b) {
                Ok(t) if t.kind == ACK => {
                    let a: AckView<R> = rmp_serde::from_slice(&b)?;
                    if a.id == id {
                        return Ok(a.data.0);
                    }
                }
                _ => {}
            },
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => ws.send(Message::text("3")).await?,
            Some(Ok(_)) => {}
            other => bail!("socket.io {event} failed: {other:?}"),
        }
    }
}

#[derive(Serialize)]
struct CreateGroup<'a> {
    title: &'a str,
    members: &'a [String],
}

#[derive(Serialize)]
struct GroupRef<'a> {
    conv: &'a str,
}

/// The peer's answer to `create_group` and `join_group`.
#[derive(Deserialize)]
struct GroupAck {
    #[serde(default)]
    conv: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

/// Creates a group of the caller and `members` (user ids) on the peer;
/// returns its id (the room its members join).
pub(crate) async fn create_group(ws: &mut Ws, title: &str, members: &[String]) -> Result<String> {
    let a: GroupAck = request(ws, 1, "create_group", CreateGroup { title, members }).await?;
    match (a.conv, a.error) {
        (Some(conv), None) => Ok(conv),
        (_, e) => bail!("socket.io create_group refused: {e:?}"),
    }
}

/// Joins the room of group `conv` (the peer checks membership).
pub(crate) async fn join_group(ws: &mut Ws, conv: &str) -> Result<()> {
    let a: GroupAck = request(ws, 2, "join_group", GroupRef { conv }).await?;
    match a.error {
        None => Ok(()),
        Some(e) => bail!("socket.io join_group refused: {e}"),
    }
}

#[derive(Serialize)]
struct GroupSendBody<'a> {
    conv: &'a str,
    client_id: &'a str,
    text: &'a str,
}

/// The `send` event to a group, with an acknowledgement id.
pub(crate) fn encode_group_send(
    id: u32,
    conv: &str,
    client_id: &str,
    text: &str,
) -> Result<Message> {
    let p = EventPacket {
        kind: EVENT,
        data: (
            "send",
            GroupSendBody {
                conv,
                client_id,
                text,
            },
        ),
        nsp: "/",
        id,
    };
    Ok(Message::binary(rmp_serde::to_vec_named(&p)?))
}

/// What a frame from the Socket.IO server means to the generator.
pub(crate) enum Incoming<'a> {
    Delivered(&'a str),
    Ack,
    /// An Engine.IO ping, to be answered with `3`.
    Ping,
    Other,
}

pub(crate) fn classify(msg: &Message) -> Incoming<'_> {
    match msg {
        Message::Binary(b) => match rmp_serde::from_slice::<TypeView>(b) {
            Ok(t) if t.kind == EVENT => match rmp_serde::from_slice::<EventView<'_>>(b) {
                Ok(e) if e.data.0 == "message" => Incoming::Delivered(e.data.1.text),
                _ => Incoming::Other,
            },
            Ok(t) if t.kind == ACK => Incoming::Ack,
            _ => Incoming::Other,
        },
        Message::Text(t) if t.as_str() == "2" => Incoming::Ping,
        _ => Incoming::Other,
    }
}
