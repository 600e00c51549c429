//! The life of one connection: the loop that reads client frames, answers
//! them, forwards pushes from the hub, and cleans up when it ends.
//!
//! [`serve`] is generic over a `Stream` of decoded frames and a `Sink` of
//! frames to send, so a transport (chatd's WebSocket, a test's channels) only
//! moves bytes; everything the protocol means happens here.

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::collections::HashSet;
use std::future::{poll_fn, Future};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::CoreError;
use crate::hub::{ConnTx, Kick};
use crate::limits::{AddrKey, Refusal};
use crate::model::{ConversationId, DeviceId, Presence, UserId};
use crate::protocol::{ClientFrame, DecodeError, ServerFrame, PROTOCOL_VERSION};
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
    /// The session was revoked (password changed or reset); sign in again.
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
        hello: false,
        auth: None,
        focus: None,
        dir_watch: HashSet::new(),
        conv_watch: HashSet::new(),
        close_after: None,
        slot: None,
    };
    // On the heap, and dropped at sign-in: a signed-in connection, which
    // may idle for days, keeps neither the timer nor its room.
    let mut auth_deadline = Some(Box::pin(tokio::time::sleep(server.config.auth_timeout)));
    // Created once, not per turn of the loop: each creation registers a
    // waiter (a lock and a list insert), and the loop turns once per frame.
    let kicked = kick.kicked();
    tokio::pin!(kicked);

    let reason = 'conn: loop {
        let frames: Frames = tokio::select! {
            biased;
            reason = &mut kicked => break reason,
            _ = poll_fn(|cx| match auth_deadline.as_mut() {
                Some(deadline) => deadline.as_mut().poll(cx),
                None => Poll::Pending,
            }), if s.auth.is_none() => break Disconnect::AuthTimeout,
            event = rx.recv() => match event {
                Some(event) => match s.on_event(&event) {
                    Ok(frames) => frames,
                    Err(reason) => break reason,
                },
                None => continue,
            },
            item = incoming.next() => match item {
                None => break Disconnect::ClientClosed,
                Some(item) => {
                    server.metrics.frames_in.fetch_add(1, Ordering::Relaxed);
                    // Boxed, like the handlers inside: a request's state
                    // would otherwise be room in every connection's future.
                    Frames::one(Box::pin(s.on_inbound(item)).await)
                }
            },
        };
        // Each frame is taken only once the sink has room for it, and the
        // sink is flushed once for both: while a slow sink is awaited, the
        // connection's future holds nothing but the frames themselves
        // (this state sizes every idle connection's future).
        let mut frames = frames.0;
        let mut queued = false;
        for slot in &mut frames {
            if slot.is_none() {
                continue;
            }
            let ready = or_kicked(&mut kicked, |cx| {
                outgoing.poll_ready_unpin(cx).map_err(transport)
            })
            .await;
            let Some(frame) = slot.take() else { continue };
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
        if queued {
            let flushed = or_kicked(&mut kicked, |cx| {
                outgoing.poll_flush_unpin(cx).map_err(transport)
            })
            .await;
            if let Err(reason) = flushed {
                break 'conn reason;
            }
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

/// A signed-in connection's identity.
pub(crate) struct Auth {
    pub(crate) user: UserId,
    pub(crate) device: DeviceId,
    pub(crate) token_hash: String,
    /// The user's key in the rate limiter's send budget, made once per
    /// sign-in rather than per message.
    pub(crate) send_budget_key: String,
}

/// Per-connection state; the command handlers in [`crate::commands`] are its methods.
pub(crate) struct Session {
    pub(crate) server: Arc<Server>,
    /// What the peer's address counts as, for the per-address limits.
    pub(crate) addr: Option<AddrKey>,
    /// Undecodable frames since the last good one.
    invalid_in_a_row: u32,
    pub(crate) conn: u64,
    pub(crate) conn_key: Arc<str>,
    pub(crate) conn_tx: ConnTx,
    hello: bool,
    pub(crate) auth: Option<Auth>,
    pub(crate) focus: Option<ConversationId>,
    /// Users whose presence is watched because a directory listing shows them.
    dir_watch: HashSet<UserId>,
    /// Users whose presence is watched because of a conversation with them.
    conv_watch: HashSet<UserId>,
    bucket: TokenBucket,
    /// Recipients this connection has already sent to: found in the user
    /// store and given to `watch_peer` (bounded by `max_watched`). Accounts
    /// are never deleted, so a repeated send to the same person needs
    /// neither again.
    pub(crate) known_users: HashSet<UserId>,
    /// Set by a handler whose reply must be the last frame (logout, bad version).
    pub(crate) close_after: Option<Disconnect>,
    /// The account whose connection slot this connection holds (from just
    /// before sign-in; [`crate::limits::Admission`]).
    slot: Option<UserId>,
}

impl Session {
    async fn on_inbound(&mut self, item: Inbound) -> ServerFrame {
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
                    return CoreError::RateLimited { retry_after_ms }.to_frame(e.id);
                }
                return CoreError::InvalidFrame(quote_safely(&e.error.to_string())).to_frame(e.id);
            }
        };
        let id = frame.id();
        if let Err(retry_after_ms) = allowed {
            return CoreError::RateLimited { retry_after_ms }.to_frame(Some(id));
        }
        let name = frame.type_name();
        // Boxed: the handlers' state would otherwise sit in every idle
        // connection's future for its whole life; one short-lived
        // allocation per request costs far less than that memory.
        match Box::pin(self.dispatch(frame)).await {
            Ok(reply) => reply,
            Err(e) => {
                match &e {
                    CoreError::Internal(_) | CoreError::Unavailable(_) => {
                        tracing::warn!(frame = name, error = %e, "request failed")
                    }
                    _ => tracing::debug!(frame = name, error = %e, "request refused"),
                }
                e.to_frame(Some(id))
            }
        }
    }

    async fn dispatch(&mut self, frame: ClientFrame) -> Result<ServerFrame, CoreError> {
        self.check_sizes(&frame)?;
        if !self.hello {
            return match frame {
                ClientFrame::Hello {
                    id,
                    version,
                    client,
                } => self.hello(id, version, client),
                _ => Err(CoreError::InvalidFrame(
                    "the first frame must be hello".into(),
                )),
            };
        }
        match frame {
            ClientFrame::Hello { .. } => {
                Err(CoreError::InvalidFrame("hello was already sent".into()))
            }
            ClientFrame::Ping { id } => Ok(ServerFrame::Pong { id }),
            // The account handlers hold passwords across an argon2 hash:
            // boxed each, so that `dispatch`'s own future (allocated per
            // request) stays the size of the small, frequent ones.
            ClientFrame::ResetRequest { id, email } => {
                Box::pin(self.reset_request(id, email)).await
            }
            ClientFrame::ResetConfirm {
                id,
                token,
                new_password,
            } => Box::pin(self.reset_confirm(id, token, new_password)).await,
            ClientFrame::Register { .. }
            | ClientFrame::Login { .. }
            | ClientFrame::Resume { .. }
                if self.auth.is_some() =>
            {
                Err(CoreError::Forbidden(
                    "this connection is already signed in; open another for another account".into(),
                ))
            }
            ClientFrame::Register {
                id,
                username,
                email,
                phone,
                display_name,
                password,
                device,
            } => {
                Box::pin(self.register(id, username, email, phone, display_name, password, device))
                    .await
            }
            ClientFrame::Login {
                id,
                login,
                password,
                device,
            } => Box::pin(self.login(id, login, password, device)).await,
            ClientFrame::Resume { id, token } => Box::pin(self.resume(id, token)).await,
            _ if self.auth.is_none() => Err(CoreError::Unauthenticated("sign in first".into())),
            ClientFrame::Logout { id } => self.logout(id).await,
            ClientFrame::ChangePassword {
                id,
                old_password,
                new_password,
            } => Box::pin(self.change_password(id, old_password, new_password)).await,
            ClientFrame::SearchUsers {
                id,
                query,
                after,
                limit,
            } => self.search_users(id, query, after, limit).await,
            ClientFrame::GetProfile { id, user } => self.get_profile(id, user).await,
            ClientFrame::UpdateProfile {
                id,
                display_name,
                about,
                avatar,
            } => self.update_profile(id, display_name, about, avatar).await,
            ClientFrame::Send {
                id,
                to,
                client_id,
                content,
            } => self.send(id, to, client_id, content).await,
            ClientFrame::History {
                id,
                conv,
                before,
                limit,
            } => self.history(id, conv, before, limit).await,
            ClientFrame::Sync { id, limit } => self.sync(id, limit).await,
            ClientFrame::Ack { id, conv, seq } => self.ack(id, conv, seq).await,
            ClientFrame::Read { id, conv, seq } => self.read(id, conv, seq).await,
            ClientFrame::Focus { id, conv } => self.set_focus(id, conv).await,
            ClientFrame::Conversations { id } => self.conversations(id).await,
        }
    }

    fn hello(
        &mut self,
        id: u32,
        version: u32,
        client: Option<String>,
    ) -> Result<ServerFrame, CoreError> {
        if version < 1 {
            self.close_after = Some(Disconnect::UnsupportedVersion);
            return Err(CoreError::UnsupportedVersion(version));
        }
        tracing::debug!(client = client.as_deref().unwrap_or("-"), version, "hello");
        self.hello = true;
        Ok(ServerFrame::Welcome {
            id,
            version: version.min(PROTOCOL_VERSION),
            server: self.server.config.server_name.clone(),
            time: self.server.now(),
        })
    }

    /// Refuses oversized strings with `too_large` before any work is done.
    fn check_sizes(&self, frame: &ClientFrame) -> Result<(), CoreError> {
        let max = self.server.config.max_field_bytes;
        let check = |field: &str, value: &str, max: usize| {
            if value.len() > max {
                Err(CoreError::TooLarge {
                    field: field.to_owned(),
                    message: format!("{field} is longer than {max} bytes"),
                })
            } else {
                Ok(())
            }
        };
        // Passwords are bounded by the policy in characters; 4 bytes each at most.
        let pw_max = self.server.config.password_policy.max_chars * 4 + 4;
        match frame {
            ClientFrame::Hello { client, .. } => {
                check("client", client.as_deref().unwrap_or(""), max)
            }
            ClientFrame::Register {
                username,
                email,
                phone,
                display_name,
                password,
                device,
                ..
            } => {
                check("username", username, max)?;
                check("email", email, max)?;
                check("phone", phone, max)?;
                check("display_name", display_name, max)?;
                check("device", device, max)?;
                check("password", password, pw_max)
            }
            ClientFrame::Login {
                login,
                password,
                device,
                ..
            } => {
                check("login", login, max)?;
                check("device", device, max)?;
                check("password", password, pw_max)
            }
            ClientFrame::Resume { token, .. } => check("token", token, max),
            ClientFrame::ChangePassword {
                old_password,
                new_password,
                ..
            } => {
                check("old_password", old_password, pw_max)?;
                check("new_password", new_password, pw_max)
            }
            ClientFrame::ResetRequest { email, .. } => check("email", email, max),
            ClientFrame::ResetConfirm {
                token,
                new_password,
                ..
            } => {
                check("token", token, max)?;
                check("new_password", new_password, pw_max)
            }
            ClientFrame::SearchUsers { query, after, .. } => {
                check("query", query, max)?;
                check("after", after.as_deref().unwrap_or(""), max)
            }
            ClientFrame::GetProfile { user, .. } => check("user", user.as_str(), max),
            ClientFrame::UpdateProfile {
                display_name,
                about,
                avatar,
                ..
            } => {
                check("display_name", display_name.as_deref().unwrap_or(""), max)?;
                check("about", about.as_deref().unwrap_or(""), max)?;
                check("avatar", avatar.as_deref().unwrap_or(""), max)
            }
            ClientFrame::Send {
                to,
                client_id,
                content,
                ..
            } => {
                check("to", to.as_str(), max)?;
                check("client_id", client_id, 128)?;
                match content {
                    crate::model::Content::Text { text } => {
                        check("text", text, self.server.config.max_text_bytes)
                    }
                }
            }
            ClientFrame::History { conv, .. }
            | ClientFrame::Ack { conv, .. }
            | ClientFrame::Read { conv, .. }
            | ClientFrame::Focus {
                conv: Some(conv), ..
            } => check("conv", conv.as_str(), max),
            ClientFrame::Logout { .. }
            | ClientFrame::Sync { .. }
            | ClientFrame::Focus { conv: None, .. }
            | ClientFrame::Conversations { .. }
            | ClientFrame::Ping { .. } => Ok(()),
        }
    }

    /// Turns a hub event into the frames this connection should see.
    fn on_event(&mut self, event: &Event) -> Result<Frames, Disconnect> {
        let Some(auth) = &self.auth else {
            return Ok(Frames::NONE);
        };
        match event {
            Event::Message {
                message,
                unread,
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
                if message.from != auth.user && self.focus.as_ref() != Some(&message.conv) {
                    frames.0[1] = Some(ServerFrame::Alert {
                        conv: message.conv.clone(),
                        from: message.from.clone(),
                        message_id: message.id.clone(),
                        seq: message.seq,
                        unread: *unread,
                    });
                }
                Ok(frames)
            }
            Event::Presence(p) => {
                if self.dir_watch.contains(&p.user) || self.conv_watch.contains(&p.user) {
                    Ok(Frames::one(ServerFrame::Presence {
                        presence: p.clone(),
                    }))
                } else {
                    Ok(Frames::NONE)
                }
            }
            Event::Revoked(which) => {
                if which.covers(&auth.device) {
                    Err(Disconnect::Revoked)
                } else {
                    Ok(Frames::NONE)
                }
            }
        }
    }

    /// Takes one of `user`'s connection slots for this connection before it
    /// signs in (before a session is created for it, so that a refused
    /// sign-in leaves no device behind). Over the cap: `limit_reached`, and
    /// the connection closes after the reply (4029).
    pub(crate) fn reserve_account_slot(&mut self, user: &UserId) -> Result<(), CoreError> {
        if self.slot.as_ref() == Some(user) {
            return Ok(());
        }
        if self.slot.is_some() || !self.server.admission.sign_in(self.addr, user) {
            self.close_after = Some(Disconnect::TooManyForAccount);
            return Err(CoreError::LimitReached(format!(
                "this account has {} connections open, the most it may; close one and retry",
                self.server.config.max_connections_per_user
            )));
        }
        self.slot = Some(user.clone());
        Ok(())
    }

    /// Gives back the slot [`Session::reserve_account_slot`] took, when the
    /// sign-in it was for failed.
    pub(crate) fn release_account_slot(&mut self) {
        if self.auth.is_none() {
            if let Some(user) = self.slot.take() {
                self.server.admission.sign_in_failed(self.addr, &user);
            }
        }
    }

    /// Signs this connection in: listens for the user's events and marks
    /// them online. Takes the account slot unless the caller has.
    pub(crate) async fn sign_in(
        &mut self,
        user: UserId,
        device: DeviceId,
        token_hash: String,
    ) -> Result<(), CoreError> {
        self.reserve_account_slot(&user)?;
        self.server
            .hub
            .subscribe(&Topic::User(user.clone()), self.conn, &self.conn_tx)
            .await?;
        self.auth = Some(Auth {
            send_budget_key: format!("send:{user}"),
            user: user.clone(),
            device,
            token_hash,
        });
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
        Ok(())
    }

    async fn publish_presence(&self, presence: Presence) {
        let topic = Topic::Presence(presence.user.clone());
        if let Err(e) = self
            .server
            .backends
            .broker
            .publish(&topic, Event::Presence(presence))
            .await
        {
            tracing::warn!(error = %e, "presence publish failed");
        }
    }

    /// The signed-in identity, or `unauthenticated`.
    pub(crate) fn auth(&self) -> Result<&Auth, CoreError> {
        self.auth
            .as_ref()
            .ok_or_else(|| CoreError::Unauthenticated("sign in first".into()))
    }

    /// Replaces the directory-view presence watches with `users`.
    pub(crate) async fn watch_directory(
        &mut self,
        users: impl IntoIterator<Item = UserId>,
    ) -> Result<(), CoreError> {
        let me = self.auth()?.user.clone();
        let new: HashSet<UserId> = users.into_iter().filter(|u| *u != me).collect();
        let old = std::mem::take(&mut self.dir_watch);
        for u in old.difference(&new) {
            if !self.conv_watch.contains(u) {
                self.server
                    .hub
                    .unsubscribe(&Topic::Presence(u.clone()), self.conn)
                    .await?;
            }
        }
        for u in new.difference(&old) {
            if !self.conv_watch.contains(u) {
                self.server
                    .hub
                    .subscribe(&Topic::Presence(u.clone()), self.conn, &self.conn_tx)
                    .await?;
            }
        }
        self.dir_watch = new;
        Ok(())
    }

    /// Watches the presence of a conversation peer (bounded per connection).
    pub(crate) async fn watch_peer(&mut self, user: &UserId) -> Result<(), CoreError> {
        if self.conv_watch.contains(user)
            || self.conv_watch.len() >= self.server.config.max_watched
            || self.auth.as_ref().is_some_and(|a| &a.user == user)
        {
            return Ok(());
        }
        if !self.dir_watch.contains(user) {
            self.server
                .hub
                .subscribe(&Topic::Presence(user.clone()), self.conn, &self.conn_tx)
                .await?;
        }
        self.conv_watch.insert(user.clone());
        Ok(())
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
        for t in topics {
            if let Err(e) = hub.unsubscribe(&t, self.conn).await {
                tracing::warn!(error = %e, "unsubscribe failed");
            }
        }
        if let Some(auth) = self.auth.take() {
            let now = self.server.now();
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
