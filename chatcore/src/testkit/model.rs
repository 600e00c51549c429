//! Model-based property tests of whole sessions.
//!
//! Random interleavings of register, login, send, retry, ack, disconnect,
//! reconnect and sync by several users on several devices run through a real [`Server`] (over
//! in-process channels) and are checked against a simple model:
//!
//! - every `sent` carries the conversation's next seq (gap-free, ordered),
//!   and a retried `client_id` gets the first send's id and seq, marked
//!   duplicate, and is never stored twice;
//! - a device never receives a message at or below its acknowledged seq;
//! - within a sync reply each conversation's messages ascend by seq;
//! - in the end every device of every member has received every message of
//!   its conversations, with the content that was sent;
//! - contact requests, blocks and presence settings interleave with the rest:
//!   a send between two users of whom one blocks the other is refused and
//!   nothing of it is stored or delivered, and no device is ever pushed the
//!   real presence of a user whose presence is hidden from it (every device
//!   is drained after each step, so each push is judged by the state of the
//!   step that caused it);
//! - a first message between users who are not contacts opens a message
//!   request: its recipient's sends are refused and its presence is hidden
//!   from the sender until it accepts (or they become contacts), and the
//!   recipient still receives every message;
//! - replies, edits, reactions and deletions interleave with the rest, each
//!   answered as the rules say (only one's own messages are edited or
//!   deleted, only messages are replied to, edited or reacted to, nothing
//!   points at a deleted message), retried ones answered as their first
//!   send (idempotent toggles), and a deletion leaves tombstones of the
//!   target, its edits and its reactions in the store, which every device
//!   that syncs later receives.

use futures_util::{SinkExt, StreamExt};
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use super::{check_scenarios, ensure, Check, Factory};
use crate::account::Argon2Config;
use crate::contacts::{self as rules, sees_presence, Action};
use crate::model::{
    Audience, Content, ConversationId, Message, MessageId, Privacy, Rel, RelKind, UserId,
    MAX_REACTIONS,
};
use crate::protocol::{ClientFrame, ContactAction, ErrorCode, ServerFrame};
use crate::server::{Clock, ManualClock};
use crate::session::{connect_in_process, InProcess, PeerInfo};
use crate::store::{Link, Relation};
use crate::{Config, Server};

/// Users a scenario may register, and devices each may sign in.
const MAX_USERS: usize = 4;
const MAX_DEVICES: usize = 3;
const PASSWORD: &str = "tangerine submarine orchestra 77";

/// One step of a scenario.
#[derive(Clone, Debug)]
pub enum Op {
    /// A new user registers (signing in their first device), up to four users.
    Register,
    /// A user signs in on one more device (a new device starts with nothing
    /// acknowledged), up to three devices.
    Login {
        /// User (modulo the users registered so far).
        user: usize,
    },
    /// Device `dev` of user `from` sends a new message to user `to`.
    Send {
        /// Sender.
        from: usize,
        /// Sending device.
        dev: usize,
        /// Recipient.
        to: usize,
    },
    /// The device resends one of its user's earlier messages (same client id).
    Retry {
        /// Sender.
        from: usize,
        /// Sending device.
        dev: usize,
        /// Which earlier send (modulo their count).
        pick: usize,
    },
    /// The device acknowledges everything it has received without gaps.
    Ack {
        /// User.
        user: usize,
        /// Device.
        dev: usize,
    },
    /// The user reads, on this device, what the device acknowledged.
    Read {
        /// User.
        user: usize,
        /// Device.
        dev: usize,
    },
    /// The device drops its connection.
    Disconnect {
        /// User.
        user: usize,
        /// Device.
        dev: usize,
    },
    /// The device reconnects (resume by token) if it is offline.
    Reconnect {
        /// User.
        user: usize,
        /// Device.
        dev: usize,
    },
    /// The device syncs one page.
    Sync {
        /// User.
        user: usize,
        /// Device.
        dev: usize,
    },
    /// `user` moves its contact link with `other` on: asks, accepts their
    /// request, or removes the contact.
    Contact {
        /// Who acts.
        user: usize,
        /// The other user.
        other: usize,
    },
    /// `user` blocks `other`, or unblocks them if blocked.
    Block {
        /// Who acts.
        user: usize,
        /// The other user.
        other: usize,
    },
    /// `user` accepts the message request of `other`, if there is one (and
    /// is told there is none otherwise).
    Answer {
        /// Who acts.
        user: usize,
        /// The other user.
        other: usize,
    },
    /// `user` sets who sees its presence.
    Presence {
        /// Who acts.
        user: usize,
        /// 0: everyone, 1: contacts, 2: nobody.
        audience: usize,
    },
    /// The device sends an entry that points at one of the entries of its
    /// user's conversations: a reply, an edit, a reaction or a deletion
    /// (of a message, or of a reaction: taking it back).
    Relate {
        /// Who acts.
        user: usize,
        /// Sending device.
        dev: usize,
        /// Which entry (modulo the entries of the user's conversations).
        pick: usize,
        /// 0: reply, 1: edit, 2: reaction, 3: deletion.
        kind: usize,
    },
    /// The device resends one of its user's earlier replies, edits,
    /// reactions or deletions (same client id).
    RetryRelate {
        /// Who acts.
        user: usize,
        /// Sending device.
        dev: usize,
        /// Which earlier one (modulo their count).
        pick: usize,
    },
}

