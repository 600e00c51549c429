//! The group fan-out scenario: `groups` groups of `members` users, every
//! member connected, the first `senders` members of each group sending to
//! it flat out; every other member receives each message (chatd: a
//! `message` push; Socket.IO: an event to the group's room, all but the
//! sending connection; ejabberd: a XEP-0045 room, the groupchat message
//! reflected to every occupant). Latency from the sender's send to each member's
//! receipt, on one monotonic clock (the send time travels in the payload,
//! as in the relay).
//!
//! Flat out with a window end to end, as in the relay: each sender keeps
//! at most `window` messages in flight, a message being in flight until
//! its acknowledgement (chatd's `sent`, Socket.IO's ack, the room's
//! reflection of the message to its sender in XMPP) has come back and
//! every other member has received it (the payload names its sender, and
//! the generator counts each sender's deliveries); or at a fixed offered
//! rate (`rate`: deliveries per second, each sender sending its share at
//! even intervals whatever comes back), for latency below saturation.
//! Flat out, both servers so carry
//! the same number of messages in flight, whichever acknowledges sooner,
//! and a server's per-connection queue holds at most senders × window
//! pushes of a group (chatd closes a connection whose 256 queued pushes
//! are not read: 4008). Where the generator is the slower side, the
//! throughput is its, and deliveries per server CPU-second compare the
//! servers.

use anyhow::{bail, Context as _, Result};
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Ws};
use crate::proto::{self, Incoming};
use crate::relay::{sent_at, Target};
use crate::sio;
use crate::stats::{self, CpuWindow, RunQueueWindow};
use crate::xmpp;

#[derive(Clone, Debug)]
pub(crate) struct FanoutOpts {
    pub(crate) groups: usize,
    /// Members per group, the creator and the senders included.
    pub(crate) members: usize,
    /// Senders per group (its first members).
    pub(crate) senders: usize,
    /// Messages in flight per sender (not yet acknowledged, or not yet
    /// received by every other member).
    pub(crate) window: usize,
    /// Offered deliveries per second (all groups); `None`: flat out.
    pub(crate) rate: Option<f64>,
    pub(crate) size: usize,
    pub(crate) warmup: Duration,
    pub(crate) secs: Duration,
}

/// What one fan-out run measured.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub(crate) struct FanoutReport {
    pub(crate) target: String,
    pub(crate) groups: usize,
    pub(crate) members: usize,
    pub(crate) senders: usize,
    pub(crate) window: usize,
    /// Offered deliveries per second; 0: flat out.
    pub(crate) offered: f64,
    pub(crate) size: usize,
    /// Connecting, signing in, creating the groups and joining them.
    pub(crate) setup_secs: f64,
    pub(crate) secs: f64,
    /// Sends acknowledged in the measured window.
    pub(crate) messages: u64,
    /// Messages received by members in the measured window.
    pub(crate) deliveries: u64,
    pub(crate) msgs_per_sec: f64,
    pub(crate) deliveries_per_sec: f64,
    pub(crate) deliveries_per_server_cpu_sec: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p90_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// Error frames (chatd) received.
    pub(crate) errors: u64,
    /// Frames in the measured window that were neither a delivery, an
    /// acknowledgement nor an error (chatd: alerts, presence, notices).
    pub(crate) other_frames: u64,
    /// Connections that ended before the measured window did.
    pub(crate) failed_connections: u64,
    pub(crate) server_cpu: f64,
    pub(crate) client_cpu: f64,
    /// The server's wait for its core in the measured window (ms), and its timeslices.
    pub(crate) server_runq_wait_ms: f64,
    pub(crate) server_slices: u64,
}

