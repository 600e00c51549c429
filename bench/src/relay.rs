//! The relay scenario for chatd and the ceiling: users in pairs, each
//! message sent by one side and received by the other, latency from the
//! sender's send to the recipient's receipt (both ends in this process, on
//! one monotonic clock: the send time travels in the payload).
//!
//! Flat out: each pair keeps `window` messages in flight (half started by
//! each side); every receipt makes the recipient send one back, so the
//! pair's load stays constant. Fixed rate: every user sends at
//! `rate / users` per second whatever arrives.

use anyhow::{Context as _, Result};
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use hdrhistogram::Histogram;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Ws};
use crate::proto::{self, Account, Incoming};
use crate::redis::RedisProc;
use crate::sio;
use crate::stats::{self, CpuWindow, ProcShare, RelayReport, RunQueueWindow};
use crate::xmpp;

/// Which server the generator talks to.
#[derive(Clone)]
pub(crate) enum Target {
    /// chatd, with the accounts (pairs are lines 2k, 2k+1).
    Chatd(Arc<Vec<Account>>),
    /// chatd, each pair in an end-to-end encrypted conversation: every
    /// message a ciphertext of the payload's size.
    ChatdE2e(Arc<Vec<Account>>),
    /// chatd with receipts: the recipient acknowledges and reads every
    /// message it gets (`ack`, `read`), and the sender is pushed both
    /// receipts.
    ChatdReceipts(Arc<Vec<Account>>),
    /// The raw relay of [`crate::ceiling`].
    Ceiling,
    /// The raw relay, acknowledging each message to its sender.
    CeilingAck,
    /// The Socket.IO peer, with its accounts.
    SocketIo(Arc<Vec<Account>>),
    /// The ejabberd peer over XMPP over WebSocket: user `i` is `u{i}`
    /// (registered in-band on connecting), with this password.
    Ejabberd(Arc<str>),
}

impl Target {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Target::Chatd(_) => "chatd",
            Target::ChatdE2e(_) => "chatd-e2e",
            Target::ChatdReceipts(_) => "chatd-receipts",
            Target::Ceiling => "ceiling",
            Target::CeilingAck => "ceiling-ack",
            Target::SocketIo(_) => "socket.io",
            Target::Ejabberd(_) => "ejabberd",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct RelayOpts {
    pub(crate) pairs: usize,
    pub(crate) size: usize,
    pub(crate) window: usize,
    /// Total messages per second; `None`: flat out with `window` in flight.
    pub(crate) rate: Option<f64>,
    pub(crate) warmup: Duration,
    pub(crate) secs: Duration,
}

/// How frames are made and read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Proto {
    Chatd,
    ChatdE2e,
    ChatdReceipts,
    Raw,
    SocketIo,
    Xmpp,
}

/// Counters of one connection.
struct ConnResult {
    hist: Histogram<u64>,
    delivered: u64,
    acks: u64,
    receipts: u64,
    errors: u64,
}

/// One side of a pair, ready to relay.
struct Side {
    ws: Ws,
    /// chatd: the partner's user id (the `to` of sends).
    peer: String,
    /// chatd: this side's device (the sender an encrypted content names).
    device: String,
    /// How many messages this side starts with (flat out).
    initial: usize,
    /// chatd: the pair's conversation.
    conv: Option<chatcore::model::ConversationId>,
}