/// An entry of a conversation as the model expects the server to keep it.
#[derive(Clone, Debug)]
struct Entry {
    id: MessageId,
    /// The text it was sent with (empty for a deletion).
    text: String,
    from: UserId,
    rel: Option<Rel>,
    /// Its content was removed by a deletion.
    deleted: bool,
}

impl Entry {
    /// The content the store holds for it now.
    fn content(&self) -> Content {
        if self.deleted || self.rel.as_ref().is_some_and(|r| r.kind == RelKind::Delete) {
            Content::Deleted {}
        } else {
            Content::Text {
                text: self.text.clone(),
            }
        }
    }
}

/// An earlier reply, edit, reaction or deletion: what to resend, and what
/// it was answered.
#[derive(Clone, Debug)]
struct RelSent {
    conv: ConversationId,
    client_id: String,
    rel: Rel,
    text: String,
    /// The seq it was stored at, when it was.
    seq: Option<u64>,
}

fn op() -> impl Strategy<Value = Op> {
    let u = 0..MAX_USERS;
    let d = 0..MAX_DEVICES;
    prop_oneof![
        1 => Just(Op::Register),
        1 => u.clone().prop_map(|user| Op::Login { user }),
        4 => (u.clone(), d.clone(), 0..MAX_USERS).prop_map(|(from, dev, to)| Op::Send { from, dev, to }),
        2 => (u.clone(), d.clone(), 0..16usize).prop_map(|(from, dev, pick)| Op::Retry { from, dev, pick }),
        2 => (u.clone(), d.clone()).prop_map(|(user, dev)| Op::Ack { user, dev }),
        1 => (u.clone(), d.clone()).prop_map(|(user, dev)| Op::Read { user, dev }),
        1 => (u.clone(), d.clone()).prop_map(|(user, dev)| Op::Disconnect { user, dev }),
        2 => (u.clone(), d.clone()).prop_map(|(user, dev)| Op::Reconnect { user, dev }),
        2 => (u.clone(), d.clone()).prop_map(|(user, dev)| Op::Sync { user, dev }),
        1 => (u.clone(), 0..MAX_USERS).prop_map(|(user, other)| Op::Contact { user, other }),
        1 => (u.clone(), 0..MAX_USERS).prop_map(|(user, other)| Op::Block { user, other }),
        1 => (u.clone(), 0..MAX_USERS).prop_map(|(user, other)| Op::Answer { user, other }),
        1 => (u.clone(), 0..3usize).prop_map(|(user, audience)| Op::Presence { user, audience }),
        3 => (u.clone(), d.clone(), 0..64usize, 0..4usize)
            .prop_map(|(user, dev, pick, kind)| Op::Relate { user, dev, pick, kind }),
        1 => (u, d, 0..16usize).prop_map(|(user, dev, pick)| Op::RetryRelate { user, dev, pick }),
    ]
}

/// Runs `cases` random scenarios against backends from `factory`. Panics
/// (after shrinking) on the first scenario that breaks the model.
pub fn check(factory: Arc<dyn Factory>, cases: u32) {
    check_scenarios(
        "model check",
        cases,
        proptest::collection::vec(op(), 1..48),
        |ops| run_scenario(factory.clone(), ops),
    );
}

/// A test device: its connection (when online), its token, what it received.
struct Dev {
    conn: Option<InProcess>,
    token: String,
    next_id: u32,
    /// Every (conv, seq) received, with the message.
    received: HashMap<(ConversationId, u64), Message>,
    /// Highest seq acknowledged per conversation.
    acked: HashMap<ConversationId, u64>,
    /// The last receipt pushed per (conversation, member): (delivered, read).
    receipts: HashMap<(ConversationId, UserId), (u64, u64)>,
}

/// What the model expects the server to hold.
#[derive(Default)]
struct Model {
    /// Stored entries per conversation, by seq (index = seq - 1).
    convs: BTreeMap<ConversationId, Vec<Entry>>,
    /// Client ids each user has used: (client_id, to).
    sent_by: Vec<Vec<(String, usize)>>,
    /// The replies, edits, reactions and deletions each user sent.
    rel_sent_by: Vec<Vec<RelSent>>,
    /// Who is in each conversation (the model's own record: ids are opaque).
    members: BTreeMap<ConversationId, [usize; 2]>,
    /// Each pair's relation, as the rules of [`crate::contacts`] make it
    /// (keyed by the smaller index first).
    relations: BTreeMap<(usize, usize), Relation>,
    /// Each user's privacy settings.
    privacy: Vec<Privacy>,
    /// Each pair's message request not accepted yet: who is to accept.
    requests: BTreeMap<(usize, usize), usize>,
    /// Each user's read marker per conversation (what it said it read).
    read: Vec<HashMap<ConversationId, u64>>,
}

impl Model {
    fn relation(&self, users: &[UserId], a: usize, b: usize) -> Relation {
        self.relations
            .get(&(a.min(b), a.max(b)))
            .cloned()
            .unwrap_or_else(|| Relation::new(&users[a], &users[b]))
    }

    /// The conversation of `a` and `b`, once opened.
    fn conv_of(&self, a: usize, b: usize) -> Option<ConversationId> {
        self.members
            .iter()
            .find(|(_, m)| (m[0] == a && m[1] == b) || (m[0] == b && m[1] == a))
            .map(|(c, _)| c.clone())
    }