impl FanoutReport {
    pub(crate) fn line(&self) -> String {
        format!(
            "{:<9} groups={}x{} senders={}/group window={} offered={} size={} -> {:.0} msg/s, {:.1} deliveries per message, {:.0} deliveries/s ({:.0} per server CPU-second), latency p50 {:.2} ms p90 {:.2} ms p99 {:.2} ms max {:.2} ms, errors {}, other frames {}, failed connections {}, server CPU {:.0}%, client CPU {:.0}%, server waited for its core {:.0} ms over {} timeslices (setup {:.1} s)",
            self.target,
            self.groups,
            self.members,
            self.senders,
            self.window,
            if self.offered > 0.0 {
                format!("{:.0} deliveries/s", self.offered)
            } else {
                "flat-out".into()
            },
            self.size,
            self.msgs_per_sec,
            self.deliveries as f64 / (self.messages as f64).max(1.0),
            self.deliveries_per_sec,
            self.deliveries_per_server_cpu_sec,
            self.p50_ms,
            self.p90_ms,
            self.p99_ms,
            self.max_ms,
            self.errors,
            self.other_frames,
            self.failed_connections,
            self.server_cpu,
            self.client_cpu,
            self.server_runq_wait_ms,
            self.server_slices,
            self.setup_secs,
        )
    }
}

/// How frames are made and read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Chatd,
    SocketIo,
    Xmpp,
}

/// One sender's messages in flight: sent against received by the members.
struct SenderFlow {
    /// Messages sent (acknowledged or not).
    sent: AtomicU64,
    /// This sender's messages received by members.
    delivered: AtomicU64,
    /// Recipients of each message: the members but the sender.
    recipients: u64,
    /// Deliveries outstanding at which the sender waits: window × recipients.
    limit: u64,
    /// Wakes the sender when its outstanding deliveries fall below the limit.
    notify: Notify,
}

impl SenderFlow {
    fn outstanding(&self) -> u64 {
        (self.sent.load(Ordering::Relaxed) * self.recipients)
            .saturating_sub(self.delivered.load(Ordering::Relaxed))
    }

    fn open(&self) -> bool {
        self.outstanding() < self.limit
    }

    /// `n` deliveries received; wakes the sender if that reopened its window.
    fn delivered(&self, n: u64) {
        let before = self.outstanding();
        self.delivered.fetch_add(n, Ordering::Relaxed);
        if before >= self.limit && self.open() {
            self.notify.notify_waiters();
        }
    }
}

/// The payload: send time (ns after `base`, 16 hex digits) and the
/// sender's slot in its group (4 hex digits), padded to `size`.
fn payload(buf: &mut String, base: Instant, slot: usize, size: usize) {
    use std::fmt::Write as _;
    buf.clear();
    let _ = write!(
        buf,
        "{:016x}{:04x}",
        base.elapsed().as_nanos() as u64,
        slot & 0xffff
    );
    while buf.len() < size {
        buf.push('x');
    }
}

/// The sender's slot of a payload made by [`payload`].
fn slot_of(text: &str) -> Option<usize> {
    usize::from_str_radix(text.get(16..20)?, 16).ok()
}

/// What every connection of a run adds to.
struct Shared {
    hist: Mutex<Histogram<u64>>,
    deliveries: AtomicU64,
    acks: AtomicU64,
    errors: AtomicU64,
    others: AtomicU64,
    /// Error frames printed so far (the first few are).
    printed: AtomicUsize,
}

/// One member's connection, signed in.
struct Conn {
    ws: Ws,
    user: String,
}

/// Connects and signs in `n` users, at most 256 at a time (chatd refuses
/// more than 1,000 connections not yet signed in).
async fn connect_all(addr: SocketAddr, target: &Target, n: usize) -> Result<Vec<Conn>> {
    let gate = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (target, gate) = (target.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let src = net::source_for(i);
            match target {
                Target::Chatd(accounts) => {
                    let me = accounts.get(i).context("not enough accounts")?;
                    let mut ws =
                        net::connect(addr, "/ws", src, Some("chatcore.v1.msgpack"), false).await?;
                    let user = proto::resume(&mut ws, &me.token).await?;
                    Ok::<_, anyhow::Error>(Conn { ws, user })
                }
                Target::SocketIo(accounts) => {
                    let me = accounts.get(i).context("not enough accounts")?;
                    let ws = sio::connect(addr, src, &me.token).await?;
                    Ok(Conn {
                        ws,
                        user: me.user.clone(),
                    })
                }
                Target::Ejabberd(password) => {
                    let ws = xmpp::connect(addr, src, i, &password, true).await?;
                    Ok(Conn {
                        ws,
                        user: xmpp::user(i),
                    })
                }
                Target::Ceiling | Target::CeilingAck => bail!("the ceiling has no groups"),
                Target::ChatdE2e(_) | Target::ChatdReceipts(_) => {
                    bail!("chatd-e2e and chatd-receipts are relay targets")
                }
            }
        }));
    }
    let mut conns = Vec::with_capacity(n);
    for (i, t) in tasks.into_iter().enumerate() {
        conns.push(t.await?.with_context(|| format!("connection {i}"))?);
    }
    Ok(conns)
}

