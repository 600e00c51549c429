//! The media scenario (issue 20): uploading and downloading a file over
//! chatd's HTTP endpoints against a raw loopback copy into the same
//! directory with the same fsync policy, and chatd's RSS during
//! concurrent uploads.
//!
//! The raw peer ([`serve_peer`], `bench media-peer`) is a process of its own
//! pinned to CPU 0 like chatd, on tokio's default runtime like chatd, with
//! each transfer on one blocking thread doing plain `read`/`write` through
//! a 64 KiB buffer: a socket into a file (upload), a file into a socket
//! (download), nothing else. It stores each file exactly as `FsBlobStore`
//! does its blobs (chatd/src/media/fs.rs): under a two-character fan-out
//! directory (created on first use, and then the root directory fsynced),
//! written to a temporary file created beside its final name, the file
//! fsynced, hard-linked to its final name, the temporary name removed, and
//! the fan-out directory fsynced before the answer. What chatd adds beyond
//! that is its cost: HTTP, the session check, the rate limiter and quota,
//! SHA-256 of the bytes, and its async file I/O.
//!
//! The same client code drives both: a fresh loopback connection per
//! transfer, the file written in 64 KiB chunks, the download read through
//! a 64 KiB buffer and compared with what was uploaded. chatd is spoken to
//! in plain HTTP/1.1 written by hand.

use anyhow::{bail, Context as _, Result};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher as _;
use std::io::{Read as _, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::stats;

/// Bytes per socket write of the client, and the raw peer's buffer.
const CHUNK: usize = 64 * 1024;
const MIB: f64 = (1u64 << 20) as f64;

/// What the media scenario is asked to do.
pub(crate) struct MediaOpts {
    /// Bytes of each file.
    pub(crate) size: usize,
    /// Timed rounds of each of raw and chatd (upload then download).
    pub(crate) rounds: usize,
    /// Concurrent uploads of the RSS phase.
    pub(crate) concurrent: usize,
    /// Seconds each paced upload of the RSS phase takes.
    pub(crate) paced_secs: f64,
}

/// One concurrent-upload run of the RSS phase.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct RssRun {
    pub(crate) how: String,
    pub(crate) uploads: usize,
    /// Most uploads in flight at once (request sent, answer not yet read).
    pub(crate) max_in_flight: usize,
    pub(crate) rss_before_kib: u64,
    pub(crate) hwm_before_kib: u64,
    /// Highest VmRSS sampled (every 2 ms) while the uploads ran.
    pub(crate) rss_peak_kib: u64,
    pub(crate) hwm_after_kib: u64,
    pub(crate) secs: f64,
    /// (peak VmRSS - VmRSS before) / uploads, in KiB.
    pub(crate) growth_per_upload_kib: f64,
    /// (VmHWM after - VmHWM before) / uploads, in KiB.
    pub(crate) hwm_growth_per_upload_kib: f64,
    /// chatd's threads before, and the most while the uploads ran (its
    /// blocking pool grows with them).
    pub(crate) threads_before: usize,
    pub(crate) threads_peak: usize,
}

/// What the media scenario measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct MediaReport {
    pub(crate) size: usize,
    pub(crate) rounds: usize,
    /// MiB/s of every timed round, in order.
    pub(crate) raw_up: Vec<f64>,
    pub(crate) raw_down: Vec<f64>,
    pub(crate) chatd_up: Vec<f64>,
    pub(crate) chatd_down: Vec<f64>,
    /// Server CPU milliseconds per transfer (mean over the rounds, 10 ms ticks).
    pub(crate) raw_up_cpu_ms: f64,
    pub(crate) raw_down_cpu_ms: f64,
    pub(crate) chatd_up_cpu_ms: f64,
    pub(crate) chatd_down_cpu_ms: f64,
    pub(crate) rss: Vec<RssRun>,
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

impl MediaReport {
    pub(crate) fn up_ratio(&self) -> f64 {
        median(&self.chatd_up) / median(&self.raw_up).max(1e-9)
    }

    pub(crate) fn down_ratio(&self) -> f64 {
        median(&self.chatd_down) / median(&self.raw_down).max(1e-9)
    }
}

