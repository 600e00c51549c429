//! # chatcore-client
//!
//! An async client for the chatcore WebSocket protocol, on tokio-tungstenite.
//!
//! A [`Client`] sends requests and awaits their replies, matched by request
//! `id`; everything the server pushes unasked (new messages, presence
//! changes, alerts, errors without an id) arrives on the [`Events`] returned
//! beside it, which ends with [`Event::Closed`] carrying the close code.
//! Failed requests are typed: [`Error::Server`] carries the server's
//! [`ErrorCode`].
//!
//! # Layout
//! - [`Client`]: connect, the typed requests, [`Client::request`] for any frame.
//! - [`ConnectOptions`]: codec, `Origin`, timeouts, event buffer, TLS roots of `wss://`.
//! - [`Events`] / [`Event`]: the pushes and the final close.
//! - [`Error`] / [`ServerError`]: why a call failed.
//! - [`e2e`]: end-to-end encryption as a state machine without I/O (keys, Olm, Megolm, devices, safety numbers).
//! - [`secure`]: [`secure::SecureClient`], a [`Client`] and an [`e2e::Machine`] together: encrypted conversations end to end.
//!
//! # Example
//!
//! ```no_run
//! use chatcore_client::{Client, ConnectOptions, Event, Registration};
//! use chatcore_client::chatcore::protocol::ServerFrame;
//!
//! # async fn demo() -> Result<(), chatcore_client::Error> {
//! let (alice, _alice_events) = Client::connect("ws://127.0.0.1:8080/ws", ConnectOptions::new()).await?;
//! let me = alice.register(&Registration {
//!     username: "alice".into(),
//!     email: "alice@example.com".into(),
//!     phone: "+44 20 7946 0001".into(),
//!     display_name: "Alice".into(),
//!     password: "violet harbour anchor 1917".into(),
//!     device: "laptop".into(),
//! }).await?;
//! println!("signed in as {}; keep {:?} to resume", me.user, me.token);
//!
//! let (bob, mut bob_events) = Client::connect("ws://127.0.0.1:8080/ws", ConnectOptions::new()).await?;
//! let bob_id = bob.login("bob", "another long passphrase 42", "phone").await?.user;
//! // Retried sends reuse one client id, so the message is stored once.
//! let sent = alice.send_text(&bob_id, "hi Bob").await?;
//! println!("stored as seq {} of {}", sent.seq, sent.conv);
//!
//! // A group: its id comes from the server, and a send names it.
//! let group = alice.create_group("Tea party", None, &[bob_id.clone()]).await?;
//! alice.send_text(&group.conv, "welcome, Bob").await?;
//!
//! while let Some(event) = bob_events.recv().await {
//!     match event {
//!         Event::Push(ServerFrame::Message { message }) => println!("{:?}", message.content),
//!         Event::Push(_) => {}
//!         Event::Closed(close) => { println!("closed: {close:?}"); break }
//!     }
//! }
//! # Ok(()) }
//! ```

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use chatcore;

pub mod e2e;
pub mod media;
pub mod secure;
use chatcore::model::{
    Audience, CallMedia, Content, ConversationId, DeviceId, MediaId, Message as ChatMessage,
    MessageId, Millis, Privacy, Profile, Rel, RelKind, Role, UserId,
};
use chatcore::protocol::{
    BackupInfo, BackupKeyInfo, BackupKeyRef, CallInfo, CallSignal, ClaimedKey, ContactAction,
    ContactInfo, ContactList, ConversationInfo, ConversationList, ConversationSummary, DeviceInfo,
    DeviceKeysInfo, DeviceRef, DirectoryEntry, HangupReason, IceServer, KeyCountsInfo,
    OutgoingToDevice, ProtocolError, ReceiptInfo, ToDeviceAck, Undelivered, UserMasterKey,
    PROTOCOL_VERSION,
};
pub use chatcore::protocol::{ClientFrame, Codec, ErrorCode, ServerFrame};
/// The TLS library of `wss://` connections, for [`ConnectOptions::tls_config`].
pub use rustls;

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How to connect. Start from [`ConnectOptions::new`] and chain the setters.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// Wire codec, offered as the WebSocket subprotocol. Default MessagePack.
    pub codec: Codec,
    /// `Origin` header to send (browsers always send one; other clients need not).
    pub origin: Option<String>,
    /// Client name announced in `hello`.
    pub client_name: String,
    /// Send `hello` as part of [`Client::connect`]. Default true.
    pub hello: bool,
    /// How long a request waits for its reply before [`Error::Timeout`].
    pub request_timeout: Duration,
    /// Pushes buffered for [`Events`]. When full, the reader waits, and so do
    /// replies behind it: drain the events, or drop them to discard pushes.
    pub event_buffer: usize,
    /// Largest server frame accepted (history pages can be large).
    pub max_message_size: usize,
    /// TLS settings of `wss://` URLs (trusted roots, ALPN). Default: the
    /// Mozilla roots of `webpki-roots`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            codec: Codec::MsgPack,
            origin: None,
            client_name: format!("chatcore-client/{}", env!("CARGO_PKG_VERSION")),
            hello: true,
            request_timeout: Duration::from_secs(30),
            event_buffer: 256,
            max_message_size: 16 << 20,
            tls: None,
        }
    }
}

impl ConnectOptions {
    /// The defaults: MessagePack, no Origin, `hello` sent, 30 s request timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// Uses `codec`.
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Sends `Origin: origin`.
    pub fn origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Whether [`Client::connect`] sends `hello`.
    pub fn hello(mut self, hello: bool) -> Self {
        self.hello = hello;
        self
    }

    /// Sets the per-request timeout.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets the number of pushes buffered.
    pub fn event_buffer(mut self, n: usize) -> Self {
        self.event_buffer = n;
        self
    }

    /// Uses `config` for `wss://` connections, e.g. to trust a private CA.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Trusts only `root` (a DER certificate) for `wss://` connections: for
    /// servers with a private or self-signed certificate.
    pub fn trust_root(
        self,
        root: rustls::pki_types::CertificateDer<'static>,
    ) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(root)
            .map_err(|e| Error::Connect(Box::new(tungstenite::Error::Tls(e.into()))))?;
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Connect(Box::new(tungstenite::Error::Tls(e.into()))))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(self.tls_config(Arc::new(config)))
    }
}

/// An `error` frame the server answered a request with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerError {
    /// Stable reason: switch on this.
    pub code: ErrorCode,
    /// Human explanation.
    pub message: String,
    /// The request field at fault (`conflict`, `invalid_argument`, `too_large`).
    pub field: Option<String>,
    /// Broken password rules (`weak_password`).
    pub violations: Vec<String>,
    /// When to retry (`rate_limited`).
    pub retry_after_ms: Option<u64>,
}

