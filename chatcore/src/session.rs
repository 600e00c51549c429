//! The life of one connection: the loop that reads client frames, answers
//! them, forwards pushes from the hub, and cleans up when it ends.
//!
//! [`serve`] is generic over a `Stream` of decoded frames and a `Sink` of
//! frames to send, so a transport (chatd's WebSocket, a test's channels) only
//! moves bytes; everything the protocol means happens here.

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::collections::{HashMap, HashSet};
use std::future::{poll_fn, Future};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::commands::to_device;
use crate::contacts::{facts, shows_presence};
use crate::error::CoreError;
use crate::hub::{ConnTx, Kick};
use crate::limits::{AddrKey, Refusal};
use crate::model::{ConversationId, Presence, Privacy, UserId};
use crate::protocol::{
    ClientFrame, DecodeError, ServerFrame, ToDeviceMessage, CALLS_VERSION, MIN_PROTOCOL_VERSION,
    PROTOCOL_VERSION, RECEIPTS_VERSION, TYPING_VERSION,
};
use crate::request::{self, Caller, Out, SignIn, Who};
use crate::server::Server;
use crate::store::{Event, Topic};

/// What a transport knows about the other end.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct PeerInfo {
    /// Client address, for per-address rate limits (`None`: not limited by address).
    pub addr: Option<IpAddr>,
}

impl PeerInfo {
    /// A peer at `addr`.
    pub fn new(addr: Option<IpAddr>) -> Self {
        Self { addr }
    }
}

/// Why a connection ended. The transport closes with [`Disconnect::close_code`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Disconnect {
    /// The client closed the stream.
    ClientClosed,
    /// The client logged out.
    LoggedOut,
    /// The server is shutting down; reconnect elsewhere or later.
    Shutdown,
    /// The connection's outbound queue overflowed; reconnect and sync.
    SlowConsumer,
    /// No successful sign-in within the allowed time.
    AuthTimeout,
    /// The session was revoked (logged out elsewhere, device revoked,
    /// password changed or reset); sign in again.
    Revoked,
    /// The client speaks no protocol version this server does.
    UnsupportedVersion,
    /// Too many connections are signing in at once on this node, or from
    /// this client address; retry later.
    Overloaded,
    /// This client address holds as many connections as it may; close one.
    TooManyFromAddress,
    /// This account holds as many connections as it may; close one.
    TooManyForAccount,
    /// The client sent too many undecodable frames in a row.
    InvalidFrames,
    /// The transport failed to send.
    Transport(String),
}

impl Disconnect {
    /// WebSocket close code: 1000 normal, 1001 going away, 1008 policy
    /// violation, 4001 session revoked (do not resume), 4008 too slow
    /// (reconnect and sync), 1013 overloaded (retry later), 1011 transport
    /// failure, 4029 too many connections (from this address or for this
    /// account: close one before reconnecting).
    pub fn close_code(&self) -> u16 {
        match self {
            Disconnect::ClientClosed | Disconnect::LoggedOut => 1000,
            Disconnect::Shutdown => 1001,
            Disconnect::AuthTimeout
            | Disconnect::UnsupportedVersion
            | Disconnect::InvalidFrames => 1008,
            Disconnect::Revoked => 4001,
            Disconnect::SlowConsumer => 4008,
            Disconnect::Overloaded => 1013,
            Disconnect::TooManyFromAddress | Disconnect::TooManyForAccount => 4029,
            Disconnect::Transport(_) => 1011,
        }
    }

    /// Short reason text for the close frame.
    pub fn reason(&self) -> &'static str {
        match self {
            Disconnect::ClientClosed => "closed",
            Disconnect::LoggedOut => "logged out",
            Disconnect::Shutdown => "server shutting down",
            Disconnect::SlowConsumer => "too slow: reconnect and sync",
            Disconnect::AuthTimeout => "authentication timeout",
            Disconnect::Revoked => "session revoked",
            Disconnect::UnsupportedVersion => "unsupported protocol version",
            Disconnect::Overloaded => "too many connections signing in; retry later",
            Disconnect::TooManyFromAddress => "too many connections from this address",
            Disconnect::TooManyForAccount => "too many connections for this account",
            Disconnect::InvalidFrames => "too many invalid frames",
            Disconnect::Transport(_) => "transport error",
        }
    }
}

/// What arrives from a transport: a decoded frame, or why it could not be decoded.
pub type Inbound = Result<ClientFrame, DecodeError>;