fn runs(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl std::fmt::Display for MediaReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = self.size as f64 / MIB;
        writeln!(
            f,
            "  upload {mib:.0} MiB:   raw median {:.0} MiB/s (runs {}; peer CPU {:.0} ms each), chatd median {:.0} MiB/s (runs {}; chatd CPU {:.0} ms each): chatd/raw {:.3}x",
            median(&self.raw_up),
            runs(&self.raw_up),
            self.raw_up_cpu_ms,
            median(&self.chatd_up),
            runs(&self.chatd_up),
            self.chatd_up_cpu_ms,
            self.up_ratio()
        )?;
        write!(
            f,
            "  download {mib:.0} MiB: raw median {:.0} MiB/s (runs {}; peer CPU {:.0} ms each), chatd median {:.0} MiB/s (runs {}; chatd CPU {:.0} ms each): chatd/raw {:.3}x",
            median(&self.raw_down),
            runs(&self.raw_down),
            self.raw_down_cpu_ms,
            median(&self.chatd_down),
            runs(&self.chatd_down),
            self.chatd_down_cpu_ms,
            self.down_ratio()
        )?;
        for r in &self.rss {
            write!(
                f,
                "\n  RSS, {} concurrent uploads of {mib:.0} MiB ({}; at most {} in flight at once, {:.1} s): VmRSS {} KiB before, peak {} KiB = {:.0} KiB per upload; VmHWM {} -> {} KiB = {:.0} KiB per upload; threads {} -> {}",
                r.uploads,
                r.how,
                r.max_in_flight,
                r.secs,
                r.rss_before_kib,
                r.rss_peak_kib,
                r.growth_per_upload_kib,
                r.hwm_before_kib,
                r.hwm_after_kib,
                r.hwm_growth_per_upload_kib,
                r.threads_before,
                r.threads_peak
            )?;
        }
        Ok(())
    }
}

/// The flags that lift chatd's media limits out of the way (they are still
/// checked on every upload: their cost is paid).
pub(crate) fn chatd_media_args(media_dir: &Path) -> Vec<String> {
    vec![
        "--media".into(),
        format!("dir:{}", media_dir.display()),
        "--max-media-bytes".into(),
        (1u64 << 30).to_string(),
        "--media-uploads-per-minute".into(),
        "1000000".into(),
        "--media-bytes-per-day".into(),
        (1u64 << 40).to_string(),
    ]
}

/// A file of `n` pseudo-random bytes (xorshift: nothing compresses it).
fn payload(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(n);
    v
}

async fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let s = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// How a client streams a body: flat out, or `CHUNK` every `gap`, waiting
/// at `barrier` once half of it is sent.
#[derive(Clone)]
struct Pace {
    gap: Option<Duration>,
    barrier: Option<Arc<tokio::sync::Barrier>>,
}

impl Pace {
    const FLAT: Pace = Pace {
        gap: None,
        barrier: None,
    };
}

async fn send_body(s: &mut TcpStream, data: &[u8], pace: &Pace) -> Result<()> {
    let half = data.len() / 2;
    let mut at = 0;
    let mut waited = pace.barrier.is_none();
    while at < data.len() {
        if !waited && at >= half {
            if let Some(b) = &pace.barrier {
                b.wait().await;
            }
            waited = true;
        }
        let end = (at + CHUNK).min(data.len());
        s.write_all(&data[at..end]).await?;
        at = end;
        if let Some(gap) = pace.gap {
            tokio::time::sleep(gap).await;
        }
    }
    Ok(())
}

/// An HTTP/1.1 response's status, headers (lowercased names) and the body
/// bytes read along with them.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    rest: Vec<u8>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn content_length(&self) -> Result<usize> {
        self.header("content-length")
            .context("no Content-Length in the answer")?
            .parse()
            .context("bad Content-Length")
    }
}

async fn read_head(s: &mut TcpStream) -> Result<Head> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            bail!("the connection closed before the answer's head");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            bail!("an answer head over 64 KiB");
        }
    };
    let text = std::str::from_utf8(&buf[..end]).context("answer head not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Head {
        status,
        headers,
        rest: buf[end + 4..].to_vec(),
    })
}

