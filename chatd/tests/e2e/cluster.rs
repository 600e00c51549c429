//! Several chatd nodes behaving as one server (issue 21): three real chatd
//! processes sharing one MongoDB (jongodb) and one Redis (a private
//! redis-server), with clients spread across them. 1:1 and group chat
//! between nodes, a user's devices on different nodes, presence, a login
//! limit and the cap of connections per account counted across nodes; then one node killed (SIGKILL) in the middle
//! of traffic: every acknowledged message reaches its recipient once after
//! a reconnect to another node, and the killed node's users turn offline
//! within the presence TTL; then Redis restarted: the nodes say they are
//! not ready meanwhile, and events flow between them again after.

use super::*;
use chatcore_client::chatcore::model::Content;
use chatcore_redis::testing::RedisServer;
use std::collections::BTreeSet;

/// The presence TTL of these nodes: a killed node's users are offline
/// within it (plus a sweep period, a third of it).
const TTL_MS: u64 = 1500;

struct Cluster {
    nodes: Vec<Chatd>,
    redis: RedisServer,
    store: String,
    _mongo: chatcore_mongo::testing::Jongo,
}

impl Cluster {
    /// One more node of this service.
    async fn node(&self) -> Chatd {
        let ttl = TTL_MS.to_string();
        let url = self.redis.url();
        let args = [
            "--store",
            self.store.as_str(),
            "--redis",
            url.as_str(),
            "--presence-ttl-ms",
            ttl.as_str(),
            "--max-connections-per-user",
            "2",
            "--call-ring-timeout-ms",
            "600",
            "--call-sweep-ms",
            "50",
        ];
        Chatd::start(&args).await
    }
}

