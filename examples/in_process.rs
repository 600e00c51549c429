//! Run with: cargo run -p chatcore-examples --example in_process
//!
//! Embeds chatcore in-process: two clients talk to a server over in-memory
//! channels (no network), register, chat, and one goes offline and catches up
//! with `sync` when it comes back.

use chatcore::model::Content;
use chatcore::protocol::{ClientFrame, ServerFrame};
use chatcore::session::{connect_in_process, InProcess, PeerInfo};
use chatcore::{Backends, Server};
use futures_util::{SinkExt, StreamExt};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// A minimal client over an in-process connection.
struct Client {
    name: &'static str,
    conn: InProcess,
    next_id: u32,
}

impl Client {
    async fn connect(
        server: &Arc<Server>,
        name: &'static str,
        shutdown: &CancellationToken,
    ) -> Client {
        let conn = connect_in_process(server.clone(), PeerInfo::default(), 32, shutdown.clone());
        let mut c = Client {
            name,
            conn,
            next_id: 0,
        };
        c.request(|id| ClientFrame::Hello {
            id,
            version: 4,
            client: Some("in_process example".into()),
        })
        .await;
        c
    }

    /// Sends a request and returns its reply, printing any push met on the way.
    async fn request(&mut self, make: impl FnOnce(u32) -> ClientFrame) -> ServerFrame {
        self.next_id += 1;
        let id = self.next_id;
        if self.conn.tx.send(Ok(make(id))).await.is_err() {
            panic!("{}: the session ended", self.name);
        }
        while let Some(frame) = self.conn.rx.next().await {
            if frame.id() == Some(id) {
                return frame;
            }
            self.show(&frame);
        }
        panic!("{}: connection closed", self.name)
    }

    fn show(&self, frame: &ServerFrame) {
        match frame {
            ServerFrame::Message { message } => {
                if let Content::Text { text } = &message.content {
                    println!("  [{}] message #{}: {text}", self.name, message.seq);
                }
            }
            ServerFrame::Alert { seq, .. } => {
                println!("  [{}] alert: new message #{seq}", self.name)
            }
            ServerFrame::Presence { presence } => {
                println!("  [{}] presence: online={}", self.name, presence.online)
            }
            other => println!("  [{}] {other:?}", self.name),
        }
    }
}

#[tokio::main]
async fn main() {
    let server =
        Server::new(Backends::memory(), chatcore::Config::default()).expect("server starts");
    let shutdown = CancellationToken::new();

    let mut alice = Client::connect(&server, "alice", &shutdown).await;
    let mut bob = Client::connect(&server, "bob", &shutdown).await;
    let mut tokens = Vec::new();
    let mut ids = Vec::new();
    for (c, phone) in [(&mut alice, "+441110000001"), (&mut bob, "+441110000002")] {
        let name = c.name;
        let reply = c
            .request(|id| ClientFrame::Register {
                id,
                username: name.into(),
                email: format!("{name}@example.com"),
                phone: phone.into(),
                display_name: name.to_uppercase(),
                password: "violet kettle mountain 1984".into(),
                device: "example".into(),
            })
            .await;
        let ServerFrame::Session {
            user,
            token: Some(token),
            ..
        } = reply
        else {
            panic!("registration failed: {reply:?}")
        };
        println!("{name} registered as {user}");
        ids.push(user);
        tokens.push(token);
    }
    let (alice_id, bob_id) = (ids[0].clone(), ids[1].clone());

    let sent = alice
        .request(|id| ClientFrame::Send {
            media: Vec::new(),
            mentions: Vec::new(),
            rel: None,
            id,
            conv: None,
            to: Some(bob_id.clone()),
            client_id: "hello-1".into(),
            content: Content::Text {
                text: "Hi Bob!".into(),
            },
        })
        .await;
    println!("alice: {sent:?}");
    // Bob is online: the message and an alert are pushed to him.
    bob.request(|id| ClientFrame::Ping { id }).await;

    println!("bob goes offline");
    drop(bob);
    for (n, text) in ["Are you there?", "Call me when you're back."]
        .iter()
        .enumerate()
    {
        alice
            .request(|id| ClientFrame::Send {
                media: Vec::new(),
                mentions: Vec::new(),
                rel: None,
                id,
                conv: None,
                to: Some(bob_id.clone()),
                client_id: format!("offline-{n}"),
                content: Content::Text {
                    text: (*text).into(),
                },
            })
            .await;
    }

    println!("bob comes back and syncs");
    let mut bob = Client::connect(&server, "bob", &shutdown).await;
    let token = tokens[1].clone();
    bob.request(|id| ClientFrame::Resume { id, token }).await;
    let ServerFrame::Synced { messages, .. } = bob
        .request(|id| ClientFrame::Sync { id, limit: None })
        .await
    else {
        panic!("sync failed")
    };
    for m in &messages {
        let Content::Text { text } = &m.content else {
            continue;
        };
        println!(
            "  [bob] synced #{} from {}: {text}",
            m.seq,
            if m.from == alice_id { "alice" } else { "bob" }
        );
    }
    if let Some(last) = messages.last() {
        let (conv, seq) = (last.conv.clone(), last.seq);
        bob.request(|id| ClientFrame::Ack { id, conv, seq }).await;
    }
    assert_eq!(messages.len(), 3, "bob catches up on everything");
    shutdown.cancel();
    println!("done: bob received all {} messages", messages.len());
}