    /// Records whether the pair's message request waits for `to`: in the
    /// requests, and mirrored in the relation, as the server keeps it.
    fn set_request(&mut self, users: &[UserId], from: usize, to: usize, on: bool) {
        let key = (from.min(to), from.max(to));
        if on {
            self.requests.insert(key, to);
        } else {
            self.requests.remove(&key);
        }
        let mut r = self.relation(users, from, to);
        r.unaccepted = r.users.clone().map(|u| on && u == users[to]);
        self.relations.insert(key, r);
    }

    /// Whether `viewer` may see `subject`'s presence now.
    fn sees(&self, users: &[UserId], viewer: usize, subject: usize) -> bool {
        let r = self.relation(users, viewer, subject);
        sees_presence(
            Some(&r),
            &self.privacy[viewer],
            &users[subject],
            &self.privacy[subject],
        )
    }
}

struct World {
    server: Arc<Server>,
    /// The server's clock: one millisecond per step, so that the model's
    /// relation times order exactly as the server's do.
    clock: Arc<ManualClock>,
    shutdown: CancellationToken,
    users: Vec<UserId>,
    devs: Vec<Vec<Dev>>,
    model: Model,
    counter: u64,
}

impl World {
    async fn open(&self) -> InProcess {
        connect_in_process(
            self.server.clone(),
            PeerInfo::default(),
            64,
            self.shutdown.clone(),
        )
    }

    /// Sends a request on the device's connection and returns the reply
    /// with its id, recording every push met on the way.
    async fn request(
        &mut self,
        u: usize,
        d: usize,
        make: impl FnOnce(u32) -> ClientFrame,
    ) -> Check<ServerFrame> {
        let dev = &mut self.devs[u][d];
        dev.next_id += 1;
        let id = dev.next_id;
        let conn = dev.conn.as_mut().ok_or("request on a closed device")?;
        conn.tx
            .send(Ok(make(id)))
            .await
            .map_err(|e| format!("send failed: {e}"))?;
        self.wait_reply(u, d, id).await
    }

    async fn wait_reply(&mut self, u: usize, d: usize, id: u32) -> Check<ServerFrame> {
        loop {
            let dev = &mut self.devs[u][d];
            let conn = dev.conn.as_mut().ok_or("device closed")?;
            let frame = tokio::time::timeout(Duration::from_secs(30), conn.rx.next())
                .await
                .map_err(|_| format!("no reply to request {id}"))?
                .ok_or_else(|| format!("connection closed before reply to {id}"))?;
            match frame {
                ServerFrame::Message { message } => {
                    Self::receive(dev, &self.model, Message::clone(&message), "push")?
                }
                ServerFrame::Presence { presence } => {
                    let real = presence.online || presence.last_seen.is_some();
                    if let Some(subject) = self.users.iter().position(|x| *x == presence.user) {
                        ensure(!real || self.model.sees(&self.users, u, subject), || {
                            format!("user {u} device {d} was pushed the presence of user {subject}, hidden from it")
                        })?;
                    }
                }
                ServerFrame::Receipt { conv, user, delivered, read } => {
                    let subject = self.users.iter().position(|x| *x == user);
                    let members = self.model.members.get(&conv);
                    let (Some(subject), Some(members)) = (subject, members) else {
                        return Err(format!("a receipt of {user} in {conv}, not one of the scenario's"));
                    };
                    ensure(subject != u && members.contains(&u) && members.contains(&subject), || {
                        format!("user {u} was pushed user {subject}'s receipt in {conv}, not a fellow member's")
                    })?;
                    // Never ahead of delivery: what a device of the subject
                    // acknowledged, or the subject read.
                    let acked = self.devs[subject].iter().filter_map(|d| d.acked.get(&conv)).max().copied();
                    let marker = self.model.read[subject].get(&conv).copied().unwrap_or(0);
                    ensure(delivered <= acked.unwrap_or(0).max(marker) && read <= marker, || {
                        format!("receipt ({delivered}, {read}) of user {subject} in {conv} is ahead of what it acknowledged ({acked:?}) or read ({marker})")
                    })?;
                    ensure(read <= delivered, || format!("receipt read {read} above delivered {delivered}"))?;
                    let dev = &mut self.devs[u][d];
                    let last = dev.receipts.insert((conv.clone(), user), (delivered, read)).unwrap_or((0, 0));
                    ensure(delivered > last.0 || read > last.1, || {
                        format!("user {u} device {d} was pushed a receipt in {conv} that did not rise: {last:?} then ({delivered}, {read})")
                    })?;
                    ensure(delivered >= last.0 && read >= last.1, || {
                        format!("a receipt in {conv} fell: {last:?} then ({delivered}, {read})")
                    })?;
                }
                ServerFrame::Alert { .. }
                | ServerFrame::ProfileChanged { .. }
                | ServerFrame::NewUser { .. }
                | ServerFrame::Contact { id: None, .. }
                | ServerFrame::Privacy { id: None, .. }
                | ServerFrame::Answered { .. }
                // The user's other device read (its count is not modelled).
                | ServerFrame::Read { .. }
                // Devices are not modelled here (tests/chatcore/devices.rs).
                | ServerFrame::DevicesChanged { .. } => {}
                other if other.id() == Some(id) => return Ok(other),
                other => return Err(format!("unexpected frame {other:?}")),
            }
        }
    }

