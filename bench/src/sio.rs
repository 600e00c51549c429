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