/// Connects and signs in both sides of every pair. User `i` connects to
/// `addrs[i % addrs.len()]`: with two nodes, each pair's first user to the
/// first and its second to the second, so that every message crosses.
async fn connect_pairs(
    addrs: &[SocketAddr],
    target: &Target,
    pairs: usize,
    window: usize,
) -> Result<Vec<Side>> {
    anyhow::ensure!(!addrs.is_empty(), "no server address");
    let mut tasks = Vec::with_capacity(pairs * 2);
    for i in 0..pairs * 2 {
        let addr = addrs[i % addrs.len()];
        let target = target.clone();
        let initial = if i % 2 == 0 {
            window.div_ceil(2)
        } else {
            window / 2
        };
        tasks.push(tokio::spawn(async move {
            let src = net::source_for(i);
            let encrypted = matches!(target, Target::ChatdE2e(_));
            match target {
                Target::Chatd(accounts)
                | Target::ChatdE2e(accounts)
                | Target::ChatdReceipts(accounts) => {
                    let me = accounts
                        .get(i)
                        .context("not enough accounts for the pairs")?;
                    let peer = &accounts[i ^ 1];
                    let mut ws =
                        net::connect(addr, "/ws", src, Some("chatcore.v1.msgpack"), false).await?;
                    let (_, device) = proto::resume_device(&mut ws, &me.token).await?;
                    let conv = proto::open_direct(&mut ws, &peer.user, encrypted).await?;
                    proto::focus(&mut ws, &conv).await?;
                    Ok::<_, anyhow::Error>(Side {
                        ws,
                        peer: peer.user.clone(),
                        device,
                        initial,
                        conv: Some(conv),
                    })
                }
                Target::Ceiling | Target::CeilingAck => {
                    let mut ws = net::connect(addr, "/", src, None, false).await?;
                    let ack = if matches!(target, Target::CeilingAck) {
                        " A"
                    } else {
                        ""
                    };
                    ws.send(Message::text(format!("P {} {}{ack}", i / 2, i % 2)))
                        .await?;
                    Ok(Side {
                        ws,
                        peer: String::new(),
                        device: String::new(),
                        initial,
                        conv: None,
                    })
                }
                Target::SocketIo(accounts) => {
                    let me = accounts
                        .get(i)
                        .context("not enough accounts for the pairs")?;
                    let ws = sio::connect(addr, src, &me.token).await?;
                    Ok(Side {
                        ws,
                        device: String::new(),
                        peer: accounts[i ^ 1].user.clone(),
                        initial,
                        conv: None,
                    })
                }
                Target::Ejabberd(password) => {
                    let ws = xmpp::connect(addr, src, i, &password, true).await?;
                    Ok(Side {
                        ws,
                        device: String::new(),
                        peer: xmpp::full_jid(i ^ 1),
                        initial,
                        conv: None,
                    })
                }
            }
        }));
    }
    let mut sides = Vec::with_capacity(tasks.len());
    for t in tasks {
        sides.push(t.await??);
    }
    if matches!(target, Target::ChatdReceipts(_)) {
        // The first message of strangers is a message request, which carries
        // no receipts: each pair's recipient accepts it, as a user would.
        for s in &mut sides {
            if let Some(conv) = &s.conv {
                proto::accept_if_asked(&mut s.ws, conv).await?;
            }
        }
    }
    if matches!(target, Target::Ceiling | Target::CeilingAck) {
        // The ceiling says `R` once both sides of a pair are there.
        for s in &mut sides {
            loop {
                match s.ws.next().await {
                    Some(Ok(Message::Text(t))) if t.as_str() == "R" => break,
                    Some(Ok(_)) => {}
                    other => anyhow::bail!("ceiling pairing failed: {other:?}"),
                }
            }
        }
    }
    Ok(sides)
}

/// Background users beside the relay, typing (chatd-typing) or pinging
/// (chatd-pinging): their tasks and how many requests they sent.
pub(crate) struct Typers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<u64>>,
    started: Instant,
}

impl Typers {
    /// Stops them; the requests they sent per second.
    pub(crate) async fn stop(self) -> f64 {
        let _ = self.stop.send(true);
        let secs = self.started.elapsed().as_secs_f64();
        let mut sent = 0;
        for t in self.tasks {
            sent += t.await.unwrap_or(0);
        }
        sent as f64 / secs.max(0.001)
    }
}

/// What the users beside the relay send once a second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Beside {
    /// `typing` in the pair's conversation (chatd-typing).
    Typing,
    /// `ping` (chatd-pinging): the control, what any request at that rate
    /// costs, answered and nothing pushed.
    Ping,
}

