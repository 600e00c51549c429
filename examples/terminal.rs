//! Run with: cargo run -p chatcore-examples --example terminal -- [ws://127.0.0.1:8080/ws]
//!
//! A line-oriented chat client for a running chatd (`cargo run -p chatd`),
//! built on `chatcore-client`. Type `/help` for the commands: sign up or in,
//! list users with their presence, open a chat to see its history and live
//! messages, and type lines to send them.
//!
//! End-to-end encryption is per conversation and opt-in: `/e2e` turns it on
//! for the open chat, for good, and from then on its lines go through
//! `chatcore_client::secure` (only the devices of the two users can read
//! them). Not by default, because the server only takes ciphertext in a
//! conversation once it is marked encrypted, and the web client and other
//! plain clients of the same chat could no longer read it: the user
//! decides, as in Telegram's secret chats. Every sign-in is a new device
//! whose keys are published at once, so others can start encrypted chats
//! with it; its state lives in memory (a login is a new device each run; a
//! real app would resume its session and keep the state in a
//! `secure::FileStore` under a key from the platform's key store).

use chatcore_client::chatcore::model::{Content, ConversationId, UserId};
use chatcore_client::chatcore::protocol::ServerFrame;
use chatcore_client::secure::{
    Body, MemoryStore, SecureClient, SecureError, SecureEvent, SecureEvents, SecureMessage,
    SecureOptions,
};
use chatcore_client::{
    Client, Close, ConnectOptions, ErrorCode, Event, Events, Registration, SessionInfo,
};
use chatcore_examples::terminal_safe as safe;
use std::collections::HashMap;
use tokio::sync::mpsc;

const HELP: &str = "\
commands:
  /signup <username> <email> <phone> <display name>   create an account (password asked next)
  /login <username or email>                          sign in (password asked next)
  /users [prefix]                                     list users and who is online
  /chat <username>                                    open a chat: history, then live messages
  /e2e                                                encrypt the open chat end to end, for good
  /safety                                             the safety number with the open chat's user
  /close                                              leave the open chat
  /chats                                              your conversations and unread counts
  /logout                                             sign out
  /quit                                               leave
  any other line                                      is sent to the open chat
(passwords are echoed: this is an example, not a hardened client)";

/// A command waiting for the password line.
enum Pending {
    Signup(Registration),
    Login(String),
}

struct App {
    /// The connection until sign-in; then `secure` owns it.
    plain: Option<Client>,
    secure: Option<SecureClient>,
    me: Option<UserId>,
    /// Usernames by id, learnt from listings and profiles.
    names: HashMap<UserId, String>,
    open: Option<Open>,
    pending: Option<Pending>,
}

/// The open chat.
struct Open {
    peer: UserId,
    conv: ConversationId,
    /// Whether it is end-to-end encrypted: lines go through `secure`.
    encrypted: bool,
}

type AppResult = Result<(), Box<dyn std::error::Error>>;

/// The pushes: plain until sign-in, then through the secure client.
enum Feed {
    Plain(Events),
    Secure(SecureEvents),
}

/// A push, as the app shows it.
enum Incoming {
    Message(SecureMessage),
    /// A message that waited for its key and now reads.
    Decrypted(SecureMessage),
    Push(ServerFrame),
    Closed(Close),
    Other,
}

