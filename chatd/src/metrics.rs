//! The `/metrics` endpoint: chatcore's counters and chatd's own, in the
//! Prometheus text exposition format (version 0.0.4).

use chatcore::protocol::ErrorCode;
use chatcore::server::{Metrics, LATENCY_BUCKETS_MS};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Why an upgrade was refused.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Rejection {
    /// The `Origin` is not allowed.
    Origin,
    /// `max_connections` reached, or shutting down.
    Capacity,
    /// Not a valid WebSocket handshake, or no subprotocol we speak.
    BadRequest,
}

impl Rejection {
    const ALL: [Rejection; 3] = [
        Rejection::Origin,
        Rejection::Capacity,
        Rejection::BadRequest,
    ];

    fn label(self) -> &'static str {
        match self {
            Rejection::Origin => "origin",
            Rejection::Capacity => "capacity",
            Rejection::BadRequest => "bad_request",
        }
    }
}

/// Close codes counted by name; any other counts as `other`.
const CLOSE_CODES: [u16; 10] = [1000, 1001, 1002, 1007, 1008, 1009, 1011, 4001, 4008, 0];

/// Counters of the transport, beside chatcore's.
#[derive(Debug, Default)]
pub(crate) struct TransportMetrics {
    rejected: [AtomicU64; 3],
    closes: [AtomicU64; CLOSE_CODES.len()],
}