/// Serves one connection until the client leaves, the session is revoked,
/// the connection falls behind, or `shutdown` fires. Never panics on client
/// input: every bad frame is answered with an `error` frame.
pub async fn serve<I, O>(
    server: Arc<Server>,
    peer: PeerInfo,
    mut incoming: I,
    mut outgoing: O,
    shutdown: CancellationToken,
) -> Disconnect
where
    I: Stream<Item = Inbound> + Unpin + Send,
    O: Sink<ServerFrame> + Unpin + Send,
    O::Error: std::fmt::Display,
{
    let addr = peer.addr.map(AddrKey::of);
    if let Err(refusal) = server.admission.open(addr) {
        let _ = outgoing.close().await;
        return match refusal {
            Refusal::FromAddress => Disconnect::TooManyFromAddress,
            Refusal::Unauthenticated | Refusal::UnauthenticatedFromAddress => {
                Disconnect::Overloaded
            }
        };
    }
    let (tx, mut rx) = mpsc::channel(server.config.outbound_queue.max(1));
    // The kick token is a child of the shutdown token: one future to watch
    // for both, which `kicked` tells apart by the reason (none: shutdown).
    let kick = Kick::new(shutdown.child_token());
    let (conn, conn_key) = server.next_conn_key();
    let conn_key: Arc<str> = Arc::from(conn_key);
    server.metrics.connections.fetch_add(1, Ordering::Relaxed);
    server
        .metrics
        .connections_total
        .fetch_add(1, Ordering::Relaxed);
    let mut s = Session {
        bucket: TokenBucket::new(server.config.frames_per_second, server.config.frame_burst),
        server: server.clone(),
        addr,
        invalid_in_a_row: 0,
        conn,
        conn_key: conn_key.clone(),
        conn_tx: ConnTx {
            tx,
            kick: kick.clone(),
            key: conn_key,
        },
        known_users: HashSet::new(),
        privacy: Privacy::default(),
        seen: HashMap::new(),
        pending: Vec::new(),
        version: 0,
        auth: None,
        focus: None,
        dir_watch: HashSet::new(),
        conv_watch: HashSet::new(),
        dir_new: false,
        close_after: None,
        to_device_more: false,
        holds_call: false,
        slot: None,
        out: Out::default(),
    };
    // On the heap, and dropped at sign-in: a signed-in connection, which
    // may idle for days, keeps neither the timer nor its room.
    let mut auth_deadline = Some(Box::pin(tokio::time::sleep(server.config.auth_timeout)));
    // Created once, not per turn of the loop: each creation registers a
    // waiter (a lock and a list insert), and the loop turns once per frame.
    let kicked = kick.kicked();
    tokio::pin!(kicked);

    let reason = 'conn: loop {
        // A user the directory view now lists: watched after this turn's
        // frames are out (an await here, in the loop's own state, would
        // keep the frames as room in every connection's future).
        let mut new_user: Option<UserId> = None;
        // The request is awaited below the select, not in its arm: there,
        // the frame it was read from (and the select's output) would stay
        // room in the state of every connection's future. The handler's
        // state and the effects' are each on the heap, sized by the request.
        let turn = {
            let mut request = None;
            let frames = tokio::select! {
                biased;
                reason = &mut kicked => break reason,
                _ = poll_fn(|cx| match auth_deadline.as_mut() {
                    Some(deadline) => deadline.as_mut().poll(cx),
                    None => Poll::Pending,
                }), if s.auth.is_none() => break Disconnect::AuthTimeout,
                event = rx.recv() => match event {
                    Some(event) => match s.on_event(&event) {
                        Ok(frames) => {
                            if let Event::NewUser(entry) = &*event {
                                new_user = Some(entry.profile.user.clone());
                            }
                            frames
                        }
                        Err(reason) => break reason,
                    },
                    None => continue,
                },
                item = incoming.next() => match item {
                    None => break Disconnect::ClientClosed,
                    Some(item) => {
                        server.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
                        match s.admit(item) {
                            Ok(admitted) => {
                                request = Some(admitted);
                                Frames::NONE
                            },
                            Err(refused) => Frames::one(refused),
                        }
                    }
                },
            };
            match request {
                None => Turn::Send(frames),
                Some(Admitted { id, name, handling }) => {
                    drop(frames);
                    Turn::Handled(id, name, handling.await)
                }
            }
        };
        let frames = match turn {
            Turn::Send(frames) => frames,
            Turn::Handled(id, name, handled) => {
                Frames::one(Box::pin(s.finish(id, name, handled)).await)
            }
        };
        // Each frame is taken only once the sink has room for it, and the
        // sink is flushed once for both: while a slow sink is awaited, the
        // connection's future holds nothing but the frames themselves
        // (this state sizes every idle connection's future).
        let mut frames = frames.0;
        let mut more = std::mem::take(&mut s.pending);
        let mut queued = false;
        for slot in frames.iter_mut().chain(more.iter_mut()) {
            if slot.is_none() {
                continue;
            }
            let ready = or_kicked(&mut kicked, |cx| {
                outgoing.poll_ready_unpin(cx).map_err(transport)
            })
            .await;
            let Some(mut frame) = slot.take() else {
                continue;
            };
            if s.version < CALLS_VERSION {
                frame.for_version(s.version);
            }
            if let ServerFrame::Error { code, .. } = &frame {
                server.metrics.error(*code);
            }
            if let Err(reason) =
                ready.and_then(|()| outgoing.start_send_unpin(frame).map_err(transport))
            {
                break 'conn reason;
            }
            queued = true;
            server.metrics.frames_out.fetch_add(1, Ordering::Relaxed);
        }
        drop(more);
        drop(frames);
        if queued {
            let flushed = or_kicked(&mut kicked, |cx| {
                outgoing.poll_flush_unpin(cx).map_err(transport)
            })
            .await;
            if let Err(reason) = flushed {
                break 'conn reason;
            }
        }
        if let Some(user) = new_user {
            // Boxed: rare, and its state must not size the loop.
            Box::pin(s.watch_new_user(&user)).await;
        }
        if s.auth.is_some() {
            auth_deadline = None;
        }
        if let Some(reason) = s.close_after.take() {
            break reason;
        }
    };
    if reason == Disconnect::SlowConsumer {
        server
            .metrics
            .slow_consumers
            .fetch_add(1, Ordering::Relaxed);
    }
    // Boxed: its state would be room in every connection's future.
    Box::pin(s.cleanup()).await;
    server.metrics.connections.fetch_sub(1, Ordering::Relaxed);
    let _ = outgoing.close().await;
    reason
}