/// Reads `len` bytes after `first` (already read) and checks they are `want`.
async fn read_exact_checked(
    s: &mut TcpStream,
    first: &[u8],
    len: usize,
    want: &[u8],
) -> Result<()> {
    if len != want.len() || first.len() > len {
        bail!("{len} bytes announced, {} uploaded", want.len());
    }
    if first != &want[..first.len()] {
        bail!("the downloaded bytes differ from the uploaded ones");
    }
    let mut at = first.len();
    let mut buf = vec![0u8; CHUNK];
    while at < len {
        let n = s.read(&mut buf[..CHUNK.min(len - at)]).await?;
        if n == 0 {
            bail!("the connection closed at {at} of {len} bytes");
        }
        if buf[..n] != want[at..at + n] {
            bail!("the downloaded bytes differ from the uploaded ones at {at}");
        }
        at += n;
    }
    Ok(())
}

/// `POST /media`: the new media id.
async fn chatd_upload(
    addr: SocketAddr,
    token: &str,
    data: &[u8],
    pace: &Pace,
    in_flight: Option<&InFlight>,
) -> Result<String> {
    let mut s = connect(addr).await?;
    let head = format!(
        "POST /media HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        data.len()
    );
    s.write_all(head.as_bytes()).await?;
    let _counted = in_flight.map(InFlight::enter);
    send_body(&mut s, data, pace).await?;
    let h = read_head(&mut s).await?;
    let len = h.content_length()?;
    let mut body = h.rest.clone();
    while body.len() < len {
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    if h.status != 201 {
        bail!(
            "POST /media answered {}: {}",
            h.status,
            String::from_utf8_lossy(&body)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&body).context("POST /media answer")?;
    if v["size"].as_u64() != Some(data.len() as u64) {
        bail!("POST /media stored {} bytes of {}", v["size"], data.len());
    }
    v["id"]
        .as_str()
        .map(str::to_owned)
        .context("no id in the POST /media answer")
}

/// `GET /media/{id}`, whole; checks the bytes are `want`.
async fn chatd_download(addr: SocketAddr, token: &str, id: &str, want: &[u8]) -> Result<()> {
    let mut s = connect(addr).await?;
    let head = format!(
        "GET /media/{id} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await?;
    let h = read_head(&mut s).await?;
    if h.status != 200 {
        bail!("GET /media/{id} answered {}", h.status);
    }
    let len = h.content_length()?;
    read_exact_checked(&mut s, &h.rest, len, want).await
}

/// The raw peer's upload: `P`, the length (u64 LE), the bytes; answered
/// with the stored file's 32-character name once it is durable.
async fn raw_upload(addr: SocketAddr, data: &[u8]) -> Result<String> {
    let mut s = connect(addr).await?;
    let mut head = vec![b'P'];
    head.extend_from_slice(&(data.len() as u64).to_le_bytes());
    s.write_all(&head).await?;
    send_body(&mut s, data, &Pace::FLAT).await?;
    let mut id = [0u8; 32];
    s.read_exact(&mut id)
        .await
        .context("the raw peer did not answer the upload")?;
    Ok(String::from_utf8_lossy(&id).into_owned())
}

/// The raw peer's download: `G` and the name; answered with the length
/// (u64 LE) and the bytes.
async fn raw_download(addr: SocketAddr, id: &str, want: &[u8]) -> Result<()> {
    let mut s = connect(addr).await?;
    let mut head = vec![b'G'];
    head.extend_from_slice(id.as_bytes());
    s.write_all(&head).await?;
    let mut len = [0u8; 8];
    s.read_exact(&mut len).await?;
    let len = usize::try_from(u64::from_le_bytes(len))?;
    read_exact_checked(&mut s, &[], len, want).await
}

/// Counts uploads in flight and the most at once.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

struct Entered<'a>(&'a InFlight);

impl InFlight {
    fn enter(&self) -> Entered<'_> {
        let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(n, Ordering::SeqCst);
        Entered(self)
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// VmRSS and VmHWM of a process, KiB, and its thread count.
fn mem(pid: u32) -> Result<(u64, u64, usize)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("no {name} line"))
    };
    Ok((
        field("VmRSS:")?,
        field("VmHWM:")?,
        usize::try_from(field("Threads:")?)?,
    ))
}

fn mib_per_sec(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / MIB / d.as_secs_f64().max(1e-9)
}

