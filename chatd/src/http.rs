//! The listeners and the HTTP side: the PROXY header and TLS handshake of
//! each connection, routing, health, static files, the WebSocket upgrade
//! (handshake checks, then [`crate::ws::run`]), and the separate metrics
//! listener.

use base64::Engine as _;
use chatcore::protocol::Codec;
use chatcore::session::PeerInfo;
use chatcore::Server;
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument as _;

use crate::config::Secret;
use crate::metrics::{Rejection, TransportMetrics};
use crate::proxy::TrustedProxies;
use crate::ws::WsSettings;

/// HTTP connections beyond `max_connections` WebSockets, for probes and page loads.
const HTTP_SLACK: usize = 256;
/// Time a client has to send its request headers (and, before them, its
/// PROXY header and TLS handshake).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections to the metrics listener at once: scrapers, not users.
const METRICS_CONNECTIONS: usize = 16;

/// A response body: whole, or streamed (media downloads).
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

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
    pub(crate) edge: Edge,
    /// A store whose writes `/readyz` also checks (SQLite: a read can
    /// succeed while the file is locked by another process, read-only or
    /// full, and then every send would fail).
    pub(crate) write_probe: Option<chatcore_sqlite::SqliteStore>,
    /// How long `/readyz` waits for the store (`--readyz-timeout-ms`).
    pub(crate) ready_timeout: Duration,
    /// What media uploads may be.
    pub(crate) media: crate::media_http::MediaLimits,
    /// The broker between nodes, with `--redis`: its counters are metrics.
    pub(crate) broker: Option<Arc<chatcore_redis::RedisBroker>>,
}

/// What stands between a TCP connection and HTTP: TLS, proxies, and who may read metrics.
#[derive(Default)]
pub(crate) struct Edge {
    /// Serve HTTPS/WSS only.
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    /// Peers whose `X-Forwarded-For` and PROXY headers name the client.
    pub(crate) trusted_proxies: TrustedProxies,
    /// Trusted peers start each connection with a PROXY protocol header.
    pub(crate) proxy_protocol: bool,
    /// Bearer token the metrics listener requires.
    pub(crate) metrics_token: Option<Secret>,
}

/// Which listener a connection came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Main,
    Metrics,
}