/// The longest stretch of client input an error message quotes.
const MAX_QUOTE: usize = 64;

/// A decoder's message with every quoted stretch of the client's input (in
/// backticks, as serde quotes) cut to [`MAX_QUOTE`] bytes, and the whole cut
/// to a few hundred: an error must not echo a 60 KB input back.
fn quote_safely(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(512));
    let mut quoted = 0usize;
    let mut inside = false;
    for c in message.chars() {
        if c == '`' {
            if inside && quoted > MAX_QUOTE {
                out.push('…');
            }
            inside = !inside;
            quoted = 0;
            out.push(c);
        } else if inside {
            quoted += c.len_utf8();
            if quoted <= MAX_QUOTE {
                out.push(c);
            }
        } else {
            out.push(c);
        }
        if out.len() >= 400 {
            out.push('…');
            break;
        }
    }
    out
}

fn transport(e: impl std::fmt::Display) -> Disconnect {
    Disconnect::Transport(e.to_string())
}

/// Polls `op` until it is ready, unless the connection is kicked first.
/// `op` is polled first: a sink almost always has room at once, and
/// polling the kick costs a lock.
async fn or_kicked<T, K: Future<Output = Disconnect>>(
    kicked: &mut Pin<&mut K>,
    mut op: impl FnMut(&mut Context<'_>) -> Poll<Result<T, Disconnect>>,
) -> Result<T, Disconnect> {
    poll_fn(|cx| match op(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => kicked.as_mut().poll(cx).map(Err),
    })
    .await
}

/// The frames that answer one request or event: at most two, so no
/// allocation is needed to carry them.
struct Frames([Option<ServerFrame>; 2]);

impl Frames {
    const NONE: Frames = Frames([None, None]);

    fn one(frame: ServerFrame) -> Frames {
        Frames([Some(frame), None])
    }
}

/// What a watched user's presence shown to a connection depends on.
#[derive(Debug)]
struct Seen {
    /// Their privacy settings.
    privacy: Privacy,
    /// Whether they are the connection's user's contact.
    contacts: bool,
    /// Whether their presence is hidden whatever the settings: either
    /// blocks the other, or they have not accepted this user's message
    /// request.
    hidden: bool,
    /// Their presence as last heard (shown or not).
    presence: Presence,
}

impl Seen {
    fn shown(&self, mine: &Privacy) -> bool {
        shows_presence(self.contacts, self.hidden, mine, &self.privacy)
    }

    /// Their presence as `mine` lets it be shown.
    fn presence(&self, mine: &Privacy) -> Presence {
        if self.shown(mine) {
            self.presence.clone()
        } else {
            Presence::hidden(self.presence.user.clone())
        }
    }
}

/// What a turn of a connection's loop leaves to do before its frames go
/// out: nothing (frames of an event, or a refusal), or a handled request's
/// effects and reply.
enum Turn {
    Send(Frames),
    Handled(u32, &'static str, Result<ServerFrame, CoreError>),
}

/// A request under way: its id and name (for the error frame and the log),
/// and its handling, which borrows the session until it ends.
struct Admitted<'a> {
    id: u32,
    name: &'static str,
    handling: request::Handling<'a>,
}

/// The connection's life: sign-in state, subscriptions, the request rate,
/// close codes. What each request means is in [`crate::request`].
struct Session {
    server: Arc<Server>,
    /// What the peer's address counts as, for the per-address limits.
    addr: Option<AddrKey>,
    /// Undecodable frames since the last good one.
    invalid_in_a_row: u32,
    conn: u64,
    conn_key: Arc<str>,
    conn_tx: ConnTx,
    /// The protocol version both sides speak (0 before `hello`).
    version: u32,
    auth: Option<Caller>,
    focus: Option<ConversationId>,
    /// Users whose presence is watched because a directory listing shows them.
    dir_watch: HashSet<UserId>,
    /// Users whose presence is watched because of a conversation with them.
    conv_watch: HashSet<UserId>,
    /// The directory view is the unfiltered first page: the connection
    /// listens on [`Topic::Directory`] for users who register.
    dir_new: bool,
    bucket: TokenBucket,
    /// Users this connection knows to exist and watches (peers it sent to
    /// or has conversations with; bounded by `max_watched`). Accounts are
    /// never deleted, so a repeated send to the same person needs neither
    /// a user lookup nor a watch again.
    known_users: HashSet<UserId>,
    /// Set when the reply must be the last frame (logout, bad version).
    close_after: Option<Disconnect>,
    /// The last push of waiting to-device payloads left some behind: the
    /// next acknowledgement delivers more.
    to_device_more: bool,
    /// This connection holds one side of a call ([`Out::holds_call`]).
    holds_call: bool,
    /// The signed-in user's privacy settings (kept current by
    /// [`Event::Privacy`]).
    privacy: Privacy,
    /// What presence shown to this connection depends on, for each user
    /// whose presence it watches.
    seen: HashMap<UserId, Seen>,
    /// Frames beyond the two an event makes, to send with them (a privacy
    /// change can change what many watched users show).
    pending: Vec<Option<ServerFrame>>,
    /// The account whose connection slot this connection holds
    /// ([`crate::limits::Admission`]).
    slot: Option<UserId>,
    /// What the last request caused, kept for its room.
    out: Out,
}

impl Session {
    /// Takes a frame from the client: the request's handling, started
    /// (see [`request::dispatch`]), or the reply at once (a frame that
    /// could not be read, over the rate, or `hello`).
    fn admit(&mut self, item: Inbound) -> Result<Admitted<'_>, ServerFrame> {
        // Every frame costs a token, a good one or not: answering garbage
        // is work too.
        let allowed = self.bucket.take(Instant::now());
        let frame = match item {
            Ok(frame) => {
                self.invalid_in_a_row = 0;
                frame
            }
            Err(e) => {
                self.invalid_in_a_row += 1;
                if self.invalid_in_a_row >= self.server.config.max_invalid_frames {
                    self.close_after = Some(Disconnect::InvalidFrames);
                }
                if let Err(retry_after_ms) = allowed {
                    return Err(CoreError::RateLimited { retry_after_ms }.to_frame(e.id));
                }
                return Err(
                    CoreError::InvalidFrame(quote_safely(&e.error.to_string())).to_frame(e.id)
                );
            }
        };
        let id = frame.id();
        if let Err(retry_after_ms) = allowed {
            return Err(CoreError::RateLimited { retry_after_ms }.to_frame(Some(id)));
        }
        if self.version == 0 {
            let reply = match frame {
                ClientFrame::Hello {
                    id,
                    version,
                    client,
                } => self.hello(id, version, client),
                _ => Err(CoreError::InvalidFrame(
                    "the first frame must be hello".into(),
                )),
            };
            return Err(reply.unwrap_or_else(|e| e.to_frame(Some(id))));
        }
        let name = frame.type_name();
        let known_peer = matches!(&frame, ClientFrame::Send { to: Some(to), .. } if self.known_users.contains(to));
        let mut who = Who::new(self.addr, self.auth.as_ref());
        who.known_peer = known_peer;
        who.conn = Some(&self.conn_key);
        self.out.clear();
        let handling = request::dispatch(&self.server, who, frame, &mut self.out);
        Ok(Admitted { id, name, handling })
    }

    /// Concludes a request: the close it asks for (even when it failed),
    /// and its reply, or the error frame it ended with.
    /// Applies what a request caused, if it succeeded, and makes its reply.
    async fn finish(
        &mut self,
        id: u32,
        name: &'static str,
        handled: Result<ServerFrame, CoreError>,
    ) -> ServerFrame {
        match handled {
            Ok(reply) => {
                let applied = self.apply().await;
                self.conclude(id, name, applied.map(|()| reply))
            }
            Err(e) => self.conclude(id, name, Err(e)),
        }
    }

    fn conclude(
        &mut self,
        id: u32,
        name: &'static str,
        reply: Result<ServerFrame, CoreError>,
    ) -> ServerFrame {
        if let Some(close) = self.out.close.take() {
            self.close_after = Some(close);
        }
        reply.unwrap_or_else(|e| {
            match &e {
                CoreError::Internal(_) | CoreError::Unavailable(_) => {
                    tracing::warn!(frame = name, error = %e, "request failed")
                }
                _ => tracing::debug!(frame = name, error = %e, "request refused"),
            }
            e.to_frame(Some(id))
        })
    }

    /// Applies what a request that succeeded caused (in `self.out`): the
    /// sign-in, the events, the watches and the focus.
    async fn apply(&mut self) -> Result<(), CoreError> {
        // The rare effects are boxed: this future is part of every
        // request's (allocated per request), which stays within the
        // allocator's fast sizes that way.
        if let Some(sign_in) = self.out.sign_in.take() {
            Box::pin(self.sign_in(sign_in)).await?;
            Box::pin(self.deliver_to_device()).await;
        } else if self.out.to_device_acked && self.to_device_more {
            Box::pin(self.deliver_to_device()).await;
        }
        self.holds_call |= self.out.holds_call;
        if let (Some(typing), Some(caller)) = (self.out.typing.take(), self.auth.as_mut()) {
            caller.typing = typing;
        }
        // Taken out and put back, to keep their room for the next request.
        let mut events = std::mem::take(&mut self.out.events);
        let broker = &self.server.backends.broker;
        for (topic, event) in events.drain(..) {
            // Stored is what counts: a lost push is recovered by sync, a
            // lost revocation when the revoked connection next resumes.
            if let Err(e) = broker.publish(&topic, event).await {
                tracing::warn!(error = %e, "event publish failed; recipients will sync");
            }
        }
        self.out.events = events;
        let mut watch = std::mem::take(&mut self.out.watch);
        let mut watched = Ok(());
        for user in watch.drain(..) {
            if watched.is_ok() {
                watched = Box::pin(self.watch_peer(user)).await;
            }
        }
        self.out.watch = watch;
        watched?;
        if let Some(users) = self.out.directory.take() {
            Box::pin(self.watch_directory(users)).await?;
            Box::pin(self.watch_registrations(self.out.new_users)).await?;
        }
        if let Some(focus) = self.out.focus.take() {
            self.focus = focus;
        }
        Ok(())
    }

    fn hello(
        &mut self,
        id: u32,
        version: u32,
        client: Option<String>,
    ) -> Result<ServerFrame, CoreError> {
        if version < MIN_PROTOCOL_VERSION {
            self.close_after = Some(Disconnect::UnsupportedVersion);
            return Err(CoreError::UnsupportedVersion(version));
        }
        tracing::debug!(client = client.as_deref().unwrap_or("-"), version, "hello");
        self.version = version.min(PROTOCOL_VERSION);
        Ok(ServerFrame::Welcome {
            id,
            version: self.version,
            server: self.server.config.server_name.clone(),
            time: self.server.now(),
        })
    }

    /// Turns a hub event into the frames this connection should see.
    fn on_event(&mut self, event: &Event) -> Result<Frames, Disconnect> {
        let Some(auth) = &self.auth else {
            return Ok(Frames::NONE);
        };
        match event {
            Event::Message {
                message,
                muted,
                origin,
            } => {
                if origin.as_deref() == Some(&*self.conn_key) {
                    return Ok(Frames::NONE);
                }
                let latency = self.server.now().saturating_sub(message.ts);
                self.server
                    .metrics
                    .delivered(u64::try_from(latency).unwrap_or(0));
                let mut frames = Frames::one(ServerFrame::Message {
                    message: message.clone(),
                });
                if message.from != auth.user
                    && !*muted
                    && message.stands_alone()
                    && self.focus.as_ref() != Some(&message.conv)
                {
                    frames.0[1] = Some(ServerFrame::Alert {
                        conv: message.conv.clone(),
                        from: message.from.clone(),
                        message_id: message.id.clone(),
                        seq: message.seq,
                    });
                }
                Ok(frames)
            }
            Event::Read { conv, seq, origin } => {
                if **origin == *self.conn_key {
                    Ok(Frames::NONE)
                } else {
                    Ok(Frames::one(ServerFrame::Read {
                        conv: conv.clone(),
                        seq: *seq,
                    }))
                }
            }
            Event::Receipt(r) => {
                // Read marks are withheld from whoever does not share theirs.
                if self.version < RECEIPTS_VERSION || r.user == auth.user {
                    Ok(Frames::NONE)
                } else {
                    Ok(Frames::one(ServerFrame::Receipt {
                        conv: r.conv.clone(),
                        user: r.user.clone(),
                        delivered: r.delivered,
                        read: if self.privacy.read_receipts {
                            r.read
                        } else {
                            0
                        },
                    }))
                }
            }
            Event::Typing { conv, user, typing } => {
                // A version-4 client refuses frames it does not know.
                if self.version < TYPING_VERSION || *user == auth.user {
                    Ok(Frames::NONE)
                } else {
                    Ok(Frames::one(ServerFrame::Typing {
                        conv: conv.clone(),
                        user: user.clone(),
                        typing: *typing,
                        ttl_ms: self.server.config.typing_ttl_ms,
                    }))
                }
            }
            Event::Presence(p) => {
                let Some(seen) = self.seen.get_mut(&p.user) else {
                    return Ok(Frames::NONE);
                };
                seen.presence = p.clone();
                if seen.shown(&self.privacy) {
                    Ok(Frames::one(ServerFrame::Presence {
                        presence: p.clone(),
                    }))
                } else {
                    Ok(Frames::NONE)
                }
            }
            Event::Profile { profile, origin } => {
                let seen = profile.user == auth.user
                    || self.seen.get(&profile.user).is_some_and(|s| !s.hidden);
                if **origin != *self.conn_key && seen {
                    Ok(Frames::one(ServerFrame::ProfileChanged {
                        profile: profile.clone(),
                    }))
                } else {
                    Ok(Frames::NONE)
                }
            }
            Event::NewUser(entry) => {
                if self.dir_new && entry.profile.user != auth.user {
                    Ok(Frames::one(ServerFrame::NewUser {
                        entry: entry.clone(),
                    }))
                } else {
                    Ok(Frames::NONE)
                }
            }
            Event::Relation {
                with,
                contacts,
                hidden,
                contact,
                origin,
            } => {
                let mut frames = Frames::NONE;
                if let Some(seen) = self.seen.get_mut(with) {
                    let was = seen.shown(&self.privacy);
                    seen.contacts = *contacts;
                    seen.hidden = *hidden;
                    if seen.shown(&self.privacy) != was {
                        frames.0[0] = Some(ServerFrame::Presence {
                            presence: seen.presence(&self.privacy),
                        });
                    }
                }
                if let Some(contact) = contact
                    .as_ref()
                    .filter(|_| origin.as_deref() != Some(&*self.conn_key))
                {
                    frames.0[1] = Some(ServerFrame::Contact {
                        id: None,
                        contact: contact.clone(),
                    });
                }
                Ok(frames)
            }
            Event::Privacy {
                user,
                privacy,
                origin,
            } => {
                if *user != auth.user {
                    let Some(seen) = self.seen.get_mut(user) else {
                        return Ok(Frames::NONE);
                    };
                    let was = seen.shown(&self.privacy);
                    seen.privacy = *privacy;
                    return Ok(if seen.shown(&self.privacy) != was {
                        Frames::one(ServerFrame::Presence {
                            presence: seen.presence(&self.privacy),
                        })
                    } else {
                        Frames::NONE
                    });
                }
                let before = self.privacy;
                self.privacy = *privacy;
                if let Some(caller) = self.auth.as_mut() {
                    caller.read_receipts = privacy.read_receipts;
                }
                for seen in self.seen.values() {
                    if seen.shown(&before) != seen.shown(privacy) {
                        self.pending.push(Some(ServerFrame::Presence {
                            presence: seen.presence(privacy),
                        }));
                    }
                }
                if origin.as_deref() == Some(&*self.conn_key) {
                    Ok(Frames::NONE)
                } else {
                    Ok(Frames::one(ServerFrame::Privacy {
                        id: None,
                        privacy: *privacy,
                    }))
                }
            }
            Event::Invited(summary) => Ok(Frames::one(ServerFrame::Invited {
                conversation: summary.clone(),
            })),
            Event::Answered {
                conv,
                accepted,
                origin,
            } => Ok(if **origin == *self.conn_key {
                Frames::NONE
            } else {
                Frames::one(ServerFrame::Answered {
                    conv: conv.clone(),
                    accepted: *accepted,
                })
            }),
            Event::Revoked(which) => {
                if which.covers(&auth.device) {
                    Err(Disconnect::Revoked)
                } else {
                    Ok(Frames::NONE)
                }
            }
            Event::ToDevice { device, message } => Ok(if *device == auth.device {
                Frames::one(ServerFrame::ToDevice {
                    messages: vec![ToDeviceMessage::clone(message)],
                })
            } else {
                Frames::NONE
            }),
            Event::KeyCounts { device, counts } => Ok(if *device == auth.device {
                Frames::one(ServerFrame::KeyCounts {
                    id: None,
                    one_time: counts.one_time,
                    fallback_unused: counts.fallback_unused,
                })
            } else {
                Frames::NONE
            }),
            Event::Call { call, origin } => Ok(
                if self.version < CALLS_VERSION || origin.as_deref() == Some(&*self.conn_key) {
                    Frames::NONE
                } else {
                    Frames::one(ServerFrame::CallState {
                        id: None,
                        call: call.clone(),
                    })
                },
            ),
            Event::CallSignal { device, signal } => Ok(
                if self.version < CALLS_VERSION
                    || device.as_ref().is_some_and(|d| *d != auth.device)
                {
                    Frames::NONE
                } else {
                    Frames::one(ServerFrame::CallSignal(signal.clone()))
                },
            ),
            Event::DevicesChanged { user, origin } => {
                Ok(if origin.as_deref() == Some(&*self.conn_key) {
                    Frames::NONE
                } else {
                    Frames::one(ServerFrame::DevicesChanged { user: user.clone() })
                })
            }
        }
    }

    /// Signs this connection in after a handler created or checked its
    /// session and took its account slot: listens for the user's events and
    /// marks them online.
    async fn sign_in(&mut self, sign_in: SignIn) -> Result<(), CoreError> {
        let SignIn {
            user,
            device,
            token_hash,
        } = sign_in;
        self.slot = Some(user.clone());
        let topic = Topic::User(user.clone());
        if let Err(e) = self
            .server
            .hub
            .subscribe(&topic, self.conn, &self.conn_tx)
            .await
        {
            self.release_slot();
            return Err(e.into());
        }
        // A revocation (logout elsewhere, password change) published between
        // the handler's check and the subscription above was not heard:
        // look at the session again now that the connection listens.
        let live = self
            .server
            .backends
            .sessions
            .get(&token_hash, self.server.now())
            .await;
        if !matches!(live, Ok(Some(_))) {
            let _ = self.server.hub.unsubscribe(&topic, self.conn).await;
            self.release_slot();
            live?;
            self.close_after = Some(Disconnect::Revoked);
            return Err(CoreError::Unauthenticated(
                "the session was revoked; sign in again".into(),
            ));
        }
        // Loaded once the connection listens, like the session above: a
        // change after this is heard.
        match self.server.backends.users.get(&user).await {
            Ok(record) => self.privacy = record.map(|u| u.privacy).unwrap_or_default(),
            Err(e) => {
                let _ = self.server.hub.unsubscribe(&topic, self.conn).await;
                self.release_slot();
                return Err(e.into());
            }
        }
        let mut caller = Caller::new(user.clone(), device, token_hash, self.conn_key.clone());
        caller.read_receipts = self.privacy.read_receipts;
        self.auth = Some(caller);
        let now = self.server.now();
        if self
            .server
            .backends
            .presence
            .connect(&user, &self.conn_key, now)
            .await?
        {
            let presence = Presence {
                user: user.clone(),
                online: true,
                last_seen: None,
            };
            self.publish_presence(presence).await;
        }
        if let Err(e) = self.join_call().await {
            tracing::warn!(error = %e, "call store unavailable at sign-in");
        }
        Ok(())
    }

    /// At sign-in, the user's call if any (one store round trip when there
    /// is none): a device back within the grace period takes its call up
    /// again on this connection (its media never stopped: peer to peer),
    /// and a device of the callee rings if the call still rings, as if it
    /// had been connected at the invite.
    async fn join_call(&mut self) -> Result<(), crate::store::StoreError> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        let calls = &self.server.backends.calls;
        let Some(call) = calls.of_user(&auth.user).await? else {
            return Ok(());
        };
        if call.in_call(&auth.user, &auth.device) {
            let took = calls
                .conn_opened(&auth.user, &auth.device, &self.conn_key)
                .await?;
            self.holds_call |= took;
            // The device's side was gone and this connection took it: the
            // client learns where the call stands (another connection of
            // the device, with the call still on, is told nothing).
            if took && self.version >= CALLS_VERSION {
                let now = self.server.now();
                self.pending
                    .push(Some(crate::commands::calls::rejoin(&call, now)));
            }
        } else if call.rings_for(&auth.user) && self.version >= CALLS_VERSION {
            let now = self.server.now();
            if let Some(frames) = crate::commands::calls::ring_late(&call, &auth.device, now) {
                self.pending.extend(frames.map(Some));
            }
        }
        Ok(())
    }

    /// Pushes the oldest to-device payloads waiting for this device, after
    /// the reply: all of them, or a batch, the next one following when the
    /// device acknowledges ([`Out::to_device_acked`]). Payloads queued
    /// from now on are pushed live (the connection listens already): one
    /// may come twice, which the device's deduplication absorbs. Best
    /// effort: what a failed read leaves waiting comes at the next sign-in.
    async fn deliver_to_device(&mut self) {
        let Some(auth) = &self.auth else {
            return;
        };
        match to_device::waiting(&self.server, &auth.user, &auth.device).await {
            Ok((messages, more)) => {
                self.to_device_more = more;
                if !messages.is_empty() {
                    self.pending.push(Some(ServerFrame::ToDevice { messages }));
                }
            }
            Err(e) => tracing::warn!(error = %e, "to-device payloads not read; they wait"),
        }
    }

    /// Gives back the account slot of a sign-in that failed after all.
    fn release_slot(&mut self) {
        if let Some(user) = self.slot.take() {
            self.server.admission.sign_in_failed(self.addr, &user);
        }
    }

    async fn publish_presence(&self, presence: Presence) {
        self.server.publish_presence(presence).await;
    }

    /// Replaces the directory-view presence watches with `users`.
    async fn watch_directory(&mut self, users: Vec<UserId>) -> Result<(), CoreError> {
        let me = self.auth.as_ref().map(|a| &a.user);
        let new: HashSet<UserId> = users.into_iter().filter(|u| Some(u) != me).collect();
        let old = std::mem::take(&mut self.dir_watch);
        for u in old.difference(&new) {
            if !self.conv_watch.contains(u) {
                self.server
                    .hub
                    .unsubscribe(&Topic::Presence(u.clone()), self.conn)
                    .await?;
                self.seen.remove(u);
            }
        }
        let mut added = Vec::new();
        for u in new.difference(&old) {
            if !self.conv_watch.contains(u) {
                self.server
                    .hub
                    .subscribe(&Topic::Presence(u.clone()), self.conn, &self.conn_tx)
                    .await?;
                added.push(u.clone());
            }
        }
        self.dir_watch = new;
        self.learn(&added).await
    }

    /// Listens for new users while the directory view is the unfiltered
    /// first page (`on`), and stops when it no longer is.
    async fn watch_registrations(&mut self, on: bool) -> Result<(), CoreError> {
        if on == self.dir_new {
            return Ok(());
        }
        let hub = &self.server.hub;
        if on {
            hub.subscribe(&Topic::Directory, self.conn, &self.conn_tx)
                .await?;
        } else {
            hub.unsubscribe(&Topic::Directory, self.conn).await?;
        }
        self.dir_new = on;
        Ok(())
    }

    /// A user announced to the directory view is listed there now: its
    /// presence is watched like the rest of the view's (bounded by `max_watched`).
    async fn watch_new_user(&mut self, user: &UserId) {
        if !self.dir_new
            || self.dir_watch.contains(user)
            || self.dir_watch.len() >= self.server.config.max_watched
            || self.auth.as_ref().is_some_and(|a| a.user == *user)
        {
            return;
        }
        if !self.conv_watch.contains(user) {
            let topic = Topic::Presence(user.clone());
            if let Err(e) = self
                .server
                .hub
                .subscribe(&topic, self.conn, &self.conn_tx)
                .await
            {
                tracing::warn!(error = %e, "presence watch of a new user failed");
                return;
            }
        }
        self.dir_watch.insert(user.clone());
        if let Err(e) = self.learn(std::slice::from_ref(user)).await {
            tracing::warn!(error = %e, "presence settings of a new user not loaded");
        }
    }

    /// Loads what the presence of `users` (just watched) shown to this
    /// connection depends on: their settings, the relation, their presence.
    /// Listening came first, so a change after this is heard.
    async fn learn(&mut self, users: &[UserId]) -> Result<(), CoreError> {
        let Some(auth) = &self.auth else {
            return Ok(());
        };
        let users: Vec<UserId> = users
            .iter()
            .filter(|u| !self.seen.contains_key(*u))
            .cloned()
            .collect();
        if users.is_empty() {
            return Ok(());
        }
        let b = &self.server.backends;
        let records = b.users.get_many(&users).await?;
        let relations = b.contacts.relations(&auth.user, &users).await?;
        let presence = b.presence.get(&users).await?;
        for p in presence {
            let Some(record) = records.iter().find(|r| r.id == p.user) else {
                continue;
            };
            let relation = relations.iter().find(|r| r.side(&p.user).is_some());
            let (contacts, hidden) = facts(relation, &p.user);
            self.seen.insert(
                p.user.clone(),
                Seen {
                    privacy: record.privacy,
                    contacts,
                    hidden,
                    presence: p,
                },
            );
        }
        Ok(())
    }

    /// Watches the presence of a conversation peer, and remembers that the
    /// user exists (both bounded per connection by `max_watched`).
    async fn watch_peer(&mut self, user: UserId) -> Result<(), CoreError> {
        if self.conv_watch.contains(&user)
            || self.conv_watch.len() >= self.server.config.max_watched
            || self.auth.as_ref().is_some_and(|a| a.user == user)
        {
            return Ok(());
        }
        if !self.dir_watch.contains(&user) {
            self.server
                .hub
                .subscribe(&Topic::Presence(user.clone()), self.conn, &self.conn_tx)
                .await?;
        }
        if self.known_users.len() < self.server.config.max_watched {
            self.known_users.insert(user.clone());
        }
        self.conv_watch.insert(user.clone());
        self.learn(&[user]).await
    }

    async fn cleanup(&mut self) {
        self.server.admission.close(self.addr, self.slot.as_ref());
        let hub = self.server.hub.clone();
        let mut topics: Vec<Topic> = self
            .dir_watch
            .union(&self.conv_watch)
            .map(|u| Topic::Presence(u.clone()))
            .collect();
        if let Some(auth) = &self.auth {
            topics.push(Topic::User(auth.user.clone()));
        }
        if self.dir_new {
            topics.push(Topic::Directory);
        }
        for t in topics {
            if let Err(e) = hub.unsubscribe(&t, self.conn).await {
                tracing::warn!(error = %e, "unsubscribe failed");
            }
        }
        if let Some(auth) = self.auth.take() {
            let now = self.server.now();
            if self.holds_call {
                if let Err(e) = self
                    .server
                    .backends
                    .calls
                    .conn_closed(&auth.user, &auth.device, &self.conn_key, now)
                    .await
                {
                    tracing::warn!(error = %e, "call store unavailable at close");
                }
            }
            match self
                .server
                .backends
                .presence
                .disconnect(&auth.user, &self.conn_key, now)
                .await
            {
                Ok(true) => {
                    let presence = Presence {
                        user: auth.user,
                        online: false,
                        last_seen: Some(now),
                    };
                    self.publish_presence(presence).await;
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "presence disconnect failed"),
            }
        }
    }
}

