//! A private Redis for tests (feature `testing`): Debian's `redis-server`
//! (which `scripts/test` installs), started on a free loopback port in a
//! temporary directory, without persistence. Shared by this crate's tests
//! and, later, chatd's end-to-end tests, so every suite starts it the same
//! way.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// What to do when there is no server.
pub const NO_SERVER: &str = "no Redis server for the tests: run scripts/test (it installs \
     Debian's redis-server), or `apt-get install redis-server`, or set REDIS_SERVER_BIN to a \
     redis-server binary, or set CHATCORE_REDIS_URL to a Redis server";

/// The `redis-server` binary: `REDIS_SERVER_BIN`, else the one on `PATH`.
pub fn redis_server_bin() -> PathBuf {
    std::env::var_os("REDIS_SERVER_BIN")
        .map_or_else(|| PathBuf::from("redis-server"), PathBuf::from)
}

/// A `redis-server` process. It runs under a small shell that kills it as
/// soon as our end of the shell's stdin closes: when this value is dropped
/// or stopped, or when the test process exits in any way (statics are never
/// dropped). [`RedisServer::restart`] starts it again on the same port
/// (empty: nothing is saved), for fault tests.
pub struct RedisServer {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    dir: PathBuf,
}

impl RedisServer {
    /// Starts a server on a free loopback port and waits until it answers.
    pub fn start() -> Result<Self, String> {
        let mut last = String::new();
        // A free port may be taken between the probe and the start: retry.
        for _ in 0..5 {
            let port = free_port()?;
            match Self::start_on(port) {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Starts a server on `port` and waits until it answers.
    pub fn start_on(port: u16) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!(
            "chatcore-redis-{}-{port}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let mut server = Self {
            child: None,
            stdin: None,
            port,
            dir,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> Result<(), String> {
        let bin = redis_server_bin();
        // The server runs in the background; a second background job reads
        // the shell's stdin (saved on fd 3: background jobs get /dev/null)
        // and kills the server when it closes. The shell exits with the
        // server, removing its directory (a shared server is never dropped).
        let script = r#"exec 3<&0
"$@" & pid=$!
(cat <&3 >/dev/null; kill $pid 2>/dev/null) &
wait $pid
rm -rf "$REDIS_TEST_DIR""#;
        std::fs::create_dir_all(&self.dir).map_err(|e| format!("{}: {e}", self.dir.display()))?;
        let mut child = Command::new("sh")
            .env("REDIS_TEST_DIR", &self.dir)
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(&bin)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}; {NO_SERVER}", bin.display()))?;
        self.stdin = child.stdin.take();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ping(self.port) {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
            if exited || Instant::now() > deadline {
                self.stop();
                return Err(format!(
                    "{} did not start on port {} ({}); {NO_SERVER}",
                    bin.display(),
                    self.port,
                    if exited { "it exited" } else { "no answer" }
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>/`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Stops the server (SIGTERM) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Stops the server and starts a new, empty one on the same port.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.spawn()
    }

    /// Whether it answers `PING` now.
    pub fn is_up(&self) -> bool {
        ping(self.port)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> Result<u16, String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| e.to_string())?;
    l.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Whether a Redis on `port` answers `PING` with `+PONG`.
fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// The server a whole test process shares: `CHATCORE_REDIS_URL` when set,
/// otherwise one `redis-server` started on first use that lives until the
/// process exits. Tests isolate themselves by key prefix. Panics with
/// [`NO_SERVER`] advice when there is neither.
pub fn server_url() -> String {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    let url = SERVER.get_or_init(|| match std::env::var("CHATCORE_REDIS_URL") {
        Ok(url) if !url.is_empty() => Ok(url),
        _ => {
            let server = RedisServer::start()?;
            let url = server.url();
            // Lives until the process exits, which closes its stdin.
            std::mem::forget(server);
            Ok(url)
        }
    });
    match url {
        Ok(url) => url.clone(),
        Err(e) => panic!("{e}"),
    }
}

/// A key prefix no other test uses (`test-<uuid>`).
pub fn fresh_prefix() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}
