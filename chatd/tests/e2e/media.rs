//! Media over HTTP against the real chatd: `POST /media` and
//! `GET /media/{id}` with the session token in `Authorization`, byte
//! ranges, the headers that keep an upload from running in chatd's origin,
//! and the refusals (no or a wrong token, too large before the body is
//! read, a malformed or unknown id, too many uploads).

use super::*;
use sha2::{Digest, Sha256};

/// One HTTP/1.1 exchange by hand: the status, the headers (lower-case
/// names) and the body. `body` is sent as given; `headers` add to `Host`
/// and `Connection: close`.
async fn exchange(
    addr: SocketAddr,
    head: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    exchange_cut(addr, head, headers, body, false).await
}

/// [`exchange`], closing the sending side after `body` when `cut` (a body
/// shorter than its `Content-Length` then ends there). Status 0: no answer.
async fn exchange_cut(
    addr: SocketAddr,
    head: &str,
    headers: &[(&str, String)],
    body: &[u8],
    cut: bool,
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    timeout(T, async {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let mut req = format!("{head} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await.expect("write head");
        // The server may answer (413) and close before taking the body.
        let _ = s.write_all(body).await;
        if cut {
            let _ = s.shutdown().await;
        }
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw).await;
        parse(&raw)
    })
    .await
    .expect("http timed out")
}

fn parse(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return (0, Vec::new(), Vec::new());
    };
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn bearer(token: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {token}"))
}

/// A signed-in user's session token.
async fn token_of(chatd: &Chatd, name: &str) -> String {
    let u = chatd.user(name).await;
    u.session.token.clone().expect("a token")
}

/// Uploads `bytes`: the reply's status and JSON.
async fn upload(chatd: &Chatd, token: &str, bytes: &[u8]) -> (u16, serde_json::Value) {
    let headers = [bearer(token), ("Content-Length", bytes.len().to_string())];
    let (status, _, body) = exchange(chatd.addr, "POST /media", &headers, bytes).await;
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, json)
}

fn file(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 % 251) as u8).collect()
}

#[tokio::test]
async fn media_uploads_and_downloads_whole_and_by_range_with_safe_headers() {
    let chatd = Chatd::start(&[]).await;
    let token = token_of(&chatd, "alice").await;
    let other = token_of(&chatd, "bob").await;
    let bytes = file(300_000);
    let (status, json) = upload(&chatd, &token, &bytes).await;
    assert_eq!(status, 201, "{json}");
    let id = json["id"].as_str().expect("an id").to_owned();
    assert_eq!(id.len(), 32, "128 bits in hex: {id}");
    assert_eq!(json["size"], bytes.len());
    let sha = hex::encode(Sha256::digest(&bytes));
    assert_eq!(json["sha256"], sha);

    // Any signed-in user reads it by its id (a capability: docs/PROTOCOL.md, Media).
    let get = format!("GET /media/{id}");
    let (status, h, body) = exchange(chatd.addr, &get, &[bearer(&other)], b"").await;
    assert_eq!(status, 200);
    assert_eq!(body, bytes);
    for (name, value) in [
        ("content-type", "application/octet-stream"),
        ("content-disposition", "attachment"),
        ("x-content-type-options", "nosniff"),
        ("accept-ranges", "bytes"),
    ] {
        assert_eq!(header(&h, name), Some(value), "{name}");
    }
    let cache = header(&h, "cache-control").unwrap_or_default();
    assert!(
        cache.contains("private") && cache.contains("immutable"),
        "{cache}"
    );
    let etag = header(&h, "etag").expect("an etag").to_owned();
    assert_eq!(etag, format!("\"{sha}\""));

    // Ranges: a byte, the middle, from somewhere to the end, the last bytes.
    let size = bytes.len();
    for (range, from, to) in [
        ("bytes=0-0", 0, 0),
        ("bytes=1000-1999", 1000, 1999),
        ("bytes=299990-", 299_990, size - 1),
        ("bytes=-10", size - 10, size - 1),
        ("bytes=299000-999999", 299_000, size - 1),
    ] {
        let headers = [bearer(&token), ("Range", range.to_owned())];
        let (status, h, body) = exchange(chatd.addr, &get, &headers, b"").await;
        assert_eq!(status, 206, "{range}");
        assert_eq!(body, bytes[from..=to], "{range}");
        let expected = format!("bytes {from}-{to}/{size}");
        assert_eq!(header(&h, "content-range"), Some(expected.as_str()));
    }
    let headers = [bearer(&token), ("Range", format!("bytes={size}-"))];
    let (status, h, _) = exchange(chatd.addr, &get, &headers, b"").await;
    assert_eq!(status, 416);
    let expected = format!("bytes */{size}");
    assert_eq!(header(&h, "content-range"), Some(expected.as_str()));
    // Unchanged since: 304, no body.
    let headers = [bearer(&token), ("If-None-Match", etag.clone())];
    let (status, _, body) = exchange(chatd.addr, &get, &headers, b"").await;
    assert_eq!((status, body.len()), (304, 0));
    // HEAD: the headers, no body.
    let head = format!("HEAD /media/{id}");
    let (status, h, body) = exchange(chatd.addr, &head, &[bearer(&token)], b"").await;
    assert_eq!((status, body.len()), (200, 0));
    let length = size.to_string();
    assert_eq!(header(&h, "content-length"), Some(length.as_str()));
}