impl Feed {
    async fn recv(&mut self) -> Option<Incoming> {
        Some(match self {
            Feed::Plain(events) => match events.recv().await? {
                Event::Push(ServerFrame::Message { message }) => Incoming::Message(SecureMessage {
                    message: (*message).clone(),
                    body: Body::Clear,
                }),
                Event::Push(frame) => Incoming::Push(frame),
                Event::Closed(close) => Incoming::Closed(close),
            },
            Feed::Secure(events) => match events.recv().await? {
                SecureEvent::Message(m) => Incoming::Message(m),
                SecureEvent::Decrypted(m) => Incoming::Decrypted(m),
                SecureEvent::Push(frame) => Incoming::Push(frame),
                SecureEvent::Closed(close) => Incoming::Closed(close),
                _ => Incoming::Other,
            },
        })
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".to_owned());
    let (client, events) = match Client::connect(&url, ConnectOptions::new()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "cannot connect to {url}: {}\n(is chatd running? `cargo run -p chatd`)",
                safe(&e.to_string())
            );
            std::process::exit(1);
        }
    };
    println!("connected to {url}. {HELP}");
    let mut lines = stdin_lines();
    let mut feed = Feed::Plain(events);
    let mut app = App {
        plain: Some(client),
        secure: None,
        me: None,
        names: HashMap::new(),
        open: None,
        pending: None,
    };
    loop {
        let mut signed_in = None;
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => {
                    if app.pending.is_none() && line.trim() == "/quit" {
                        let _ = app.client().close().await;
                        break;
                    }
                    match app.command(line.trim()).await {
                        Ok(session) => signed_in = session,
                        Err(e) => println!("! {}", safe(&e.to_string())),
                    }
                }
                None => break,
            },
            event = feed.recv() => match event {
                Some(Incoming::Message(m)) => app.message(&m, false).await,
                Some(Incoming::Decrypted(m)) => app.message(&m, true).await,
                Some(Incoming::Push(frame)) => app.push(frame).await,
                Some(Incoming::Other) => {}
                Some(Incoming::Closed(close)) => {
                    println!("connection closed: {} {}", close.code, safe(&close.reason));
                    break;
                }
                None => break,
            },
        }
        // After sign-in the secure client takes the connection over: it
        // publishes this device's keys and handles the key traffic.
        if let Some(session) = signed_in {
            let (Some(client), Feed::Plain(events)) = (app.plain.take(), feed) else {
                break;
            };
            let options =
                SecureOptions::new(std::sync::Arc::new(MemoryStore::default()), random_key());
            match SecureClient::start(client, events, &session, options).await {
                Ok((secure, events)) => {
                    app.secure = Some(secure);
                    feed = Feed::Secure(events);
                    if let Err(e) = app.chats().await {
                        println!("! {}", safe(&e.to_string()));
                    }
                }
                Err(e) => {
                    println!(
                        "! end-to-end encryption failed to start: {}",
                        safe(&e.to_string())
                    );
                    break;
                }
            }
        }
    }
}

/// A key for the state at rest. It lives in memory here, so any key does;
/// a real app keeps one in the platform's key store.
fn random_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    for (i, b) in uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .chain(uuid::Uuid::new_v4().as_bytes())
        .enumerate()
    {
        key[i] = *b;
    }
    key
}

/// Lines of stdin, read on a plain thread (stdin blocks).
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

impl App {
    fn client(&self) -> &Client {
        match (&self.secure, &self.plain) {
            (Some(secure), _) => secure.client(),
            (None, Some(plain)) => plain,
            // The main loop ends when the hand-over fails.
            (None, None) => unreachable!("the connection is always owned"),
        }
    }

