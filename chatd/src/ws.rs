//! The WebSocket transport of one connection: bytes to frames and back.
//!
//! One task per connection runs three things together: chatcore's
//! [`serve`] loop, fed by a [`Reader`] that decodes WebSocket messages into
//! client frames; a writer that encodes the server frames `serve` hands it
//! and pings the client; and an idle check. The writer feeds every
//! frame already queued before one flush, so a burst costs one write.
//! When `serve` returns, the connection is closed with the code it chose,
//! unless the transport found a reason of its own first (message too large,
//! protocol violation, idle).

use bytes::BytesMut;
use chatcore::protocol::{Codec, DecodeError, ProtocolError, ServerFrame};
use chatcore::session::{serve, Inbound, PeerInfo};
use chatcore::Server;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{FutureExt, SinkExt, Stream, StreamExt};
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use crate::metrics::TransportMetrics;
use crate::queue::{queue, FrameReceiver};

/// Frames between `serve` and the writer. Small: the real queue is
/// chatcore's per-connection outbound queue; this only lets the writer see
/// that more frames are waiting and batch them into one flush.
const WRITER_QUEUE: usize = 16;
/// Most frames fed before a flush.
const MAX_BATCH: usize = 64;

/// Transport settings of every connection.
#[derive(Clone, Debug)]
pub(crate) struct WsSettings {
    /// Largest incoming message; larger closes with 1009.
    pub(crate) max_message_bytes: usize,
    /// Interval of server pings.
    pub(crate) ping_interval: Duration,
    /// Silence after which the connection is closed with 1001.
    pub(crate) idle_timeout: Duration,
    /// How long each closing step (draining, close frame, close handshake) may take.
    pub(crate) close_timeout: Duration,
}

impl WsSettings {
    /// tungstenite's limits, all set explicitly.
    pub(crate) fn config(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            // Per-connection memory: tungstenite keeps this buffer for the
            // connection's life and zero-fills it up to this size before
            // every read, so it is all resident. Client frames are 100-200
            // bytes: 1 KiB still takes several per read under load. A
            // larger message grows the buffer to its size (up to the
            // limit), and tungstenite keeps that capacity afterwards.
            .read_buffer_size(1024)
            .max_message_size(Some(self.max_message_bytes))
            .max_frame_size(Some(self.max_message_bytes))
            // Frames are buffered up to this much before being written,
            // and always written at the writer's flush.
            .write_buffer_size(16 * 1024)
            // Only reached when writes to the socket fail; must hold the
            // largest server frame (a full history page), so it is generous.
            .max_write_buffer_size(32 << 20)
            .accept_unmasked_frames(false)
        // tungstenite implements no compression extension: none is negotiated.
    }
}

/// What reader, writer and closer share.
struct ConnState {
    started: Instant,
    /// Milliseconds after `started` of the last message received.
    last_rx_ms: AtomicU64,
    /// A close decided by the transport; the first one wins.
    close: Mutex<Option<(u16, &'static str)>>,
    /// The incoming byte stream is unusable (framing lost): do not read it as WebSocket again.
    broken: AtomicBool,
}

impl ConnState {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_rx_ms.store(ms, Ordering::Relaxed);
    }

    fn last_rx(&self) -> Instant {
        self.started + Duration::from_millis(self.last_rx_ms.load(Ordering::Relaxed))
    }

    fn set_close(&self, code: u16, reason: &'static str) {
        let mut c = self.close.lock().unwrap_or_else(|p| p.into_inner());
        c.get_or_insert((code, reason));
    }