/// Connects `n` users (accounts `first..first + n`, in pairs with a direct
/// conversation each, accepted) that each send `what` once a second, at
/// times spread over the second, and read and drop whatever comes.
pub(crate) async fn start_typers(
    addr: SocketAddr,
    accounts: &Arc<Vec<Account>>,
    first: usize,
    n: usize,
    what: Beside,
) -> Result<Typers> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let gate = Arc::new(tokio::sync::Semaphore::new(256));
    let mut setups = Vec::with_capacity(n);
    for k in 0..n {
        let i = first + k;
        let (accounts, gate) = (accounts.clone(), gate.clone());
        setups.push(tokio::spawn(async move {
            let _permit = gate.acquire().await?;
            let me = accounts
                .get(i)
                .context("not enough accounts for the typers")?;
            let peer = accounts
                .get(first + (k ^ 1))
                .context("typers come in pairs")?;
            let mut ws = net::connect(
                addr,
                "/ws",
                net::source_for(i),
                Some("chatcore.v1.msgpack"),
                true,
            )
            .await?;
            proto::resume(&mut ws, &me.token).await?;
            let conv = proto::open_direct(&mut ws, &peer.user, false).await?;
            Ok::<_, anyhow::Error>((ws, conv))
        }));
    }
    let mut conns = Vec::with_capacity(n);
    for s in setups {
        conns.push(s.await??);
    }
    // Strangers' first conversation is a message request, where typing is
    // not carried: the one asked accepts (the other's answer is refused).
    for (ws, conv) in &mut conns {
        proto::accept_if_asked(ws, conv).await?;
    }
    let mut tasks = Vec::with_capacity(n);
    for (k, (mut ws, conv)) in conns.into_iter().enumerate() {
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let mut sent = 0u64;
            let offset = Duration::from_millis((k % 1000) as u64);
            let mut tick =
                tokio::time::interval_at((Instant::now() + offset).into(), Duration::from_secs(1));
            let mut id: u32 = 100;
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    _ = tick.tick() => {
                        id = id.wrapping_add(1);
                        let m = match what {
                            Beside::Typing => proto::encode_typing(id, &conv, true),
                            Beside::Ping => proto::encode_ping(id),
                        };
                        let Ok(m) = m else { break };
                        if ws.send(m).await.is_err() {
                            break;
                        }
                        sent += 1;
                    }
                    m = ws.next() => if !matches!(m, Some(Ok(_))) { break },
                }
            }
            let _ = ws.close(None).await;
            sent
        }));
    }
    Ok(Typers {
        stop,
        tasks,
        started: Instant::now(),
    })
}

/// Runs the relay scenario against a server whose process is `server_pid`.
pub(crate) async fn run(
    addr: SocketAddr,
    target: Target,
    opts: &RelayOpts,
    server_pid: u32,
) -> Result<RelayReport> {
    run_across(&[addr], target, opts, &[("server", server_pid)], None).await
}

