//! Instructions to encode one message's broker events, before (serde of each whole
//! event) and after (the message encoded once, spliced into each): see
//! docs/BENCHMARKS.md, "The broker encodes a message once". Run under callgrind:
//! `valgrind --tool=callgrind target/release/encbench old|new TOPICS`.

use chatcore::model::UserId;
use chatcore::protocol::{ServerFrame, SharedMessage};
use chatcore::store::{Event, Topic};
use std::sync::Arc;

fn old(topics: &[Topic], m: &SharedMessage) -> usize {
    let mut n = 0;
    for t in topics {
        let event = Event::Message { message: m.clone(), muted: false, origin: Some(Arc::from("conn-1")) };
        let mut frame = Vec::with_capacity(17 + 512);
        frame.extend_from_slice(&[0u8; 17]);
        rmp_serde::encode::write_named(&mut frame, &(t, &event)).unwrap();
        n += frame.len();
    }
    n
}

fn new(topics: &[Topic], m: &SharedMessage) -> usize {
    let mut n = 0;
    for t in topics {
        let bytes = m.named_msgpack().unwrap();
        let mut frame = Vec::with_capacity(17 + 512);
        frame.extend_from_slice(&[0u8; 17]);
        rmp::encode::write_array_len(&mut frame, 2).unwrap();
        rmp_serde::encode::write_named(&mut frame, t).unwrap();
        rmp::encode::write_map_len(&mut frame, 1).unwrap();
        rmp::encode::write_str(&mut frame, "message").unwrap();
        rmp::encode::write_map_len(&mut frame, 3).unwrap();
        rmp::encode::write_str(&mut frame, "message").unwrap();
        frame.extend_from_slice(bytes);
        rmp::encode::write_str(&mut frame, "muted").unwrap();
        rmp::encode::write_bool(&mut frame, false).unwrap();
        rmp::encode::write_str(&mut frame, "origin").unwrap();
        rmp::encode::write_str(&mut frame, "conn-1").unwrap();
        n += frame.len();
    }
    n
}

fn main() {
    let which = std::env::args().nth(1).unwrap();
    let members: usize = std::env::args().nth(2).unwrap().parse().unwrap();
    let msg = chatcore::testkit::samples::server_frames().into_iter().find_map(|f| match f { ServerFrame::Message { message } => Some(message), _ => None }).unwrap();
    let topics: Vec<Topic> = (0..members).map(|i| Topic::User(UserId::from(format!("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f{i:04}").as_str()))).collect();
    let mut total = 0;
    for _ in 0..10_000 {
        let m = SharedMessage::new(msg.message().clone());
        total += if which == "old" { old(&topics, &m) } else { new(&topics, &m) };
    }
    println!("{total}");
}
