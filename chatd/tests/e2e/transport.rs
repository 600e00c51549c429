//! The transport edge of chatd: TLS (wss://, certificate reloads, HSTS),
//! the metrics listener, HTTP/1.0 upgrades, and client addresses behind
//! trusted proxies (`X-Forwarded-For`, PROXY protocol).

use super::*;
use chatcore_client::rustls;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;

// ---------------------------------------------------------------- TLS helpers

/// A CA and a certificate it signed for `127.0.0.1` and `localhost`.
struct Pki {
    ca: CertificateDer<'static>,
    cert_pem: String,
    key_pem: String,
}

impl Pki {
    fn new(ca_name: &str) -> Pki {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, ca_name);
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
                .unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        Pki {
            ca: ca.der().clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// Writes the certificate and key where chatd reads them.
    fn install(&self, files: &TlsFiles) {
        std::fs::write(&files.cert, &self.cert_pem).unwrap();
        std::fs::write(&files.key, &self.key_pem).unwrap();
    }
}

/// The `--tls-cert`/`--tls-key` paths of one test.
struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
}

impl TlsFiles {
    fn new() -> TlsFiles {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "e2e-tls-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TlsFiles {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    fn args(&self) -> [String; 4] {
        [
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }
}

async fn start_tls(files: &TlsFiles, extra: &[&str]) -> Chatd {
    let args = files.args();
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    Chatd::start(&all).await
}

fn client_config(root: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

impl Chatd {
    fn wss_url(&self) -> String {
        format!("wss://{}/ws", self.addr)
    }

    /// A wss:// connection trusting `root` only.
    async fn connect_tls(&self, root: &CertificateDer<'static>) -> Result<(Client, Events), Error> {
        let options = ConnectOptions::new().trust_root(root.clone())?;
        timeout(T, Client::connect(&self.wss_url(), options))
            .await
            .expect("connect timed out")
    }

    /// An HTTPS GET: the status line and headers, and the ALPN protocol agreed.
    async fn https_head(&self, root: &CertificateDer<'static>, path: &str) -> (String, Vec<u8>) {
        let connector = tokio_rustls::TlsConnector::from(client_config(root));
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let name = ServerName::IpAddress(self.addr.ip().into());
        let mut tls = timeout(T, connector.connect(name, tcp))
            .await
            .unwrap()
            .expect("TLS handshake");
        let alpn = tls.get_ref().1.alpn_protocol().unwrap_or_default().to_vec();
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        tls.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        // The server may end without close_notify; what arrived is enough.
        let _ = timeout(T, tls.read_to_end(&mut raw)).await.unwrap();
        let text = String::from_utf8_lossy(&raw);
        (text.split("\r\n\r\n").next().unwrap_or("").to_owned(), alpn)
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().expect("running").to_string();
        let status = std::process::Command::new("sh")
            .args(["-c", &format!("kill -{name} {pid}")])
            .status()
            .expect("sh");
        assert!(status.success());
    }
}

/// Waits until a new connection verifies against `root` (reloads are asynchronous).
async fn until_served_by(chatd: &Chatd, root: &CertificateDer<'static>) {
    timeout(T, async {
        while chatd.connect_tls(root).await.is_err() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the new certificate is never served");
}

fn is_certificate_error(r: Result<(Client, Events), Error>) -> bool {
    match r {
        Ok(_) => false,
        Err(e) => {
            let text = format!("{e:?}");
            assert!(
                text.contains("UnknownIssuer") || text.contains("BadSignature"),
                "not a certificate verification failure: {text}"
            );
            true
        }
    }
}

// ---------------------------------------------------------------- TLS tests

#[tokio::test]
async fn wss_clients_register_and_chat_and_https_answers_with_hsts() {
    let files = TlsFiles::new();
    let pki = Pki::new("chatd e2e CA");
    pki.install(&files);
    let chatd = start_tls(&files, &[]).await;

    let (alice, _alice_events) = chatd.connect_tls(&pki.ca).await.expect("wss");
    let alice_session = alice.register(&registration("alice")).await.unwrap();
    let (bob, mut bob_events) = chatd.connect_tls(&pki.ca).await.expect("wss");
    let bob_session = bob.register(&registration("bob")).await.unwrap();
    alice
        .send_text(&bob_session.user, "over TLS")
        .await
        .unwrap();
    let m = push(&mut bob_events, |f| {
        matches!(f, ServerFrame::Message { .. })
    })
    .await;
    let ServerFrame::Message { message } = m else {
        unreachable!()
    };
    assert_eq!(message.from, alice_session.user);
    assert_eq!(text_of(&message.content), "over TLS");

    let (head, alpn) = chatd.https_head(&pki.ca, "/healthz").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("strict-transport-security: max-age=31536000"),
        "{head}"
    );
    assert_eq!(alpn, b"http/1.1");
    // Plain ws:// to the TLS port is not served.
    assert!(
        timeout(T, Client::connect(&chatd.url(), ConnectOptions::new()))
            .await
            .unwrap()
            .is_err()
    );
    // The default allowed Origin is the https:// one.
    let https_origin = format!("https://{}", chatd.addr);
    let options = ConnectOptions::new()
        .trust_root(pki.ca.clone())
        .unwrap()
        .origin(https_origin);
    timeout(T, Client::connect(&chatd.wss_url(), options))
        .await
        .unwrap()
        .expect("the https:// origin is allowed");
    let options = ConnectOptions::new()
        .trust_root(pki.ca.clone())
        .unwrap()
        .origin(format!("http://{}", chatd.addr));
    let refused = timeout(T, Client::connect(&chatd.wss_url(), options))
        .await
        .unwrap();
    assert_eq!(refused.err().and_then(|e| e.http_status()), Some(403));
}

#[tokio::test]
async fn tls_certificate_is_replaced_on_sighup_and_a_bad_one_is_not_taken() {
    let files = TlsFiles::new();
    let (a, b) = (Pki::new("CA A"), Pki::new("CA B"));
    a.install(&files);
    // No polling: only the signal can have reloaded.
    let chatd = start_tls(&files, &["--tls-reload-secs", "0"]).await;
    let (old_conn, _old_events) = chatd.connect_tls(&a.ca).await.expect("A is served");
    assert!(is_certificate_error(chatd.connect_tls(&b.ca).await));

    b.install(&files);
    chatd.signal("HUP");
    until_served_by(&chatd, &b.ca).await;
    assert!(is_certificate_error(chatd.connect_tls(&a.ca).await));
    // Open connections keep going.
    old_conn.ping().await.unwrap();

    // Unparseable files: logged, and B stays.
    std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    std::fs::write(&files.key, "garbage").unwrap();
    chatd.signal("HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    chatd.connect_tls(&b.ca).await.expect("B still served");
    // SIGHUP does not stop chatd.
    assert_eq!(chatd.http_tls_status(&b.ca).await, 200);
}

#[tokio::test]
async fn tls_certificate_is_reloaded_when_its_files_change() {
    let files = TlsFiles::new();
    let (a, b) = (Pki::new("CA A"), Pki::new("CA B"));
    a.install(&files);
    let chatd = start_tls(&files, &["--tls-reload-secs", "1"]).await;
    chatd.connect_tls(&a.ca).await.expect("A is served");
    b.install(&files);
    until_served_by(&chatd, &b.ca).await;
    assert!(is_certificate_error(chatd.connect_tls(&a.ca).await));
}

impl Chatd {
    async fn http_tls_status(&self, root: &CertificateDer<'static>) -> u16 {
        let (head, _) = self.https_head(root, "/healthz").await;
        head.split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

// ---------------------------------------------------------------- HTTP edge

#[tokio::test]
async fn websocket_upgrades_over_http_1_0_are_refused() {
    let chatd = Chatd::start(&[]).await;
    let mut s = TcpStream::connect(chatd.addr).await.unwrap();
    let req = "GET /ws HTTP/1.0\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
               Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    timeout(T, s.read_to_end(&mut raw)).await.unwrap().unwrap();
    let raw = String::from_utf8_lossy(&raw);
    assert!(
        raw.starts_with("HTTP/1.0 400") || raw.starts_with("HTTP/1.1 400"),
        "{raw}"
    );
    assert!(
        raw.ends_with("WebSocket needs HTTP/1.1 (RFC 6455)\n"),
        "{raw}"
    );
    assert_eq!(
        chatd
            .metric("chatd_upgrades_rejected_total{reason=\"bad_request\"}")
            .await,
        1
    );
    // The same request over HTTP/1.1 is upgraded.
    RawWs::connect(chatd.addr, &[])
        .await
        .expect("HTTP/1.1 upgrade");
}

#[tokio::test]
async fn metrics_are_served_on_their_own_listener_only() {
    let chatd = Chatd::start(&["--metrics-token", "s3cret"]).await;
    let metrics = chatd.metrics_addr.unwrap();
    assert_ne!(metrics.port(), chatd.addr.port());
    assert_eq!(chatd.http("GET", "/metrics").await.0, 404);
    // Nothing else is on the metrics listener.
    assert_eq!(http(metrics, "GET", "/").await.0, 404);
    assert_eq!(http(metrics, "GET", "/ws").await.0, 404);
    assert_eq!(http(metrics, "POST", "/metrics").await.0, 405);
    let (status, _) = http(metrics, "GET", "/metrics").await;
    assert_eq!(status, 401, "the token is required");
    let scrape = |token: &'static str| async move {
        let mut s = TcpStream::connect(metrics).await.unwrap();
        let req = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        timeout(T, s.read_to_end(&mut raw)).await.unwrap().unwrap();
        String::from_utf8_lossy(&raw).into_owned()
    };
    assert!(scrape("s3cres").await.starts_with("HTTP/1.1 401"));
    let ok = scrape("s3cret").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok.contains("# TYPE chatd_connections gauge"), "{ok}");

    // `off`: one address printed, and no listener.
    let quiet = Chatd::start(&["--metrics-listen", "off"]).await;
    assert!(quiet.metrics_addr.is_none());
    assert_eq!(quiet.http("GET", "/healthz").await.0, 200);
}

// ---------------------------------------------------------------- client addresses

/// Tries one wrong password for a fresh login name on `ws`; the error code.
async fn failed_login(ws: &mut RawWs, id: u32) -> ErrorCode {
    let mp = Codec::MsgPack;
    ws.send_frame(
        mp,
        &ClientFrame::Login {
            id,
            login: format!("nobody{id}"),
            password: "not the password at all".into(),
            device: "e2e".into(),
        },
    )
    .await;
    error_of(&ws.recv(mp).await).1
}

/// A raw WebSocket whose connection starts with `prefix` (a PROXY header).
async fn raw_ws_with_prefix(
    addr: SocketAddr,
    prefix: &[u8],
    headers: &[(&str, &str)],
) -> Result<RawWs, u16> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req = prefix.to_vec();
    req.extend_from_slice(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
    );
    for (k, v) in headers {
        req.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    stream.write_all(&req).await.unwrap();
    let mut buf = Vec::new();
    let end = timeout(T, async {
        loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Some(i + 4);
            }
            let mut chunk = [0u8; 1024];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("handshake timed out")
    .ok_or(0u16)?;
    let headers = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status: u16 = headers
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    if status != 101 {
        return Err(status);
    }
    buf.drain(..end);
    Ok(RawWs {
        stream,
        buf,
        headers,
    })
}

/// Signs `ws` in as far as `hello`.
async fn greeted(mut ws: RawWs) -> RawWs {
    ws.send_frame(Codec::MsgPack, &hello(1)).await;
    assert!(matches!(
        ws.recv(Codec::MsgPack).await,
        ServerFrame::Welcome { .. }
    ));
    ws
}

#[tokio::test]
async fn forwarded_for_names_the_client_only_behind_a_trusted_proxy() {
    let limit = ["--login-failures-per-address", "1"];
    let xff = |ip| [("X-Forwarded-For", ip)];
    let behind = Chatd::start(&[&limit[..], &["--trusted-proxy", "127.0.0.0/8"]].concat()).await;
    let mut a = greeted(
        RawWs::connect(behind.addr, &xff("203.0.113.7"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(failed_login(&mut a, 2).await, ErrorCode::Unauthenticated);
    let mut a2 = greeted(
        RawWs::connect(
            behind.addr,
            &[("X-Forwarded-For", "198.51.100.1, 203.0.113.7")],
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(failed_login(&mut a2, 3).await, ErrorCode::RateLimited);
    let mut b = greeted(
        RawWs::connect(behind.addr, &xff("203.0.113.8"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        failed_login(&mut b, 4).await,
        ErrorCode::Unauthenticated,
        "another client behind the same proxy has its own budget"
    );

    // Without --trusted-proxy the header is anybody's claim: all of these are 127.0.0.1.
    let direct = Chatd::start(&limit).await;
    let mut a = greeted(
        RawWs::connect(direct.addr, &xff("203.0.113.7"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(failed_login(&mut a, 2).await, ErrorCode::Unauthenticated);
    let mut b = greeted(
        RawWs::connect(direct.addr, &xff("203.0.113.8"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(failed_login(&mut b, 3).await, ErrorCode::RateLimited);
}

#[tokio::test]
async fn proxy_protocol_names_the_client_and_is_required_from_trusted_peers() {
    let chatd = Chatd::start(&[
        "--login-failures-per-address",
        "1",
        "--trusted-proxy",
        "127.0.0.0/8",
        "--proxy-protocol",
    ])
    .await;
    let v1 = |ip: &str| format!("PROXY TCP4 {ip} 127.0.0.1 40000 443\r\n").into_bytes();
    let mut a = greeted(
        raw_ws_with_prefix(chatd.addr, &v1("203.0.113.7"), &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(failed_login(&mut a, 2).await, ErrorCode::Unauthenticated);
    // v2, same client: its budget is spent.
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[203, 0, 113, 7, 127, 0, 0, 1, 0x9c, 0x40, 0x01, 0xbb]);
    let mut a2 = greeted(raw_ws_with_prefix(chatd.addr, &v2, &[]).await.unwrap()).await;
    assert_eq!(failed_login(&mut a2, 3).await, ErrorCode::RateLimited);
    let mut b = greeted(
        raw_ws_with_prefix(chatd.addr, &v1("203.0.113.8"), &[])
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(failed_login(&mut b, 4).await, ErrorCode::Unauthenticated);
    // A trusted peer without the header is refused: the connection just ends.
    assert_eq!(
        raw_ws_with_prefix(chatd.addr, b"", &[]).await.err(),
        Some(0)
    );
    assert_eq!(
        raw_ws_with_prefix(chatd.addr, b"PROXY TCP4 nonsense\r\n", &[])
            .await
            .err(),
        Some(0)
    );
}
