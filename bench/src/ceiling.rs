//! The ceiling: the least a WebSocket relay on this machine can do. Plain
//! tokio-tungstenite at its default settings, no protocol, no auth, no
//! store: each connection names its pair (`P <pair> <side>`), and every
//! binary message is written as-is to the other side, several per flush.
//!
//! The acking ceiling (`P <pair> <side> A`) also answers each message with
//! a small acknowledgement to its sender, several per flush: the two
//! frames per relayed message that chatd writes (the sender's `sent` and
//! the recipient's push), without anything else chatd does.

use anyhow::Result;
use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

enum Out {
    Frame(Message),
    Partner(mpsc::Sender<Out>),
}

type Pairs = Arc<Mutex<HashMap<u64, mpsc::Sender<Out>>>>;

/// What the acking ceiling answers each message with (a `sent` of chatd's
/// is about this size).
pub(crate) const ACK: &[u8] =
    b"ACK0000000000000000000000000000000000000000000000000000000000000000";

/// Serves until killed; prints the bound address on stdout.
pub(crate) async fn serve(listen: &str) -> Result<()> {
    let listener = TcpListener::bind(listen).await?;
    println!("{}", listener.local_addr()?);
    let pairs: Pairs = Arc::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let pairs = pairs.clone();
        tokio::spawn(async move {
            if let Err(e) = conn(stream, pairs).await {
                eprintln!("ceiling connection: {e:#}");
            }
        });
    }
}

async fn conn(stream: tokio::net::TcpStream, pairs: Pairs) -> Result<()> {
    let mut ws = tokio_tungstenite::accept_async(stream).await?;
    let (tx, mut rx) = mpsc::channel::<Out>(1024);
    let (pair, acking) = match ws.next().await {
        Some(Ok(Message::Text(t))) => {
            let words: Vec<&str> = t.split_whitespace().collect();
            let pair = words
                .get(1)
                .and_then(|p| p.parse::<u64>().ok())
                .unwrap_or(u64::MAX);
            (pair, words.get(3) == Some(&"A"))
        }
        _ => return Ok(()),
    };
    let waiting = pairs.lock().expect("pairs lock").remove(&pair);
    let mut partner = match waiting {
        Some(other) => {
            other.send(Out::Partner(tx.clone())).await?;
            ws.send(Message::text("R")).await?;
            Some(other)
        }
        None => {
            pairs.lock().expect("pairs lock").insert(pair, tx.clone());
            None
        }
    };
    drop(tx);
    loop {
        tokio::select! {
            m = ws.next() => {
                let mut next = Some(m);
                let mut acks = 0;
                // Everything already received, then one flush for the acks.
                while let Some(m) = next {
                    match m {
                        Some(Ok(m @ Message::Binary(_))) => {
                            if let Some(p) = &partner {
                                // A partner that left drops what is sent to it.
                                let _ = p.send(Out::Frame(m)).await;
                            }
                            if acking {
                                ws.feed(Message::binary(ACK)).await?;
                                acks += 1;
                            }
                        }
                        Some(Err(e)) => return Err(e.into()),
                        Some(Ok(Message::Close(_))) | None => return Ok(()),
                        Some(Ok(_)) => {}
                    }
                    next = if acking { ws.next().now_or_never() } else { None };
                }
                if acks > 0 {
                    ws.flush().await?;
                }
            },
            o = rx.recv() => {
                let Some(o) = o else { return Ok(()) };
                let mut next = Some(o);
                while let Some(o) = next {
                    match o {
                        Out::Frame(m) => ws.feed(m).await?,
                        Out::Partner(p) => {
                            partner = Some(p);
                            ws.feed(Message::text("R")).await?;
                        }
                    }
                    next = rx.try_recv().ok();
                }
                ws.flush().await?;
            }
        }
    }
}