/// Where a connection comes from.
#[derive(Clone, Copy, Debug)]
struct Peer {
    /// The socket's peer.
    socket: SocketAddr,
    /// The client by the PROXY header, if a trusted peer sent one; else the socket peer's address.
    client: IpAddr,
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
        edge: Edge,
        write_probe: Option<chatcore_sqlite::SqliteStore>,
        ready_timeout: Duration,
        media: crate::media_http::MediaLimits,
        broker: Option<Arc<chatcore_redis::RedisBroker>>,
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
            edge,
            write_probe,
            ready_timeout,
            media,
            broker,
        })
    }

    /// Whether the store answers reads and, where it has a write probe, writes.
    async fn ready(&self) -> Result<(), String> {
        self.server.ready().await.map_err(|e| e.to_string())?;
        if let Some(store) = &self.write_probe {
            store.ping().await.map_err(|e| e.to_string())?;
        }
        Ok(())
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

/// Accepts connections to the metrics listener until `app.shutdown` fires.
pub(crate) async fn metrics_loop(app: Arc<App>, listener: TcpListener) {
    let permits = Arc::new(Semaphore::new(METRICS_CONNECTIONS));
    loop {
        let (stream, socket) = tokio::select! {
            _ = app.shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "metrics accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            continue;
        };
        let peer = Peer {
            socket,
            client: socket.ip(),
        };
        app.tracker.spawn(serve_http(
            app.clone(),
            stream,
            peer,
            Endpoint::Metrics,
            permit,
        ));
    }
}

/// The PROXY header (from trusted peers, when expected) and the TLS
/// handshake (when configured), then HTTP.
async fn serve_connection(
    app: Arc<App>,
    mut stream: TcpStream,
    socket: SocketAddr,
    permit: OwnedSemaphorePermit,
) {
    let mut peer = Peer {
        socket,
        client: socket.ip().to_canonical(),
    };
    let app2 = app.clone();
    let preamble = async move {
        if app2.edge.proxy_protocol && app2.edge.trusted_proxies.contains(socket.ip()) {
            match crate::proxy::read_header(&mut stream).await {
                Ok(Some(client)) => peer.client = client,
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        match &app2.edge.tls {
            Some(acceptor) => match acceptor.accept(stream).await {
                Ok(tls) => Ok((Io::Tls(Box::new(tls)), peer)),
                Err(e) => Err(format!("TLS handshake failed: {e}")),
            },
            None => Ok((Io::Plain(stream), peer)),
        }
    };
    let result = tokio::select! {
        _ = app.shutdown.cancelled() => return,
        r = tokio::time::timeout(HEADER_TIMEOUT, preamble) => r,
    };
    match result {
        Ok(Ok((Io::Plain(io), peer))) => serve_http(app, io, peer, Endpoint::Main, permit).await,
        Ok(Ok((Io::Tls(io), peer))) => serve_http(app, io, peer, Endpoint::Main, permit).await,
        Ok(Err(e)) => tracing::debug!(peer = %socket, error = %e, "connection refused"),
        Err(_) => tracing::debug!(peer = %socket, "no PROXY header or TLS handshake in time"),
    }
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

async fn serve_http<S>(
    app: Arc<App>,
    io: S,
    peer: Peer,
    endpoint: Endpoint,
    _permit: OwnedSemaphorePermit,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc_app = app.clone();
    let hsts = app.edge.tls.is_some() && endpoint == Endpoint::Main;
    let service = service_fn(move |req| {
        let app = svc_app.clone();
        async move {
            let mut resp = match endpoint {
                Endpoint::Main => route(&app, req, peer).await,
                Endpoint::Metrics => metrics_route(&app, &req).await,
            };
            if hsts {
                resp.headers_mut().insert(
                    header::STRICT_TRANSPORT_SECURITY,
                    HeaderValue::from_static("max-age=31536000"),
                );
            }
            Ok::<_, Infallible>(resp)
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(io), service)
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
        tracing::debug!(peer = %peer.socket, error = %e, "http connection ended with an error");
    }
}

/// The operator's listener: `/metrics`, and `/reports` (users' reports of
/// users), behind the same bearer token.
async fn metrics_route(app: &App, req: &Request<Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if path != "/metrics" && path != "/reports" {
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return method_not_allowed();
    }
    if let Some(token) = &app.edge.metrics_token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(given, token.0.as_bytes()) {
            let mut resp = text(StatusCode::UNAUTHORIZED, "bearer token required\n");
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return resp;
        }
    }
    if path == "/reports" {
        return reports(app, req.uri().query().unwrap_or("")).await;
    }
    response(
        StatusCode::OK,
        "text/plain; version=0.0.4; charset=utf-8",
        crate::metrics::render(
            app.server.metrics(),
            &app.metrics,
            app.broker.as_ref().map(|b| b.stats()),
        ),
    )
}

/// Reports users filed, newest first, as JSON lines: `?limit=` (1 to 1,000,
/// 100 by default) and `?after=<at>:<key>` (the `next` line of the
/// previous page) page through them.
async fn reports(app: &App, query: &str) -> Response<Body> {
    let mut limit = 100_usize;
    let mut after = None;
    for (k, v) in query.split('&').filter_map(|kv| kv.split_once('=')) {
        match k {
            "limit" => match v.parse::<usize>() {
                Ok(n) if (1..=1000).contains(&n) => limit = n,
                _ => return text(StatusCode::BAD_REQUEST, "limit is 1 to 1000\n"),
            },
            "after" => {
                let decoded = v.replace("%7C", "|").replace("%7c", "|");
                match decoded
                    .split_once(':')
                    .and_then(|(at, key)| Some((at.parse::<i64>().ok()?, key.to_owned())))
                {
                    Some(p) => after = Some(p),
                    None => return text(StatusCode::BAD_REQUEST, "after is a next line's value\n"),
                }
            }
            _ => {}
        }
    }
    let page = match app
        .server
        .backends()
        .reports
        .list(after.as_ref(), limit)
        .await
    {
        Ok(page) => page,
        Err(e) => {
            tracing::warn!(error = %e, "reports unavailable");
            return text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the store is unavailable\n",
            );
        }
    };
    let mut body = String::new();
    for r in &page {
        let line = serde_json::json!({
            "at": r.at,
            "reporter": r.reporter,
            "user": r.user,
            "conv": r.conv,
            "reason": r.reason,
        });
        body.push_str(&line.to_string());
        body.push('\n');
    }
    if page.len() == limit {
        if let Some(last) = page.last() {
            let next = serde_json::json!({ "next": format!("{}:{}", last.at, last.key()) });
            body.push_str(&next.to_string());
            body.push('\n');
        }
    }
    response(StatusCode::OK, "application/x-ndjson; charset=utf-8", body)
}

/// Compares without returning early, so response times do not reveal how
/// much of a guessed token was right (its length may show).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut resp = Response::new(crate::media_http::whole(body));
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

pub(crate) fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    response(status, "text/plain; charset=utf-8", body)
}

async fn route(app: &App, req: Request<Incoming>, peer: Peer) -> Response<Body> {
    if req.uri().path().starts_with("/media") {
        if let Some(resp) = crate::media_http::route(app, req).await {
            return resp;
        }
        return text(StatusCode::NOT_FOUND, "not found\n");
    }
    let path = req.uri().path();
    let get = req.method() == Method::GET || req.method() == Method::HEAD;
    match path {
        "/ws" if req.method() == Method::GET => upgrade(app, req, peer),
        "/healthz" if get => text(StatusCode::OK, "ok\n"),
        "/readyz" if get => match tokio::time::timeout(app.ready_timeout, app.ready()).await {
            Ok(Ok(())) if !app.shutdown.is_cancelled() => text(StatusCode::OK, "ready\n"),
            Ok(Ok(())) => text(StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "readiness probe: store not answering");
                text(StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
            }
            Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "store timed out\n"),
        },
        _ => match crate::web::lookup(path) {
            Some(asset) if get => {
                let header_str = |name| {
                    req.headers()
                        .get_all(name)
                        .iter()
                        .filter_map(|v| v.to_str().ok())
                        .collect::<Vec<_>>()
                        .join(",")
                };
                let gzip = asset
                    .gzip
                    .filter(|_| crate::web::accepts_gzip(&header_str(header::ACCEPT_ENCODING)));
                // A reload revalidates (no-cache) and gets 304 until the file changes.
                let fresh = asset.matches(&header_str(header::IF_NONE_MATCH));
                let mut resp = match (fresh, gzip) {
                    (true, _) => response(StatusCode::NOT_MODIFIED, asset.content_type, ""),
                    (false, Some(gz)) => response(StatusCode::OK, asset.content_type, gz),
                    (false, None) => response(StatusCode::OK, asset.content_type, asset.body),
                };
                let h = resp.headers_mut();
                if gzip.is_some() && !fresh {
                    h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
                if let Ok(etag) = HeaderValue::from_str(&asset.etag_of(gzip.is_some())) {
                    h.insert(header::ETAG, etag);
                }
                h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                h.insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(
                        // data: images for the favicon with the unread count (drawn on a canvas) and the
                        // thumbnails that travel inside messages; blob: images and audio for profile pictures,
                        // photos and voice notes the page downloaded (and decrypted) itself and shows from
                        // object URLs it made: media is fetched with the token in a header, never by an
                        // address the browser loads. 'wasm-unsafe-eval' lets the page compile WebAssembly
                        // (vodozemac, end-to-end encryption) and nothing else: no eval, no inline script.
                        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; img-src 'self' data: blob:; \
                         media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'",
                    ),
                );
                h.insert(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                );
                resp
            }
            Some(_) => method_not_allowed(),
            None if matches!(path, "/ws" | "/healthz" | "/readyz") => method_not_allowed(),
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

fn upgrade(app: &App, mut req: Request<Incoming>, peer: Peer) -> Response<Body> {
    let headers = req.headers();
    let client = app.edge.trusted_proxies.client_address(
        peer.client,
        headers
            .get_all("x-forwarded-for")
            .iter()
            .map(HeaderValue::as_bytes),
    );
    let reject = |why: Rejection, status: StatusCode, body: &'static str| {
        app.metrics.rejected(why);
        tracing::debug!(peer = %peer.socket, %client, ?why, "websocket upgrade refused");
        text(status, body)
    };
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
    // RFC 6455 4.1: the opening handshake is an HTTP/1.1 request; an
    // HTTP/1.0 intermediary may not keep the connection open after it.
    if req.version() != Version::HTTP_11 {
        return reject(
            Rejection::BadRequest,
            StatusCode::BAD_REQUEST,
            "WebSocket needs HTTP/1.1 (RFC 6455)\n",
        );
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
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
            peer = %peer.socket,
            %client,
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
    let span = tracing::info_span!("ws", peer = %peer.socket, %client);
    let task = async move {
        let _slot = slot;
        match on_upgrade.await {
            Ok(upgraded) => {
                tracing::debug!(?codec, "websocket connected");
                let peer_info = PeerInfo::new(Some(client));
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

    let mut resp = Response::new(crate::media_http::whole(Bytes::new()));
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