/// How the connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    /// The WebSocket close code; 1006 when the connection dropped without a close frame.
    pub code: u16,
    /// The close reason the server gave.
    pub reason: String,
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The WebSocket connection could not be opened (refused, HTTP error status, ...).
    #[error("cannot connect: {0}")]
    Connect(#[source] Box<tungstenite::Error>),
    /// The server answered with an `error` frame.
    #[error("{}: {}", .0.code, .0.message)]
    Server(ServerError),
    /// The connection is closed (or closed while waiting for the reply).
    #[error("connection closed ({}: {})", .0.code, .0.reason)]
    Closed(Close),
    /// Sending failed on the socket.
    #[error("transport error: {0}")]
    Transport(#[source] Box<tungstenite::Error>),
    /// A frame could not be encoded.
    #[error(transparent)]
    Codec(#[from] ProtocolError),
    /// No reply within the request timeout.
    #[error("no reply within the request timeout")]
    Timeout,
    /// The server replied with a frame of an unexpected type.
    #[error("unexpected reply: {0:?}")]
    Unexpected(Box<ServerFrame>),
    /// An exchange with chatd's media endpoints ([`media::MediaClient`])
    /// failed below HTTP's statuses: the connection, TLS, a malformed
    /// answer or argument. A refusal with a status is [`Error::Server`].
    #[error("media: {0}")]
    Media(String),
}

impl Error {
    /// The server's error code, for [`Error::Server`].
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server(e) => Some(e.code),
            _ => None,
        }
    }

    /// The HTTP status when the WebSocket upgrade was refused (403 bad Origin, 503 full, ...).
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Connect(e) => match e.as_ref() {
                tungstenite::Error::Http(resp) => Some(resp.status().as_u16()),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Something the server sent without being asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A push: `message`, `presence`, `alert`, `devices_changed` (a user's
    /// devices changed: query them again), ..., or an `error` that names no
    /// request.
    Push(ServerFrame),
    /// The connection ended; the last event.
    Closed(Close),
}

/// The pushes of one connection, in arrival order.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<Event>,
}

impl Events {
    /// The next push, or `None` after [`Event::Closed`].
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// A push already received, without waiting.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }
}

/// `receipts`: how far the other members received and read a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipts {
    /// The receipts that rose since the time asked, by user.
    pub receipts: Vec<ReceiptInfo>,
    /// What to ask from next time.
    pub until: Millis,
}

/// `welcome`: what `hello` learnt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The protocol version both sides speak.
    pub version: u32,
    /// Server name and version.
    pub server: String,
    /// Server clock.
    pub time: Millis,
}

/// A signed-in session (`session` reply).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// The user.
    pub user: UserId,
    /// This device.
    pub device: DeviceId,
    /// Token for [`Client::resume`]; only from register and login.
    pub token: Option<String>,
    /// When the session expires unless resumed.
    pub expires_at: Millis,
    /// The user's own profile.
    pub profile: Profile,
    /// The user's privacy settings.
    pub privacy: Privacy,
    /// What this device has left in the key directory.
    pub keys: KeyCountsInfo,
}

/// Where a message goes: a conversation, or a user (the direct
/// conversation with them, opened by the first message if need be).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A conversation the caller is a member of.
    Conversation(ConversationId),
    /// A user.
    User(UserId),
}

impl From<&UserId> for Target {
    fn from(u: &UserId) -> Self {
        Target::User(u.clone())
    }
}

impl From<&Target> for Target {
    fn from(t: &Target) -> Self {
        t.clone()
    }
}

impl From<&ConversationId> for Target {
    fn from(c: &ConversationId) -> Self {
        Target::Conversation(c.clone())
    }
}

/// A page of the conversation list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConversationPage {
    /// Newest activity first.
    pub conversations: Vec<ConversationSummary>,
    /// Cursor of the next page, if any.
    pub next: Option<String>,
}

/// A page of one of the contact lists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactPage {
    /// The users, each with the caller's view and their presence.
    pub contacts: Vec<ContactInfo>,
    /// Cursor of the next page, if any.
    pub next: Option<String>,
}

/// A change of a group's settings; `None` fields stay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GroupUpdate {
    /// New title.
    pub title: Option<String>,
    /// New description (empty removes it).
    pub description: Option<String>,
    /// New avatar media id (empty removes it).
    pub avatar: Option<String>,
    /// Whether members added from now on see earlier history.
    pub history_visible: Option<bool>,
}

/// `sent`: a stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Its id.
    pub message_id: MessageId,
    /// Its conversation.
    pub conv: ConversationId,
    /// Its seq in the conversation.
    pub seq: u64,
    /// Server time of the append.
    pub ts: Millis,
    /// True when this `client_id` had been stored before.
    pub duplicate: bool,
    /// When the conversation's disappearing-message timer removes it.
    pub expires_at: Option<Millis>,
}

/// A page of messages (`history` or `sync`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    /// The messages, ascending by seq (within each conversation for `sync`).
    pub messages: Vec<ChatMessage>,
    /// Whether more remain.
    pub more: bool,
    /// For `history`: the edits, reactions and deletions of the page's
    /// messages and the messages its replies quote, from anywhere in the log
    /// (empty for `sync`, whose entries come in seq order anyway).
    pub related: Vec<ChatMessage>,
}

/// A page of the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Users {
    /// The users with their presence.
    pub users: Vec<DirectoryEntry>,
    /// Cursor of the next page.
    pub next: Option<String>,
}

/// What `register` needs.
#[derive(Clone, Debug, Default)]
pub struct Registration {
    /// Unique login name.
    pub username: String,
    /// Unique email address.
    pub email: String,
    /// Unique phone number with country code.
    pub phone: String,
    /// Name shown to others.
    pub display_name: String,
    /// The password (checked against the server's rules).
    pub password: String,
    /// Name of this device.
    pub device: String,
}

type Pending = HashMap<u32, oneshot::Sender<ServerFrame>>;

