//! Model-based property test of to-device delivery through a real
//! [`Server`] (over in-process channels): two devices of one user send
//! payloads (some retried under the same id) to the devices of another,
//! whose connections come and go and acknowledge some of what they
//! processed, against a queue bound small enough to be reached. Checked
//! against a model of each target device's queue:
//!
//! - every `to_device_sent` counts what the model queued, and names as
//!   `full` exactly the targets whose model queue is at the bound;
//! - a device is never handed a payload that was not sent to it, with
//!   other bytes than were sent, or one it acknowledged before;
//! - a device that processes each `(from_device, id)` the first time it
//!   sees it and acknowledges every delivery ends, after the last
//!   reconnects, having processed every payload queued for it (so, with
//!   its deduplication, exactly once), and its queue is empty.

use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::{check_scenarios, ensure, Check, Factory};
use crate::e2e::{device_keys_text, encode_payload, OLM_V1};
use crate::model::{DeviceId, UserId};
use crate::protocol::{
    ClientFrame, IdentityKeys, OutgoingToDevice, ServerFrame, ToDeviceAck, ToDeviceMessage,
    UndeliveredReason,
};
use crate::server::ManualClock;
use crate::session::{connect_in_process, InProcess, PeerInfo};
use crate::Server;

/// Devices of the sender and of the receiver.
const DEVICES: usize = 2;
/// The queue bound of the scenarios.
const BOUND: usize = 6;
const PASSWORD: &str = "tangerine submarine orchestra 77";

/// One step.
#[derive(Clone, Debug)]
pub enum Op {
    /// Sender device `from` sends a new payload to receiver device `to`
    /// (`None`: to every receiver device).
    Send {
        /// Sending device.
        from: usize,
        /// Target device.
        to: Option<usize>,
    },
    /// Sender device `from` sends its `nth` earlier request again (a retry
    /// after a lost reply), if it has one.
    Retry {
        /// Sending device.
        from: usize,
        /// Which earlier request (modulo how many there are).
        nth: usize,
    },
    /// A receiver device connects (resumes), if offline.
    Connect {
        /// Device.
        dev: usize,
    },
    /// A receiver device's connection drops, if online.
    Disconnect {
        /// Device.
        dev: usize,
    },
    /// A receiver device acknowledges up to `n` of the payloads it
    /// processed and has not acknowledged, if online.
    Ack {
        /// Device.
        dev: usize,
        /// How many.
        n: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let d = 0..DEVICES;
    prop_oneof![
        4 => (d.clone(), proptest::option::of(d.clone())).prop_map(|(from, to)| Op::Send { from, to }),
        1 => (d.clone(), 0..8usize).prop_map(|(from, nth)| Op::Retry { from, nth }),
        2 => d.clone().prop_map(|dev| Op::Connect { dev }),
        2 => d.clone().prop_map(|dev| Op::Disconnect { dev }),
        3 => (d, 1..5usize).prop_map(|(dev, n)| Op::Ack { dev, n }),
    ]
}

/// Runs `cases` random scenarios against backends from `factory`; panics
/// with the first (shrunk) scenario that breaks the model.
pub fn check(factory: Arc<dyn Factory>, cases: u32) {
    check_scenarios(
        "to-device model",
        cases,
        proptest::collection::vec(op(), 1..40),
        |ops| run(factory.clone(), ops),
    );
}

/// A signed-in device of the scenario.
struct Dev {
    device: DeviceId,
    token: String,
    conn: Option<InProcess>,
    next_id: u32,
}

/// What one receiver device has: its queue as the model says, what it
/// processed, and what it processed but has not acknowledged.
#[derive(Default)]
struct Receiver {
    queue: BTreeMap<(DeviceId, String), Vec<u8>>,
    processed: BTreeSet<(DeviceId, String)>,
    queued_ever: BTreeSet<(DeviceId, String)>,
    unacked: Vec<(DeviceId, String)>,
    acked: BTreeSet<(DeviceId, String)>,
}

struct World {
    server: Arc<Server>,
    shutdown: CancellationToken,
    sender: UserId,
    receiver: UserId,
    senders: Vec<Dev>,
    receivers: Vec<Dev>,
    model: Vec<Receiver>,
    /// Each sender device's requests so far, for retries.
    sent: Vec<Vec<OutgoingToDevice>>,
    counter: u64,
}

fn open(server: &Arc<Server>, shutdown: &CancellationToken) -> InProcess {
    connect_in_process(server.clone(), PeerInfo::default(), 256, shutdown.clone())
}

/// Sends a request and returns its reply, handing every push met on the
/// way to `on_push`.
async fn request(
    dev: &mut Dev,
    make: impl FnOnce(u32) -> ClientFrame,
    on_push: &mut dyn FnMut(ServerFrame) -> Check<()>,
) -> Check<ServerFrame> {
    dev.next_id += 1;
    let id = dev.next_id;
    let conn = dev.conn.as_mut().ok_or("request on a closed device")?;
    conn.tx
        .send(Ok(make(id)))
        .await
        .map_err(|e| format!("send failed: {e}"))?;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), conn.rx.next())
            .await
            .map_err(|_| format!("no reply to request {id}"))?
            .ok_or_else(|| format!("connection closed before reply to {id}"))?;
        if frame.id() == Some(id) {
            return Ok(frame);
        }
        on_push(frame)?;
    }
}