    fn receive(dev: &mut Dev, model: &Model, m: Message, how: &str) -> Check<()> {
        let acked = dev.acked.get(&m.conv).copied().unwrap_or(0);
        ensure(m.seq > acked, || {
            format!(
                "{how} redelivered {}#{} at or below the acknowledged seq {acked}",
                m.conv, m.seq
            )
        })?;
        let expected = model
            .convs
            .get(&m.conv)
            .and_then(|v| v.get(usize::try_from(m.seq).unwrap_or(usize::MAX).wrapping_sub(1)))
            .ok_or_else(|| format!("{how} delivered unknown message {}#{}", m.conv, m.seq))?;
        // A push may carry what a later deletion removed; never the reverse.
        let sent = Entry {
            deleted: false,
            ..expected.clone()
        };
        ensure(
            expected.id == m.id
                && expected.from == m.from
                && expected.rel == m.rel
                && (m.content == expected.content() || m.content == sent.content()),
            || {
                format!(
                    "{how} delivered {}#{} other than stored: {m:?}, expected {expected:?}",
                    m.conv, m.seq
                )
            },
        )?;
        dev.received.insert((m.conv.clone(), m.seq), m);
        Ok(())
    }

    async fn connect(&mut self, u: usize, d: usize) -> Check<()> {
        if self.devs[u][d].conn.is_some() {
            return Ok(());
        }
        let conn = self.open().await;
        self.devs[u][d].conn = Some(conn);
        self.hello(u, d).await?;
        let token = self.devs[u][d].token.clone();
        match self
            .request(u, d, |id| ClientFrame::Resume { id, token })
            .await?
        {
            ServerFrame::Session { .. } => Ok(()),
            other => Err(format!("resume failed: {other:?}")),
        }
    }

    async fn hello(&mut self, u: usize, d: usize) -> Check<()> {
        match self
            .request(u, d, |id| ClientFrame::Hello {
                id,
                version: crate::protocol::PROTOCOL_VERSION,
                client: None,
            })
            .await?
        {
            ServerFrame::Welcome { .. } => Ok(()),
            other => Err(format!("hello failed: {other:?}")),
        }
    }

    async fn send(
        &mut self,
        from: usize,
        dev: usize,
        to: usize,
        client_id: String,
        retry: bool,
    ) -> Check<()> {
        let to_id = self.users[to].clone();
        let text = format!("text of {client_id}");
        let cid = client_id.clone();
        let reply = self
            .request(from, dev, |id| ClientFrame::Send {
                media: Vec::new(),
                mentions: Vec::new(),
                rel: None,
                id,
                conv: None,
                to: Some(to_id),
                client_id: cid,
                content: Content::Text { text },
            })
            .await?;
        if from == to {
            return match reply {
                ServerFrame::Error { .. } => Ok(()),
                other => Err(format!("sending to oneself must fail, got {other:?}")),
            };
        }
        // Refused while one blocks the other; a retry may also be answered
        // as the duplicate it is (the idempotency check comes first).
        let relation = self.model.relation(&self.users, from, to);
        let blocked = relation.any_block();
        let refused = matches!(
            &reply,
            ServerFrame::Error { code, .. } if *code == crate::protocol::ErrorCode::Forbidden
        );
        if blocked && (refused || !retry) {
            return ensure(refused, || {
                format!("a send between users of whom one blocks the other must be refused, got {reply:?}")
            });
        }
        let key = (from.min(to), from.max(to));
        if self.model.requests.get(&key) == Some(&from) && (refused || !retry) {
            return ensure(refused, || {
                format!("a send into a request the sender has not accepted must be refused, got {reply:?}")
            });
        }
        let opens = self.model.conv_of(from, to).is_none();
        let ServerFrame::Sent {
            message_id,
            conv,
            seq,
            duplicate,
            ..
        } = reply
        else {
            return Err(format!("send failed: {reply:?}"));
        };
        self.model.members.insert(conv.clone(), [from, to]);
        if opens && !relation.are_contacts() {
            self.model.set_request(&self.users, from, to, true);
        }
        let stored = self.model.convs.entry(conv.clone()).or_default();
        if retry {
            let first = stored
                .iter()
                .position(|e| e.text == format!("text of {client_id}"))
                .ok_or("retry of a message the model never stored")?;
            ensure(duplicate, || {
                format!("retry of {client_id} not marked duplicate")
            })?;
            ensure(
                seq == first as u64 + 1 && stored[first].id == message_id,
                || {
                    format!(
                        "retry of {client_id} answered seq {seq}, first send had {}",
                        first + 1
                    )
                },
            )?;
        } else {
            ensure(!duplicate, || {
                format!("first send of {client_id} marked duplicate")
            })?;
            ensure(seq == stored.len() as u64 + 1, || {
                format!("{conv}: expected seq {}, got {seq}", stored.len() + 1)
            })?;
            stored.push(Entry {
                id: message_id,
                text: format!("text of {client_id}"),
                from: self.users[from].clone(),
                rel: None,
                deleted: false,
            });
            self.model.sent_by[from].push((client_id, to));
        }
        Ok(())
    }

