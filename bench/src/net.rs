//! Connecting many WebSocket clients to one server on loopback.

use anyhow::{Context as _, Result};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

/// A client WebSocket over plain TCP.
pub(crate) type Ws = WebSocketStream<TcpStream>;

/// Connections per source address: below the ~28k ephemeral ports of
/// one (source, destination) address pair.
const PER_SOURCE: usize = 4_000;

/// Moves every scenario to fresh source addresses: the ports the last one
/// left in TIME_WAIT stay taken for a minute, and `bind` to a crowded
/// address searches its port range in the kernel, stalling the generator.
static EPOCH: AtomicUsize = AtomicUsize::new(0);

/// Starts a new scenario (see [`EPOCH`]).
pub(crate) fn next_epoch() {
    EPOCH.fetch_add(1, Ordering::Relaxed);
}

/// The source address of connection `i`: 127.0.0.10 and up, one per
/// [`PER_SOURCE`] connections, so N can exceed the ephemeral port range.
pub(crate) fn source_for(i: usize) -> Ipv4Addr {
    let k = 10 + (EPOCH.load(Ordering::Relaxed) * 8 + i / PER_SOURCE) % 240;
    Ipv4Addr::new(127, 0, 0, k as u8)
}

/// Client buffers: `small` for idle connections (the server is measured,
/// not the client, but 100k clients must fit in this process too).
pub(crate) fn client_config(small: bool) -> WebSocketConfig {
    let buf = if small { 1024 } else { 64 * 1024 };
    WebSocketConfig::default()
        .read_buffer_size(buf)
        .write_buffer_size(0)
        .max_write_buffer_size(16 << 20)
        .max_message_size(Some(16 << 20))
}

/// Opens a WebSocket to `ws://{addr}{path}` from source address `src`,
/// offering `subprotocol`.
pub(crate) async fn connect(
    addr: SocketAddr,
    path: &str,
    src: Ipv4Addr,
    subprotocol: Option<&str>,
    small: bool,
) -> Result<Ws> {
    let socket = TcpSocket::new_v4()?;
    socket
        .bind(SocketAddr::from((src, 0)))
        .with_context(|| format!("cannot bind {src}"))?;
    let stream = socket
        .connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr} from {src}"))?;
    stream.set_nodelay(true)?;
    let mut req = format!("ws://{addr}{path}").into_client_request()?;
    if let Some(p) = subprotocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_str(p)?);
    }
    let (ws, _) =
        tokio_tungstenite::client_async_with_config(req, stream, Some(client_config(small)))
            .await
            .context("websocket handshake failed")?;
    Ok(ws)
}