    /// Runs a command line; the session when it signed in.
    async fn command(
        &mut self,
        line: &str,
    ) -> Result<Option<SessionInfo>, Box<dyn std::error::Error>> {
        if let Some(pending) = self.pending.take() {
            let session = match pending {
                Pending::Signup(mut r) => {
                    r.password = line.to_owned();
                    self.client().register(&r).await?
                }
                Pending::Login(login) => self.client().login(&login, line, "terminal").await?,
            };
            self.names
                .insert(session.user.clone(), session.profile.username.clone());
            self.me = Some(session.user.clone());
            println!("signed in as {}", safe(&session.profile.username));
            return Ok(Some(session));
        }
        let (cmd, rest) = line.split_once(' ').unwrap_or((line, ""));
        let rest = rest.trim();
        match cmd {
            "" => {}
            "/help" => println!("{HELP}"),
            "/signup" => {
                let mut parts = rest.splitn(4, ' ');
                match (parts.next(), parts.next(), parts.next(), parts.next()) {
                    (Some(username), Some(email), Some(phone), Some(name)) => {
                        self.pending = Some(Pending::Signup(Registration {
                            username: username.into(),
                            email: email.into(),
                            phone: phone.into(),
                            display_name: name.into(),
                            password: String::new(),
                            device: "terminal".into(),
                        }));
                        println!("password (10+ characters, hard to guess):");
                    }
                    _ => println!("usage: /signup <username> <email> <phone> <display name>"),
                }
            }
            "/login" if !rest.is_empty() => {
                self.pending = Some(Pending::Login(rest.to_owned()));
                println!("password:");
            }
            "/users" => {
                let page = self.client().search_users(rest, None, Some(50)).await?;
                for e in page.users {
                    self.names
                        .insert(e.profile.user.clone(), e.profile.username.clone());
                    let status = if e.presence.online {
                        "online".to_owned()
                    } else {
                        e.presence
                            .last_seen
                            .map_or("offline".to_owned(), |t| format!("last seen {}", ago(t)))
                    };
                    println!(
                        "  {:<20} {:<24} {status}",
                        safe(&e.profile.username),
                        safe(&e.profile.display_name)
                    );
                }
            }
            "/chat" if !rest.is_empty() => self.open_chat(rest).await?,
            "/e2e" => self.encrypt_open().await?,
            "/safety" => match (&self.secure, &self.open) {
                (Some(secure), Some(open)) => {
                    let number = secure.safety_number(&open.peer).await?;
                    println!("safety number (the same on both sides; compare it in person):");
                    println!("  {number}");
                }
                _ => println!("sign in and open a chat first"),
            },
            "/close" => {
                self.open = None;
                self.client().focus(None).await?;
            }
            "/chats" => self.chats().await?,
            "/logout" => {
                self.client().logout().await?;
                println!("signed out");
            }
            _ if cmd.starts_with('/') => println!("unknown command; /help lists them"),
            _ => match (&self.open, &self.secure) {
                (Some(open), Some(secure)) if open.encrypted => {
                    let sent = secure.send_encrypted(&open.conv, line).await?;
                    println!("  (sent encrypted, #{})", sent.seq);
                }
                (Some(open), _) => {
                    let sent = self.client().send_text(&open.peer, line).await?;
                    println!("  (sent, #{})", sent.seq);
                }
                (None, _) => println!("open a chat first: /chat <username>"),
            },
        }
        Ok(None)
    }

    /// `/e2e`: the open chat becomes end-to-end encrypted, for good.
    async fn encrypt_open(&mut self) -> AppResult {
        let Some(open) = &mut self.open else {
            println!("open a chat first: /chat <username>");
            return Ok(());
        };
        if self.secure.is_none() {
            println!("sign in first");
            return Ok(());
        }
        if open.encrypted {
            println!("this chat is end-to-end encrypted already");
            return Ok(());
        }
        let peer = open.peer.clone();
        let info = self.client().open_encrypted_direct(&peer).await?;
        if let Some(open) = &mut self.open {
            open.conv = info.conv;
            open.encrypted = true;
        }
        println!(
            "this chat is now end-to-end encrypted: only your and their devices read what follows"
        );
        Ok(())
    }

    async fn open_chat(&mut self, username: &str) -> AppResult {
        let Some(me) = self.me.clone() else {
            println!("sign in first");
            return Ok(());
        };
        let page = self.client().search_users(username, None, Some(20)).await?;
        let Some(peer) = page
            .users
            .into_iter()
            .find(|e| e.profile.username.eq_ignore_ascii_case(username))
        else {
            println!("no user {username}");
            return Ok(());
        };
        let peer_id = peer.profile.user.clone();
        self.names
            .insert(peer_id.clone(), peer.profile.username.clone());
        let conv = ConversationId::direct(&me, &peer_id);
        let encrypted = match self.client().get_conversation(&conv).await {
            Ok(info) => info.encrypted,
            // Not opened yet.
            Err(_) => false,
        };
        // A direct conversation exists once opened or written to: before,
        // it has no history.
        let (messages, more) = match &self.secure {
            Some(secure) => match secure.history(&conv, None, Some(20)).await {
                Ok(page) => (page.messages, page.more),
                Err(SecureError::Client(e)) if e.code() == Some(ErrorCode::NotFound) => {
                    (Vec::new(), false)
                }
                Err(e) => return Err(e.into()),
            },
            None => match self.client().history(&conv, None, Some(20)).await {
                Ok(page) => {
                    let messages = page
                        .messages
                        .into_iter()
                        .map(|message| SecureMessage {
                            message,
                            body: Body::Clear,
                        })
                        .collect();
                    (messages, page.more)
                }
                Err(e) if e.code() == Some(ErrorCode::NotFound) => (Vec::new(), false),
                Err(e) => return Err(e.into()),
            },
        };
        let online = if peer.presence.online {
            "online"
        } else {
            "offline"
        };
        println!(
            "--- chat with {} ({online}{}){}",
            safe(&peer.profile.display_name),
            if encrypted {
                ", end-to-end encrypted"
            } else {
                ""
            },
            if more {
                "; older messages not shown"
            } else {
                ""
            }
        );
        for m in &messages {
            self.print(m, false);
        }
        if let Some(last) = messages.last() {
            self.client().read(&conv, last.message.seq).await?;
            self.client().ack(&conv, last.message.seq).await?;
        }
        self.client().focus(Some(&conv)).await?;
        self.open = Some(Open {
            peer: peer_id,
            conv,
            encrypted,
        });
        Ok(())
    }

