//! Run with: cargo run -p chatcore-examples --example custom_backend
//!
//! How to write your own backend: implement the store trait, plug it into
//! `Backends`, and hold it to the same conformance suite the built-in stores
//! pass. Here a `UserStore` that wraps another one and keeps an audit log of
//! sign-ups, and a `Mailer` that prints mail to the terminal.

use async_trait::async_trait;
use chatcore::memory::MemoryUserStore;
use chatcore::model::{MediaId, Privacy, UserId};
use chatcore::store::{
    Mail, Mailer, NewUser, ProfileUpdate, SearchQuery, StoreResult, UserRecord, UserStore,
};
use chatcore::Backends;
use std::sync::{Arc, Mutex};

/// A `UserStore` that delegates to `inner` and records every account created.
struct AuditedUsers<S> {
    inner: S,
    log: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl<S: UserStore> UserStore for AuditedUsers<S> {
    async fn create(&self, user: NewUser) -> StoreResult<UserRecord> {
        let created = self.inner.create(user).await?;
        if let Ok(mut log) = self.log.lock() {
            log.push(format!("created {} ({})", created.username, created.id));
        }
        Ok(created)
    }

    async fn get(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        self.inner.get(id).await
    }

    async fn find_by_username(&self, key: &str) -> StoreResult<Option<UserRecord>> {
        self.inner.find_by_username(key).await
    }

    async fn find_by_email(&self, key: &str) -> StoreResult<Option<UserRecord>> {
        self.inner.find_by_email(key).await
    }

    async fn search(&self, query: &SearchQuery) -> StoreResult<Vec<UserRecord>> {
        self.inner.search(query).await
    }

    async fn update_profile(&self, id: &UserId, update: &ProfileUpdate) -> StoreResult<UserRecord> {
        self.inner.update_profile(id, update).await
    }

    async fn set_password_hash(&self, id: &UserId, hash: &str) -> StoreResult<()> {
        self.inner.set_password_hash(id, hash).await
    }

    async fn set_privacy(&self, id: &UserId, privacy: &Privacy) -> StoreResult<UserRecord> {
        self.inner.set_privacy(id, privacy).await
    }

    async fn avatars_in_use(&self, ids: &[MediaId]) -> StoreResult<Vec<MediaId>> {
        self.inner.avatars_in_use(ids).await
    }
}

/// A mailer for development: prints every mail.
struct ConsoleMailer;

#[async_trait]
impl Mailer for ConsoleMailer {
    async fn send(&self, mail: Mail) -> StoreResult<()> {
        println!(
            "--- mail to {}: {}\n{}---",
            mail.to, mail.subject, mail.body
        );
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let log = Arc::new(Mutex::new(Vec::new()));

    // 1. Hold the new store to the conformance suite: fresh backends per case.
    let factory_log = log.clone();
    let factory = move || {
        let log = factory_log.clone();
        async move {
            let mut backends = Backends::memory_with_mailer(Arc::new(ConsoleMailer));
            backends.users = Arc::new(AuditedUsers {
                inner: MemoryUserStore::new(),
                log,
            });
            backends
        }
    };
    chatcore::testkit::conformance::run_all(&factory).await;
    println!("AuditedUsers passes the conformance suite");

    // 2. Serve with it.
    let backends = factory().await;
    let server =
        chatcore::Server::new(backends, chatcore::Config::default()).expect("server starts");
    server.ready().await.expect("stores answer");
    let entries = log.lock().map(|l| l.len()).unwrap_or(0);
    println!("audit log holds {entries} entries from the suite's sign-ups");
    assert!(entries > 0, "the wrapper saw the suite's creates");
}