    fn close(&self) -> Option<(u16, &'static str)> {
        *self.close.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Decodes WebSocket messages into client frames for `serve`.
struct Reader<S> {
    stream: SplitStream<WebSocketStream<S>>,
    codec: Codec,
    state: Arc<ConnState>,
    done: bool,
}

impl<S> Reader<S> {
    /// Ends the stream; `close` is the transport's reason, if any.
    fn end(&mut self, close: Option<(u16, &'static str)>, broken: bool) -> Poll<Option<Inbound>> {
        if let Some((code, reason)) = close {
            self.state.set_close(code, reason);
        }
        if broken {
            self.state.broken.store(true, Ordering::Relaxed);
        }
        self.done = true;
        Poll::Ready(None)
    }
}

impl<S> Stream for Reader<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    type Item = Inbound;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Inbound>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            let msg = match self.stream.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => return self.end(None, false),
                Poll::Ready(Some(Ok(msg))) => msg,
                Poll::Ready(Some(Err(e))) => {
                    tracing::debug!(error = %e, "websocket read failed");
                    return match e {
                        WsError::Capacity(_) => self.end(Some((1009, "message too large")), true),
                        WsError::Protocol(_) => self.end(Some((1002, "protocol error")), true),
                        WsError::Utf8(_) => {
                            self.end(Some((1007, "invalid UTF-8 in text message")), true)
                        }
                        WsError::ConnectionClosed | WsError::AlreadyClosed => self.end(None, false),
                        _ => self.end(None, true),
                    };
                }
            };
            self.state.touch();
            let codec = self.codec;
            return Poll::Ready(Some(match msg {
                Message::Binary(b) if !codec.is_text() => codec.decode_client(&b),
                Message::Text(t) if codec.is_text() => codec.decode_client(t.as_bytes()),
                Message::Binary(_) => Err(wrong_kind("a binary message on a JSON connection")),
                Message::Text(_) => Err(wrong_kind("a text message on a MessagePack connection")),
                Message::Close(_) => return self.end(None, false),
                // Pings are answered by tungstenite; pongs only prove liveness.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }));
        }
    }
}

fn wrong_kind(what: &str) -> DecodeError {
    DecodeError {
        id: None,
        error: ProtocolError::Decode(format!(
            "{what}: JSON frames travel as text messages, MessagePack frames as binary ones"
        )),
    }
}

/// Serves one upgraded connection until it ends, then closes it.
pub(crate) async fn run<S>(
    io: S,
    server: Arc<Server>,
    peer: PeerInfo,
    codec: Codec,
    settings: Arc<WsSettings>,
    shutdown: CancellationToken,
    metrics: Arc<TransportMetrics>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    // Built without an `.await`: that constructor completes at its first
    // poll, and awaiting it would reserve its state (and `io`'s) in this
    // future, which lives as long as the connection.
    let Some(ws) = WebSocketStream::from_raw_socket(
        io,
        tokio_tungstenite::tungstenite::protocol::Role::Server,
        Some(settings.config()),
    )
    .now_or_never() else {
        tracing::error!("the WebSocket stream could not be set up at once");
        return;
    };
    let (mut sink, stream) = ws.split();
    let state = Arc::new(ConnState {
        started: Instant::now(),
        last_rx_ms: AtomicU64::new(0),
        close: Mutex::new(None),
        broken: AtomicBool::new(false),
    });
    let mut reader = Reader {
        stream,
        codec,
        state: state.clone(),
        done: false,
    };
    // Cancelled by the server's shutdown, or by the writer (idle, write failure).
    let conn_token = shutdown.child_token();
    let (out_tx, out_rx) = queue(WRITER_QUEUE);

    let disconnect = {
        let session = serve(server, peer, &mut reader, out_tx, conn_token.clone());
        let writer = write_loop(&mut sink, out_rx, codec, settings.ping_interval);
        tokio::pin!(session, writer);
        let mut writer_done = false;
        let mut idle = false;
        let disconnect = loop {
            // Checked here rather than in the writer, so that a writer stuck
            // on a dead peer's full socket cannot keep the connection alive.
            let idle_at = state.last_rx() + settings.idle_timeout;
            tokio::select! {
                d = &mut session => break d,
                r = &mut writer, if !writer_done => {
                    writer_done = true;
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "websocket write failed");
                        state.set_close(1011, "transport error");
                        state.broken.store(true, Ordering::Relaxed);
                        conn_token.cancel();
                    }
                }
                _ = tokio::time::sleep_until(idle_at), if !idle => {
                    if state.last_rx() + settings.idle_timeout <= Instant::now() {
                        idle = true;
                        state.set_close(1001, "idle timeout");
                        conn_token.cancel();
                    }
                }
            }
        };
        // `serve` has closed its end: let the writer send what is queued.
        if !writer_done
            && !matches!(
                tokio::time::timeout(settings.close_timeout, &mut writer).await,
                Ok(Ok(()))
            )
        {
            state.broken.store(true, Ordering::Relaxed);
        }
        disconnect
    };