/// [`run`] against a server of several processes: users spread over the
/// nodes at `addrs` (see [`connect_pairs`]), the server's CPU the sum of
/// every process in `procs` (the nodes and what they share, Redis), each
/// one's share and RSS reported when there are several, and the `PUBLISH`es
/// of `redis` (the nodes' Redis) per message delivered.
pub(crate) async fn run_across(
    addrs: &[SocketAddr],
    target: Target,
    opts: &RelayOpts,
    procs: &[(&str, u32)],
    redis: Option<&RedisProc>,
) -> Result<RelayReport> {
    let sides = connect_pairs(addrs, &target, opts.pairs, opts.window).await?;
    let base = Instant::now();
    let record_from = base + opts.warmup;
    let end = record_from + opts.secs;
    let per_conn_interval = opts
        .rate
        .map(|r| Duration::from_secs_f64((opts.pairs * 2) as f64 / r.max(1.0)));
    let proto = match target {
        Target::Chatd(_) => Proto::Chatd,
        Target::ChatdE2e(_) => Proto::ChatdE2e,
        Target::ChatdReceipts(_) => Proto::ChatdReceipts,
        Target::Ceiling | Target::CeilingAck => Proto::Raw,
        Target::SocketIo(_) => Proto::SocketIo,
        Target::Ejabberd(_) => Proto::Xmpp,
    };
    // An encrypted message carries prepared ciphertext of the payload's
    // size: the same bytes on the wire, so that the two runs differ only
    // in what the server does with the kind of content.
    let size = opts.size;
    let mut tasks = Vec::new();
    for (i, side) in sides.into_iter().enumerate() {
        tasks.push(tokio::spawn(drive(
            side,
            proto,
            i,
            size,
            base,
            record_from,
            end,
            per_conn_interval,
        )));
    }
    stats::sleep_until(record_from).await;
    let pids: Vec<u32> = procs.iter().map(|(_, pid)| *pid).collect();
    let server_cpu = CpuWindow::start(&pids);
    let each_cpu: Vec<CpuWindow> = if procs.len() > 1 {
        pids.iter()
            .map(|p| CpuWindow::start(std::slice::from_ref(p)))
            .collect()
    } else {
        Vec::new()
    };
    let client_cpu = CpuWindow::start(&[std::process::id()]);
    let runq = RunQueueWindow::start_all(&pids);
    let published_before = match redis {
        Some(r) => Some(r.publishes().await?),
        None => None,
    };
    stats::sleep_until(end).await;
    let (scpu, ccpu) = (server_cpu.percent(), client_cpu.percent());
    let published = match (redis, published_before) {
        (Some(r), Some(before)) => Some(r.publishes().await?.saturating_sub(before)),
        _ => None,
    };
    let processes = procs
        .iter()
        .zip(&each_cpu)
        .map(|((name, pid), cpu)| ProcShare {
            name: (*name).to_owned(),
            cpu: cpu.percent(),
            rss_kib: stats::rss_kib(*pid).unwrap_or(0),
        })
        .collect();
    let (server_runq_wait_ms, server_slices) = runq.finish();
    let mut hist = stats::histogram();
    let mut report = RelayReport {
        target: target.name().into(),
        pairs: opts.pairs,
        // What each message carried: the payload, or its ciphertext.
        size,
        window: if opts.rate.is_some() { 0 } else { opts.window },
        offered: opts.rate.unwrap_or(0.0),
        secs: stats::secs(opts.secs),
        server_cpu: scpu,
        client_cpu: ccpu,
        server_runq_wait_ms,
        server_slices,
        processes,
        ..Default::default()
    };
    for t in tasks {
        let r = t.await??;
        hist.add(&r.hist)?;
        report.delivered += r.delivered;
        report.acks += r.acks;
        report.receipts += r.receipts;
        report.errors += r.errors;
    }
    report.msgs_per_sec = report.delivered as f64 / report.secs;
    report.redis_publishes_per_msg = published.map(|p| p as f64 / report.delivered.max(1) as f64);
    report.fill_latency(&hist);
    Ok(report)
}

/// The payload: send time (ns after `base`, 16 hex digits), padded to `size`.
/// The payload of a message: the send time in hex, then filler up to
/// `size` (hex digits and `x` are base64 characters too, so a payload
/// passes for a ciphertext).
pub(crate) fn payload(buf: &mut String, base: Instant, size: usize) {
    use std::fmt::Write as _;
    buf.clear();
    let _ = write!(buf, "{:016x}", base.elapsed().as_nanos() as u64);
    while buf.len() < size {
        buf.push('x');
    }
}

pub(crate) fn sent_at(base: Instant, text: &str) -> Option<Instant> {
    let ns = u64::from_str_radix(text.get(..16)?, 16).ok()?;
    Some(base + Duration::from_nanos(ns))
}