async fn sign_in(
    server: &Arc<Server>,
    shutdown: &CancellationToken,
    frame: impl FnOnce(u32) -> ClientFrame,
) -> Check<(UserId, Dev)> {
    let mut dev = Dev {
        device: DeviceId::from(""),
        token: String::new(),
        conn: Some(open(server, shutdown)),
        next_id: 0,
    };
    let mut ignore = |_| Ok(());
    request(
        &mut dev,
        |id| ClientFrame::Hello {
            id,
            version: crate::protocol::PROTOCOL_VERSION,
            client: None,
        },
        &mut ignore,
    )
    .await?;
    let ServerFrame::Session {
        user,
        device,
        token: Some(token),
        ..
    } = request(&mut dev, frame, &mut ignore).await?
    else {
        return Err("sign-in refused".into());
    };
    dev.device = device;
    dev.token = token;
    // Identity keys, so that others may address the device.
    let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new())
        .map_err(|e| e.to_string())?;
    let pair =
        ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| e.to_string())?;
    use ring::signature::KeyPair;
    let signing = encode_payload(pair.public_key().as_ref());
    let agreement = encode_payload(&[7u8; 32]);
    let text = device_keys_text(&user, &dev.device, OLM_V1, &signing, &agreement);
    let identity = IdentityKeys {
        algorithm: OLM_V1.into(),
        signing_key: signing,
        agreement_key: agreement,
        signature: encode_payload(pair.sign(text.as_bytes()).as_ref()),
    };
    match request(
        &mut dev,
        |id| ClientFrame::UploadKeys {
            id,
            device_keys: Some(identity),
            one_time_keys: Vec::new(),
            fallback_key: None,
            master_key: None,
            signatures: Vec::new(),
        },
        &mut ignore,
    )
    .await?
    {
        ServerFrame::KeyCounts { .. } => Ok((user, dev)),
        other => Err(format!("upload_keys: {other:?}")),
    }
}

impl World {
    /// Judges a push to receiver device `r` and processes its payloads.
    fn receive(model: &mut Receiver, receiver: &UserId, r: usize, frame: ServerFrame) -> Check<()> {
        let ServerFrame::ToDevice { messages } = frame else {
            return match frame {
                ServerFrame::KeyCounts { id: None, .. } | ServerFrame::DevicesChanged { .. } => {
                    Ok(())
                }
                other => Err(format!("receiver {r}: unexpected frame {other:?}")),
            };
        };
        for ToDeviceMessage {
            id,
            from_user,
            from_device,
            payload,
            ..
        } in messages
        {
            let key = (from_device, id);
            ensure(!model.acked.contains(&key), || {
                format!("receiver {r} was handed {key:?} again after acknowledging it")
            })?;
            let sent = model
                .queue
                .get(&key)
                .ok_or_else(|| format!("receiver {r} was handed {key:?}, never queued for it"))?;
            ensure(
                encode_payload(sent) == payload && from_user != *receiver,
                || format!("receiver {r}: {key:?} is not what was sent"),
            )?;
            // A client processes a payload the first time it sees its
            // key, and acknowledges every delivery of it.
            model.processed.insert(key.clone());
            if !model.unacked.contains(&key) {
                model.unacked.push(key);
            }
        }
        Ok(())
    }