    /// Acknowledges, per conversation, the longest run received without a gap.
    async fn ack(&mut self, u: usize, d: usize) -> Check<()> {
        let mut heads: Vec<(ConversationId, u64)> = Vec::new();
        {
            let dev = &self.devs[u][d];
            let convs: HashSet<&ConversationId> = dev.received.keys().map(|(c, _)| c).collect();
            for c in convs {
                let mut s = dev.acked.get(c).copied().unwrap_or(0);
                while dev.received.contains_key(&(c.clone(), s + 1)) {
                    s += 1;
                }
                if s > dev.acked.get(c).copied().unwrap_or(0) {
                    heads.push((c.clone(), s));
                }
            }
        }
        heads.sort();
        for (conv, seq) in heads {
            let c = conv.clone();
            match self
                .request(u, d, |id| ClientFrame::Ack { id, conv: c, seq })
                .await?
            {
                ServerFrame::Ok { .. } => {
                    self.devs[u][d].acked.insert(conv, seq);
                }
                other => return Err(format!("ack failed: {other:?}")),
            }
        }
        Ok(())
    }

    /// Reads, per conversation, up to what the device acknowledged.
    async fn read(&mut self, u: usize, d: usize) -> Check<()> {
        let mut heads: Vec<(ConversationId, u64)> = self.devs[u][d]
            .acked
            .iter()
            .filter(|(c, s)| self.model.read[u].get(*c).is_none_or(|r| r < *s))
            .map(|(c, s)| (c.clone(), *s))
            .collect();
        heads.sort();
        for (conv, seq) in heads {
            let c = conv.clone();
            match self
                .request(u, d, |id| ClientFrame::Read { id, conv: c, seq })
                .await?
            {
                ServerFrame::Ok { .. } => {
                    self.model.read[u].insert(conv, seq);
                }
                other => return Err(format!("read failed: {other:?}")),
            }
        }
        Ok(())
    }

    /// One sync page; returns whether the server said more remain.
    async fn sync(&mut self, u: usize, d: usize) -> Check<bool> {
        let reply = self
            .request(u, d, |id| ClientFrame::Sync { id, limit: Some(5) })
            .await?;
        let ServerFrame::Synced { messages, more, .. } = reply else {
            return Err(format!("sync failed: {reply:?}"));
        };
        let mut last: HashMap<ConversationId, u64> = HashMap::new();
        for m in messages {
            let prev = last.insert(m.conv.clone(), m.seq).unwrap_or(0);
            ensure(m.seq > prev, || {
                format!("sync out of order in {}: {} after {prev}", m.conv, m.seq)
            })?;
            Self::receive(&mut self.devs[u][d], &self.model, m, "sync")?;
        }
        Ok(more)
    }

    /// A new device of user `u`, signed in by `register` (first device) or `login`.
    async fn add_device(&mut self, u: usize) -> Check<()> {
        let d = self.devs[u].len();
        let conn = self.open().await;
        self.devs[u].push(Dev {
            conn: Some(conn),
            token: String::new(),
            next_id: 0,
            received: HashMap::new(),
            acked: HashMap::new(),
            receipts: HashMap::new(),
        });
        self.hello(u, d).await?;
        let (name, device) = (format!("modelu{u}"), format!("dev{d}"));
        let reply = if d == 0 {
            self.request(u, d, |id| ClientFrame::Register {
                id,
                email: format!("{name}@example.org"),
                username: name,
                phone: format!("+447000{u:05}"),
                display_name: format!("User {u}"),
                password: PASSWORD.into(),
                device,
            })
            .await?
        } else {
            self.request(u, d, |id| ClientFrame::Login {
                id,
                login: name,
                password: PASSWORD.into(),
                device,
            })
            .await?
        };
        let ServerFrame::Session {
            user,
            token: Some(token),
            ..
        } = reply
        else {
            return Err(format!("sign-in failed: {reply:?}"));
        };
        if d == 0 {
            self.users.push(user);
        }
        self.devs[u][d].token = token;
        Ok(())
    }

    async fn register(&mut self) -> Check<()> {
        let u = self.devs.len();
        self.devs.push(Vec::new());
        self.model.sent_by.push(Vec::new());
        self.model.rel_sent_by.push(Vec::new());
        self.model.privacy.push(Privacy::default());
        self.model.read.push(HashMap::new());
        self.add_device(u).await
    }

    /// An online device of `u`, if any.
    fn online(&self, u: usize) -> Option<usize> {
        self.devs[u].iter().position(|d| d.conn.is_some())
    }

    /// A change of the relation of `u` and `other` through the server,
    /// checked against the rules' verdict, which the model then keeps.
    async fn relate(&mut self, u: usize, other: usize, action: Action) -> Check<()> {
        let Some(d) = self.online(u) else {
            return Ok(());
        };
        let before = self.model.relation(&self.users, u, other);
        let expected = rules::apply(
            &before,
            &self.users[u],
            action,
            self.clock.now(),
            i64::try_from(self.server.config.contact_retry_ms).unwrap_or(i64::MAX),
        );
        let user = self.users[other].clone();
        let reply = self
            .request(u, d, |id| match action {
                Action::Block => ClientFrame::Block { id, user },
                Action::Unblock => ClientFrame::Unblock { id, user },
                Action::Request => ClientFrame::Contact {
                    id,
                    user,
                    action: ContactAction::Request,
                },
                Action::Accept => ClientFrame::Contact {
                    id,
                    user,
                    action: ContactAction::Accept,
                },
                _ => ClientFrame::Contact {
                    id,
                    user,
                    action: ContactAction::Remove,
                },
            })
            .await?;
        match (expected, reply) {
            (Ok(after), ServerFrame::Contact { .. }) => {
                let contacts = after.are_contacts();
                self.model
                    .relations
                    .insert((u.min(other), u.max(other)), after);
                if contacts {
                    // Contacts accept each other's messages.
                    self.model.requests.remove(&(u.min(other), u.max(other)));
                }
                Ok(())
            }
            (Err(_), ServerFrame::Error { .. }) => Ok(()),
            (expected, reply) => Err(format!(
                "{action:?} by user {u} of user {other}: expected {expected:?}, got {reply:?}"
            )),
        }
    }

