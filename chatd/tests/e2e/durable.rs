//! The durability scenarios every durable store of chatd passes, given
//! as a `--store` value: a restart, and SIGKILL in the middle of sends.
//! `mongo.rs` and `sqlite.rs` run them on their stores.

use super::*;
use std::collections::BTreeMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

async fn start(store: &str) -> Chatd {
    Chatd::start(&["--store", store]).await
}

/// SIGTERM, then wait for a clean exit.
pub(crate) async fn stop(mut chatd: Chatd) {
    chatd.terminate();
    let exit = timeout(T, chatd.child.wait())
        .await
        .expect("chatd exits")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

/// The id of an existing user.
pub(crate) async fn session_user(chatd: &Chatd, name: &str) -> UserId {
    let (c, _e) = chatd.connect().await;
    c.login(name, PASSWORD, "lookup").await.expect("login").user
}

/// Sends from `sender` to `to` on 16 tasks until `stop` says so or a
/// send fails; every acknowledged send lands in the returned map (seq ->
/// client id, message id). Returns once `at_least` are acknowledged, with
/// the tasks still running.
pub(crate) struct Burst {
    acked: Arc<Mutex<BTreeMap<u64, (String, chatcore_client::chatcore::model::MessageId)>>>,
    count: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Burst {
    pub(crate) async fn start(
        client: Arc<Client>,
        to: UserId,
        per_task: usize,
        at_least: usize,
    ) -> Burst {
        let acked = Arc::new(Mutex::new(BTreeMap::new()));
        let count = Arc::new(AtomicUsize::new(0));
        let tasks = (0..16)
            .map(|worker| {
                let (client, acked, count, to) =
                    (client.clone(), acked.clone(), count.clone(), to.clone());
                tokio::spawn(async move {
                    for i in 0..per_task {
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
        let burst = Burst {
            acked,
            count,
            tasks,
        };
        timeout(T, async {
            while burst.count.load(Ordering::SeqCst) < at_least {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("sends acknowledged");
        burst
    }

    pub(crate) fn acked(
        &self,
    ) -> BTreeMap<u64, (String, chatcore_client::chatcore::model::MessageId)> {
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) async fn finish(
        self,
    ) -> BTreeMap<u64, (String, chatcore_client::chatcore::model::MessageId)> {
        for task in self.tasks {
            timeout(T, task)
                .await
                .expect("sender ends")
                .expect("sender task");
        }
        self.acked.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The whole history of `conv` as `reader` sees it, checked gap-free and
/// holding each client id once.
pub(crate) async fn whole_history(
    reader: &Client,
    conv: &ConversationId,
) -> Vec<chatcore_client::chatcore::model::Message> {
    let mut stored = Vec::new();
    let mut before = None;
    loop {
        let page = reader.history(conv, before, Some(200)).await.unwrap();
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
        "gap-free"
    );
    let mut cids: Vec<&str> = stored.iter().map(|m| m.client_id.as_str()).collect();
    cids.sort_unstable();
    cids.dedup();
    assert_eq!(cids.len(), stored.len(), "each client id once");
    stored
}

/// A restart on the store `store` (a `--store` value) keeps accounts,
/// sessions, device cursors, unique keys and the history, whose seqs go on.
pub(crate) async fn a_restart_keeps_everything(store: &str) {
    let chatd = start(store).await;
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

    let chatd = start(store).await;
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

/// SIGKILL in the middle of 16 concurrent senders, then a restart on the
/// same store: every acknowledged message is there once, at its seq, and
/// the history is gap-free.
pub(crate) async fn every_send_acknowledged_before_sigkill_survives(store: &str) {
    let mut chatd = start(store).await;
    let alice = chatd.user("alice").await;
    let bob = chatd.user("bob").await;
    let bob_id = bob.id();
    let burst = Burst::start(Arc::new(alice.client), bob_id.clone(), 25, 60).await;
    chatd.child.start_kill().expect("SIGKILL");
    let _ = chatd.child.wait().await;
    let acked = burst.finish().await;
    assert!(
        acked.len() >= 60 && acked.len() < 400,
        "{} acknowledged",
        acked.len()
    );

    let chatd = start(store).await;
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
    let stored = whole_history(&reader, &conv).await;
    for (seq, (cid, id)) in &acked {
        let m = stored
            .iter()
            .find(|m| m.seq == *seq)
            .unwrap_or_else(|| panic!("acknowledged seq {seq} lost"));
        assert_eq!((&m.client_id, &m.id), (cid, id), "seq {seq}");
    }
    drop(bob);
}
