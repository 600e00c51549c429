//! The listener and the HTTP side: routing, health, metrics, static files,
//! and the WebSocket upgrade (handshake checks, then [`crate::ws::run`]).

use base64::Engine as _;
use chatcore::protocol::Codec;
use chatcore::session::PeerInfo;
use chatcore::Server;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::metrics::{Rejection, TransportMetrics};
use crate::ws::WsSettings;

/// HTTP connections beyond `max_connections` WebSockets, for probes and page loads.
const HTTP_SLACK: usize = 256;
/// Time a client has to send its request headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

type Body = Full<Bytes>;

/// What every request handler needs.
pub(crate) struct App {
    pub(crate) server: Arc<Server>,
    pub(crate) ws: Arc<WsSettings>,
    /// Exact `Origin` values allowed to open a WebSocket.
    pub(crate) allowed_origins: Vec<String>,
    pub(crate) max_connections: usize,
    /// WebSocket connections open now (counted from the upgrade).
    ws_connections: Arc<AtomicUsize>,
    pub(crate) metrics: Arc<TransportMetrics>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tracker: TaskTracker,
    /// Bounds TCP connections, WebSocket or not.
    tcp_permits: Arc<Semaphore>,
}

impl App {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        server: Arc<Server>,
        ws: WsSettings,
        allowed_origins: Vec<String>,
        max_connections: usize,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Arc<Self> {
        Arc::new(Self {
            server,
            ws: Arc::new(ws),
            allowed_origins,
            max_connections,
            ws_connections: Arc::new(AtomicUsize::new(0)),
            metrics: Arc::new(TransportMetrics::default()),
            shutdown,
            tracker,
            tcp_permits: Arc::new(Semaphore::new(max_connections.saturating_add(HTTP_SLACK))),
        })
    }
}

/// Accepts connections until `app.shutdown` fires.
pub(crate) async fn accept_loop(app: Arc<App>, listener: TcpListener) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = app.shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = app.tcp_permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "too many connections; closing a new one");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn_app = app.clone();
        app.tracker
            .spawn(serve_connection(conn_app, stream, peer, permit));
    }
    tracing::info!("stopped accepting connections");
}

async fn serve_connection(
    app: Arc<App>,
    stream: TcpStream,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
) {
    let svc_app = app.clone();
    let service = service_fn(move |req| {
        let app = svc_app.clone();
        async move { Ok::<_, Infallible>(route(&app, req, peer).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = app.shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(app.ws.close_timeout, conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => Ok(()),
            }
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "http connection ended with an error");
    }
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    response(status, "text/plain; charset=utf-8", body)
}

async fn route(app: &App, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let path = req.uri().path();
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    match path {
        "/ws" if req.method() == Method::GET => upgrade(app, req, peer),
        "/healthz" if get => text(StatusCode::OK, "ok\n"),
        "/readyz" if get => {
            match tokio::time::timeout(Duration::from_secs(2), app.server.ready()).await {
                Ok(Ok(())) if !app.shutdown.is_cancelled() => text(StatusCode::OK, "ready\n"),
                Ok(Ok(())) => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "readiness probe: store not answering");
                    text(StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
                }
                Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "store timed out\n"),
            }
        }
        "/metrics" if get => response(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            crate::metrics::render(app.server.metrics(), &app.metrics),
        ),
        _ => match crate::web::lookup(path) {
            Some(asset) if get => {
                let mut resp = response(StatusCode::OK, asset.content_type, asset.body);
                let h = resp.headers_mut();
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                h.insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(
                        "default-src 'self'; connect-src 'self'; frame-ancestors 'none'",
                    ),
                );
                h.insert(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                );
                resp
            }
            Some(_) => method_not_allowed(),
            None if matches!(path, "/ws" | "/healthz" | "/readyz" | "/metrics") => {
                method_not_allowed()
            }
            None => text(StatusCode::NOT_FOUND, "not found\n"),
        },
    }
}

fn method_not_allowed() -> Response<Body> {
    text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
}

/// Whether a comma-separated header (`Connection`, `Upgrade`) lists `token`.
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// The codec and the subprotocol to answer with: the client's first offer
/// we speak; MessagePack without a header when nothing is offered; `None`
/// when only unknown subprotocols are offered.
pub(crate) fn choose_codec(headers: &HeaderMap) -> Option<(Codec, Option<&'static str>)> {
    let mut offered = headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .peekable();
    if offered.peek().is_none() {
        return Some((Codec::MsgPack, None));
    }
    offered
        .find_map(Codec::from_subprotocol)
        .map(|c| (c, Some(c.subprotocol())))
}

