//! chatd's media endpoints (docs/PROTOCOL.md, *Media (HTTP)*): upload a
//! file, download one whole or by byte range, with a session's token in
//! `Authorization`. One HTTP/1.1 request per connection (`Connection:
//! close`), over TLS for a `wss://` server.
//!
//! ```no_run
//! # async fn run(token: &str) -> Result<(), chatcore_client::Error> {
//! use chatcore_client::{media::MediaClient, ConnectOptions};
//! let media = MediaClient::new("ws://127.0.0.1:8080/ws", token, &ConnectOptions::new())?;
//! let up = media.upload(b"hello".to_vec()).await?;
//! assert_eq!(media.download(&up.id, None).await?, b"hello");
//! # Ok(()) }
//! ```

use std::sync::Arc;

use chatcore::model::MediaId;
use chatcore::protocol::ErrorCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{ConnectOptions, Error, ServerError};

/// A file stored by [`MediaClient::upload`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Uploaded {
    /// Its media id, for a message's `media` list and content.
    pub id: MediaId,
    /// Its size in bytes.
    pub size: u64,
    /// The SHA-256 of the bytes stored (lowercase hex), to check.
    pub sha256: String,
}

/// chatd's media endpoints, reached as one signed-in user.
#[derive(Clone)]
pub struct MediaClient {
    host: String,
    port: u16,
    tls: Option<Arc<rustls::ClientConfig>>,
    token: String,
    timeout: std::time::Duration,
}

impl std::fmt::Debug for MediaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaClient")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl MediaClient {
    /// The media endpoints of the server whose WebSocket is `ws_url`
    /// (`ws://host:port/ws` or `wss://...`), used with the session `token`
    /// (a register, login or resume handed it out). A `wss://` server needs
    /// `options.tls` (the roots to trust).
    pub fn new(ws_url: &str, token: &str, options: &ConnectOptions) -> Result<Self, Error> {
        let bad = |why: &str| Error::Media(format!("{why}: {ws_url}"));
        let (secure, rest) = match ws_url.split_once("://") {
            Some(("ws", rest)) => (false, rest),
            Some(("wss", rest)) => (true, rest),
            _ => return Err(bad("not a ws:// or wss:// URL")),
        };
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse().map_err(|_| bad("a bad port"))?)
            }
            _ => (authority, if secure { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let tls = match (secure, &options.tls) {
            (false, _) => None,
            (true, Some(config)) => Some(config.clone()),
            (true, None) => return Err(bad("a wss:// server needs ConnectOptions::tls")),
        };
        Ok(Self {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            tls,
            token: token.to_owned(),
            timeout: options.request_timeout,
        })
    }

    /// Uploads `bytes` as they are (encrypt them first for an encrypted
    /// conversation). Errors: the server's (`too_large`, `rate_limited`,
    /// `unauthenticated`, ...) as [`Error::Server`].
    pub async fn upload(&self, bytes: Vec<u8>) -> Result<Uploaded, Error> {
        self.upload_with_progress(bytes, |_, _| {}).await
    }

    /// [`MediaClient::upload`], telling `progress(sent, total)` as the
    /// body goes out (every 64 KiB, and at the end).
    pub async fn upload_with_progress(
        &self,
        bytes: Vec<u8>,
        progress: impl FnMut(u64, u64) + Send,
    ) -> Result<Uploaded, Error> {
        let head = format!(
            "POST /media HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\n",
            bytes.len()
        );
        let (status, body) = self.exchange(&head, &bytes, progress).await?;
        if status != 201 {
            return Err(answer_error(status, &body));
        }
        #[derive(serde::Deserialize)]
        struct Reply {
            id: String,
            size: u64,
            sha256: String,
        }
        let r: Reply = serde_json::from_slice(&body)
            .map_err(|e| Error::Media(format!("a bad upload answer: {e}")))?;
        let id = MediaId::parse(&r.id)
            .ok_or_else(|| Error::Media(format!("not a media id: {:?}", r.id)))?;
        Ok(Uploaded {
            id,
            size: r.size,
            sha256: r.sha256,
        })
    }

    /// Downloads media `id`: all of it, or bytes `start` to `end`
    /// (inclusive; to the end when `None`). The bytes as stored.
    pub async fn download(
        &self,
        id: &MediaId,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<Vec<u8>, Error> {
        if !id.is_well_formed() {
            return Err(Error::Media(format!("not a media id: {:?}", id.as_str())));
        }
        let mut head = format!("GET /media/{} HTTP/1.1\r\n", id.as_str());
        if let Some((start, end)) = range {
            let end = end.map(|e| e.to_string()).unwrap_or_default();
            head.push_str(&format!("Range: bytes={start}-{end}\r\n"));
        }
        let (status, body) = self.exchange(&head, &[], |_, _| {}).await?;
        match status {
            200 | 206 => Ok(body),
            _ => Err(answer_error(status, &body)),
        }
    }

    /// Sends `head` (request line and headers, without the end of the
    /// head) with the token, then `body`; the answer's status and body.
    async fn exchange(
        &self,
        head: &str,
        body: &[u8],
        progress: impl FnMut(u64, u64) + Send,
    ) -> Result<(u16, Vec<u8>), Error> {
        let request = format!(
            "{head}Host: {}:{}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.host, self.port, self.token
        );
        let work = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| Error::Media(e.to_string()))?;
            match &self.tls {
                None => round_trip(tcp, request.as_bytes(), body, progress).await,
                Some(config) => {
                    let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                        .map_err(|e| Error::Media(format!("a bad host name: {e}")))?;
                    let tls = tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name, tcp)
                        .await
                        .map_err(|e| Error::Media(e.to_string()))?;
                    round_trip(tls, request.as_bytes(), body, progress).await
                }
            }
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| Error::Timeout)?
    }
}