#[tokio::test]
async fn media_refuses_strangers_bad_ids_and_what_is_too_large_or_too_often() {
    let chatd = Chatd::start(&[
        "--max-media-bytes",
        "1000",
        "--media-uploads-per-minute",
        "3",
    ])
    .await;
    let token = token_of(&chatd, "alice").await;
    // No token, a wrong one, one in the URL: 401, nothing stored.
    for headers in [vec![], vec![bearer("not-a-token")]] {
        let mut all = headers.clone();
        all.push(("Content-Length", "3".to_owned()));
        let (status, h, _) = exchange(chatd.addr, "POST /media", &all, b"abc").await;
        assert_eq!(status, 401);
        assert!(header(&h, "www-authenticate").is_some_and(|v| v.starts_with("Bearer")));
        let (status, _, _) = exchange(
            chatd.addr,
            "GET /media/0123456789abcdef0123456789abcdef",
            &headers,
            b"",
        )
        .await;
        assert_eq!(status, 401);
    }
    let in_url = format!("GET /media/0123456789abcdef0123456789abcdef?token={token}");
    assert_eq!(exchange(chatd.addr, &in_url, &[], b"").await.0, 401);
    // A malformed id (a path, upper case, too short) and an unknown one: 404 alike.
    for id in [
        "..%2f..%2fetc%2fpasswd",
        "0123456789ABCDEF0123456789ABCDEF",
        "abc",
        "0123456789abcdef0123456789abcdef",
    ] {
        let get = format!("GET /media/{id}");
        assert_eq!(
            exchange(chatd.addr, &get, &[bearer(&token)], b"").await.0,
            404,
            "{id}"
        );
    }
    // Too large by its Content-Length: 413 before the body is sent at all.
    let headers = [bearer(&token), ("Content-Length", "5000".to_owned())];
    let (status, _, body) = exchange(chatd.addr, "POST /media", &headers, b"").await;
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    // Too large while streaming (chunked, no length): 413, nothing kept.
    let chunk = vec![b'x'; 600];
    let mut chunked = Vec::new();
    for _ in 0..2 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let headers = [bearer(&token), ("Transfer-Encoding", "chunked".to_owned())];
    let (status, _, _) = exchange(chatd.addr, "POST /media", &headers, &chunked).await;
    assert_eq!(status, 413);
    // Truncated: the body ends before its length.
    let headers = [bearer(&token), ("Content-Length", "900".to_owned())];
    let (status, _, _) =
        exchange_cut(chatd.addr, "POST /media", &headers, &[b'y'; 100], true).await;
    assert!(status == 400 || status == 0, "{status}");
    // A body longer than its Content-Length: the file is what the length
    // says, the rest is not part of it (and never a second request).
    let headers = [bearer(&token), ("Content-Length", "3".to_owned())];
    let (status, _, body) = exchange(chatd.addr, "POST /media", &headers, b"abcdef").await;
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
    let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(json["size"], 3, "{json}");
    // The upload rate: 3 a minute (the refused ones above counted too).
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(upload(&chatd, &token, b"small").await.0);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
}