impl TransportMetrics {
    /// Counts a refused upgrade.
    pub(crate) fn rejected(&self, why: Rejection) {
        self.rejected[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a close frame the server sent.
    pub(crate) fn closed(&self, code: u16) {
        let i = CLOSE_CODES
            .iter()
            .position(|c| *c == code)
            .unwrap_or(CLOSE_CODES.len() - 1);
        self.closes[i].fetch_add(1, Ordering::Relaxed);
    }
}

fn get(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    header(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// Renders every metric.
pub(crate) fn render(
    core: &Metrics,
    transport: &TransportMetrics,
    broker: Option<&chatcore_redis::BrokerStats>,
) -> String {
    let mut out = String::with_capacity(4096);
    single(
        &mut out,
        "chatd_connections",
        "gauge",
        "WebSocket sessions being served now.",
        get(&core.connections),
    );
    single(
        &mut out,
        "chatd_connections_total",
        "counter",
        "WebSocket sessions ever served.",
        get(&core.connections_total),
    );
    single(
        &mut out,
        "chatd_frames_in_total",
        "counter",
        "Client frames received (including undecodable ones).",
        get(&core.frames_in),
    );
    single(
        &mut out,
        "chatd_frames_out_total",
        "counter",
        "Server frames sent.",
        get(&core.frames_out),
    );
    single(
        &mut out,
        "chatd_messages_stored_total",
        "counter",
        "Messages durably appended (retries not counted).",
        get(&core.messages_stored),
    );
    single(
        &mut out,
        "chatd_messages_delivered_total",
        "counter",
        "Message pushes handed to connections.",
        get(&core.messages_delivered),
    );
    single(
        &mut out,
        "chatd_slow_consumers_total",
        "counter",
        "Connections closed (4008) for not reading their pushes fast enough.",
        get(&core.slow_consumers),
    );

    header(
        &mut out,
        "chatd_errors_total",
        "counter",
        "Error frames sent, by code.",
    );
    for (code, n) in ErrorCode::ALL.iter().zip(&core.errors) {
        let _ = writeln!(out, "chatd_errors_total{{code=\"{code}\"}} {}", get(n));
    }

    // chatcore counts each delivery in the first bucket that holds it;
    // Prometheus buckets are cumulative.
    header(
        &mut out,
        "chatd_delivery_latency_seconds",
        "histogram",
        "Time from a message's durable append to its push to a connection.",
    );
    let mut cumulative = 0;
    for (i, n) in core.latency_buckets.iter().enumerate() {
        cumulative += get(n);
        let le = match LATENCY_BUCKETS_MS.get(i) {
            Some(ms) => format!("{}", *ms as f64 / 1000.0),
            None => "+Inf".to_owned(),
        };
        let _ = writeln!(
            out,
            "chatd_delivery_latency_seconds_bucket{{le=\"{le}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "chatd_delivery_latency_seconds_sum {}",
        get(&core.latency_sum_ms) as f64 / 1000.0
    );
    let _ = writeln!(out, "chatd_delivery_latency_seconds_count {cumulative}");

    header(
        &mut out,
        "chatd_upgrades_rejected_total",
        "counter",
        "WebSocket upgrades refused, by reason.",
    );
    for why in Rejection::ALL {
        let _ = writeln!(
            out,
            "chatd_upgrades_rejected_total{{reason=\"{}\"}} {}",
            why.label(),
            get(&transport.rejected[why as usize])
        );
    }

    header(
        &mut out,
        "chatd_ws_closes_total",
        "counter",
        "Close frames the server sent (its own or the echo of the client's), by close code.",
    );
    for (code, n) in CLOSE_CODES.iter().zip(&transport.closes) {
        let label = if *code == 0 {
            "other".to_owned()
        } else {
            code.to_string()
        };
        let _ = writeln!(out, "chatd_ws_closes_total{{code=\"{label}\"}} {}", get(n));
    }
    if let Some(b) = broker {
        broker_metrics(&mut out, b);
    }
    out
}

/// The broker between nodes (`--redis`): what it published, received,
/// shed and dropped, and how late events arrive.
fn broker_metrics(out: &mut String, b: &chatcore_redis::BrokerStats) {
    let counters: [(&str, &str, &AtomicU64); 6] = [
        (
            "chatd_broker_published_total",
            "Events this node handed to Redis.",
            &b.published,
        ),
        (
            "chatd_broker_received_total",
            "Events of other nodes this node received.",
            &b.received,
        ),
        (
            "chatd_broker_shed_total",
            "Events not published because the backlog to Redis was full.",
            &b.shed,
        ),
        (
            "chatd_broker_publish_errors_total",
            "Events lost because Redis refused them or the connection dropped.",
            &b.publish_errors,
        ),
        (
            "chatd_broker_malformed_total",
            "Frames on a channel of this node that did not decode, dropped.",
            &b.malformed,
        ),
        (
            "chatd_broker_reconnects_total",
            "Times the subscribing connection to Redis dropped.",
            &b.reconnects,
        ),
    ];
    for (name, help, value) in counters {
        single(out, name, "counter", help, get(value));
    }
    single(
        out,
        "chatd_broker_lag_milliseconds",
        "gauge",
        "Time from publication to arrival of the latest event received from another node.",
        get(&b.last_lag_ms),
    );
    single(
        out,
        "chatd_broker_max_lag_milliseconds",
        "gauge",
        "The largest such time seen.",
        get(&b.max_lag_ms),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_complete() {
        let core = Metrics::default();
        core.delivered(0);
        core.delivered(3);
        core.delivered(99_999);
        core.error(ErrorCode::Forbidden);
        let t = TransportMetrics::default();
        t.rejected(Rejection::Origin);
        t.closed(1009);
        t.closed(3999);
        let broker = chatcore_redis::BrokerStats::default();
        broker.published.fetch_add(4, Ordering::Relaxed);
        broker.last_lag_ms.store(2, Ordering::Relaxed);
        let text = render(&core, &t, Some(&broker));
        assert!(text.contains("chatd_broker_published_total 4\n"));
        assert!(text.contains("chatd_broker_lag_milliseconds 2\n"));
        assert!(!render(&core, &t, None).contains("chatd_broker"));
        assert!(text.contains("chatd_delivery_latency_seconds_bucket{le=\"0.001\"} 1\n"));
        assert!(text.contains("chatd_delivery_latency_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("chatd_delivery_latency_seconds_bucket{le=\"10\"} 2\n"));
        assert!(text.contains("chatd_delivery_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("chatd_delivery_latency_seconds_count 3\n"));
        assert!(text.contains("chatd_delivery_latency_seconds_sum 100.002\n"));
        assert!(text.contains("chatd_errors_total{code=\"forbidden\"} 1\n"));
        assert!(text.contains("chatd_upgrades_rejected_total{reason=\"origin\"} 1\n"));
        assert!(text.contains("chatd_ws_closes_total{code=\"1009\"} 1\n"));
        assert!(text.contains("chatd_ws_closes_total{code=\"other\"} 1\n"));
        // Every sample line belongs to a declared metric.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(text.contains(&format!("# TYPE {base} ")), "{line}");
        }
    }
}