/// Writes the request, reads the whole answer (the server closes after
/// it), and splits off its status and body.
async fn round_trip(
    mut io: impl AsyncRead + AsyncWrite + Unpin,
    head: &[u8],
    body: &[u8],
    mut progress: impl FnMut(u64, u64),
) -> Result<(u16, Vec<u8>), Error> {
    let io_err = |e: std::io::Error| Error::Media(e.to_string());
    io.write_all(head).await.map_err(io_err)?;
    let total = body.len() as u64;
    let mut sent = 0;
    for chunk in body.chunks(64 * 1024) {
        io.write_all(chunk).await.map_err(io_err)?;
        sent += chunk.len() as u64;
        progress(sent, total);
    }
    if body.is_empty() {
        progress(0, 0);
    }
    io.flush().await.map_err(io_err)?;
    let mut raw = Vec::new();
    io.read_to_end(&mut raw).await.map_err(io_err)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| Error::Media("an answer without a head".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Media("an answer without a status".into()))?;
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")
        })
    });
    let rest = raw[split + 4..].to_vec();
    Ok((status, if chunked { dechunk(&rest)? } else { rest }))
}

/// A chunked body's bytes.
fn dechunk(mut raw: &[u8]) -> Result<Vec<u8>, Error> {
    let bad = || Error::Media("a bad chunked body".into());
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size = std::str::from_utf8(&raw[..line_end]).map_err(|_| bad())?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = raw.get(..size).ok_or_else(bad)?;
        out.extend_from_slice(chunk);
        raw = raw.get(size + 2..).ok_or_else(bad)?;
    }
}

/// The error of a refusal: the server's JSON `{"error", "message"}`, or
/// the status alone.
fn answer_error(status: u16, body: &[u8]) -> Error {
    #[derive(serde::Deserialize)]
    struct Refusal {
        error: String,
        message: String,
    }
    let parsed: Option<Refusal> = serde_json::from_slice(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|r| {
            ErrorCode::ALL
                .iter()
                .find(|c| c.to_string() == r.error)
                .copied()
        })
        .unwrap_or(match status {
            401 => ErrorCode::Unauthenticated,
            404 => ErrorCode::NotFound,
            413 => ErrorCode::TooLarge,
            429 => ErrorCode::RateLimited,
            400 | 416 => ErrorCode::InvalidArgument,
            _ => ErrorCode::Unavailable,
        });
    let message = parsed.map_or_else(|| format!("HTTP {status}"), |r| r.message);
    Error::Server(ServerError {
        code,
        message,
        field: None,
        violations: Vec::new(),
        retry_after_ms: None,
    })
}
