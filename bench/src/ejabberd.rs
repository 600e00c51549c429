//! The ejabberd peer: a private node per run, with its own config
//! (bench/ejabberd/ejabberd.yml, ports filled in), ejabberdctl settings
//! (bench/ejabberd/ejabberdctl.cfg), spool (Mnesia) and log directories
//! under the run's temporary directory, pinned to CPU 0 like chatd.
//!
//! `ejabberdctl ... foreground` runs the Erlang VM as the `ejabberd` user
//! (through `su`); the process measured is that VM (`beam.smp`), found by
//! its unique node name. Stopped with `ejabberdctl ... stop`; an `epmd`
//! that was not running before the start is ended by its PID.
//!
//! Three configurations ([`Flavor`]): in memory (`ejabberd.yml`: the relay
//! and idle connections), durable (`ejabberd-sqlite.yml`: users, offline
//! storage and the message archive, mod_mam, on SQLite) and with
//! multi-user chat (`ejabberd-muc.yml`: the group fan-out).

use anyhow::{bail, Context as _, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

/// Which configuration a node runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Flavor {
    /// `ejabberd.yml`: Mnesia, no archive.
    Memory,
    /// `ejabberd-sqlite.yml`: SQL on SQLite, mod_mam archiving every message.
    Sqlite,
    /// `ejabberd-muc.yml`: `ejabberd.yml` with mod_muc.
    Muc,
}

impl Flavor {
    fn config(self) -> &'static str {
        match self {
            Flavor::Memory => "ejabberd.yml",
            Flavor::Sqlite => "ejabberd-sqlite.yml",
            Flavor::Muc => "ejabberd-muc.yml",
        }
    }
}

pub(crate) struct Ejabberd {
    child: Child,
    ctl: Vec<String>,
    epmd_before: Vec<u32>,
    /// The HTTP listener (`/ws`).
    pub(crate) addr: SocketAddr,
    /// The Erlang VM's PID.
    pub(crate) pid: u32,
    /// [`Flavor::Sqlite`]: the database file.
    pub(crate) db: Option<PathBuf>,
}

/// ejabberd's SQLite schema (`priv/sql/lite.sql` of the installed release).
fn sqlite_schema() -> Result<PathBuf> {
    for root in [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib/erlang/lib",
        "/opt/ejabberd/lib",
    ] {
        let Ok(dir) = std::fs::read_dir(root) else {
            continue;
        };
        for e in dir.flatten() {
            let schema = e.path().join("priv/sql/lite.sql");
            if e.file_name().to_string_lossy().starts_with("ejabberd-") && schema.is_file() {
                return Ok(schema);
            }
        }
    }
    bail!("ejabberd's priv/sql/lite.sql not found (apt-get install ejabberd erlang-p1-sqlite3)")
}

/// Creates the database ejabberd will use, from its own schema, in WAL
/// mode (kept in the file; ejabberd opens it with SQLite's defaults, so
/// `synchronous` stays FULL, as chatd sets it).
fn create_sqlite_db(db: &Path) -> Result<()> {
    use chatcore_sqlite::rusqlite;
    let schema = std::fs::read_to_string(sqlite_schema()?)?;
    let conn = rusqlite::Connection::open(db)?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("{} refused WAL mode ({mode})", db.display());
    }
    conn.execute_batch(&schema)
        .context("ejabberd's lite.sql did not apply")?;
    Ok(())
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// PIDs of running (not zombie) processes whose command name is `comm`
/// and whose command line contains `needle`.
fn pids_of(comm: &str, needle: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let name_ok = stat
                .split_once('(')
                .and_then(|(_, r)| r.rsplit_once(')'))
                .is_some_and(|(n, rest)| n == comm && !rest.trim_start().starts_with('Z'));
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            name_ok && cmd.contains(needle)
        })
        .collect()
}

