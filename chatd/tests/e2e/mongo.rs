//! chatd on the MongoDB store (chatcore-mongo) against a real MongoDB wire
//! server: jongodb, started per test so it can be stopped and restarted, or
//! the server named by `CHATCORE_MONGO_URI` for the tests that do not stop it.

use super::durable;
use super::*;
use chatcore_mongo::testing::Jongo;

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

#[tokio::test]
async fn a_restart_keeps_users_sessions_cursors_and_history() {
    let server = jongo();
    durable::a_restart_keeps_everything(&store_uri(&server)).await;
}

#[tokio::test]
async fn every_send_acknowledged_before_sigkill_is_in_the_history() {
    let server = jongo();
    durable::every_send_acknowledged_before_sigkill_survives(&store_uri(&server)).await;
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

/// The media sweep on MongoDB and its GridFS bucket.
#[tokio::test]
async fn the_sweep_keeps_an_avatar_and_collects_the_rest() {
    let server = jongo();
    let uri = store_uri(&server);
    super::media::the_sweep_keeps_an_avatar_and_collects_the_rest(&["--store", &uri]).await;
}