/// Runs the fan-out scenario against a server whose process is `server_pid`.
pub(crate) async fn run(
    addr: SocketAddr,
    target: Target,
    opts: &FanoutOpts,
    server_pid: u32,
) -> Result<FanoutReport> {
    let (g_n, m_n) = (opts.groups, opts.members);
    if m_n < 2 || opts.senders == 0 || opts.senders > m_n || opts.window == 0 {
        bail!(
            "a fan-out group needs at least 2 members, 1 to {m_n} senders and a window of at least 1"
        );
    }
    let proto = match target {
        Target::Chatd(_) => Proto::Chatd,
        Target::SocketIo(_) => Proto::SocketIo,
        Target::Ejabberd(_) => Proto::Xmpp,
        Target::Ceiling | Target::CeilingAck => bail!("the ceiling has no groups"),
        Target::ChatdE2e(_) | Target::ChatdReceipts(_) => {
            bail!("chatd-e2e and chatd-receipts are relay targets")
        }
    };
    let setup_start = Instant::now();
    let conns = connect_all(addr, &target, g_n * m_n).await?;
    let members = if proto == Proto::Xmpp {
        join_rooms(conns, g_n, m_n).await?
    } else {
        open_groups(conns, proto, g_n, m_n).await?
    };
    let convs: Vec<String> = match proto {
        Proto::Xmpp => (0..g_n).map(xmpp::room_jid).collect(),
        _ => members
            .iter()
            .step_by(m_n)
            .map(|(_, conv, _)| conv.clone())
            .collect(),
    };
    let members: Vec<(Ws, u32)> = members.into_iter().map(|(ws, _, h)| (ws, h)).collect();
    let setup_secs = setup_start.elapsed().as_secs_f64();

    let recipients = (m_n - 1) as u64;
    let flows: Vec<Arc<Vec<SenderFlow>>> = (0..g_n)
        .map(|_| {
            Arc::new(
                (0..opts.senders)
                    .map(|_| SenderFlow {
                        sent: AtomicU64::new(0),
                        delivered: AtomicU64::new(0),
                        recipients,
                        limit: opts.window as u64 * recipients,
                        notify: Notify::new(),
                    })
                    .collect(),
            )
        })
        .collect();
    let shared = Arc::new(Shared {
        hist: Mutex::new(stats::histogram()),
        deliveries: AtomicU64::new(0),
        acks: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        others: AtomicU64::new(0),
        printed: AtomicUsize::new(0),
    });
    let base = Instant::now();
    let record_from = base + opts.warmup;
    let end = record_from + opts.secs;
    // Fixed rate: each sender's interval between messages.
    let interval = opts.rate.map(|r| {
        let msgs = r / recipients as f64;
        Duration::from_secs_f64((g_n * opts.senders) as f64 / msgs.max(1e-3))
    });
    let mut tasks = Vec::with_capacity(members.len());
    for (i, (ws, handled)) in members.into_iter().enumerate() {
        let g = i / m_n;
        let member = Member {
            ws,
            handled,
            proto,
            index: i,
            conv: convs[g].clone(),
            slot: i % m_n,
            window: if i % m_n < opts.senders {
                opts.window
            } else {
                0
            },
            interval: interval.filter(|_| i % m_n < opts.senders),
            flows: flows[g].clone(),
            shared: shared.clone(),
        };
        tasks.push(tokio::spawn(member.drive(
            opts.size,
            base,
            record_from,
            end,
        )));
    }
    stats::sleep_until(record_from).await;
    let server_cpu = CpuWindow::start(&[server_pid]);
    let client_cpu = CpuWindow::start(&[std::process::id()]);
    let runq = RunQueueWindow::start(server_pid);
    stats::sleep_until(end).await;
    let (scpu, ccpu) = (server_cpu.percent(), client_cpu.percent());
    let (server_runq_wait_ms, server_slices) = runq.finish();
    let mut failed = 0u64;
    for (i, t) in tasks.into_iter().enumerate() {
        if let Err(e) = t.await? {
            failed += 1;
            if failed <= 3 {
                eprintln!("  fan-out connection {i} failed: {e:#}");
            }
        }
    }
    let secs = stats::secs(opts.secs);
    let mut report = FanoutReport {
        target: target.name().into(),
        groups: g_n,
        members: m_n,
        senders: opts.senders,
        window: opts.window,
        offered: opts.rate.unwrap_or(0.0),
        size: opts.size,
        setup_secs,
        secs,
        messages: shared.acks.load(Ordering::Relaxed),
        deliveries: shared.deliveries.load(Ordering::Relaxed),
        errors: shared.errors.load(Ordering::Relaxed),
        other_frames: shared.others.load(Ordering::Relaxed),
        failed_connections: failed,
        server_cpu: scpu,
        client_cpu: ccpu,
        server_runq_wait_ms,
        server_slices,
        ..Default::default()
    };
    report.msgs_per_sec = report.messages as f64 / secs;
    report.deliveries_per_sec = report.deliveries as f64 / secs;
    report.deliveries_per_server_cpu_sec = report.deliveries_per_sec / (scpu / 100.0).max(1e-3);
    let hist = shared.hist.lock().expect("histogram lock");
    let ms = |us: u64| us as f64 / 1000.0;
    report.p50_ms = ms(hist.value_at_quantile(0.50));
    report.p90_ms = ms(hist.value_at_quantile(0.90));
    report.p99_ms = ms(hist.value_at_quantile(0.99));
    report.max_ms = ms(hist.max());
    Ok(report)
}