    /// `u` accepts `other`'s message request: answered with the
    /// conversation if there is one, `not_found` otherwise.
    async fn answer(&mut self, u: usize, other: usize) -> Check<()> {
        let (Some(d), Some(conv)) = (self.online(u), self.model.conv_of(u, other)) else {
            return Ok(());
        };
        let waits = self.model.requests.get(&(u.min(other), u.max(other))) == Some(&u);
        let reply = self
            .request(u, d, |id| ClientFrame::Accept { id, conv })
            .await?;
        match reply {
            ServerFrame::Conversation { .. } if waits => {
                self.model.set_request(&self.users, other, u, false);
                Ok(())
            }
            ServerFrame::Error { code, .. }
                if !waits && code == crate::protocol::ErrorCode::NotFound =>
            {
                Ok(())
            }
            other_reply => Err(format!(
                "accept by {u} of {other}'s request (waiting: {waits}): got {other_reply:?}"
            )),
        }
    }

    async fn set_presence(&mut self, u: usize, audience: Audience) -> Check<()> {
        let Some(d) = self.online(u) else {
            return Ok(());
        };
        match self
            .request(u, d, |id| ClientFrame::SetPrivacy {
                id,
                direct: None,
                groups: None,
                presence: Some(audience),
                read_receipts: None,
            })
            .await?
        {
            ServerFrame::Privacy { privacy, .. } if privacy.presence == audience => {
                self.model.privacy[u] = privacy;
                Ok(())
            }
            other => Err(format!("set_privacy failed: {other:?}")),
        }
    }

    /// Reads every online device's pushes up to a ping's reply: each push is
    /// judged by the state of the step that caused it.
    async fn drain(&mut self) -> Check<()> {
        for u in 0..self.devs.len() {
            for d in 0..self.devs[u].len() {
                if self.devs[u][d].conn.is_some() {
                    match self.request(u, d, |id| ClientFrame::Ping { id }).await? {
                        ServerFrame::Pong { .. } => {}
                        other => return Err(format!("ping failed: {other:?}")),
                    }
                }
            }
        }
        Ok(())
    }

