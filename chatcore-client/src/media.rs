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

use chatcore::e2e::{decode_payload, encode_payload};
use chatcore::model::{FileEncryption, MediaId};
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

/// Encrypts a file for an encrypted conversation before its upload
/// (docs/E2E.md, *Files*): AES-256-GCM under a fresh random key and nonce.
/// It encrypts the bytes as given and reads nothing of them: a photo's
/// metadata (EXIF, GPS position) is the application's to strip first, as
/// the web client does by re-encoding.
/// Upload the returned bytes; the returned [`FileEncryption`] (key, nonce,
/// and the SHA-256 of those bytes) goes inside the encrypted content, never
/// in the clear ([`crate::secure::SecureClient::send_encrypted_media`]).
///
/// ```
/// use chatcore_client::media::{decrypt_file, encrypt_file};
/// let (sealed, key) = encrypt_file(b"a photo").unwrap();
/// assert_ne!(&sealed[..7], b"a photo");
/// assert_eq!(decrypt_file(&sealed, &key).unwrap(), b"a photo");
/// ```
pub fn encrypt_file(bytes: &[u8]) -> Result<(Vec<u8>, FileEncryption), Error> {
    use ring::rand::SecureRandom as _;
    let rng = ring::rand::SystemRandom::new();
    let mut key = [0u8; 32];
    let mut iv = [0u8; 12];
    rng.fill(&mut key)
        .and_then(|()| rng.fill(&mut iv))
        .map_err(|_| Error::Media("no randomness for a file key".into()))?;
    encrypt_file_with(&key, &iv, bytes)
}

/// [`encrypt_file`] under a given key and nonce: for test vectors only. A
/// key must never encrypt two files.
#[doc(hidden)]
pub fn encrypt_file_with(
    key: &[u8; 32],
    iv: &[u8; 12],
    bytes: &[u8],
) -> Result<(Vec<u8>, FileEncryption), Error> {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    let sealing = UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| Error::Media("bad file key".into()))?;
    let mut sealed = bytes.to_vec();
    sealing
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(*iv), Aad::empty(), &mut sealed)
        .map_err(|_| Error::Media("the file is too large to encrypt".into()))?;
    let encryption = FileEncryption {
        key: encode_payload(key),
        iv: encode_payload(iv),
        sha256: sha256_hex(&sealed),
    };
    Ok((sealed, encryption))
}

/// Decrypts a downloaded file with the [`FileEncryption`] its (decrypted)
/// message carried: the bytes' SHA-256 is checked first, then the
/// AES-256-GCM tag. Either failing is an [`Error::Media`]: the file is not
/// the one sent, and nothing of it is returned.
pub fn decrypt_file(sealed: &[u8], encryption: &FileEncryption) -> Result<Vec<u8>, Error> {
    use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
    if sha256_hex(sealed) != encryption.sha256.to_ascii_lowercase() {
        return Err(Error::Media(
            "the file's SHA-256 is not the one its message names".into(),
        ));
    }
    let key = decode_payload(&encryption.key, 32)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| Error::Media("a file key is 32 bytes of unpadded base64".into()))?;
    let iv: [u8; 12] = decode_payload(&encryption.iv, 12)
        .ok()
        .and_then(|iv| iv.try_into().ok())
        .ok_or_else(|| Error::Media("a file nonce is 12 bytes of unpadded base64".into()))?;
    let opening = UnboundKey::new(&AES_256_GCM, &key)
        .map(LessSafeKey::new)
        .map_err(|_| Error::Media("bad file key".into()))?;
    let mut plain = sealed.to_vec();
    let len = opening
        .open_in_place(Nonce::assume_unique_for_key(iv), Aad::empty(), &mut plain)
        .map_err(|_| Error::Media("the file does not decrypt with its key".into()))?
        .len();
    plain.truncate(len);
    Ok(plain)
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatcore::model::Content;

    /// tests/vectors/files.json: one file sealed under a fixed key and
    /// nonce, and one encrypted photo's content as the MessagePack bytes
    /// inside a ciphertext. The TypeScript binding checks the same file
    /// (test/unit/files.test.mjs), so both read what the other writes.
    /// Regenerate with `UPDATE_VECTORS=1 cargo test -p chatcore-client files_vectors`.
    #[test]
    fn files_vectors() {
        let key: [u8; 32] = std::array::from_fn(|i| i as u8);
        let iv: [u8; 12] = std::array::from_fn(|i| 0xa0 + i as u8);
        let plain = b"\x89PNG\r\n\x1a\n not really a photo, but its bytes".to_vec();
        let (sealed, encryption) = encrypt_file_with(&key, &iv, &plain).unwrap();
        assert_eq!(sealed.len(), plain.len() + 16, "the tag follows the bytes");
        assert_eq!(decrypt_file(&sealed, &encryption).unwrap(), plain);
        let content = Content::Image {
            media: MediaId::from("0190f7a2c0de4e2e9a1b2c3d4e5f6a7b"),
            mime: "image/png".into(),
            width: 640,
            height: 480,
            size: sealed.len() as u64,
            thumbnail: Some("iVBORw0KGgo".into()),
            caption: Some("the view".into()),
            encryption: Some(encryption.clone()),
        };
        let packed = rmp_serde::to_vec_named(&content).unwrap();
        assert!((0x80..=0x8f).contains(&packed[0]), "a fixmap: never text");
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let vectors = serde_json::json!({
            "file": {
                "plain": encode_payload(&plain),
                "key": encryption.key,
                "iv": encryption.iv,
                "sealed": encode_payload(&sealed),
                "sha256": encryption.sha256,
            },
            "content": {
                "value": content,
                "msgpack": hex(&packed),
            },
        });
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors/files.json");
        let text = serde_json::to_string_pretty(&vectors).unwrap() + "\n";
        if std::env::var_os("UPDATE_VECTORS").is_some() {
            std::fs::write(path, &text).unwrap();
        }
        // Compared as JSON, not as text: the workspace may build serde_json
        // with `preserve_order`, which changes the order keys are written in.
        let stored: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_default())
                .unwrap_or_default();
        assert_eq!(
            stored, vectors,
            "tests/vectors/files.json is stale: UPDATE_VECTORS=1 cargo test -p chatcore-client files_vectors"
        );
        // And what is read back from the stored bytes is the same content.
        let back: Content = rmp_serde::from_slice(&packed).unwrap();
        assert_eq!(back, content);
    }

    #[test]
    fn a_changed_or_wrongly_keyed_file_is_refused() {
        let (sealed, encryption) = encrypt_file(b"voice note").unwrap();
        let (again, other) = encrypt_file(b"voice note").unwrap();
        assert_ne!(sealed, again, "a fresh key and nonce each time");
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert!(decrypt_file(&flipped, &encryption).is_err(), "digest");
        let wrong_key = FileEncryption {
            sha256: encryption.sha256.clone(),
            ..other
        };
        assert!(decrypt_file(&sealed, &wrong_key).is_err(), "tag");
        let short_key = FileEncryption {
            key: "AAAA".into(),
            ..encryption.clone()
        };
        assert!(decrypt_file(&sealed, &short_key).is_err());
        assert_eq!(decrypt_file(&sealed, &encryption).unwrap(), b"voice note");
    }
}