/// chatd and Socket.IO: one member of each group (its first) creates it
/// with the others, then every member opens it (chatd: `focus`, so a push
/// is one `message` frame without an `alert`, as in the relay; Socket.IO:
/// joins its room). Returns each member's connection and group.
async fn open_groups(
    mut conns: Vec<Conn>,
    proto: Proto,
    g_n: usize,
    m_n: usize,
) -> Result<Vec<(Ws, String, u32)>> {
    let mut convs = Vec::with_capacity(g_n);
    for g in 0..g_n {
        let others: Vec<String> = conns[g * m_n + 1..(g + 1) * m_n]
            .iter()
            .map(|c| c.user.clone())
            .collect();
        let title = format!("fan-out {g}");
        let creator = &mut conns[g * m_n].ws;
        let conv = match proto {
            Proto::Chatd => proto::create_group(creator, &title, &others).await?.0,
            Proto::SocketIo => sio::create_group(creator, &title, &others).await?,
            Proto::Xmpp => bail!("XMPP rooms are joined by join_rooms"),
        };
        convs.push(conv);
    }
    let mut tasks = Vec::with_capacity(conns.len());
    for (i, mut c) in conns.into_iter().enumerate() {
        let conv = convs[i / m_n].clone();
        tasks.push(tokio::spawn(async move {
            match proto {
                Proto::Chatd => {
                    proto::focus(&mut c.ws, &chatcore::model::ConversationId(conv.clone())).await?
                }
                Proto::SocketIo => sio::join_group(&mut c.ws, &conv).await?,
                Proto::Xmpp => bail!("XMPP rooms are joined by join_rooms"),
            }
            Ok::<_, anyhow::Error>((c.ws, conv, 0))
        }));
    }
    let mut members = Vec::with_capacity(tasks.len());
    for t in tasks {
        members.push(t.await??);
    }
    Ok(members)
}