    // Boxed: the closing steps' state (timers, a drain buffer) would
    // otherwise be reserved in every connection's future for its whole life.
    Box::pin(close(reader, sink, state, disconnect, settings, metrics)).await;
}

/// Closes the connection with the transport's or `serve`'s code: the close
/// frame, then the closing handshake (or, if framing was lost, a drain).
async fn close<S>(
    reader: Reader<S>,
    mut sink: SplitSink<WebSocketStream<S>, Message>,
    state: Arc<ConnState>,
    disconnect: chatcore::session::Disconnect,
    settings: Arc<WsSettings>,
    metrics: Arc<TransportMetrics>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (code, reason) = state
        .close()
        .unwrap_or((disconnect.close_code(), disconnect.reason()));
    tracing::debug!(code, reason, ?disconnect, "closing connection");
    let close = Message::Close(Some(CloseFrame {
        code: CloseCode::from(code),
        reason: reason.into(),
    }));
    let sent = matches!(
        tokio::time::timeout(settings.close_timeout, sink.send(close)).await,
        Ok(Ok(()))
    );
    if !sent {
        return;
    }
    metrics.closed(code);
    let Ok(mut ws) = reader.stream.reunite(sink) else {
        return;
    };
    if state.broken.load(Ordering::Relaxed) {
        // The framing is lost: end our side (FIN after the close frame) and
        // discard what the client still sends until it closes too, so that
        // unread bytes do not turn our close into a reset that could destroy
        // the close frame before the client reads it.
        let io = ws.get_mut();
        let _ = tokio::time::timeout(settings.close_timeout, async {
            let _ = io.shutdown().await;
            let mut buf = vec![0u8; 4096];
            while matches!(io.read(&mut buf).await, Ok(n) if n > 0) {}
        })
        .await;
    } else {
        // The closing handshake: wait for the client's close frame.
        let _ = tokio::time::timeout(settings.close_timeout, async {
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
}

/// Writes what `serve` sends, and pings. Returns when `serve` has closed
/// the queue and every frame has been written.
async fn write_loop<S>(
    sink: &mut SplitSink<WebSocketStream<S>, Message>,
    mut frames: FrameReceiver,
    codec: Codec,
    ping_interval: Duration,
) -> Result<(), WsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        // Per batch, not per connection: an idle connection keeps no room.
        let mut batch = Vec::new();
        tokio::select! {
            open = poll_fn(|cx| frames.poll_take(cx, &mut batch, MAX_BATCH)) => {
                if !open {
                    return sink.flush().await;
                }
                // Everything waiting goes out with one flush, encoded into
                // one buffer of which each message is a slice.
                let mut buf = BytesMut::with_capacity(batch.len() * Codec::FRAME_CAPACITY);
                for frame in &batch {
                    if let Some(msg) = encode(codec, frame, &mut buf) {
                        sink.feed(msg).await?;
                    }
                }
                sink.flush().await?;
            }
            _ = ping.tick() => sink.send(Message::Ping(Default::default())).await?,
        }
    }
}

/// One frame as a WebSocket message, its bytes split off `buf`.
fn encode(codec: Codec, frame: &ServerFrame, buf: &mut BytesMut) -> Option<Message> {
    if let Err(e) = codec.encode_server_into(frame, &mut Appender(buf)) {
        // A bug (every frame type encodes); the frame is lost, the connection lives.
        tracing::error!(error = %e, "cannot encode a server frame");
        buf.clear();
        return None;
    }
    let bytes = buf.split().freeze();
    if !codec.is_text() {
        return Some(Message::Binary(bytes));
    }
    match Utf8Bytes::try_from(bytes) {
        Ok(text) => Some(Message::Text(text)),
        Err(e) => {
            tracing::error!(error = %e, "JSON frame is not UTF-8");
            None
        }
    }
}

/// Appends to a `BytesMut`. `bytes`' own `Writer` goes through the generic
/// `BufMut::put`, a loop of calls per write; an encoder writes a few bytes
/// at a time, dozens of times per frame.
struct Appender<'a>(&'a mut BytesMut);

impl std::io::Write for Appender<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