    async fn send(&mut self, from: usize, frame: OutgoingToDevice) -> Check<()> {
        let targets: Vec<usize> = match &frame.device {
            Some(d) => vec![self
                .receivers
                .iter()
                .position(|r| r.device == *d)
                .ok_or("a target never named")?],
            None => (0..DEVICES).collect(),
        };
        let payload =
            crate::e2e::decode_payload(&frame.payload, usize::MAX).map_err(|e| e.to_string())?;
        let from_device = self.senders[from].device.clone();
        let key = (from_device, frame.id.clone());
        // What the model expects: a retry counts as queued again.
        let mut queued = 0u32;
        let mut full = BTreeSet::new();
        for &t in &targets {
            let m = &mut self.model[t];
            if m.queue.contains_key(&key) {
                // A retry of a payload still waiting: stored once.
                queued += 1;
                continue;
            }
            // A new payload, or the retry of one acknowledged already
            // (gone from the queue, so new to the store: the receiver
            // deduplicates it).
            if m.queue.len() >= BOUND {
                full.insert(self.receivers[t].device.clone());
            } else {
                m.queue.insert(key.clone(), payload.clone());
                m.queued_ever.insert(key.clone());
                m.acked.remove(&key);
                queued += 1;
            }
        }
        let reply = request(
            &mut self.senders[from],
            |id| ClientFrame::SendToDevice {
                id,
                kind: OLM_V1.into(),
                messages: vec![frame],
                conv: None,
            },
            &mut |f| match f {
                ServerFrame::DevicesChanged { .. } => Ok(()),
                f => Err(format!("sender pushed {f:?}")),
            },
        )
        .await?;
        let ServerFrame::ToDeviceSent {
            queued: got,
            undelivered,
            ..
        } = reply
        else {
            return Err(format!("send_to_device: {reply:?}"));
        };
        let got_full: BTreeSet<DeviceId> = undelivered
            .iter()
            .filter(|u| u.reason == UndeliveredReason::Full)
            .filter_map(|u| u.device.clone())
            .collect();
        ensure(
            got == queued && got_full == full && undelivered.len() == full.len(),
            || {
                format!(
                    "send {key:?} to {targets:?}: queued {got} full {got_full:?}, \
                     model {queued} {full:?} ({undelivered:?})"
                )
            },
        )?;
        // Pushes to online receivers, judged when they next read.
        Ok(())
    }

    async fn connect(&mut self, r: usize) -> Check<()> {
        if self.receivers[r].conn.is_some() {
            return Ok(());
        }
        let dev = &mut self.receivers[r];
        dev.conn = Some(open(&self.server, &self.shutdown));
        dev.next_id = 0;
        let model = &mut self.model[r];
        let receiver = &self.receiver;
        let mut judge = |f| Self::receive(model, receiver, r, f);
        request(
            dev,
            |id| ClientFrame::Hello {
                id,
                version: crate::protocol::PROTOCOL_VERSION,
                client: None,
            },
            &mut judge,
        )
        .await?;
        let token = dev.token.clone();
        match request(dev, |id| ClientFrame::Resume { id, token }, &mut judge).await? {
            ServerFrame::Session { .. } => Ok(()),
            other => Err(format!("resume: {other:?}")),
        }
    }

    async fn drain(&mut self, r: usize) -> Check<()> {
        if self.receivers[r].conn.is_none() {
            return Ok(());
        }
        let model = &mut self.model[r];
        let receiver = &self.receiver;
        request(
            &mut self.receivers[r],
            |id| ClientFrame::Ping { id },
            &mut |f| Self::receive(model, receiver, r, f),
        )
        .await
        .map(|_| ())
    }

    async fn ack(&mut self, r: usize, n: usize) -> Check<()> {
        if self.receivers[r].conn.is_none() {
            return Ok(());
        }
        self.drain(r).await?;
        let model = &mut self.model[r];
        let n = n.min(model.unacked.len());
        let acks: Vec<(DeviceId, String)> = model.unacked.drain(..n).collect();
        for key in &acks {
            model.queue.remove(key);
            model.acked.insert(key.clone());
        }
        let messages = acks
            .into_iter()
            .map(|(from_device, id)| ToDeviceAck { from_device, id })
            .collect();
        let receiver = &self.receiver;
        match request(
            &mut self.receivers[r],
            |id| ClientFrame::AckToDevice { id, messages },
            &mut |f| Self::receive(model, receiver, r, f),
        )
        .await?
        {
            ServerFrame::Ok { .. } => Ok(()),
            other => Err(format!("ack_to_device: {other:?}")),
        }
    }