/// XMPP: the first member of each group creates its room (an instant
/// room, `g<group>@conference.localhost`), then every other member enters
/// it, all at once; a member that is in keeps reading its stream (the
/// presences of those entering after it, the server's `<r/>`) until all
/// are in. Returns each member's connection, room and stanzas handled.
async fn join_rooms(conns: Vec<Conn>, g_n: usize, m_n: usize) -> Result<Vec<(Ws, String, u32)>> {
    let mut conns: Vec<(Conn, u32)> = conns.into_iter().map(|c| (c, 0)).collect();
    for g in 0..g_n {
        let (c, handled) = &mut conns[g * m_n];
        xmpp::join_room(&mut c.ws, &xmpp::room_jid(g), &c.user, true, handled).await?;
    }
    let (start, _) = tokio::sync::watch::channel(false);
    let joined = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::with_capacity(conns.len());
    for (i, (mut c, mut handled)) in conns.into_iter().enumerate() {
        let room = xmpp::room_jid(i / m_n);
        let (joined, failed, gate) = (joined.clone(), failed.clone(), gate.clone());
        let mut go = start.subscribe();
        tasks.push(tokio::spawn(async move {
            let r = async {
                if i % m_n != 0 {
                    let _permit = gate.acquire().await?;
                    xmpp::join_room(&mut c.ws, &room, &c.user, false, &mut handled).await?;
                }
                joined.fetch_add(1, Ordering::Relaxed);
                xmpp::drain_until(&mut c.ws, &mut handled, async {
                    let _ = go.wait_for(|v| *v).await;
                })
                .await?;
                Ok::<_, anyhow::Error>((c.ws, room, handled))
            }
            .await;
            if r.is_err() {
                failed.fetch_add(1, Ordering::Relaxed);
            }
            r
        }));
    }
    while joined.load(Ordering::Relaxed) < tasks.len() && failed.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = start.send(true);
    let mut members = Vec::with_capacity(tasks.len());
    for (i, t) in tasks.into_iter().enumerate() {
        members.push(t.await?.with_context(|| format!("room member {i}"))?);
    }
    Ok(members)
}

/// One member's connection during the run.
struct Member {
    ws: Ws,
    /// XMPP: stanzas received so far (stream management's `h`).
    handled: u32,
    proto: Proto,
    index: usize,
    conv: String,
    /// Its place in its group: senders are the first.
    slot: usize,
    /// Messages in flight: 0 for a member that only receives.
    window: usize,
    /// Fixed rate, a sender: the time between its messages (the window is not used).
    interval: Option<Duration>,
    /// The group's senders' flows.
    flows: Arc<Vec<SenderFlow>>,
    shared: Arc<Shared>,
}

impl Member {
    async fn drive(
        self,
        size: usize,
        base: Instant,
        record_from: Instant,
        end: Instant,
    ) -> Result<()> {
        let outcome = self.run(size, base, record_from, end).await;
        match outcome {
            // Connections stop at slightly different instants: errors after the end are the teardown.
            Err(_) if Instant::now() >= end => Ok(()),
            other => other,
        }
    }