impl Ejabberd {
    /// Starts a node for this run under `tmp`, with the config files of `dir`.
    pub(crate) async fn start(dir: &Path, tmp: &Path, flavor: Flavor) -> Result<Ejabberd> {
        let (c2s, http) = (free_port()?, free_port()?);
        let run = tmp.join(format!("ejabberd-{http}"));
        let (spool, logs) = (run.join("spool"), run.join("logs"));
        std::fs::create_dir_all(&spool)?;
        std::fs::create_dir_all(&logs)?;
        let template = std::fs::read_to_string(dir.join(flavor.config()))
            .with_context(|| format!("cannot read {}/{}", dir.display(), flavor.config()))?;
        let db = (flavor == Flavor::Sqlite).then(|| spool.join("ejabberd.db"));
        if let Some(db) = &db {
            create_sqlite_db(db)?;
        }
        let config = run.join("ejabberd.yml");
        let db_path = db
            .as_ref()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        std::fs::write(
            &config,
            template
                .replace("@C2S_PORT@", &c2s.to_string())
                .replace("@HTTP_PORT@", &http.to_string())
                .replace("@SQL_DB@", &db_path),
        )?;
        // ejabberdctl.cfg and the VM's wrapper it names, side by side in the
        // run's directory (readable by the `ejabberd` user, which runs the wrapper).
        for f in ["ejabberdctl.cfg", "erl-nofile.sh"] {
            std::fs::copy(dir.join(f), run.join(f))
                .with_context(|| format!("cannot copy {}/{f}", dir.display()))?;
        }
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(
                run.join("erl-nofile.sh"),
                std::fs::Permissions::from_mode(0o755),
            )?;
        }
        let ctl_config: PathBuf = std::fs::canonicalize(run.join("ejabberdctl.cfg"))?;
        // The VM runs as `ejabberd`: it must read the config and own its directories.
        for d in [tmp, &run] {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?;
        }
        let st = Command::new("chown")
            .args(["-R", "ejabberd:ejabberd"])
            .arg(&spool)
            .arg(&logs)
            .status()
            .await
            .context("chown (is ejabberd installed? apt-get install ejabberd)")?;
        if !st.success() {
            bail!("chown of the ejabberd spool failed (run as root, with ejabberd installed)");
        }
        let node = format!("bench{http}@localhost");
        let ctl: Vec<String> = vec![
            "--config".into(),
            config.display().to_string(),
            "--ctl-config".into(),
            ctl_config.display().to_string(),
            "--spool".into(),
            spool.display().to_string(),
            "--logs".into(),
            logs.display().to_string(),
            "--node".into(),
            node.clone(),
        ];
        let epmd_before = pids_of("epmd", "");
        let out = std::fs::File::create(run.join("foreground.log"))?;
        let mut c = crate::pinned(Path::new("ejabberdctl"));
        c.args(&ctl)
            .arg("foreground")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true);
        let child = c.spawn().context("cannot start ejabberdctl")?;
        let mut e = Ejabberd {
            child,
            ctl,
            epmd_before,
            addr: SocketAddr::from(([127, 0, 0, 1], http)),
            pid: 0,
            db,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        let needle = format!("-sname {node} ");
        loop {
            if let Ok(Some(st)) = e.child.try_wait() {
                bail!(
                    "ejabberd exited ({st}); see {}",
                    run.join("foreground.log").display()
                );
            }
            if e.pid == 0 {
                e.pid = pids_of("beam.smp", &needle).first().copied().unwrap_or(0);
            }
            if e.pid != 0 && tokio::net::TcpStream::connect(e.addr).await.is_ok() {
                return Ok(e);
            }
            if Instant::now() > deadline {
                e.stop().await;
                bail!("ejabberd did not start in time");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `ejabberdctl ... stop`, then ends an `epmd` this start caused.
    pub(crate) async fn stop(mut self) {
        let _ = Command::new("ejabberdctl")
            .args(&self.ctl)
            .arg("stop")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await;
        if tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
        if self.pid != 0 && !pids_of("beam.smp", "").contains(&self.pid) {
            self.pid = 0;
        }
        if self.pid != 0 {
            // SIGTERM to the VM itself (its PID, found at start).
            let _ = Command::new("kill")
                .arg(self.pid.to_string())
                .status()
                .await;
        }
        for pid in pids_of("epmd", "") {
            if !self.epmd_before.contains(&pid) {
                let _ = Command::new("kill").arg(pid.to_string()).status().await;
            }
        }
    }
}