    async fn chats(&mut self) -> AppResult {
        let convs = self.client().conversations().await?;
        if convs.is_empty() {
            println!("no conversations yet: /users, then /chat <username>");
        }
        for c in convs {
            let peer = match (&c.peer, &c.title) {
                (Some(p), _) => p.username.clone(),
                (None, Some(title)) => title.clone(),
                (None, None) => c.conv.to_string(),
            };
            println!("  {:<20} {} unread", safe(&peer), c.unread);
        }
        Ok(())
    }

    async fn name(&mut self, user: &UserId) -> String {
        if let Some(n) = self.names.get(user) {
            return n.clone();
        }
        match self.client().get_profile(user).await {
            Ok(e) => {
                self.names.insert(user.clone(), e.profile.username.clone());
                e.profile.username
            }
            Err(_) => user.to_string(),
        }
    }

    fn print(&self, sm: &SecureMessage, late: bool) {
        let m = &sm.message;
        let who = if Some(&m.from) == self.me.as_ref() {
            "me".to_owned()
        } else {
            self.names
                .get(&m.from)
                .cloned()
                .unwrap_or_else(|| m.from.to_string())
        };
        let late = if late { " (its key came later)" } else { "" };
        match (&sm.body, &m.content) {
            (Body::Text { text, .. }, _) => {
                println!(
                    "[{}] {} \u{1f512}: {}{late}",
                    clock(m.ts),
                    safe(&who),
                    safe(text)
                );
            }
            (Body::Waiting { .. }, _) => {
                println!(
                    "[{}] {}: (encrypted, waiting for its key)",
                    clock(m.ts),
                    safe(&who)
                );
            }
            (Body::Undecryptable { reason }, _) => println!(
                "[{}] {}: (encrypted, unreadable here: {})",
                clock(m.ts),
                safe(&who),
                safe(reason)
            ),
            (_, Content::Text { text }) => {
                println!("[{}] {}: {}", clock(m.ts), safe(&who), safe(text));
            }
            (_, notice) => println!("[{}] ({} by {})", clock(m.ts), notice.kind(), safe(&who)),
        }
    }

    /// A message pushed (or decrypted once its key came).
    async fn message(&mut self, m: &SecureMessage, late: bool) {
        let open = self.open.as_ref().map(|o| &o.conv);
        if open == Some(&m.message.conv) {
            self.print(m, late);
            if !late {
                let _ = self.client().read(&m.message.conv, m.message.seq).await;
                let _ = self.client().ack(&m.message.conv, m.message.seq).await;
            }
        }
    }

    async fn push(&mut self, frame: ServerFrame) {
        match frame {
            ServerFrame::Alert { from, .. } => {
                let who = self.name(&from).await;
                let who = safe(&who);
                println!("* new message from {who}: /chat {who}");
            }
            ServerFrame::Presence { presence } => {
                let who = self.name(&presence.user).await;
                let state = if presence.online { "online" } else { "offline" };
                println!("* {} is {state}", safe(&who));
            }
            ServerFrame::Error { code, message, .. } => println!("! {code}: {}", safe(&message)),
            _ => {}
        }
    }
}

/// `HH:MM` (UTC) of a timestamp.
fn clock(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    format!("{:02}:{:02}", secs / 3600 % 24, secs / 60 % 60)
}

/// How long ago a timestamp was, roughly.
fn ago(ms: i64) -> String {
    let now = chatcore_client::chatcore::model::now_millis();
    let s = (now - ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s}s ago"),
        60..=3599 => format!("{}m ago", s / 60),
        _ => format!("{}h ago", s / 3600),
    }
}