/// Requests allowed per connection: `rate` per second sustained, `burst` at once.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    fn new(rate: u32, burst: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self {
            rate: f64::from(rate.max(1)),
            burst,
            tokens: burst,
            at: Instant::now(),
        }
    }

    /// Takes a token, or says how many milliseconds until one is available.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - self.tokens) / self.rate) * 1000.0).ceil() as u64)
        }
    }
}

/// A connection served in-process over channels: what embedders and tests
/// use instead of a network transport.
pub struct InProcess {
    /// Frames to the server (a `Sink`).
    pub tx: futures_channel::mpsc::Sender<Inbound>,
    /// Frames from the server (a `Stream`).
    pub rx: futures_channel::mpsc::Receiver<ServerFrame>,
    /// The session task; resolves to why it ended.
    pub task: tokio::task::JoinHandle<Disconnect>,
}

/// Spawns [`serve`] for a connection whose two ends are channels of
/// `capacity` frames. Dropping `tx` closes the connection like a client leaving.
pub fn connect_in_process(
    server: Arc<Server>,
    peer: PeerInfo,
    capacity: usize,
    shutdown: CancellationToken,
) -> InProcess {
    let (tx, incoming) = futures_channel::mpsc::channel(capacity);
    let (outgoing, rx) = futures_channel::mpsc::channel(capacity);
    let task = tokio::spawn(serve(server, peer, incoming, outgoing, shutdown));
    InProcess { tx, rx, task }
}
