//! chatd on the MongoDB store (chatcore-mongo) against a real MongoDB wire
//! server: jongodb, started per test so it can be stopped and restarted, or
//! the server named by `CHATCORE_MONGO_URI` for the tests that do not stop it.

use super::*;
use chatcore_mongo::testing::Jongo;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

fn jongo() -> Jongo {
    Jongo::start(0).unwrap_or_else(|e| panic!("{e}"))
}

/// A fresh database on `jongo`'s server.
fn store_uri(jongo: &Jongo) -> String {
    format!(
        "mongodb://127.0.0.1:{}/chatd_e2e_{}",
        jongo.port,
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn start_on(uri: &str) -> Chatd {
    Chatd::start(&["--store", uri]).await
}

/// SIGTERM, then wait for a clean exit.
async fn stop(mut chatd: Chatd) {
    chatd.terminate();
    let exit = timeout(T, chatd.child.wait())
        .await
        .expect("chatd exits")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

#[tokio::test]
async fn a_restart_keeps_users_sessions_cursors_and_history() {
    let server = jongo();
    let uri = store_uri(&server);
    let chatd = start_on(&uri).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    let bob_token = bob.session.token.clone().expect("token");
    let first = alice
        .client
        .send(&bob.id(), "r1", text("before the restart"))
        .await
        .unwrap();
    alice
        .client
        .send(&bob.id(), "r2", text("also before"))
        .await
        .unwrap();
    bob.client.ack(&first.conv, first.seq).await.unwrap();
    drop((alice, bob));
    stop(chatd).await;

    let chatd = start_on(&uri).await;
    let (bob, _bob_events) = chatd.connect().await;
    bob.resume(&bob_token)
        .await
        .expect("the session survived the restart");
    let page = bob.sync(None).await.unwrap();
    assert_eq!(
        page.messages
            .iter()
            .map(|m| (m.seq, text_of(&m.content)))
            .collect::<Vec<_>>(),
        [(2, "also before")],
        "the device cursor survived: only the unacknowledged message is synced"
    );
    let (alice, _alice_events) = chatd.connect().await;
    let session = alice
        .login("alice", PASSWORD, "laptop")
        .await
        .expect("the account survived");
    let third = alice
        .send(&bob.user().expect("signed in"), "r3", text("after"))
        .await
        .unwrap();
    assert_eq!(third.seq, 3, "the conversation's sequence continues");
    let history = alice.history(&first.conv, None, None).await.unwrap();
    assert_eq!(
        history.messages.iter().map(|m| m.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    let (again, _e) = chatd.connect().await;
    let mut dup = registration("alice");
    dup.phone = "+449900000001".into();
    assert_eq!(
        server_code(again.register(&dup).await),
        ErrorCode::Conflict,
        "unique keys survived"
    );
    assert_eq!(session.user, alice.user().expect("signed in"));
}

#[tokio::test]
async fn every_send_acknowledged_before_sigkill_is_in_the_history() {
    let server = jongo();
    let uri = store_uri(&server);
    let mut chatd = start_on(&uri).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    let bob_id = bob.id();
    let client = Arc::new(alice.client);
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let count = Arc::new(AtomicUsize::new(0));
    let burst: Vec<_> = (0..16)
        .map(|worker| {
            let (client, acked, count, to) =
                (client.clone(), acked.clone(), count.clone(), bob_id.clone());
            tokio::spawn(async move {
                for i in 0..25 {
                    let cid = format!("burst-{worker}-{i}");
                    match client.send(&to, &cid, text(&cid)).await {
                        Ok(sent) => {
                            acked
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(sent.seq, (cid, sent.message_id));
                            count.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    timeout(T, async {
        while count.load(Ordering::SeqCst) < 60 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("60 sends acknowledged");
    chatd.child.start_kill().expect("SIGKILL");
    let _ = chatd.child.wait().await;
    for task in burst {
        timeout(T, task)
            .await
            .expect("sender ends")
            .expect("sender task");
    }
    let acked = acked.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(
        acked.len() >= 60 && acked.len() < 400,
        "{} acknowledged",
        acked.len()
    );

    let chatd = start_on(&uri).await;
    let (reader, _events) = chatd.connect().await;
    reader
        .login("bob", PASSWORD, "after the crash")
        .await
        .unwrap();
    let alice_id = session_user(&chatd, "alice").await;
    let conv = reader.open_direct(&alice_id).await.unwrap().conv;
    assert_eq!(
        conv,
        ConversationId::direct(&bob_id, &alice_id),
        "kept its id"
    );
    let mut stored = Vec::new();
    let mut before = None;
    loop {
        let page = reader.history(&conv, before, Some(200)).await.unwrap();
        before = page.messages.first().map(|m| m.seq);
        let more = page.more;
        stored.splice(0..0, page.messages);
        if !more {
            break;
        }
    }
    let seqs: Vec<u64> = stored.iter().map(|m| m.seq).collect();
    assert_eq!(
        seqs,
        (1..=stored.len() as u64).collect::<Vec<_>>(),
        "gap-free after the crash"
    );
    for (seq, (cid, id)) in &acked {
        let m = stored
            .iter()
            .find(|m| m.seq == *seq)
            .unwrap_or_else(|| panic!("acknowledged seq {seq} lost"));
        assert_eq!((&m.client_id, &m.id), (cid, id), "seq {seq}");
    }
    // The history holds nothing but what was sent, each client id once.
    let mut cids: Vec<&str> = stored.iter().map(|m| m.client_id.as_str()).collect();
    cids.sort_unstable();
    cids.dedup();
    assert_eq!(cids.len(), stored.len());
    drop(bob);
}

/// The id of an existing user, found through the directory.
async fn session_user(chatd: &Chatd, name: &str) -> UserId {
    let (c, _e) = chatd.connect().await;
    c.login(name, PASSWORD, "lookup").await.expect("login").user
}

#[tokio::test]
async fn a_mongo_outage_answers_unavailable_and_service_resumes_without_restart() {
    let mut server = jongo();
    let port = server.port;
    let uri = store_uri(&server);
    let chatd = start_on(&uri).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    assert_eq!(chatd.http("GET", "/readyz").await.0, 200);

    server.stop();
    let r = timeout(
        T,
        alice
            .client
            .send(&bob.id(), "down-1", text("into the void")),
    )
    .await
    .expect("no hang");
    assert_eq!(server_code(r), ErrorCode::Unavailable);
    assert_eq!(
        chatd.http("GET", "/readyz").await.0,
        503,
        "not ready without its store"
    );
    assert_eq!(chatd.http("GET", "/healthz").await.0, 200, "but alive");
    alice
        .client
        .ping()
        .await
        .expect("the connection stays up through the outage");

    // jongodb keeps its data in memory, so the restarted server is empty;
    // a real mongod would have kept it. What matters here: the same chatd
    // process and the same connections serve again.
    let _server = Jongo::start(port).unwrap_or_else(|e| panic!("{e}"));
    timeout(T, async {
        while chatd.http("GET", "/readyz").await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("ready again once the store is back");
    let carol = chatd.user("carol").await;
    let sent = alice
        .client
        .send(&carol.id(), "up-1", text("back"))
        .await
        .expect("sends again");
    assert_eq!(sent.seq, 1);
}