/// State shared with the reader task.
struct Shared {
    pending: Mutex<Option<Pending>>,
    closed: Mutex<Option<Close>>,
    user: Mutex<Option<UserId>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One connection to a chatcore server. Requests may be issued concurrently
/// from several tasks (`&self`); each waits for its own reply.
pub struct Client {
    sink: tokio::sync::Mutex<SplitSink<Ws, Message>>,
    shared: Arc<Shared>,
    next_id: AtomicU32,
    codec: Codec,
    timeout: Duration,
    client_name: String,
    reader: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("codec", &self.codec)
            .field("user", &self.user())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Opens a WebSocket to `url` (`ws://host:port/ws`), offering the codec's
    /// subprotocol, and (unless disabled) says `hello`.
    pub async fn connect(url: &str, options: ConnectOptions) -> Result<(Client, Events), Error> {
        let mut request = url
            .into_client_request()
            .map_err(|e| Error::Connect(Box::new(e)))?;
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(options.codec.subprotocol()),
        );
        if let Some(origin) = &options.origin {
            let value = HeaderValue::from_str(origin)
                .map_err(|e| Error::Connect(Box::new(tungstenite::Error::HttpFormat(e.into()))))?;
            headers.insert("Origin", value);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(options.max_message_size))
            .max_frame_size(Some(options.max_message_size));
        let connector = options
            .tls
            .clone()
            .map(tokio_tungstenite::Connector::Rustls);
        let (ws, _response) = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            connector,
        )
        .await
        .map_err(|e| Error::Connect(Box::new(e)))?;
        let (sink, stream) = ws.split();
        let shared = Arc::new(Shared {
            pending: Mutex::new(Some(HashMap::new())),
            closed: Mutex::new(None),
            user: Mutex::new(None),
        });
        let (events_tx, rx) = mpsc::channel(options.event_buffer.max(1));
        let reader = tokio::spawn(read_loop(stream, options.codec, shared.clone(), events_tx));
        let client = Client {
            sink: tokio::sync::Mutex::new(sink),
            shared,
            next_id: AtomicU32::new(1),
            codec: options.codec,
            timeout: options.request_timeout,
            client_name: options.client_name,
            reader,
        };
        if options.hello {
            client.hello().await?;
        }
        Ok((client, Events { rx }))
    }

    /// The codec of this connection.
    pub fn codec(&self) -> Codec {
        self.codec
    }

    /// The signed-in user, once register/login/resume succeeded.
    pub fn user(&self) -> Option<UserId> {
        lock(&self.shared.user).clone()
    }

    /// How the connection ended, if it has.
    pub fn closed(&self) -> Option<Close> {
        lock(&self.shared.closed).clone()
    }

    /// Sends the frame `make(id)` with a fresh request id and waits for the
    /// reply carrying that id. An `error` reply becomes [`Error::Server`].
    pub async fn request(
        &self,
        make: impl FnOnce(u32) -> ClientFrame,
    ) -> Result<ServerFrame, Error> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = make(id);
        let (tx, rx) = oneshot::channel();
        match lock(&self.shared.pending).as_mut() {
            Some(pending) => {
                pending.insert(id, tx);
            }
            None => return Err(self.closed_error()),
        }
        if let Err(e) = self.send_frame(&frame).await {
            if let Some(p) = lock(&self.shared.pending).as_mut() {
                p.remove(&id);
            }
            return Err(e);
        }
        let reply = match tokio::time::timeout(self.timeout, rx).await {
            Err(_) => {
                if let Some(p) = lock(&self.shared.pending).as_mut() {
                    p.remove(&id);
                }
                return Err(Error::Timeout);
            }
            Ok(Err(_)) => return Err(self.closed_error()),
            Ok(Ok(reply)) => reply,
        };
        match reply {
            ServerFrame::Error {
                code,
                message,
                field,
                violations,
                retry_after_ms,
                ..
            } => Err(Error::Server(ServerError {
                code,
                message,
                field,
                violations,
                retry_after_ms,
            })),
            other => Ok(other),
        }
    }

    /// Sends a frame without waiting for anything (its reply, if any, is
    /// then delivered as an [`Event::Push`] unless a request awaits that id).
    pub async fn send_frame(&self, frame: &ClientFrame) -> Result<(), Error> {
        let bytes = self.codec.encode(frame)?;
        let msg = if self.codec.is_text() {
            let text = String::from_utf8(bytes)
                .map_err(|e| ProtocolError::Encode(format!("JSON is not UTF-8: {e}")))?;
            Message::text(text)
        } else {
            Message::binary(bytes)
        };
        self.send_message(msg).await
    }

    /// Sends a raw WebSocket message (for testing servers with bad input).
    pub async fn send_message(&self, msg: Message) -> Result<(), Error> {
        let mut sink = self.sink.lock().await;
        match sink.send(msg).await {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Err(self.closed_error())
            }
            Err(e) => Err(Error::Transport(Box::new(e))),
        }
    }

    /// Closes the connection with code 1000.
    pub async fn close(&self) -> Result<(), Error> {
        let mut sink = self.sink.lock().await;
        match sink.close().await {
            Ok(())
            | Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                Ok(())
            }
            Err(e) => Err(Error::Transport(Box::new(e))),
        }
    }

    fn closed_error(&self) -> Error {
        Error::Closed(self.closed().unwrap_or(Close {
            code: 1006,
            reason: "connection lost".into(),
        }))
    }

    /// `hello`: announces the protocol version (done by `connect` unless disabled).
    pub async fn hello(&self) -> Result<Welcome, Error> {
        let client = Some(self.client_name.clone());
        match self
            .request(|id| ClientFrame::Hello {
                id,
                version: PROTOCOL_VERSION,
                client,
            })
            .await?
        {
            ServerFrame::Welcome {
                version,
                server,
                time,
                ..
            } => Ok(Welcome {
                version,
                server,
                time,
            }),
            other => Err(unexpected(other)),
        }
    }

    fn session(&self, frame: ServerFrame) -> Result<SessionInfo, Error> {
        match frame {
            ServerFrame::Session {
                user,
                device,
                token,
                expires_at,
                profile,
                privacy,
                keys,
                ..
            } => {
                *lock(&self.shared.user) = Some(user.clone());
                Ok(SessionInfo {
                    user,
                    device,
                    token,
                    expires_at,
                    profile: *profile,
                    privacy,
                    keys,
                })
            }
            other => Err(unexpected(other)),
        }
    }

    /// Creates an account and signs in as a new device.
    pub async fn register(&self, r: &Registration) -> Result<SessionInfo, Error> {
        let r = r.clone();
        let reply = self
            .request(|id| ClientFrame::Register {
                id,
                username: r.username,
                email: r.email,
                phone: r.phone,
                display_name: r.display_name,
                password: r.password,
                device: r.device,
            })
            .await?;
        self.session(reply)
    }

    /// Signs in by username or email as a new device.
    pub async fn login(
        &self,
        login: &str,
        password: &str,
        device: &str,
    ) -> Result<SessionInfo, Error> {
        let reply = self
            .request(|id| ClientFrame::Login {
                id,
                login: login.to_owned(),
                password: password.to_owned(),
                device: device.to_owned(),
            })
            .await?;
        self.session(reply)
    }

    /// Resumes a session by the token a register/login handed out.
    pub async fn resume(&self, token: &str) -> Result<SessionInfo, Error> {
        let reply = self
            .request(|id| ClientFrame::Resume {
                id,
                token: token.to_owned(),
            })
            .await?;
        self.session(reply)
    }

    /// Revokes this session; the server then closes the connection (1000).
    pub async fn logout(&self) -> Result<(), Error> {
        self.ok(|id| ClientFrame::Logout { id }).await
    }

    /// Changes the password; every other session of the user is revoked.
    pub async fn change_password(&self, old: &str, new: &str) -> Result<(), Error> {
        self.ok(|id| ClientFrame::ChangePassword {
            id,
            old_password: old.to_owned(),
            new_password: new.to_owned(),
        })
        .await
    }

    /// This user's devices (each live sign-in), oldest first; `current`
    /// marks this connection's.
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>, Error> {
        match self.request(|id| ClientFrame::Devices { id }).await? {
            ServerFrame::DeviceList { devices, .. } => Ok(devices),
            other => Err(unexpected(other)),
        }
    }

    /// Renames one of this user's devices (`not_found` if it is not theirs).
    pub async fn rename_device(&self, device: &DeviceId, name: &str) -> Result<(), Error> {
        self.ok(|id| ClientFrame::RenameDevice {
            id,
            device: device.clone(),
            name: name.to_owned(),
        })
        .await
    }

    /// Signs one of this user's devices out for good: its connections close
    /// (4001), its keys and to-device queue are deleted. This connection's
    /// own device: a logout (the server then closes it, 1000).
    pub async fn revoke_device(&self, device: &DeviceId) -> Result<(), Error> {
        self.ok(|id| ClientFrame::RevokeDevice {
            id,
            device: device.clone(),
        })
        .await
    }

    /// Asks for a password-reset mail (answered `ok` whether or not the account exists).
    pub async fn reset_request(&self, email: &str) -> Result<(), Error> {
        self.ok(|id| ClientFrame::ResetRequest {
            id,
            email: email.to_owned(),
        })
        .await
    }

    /// Sets a new password with the token from the reset mail.
    pub async fn reset_confirm(&self, token: &str, new_password: &str) -> Result<(), Error> {
        self.ok(|id| ClientFrame::ResetConfirm {
            id,
            token: token.to_owned(),
            new_password: new_password.to_owned(),
        })
        .await
    }

    /// Searches the directory by prefix; the listed users' presence is then pushed.
    pub async fn search_users(
        &self,
        query: &str,
        after: Option<String>,
        limit: Option<u32>,
    ) -> Result<Users, Error> {
        match self
            .request(|id| ClientFrame::SearchUsers {
                id,
                query: query.to_owned(),
                after,
                limit,
            })
            .await?
        {
            ServerFrame::Users { users, next, .. } => Ok(Users { users, next }),
            other => Err(unexpected(other)),
        }
    }

    /// One user's contact card and presence.
    pub async fn get_profile(&self, user: &UserId) -> Result<DirectoryEntry, Error> {
        match self
            .request(|id| ClientFrame::GetProfile {
                id,
                user: user.clone(),
            })
            .await?
        {
            ServerFrame::Profile { entry, .. } => Ok(*entry),
            other => Err(unexpected(other)),
        }
    }

    /// Changes the caller's profile; `None` fields stay as they are.
    pub async fn update_profile(
        &self,
        display_name: Option<String>,
        about: Option<String>,
        avatar: Option<String>,
    ) -> Result<DirectoryEntry, Error> {
        match self
            .request(|id| ClientFrame::UpdateProfile {
                id,
                display_name,
                about,
                avatar,
            })
            .await?
        {
            ServerFrame::Profile { entry, .. } => Ok(*entry),
            other => Err(unexpected(other)),
        }
    }

    /// Sends `content` to `to` (a `&UserId` or a `&ConversationId`) under
    /// `client_id`, once. Resending with the same `client_id` (on this or a
    /// later connection) never stores twice: the reply then has
    /// `duplicate: true` and the first send's seq.
    pub async fn send(
        &self,
        to: impl Into<Target>,
        client_id: &str,
        content: Content,
    ) -> Result<Sent, Error> {
        self.send_related(to, client_id, None, Vec::new(), content)
            .await
    }

    /// Sends `content` pointing at another message of the conversation
    /// (`rel`: a reply, an edit, a reaction or a deletion) and mentioning
    /// `mentions`; see PROTOCOL.md, *Message life*. A message that points
    /// at another or mentions members names its conversation.
    pub async fn send_related(
        &self,
        to: impl Into<Target>,
        client_id: &str,
        rel: Option<Rel>,
        mentions: Vec<UserId>,
        content: Content,
    ) -> Result<Sent, Error> {
        self.send_envelope(to, client_id, rel, mentions, Vec::new(), content)
            .await
    }

    /// Sends a message carrying the uploaded files `media`
    /// ([`media::MediaClient::upload`]): `content` is an `image`, `file` or
    /// `voice` naming one of them, or (in an encrypted conversation) the
    /// ciphertext of one. The server checks that each file exists.
    pub async fn send_media(
        &self,
        to: impl Into<Target>,
        client_id: &str,
        media: Vec<MediaId>,
        content: Content,
    ) -> Result<Sent, Error> {
        self.send_envelope(to, client_id, None, Vec::new(), media, content)
            .await
    }

    /// Sends `content` with the whole envelope.
    async fn send_envelope(
        &self,
        to: impl Into<Target>,
        client_id: &str,
        rel: Option<Rel>,
        mentions: Vec<UserId>,
        media: Vec<MediaId>,
        content: Content,
    ) -> Result<Sent, Error> {
        let (conv, to) = match to.into() {
            Target::Conversation(c) => (Some(c), None),
            Target::User(u) => (None, Some(u)),
        };
        match self
            .request(|id| ClientFrame::Send {
                id,
                conv,
                to,
                client_id: client_id.to_owned(),
                rel,
                mentions,
                media,
                content,
            })
            .await?
        {
            ServerFrame::Sent {
                message_id,
                conv,
                seq,
                ts,
                duplicate,
                expires_at,
                ..
            } => Ok(Sent {
                message_id,
                conv,
                seq,
                ts,
                duplicate,
                expires_at,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Reacts to `target` with `emoji` (one emoji) under `client_id`: a
    /// retry with the same id is the same reaction. Undo it with
    /// [`Client::delete_message`] on the reaction's id.
    pub async fn react(
        &self,
        conv: &ConversationId,
        target: &MessageId,
        client_id: &str,
        emoji: &str,
    ) -> Result<Sent, Error> {
        self.send_text_about(conv, RelKind::Reaction, target, client_id, emoji)
            .await
    }

    /// Replaces the text of one's own message `target` (within the edit
    /// window) under `client_id`.
    pub async fn edit_text(
        &self,
        conv: &ConversationId,
        target: &MessageId,
        client_id: &str,
        text: &str,
    ) -> Result<Sent, Error> {
        self.send_text_about(conv, RelKind::Edit, target, client_id, text)
            .await
    }

    /// Sends plain `text` that relates to `target` as `kind`.
    async fn send_text_about(
        &self,
        conv: &ConversationId,
        kind: RelKind,
        target: &MessageId,
        client_id: &str,
        text: &str,
    ) -> Result<Sent, Error> {
        let rel = Rel::new(kind, target.clone());
        let content = Content::Text {
            text: text.to_owned(),
        };
        self.send_related(conv, client_id, Some(rel), Vec::new(), content)
            .await
    }

    /// Deletes `target` for everyone (one's own message or reaction; in a
    /// group, admins delete any message) under `client_id`: its content,
    /// and that of its edits and reactions, is removed from the server.
    pub async fn delete_message(
        &self,
        conv: &ConversationId,
        target: &MessageId,
        client_id: &str,
    ) -> Result<Sent, Error> {
        let rel = Rel::new(RelKind::Delete, target.clone());
        self.send_related(conv, client_id, Some(rel), Vec::new(), Content::Deleted {})
            .await
    }

    /// Sets the disappearing-message timer of `conv` (one of
    /// [`chatcore::model::DISAPPEARING_TIMERS`], or `None`: off); returns
    /// the seq of its notice (0 when it was set so already).
    pub async fn set_timer(
        &self,
        conv: &ConversationId,
        expire_after: Option<Millis>,
    ) -> Result<u64, Error> {
        match self
            .request(|id| ClientFrame::SetTimer {
                id,
                conv: conv.clone(),
                expire_after,
            })
            .await?
        {
            ServerFrame::Changed { seq, .. } => Ok(seq),
            other => Err(unexpected(other)),
        }
    }

    /// Sends under `client_id`, retrying up to `attempts` times with the same
    /// `client_id` when the reply times out, the store is `unavailable`, or
    /// the request is `rate_limited` (after the wait the server asks for).
    pub async fn send_with_retry(
        &self,
        to: impl Into<Target>,
        client_id: &str,
        content: Content,
        attempts: u32,
    ) -> Result<Sent, Error> {
        self.send_related_with_retry(to, client_id, None, Vec::new(), content, attempts)
            .await
    }

    /// [`Client::send_related`], retrying as [`Client::send_with_retry`] does.
    pub async fn send_related_with_retry(
        &self,
        to: impl Into<Target>,
        client_id: &str,
        rel: Option<Rel>,
        mentions: Vec<UserId>,
        content: Content,
        attempts: u32,
    ) -> Result<Sent, Error> {
        self.send_envelope_with_retry(to, client_id, rel, mentions, Vec::new(), content, attempts)
            .await
    }

    /// Sends the whole envelope, retrying as [`Client::send_with_retry`] does.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send_envelope_with_retry(
        &self,
        to: impl Into<Target>,
        client_id: &str,
        rel: Option<Rel>,
        mentions: Vec<UserId>,
        media: Vec<MediaId>,
        content: Content,
        attempts: u32,
    ) -> Result<Sent, Error> {
        let to = to.into();
        let mut attempt = 1;
        loop {
            let sent = self.send_envelope(
                &to,
                client_id,
                rel.clone(),
                mentions.clone(),
                media.clone(),
                content.clone(),
            );
            let err = match sent.await {
                Ok(sent) => return Ok(sent),
                Err(e) => e,
            };
            let wait = match &err {
                Error::Timeout => Duration::ZERO,
                Error::Server(e) if e.code == ErrorCode::Unavailable => {
                    Duration::from_millis(200 * u64::from(attempt))
                }
                Error::Server(e) if e.code == ErrorCode::RateLimited => {
                    Duration::from_millis(e.retry_after_ms.unwrap_or(1000).min(30_000))
                }
                _ => return Err(err),
            };
            if attempt >= attempts {
                return Err(err);
            }
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends a text message with a fresh client id, retrying (3 attempts) as
    /// [`Client::send_with_retry`] does.
    pub async fn send_text(&self, to: impl Into<Target>, text: &str) -> Result<Sent, Error> {
        let client_id = uuid::Uuid::new_v4().to_string();
        let content = Content::Text {
            text: text.to_owned(),
        };
        self.send_with_retry(to, &client_id, content, 3).await
    }

    /// A page of `conv`'s history before `before` (newest page if `None`), oldest first.
    pub async fn history(
        &self,
        conv: &ConversationId,
        before: Option<u64>,
        limit: Option<u32>,
    ) -> Result<Page, Error> {
        match self
            .request(|id| ClientFrame::History {
                id,
                conv: conv.clone(),
                before,
                limit,
            })
            .await?
        {
            ServerFrame::Messages {
                messages,
                more,
                related,
                ..
            } => Ok(Page {
                messages,
                more,
                related,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Everything this device has not acknowledged.
    pub async fn sync(&self, limit: Option<u32>) -> Result<Page, Error> {
        match self.request(|id| ClientFrame::Sync { id, limit }).await? {
            ServerFrame::Synced { messages, more, .. } => Ok(Page {
                messages,
                more,
                related: Vec::new(),
            }),
            other => Err(unexpected(other)),
        }
    }

    /// Acknowledges `conv` up to `seq` for this device: sync resumes after it.
    pub async fn ack(&self, conv: &ConversationId, seq: u64) -> Result<(), Error> {
        self.ok(|id| ClientFrame::Ack {
            id,
            conv: conv.clone(),
            seq,
        })
        .await
    }

    /// Marks `conv` read up to `seq`.
    pub async fn read(&self, conv: &ConversationId, seq: u64) -> Result<(), Error> {
        self.ok(|id| ClientFrame::Read {
            id,
            conv: conv.clone(),
            seq,
        })
        .await
    }

    /// How far the other members of `conv` received and read it: the
    /// receipts that rose after `since` (the `until` of a previous answer;
    /// `None`: all of them). Live changes come as `receipt` pushes; ask
    /// again with the answer's `until` after a reconnect.
    pub async fn receipts(
        &self,
        conv: &ConversationId,
        since: Option<Millis>,
    ) -> Result<Receipts, Error> {
        match self
            .request(|id| ClientFrame::Receipts {
                id,
                conv: conv.clone(),
                since,
            })
            .await?
        {
            ServerFrame::Receipts {
                receipts, until, ..
            } => Ok(Receipts { receipts, until }),
            other => Err(unexpected(other)),
        }
    }

    /// Tells the other members of `conv` who are connected that this user
    /// writes there (`true`; again about every half of the pushes' `ttl_ms`
    /// while writing) or stopped (`false`). They get a `typing` push; nothing
    /// is stored.
    pub async fn typing(&self, conv: &ConversationId, typing: bool) -> Result<(), Error> {
        self.ok(|id| ClientFrame::Typing {
            id,
            conv: conv.clone(),
            typing,
        })
        .await
    }

    /// Says which conversation is on screen (no `alert` for it), or none.
    pub async fn focus(&self, conv: Option<&ConversationId>) -> Result<(), Error> {
        self.ok(|id| ClientFrame::Focus {
            id,
            conv: conv.cloned(),
        })
        .await
    }

    /// The first page (up to 50) of the caller's conversations with unread
    /// counts, newest activity first.
    pub async fn conversations(&self) -> Result<Vec<ConversationSummary>, Error> {
        Ok(self.conversations_page(None, None).await?.conversations)
    }

    /// A page of the caller's conversations after the cursor `after` (the
    /// `next` of the previous page).
    pub async fn conversations_page(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ConversationPage, Error> {
        self.list_page(None, after, limit).await
    }

    /// A page of what waits for the caller's answer: message requests (a
    /// first message from someone who is not a contact) and group
    /// invitations, each with its `request`. Answer with [`Client::accept`]
    /// or [`Client::decline`].
    pub async fn requests_page(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ConversationPage, Error> {
        self.list_page(Some(ConversationList::Requests), after, limit)
            .await
    }

    /// Accepts a message request (it joins the main list, and the caller
    /// may write) or a group invitation (the caller joins). The
    /// conversation now.
    pub async fn accept(&self, conv: &ConversationId) -> Result<ConversationInfo, Error> {
        let conv = conv.clone();
        match self.request(|id| ClientFrame::Accept { id, conv }).await? {
            ServerFrame::Conversation { conversation, .. } => Ok(*conversation),
            other => Err(unexpected(other)),
        }
    }

    /// Declines a group invitation, or deletes a message request (what it
    /// holds so far; a later message from the sender makes a new one).
    pub async fn decline(&self, conv: &ConversationId) -> Result<(), Error> {
        let conv = conv.clone();
        self.ok(|id| ClientFrame::Decline { id, conv }).await
    }

    /// Reports `user` to the operator, about `conv` if given, in the
    /// reporter's words (up to 500 characters).
    pub async fn report(
        &self,
        user: &UserId,
        conv: Option<&ConversationId>,
        reason: Option<&str>,
    ) -> Result<(), Error> {
        let (user, conv, reason) = (user.clone(), conv.cloned(), reason.map(str::to_owned));
        self.ok(|id| ClientFrame::Report {
            id,
            user,
            conv,
            reason,
        })
        .await
    }

    /// Uploads this device's end-to-end encryption keys, and the user's
    /// master key and its signatures of devices (see [`e2e::KeyUpload`]
    /// and `chatcore::e2e` for what each signature covers). What the device
    /// has left on the server: one-time keys, and whether its fallback key
    /// is unused.
    pub async fn upload_keys(&self, upload: e2e::KeyUpload) -> Result<(u32, bool), Error> {
        match self
            .request(|id| ClientFrame::UploadKeys {
                id,
                device_keys: upload.device_keys,
                one_time_keys: upload.one_time_keys,
                fallback_key: upload.fallback_key,
                master_key: upload.master_key,
                signatures: upload.signatures,
            })
            .await?
        {
            ServerFrame::KeyCounts {
                one_time,
                fallback_unused,
                ..
            } => Ok((one_time, fallback_unused)),
            other => Err(unexpected(other)),
        }
    }

    /// The identity keys of the devices of `users` this user may reach
    /// (through `conv`, a conversation both are members of, whatever their
    /// settings); the others are left out.
    pub async fn query_keys(
        &self,
        users: &[UserId],
        conv: Option<&ConversationId>,
    ) -> Result<Vec<DeviceKeysInfo>, Error> {
        Ok(self.query_keys_full(users, conv).await?.0)
    }

    /// As [`Client::query_keys`], with the master keys of the users asked
    /// for that have one (what [`e2e::Machine::receive_device_keys`] needs).
    pub async fn query_keys_full(
        &self,
        users: &[UserId],
        conv: Option<&ConversationId>,
    ) -> Result<(Vec<DeviceKeysInfo>, Vec<UserMasterKey>), Error> {
        let (users, conv) = (users.to_vec(), conv.cloned());
        match self
            .request(|id| ClientFrame::QueryKeys { id, users, conv })
            .await?
        {
            ServerFrame::DeviceKeys {
                devices,
                master_keys,
                ..
            } => Ok((devices, master_keys)),
            other => Err(unexpected(other)),
        }
    }

    /// One one-time key (or the fallback key) of each device named that
    /// this user may reach, to start an encrypted channel with it.
    pub async fn claim_keys(
        &self,
        devices: &[DeviceRef],
        conv: Option<&ConversationId>,
    ) -> Result<Vec<ClaimedKey>, Error> {
        let (devices, conv) = (devices.to_vec(), conv.cloned());
        match self
            .request(|id| ClientFrame::ClaimKeys { id, devices, conv })
            .await?
        {
            ServerFrame::ClaimedKeys { keys, .. } => Ok(keys),
            other => Err(unexpected(other)),
        }
    }

    /// Queues opaque payloads of `kind` for devices (a device named in each
    /// message, or every device with keys of its user): of users this
    /// user may reach, or with `conv`, of that conversation's members.
    /// How many were queued (or had been, for a retry with the same ids),
    /// and the targets that got nothing, with why.
    pub async fn send_to_device(
        &self,
        kind: &str,
        messages: Vec<OutgoingToDevice>,
        conv: Option<&ConversationId>,
    ) -> Result<(u32, Vec<Undelivered>), Error> {
        let (kind, conv) = (kind.to_owned(), conv.cloned());
        match self
            .request(|id| ClientFrame::SendToDevice {
                id,
                kind,
                messages,
                conv,
            })
            .await?
        {
            ServerFrame::ToDeviceSent {
                queued,
                undelivered,
                ..
            } => Ok((queued, undelivered)),
            other => Err(unexpected(other)),
        }
    }

    /// Tells the server this device processed these to-device payloads
    /// (from `to_device` pushes): they are deleted and not delivered again.
    pub async fn ack_to_device(&self, messages: &[ToDeviceAck]) -> Result<(), Error> {
        let messages = messages.to_vec();
        self.ok(|id| ClientFrame::AckToDevice { id, messages })
            .await
    }

    /// Turns end-to-end encryption on for a conversation, for good; the
    /// seq of its notice (0 if it was on already).
    pub async fn encrypt(&self, conv: &ConversationId) -> Result<u64, Error> {
        self.changed(|id| ClientFrame::Encrypt {
            id,
            conv: conv.clone(),
        })
        .await
    }

    /// Makes a new key backup this user's current one (see PROTOCOL.md
    /// "Key backup"); the previous one and its keys are deleted.
    pub async fn create_backup(
        &self,
        algorithm: &str,
        auth_data: &str,
    ) -> Result<BackupInfo, Error> {
        let (algorithm, auth_data) = (algorithm.to_owned(), auth_data.to_owned());
        self.backup(|id| ClientFrame::CreateBackup {
            id,
            algorithm,
            auth_data,
        })
        .await
    }

    /// This user's current key backup, or `None` when there is none.
    pub async fn get_backup(&self) -> Result<Option<BackupInfo>, Error> {
        match self.backup(|id| ClientFrame::GetBackup { id }).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.code() == Some(ErrorCode::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Replaces the current backup's `auth_data` (`not_found` when
    /// `version` is no longer the current backup).
    pub async fn update_backup(&self, version: &str, auth_data: &str) -> Result<BackupInfo, Error> {
        let (version, auth_data) = (version.to_owned(), auth_data.to_owned());
        self.backup(|id| ClientFrame::UpdateBackup {
            id,
            version,
            auth_data,
        })
        .await
    }

    /// Deletes the current backup and its keys.
    pub async fn delete_backup(&self, version: &str) -> Result<(), Error> {
        let version = version.to_owned();
        match self
            .request(|id| ClientFrame::DeleteBackup { id, version })
            .await?
        {
            ServerFrame::Ok { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Adds keys (at most 1,000) to the current backup: the backup's
    /// count and etag after. `not_found` when another device made a new
    /// backup since; `limit_reached` when it is full (nothing stored).
    pub async fn put_backup_keys(
        &self,
        version: &str,
        keys: &[BackupKeyInfo],
    ) -> Result<BackupInfo, Error> {
        let (version, keys) = (version.to_owned(), keys.to_vec());
        self.backup(|id| ClientFrame::PutBackupKeys { id, version, keys })
            .await
    }

    /// A page of the current backup's keys, ordered by conversation and
    /// session, after `after` when given; and whether more follow.
    pub async fn get_backup_keys(
        &self,
        version: &str,
        after: Option<&BackupKeyRef>,
        limit: Option<u32>,
    ) -> Result<(Vec<BackupKeyInfo>, bool), Error> {
        let (version, after) = (version.to_owned(), after.cloned());
        match self
            .request(|id| ClientFrame::GetBackupKeys {
                id,
                version,
                after,
                limit,
            })
            .await?
        {
            ServerFrame::BackupKeys { keys, more, .. } => Ok((keys, more)),
            other => Err(unexpected(other)),
        }
    }

    async fn backup(&self, make: impl FnOnce(u32) -> ClientFrame) -> Result<BackupInfo, Error> {
        match self.request(make).await? {
            ServerFrame::Backup { backup, .. } => Ok(backup),
            other => Err(unexpected(other)),
        }
    }

    async fn list_page(
        &self,
        list: Option<ConversationList>,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ConversationPage, Error> {
        let after = after.map(str::to_owned);
        match self
            .request(|id| ClientFrame::Conversations {
                id,
                list,
                after,
                limit,
            })
            .await?
        {
            ServerFrame::Conversations {
                conversations,
                next,
                ..
            } => Ok(ConversationPage {
                conversations,
                next,
            }),
            other => Err(unexpected(other)),
        }
    }

    /// The direct conversation with `user`, opened if need be.
    pub async fn open_direct(&self, user: &UserId) -> Result<ConversationInfo, Error> {
        self.conversation_reply(|id| ClientFrame::OpenDirect {
            id,
            user: user.clone(),
            encrypted: false,
        })
        .await
    }

    /// The direct conversation with `user`, opened if need be, with
    /// end-to-end encryption turned on if it was not.
    pub async fn open_encrypted_direct(&self, user: &UserId) -> Result<ConversationInfo, Error> {
        self.conversation_reply(|id| ClientFrame::OpenDirect {
            id,
            user: user.clone(),
            encrypted: true,
        })
        .await
    }

    /// Creates a group owned by the caller with `members` besides it.
    pub async fn create_group(
        &self,
        title: &str,
        description: Option<&str>,
        members: &[UserId],
    ) -> Result<ConversationInfo, Error> {
        self.conversation_reply(|id| ClientFrame::CreateGroup {
            id,
            title: title.to_owned(),
            description: description.map(str::to_owned),
            avatar: None,
            members: members.to_vec(),
            encrypted: false,
        })
        .await
    }

    /// Creates a group owned by the caller with `members` besides it,
    /// end-to-end encrypted from the start.
    pub async fn create_encrypted_group(
        &self,
        title: &str,
        description: Option<&str>,
        members: &[UserId],
    ) -> Result<ConversationInfo, Error> {
        self.conversation_reply(|id| ClientFrame::CreateGroup {
            id,
            title: title.to_owned(),
            description: description.map(str::to_owned),
            avatar: None,
            members: members.to_vec(),
            encrypted: true,
        })
        .await
    }

    /// A conversation with its current members.
    pub async fn get_conversation(&self, conv: &ConversationId) -> Result<ConversationInfo, Error> {
        self.conversation_reply(|id| ClientFrame::GetConversation {
            id,
            conv: conv.clone(),
        })
        .await
    }

    /// Changes a group's settings (admins); returns the notice's seq.
    pub async fn update_group(
        &self,
        conv: &ConversationId,
        update: GroupUpdate,
    ) -> Result<u64, Error> {
        self.changed(|id| ClientFrame::UpdateGroup {
            id,
            conv: conv.clone(),
            title: update.title,
            description: update.description,
            avatar: update.avatar,
            history_visible: update.history_visible,
        })
        .await
    }

    /// Adds users to a group (admins); returns the notice's seq (0 if
    /// every user was invited instead). See [`Client::add_or_invite`] for
    /// who was invited.
    pub async fn add_members(&self, conv: &ConversationId, users: &[UserId]) -> Result<u64, Error> {
        Ok(self.add_or_invite(conv, users).await?.0)
    }

    /// Adds users to a group (admins): the notice's seq (0 if none was
    /// added at once), and the users invited instead of added (their
    /// settings admit only their contacts' adds).
    pub async fn add_or_invite(
        &self,
        conv: &ConversationId,
        users: &[UserId],
    ) -> Result<(u64, Vec<UserId>), Error> {
        let (conv, users) = (conv.clone(), users.to_vec());
        match self
            .request(|id| ClientFrame::AddMembers { id, conv, users })
            .await?
        {
            ServerFrame::Changed { seq, invited, .. } => Ok((seq, invited)),
            other => Err(unexpected(other)),
        }
    }

    /// Removes a member from a group (admins); returns the notice's seq.
    pub async fn remove_member(&self, conv: &ConversationId, user: &UserId) -> Result<u64, Error> {
        self.changed(|id| ClientFrame::RemoveMember {
            id,
            conv: conv.clone(),
            user: user.clone(),
        })
        .await
    }

    /// Leaves a group; returns the notice's seq.
    pub async fn leave(&self, conv: &ConversationId) -> Result<u64, Error> {
        self.changed(|id| ClientFrame::Leave {
            id,
            conv: conv.clone(),
        })
        .await
    }

    /// Gives a member a role (the owner; `Role::Owner` hands ownership over);
    /// returns the notice's seq.
    pub async fn set_role(
        &self,
        conv: &ConversationId,
        user: &UserId,
        role: Role,
    ) -> Result<u64, Error> {
        self.changed(|id| ClientFrame::SetRole {
            id,
            conv: conv.clone(),
            user: user.clone(),
            role,
        })
        .await
    }

    /// Creates the group's invite token (admins), replacing any earlier one.
    pub async fn create_invite(&self, conv: &ConversationId) -> Result<String, Error> {
        match self
            .request(|id| ClientFrame::CreateInvite {
                id,
                conv: conv.clone(),
            })
            .await?
        {
            ServerFrame::Invite { token, .. } => Ok(token),
            other => Err(unexpected(other)),
        }
    }

    /// Revokes the group's invite token (admins).
    pub async fn revoke_invite(&self, conv: &ConversationId) -> Result<(), Error> {
        self.ok(|id| ClientFrame::RevokeInvite {
            id,
            conv: conv.clone(),
        })
        .await
    }

    /// Joins a group by an invite token.
    pub async fn join(&self, token: &str) -> Result<ConversationInfo, Error> {
        self.conversation_reply(|id| ClientFrame::Join {
            id,
            token: token.to_owned(),
        })
        .await
    }

    /// No alerts for `conv` until `until`, or until unmuted if `None`.
    pub async fn mute(&self, conv: &ConversationId, until: Option<Millis>) -> Result<(), Error> {
        self.ok(|id| ClientFrame::Mute {
            id,
            conv: conv.clone(),
            until,
        })
        .await
    }

    /// Alerts for `conv` again.
    pub async fn unmute(&self, conv: &ConversationId) -> Result<(), Error> {
        self.ok(|id| ClientFrame::Unmute {
            id,
            conv: conv.clone(),
        })
        .await
    }

    /// Changes the contact link with `user` (ask, accept, decline,
    /// cancel, remove); the caller's view afterwards.
    pub async fn contact(
        &self,
        user: &UserId,
        action: ContactAction,
    ) -> Result<ContactInfo, Error> {
        self.contact_reply(|id| ClientFrame::Contact {
            id,
            user: user.clone(),
            action,
        })
        .await
    }

    /// Blocks `user`.
    pub async fn block(&self, user: &UserId) -> Result<ContactInfo, Error> {
        self.contact_reply(|id| ClientFrame::Block {
            id,
            user: user.clone(),
        })
        .await
    }

    /// Stops blocking `user`.
    pub async fn unblock(&self, user: &UserId) -> Result<ContactInfo, Error> {
        self.contact_reply(|id| ClientFrame::Unblock {
            id,
            user: user.clone(),
        })
        .await
    }

    /// A page of contacts, requests in or out, or blocked users.
    pub async fn contacts(
        &self,
        list: ContactList,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<ContactPage, Error> {
        let after = after.map(str::to_owned);
        match self
            .request(|id| ClientFrame::Contacts {
                id,
                list,
                after,
                limit,
            })
            .await?
        {
            ServerFrame::Contacts { contacts, next, .. } => Ok(ContactPage { contacts, next }),
            other => Err(unexpected(other)),
        }
    }

    /// Changes the privacy settings: who may start a direct conversation,
    /// add the user to groups (others invite), see its presence; `None`
    /// fields stay. The settings now.
    pub async fn set_privacy(
        &self,
        direct: Option<Audience>,
        groups: Option<Audience>,
        presence: Option<Audience>,
    ) -> Result<Privacy, Error> {
        match self
            .request(|id| ClientFrame::SetPrivacy {
                id,
                direct,
                groups,
                presence,
                read_receipts: None,
            })
            .await?
        {
            ServerFrame::Privacy { privacy, .. } => Ok(privacy),
            other => Err(unexpected(other)),
        }
    }

    /// Turns read receipts on or off: whether the user's fellow members see
    /// how far it read (delivery shows either way). Reciprocal: while off,
    /// the user sees nobody's read marks. The settings now.
    pub async fn set_read_receipts(&self, on: bool) -> Result<Privacy, Error> {
        match self
            .request(|id| ClientFrame::SetPrivacy {
                id,
                direct: None,
                groups: None,
                presence: None,
                read_receipts: Some(on),
            })
            .await?
        {
            ServerFrame::Privacy { privacy, .. } => Ok(privacy),
            other => Err(unexpected(other)),
        }
    }

    async fn contact_reply(
        &self,
        make: impl FnOnce(u32) -> ClientFrame,
    ) -> Result<ContactInfo, Error> {
        match self.request(make).await? {
            ServerFrame::Contact { contact, .. } => Ok(*contact),
            other => Err(unexpected(other)),
        }
    }

    async fn conversation_reply(
        &self,
        make: impl FnOnce(u32) -> ClientFrame,
    ) -> Result<ConversationInfo, Error> {
        match self.request(make).await? {
            ServerFrame::Conversation { conversation, .. } => Ok(*conversation),
            other => Err(unexpected(other)),
        }
    }

    async fn changed(&self, make: impl FnOnce(u32) -> ClientFrame) -> Result<u64, Error> {
        match self.request(make).await? {
            ServerFrame::Changed { seq, .. } => Ok(seq),
            other => Err(unexpected(other)),
        }
    }

    /// Calls the other member of direct conversation `conv` (see
    /// PROTOCOL.md "Calls"): `call` is a fresh random id, `signal` the SDP
    /// offer (plain, or sealed for the callee's devices). The call as it
    /// stands: `ringing`, or `ended` with `busy`. Its signals and changes
    /// arrive as `call_signal` and `call_state` pushes.
    pub async fn call_invite(
        &self,
        call: &str,
        conv: &ConversationId,
        media: CallMedia,
        signal: CallSignal,
    ) -> Result<CallInfo, Error> {
        let (call, conv) = (call.to_owned(), conv.clone());
        self.call_state(|id| ClientFrame::CallInvite {
            id,
            call,
            conv,
            media,
            signal,
        })
        .await
    }

    /// Tells the caller that this device (of the callee) rings.
    pub async fn call_ringing(&self, call: &str) -> Result<(), Error> {
        let call = call.to_owned();
        self.ok(|id| ClientFrame::CallRinging { id, call }).await
    }

    /// Takes call `call` on this device with the SDP answer (`not_found`
    /// when another device answered first, or the call is over).
    pub async fn call_answer(&self, call: &str, signal: CallSignal) -> Result<CallInfo, Error> {
        let call = call.to_owned();
        self.call_state(|id| ClientFrame::CallAnswer { id, call, signal })
            .await
    }

    /// Sends ICE candidates to the other side of call `call`.
    pub async fn call_candidates(&self, call: &str, signal: CallSignal) -> Result<(), Error> {
        let call = call.to_owned();
        self.ok(|id| ClientFrame::CallCandidates { id, call, signal })
            .await
    }

    /// Ends call `call` (hangs up, cancels, or declines it).
    pub async fn call_hangup(&self, call: &str, reason: HangupReason) -> Result<CallInfo, Error> {
        let call = call.to_owned();
        self.call_state(|id| ClientFrame::CallHangup { id, call, reason })
            .await
    }

    async fn call_state(&self, make: impl FnOnce(u32) -> ClientFrame) -> Result<CallInfo, Error> {
        match self.request(make).await? {
            ServerFrame::CallState { call, .. } => Ok(*call),
            other => Err(unexpected(other)),
        }
    }

    /// The STUN and TURN servers a call may use, with TURN credentials
    /// made for this user, and when those expire (see PROTOCOL.md
    /// "Calls"). Ask again before each call.
    pub async fn ice_servers(&self) -> Result<(Vec<IceServer>, Option<Millis>), Error> {
        match self.request(|id| ClientFrame::IceServers { id }).await? {
            ServerFrame::IceServers {
                servers,
                expires_at,
                ..
            } => Ok((servers, expires_at)),
            other => Err(unexpected(other)),
        }
    }

    /// Application-level ping.
    pub async fn ping(&self) -> Result<(), Error> {
        match self.request(|id| ClientFrame::Ping { id }).await? {
            ServerFrame::Pong { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    async fn ok(&self, make: impl FnOnce(u32) -> ClientFrame) -> Result<(), Error> {
        match self.request(make).await? {
            ServerFrame::Ok { .. } => Ok(()),
            other => Err(unexpected(other)),
        }
    }
}

fn unexpected(frame: ServerFrame) -> Error {
    Error::Unexpected(Box::new(frame))
}

/// Reads until the connection ends: replies go to their waiting request,
/// everything else to the events.
async fn read_loop(
    mut stream: SplitStream<Ws>,
    codec: Codec,
    shared: Arc<Shared>,
    events: mpsc::Sender<Event>,
) {
    let mut close: Option<Close> = None;
    while let Some(item) = stream.next().await {
        let bytes = match item {
            Ok(Message::Binary(b)) if !codec.is_text() => b,
            Ok(Message::Text(t)) if codec.is_text() => t.into(),
            Ok(Message::Close(frame)) => {
                close = Some(frame.map_or(
                    Close {
                        code: 1005,
                        reason: String::new(),
                    },
                    |f| Close {
                        code: f.code.into(),
                        reason: f.reason.to_string(),
                    },
                ));
                continue;
            }
            Ok(Message::Binary(_) | Message::Text(_)) => {
                tracing::warn!("message of the wrong type for the codec ignored");
                continue;
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(error = %e, "connection ended");
                break;
            }
        };
        let frame: ServerFrame = match codec.decode(&bytes) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable server frame ignored");
                continue;
            }
        };
        let waiter = frame
            .id()
            .and_then(|id| lock(&shared.pending).as_mut().and_then(|p| p.remove(&id)));
        match waiter {
            Some(tx) => {
                let _ = tx.send(frame);
            }
            None => {
                // A dropped `Events` means the application ignores pushes.
                let _ = events.send(Event::Push(frame)).await;
            }
        }
    }
    let close = close.unwrap_or(Close {
        code: 1006,
        reason: "connection lost".into(),
    });
    *lock(&shared.closed) = Some(close.clone());
    // Dropping the senders fails every waiting request with `Closed`.
    lock(&shared.pending).take();
    let _ = events.send(Event::Closed(close)).await;
}