    async fn apply(&mut self, op: Op) -> Check<()> {
        self.clock.advance(Duration::from_millis(1));
        let users = self.devs.len();
        // Indices are drawn from the maxima; map them onto what exists now.
        let dev_of = |w: &World, u: usize, d: usize| d % w.devs[u].len();
        match op {
            Op::Register => {
                if users < MAX_USERS {
                    self.register().await?;
                }
            }
            Op::Login { user } => {
                let u = user % users;
                if self.devs[u].len() < MAX_DEVICES {
                    self.add_device(u).await?;
                }
            }
            Op::Send { from, dev, to } => {
                let (from, to) = (from % users, to % users);
                let dev = dev_of(self, from, dev);
                if self.devs[from][dev].conn.is_some() {
                    self.counter += 1;
                    let cid = format!("u{from}-m{}", self.counter);
                    self.send(from, dev, to, cid, false).await?;
                }
            }
            Op::Retry { from, dev, pick } => {
                let from = from % users;
                let dev = dev_of(self, from, dev);
                let earlier = &self.model.sent_by[from];
                if self.devs[from][dev].conn.is_some() && !earlier.is_empty() {
                    let (cid, to) = earlier[pick % earlier.len()].clone();
                    self.send(from, dev, to, cid, true).await?;
                }
            }
            Op::Ack { user, dev } => {
                let user = user % users;
                let dev = dev_of(self, user, dev);
                if self.devs[user][dev].conn.is_some() {
                    self.ack(user, dev).await?;
                }
            }
            Op::Read { user, dev } => {
                let user = user % users;
                let dev = dev_of(self, user, dev);
                if self.devs[user][dev].conn.is_some() {
                    self.read(user, dev).await?;
                }
            }
            Op::Disconnect { user, dev } => {
                let user = user % users;
                let dev = dev_of(self, user, dev);
                if let Some(conn) = self.devs[user][dev].conn.take() {
                    drop(conn.tx);
                    let _ = conn.task.await;
                }
            }
            Op::Reconnect { user, dev } => {
                let user = user % users;
                let dev = dev_of(self, user, dev);
                self.connect(user, dev).await?
            }
            Op::Sync { user, dev } => {
                let user = user % users;
                let dev = dev_of(self, user, dev);
                if self.devs[user][dev].conn.is_some() {
                    self.sync(user, dev).await?;
                }
            }
            Op::Contact { user, other } => {
                let (u, o) = (user % users, other % users);
                if u != o {
                    let r = self.model.relation(&self.users, u, o);
                    let action = match &r.link {
                        Link::Contacts { .. } => Action::Remove,
                        Link::Requested { by, .. } if *by != self.users[u] => Action::Accept,
                        _ => Action::Request,
                    };
                    self.relate(u, o, action).await?;
                }
            }
            Op::Block { user, other } => {
                let (u, o) = (user % users, other % users);
                if u != o {
                    let r = self.model.relation(&self.users, u, o);
                    let action = if r.blocks(&self.users[u]) {
                        Action::Unblock
                    } else {
                        Action::Block
                    };
                    self.relate(u, o, action).await?;
                }
            }
            Op::Answer { user, other } => {
                let (u, o) = (user % users, other % users);
                if u != o {
                    self.answer(u, o).await?;
                }
            }
            Op::Presence { user, audience } => {
                let audience =
                    [Audience::Everyone, Audience::Contacts, Audience::Nobody][audience % 3];
                self.set_presence(user % users, audience).await?;
            }
            Op::Relate {
                user,
                dev,
                pick,
                kind,
            } => {
                let u = user % users;
                let d = dev_of(self, u, dev);
                // The entries of the user's conversations (a direct
                // conversation's members never leave it).
                let entries: Vec<(ConversationId, usize)> = self
                    .model
                    .convs
                    .iter()
                    .filter(|(c, _)| self.model.members.get(*c).is_some_and(|m| m.contains(&u)))
                    .flat_map(|(c, v)| (0..v.len()).map(move |i| (c.clone(), i)))
                    .collect();
                if self.devs[u][d].conn.is_some() && !entries.is_empty() {
                    let (conv, i) = entries[pick % entries.len()].clone();
                    let target = self.model.convs[&conv][i].id.clone();
                    let kind = [
                        RelKind::Reply,
                        RelKind::Edit,
                        RelKind::Reaction,
                        RelKind::Delete,
                    ][kind % 4];
                    self.counter += 1;
                    let text = match kind {
                        RelKind::Reaction => {
                            ["👍", "❤️", "🎉"][self.counter as usize % 3].to_owned()
                        }
                        RelKind::Delete => String::new(),
                        _ => format!("{} {}", kind.as_str(), self.counter),
                    };
                    let sent = RelSent {
                        conv,
                        client_id: format!("u{u}-r{}", self.counter),
                        rel: Rel::new(kind, target),
                        text,
                        seq: None,
                    };
                    self.relate_entry(u, d, sent, None).await?;
                }
            }
            Op::RetryRelate { user, dev, pick } => {
                let u = user % users;
                let d = dev_of(self, u, dev);
                let earlier = &self.model.rel_sent_by[u];
                if self.devs[u][d].conn.is_some() && !earlier.is_empty() {
                    let i = pick % earlier.len();
                    let sent = earlier[i].clone();
                    self.relate_entry(u, d, sent, Some(i)).await?;
                }
            }
        }
        self.drain().await
    }

    /// What the server must answer `u` sending `sent` now, by the rules of
    /// PROTOCOL.md, *Message life*, in the order the server checks them:
    /// `Ok` to store it.
    fn relation_verdict(&self, u: usize, sent: &RelSent) -> Result<(), ErrorCode> {
        let me = &self.users[u];
        let entries = &self.model.convs[&sent.conv];
        let target = entries
            .iter()
            .find(|e| e.id == sent.rel.target)
            .ok_or(ErrorCode::NotFound)?;
        let kind = sent.rel.kind;
        let target_kind = target.rel.as_ref().map(|r| r.kind);
        let fits = RelKind::stands_alone(target_kind)
            || kind == RelKind::Delete && target_kind == Some(RelKind::Reaction);
        if !fits {
            return Err(ErrorCode::InvalidArgument);
        }
        // A deleted message is quoted as such; nothing else points at one.
        if kind != RelKind::Reply && target.deleted {
            return Err(ErrorCode::NotFound);
        }
        match kind {
            RelKind::Edit | RelKind::Delete if target.from != *me => {
                return Err(ErrorCode::Forbidden)
            }
            RelKind::Reaction => {
                let live = entries
                    .iter()
                    .filter(|e| {
                        e.from == *me
                            && !e.deleted
                            && e.rel.as_ref().is_some_and(|r| {
                                r.kind == RelKind::Reaction && r.target == target.id
                            })
                    })
                    .count();
                if live >= MAX_REACTIONS {
                    return Err(ErrorCode::LimitReached);
                }
            }
            _ => {}
        }
        // Then the append's own rules, as for any message.
        let [a, b] = self.model.members[&sent.conv];
        let other = if a == u { b } else { a };
        if self.model.relation(&self.users, u, other).any_block()
            || self.model.requests.get(&(u.min(other), u.max(other))) == Some(&u)
        {
            return Err(ErrorCode::Forbidden);
        }
        Ok(())
    }

