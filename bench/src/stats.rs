//! Measurements: latency histograms, CPU time and RSS of processes.

use anyhow::{Context as _, Result};
use hdrhistogram::Histogram;
use std::time::{Duration, Instant};

/// Latencies in microseconds, 1 µs to 60 s, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ: 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// User + system CPU ticks of a process so far.
pub(crate) fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the command name: state is field 3; utime 14, stime 15.
    let utime: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
    let stime: u64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(utime + stime)
}

/// Resident set size of a process in KiB (VmRSS of `/proc/<pid>/status`).
pub(crate) fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")
}

/// CPU use of a set of processes over a window.
pub(crate) struct CpuWindow {
    pids: Vec<u32>,
    start_ticks: u64,
    start: Instant,
}

impl CpuWindow {
    pub(crate) fn start(pids: &[u32]) -> Self {
        Self {
            pids: pids.to_vec(),
            start_ticks: pids.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).sum(),
            start: Instant::now(),
        }
    }

    /// Percent of one core used since `start` (100 = one core busy).
    pub(crate) fn percent(&self) -> f64 {
        let ticks: u64 = self.pids.iter().map(|p| cpu_ticks(*p).unwrap_or(0)).sum();
        let secs = self.start.elapsed().as_secs_f64().max(1e-3);
        (ticks.saturating_sub(self.start_ticks) as f64 / TICKS_PER_SEC) / secs * 100.0
    }
}

/// Time a process's threads spent runnable but waiting for a core, and
/// how many times they were put on one (`/proc/<pid>/task/*/schedstat`:
/// run time, run-queue wait, timeslices). On a core shared with other
/// work this is where a server's latency goes that its own code does not
/// spend; on a core of its own it stays near zero.
fn runq(pid: u32) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let mut wait_ns = 0;
    let mut slices = 0;
    for t in tasks.flatten() {
        let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) else {
            continue;
        };
        let f: Vec<u64> = s
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        wait_ns += f.get(1).copied().unwrap_or(0);
        slices += f.get(2).copied().unwrap_or(0);
    }
    (wait_ns, slices)
}

/// A server's run-queue wait over a window (threads that end within it
/// take their share with them: a lower bound).
pub(crate) struct RunQueueWindow {
    pids: Vec<u32>,
    start: (u64, u64),
}

/// [`runq`] summed over processes.
fn runq_all(pids: &[u32]) -> (u64, u64) {
    pids.iter()
        .map(|p| runq(*p))
        .fold((0, 0), |(w, n), (pw, pn)| (w + pw, n + pn))
}

impl RunQueueWindow {
    pub(crate) fn start(pid: u32) -> Self {
        Self::start_all(std::slice::from_ref(&pid))
    }

    /// Over several processes (the nodes and Redis of a multi-node run): their sum.
    pub(crate) fn start_all(pids: &[u32]) -> Self {
        Self {
            pids: pids.to_vec(),
            start: runq_all(pids),
        }
    }

    /// Milliseconds spent waiting for a core, and timeslices, since `start`.
    pub(crate) fn finish(&self) -> (f64, u64) {
        let (w, n) = runq_all(&self.pids);
        (
            w.saturating_sub(self.start.0) as f64 / 1e6,
            n.saturating_sub(self.start.1),
        )
    }
}

/// One process of a server made of several (nodes and Redis): what it is,
/// its share of the measured window.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct ProcShare {
    /// `node-a`, `node-b`, `redis`.
    pub(crate) name: String,
    /// Percent of one core, over the measured window.
    pub(crate) cpu: f64,
    /// VmRSS at the end of the window, KiB (0 if unreadable).
    pub(crate) rss_kib: u64,
}

/// What one relay run measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct RelayReport {
    pub(crate) target: String,
    pub(crate) pairs: usize,
    pub(crate) size: usize,
    pub(crate) window: usize,
    /// Offered rate (messages/s) in fixed-rate mode; 0: flat out.
    pub(crate) offered: f64,
    pub(crate) delivered: u64,
    pub(crate) acks: u64,
    /// chatd-receipts: the `receipt` pushes the senders got.
    pub(crate) receipts: u64,
    /// chatd-typing, chatd-pinging: the requests (`typing`, `ping`) the
    /// background users sent per second.
    pub(crate) typing_per_sec: f64,
    pub(crate) errors: u64,
    pub(crate) secs: f64,
    pub(crate) msgs_per_sec: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    pub(crate) server_cpu: f64,
    pub(crate) client_cpu: f64,
    /// The server's wait for its core in the measured window (ms), and its timeslices.
    pub(crate) server_runq_wait_ms: f64,
    pub(crate) server_slices: u64,
    /// chatd on SQLite: the database's bytes per million messages stored.
    pub(crate) db_bytes_per_million: Option<f64>,
    /// A server of several processes (nodes and Redis): each one's CPU and
    /// RSS; `server_cpu` is their sum. Empty for a single process.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) processes: Vec<ProcShare>,
    /// Nodes on Redis: the `PUBLISH` commands Redis ran in the measured
    /// window per message delivered (what crossing nodes costs in frames).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redis_publishes_per_msg: Option<f64>,
}

impl RelayReport {
    pub(crate) fn fill_latency(&mut self, h: &Histogram<u64>) {
        let ms = |us: u64| us as f64 / 1000.0;
        self.p50_ms = ms(h.value_at_quantile(0.50));
        self.p90_ms = ms(h.value_at_quantile(0.90));
        self.p99_ms = ms(h.value_at_quantile(0.99));
        self.max_ms = ms(h.max());
    }

    pub(crate) fn line(&self) -> String {
        format!(
            "{:<9} pairs={} size={} window={} offered={} -> {:.0} msg/s ({:.0} per server CPU-second), latency p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms max {:.2} ms, errors {}, server CPU {:.0}%, client CPU {:.0}%, server waited for its core {:.0} ms over {} timeslices",
            self.target,
            self.pairs,
            self.size,
            self.window,
            if self.offered > 0.0 { format!("{:.0}/s", self.offered) } else { "flat-out".into() },
            self.msgs_per_sec,
            self.msgs_per_sec / (self.server_cpu / 100.0).max(1e-3),
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.errors,
            self.server_cpu,
            self.client_cpu,
            self.server_runq_wait_ms,
            self.server_slices,
        ) + &self.processes_line()
    }

    /// `; node-a CPU 80% RSS 20 MiB, ...` for a server of several processes.
    fn processes_line(&self) -> String {
        let each: Vec<String> = self
            .processes
            .iter()
            .map(|p| {
                format!(
                    "{} CPU {:.0}% RSS {:.1} MiB",
                    p.name,
                    p.cpu,
                    p.rss_kib as f64 / 1024.0
                )
            })
            .collect();
        let publishes = self
            .redis_publishes_per_msg
            .map_or(String::new(), |p| format!("; {p:.2} PUBLISH per message"));
        if each.is_empty() {
            publishes
        } else {
            format!(" (server = {}{publishes})", each.join(", "))
        }
    }
}

/// Sleeps until `at` (no-op if past).
pub(crate) async fn sleep_until(at: Instant) {
    tokio::time::sleep_until(at.into()).await;
}

/// `d` in seconds as f64, for printing.
pub(crate) fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}
