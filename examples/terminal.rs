//! Run with: cargo run -p chatcore-examples --example terminal -- [ws://127.0.0.1:8080/ws]
//!
//! A line-oriented chat client for a running chatd (`cargo run -p chatd`),
//! built on `chatcore-client`. Type `/help` for the commands: sign up or in,
//! list users with their presence, open a chat to see its history and live
//! messages, and type lines to send them.

use chatcore_client::chatcore::model::{Content, ConversationId, Message, UserId};
use chatcore_client::chatcore::protocol::ServerFrame;
use chatcore_client::{Client, ConnectOptions, Event, Events, Registration};
use chatcore_examples::terminal_safe as safe;
use std::collections::HashMap;
use tokio::sync::mpsc;

const HELP: &str = "\
commands:
  /signup <username> <email> <phone> <display name>   create an account (password asked next)
  /login <username or email>                          sign in (password asked next)
  /users [prefix]                                     list users and who is online
  /chat <username>                                    open a chat: history, then live messages
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
    client: Client,
    me: Option<UserId>,
    /// Usernames by id, learnt from listings and profiles.
    names: HashMap<UserId, String>,
    open: Option<(UserId, ConversationId)>,
    pending: Option<Pending>,
}

#[tokio::main]
async fn main() {
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "ws://127.0.0.1:8080/ws".to_owned());
    let (client, mut events) = match Client::connect(&url, ConnectOptions::new()).await {
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
    let mut app = App {
        client,
        me: None,
        names: HashMap::new(),
        open: None,
        pending: None,
    };
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => {
                    if app.pending.is_none() && line.trim() == "/quit" {
                        let _ = app.client.close().await;
                        break;
                    }
                    if let Err(e) = app.command(line.trim()).await {
                        println!("! {}", safe(&e.to_string()));
                    }
                }
                None => break,
            },
            event = events.recv() => match event {
                Some(Event::Push(frame)) => app.push(frame).await,
                Some(Event::Closed(close)) => {
                    println!("connection closed: {} {}", close.code, safe(&close.reason));
                    break;
                }
                None => break,
            },
        }
    }
    drain(&mut events);
}

fn drain(events: &mut Events) {
    while events.try_recv().is_some() {}
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
    async fn command(&mut self, line: &str) -> Result<(), chatcore_client::Error> {
        if let Some(pending) = self.pending.take() {
            let session = match pending {
                Pending::Signup(mut r) => {
                    r.password = line.to_owned();
                    self.client.register(&r).await?
                }
                Pending::Login(login) => self.client.login(&login, line, "terminal").await?,
            };
            self.names
                .insert(session.user.clone(), session.profile.username.clone());
            self.me = Some(session.user);
            println!("signed in as {}", safe(&session.profile.username));
            return self.chats().await;
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
                let page = self.client.search_users(rest, None, Some(50)).await?;
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
            "/close" => {
                self.open = None;
                self.client.focus(None).await?;
            }
            "/chats" => self.chats().await?,
            "/logout" => {
                self.client.logout().await?;
                println!("signed out");
            }
            _ if cmd.starts_with('/') => println!("unknown command; /help lists them"),
            _ => match &self.open {
                Some((peer, _)) => {
                    let peer = peer.clone();
                    let sent = self.client.send_text(&peer, line).await?;
                    println!("  (sent, #{})", sent.seq);
                }
                None => println!("open a chat first: /chat <username>"),
            },
        }
        Ok(())
    }

    async fn open_chat(&mut self, username: &str) -> Result<(), chatcore_client::Error> {
        let Some(me) = self.me.clone() else {
            println!("sign in first");
            return Ok(());
        };
        let page = self.client.search_users(username, None, Some(20)).await?;
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
        let history = self.client.history(&conv, None, Some(20)).await?;
        let online = if peer.presence.online {
            "online"
        } else {
            "offline"
        };
        println!(
            "--- chat with {} ({online}){}",
            safe(&peer.profile.display_name),
            if history.more {
                "; older messages not shown"
            } else {
                ""
            }
        );
        for m in &history.messages {
            self.print(m);
        }
        if let Some(last) = history.messages.last() {
            self.client.read(&conv, last.seq).await?;
            self.client.ack(&conv, last.seq).await?;
        }
        self.client.focus(Some(&conv)).await?;
        self.open = Some((peer_id, conv));
        Ok(())
    }

    async fn chats(&mut self) -> Result<(), chatcore_client::Error> {
        let convs = self.client.conversations().await?;
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
        match self.client.get_profile(user).await {
            Ok(e) => {
                self.names.insert(user.clone(), e.profile.username.clone());
                e.profile.username
            }
            Err(_) => user.to_string(),
        }
    }

    fn print(&self, m: &Message) {
        let who = if Some(&m.from) == self.me.as_ref() {
            "me".to_owned()
        } else {
            self.names
                .get(&m.from)
                .cloned()
                .unwrap_or_else(|| m.from.to_string())
        };
        match &m.content {
            Content::Text { text } => {
                println!("[{}] {}: {}", clock(m.ts), safe(&who), safe(text));
            }
            notice => println!("[{}] ({} by {})", clock(m.ts), notice.kind(), safe(&who)),
        }
    }

    async fn push(&mut self, frame: ServerFrame) {
        match frame {
            ServerFrame::Message { message } => {
                let open = self.open.as_ref().map(|(_, c)| c);
                if open == Some(&message.conv) {
                    self.print(&message);
                    let _ = self.client.read(&message.conv, message.seq).await;
                    let _ = self.client.ack(&message.conv, message.seq).await;
                }
            }
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
