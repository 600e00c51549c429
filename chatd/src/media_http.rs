//! Media over HTTP: `POST /media` streams a body into the blob store,
//! `GET /media/{id}` streams one back, with byte ranges. Both need a
//! signed-in user: the session token in `Authorization: Bearer`, never in
//! the URL (where logs and histories keep it). The bytes are opaque: the
//! server never reads them, and serves them so that nothing uploaded can
//! run in chatd's origin (`application/octet-stream`, `attachment`,
//! `nosniff`). See docs/PROTOCOL.md, *Media*.

use chatcore::model::{MediaId, UserId};
use chatcore::store::{BlobMeta, BlobRead, ByteRange, Quota, StoreError};
use futures_util::{StreamExt as _, TryStreamExt as _};
use http_body_util::{BodyExt as _, BodyStream, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::io;

use crate::http::{response, text, App, Body};

/// What an upload may be and how often, from chatd's flags.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MediaLimits {
    /// The largest file, in bytes (`--max-media-bytes`).
    pub(crate) max_bytes: u64,
    /// Uploads per user per minute (`--media-uploads-per-minute`).
    pub(crate) uploads_per_minute: u32,
    /// Bytes a user may upload per day (`--media-bytes-per-day`): the
    /// quota, counted as the bytes arrive.
    pub(crate) bytes_per_day: u64,
}

/// `/media` and `/media/{id}`; `None` for any other path.
pub(crate) async fn route(app: &App, req: Request<Incoming>) -> Option<Response<Body>> {
    let path = req.uri().path();
    if path == "/media" {
        return Some(match *req.method() {
            Method::POST => upload(app, req).await,
            _ => method_not_allowed("POST"),
        });
    }
    let id = path.strip_prefix("/media/")?.to_owned();
    Some(match *req.method() {
        Method::GET | Method::HEAD => download(app, req, &id).await,
        _ => method_not_allowed("GET, HEAD"),
    })
}

fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// A JSON error body `{"error": code, "message": ...}` with `status`.
fn error(status: StatusCode, code: &'static str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": code, "message": message }).to_string();
    response(status, "application/json", body)
}

/// The signed-in user of the request, or the `401` to answer.
async fn signed_in(app: &App, headers: &HeaderMap) -> Result<UserId, Response<Body>> {
    let unauthorized = |message: &str| {
        let mut r = error(StatusCode::UNAUTHORIZED, "unauthenticated", message);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"chatd\""),
        );
        r
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty() && t.len() <= 1024);
    let Some(token) = token else {
        return Err(unauthorized(
            "send the session token as `Authorization: Bearer <token>`",
        ));
    };
    match app.server.authenticate(token).await {
        Ok(Some((user, _device))) => Ok(user),
        Ok(None) => Err(unauthorized(
            "the session has expired or was revoked; sign in again",
        )),
        Err(e) => {
            tracing::warn!(error = %e, "media: the session store is not answering");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the server cannot check sessions now; try again",
            ))
        }
    }
}

/// Spends `cost` of `user`'s budget `key`; the `429` to answer past it.
async fn spend(
    app: &App,
    key: String,
    cost: u64,
    quota: Quota,
    what: &str,
) -> Result<(), Response<Body>> {
    match app
        .server
        .backends()
        .limiter
        .spend(&key, cost, quota, app.server.now())
        .await
    {
        Ok(None) => Ok(()),
        Ok(Some(retry_after_ms)) => {
            let mut r = error(StatusCode::TOO_MANY_REQUESTS, "rate_limited", what);
            if let Ok(v) = HeaderValue::from_str(&retry_after_ms.div_ceil(1000).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Err(r)
        }
        Err(e) => {
            tracing::warn!(error = %e, "media: the rate limiter is not answering");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "try again",
            ))
        }
    }
}

fn too_large(max: u64) -> Response<Body> {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        &format!("a file is at most {max} bytes"),
    )
}