#[tokio::test]
async fn with_media_in_a_directory_an_upload_is_a_file_there() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "e2e-media-dir-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let arg = format!("dir:{}", dir.display());
    let chatd = Chatd::start(&["--media", &arg]).await;
    let token = token_of(&chatd, "alice").await;
    let bytes = file(5_000);
    let (status, json) = upload(&chatd, &token, &bytes).await;
    assert_eq!(status, 201, "{json}");
    let id = json["id"].as_str().expect("an id");
    let stored = dir.join(&id[..2]).join(id);
    let on_disk = std::fs::read(&stored).expect("the blob is a file in --media's directory");
    assert!(
        on_disk.ends_with(&bytes),
        "the file holds the bytes (after its header)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_rust_client_uploads_sends_a_file_by_its_id_and_the_other_side_downloads_it() {
    use chatcore_client::chatcore::model::MediaId;
    use chatcore_client::media::MediaClient;
    let chatd = Chatd::start(&[]).await;
    let alice = chatd.user("alice").await;
    let mut bob = chatd.user("bob").await;
    befriend(&alice, &bob).await;
    let url = chatd.url();
    let options = ConnectOptions::new();
    let token = |u: &User| u.session.token.clone().expect("a token");
    let alice_media = MediaClient::new(&url, &token(&alice), &options).unwrap();
    let bob_media = MediaClient::new(&url, &token(&bob), &options).unwrap();
    let bytes = file(70_000);
    let mut told = Vec::new();
    let up = alice_media
        .upload_with_progress(bytes.clone(), |sent, total| told.push((sent, total)))
        .await
        .unwrap();
    let total = bytes.len() as u64;
    assert_eq!(told.last(), Some(&(total, total)), "{told:?}");
    assert!(
        told.len() >= 2 && told.windows(2).all(|w| w[0].0 < w[1].0),
        "{told:?}"
    );
    assert_eq!(up.size, bytes.len() as u64);
    assert_eq!(up.sha256, hex::encode(Sha256::digest(&bytes)));
    let content = Content::File {
        encryption: None,
        media: up.id.clone(),
        name: "notes.txt".into(),
        mime: "text/plain".into(),
        size: up.size,
    };
    alice
        .client
        .send_media(&bob.id(), "f1", vec![up.id.clone()], content.clone())
        .await
        .unwrap();
    let got = timeout(T, async {
        loop {
            if let Some(Event::Push(ServerFrame::Message { message })) = bob.events.recv().await {
                if message.content == content {
                    return message;
                }
            }
        }
    })
    .await
    .expect("the file message arrives");
    assert_eq!(got.media, std::slice::from_ref(&up.id));
    let media = got.content.media().expect("a media content").clone();
    assert_eq!(bob_media.download(&media, None).await.unwrap(), bytes);
    assert_eq!(
        bob_media
            .download(&media, Some((100, Some(199))))
            .await
            .unwrap(),
        bytes[100..200]
    );
    // A file nobody uploaded: not_found, in a message and to download.
    let missing = MediaId::generate();
    let r = alice
        .client
        .send_media(
            &bob.id(),
            "f2",
            vec![missing.clone()],
            Content::File {
                encryption: None,
                media: missing.clone(),
                name: "ghost".into(),
                mime: "text/plain".into(),
                size: 1,
            },
        )
        .await;
    assert_eq!(server_code(r), ErrorCode::NotFound);
    assert_eq!(
        server_code(bob_media.download(&missing, None).await),
        ErrorCode::NotFound
    );
    let stranger = MediaClient::new(&url, "not-a-token", &options).unwrap();
    assert_eq!(
        server_code(stranger.upload(b"x".to_vec()).await),
        ErrorCode::Unauthenticated
    );
}

/// chatd's sweep deletes an upload that nothing refers to once it is older
/// than `--media-grace-ms` (here 0: at once), every `--media-sweep-ms`.
/// What a message or an avatar keeps is checked with a moved clock in
/// chatcore's tests (`unreferenced_files_are_collected_after_the_grace_period`)
/// and each store's conformance suite; this checks the flags reach it.
#[tokio::test]
async fn an_upload_nothing_refers_to_is_collected_by_the_sweep() {
    let chatd = Chatd::start(&["--media-grace-ms", "0", "--media-sweep-ms", "20"]).await;
    let token = token_of(&chatd, "alice").await;
    let (status, json) = upload(&chatd, &token, &file(1_000)).await;
    assert_eq!(status, 201, "{json}");
    let id = json["id"].as_str().expect("an id").to_owned();
    let gone = timeout(T, async {
        loop {
            let (status, _, _) = exchange(
                chatd.addr,
                &format!("HEAD /media/{id}"),
                &[bearer(&token)],
                b"",
            )
            .await;
            if status == 404 {
                return;
            }
            assert_eq!(status, 200);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the unsent upload was never collected");
}

/// On the store `args` choose: an upload set as its uploader's avatar (the
/// owner the blob store kept is checked by `update_profile`) stays through
/// sweeps, one nothing refers to is collected (`list`, `media_in_use` and
/// `avatars_in_use` of that store, through chatd's sweep).
pub(super) async fn the_sweep_keeps_an_avatar_and_collects_the_rest(args: &[&str]) {
    // A grace period longer than the few milliseconds between the upload
    // and the profile update: with none, a sweep may find the picture
    // unreferenced and delete it just after it became the avatar (the race
    // Server::collect_media documents).
    let mut all = vec!["--media-grace-ms", "1000", "--media-sweep-ms", "20"];
    all.extend_from_slice(args);
    let chatd = Chatd::start(&all).await;
    let alice = chatd.user("alice").await;
    let token = alice.session.token.clone().expect("a token");
    let (status, json) = upload(&chatd, &token, &file(2_000)).await;
    assert_eq!(status, 201, "{json}");
    let face = json["id"].as_str().expect("an id").to_owned();
    alice
        .client
        .update_profile(None, None, Some(face.clone()))
        .await
        .expect("one's own upload is an avatar");
    let (status, json) = upload(&chatd, &token, &file(1_000)).await;
    assert_eq!(status, 201, "{json}");
    let loose = json["id"].as_str().expect("an id").to_owned();
    let head = |id: String| {
        let token = token.clone();
        let addr = chatd.addr;
        async move {
            let (status, _, _) =
                exchange(addr, &format!("HEAD /media/{id}"), &[bearer(&token)], b"").await;
            status
        }
    };
    let gone = timeout(T, async {
        while head(loose.clone()).await != 404 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(gone.is_ok(), "the unreferenced upload was never collected");
    // A few sweeps later the avatar is still there.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(head(face).await, 200, "the avatar was collected");
}

#[tokio::test]
async fn the_sweep_keeps_an_avatar_and_collects_the_rest_in_memory() {
    the_sweep_keeps_an_avatar_and_collects_the_rest(&[]).await;
}