    async fn run(
        self,
        size: usize,
        base: Instant,
        record_from: Instant,
        end: Instant,
    ) -> Result<()> {
        let Member {
            mut ws,
            mut handled,
            proto,
            index,
            conv,
            slot,
            window,
            interval,
            flows,
            shared,
        } = self;
        // A member that only receives never looks at its own flow.
        let flow = &flows[slot.min(flows.len() - 1)];
        let mut received_from = vec![0u64; flows.len()];
        let run_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut text = String::with_capacity(size + 16);
        let mut next_id: u32 = 10;
        let mut client_id = String::with_capacity(24);
        let mut make = |text: &str| -> Result<Message> {
            use std::fmt::Write as _;
            next_id = next_id.wrapping_add(1).max(10);
            client_id.clear();
            // Unique across runs against one server (see the relay).
            let _ = write!(client_id, "{run_id}-{index}-{next_id}");
            match proto {
                Proto::Chatd => proto::encode_conv_send(next_id, &conv, &client_id, text),
                Proto::SocketIo => sio::encode_group_send(next_id, &conv, &client_id, text),
                Proto::Xmpp => Ok(xmpp::encode_groupchat(&conv, &client_id, text)),
            }
        };
        let mut unacked = 0usize;
        let mut latencies: Vec<u64> = Vec::with_capacity(64);
        let deadline = tokio::time::sleep_until(end.into());
        tokio::pin!(deadline);
        let mut ticker = interval.map(|i| {
            // Spread the senders' ticks over one interval.
            let offset = i.mul_f64((index % 97) as f64 / 97.0);
            let mut t = tokio::time::interval_at((Instant::now() + offset).into(), i);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            t
        });
        let paced = ticker.is_some();
        loop {
            // Send while the window allows: acknowledgements and deliveries.
            if !paced && unacked < window {
                let mut fed = 0;
                while unacked < window && flow.open() {
                    payload(&mut text, base, slot, size);
                    flow.sent.fetch_add(1, Ordering::Relaxed);
                    ws.feed(make(&text)?).await?;
                    unacked += 1;
                    fed += 1;
                }
                if fed > 0 {
                    ws.flush().await?;
                }
            }
            // A sender whose acknowledgements are in waits for its deliveries.
            let blocked = !paced && unacked < window;
            let reopened = flow.notify.notified();
            tokio::pin!(reopened);
            if blocked {
                reopened.as_mut().enable();
                if flow.open() {
                    continue;
                }
            }
            let first = tokio::select! {
                _ = &mut deadline => break,
                _ = &mut reopened, if blocked => continue,
                _ = async {
                    if let Some(t) = ticker.as_mut() {
                        t.tick().await;
                    }
                }, if paced => {
                    payload(&mut text, base, slot, size);
                    flow.sent.fetch_add(1, Ordering::Relaxed);
                    ws.send(make(&text)?).await?;
                    unacked += 1;
                    continue;
                }
                m = ws.next() => m,
            };
            let mut next = first;
            let mut replies = 0usize;
            let mut received = 0u64;
            let mut recorded = 0u64;
            loop {
                let msg = match next {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => return Err(e.into()),
                    None => bail!("connection {index} ended"),
                };
                let now = Instant::now();
                let recording = now >= record_from && now < end;
                let delivered = match &msg {
                    Message::Binary(b) if proto == Proto::Chatd => match proto::classify(b) {
                        Incoming::Delivered(t) => sent_at(base, t).zip(slot_of(t)),
                        Incoming::Ack => {
                            unacked = unacked.saturating_sub(1);
                            if recording {
                                shared.acks.fetch_add(1, Ordering::Relaxed);
                            }
                            None
                        }
                        Incoming::Error => {
                            // A refused send frees its slot and was never sent.
                            if unacked > 0 {
                                unacked -= 1;
                                flow.sent.fetch_sub(1, Ordering::Relaxed);
                            }
                            shared.errors.fetch_add(1, Ordering::Relaxed);
                            if shared.printed.fetch_add(1, Ordering::Relaxed) < 3 {
                                eprintln!(
                                    "  fan-out connection {index}: {}",
                                    proto::describe_error(b).unwrap_or_default()
                                );
                            }
                            None
                        }
                        Incoming::Other(_) => {
                            if recording {
                                shared.others.fetch_add(1, Ordering::Relaxed);
                            }
                            None
                        }
                    },
                    _ if proto == Proto::SocketIo => match sio::classify(&msg) {
                        sio::Incoming::Delivered(t) => sent_at(base, t).zip(slot_of(t)),
                        sio::Incoming::Ack => {
                            unacked = unacked.saturating_sub(1);
                            if recording {
                                shared.acks.fetch_add(1, Ordering::Relaxed);
                            }
                            None
                        }
                        sio::Incoming::Ping => {
                            ws.feed(Message::text("3")).await?;
                            replies += 1;
                            None
                        }
                        sio::Incoming::Other => {
                            if recording {
                                shared.others.fetch_add(1, Ordering::Relaxed);
                            }
                            None
                        }
                    },
                    _ if proto == Proto::Xmpp => {
                        match xmpp::classify(&msg) {
                            xmpp::Incoming::Delivered(body) => {
                                handled = handled.wrapping_add(1);
                                let at = sent_at(base, &body).zip(slot_of(&body));
                                match at {
                                    // The room reflects a message to its sender: the acknowledgement.
                                    Some((_, from)) if from == slot => {
                                        unacked = unacked.saturating_sub(1);
                                        if recording {
                                            shared.acks.fetch_add(1, Ordering::Relaxed);
                                        }
                                        None
                                    }
                                    other => other,
                                }
                            }
                            xmpp::Incoming::Error => {
                                handled = handled.wrapping_add(1);
                                if unacked > 0 {
                                    unacked -= 1;
                                    flow.sent.fetch_sub(1, Ordering::Relaxed);
                                }
                                shared.errors.fetch_add(1, Ordering::Relaxed);
                                if shared.printed.fetch_add(1, Ordering::Relaxed) < 3 {
                                    eprintln!("  fan-out connection {index}: a message of type error: {:?}", msg.to_text().unwrap_or_default());
                                }
                                None
                            }
                            xmpp::Incoming::Stanza => {
                                handled = handled.wrapping_add(1);
                                if recording {
                                    shared.others.fetch_add(1, Ordering::Relaxed);
                                }
                                None
                            }
                            xmpp::Incoming::AckRequest => {
                                ws.feed(xmpp::encode_ack(handled)).await?;
                                replies += 1;
                                None
                            }
                            xmpp::Incoming::Closed(why) => {
                                bail!("connection {index} closed by the server: {why}")
                            }
                            xmpp::Incoming::Acked(_) | xmpp::Incoming::Other => None,
                        }
                    }
                    Message::Close(c) => bail!("connection {index} closed by the server: {c:?}"),
                    _ => None,
                };
                if let Some((at, from)) = delivered {
                    received += 1;
                    if let Some(n) = received_from.get_mut(from) {
                        *n += 1;
                    }
                    if recording {
                        recorded += 1;
                        let us = now.saturating_duration_since(at).as_micros() as u64;
                        latencies.push(us.max(1));
                    }
                }
                // Everything already received, then one flush and one count.
                match ws.next().now_or_never() {
                    Some(m) => next = m,
                    None => break,
                }
            }
            if received > 0 {
                for (f, n) in flows.iter().zip(received_from.iter_mut()) {
                    if *n > 0 {
                        f.delivered(*n);
                        *n = 0;
                    }
                }
            }
            if recorded > 0 {
                shared.deliveries.fetch_add(recorded, Ordering::Relaxed);
                let mut h = shared.hist.lock().expect("histogram lock");
                for us in latencies.drain(..) {
                    h.saturating_record(us);
                }
            }
            if replies > 0 {
                ws.flush().await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_carries_the_send_time_and_the_sender() {
        let base = Instant::now();
        let mut text = String::new();
        payload(&mut text, base, 3, 64);
        assert_eq!(text.len(), 64);
        assert_eq!(slot_of(&text), Some(3));
        let at = sent_at(base, &text).unwrap();
        assert!(at >= base && at <= Instant::now());
    }

    #[test]
    fn a_sender_waits_until_every_member_has_its_messages() {
        let f = SenderFlow {
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            recipients: 3,
            limit: 2 * 3,
            notify: Notify::new(),
        };
        f.sent.fetch_add(2, Ordering::Relaxed);
        assert!(!f.open(), "two messages to three members are a window of 2");
        let woken = f.notify.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        f.delivered(2);
        assert!(f.open());
        assert!(
            woken.now_or_never().is_some(),
            "reopening the window wakes the sender"
        );
        f.delivered(4);
        assert_eq!(f.outstanding(), 0);
    }
}