/// `POST /media`: the body, streamed into the blob store under a new id.
/// `201` with `{"id", "size", "sha256"}`.
async fn upload(app: &App, req: Request<Incoming>) -> Response<Body> {
    let limits = app.media;
    let user = match signed_in(app, req.headers()).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    // Known from the header: refused before a byte of the body is read.
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes) {
        return too_large(limits.max_bytes);
    }
    let per_minute = Quota {
        max: limits.uploads_per_minute,
        window_ms: 60_000,
    };
    if let Err(r) = spend(
        app,
        format!("media-uploads:{user}"),
        1,
        per_minute,
        "too many uploads; wait a moment",
    )
    .await
    {
        return r;
    }
    // The day's quota is spent on what the body says it holds (or the
    // limit, unsaid): an upload cut short still used it.
    let per_day = Quota {
        max: u32::try_from(limits.bytes_per_day / 1024).unwrap_or(u32::MAX),
        window_ms: 24 * 60 * 60 * 1000,
    };
    let kib = declared.unwrap_or(limits.max_bytes).div_ceil(1024).max(1);
    if let Err(r) = spend(
        app,
        format!("media-bytes:{user}"),
        kib,
        per_day,
        "the day's upload quota is spent",
    )
    .await
    {
        return r;
    }
    let body = BodyStream::new(req.into_body())
        .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) })
        .map_err(io::Error::other)
        .boxed();
    let id = MediaId::generate();
    // The uploader and the server's clock (which tests move), for the
    // garbage collection of files nothing refers to.
    let meta = BlobMeta::new(user.clone(), app.server.now());
    match app
        .server
        .backends()
        .blobs
        .put(&id, meta, body, limits.max_bytes)
        .await
    {
        Ok(info) => {
            let body = serde_json::json!({
                "id": id.as_str(),
                "size": info.size,
                "sha256": info.sha256,
            })
            .to_string();
            response(StatusCode::CREATED, "application/json", body)
        }
        Err(StoreError::TooLarge { max }) => too_large(max),
        Err(StoreError::Interrupted(why)) => error(
            StatusCode::BAD_REQUEST,
            "invalid_argument",
            &format!("the body ended before it was complete: {why}"),
        ),
        Err(StoreError::Full) => error(
            StatusCode::INSUFFICIENT_STORAGE,
            "unavailable",
            "the server has no room for this file now",
        ),
        Err(e) => {
            tracing::warn!(error = %e, "media: upload not stored");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the file was not stored; try again",
            )
        }
    }
}

/// The single range of a `Range` header, if it names exactly one in bytes
/// (`a-b`, `a-`, `-n`); `None` serves the whole blob, as RFC 9110 lets a
/// server do with several ranges or one it does not understand.
fn requested_range(headers: &HeaderMap, size: u64) -> Option<Result<ByteRange, ()>> {
    let spec = headers.get(header::RANGE)?.to_str().ok()?;
    let spec = spec.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    Some(match (a.parse::<u64>(), b.parse::<u64>()) {
        (Ok(start), Ok(end)) if a.bytes().all(|c| c.is_ascii_digit()) => {
            if end < start {
                Err(())
            } else {
                Ok(ByteRange::inclusive(start, end))
            }
        }
        (Ok(start), Err(_)) if b.is_empty() => Ok(ByteRange::starting_at(start)),
        (Err(_), Ok(n)) if a.is_empty() && n > 0 => {
            Ok(ByteRange::starting_at(size.saturating_sub(n)))
        }
        (Err(_), Ok(_)) if a.is_empty() => Err(()),
        _ => return None,
    })
}

/// The response headers every answer with the blob's bytes carries.
fn blob_headers(h: &mut HeaderMap, etag: &str) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
}

fn not_found() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "not_found", "no such media")
}

/// `GET /media/{id}` (or `HEAD`): the blob, whole or one byte range.
async fn download(app: &App, req: Request<Incoming>, id: &str) -> Response<Body> {
    if let Err(r) = signed_in(app, req.headers()).await {
        return r;
    }
    // A malformed id names nothing (and never a path).
    let Some(id) = MediaId::parse(id) else {
        return not_found();
    };
    let blobs = &app.server.backends().blobs;
    let info = match blobs.info(&id).await {
        Ok(Some(info)) => info,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(error = %e, "media: blob store not answering");
            return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again");
        }
    };
    let etag = format!("\"{}\"", info.sha256);
    let fresh = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        let mut r = response(StatusCode::NOT_MODIFIED, "application/octet-stream", "");
        blob_headers(r.headers_mut(), &etag);
        return r;
    }
    let range = match requested_range(req.headers(), info.size) {
        Some(Ok(r)) => Some(r),
        Some(Err(())) => return unsatisfiable(info.size, &etag),
        None => None,
    };
    let read = match blobs.get(&id, range).await {
        Ok(Some(read)) => read,
        Ok(None) => return not_found(),
        Err(StoreError::RangeNotSatisfiable { size }) => return unsatisfiable(size, &etag),
        Err(e) => {
            tracing::warn!(error = %e, "media: blob not read");
            return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "try again");
        }
    };
    let head = req.method() == Method::HEAD;
    serve(read, range.is_some(), head, &etag)
}

fn unsatisfiable(size: u64, etag: &str) -> Response<Body> {
    let mut r = error(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "invalid_argument",
        "the range is outside the file",
    );
    blob_headers(r.headers_mut(), etag);
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        r.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    r
}

/// The response that streams `read`: `206` with `Content-Range` for a
/// range, `200` otherwise; no body for `HEAD`.
fn serve(read: BlobRead, ranged: bool, head: bool, etag: &str) -> Response<Body> {
    let served = read.served.clone();
    let length = served.end - served.start;
    let body: Body = if head {
        http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync()
    } else {
        StreamBody::new(read.body.map_ok(Frame::data)).boxed_unsync()
    };
    let mut r = Response::new(body);
    *r.status_mut() = if ranged {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let h = r.headers_mut();
    blob_headers(h, etag);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if ranged {
        let v = format!(
            "bytes {}-{}/{}",
            served.start,
            served.end.saturating_sub(1),
            read.size
        );
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    r
}

/// Bytes for a response body that is already whole.
pub(crate) fn whole(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}