async fn cluster(n: usize) -> Cluster {
    let mongo = chatcore_mongo::testing::Jongo::start(0).unwrap_or_else(|e| panic!("{e}"));
    let redis = RedisServer::start().unwrap_or_else(|e| panic!("{e}"));
    let store = format!(
        "mongodb://127.0.0.1:{}/chatd_cluster_{}",
        mongo.port,
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut c = Cluster {
        nodes: Vec::new(),
        redis,
        store,
        _mongo: mongo,
    };
    for _ in 0..n {
        let node = c.node().await;
        c.nodes.push(node);
    }
    c
}

/// The next text message pushed to `u` (skipping other pushes).
async fn next_text(u: &mut User) -> (ConversationId, String) {
    timeout(T, async {
        loop {
            match u.events.recv().await {
                Some(Event::Push(ServerFrame::Message { message })) => {
                    if let Content::Text { text } = &message.content {
                        return (message.conv.clone(), text.clone());
                    }
                }
                Some(Event::Closed(c)) => panic!("closed: {c:?}"),
                None => panic!("events ended"),
                _ => {}
            }
        }
    })
    .await
    .expect("no message arrived")
}

async fn sign_in(node: &Chatd, name: &str, device: &str) -> User {
    let (client, events) = node.connect().await;
    let session = client.login(name, PASSWORD, device).await.expect("login");
    User {
        client,
        events,
        session,
    }
}

async fn online(asker: &User, who: &UserId) -> bool {
    asker
        .client
        .get_profile(who)
        .await
        .expect("profile")
        .presence
        .online
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_on_one_redis_behave_as_one_server() {
    let mut c = cluster(3).await;
    let mut alice = c.nodes[0].user("alice").await;
    let mut bob = c.nodes[1].user("bob").await;
    let mut carol = c.nodes[2].user("carol").await;
    befriend(&alice, &bob).await;
    befriend(&alice, &carol).await;
    befriend(&bob, &carol).await;

    // 1:1 across nodes, both ways.
    alice
        .client
        .send_text(&bob.id(), "hi bob, from node 0")
        .await
        .expect("send");
    assert_eq!(next_text(&mut bob).await.1, "hi bob, from node 0");
    bob.client
        .send_text(&alice.id(), "hi alice, from node 1")
        .await
        .expect("send");
    assert_eq!(next_text(&mut alice).await.1, "hi alice, from node 1");

    // A group with a member on each node.
    let group = alice
        .client
        .create_group("Three nodes", None, &[bob.id(), carol.id()])
        .await
        .expect("group")
        .conv;
    alice
        .client
        .send_text(&group, "to all three")
        .await
        .expect("send");
    for u in [&mut bob, &mut carol] {
        loop {
            let (conv, text) = next_text(u).await;
            if conv == group {
                assert_eq!(text, "to all three");
                break;
            }
        }
    }

    // Alice's second device, on another node, gets what her first sends.
    let mut alice2 = sign_in(&c.nodes[2], "alice", "alice-laptop").await;
    alice
        .client
        .send_text(&carol.id(), "seen on both my devices")
        .await
        .expect("send");
    assert_eq!(next_text(&mut alice2).await.1, "seen on both my devices");
    assert_eq!(next_text(&mut carol).await.1, "seen on both my devices");

    // The cap of connections per account (2 here) holds across nodes:
    // Alice has one on node 0 and one on node 2; a third, on node 1, is
    // refused.
    let (client, _events) = c.nodes[1].connect().await;
    let r = client.login("alice", PASSWORD, "alice-phone").await;
    assert_eq!(
        server_code(r),
        ErrorCode::LimitReached,
        "a third connection"
    );

    // Presence is the service's, not a node's.
    assert!(
        online(&carol, &bob.id()).await,
        "bob online, seen from node 2"
    );

    // Failed logins count across nodes: 10 per account, here 5 on each of
    // two nodes, then the next is refused on the third.
    let _dave = c.nodes[0].user("dave").await;
    for i in 0..10 {
        let (client, _events) = c.nodes[i % 2].connect().await;
        let r = client.login("dave", "not the password at all", "d").await;
        assert_eq!(server_code(r), ErrorCode::Unauthenticated, "attempt {i}");
    }
    let (client, _events) = c.nodes[2].connect().await;
    let r = client.login("dave", PASSWORD, "d").await;
    assert_eq!(server_code(r), ErrorCode::RateLimited, "the 11th attempt");

    // Node 1 is killed while Alice sends to Bob (who is on it): every
    // message acknowledged reaches Bob once after he reconnects, to node 0.
    let mut acked = Vec::new();
    for i in 0..40 {
        if i == 20 {
            c.nodes[1].child.start_kill().expect("SIGKILL node 1");
        }
        let text = format!("burst {i}");
        if alice.client.send_text(&bob.id(), &text).await.is_ok() {
            acked.push(text);
        }
    }
    assert_eq!(acked.len(), 40, "alice's node took every send");
    let _ = c.nodes[1].child.wait().await;
    // Bob's device comes back on node 0 with its session, and syncs what it
    // did not acknowledge (it acknowledged nothing of the burst).
    let token = bob.session.token.clone().expect("a token");
    drop(bob);
    let (client, events) = c.nodes[0].connect().await;
    let session = client.resume(&token).await.expect("resume on another node");
    let bob = User {
        session,
        client,
        events,
    };
    let page = bob.client.sync(Some(500)).await.expect("sync");
    assert!(!page.more, "one page holds it all");
    let seen: Vec<String> = page
        .messages
        .iter()
        .filter_map(|m| match &m.content {
            Content::Text { text } if text.starts_with("burst ") => Some(text.clone()),
            _ => None,
        })
        .collect();
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "a message came twice: {seen:?}");
    let want: BTreeSet<&String> = acked.iter().collect();
    assert_eq!(unique, want, "acknowledged messages missing after the kill");

    // Carol was only ever on node 2; the killed node's own user (bob's
    // first device) leaves no "online" behind: bob is online now through
    // node 0 only. Eve, only on node 1, turns offline within the TTL.
    let mut eve_node = c.node().await;
    let eve = eve_node.user("eve").await;
    befriend(&eve, &carol).await;
    assert!(online(&carol, &eve.id()).await);
    eve_node.child.start_kill().expect("SIGKILL eve's node");
    let _ = eve_node.child.wait().await;
    let killed = std::time::Instant::now();
    let offline = timeout(Duration::from_millis(TTL_MS * 4), async {
        while online(&carol, &eve.id()).await {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        offline.is_ok(),
        "eve still online after {:?}",
        killed.elapsed()
    );
    let last_seen = carol
        .client
        .get_profile(&eve.id())
        .await
        .expect("profile")
        .presence
        .last_seen;
    assert!(last_seen.is_some(), "a last-seen time for eve");

    // Redis restarts: the nodes say they are not ready meanwhile, then
    // events flow between them again.
    c.redis.stop();
    let down = timeout(T, async {
        while c.nodes[0].http("GET", "/readyz").await.0 == 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(down.is_ok(), "node 0 stayed ready without Redis");
    c.redis.restart().expect("redis restart");
    let up = timeout(T, async {
        while c.nodes[0].http("GET", "/readyz").await.0 != 200
            || c.nodes[2].http("GET", "/readyz").await.0 != 200
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(up.is_ok(), "the nodes never became ready again");
    // Subscriptions are back: a message from node 0 reaches carol on node 2.
    alice
        .client
        .send_text(&carol.id(), "after the restart")
        .await
        .expect("send");
    loop {
        let (_, text) = next_text(&mut carol).await;
        if text == "after the restart" {
            break;
        }
    }
}

/// A call between nodes: the callee's two devices on two nodes both ring,
/// the one on the caller's node answers, the other (on the other node)
/// stops; signals cross the nodes; a call nobody answers is ended as missed
/// by a sweep on some node, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_rings_and_is_answered_across_nodes() {
    use chatcore_client::chatcore::model::{CallEnd, CallMedia};
    use chatcore_client::chatcore::protocol::{CallSignal, CallStatus, HangupReason};
    let sdp = |s: &str| CallSignal {
        sdp: Some(s.into()),
        ..CallSignal::default()
    };
    let state = |f: &ServerFrame, want: CallStatus| matches!(f, ServerFrame::CallState { call, .. } if call.state == want);
    let c = cluster(2).await;
    let mut alice = c.nodes[1].user("alice").await;
    let mut phone = c.nodes[0].user("bob").await;
    befriend(&alice, &phone).await;
    let conv = alice.client.open_direct(&phone.id()).await.unwrap().conv;
    let mut laptop = sign_in(&c.nodes[1], "bob", "Laptop").await;
    drain(&mut phone).await;

    alice
        .client
        .call_invite("x-1", &conv, CallMedia::Video, sdp("offer"))
        .await
        .expect("invite");
    for b in [&mut phone, &mut laptop] {
        push(&mut b.events, |f| state(f, CallStatus::Ringing)).await;
        push(
            &mut b.events,
            |f| matches!(f, ServerFrame::CallSignal(s) if s.sdp.as_deref() == Some("offer")),
        )
        .await;
    }
    // The phone (the other node) rings; the laptop (Alice's node) answers.
    phone.client.call_ringing("x-1").await.expect("ringing");
    push(
        &mut alice.events,
        |f| matches!(f, ServerFrame::CallState { call, .. } if call.ringing),
    )
    .await;
    let active = laptop
        .client
        .call_answer("x-1", sdp("answer"))
        .await
        .expect("answer");
    assert_eq!(active.answered_by.as_ref(), Some(&laptop.session.device));
    push(&mut phone.events, |f| state(f, CallStatus::Active)).await;
    assert_eq!(
        server_code(phone.client.call_answer("x-1", sdp("late")).await),
        ErrorCode::NotFound,
        "the phone's node knows it was taken on the other"
    );
    push(
        &mut alice.events,
        |f| matches!(f, ServerFrame::CallSignal(s) if s.sdp.as_deref() == Some("answer")),
    )
    .await;
    alice
        .client
        .call_hangup("x-1", HangupReason::Hangup)
        .await
        .expect("hang up");
    push(&mut laptop.events, |f| state(f, CallStatus::Ended)).await;
    push(&mut phone.events, |f| state(f, CallStatus::Ended)).await;

    // Unanswered: a sweep on one of the nodes ends it, and the entry is written once.
    alice
        .client
        .call_invite("x-2", &conv, CallMedia::Voice, sdp("offer"))
        .await
        .expect("invite");
    let ended = push(&mut alice.events, |f| state(f, CallStatus::Ended)).await;
    assert!(
        matches!(ended, ServerFrame::CallState { call, .. } if call.reason == Some(CallEnd::Missed))
    );
    let entries = |frames: Vec<ServerFrame>| {
        frames
            .iter()
            .filter(|f| matches!(f, ServerFrame::Message { message } if matches!(message.content, Content::Call { outcome: CallEnd::Missed, .. })))
            .count()
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        entries(drain(&mut phone).await),
        1,
        "one missed-call entry, whichever node swept"
    );
}