/// Server CPU milliseconds spent while `f` ran.
async fn timed<T>(
    pid: u32,
    f: impl std::future::Future<Output = Result<T>>,
) -> Result<(T, Duration, u64)> {
    let ticks = stats::cpu_ticks(pid)?;
    let t = Instant::now();
    let out = f.await?;
    let d = t.elapsed();
    let cpu_ms = (stats::cpu_ticks(pid)?.saturating_sub(ticks)) * 10;
    Ok((out, d, cpu_ms))
}

/// The throughput rounds: raw and chatd alternating (which goes first
/// alternates too), one untimed warm-up round of each first.
pub(crate) async fn throughput(
    chatd: (SocketAddr, u32),
    token: &str,
    raw: (SocketAddr, u32),
    o: &MediaOpts,
) -> Result<MediaReport> {
    let data = payload(o.size);
    let mut r = MediaReport {
        size: o.size,
        rounds: o.rounds,
        ..MediaReport::default()
    };
    let mut cpu = [0u64; 4];
    for round in 0..=o.rounds {
        let timed_round = round > 0;
        for side in 0..2 {
            let chatd_turn = (round + side) % 2 == 1;
            if chatd_turn {
                let (id, up, up_cpu) = timed(
                    chatd.1,
                    chatd_upload(chatd.0, token, &data, &Pace::FLAT, None),
                )
                .await?;
                let ((), down, down_cpu) =
                    timed(chatd.1, chatd_download(chatd.0, token, &id, &data)).await?;
                if timed_round {
                    r.chatd_up.push(mib_per_sec(o.size, up));
                    r.chatd_down.push(mib_per_sec(o.size, down));
                    cpu[2] += up_cpu;
                    cpu[3] += down_cpu;
                }
            } else {
                let (id, up, up_cpu) = timed(raw.1, raw_upload(raw.0, &data)).await?;
                let ((), down, down_cpu) = timed(raw.1, raw_download(raw.0, &id, &data)).await?;
                if timed_round {
                    r.raw_up.push(mib_per_sec(o.size, up));
                    r.raw_down.push(mib_per_sec(o.size, down));
                    cpu[0] += up_cpu;
                    cpu[1] += down_cpu;
                }
            }
        }
    }
    let per = |ms: u64| ms as f64 / o.rounds.max(1) as f64;
    r.raw_up_cpu_ms = per(cpu[0]);
    r.raw_down_cpu_ms = per(cpu[1]);
    r.chatd_up_cpu_ms = per(cpu[2]);
    r.chatd_down_cpu_ms = per(cpu[3]);
    Ok(r)
}

/// One upload and download of `o.size` bytes, untimed: chatd's code and
/// blocking threads are warm before its memory is first read.
pub(crate) async fn warm_up(addr: SocketAddr, token: &str, o: &MediaOpts) -> Result<()> {
    let data = payload(o.size);
    let id = chatd_upload(addr, token, &data, &Pace::FLAT, None).await?;
    chatd_download(addr, token, &id, &data).await
}