/// Browsers send `Origin` on every WebSocket handshake; a page on another
/// site must not be able to drive a user's session (cross-site WebSocket
/// hijacking), so only exact listed origins pass. Non-browser clients send
/// none and are let through: they hold their own credentials.
pub(crate) fn origin_allowed(allowed: &[String], headers: &HeaderMap) -> bool {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    match (origins.next(), origins.next()) {
        (None, _) => true,
        (Some(origin), None) => origin
            .to_str()
            .is_ok_and(|o| allowed.iter().any(|a| a.eq_ignore_ascii_case(o))),
        // Several Origin headers: not something a browser sends.
        (Some(_), Some(_)) => false,
    }
}

fn upgrade(app: &App, mut req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let reject = |why: Rejection, status: StatusCode, body: &'static str| {
        app.metrics.rejected(why);
        tracing::debug!(%peer, ?why, "websocket upgrade refused");
        text(status, body)
    };
    let headers = req.headers();
    if !has_token(headers, header::CONNECTION, "upgrade")
        || !has_token(headers, header::UPGRADE, "websocket")
    {
        app.metrics.rejected(Rejection::BadRequest);
        let mut resp = text(
            StatusCode::UPGRADE_REQUIRED,
            "this endpoint speaks WebSocket only\n",
        );
        resp.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return resp;
    }
    if !headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13")
    {
        let mut resp = reject(
            Rejection::BadRequest,
            StatusCode::UPGRADE_REQUIRED,
            "unsupported WebSocket version\n",
        );
        resp.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return resp;
    }
    let key = match headers.get(header::SEC_WEBSOCKET_KEY) {
        Some(k)
            if base64::engine::general_purpose::STANDARD
                .decode(k.as_bytes())
                .is_ok_and(|b| b.len() == 16) =>
        {
            derive_accept_key(k.as_bytes())
        }
        _ => {
            return reject(
                Rejection::BadRequest,
                StatusCode::BAD_REQUEST,
                "missing or malformed Sec-WebSocket-Key\n",
            )
        }
    };
    if !origin_allowed(&app.allowed_origins, headers) {
        tracing::info!(
            %peer,
            origin = ?headers.get(header::ORIGIN),
            "websocket upgrade from a foreign Origin refused"
        );
        return reject(
            Rejection::Origin,
            StatusCode::FORBIDDEN,
            "origin not allowed\n",
        );
    }
    let Some((codec, subprotocol)) = choose_codec(headers) else {
        return reject(
            Rejection::BadRequest,
            StatusCode::BAD_REQUEST,
            "no supported subprotocol: offer chatcore.v1.msgpack or chatcore.v1.json\n",
        );
    };
    if app.shutdown.is_cancelled() {
        return reject(
            Rejection::Capacity,
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n",
        );
    }
    let Some(slot) = ConnSlot::take(app) else {
        let mut resp = reject(
            Rejection::Capacity,
            StatusCode::SERVICE_UNAVAILABLE,
            "too many connections; retry later\n",
        );
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return resp;
    };

    let on_upgrade = hyper::upgrade::on(&mut req);
    let server = app.server.clone();
    let settings = app.ws.clone();
    let shutdown = app.shutdown.clone();
    let metrics = app.metrics.clone();
    let span = tracing::info_span!("ws", %peer);
    let task = async move {
        let _slot = slot;
        match on_upgrade.await {
            Ok(upgraded) => {
                tracing::debug!(?codec, "websocket connected");
                let peer_info = PeerInfo::new(Some(peer.ip()));
                crate::ws::run(
                    TokioIo::new(upgraded),
                    server,
                    peer_info,
                    codec,
                    settings,
                    shutdown,
                    metrics,
                )
                .await;
                tracing::debug!("websocket closed");
            }
            Err(e) => tracing::debug!(error = %e, "upgrade failed"),
        }
    };
    app.tracker.spawn(task.instrument(span));

    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(accept) = HeaderValue::from_str(&key) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    if let Some(p) = subprotocol {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    resp
}

/// One of the `max_connections` WebSocket slots, given back on drop.
struct ConnSlot(Arc<AtomicUsize>);

impl ConnSlot {
    fn take(app: &App) -> Option<ConnSlot> {
        app.ws_connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < app.max_connections).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnSlot(app.ws_connections.clone()))
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
