//! A MongoDB-compatible server for tests (feature `testing`): jongodb, the
//! native test server from the npm package
//! `@jongodb/memory-server-bin-linux-x64-gnu`, which `scripts/test` installs
//! into `.test-deps/`. Shared by this crate's tests and chatd's end-to-end
//! tests, so every suite starts it the same way.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::Duration;

/// What to do when there is no server.
pub const NO_SERVER: &str = "no MongoDB server for the tests: run scripts/test \
     (it installs jongodb into .test-deps/), or `npm install --prefix .test-deps \
     @jongodb/memory-server-bin-linux-x64-gnu`, or set JONGODB_BIN to a jongodb binary, \
     or set CHATCORE_MONGO_URI to a MongoDB server";

/// The jongodb binary: `JONGODB_BIN`, or the one `scripts/test` installs.
pub fn jongodb_bin() -> Result<PathBuf, String> {
    let path = match std::env::var_os("JONGODB_BIN") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(
            "../.test-deps/node_modules/@jongodb/memory-server-bin-linux-x64-gnu/bin/jongodb",
        ),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("{} does not exist; {NO_SERVER}", path.display()))
    }
}

/// A jongodb process. It is started under a small shell that kills it as
/// soon as our end of its stdin closes: when this value is dropped, or when
/// the test process exits in any way (statics are never dropped).
pub struct Jongo {
    child: Child,
    stdin: Option<ChildStdin>,
    /// The `mongodb://` URI it printed.
    pub uri: String,
    /// The port it listens on.
    pub port: u16,
}

impl Jongo {
    /// Starts jongodb on `port` (0: any free port) and waits until it is ready.
    pub fn start(port: u16) -> Result<Self, String> {
        let bin = jongodb_bin()?;
        let script = r#""$0" "--port=$1" & pid=$!
trap 'kill $pid 2>/dev/null; wait $pid' EXIT
cat >/dev/null"#;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg(&bin)
            .arg(port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(uri) = line.strip_prefix("JONGODB_URI=") {
                    let _ = tx.send(uri.to_owned());
                }
            }
        });
        let uri = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| format!("{} printed no JONGODB_URI line", bin.display()))?;
        let port = uri
            .trim_start_matches("mongodb://")
            .split(['/', '?'])
            .next()
            .and_then(|host| host.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok())
            .ok_or_else(|| format!("no port in {uri}"))?;
        Ok(Self {
            child,
            stdin,
            uri,
            port,
        })
    }

    /// Stops the server and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.flush();
        }
        let _ = self.child.wait();
    }
}

impl Drop for Jongo {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The server a whole test process shares: `CHATCORE_MONGO_URI` when set,
/// otherwise one jongodb started on first use that lives until the process
/// exits. Panics with [`NO_SERVER`] advice when there is neither.
pub fn server_uri() -> String {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    let uri = SERVER.get_or_init(|| match std::env::var("CHATCORE_MONGO_URI") {
        Ok(uri) if !uri.is_empty() => Ok(uri),
        _ => {
            let jongo = Jongo::start(0)?;
            let uri = jongo.uri.clone();
            // Lives until the process exits, which closes its stdin.
            std::mem::forget(jongo);
            Ok(uri)
        }
    });
    match uri {
        Ok(uri) => uri.clone(),
        Err(e) => panic!("{e}"),
    }
}