/// `n` uploads at once into chatd (each waits at a barrier once half of it
/// is sent, so all are in flight together), sampling its memory every 2 ms.
pub(crate) async fn concurrent_uploads(
    addr: SocketAddr,
    token: &str,
    pid: u32,
    o: &MediaOpts,
    paced: bool,
) -> Result<RssRun> {
    let data = Arc::new(payload(o.size));
    // Settle: what the last run freed is returned or reused, not counted.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (rss_before, hwm_before, threads_before) = mem(pid)?;
    let chunks = o.size.div_ceil(CHUNK).max(1) as f64;
    let pace = Pace {
        gap: paced.then(|| Duration::from_secs_f64(o.paced_secs / chunks)),
        barrier: Some(Arc::new(tokio::sync::Barrier::new(o.concurrent))),
    };
    let in_flight = Arc::new(InFlight::default());
    let peak = Arc::new(AtomicU64::new(rss_before));
    let threads = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(tokio::sync::Notify::new());
    let sampler = {
        let (peak, threads, done) = (peak.clone(), threads.clone(), done.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = done.notified() => break,
                }
                if let Ok((rss, _, t)) = mem(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                    threads.fetch_max(t, Ordering::Relaxed);
                }
            }
        })
    };
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..o.concurrent {
        let (data, pace, in_flight, token) = (
            data.clone(),
            pace.clone(),
            in_flight.clone(),
            token.to_owned(),
        );
        tasks.push(tokio::spawn(async move {
            chatd_upload(addr, &token, &data, &pace, Some(&in_flight)).await
        }));
    }
    let mut failed = None;
    for task in tasks {
        if let Err(e) = task.await? {
            failed = Some(e);
        }
    }
    let secs = t.elapsed().as_secs_f64();
    done.notify_one();
    sampler.await?;
    if let Some(e) = failed {
        return Err(e.context("a concurrent upload failed"));
    }
    let (rss_end, hwm_after, _) = mem(pid)?;
    let rss_peak = peak.load(Ordering::Relaxed).max(rss_end);
    let n = o.concurrent.max(1) as f64;
    Ok(RssRun {
        how: if paced {
            format!("each paced to {:.1} s", o.paced_secs)
        } else {
            "flat out".into()
        },
        uploads: o.concurrent,
        max_in_flight: in_flight.max.load(Ordering::SeqCst),
        rss_before_kib: rss_before,
        hwm_before_kib: hwm_before,
        rss_peak_kib: rss_peak,
        hwm_after_kib: hwm_after,
        secs,
        growth_per_upload_kib: rss_peak.saturating_sub(rss_before) as f64 / n,
        hwm_growth_per_upload_kib: hwm_after.saturating_sub(hwm_before) as f64 / n,
        threads_before,
        threads_peak: threads.load(Ordering::Relaxed),
    })
}

/// A 32-character lowercase hex name, random (as a media id is).
fn random_name() -> String {
    let a = RandomState::new().hash_one(Instant::now());
    let b = RandomState::new().hash_one(a);
    format!("{a:016x}{b:016x}")
}

/// Serves the raw peer until killed; prints the bound address on stdout.
pub(crate) async fn serve_peer(listen: &str, dir: PathBuf) -> Result<()> {
    std::fs::create_dir_all(&dir)?;
    let listener = TcpListener::bind(listen).await?;
    println!("{}", listener.local_addr()?);
    let dir = Arc::new(dir);
    loop {
        let (stream, _) = listener.accept().await?;
        let stream = stream.into_std()?;
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = peer_transfer(stream, &dir) {
                eprintln!("media peer: {e:#}");
            }
        });
    }
}

fn peer_transfer(mut s: std::net::TcpStream, root: &Path) -> Result<()> {
    let mut op = [0u8; 1];
    s.read_exact(&mut op)?;
    let mut buf = vec![0u8; CHUNK];
    match op[0] {
        b'P' => {
            let mut len = [0u8; 8];
            s.read_exact(&mut len)?;
            let mut left = u64::from_le_bytes(len);
            let name = random_name();
            let dir = root.join(&name[..2]);
            if !dir.exists() {
                std::fs::create_dir_all(&dir)?;
                std::fs::File::open(root)?.sync_all()?;
            }
            let temp = dir.join(format!(".{name}.tmp"));
            let path = dir.join(&name);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&temp)?;
            while left > 0 {
                let want = usize::try_from(left.min(CHUNK as u64))?;
                let n = s.read(&mut buf[..want])?;
                if n == 0 {
                    let _ = std::fs::remove_file(&temp);
                    bail!("the upload ended {left} bytes short");
                }
                f.write_all(&buf[..n])?;
                left -= n as u64;
            }
            f.sync_all()?;
            drop(f);
            std::fs::hard_link(&temp, &path)?;
            std::fs::remove_file(&temp)?;
            std::fs::File::open(&dir)?.sync_all()?;
            s.write_all(name.as_bytes())?;
        }
        b'G' => {
            let mut name = [0u8; 32];
            s.read_exact(&mut name)?;
            let name = std::str::from_utf8(&name)?;
            if !name.bytes().all(|c| c.is_ascii_hexdigit()) {
                bail!("bad name {name:?}");
            }
            let mut f = std::fs::File::open(root.join(&name[..2]).join(name))?;
            let len = f.metadata()?.len();
            s.write_all(&len.to_le_bytes())?;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                s.write_all(&buf[..n])?;
            }
        }
        other => bail!("unknown op {other}"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