    /// `u` sends (or, with `retry`, resends) a reply, edit, reaction or
    /// deletion on device `d`, checked against the model's verdict.
    async fn relate_entry(
        &mut self,
        u: usize,
        d: usize,
        sent: RelSent,
        retry: Option<usize>,
    ) -> Check<()> {
        let content = match sent.rel.kind {
            RelKind::Delete => Content::Deleted {},
            _ => Content::Text {
                text: sent.text.clone(),
            },
        };
        let verdict = match (retry, sent.seq) {
            // A retry of what was stored is answered as the first send.
            (Some(_), Some(_)) => Ok(()),
            _ => self.relation_verdict(u, &sent),
        };
        let (conv, cid, rel) = (sent.conv.clone(), sent.client_id.clone(), sent.rel.clone());
        let reply = self
            .request(u, d, |id| ClientFrame::Send {
                media: Vec::new(),
                id,
                conv: Some(conv),
                to: None,
                client_id: cid,
                rel: Some(rel),
                mentions: Vec::new(),
                content,
            })
            .await?;
        let what = format!("user {u}'s {:?} ({})", sent.rel.kind, sent.client_id);
        match (verdict, reply) {
            (Err(code), ServerFrame::Error { code: got, .. }) => ensure(code == got, || {
                format!("{what}: expected {code:?}, got {got:?}")
            }),
            (
                Ok(()),
                ServerFrame::Sent {
                    message_id,
                    seq,
                    duplicate,
                    ..
                },
            ) => {
                if let (Some(_), Some(first)) = (retry, sent.seq) {
                    return ensure(duplicate && seq == first, || {
                        format!("{what}: a retry answered seq {seq} (duplicate: {duplicate}), first stored at {first}")
                    });
                }
                let stored = self.model.convs.entry(sent.conv.clone()).or_default();
                ensure(!duplicate && seq == stored.len() as u64 + 1, || {
                    format!("{what}: expected a new entry at {}, got seq {seq} (duplicate: {duplicate})", stored.len() + 1)
                })?;
                stored.push(Entry {
                    id: message_id,
                    text: sent.text.clone(),
                    from: self.users[u].clone(),
                    rel: Some(sent.rel.clone()),
                    deleted: false,
                });
                if sent.rel.kind == RelKind::Delete {
                    let target = sent.rel.target.clone();
                    for e in stored.iter_mut() {
                        let about = e.rel.as_ref().is_some_and(|r| {
                            r.target == target
                                && matches!(r.kind, RelKind::Edit | RelKind::Reaction)
                        });
                        if e.id == target || about {
                            e.deleted = true;
                        }
                    }
                }
                let done = RelSent {
                    seq: Some(seq),
                    ..sent
                };
                match retry {
                    Some(i) => self.model.rel_sent_by[u][i] = done,
                    None => self.model.rel_sent_by[u].push(done),
                }
                Ok(())
            }
            (verdict, reply) => Err(format!("{what}: expected {verdict:?}, got {reply:?}")),
        }
    }

    /// Brings every device online, syncs it dry, and checks it holds every
    /// message of every conversation its user is in.
    async fn settle_and_verify(&mut self) -> Check<()> {
        for u in 0..self.devs.len() {
            for d in 0..self.devs[u].len() {
                self.connect(u, d).await?;
                let mut rounds = 0;
                while self.sync(u, d).await? {
                    self.ack(u, d).await?;
                    rounds += 1;
                    ensure(rounds < 1000, || "sync never ran dry".into())?;
                }
                // Pushes of the very last sends may still be queued: a ping flushes them.
                match self.request(u, d, |id| ClientFrame::Ping { id }).await? {
                    ServerFrame::Pong { .. } => {}
                    other => return Err(format!("ping failed: {other:?}")),
                }
                for (conv, msgs) in &self.model.convs {
                    if !self.model.members.get(conv).is_some_and(|m| m.contains(&u)) {
                        continue;
                    }
                    for seq in 1..=msgs.len() as u64 {
                        ensure(
                            self.devs[u][d].received.contains_key(&(conv.clone(), seq)),
                            || format!("user {u} device {d} never received {conv}#{seq}"),
                        )?;
                    }
                }
            }
        }
        for (conv, msgs) in &self.model.convs {
            let stored = self
                .server
                .backends()
                .messages
                .history(conv, None, 10_000)
                .await
                .map_err(|e| e.to_string())?;
            let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
            ensure(seqs == (1..=msgs.len() as u64).collect::<Vec<_>>(), || {
                format!("{conv} holds seqs {seqs:?}, expected 1..={}", msgs.len())
            })?;
            for (m, e) in stored.iter().zip(msgs) {
                ensure(m.content == e.content() && m.rel == e.rel, || {
                    format!("{conv}#{} holds {m:?}, expected {e:?}", m.seq)
                })?;
            }
        }
        Ok(())
    }
}

/// The engine configuration of the model tests: argon2 at a token cost so
/// hundreds of logins stay fast, and no request rate limit.
pub fn fast_config() -> Config {
    Config {
        argon2: Argon2Config::new(64, 1, 1),
        frames_per_second: 1_000_000,
        frame_burst: 1_000_000,
        ..Config::default()
    }
}

async fn run_scenario(factory: Arc<dyn Factory>, ops: Vec<Op>) -> Check<()> {
    let backends = factory.backends().await;
    let clock = Arc::new(ManualClock::new(crate::model::now_millis()));
    let server =
        Server::with_clock(backends, fast_config(), clock.clone()).map_err(|e| e.to_string())?;
    let mut world = World {
        server,
        clock,
        shutdown: CancellationToken::new(),
        users: Vec::new(),
        devs: Vec::new(),
        model: Model::default(),
        counter: 0,
    };
    for _ in 0..2 {
        world.register().await?;
    }
    for op in ops {
        world.apply(op).await?;
    }
    let verdict = world.settle_and_verify().await;
    world.shutdown.cancel();
    verdict
}
