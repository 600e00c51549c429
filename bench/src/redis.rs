//! A private `redis-server` for the multi-node scenarios: on a free loopback
//! port, pinned to CPU 0 beside the servers under test (its CPU counts as
//! theirs), nothing saved to disk.

use anyhow::{bail, Context as _, Result};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

/// A running `redis-server`, killed when dropped.
pub(crate) struct RedisProc {
    child: Child,
    /// `redis://127.0.0.1:PORT/`.
    pub(crate) url: String,
    pub(crate) pid: u32,
    port: u16,
}

impl RedisProc {
    /// Starts one on CPU 0 and waits until it answers PING; its log goes to `log`.
    pub(crate) async fn start(log: &Path) -> Result<RedisProc> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let logf = std::fs::File::create(log)?;
        let mut child = Command::new("taskset")
            .args(["-c", "0", "redis-server"])
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            // Pub/sub clients of a busy node may lag: never disconnect them for it.
            .args(["--client-output-buffer-limit", "pubsub 0 0 0"])
            .args(["--maxclients", "10000"])
            .stdout(logf.try_clone()?)
            .stderr(logf)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start redis-server (bench/run.sh installs it)")?;
        let pid = child.id().context("no pid")?;
        for _ in 0..100 {
            if ping(port).await {
                return Ok(RedisProc {
                    child,
                    url: format!("redis://127.0.0.1:{port}/"),
                    pid,
                    port,
                });
            }
            if let Some(status) = child.try_wait()? {
                bail!("redis-server exited ({status}); see {}", log.display());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "redis-server did not answer PING in 5 s; see {}",
            log.display()
        )
    }

    /// How many `PUBLISH` commands this server has run (`INFO
    /// commandstats`): the frames the nodes sent each other.
    pub(crate) async fn publishes(&self) -> Result<u64> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).await?;
        s.write_all(b"INFO commandstats\r\n").await?;
        // A bulk string: `$<len>\r\n<text>\r\n`.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let text = loop {
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
                .await
                .context("redis INFO timed out")??;
            if n == 0 {
                bail!("redis closed the INFO connection");
            }
            buf.extend_from_slice(&chunk[..n]);
            let Some(eol) = buf.windows(2).position(|w| w == b"\r\n") else {
                continue;
            };
            let len: usize = std::str::from_utf8(&buf[..eol])?
                .strip_prefix('$')
                .context("INFO did not answer a bulk string")?
                .parse()?;
            if buf.len() >= eol + 2 + len {
                break String::from_utf8_lossy(&buf[eol + 2..eol + 2 + len]).into_owned();
            }
        };
        // `cmdstat_publish:calls=N,usec=...`; absent before the first.
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix("cmdstat_publish:calls="))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

async fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), s.read_exact(&mut buf)).await,
        Ok(Ok(_)) if &buf == b"+PONG\r\n"
    )
}