    async fn apply(&mut self, op: Op) -> Check<()> {
        match op {
            Op::Send { from, to } => {
                self.counter += 1;
                let payload = format!("payload {} from {from}", self.counter);
                let frame = OutgoingToDevice {
                    user: self.receiver.clone(),
                    device: to.map(|t| self.receivers[t].device.clone()),
                    id: format!("td-{}", self.counter),
                    payload: encode_payload(payload.as_bytes()),
                };
                self.sent[from].push(frame.clone());
                self.send(from, frame).await
            }
            Op::Retry { from, nth } => {
                let Some(frame) = self.sent[from]
                    .get(nth % self.sent[from].len().max(1))
                    .cloned()
                else {
                    return Ok(());
                };
                self.send(from, frame).await
            }
            Op::Connect { dev } => self.connect(dev).await,
            Op::Disconnect { dev } => {
                // Dropped without a word, as a lost network would.
                self.receivers[dev].conn = None;
                Ok(())
            }
            Op::Ack { dev, n } => self.ack(dev, n).await,
        }
    }

    /// Every receiver comes online and acknowledges all it gets until its
    /// queue is empty; then each queued payload was processed once.
    async fn settle_and_verify(&mut self) -> Check<()> {
        for r in 0..DEVICES {
            self.receivers[r].conn = None;
            self.connect(r).await?;
            for _ in 0..(BOUND * 2 + 2) {
                self.ack(r, usize::MAX).await?;
                if self.model[r].queue.is_empty() {
                    break;
                }
            }
            let m = &self.model[r];
            ensure(m.queue.is_empty(), || {
                format!(
                    "receiver {r} never got {:?}",
                    m.queue.keys().collect::<Vec<_>>()
                )
            })?;
            let left = self
                .server
                .backends
                .to_device
                .pending(&self.receiver, &self.receivers[r].device, 100)
                .await
                .map_err(|e| e.to_string())?;
            ensure(left.is_empty(), || {
                format!("receiver {r}: the store still holds {left:?}")
            })?;
            ensure(m.unacked.is_empty(), || {
                format!("receiver {r} left {:?} unacknowledged", m.unacked)
            })?;
            let lost: Vec<_> = m.queued_ever.difference(&m.processed).collect();
            ensure(lost.is_empty(), || {
                format!("receiver {r} never processed {lost:?}")
            })?;
        }
        Ok(())
    }
}

async fn run(factory: Arc<dyn Factory>, ops: Vec<Op>) -> Check<()> {
    let backends = factory.backends().await;
    let clock = Arc::new(ManualClock::new(crate::model::now_millis()));
    let config = crate::Config {
        max_to_device_queue: BOUND,
        ..super::model::fast_config()
    };
    let server = Server::with_clock(backends, config, clock).map_err(|e| e.to_string())?;
    let shutdown = CancellationToken::new();
    let register = |name: &'static str| {
        move |id| ClientFrame::Register {
            id,
            username: name.into(),
            email: format!("{name}@example.com"),
            phone: if name == "sender" {
                "+15550001111".into()
            } else {
                "+15550002222".into()
            },
            display_name: name.into(),
            password: PASSWORD.into(),
            device: "one".into(),
        }
    };
    let login = |name: &'static str| {
        move |id| ClientFrame::Login {
            id,
            login: name.into(),
            password: PASSWORD.into(),
            device: "two".into(),
        }
    };
    let (sender, s0) = sign_in(&server, &shutdown, register("sender")).await?;
    let (_, s1) = sign_in(&server, &shutdown, login("sender")).await?;
    let (receiver, r0) = sign_in(&server, &shutdown, register("receiver")).await?;
    let (_, r1) = sign_in(&server, &shutdown, login("receiver")).await?;
    let mut world = World {
        server,
        shutdown,
        sender,
        receiver,
        senders: vec![s0, s1],
        receivers: vec![r0, r1],
        model: vec![Receiver::default(), Receiver::default()],
        sent: vec![Vec::new(), Vec::new()],
        counter: 0,
    };
    let _ = &world.sender;
    for op in ops {
        world.apply(op).await?;
        for r in 0..DEVICES {
            world.drain(r).await?;
        }
    }
    let verdict = world.settle_and_verify().await;
    world.shutdown.cancel();
    verdict
}