#[allow(clippy::too_many_arguments)]
async fn drive(
    side: Side,
    proto: Proto,
    index: usize,
    size: usize,
    base: Instant,
    record_from: Instant,
    end: Instant,
    interval: Option<Duration>,
) -> Result<ConnResult> {
    let mut r = ConnResult {
        hist: stats::histogram(),
        delivered: 0,
        acks: 0,
        receipts: 0,
        errors: 0,
    };
    // The run itself, in a block so that what it counted survives an error.
    let outcome: Result<()> = async {
        let Side {
            mut ws,
            peer,
            device,
            initial,
            conv: _,
        } = side;
        let run_id = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as u64);
        let mut text = String::with_capacity(size + 16);
        let mut next_id: u32 = 10;
        // Request ids of `ack` and `read` (receipts), apart from the sends';
        // the highest seq received, and the highest acknowledged and read.
        let mut receipt_id: u32 = 1 << 31;
        let (mut receipt_seq, mut receipt_sent) = (0u64, 0u64);
        let mut receipt_conv = String::new();
        let mut client_id = String::with_capacity(24);
        let mut make = |text: &str| -> Result<Message> {
            use std::fmt::Write as _;
            next_id = next_id.wrapping_add(1);
            client_id.clear();
            // Unique across runs against one server: a reused client id is an
            // idempotent retry, answered without storing or pushing.
            let _ = write!(client_id, "{run_id}-{index}-{next_id}");
            match proto {
                Proto::Chatd | Proto::ChatdReceipts => {
                    proto::encode_send(next_id, &peer, &client_id, text)
                }
                Proto::ChatdE2e => {
                    proto::encode_send_encrypted(next_id, &peer, &client_id, &device, text)
                }
                Proto::SocketIo => sio::encode_send(next_id, &peer, &client_id, text),
                Proto::Xmpp => Ok(xmpp::encode_message(&peer, &client_id, text)),
                Proto::Raw => Ok(Message::binary(text.as_bytes().to_vec())),
            }
        };
        // XMPP: each message is followed by <r/>, answered by the server's
        // <a h=.../> (stream management) as chatd acknowledges each send;
        // `handled` counts the stanzas received (the server asks with <r/>).
        let xmpp_acks = proto == Proto::Xmpp;
        let mut handled: u32 = 0;
        let mut acked: u32 = 0;
        let mut ticker = interval.map(|i| {
            // Spread the users' ticks over one interval.
            let offset = i.mul_f64((index % 97) as f64 / 97.0);
            let mut t = tokio::time::interval_at((Instant::now() + offset).into(), i);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            t
        });
        if ticker.is_none() {
            for _ in 0..initial {
                payload(&mut text, base, size);
                ws.feed(make(&text)?).await?;
                if xmpp_acks {
                    ws.feed(Message::text(xmpp::REQUEST_ACK)).await?;
                }
            }
            ws.flush().await?;
        }
        let deadline = tokio::time::sleep_until(end.into());
        tokio::pin!(deadline);
        loop {
            let first = tokio::select! {
                _ = &mut deadline => break,
                _ = async { ticker.as_mut().expect("rate mode").tick().await }, if ticker.is_some() => {
                    payload(&mut text, base, size);
                    ws.feed(make(&text)?).await?;
                    if xmpp_acks {
                        ws.feed(Message::text(xmpp::REQUEST_ACK)).await?;
                    }
                    ws.flush().await?;
                    continue;
                }
                m = ws.next() => m,
            };
            let mut next = first;
            let mut replies = 0usize;
            loop {
                let msg = match next {
                    Some(Ok(m)) => m,
                    Some(Err(e)) => return Err(e.into()),
                    None => anyhow::bail!("connection {index} closed by the server"),
                };
                let now = Instant::now();
                let recording = now >= record_from && now < end;
                let received = match &msg {
                    _ if proto == Proto::Xmpp => match xmpp::classify(&msg) {
                        xmpp::Incoming::Delivered(body) => {
                            handled = handled.wrapping_add(1);
                            sent_at(base, &body)
                        }
                        xmpp::Incoming::Stanza => {
                            handled = handled.wrapping_add(1);
                            None
                        }
                        xmpp::Incoming::Error => {
                            handled = handled.wrapping_add(1);
                            r.errors += 1;
                            None
                        }
                        xmpp::Incoming::Acked(h) => {
                            // Each <a/> acknowledges every stanza up to h.
                            if recording {
                                r.acks += u64::from(h.wrapping_sub(acked));
                            }
                            acked = h;
                            None
                        }
                        xmpp::Incoming::AckRequest => {
                            ws.feed(xmpp::encode_ack(handled)).await?;
                            replies += 1;
                            None
                        }
                        xmpp::Incoming::Closed(why) => {
                            anyhow::bail!("connection {index} closed by the server: {why}")
                        }
                        xmpp::Incoming::Other => None,
                    },
                    _ if proto == Proto::SocketIo => match sio::classify(&msg) {
                        sio::Incoming::Delivered(t) => sent_at(base, t),
                        sio::Incoming::Ack => {
                            if recording {
                                r.acks += 1;
                            }
                            None
                        }
                        sio::Incoming::Ping => {
                            ws.feed(Message::text("3")).await?;
                            replies += 1;
                            None
                        }
                        sio::Incoming::Other => None,
                    },
                    Message::Binary(b) if matches!(proto, Proto::Chatd | Proto::ChatdE2e | Proto::ChatdReceipts) => match proto::classify(b) {
                        Incoming::Delivered(t) => {
                            if proto == Proto::ChatdReceipts {
                                if let Some((conv, seq)) = proto::position(b) {
                                    if seq > receipt_seq {
                                        receipt_seq = seq;
                                        receipt_conv.clear();
                                        receipt_conv.push_str(conv);
                                    }
                                }
                            }
                            sent_at(base, t)
                        }
                        Incoming::Other("receipt") => {
                            if recording {
                                r.receipts += 1;
                            }
                            None
                        }
                        Incoming::Ack => {
                            if recording {
                                r.acks += 1;
                            }
                            None
                        }
                        Incoming::Error => {
                            r.errors += 1;
                            None
                        }
                        Incoming::Other(_) => None,
                    },
                    Message::Binary(b) if b.as_ref() == crate::ceiling::ACK => {
                        if recording {
                            r.acks += 1;
                        }
                        None
                    }
                    Message::Binary(b) => std::str::from_utf8(b).ok().and_then(|t| sent_at(base, t)),
                    Message::Close(_) => anyhow::bail!("connection {index} closed by the server"),
                    _ => None,
                };
                if let Some(at) = received {
                    if recording {
                        r.delivered += 1;
                        let us = now.saturating_duration_since(at).as_micros() as u64;
                        r.hist.saturating_record(us.max(1));
                    }
                    if ticker.is_none() {
                        payload(&mut text, base, size);
                        ws.feed(make(&text)?).await?;
                        if xmpp_acks {
                            ws.feed(Message::text(xmpp::REQUEST_ACK)).await?;
                        }
                        replies += 1;
                    }
                }
                // Everything already received is answered with one flush.
                match ws.next().now_or_never() {
                    Some(m) => next = m,
                    None => break,
                }
            }
            // Receipts as a client sends them: what arrived together is
            // acknowledged and read at once, up to its highest seq.
            if receipt_seq > receipt_sent {
                receipt_id = receipt_id.wrapping_add(2);
                for m in proto::encode_ack_and_read(receipt_id, &receipt_conv, receipt_seq)? {
                    ws.feed(m).await?;
                }
                receipt_sent = receipt_seq;
                replies += 1;
            }
            if replies > 0 {
                ws.flush().await?;
            }
        }
        Ok(())
    }
    .await;
    match outcome {
        // Partners stop at slightly different instants: errors after the end are the teardown.
        Err(_) if Instant::now() >= end => Ok(r),
        Err(e) => Err(e),
        Ok(()) => Ok(r),
    }
}
