//! Bulk accounts for load testing: the operator path behind chatd's
//! `--load-test-accounts`. Never part of a production deployment.
//!
//! Registering a hundred thousand users through the protocol would cost a
//! hundred thousand argon2 hashes at production cost (hours on one core).
//! Load tests need the accounts, not the hashes: every account made here
//! shares one hash of the same password, computed once at the configured
//! cost, and gets one session whose token the load generator then resumes
//! with, one connection per token, exactly as a real client does.
//!
//! Several nodes on one Redis, each on its own memory store, need the same
//! users (the same ids) to route between them: with a seed, every node
//! derives each user's id from the seed and the index
//! ([`seeded_user_id`]), while tokens stay random per node.

use crate::commands::account::new_token;
use crate::error::CoreError;
use crate::model::{DeviceId, UserId};
use crate::server::Server;
use crate::store::{NewUser, SessionRecord};

/// One account made by [`load_test_accounts`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LoadTestAccount {
    /// `<prefix><index>`, also the sign-in name.
    pub username: String,
    /// The user's id.
    pub user: UserId,
    /// A session token of a device of the user (for `resume`).
    pub token: String,
}

/// Creates `n` accounts named `<prefix>0 .. <prefix>{n-1}`, all with
/// `password` (hashed once, at the server's argon2 cost) and one session
/// each. Emails are `<name>@load.test`, phones `+1555<index>` padded.
/// Fails with `conflict` if a name is taken: provision into a fresh store.
/// User ids are fresh ones ([`UserId::generate`]).
pub async fn load_test_accounts(
    server: &Server,
    prefix: &str,
    n: usize,
    password: &str,
) -> Result<Vec<LoadTestAccount>, CoreError> {
    load_test_accounts_seeded(server, prefix, n, password, None).await
}

/// [`load_test_accounts`], with each user id derived from `seed` and the
/// account's index ([`seeded_user_id`]) when a seed is given: stores
/// provisioned with one seed hold the same users under the same ids (the
/// tokens are still random, each store's own).
pub async fn load_test_accounts_seeded(
    server: &Server,
    prefix: &str,
    n: usize,
    password: &str,
    seed: Option<u64>,
) -> Result<Vec<LoadTestAccount>, CoreError> {
    let hash = server.hasher.hash(password.to_owned()).await?;
    let now = server.now();
    let ttl = i64::try_from(server.config.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let username = format!("{prefix}{i}");
        let key = username.to_lowercase();
        let email = format!("{key}@load.test");
        let user = server
            .backends
            .users
            .create(NewUser::new(
                match seed {
                    Some(seed) => seeded_user_id(seed, i as u64),
                    None => UserId::generate(),
                },
                username.clone(),
                key,
                email.clone(),
                email,
                format!("+1555{i:08}"),
                username.clone(),
                hash.clone(),
                now,
            ))
            .await?;
        let (token, token_hash) = new_token();
        server
            .backends
            .sessions
            .create(SessionRecord::new(
                token_hash,
                user.id.clone(),
                DeviceId::generate(),
                "load test".to_owned(),
                now,
                now.saturating_add(ttl),
            ))
            .await?;
        out.push(LoadTestAccount {
            username,
            user: user.id,
            token,
        });
    }
    Ok(out)
}

/// The id of load-test user `index` under `seed`: the first 128 bits of
/// SHA-256 over a fixed label, the seed and the index, as a UUID of version
/// 8 (RFC 9562's custom layout: version and variant bits set, the rest from
/// the hash), hyphenated and lower case. The same shape as a generated id
/// (a UUIDv7), so the protocol and the stores take it alike; not time-ordered,
/// which nothing relies on.
pub fn seeded_user_id(seed: u64, index: u64) -> UserId {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(b"chatcore load-test user id\0");
    h.update(seed.to_be_bytes());
    h.update(index.to_be_bytes());
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let id = uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .encode_lower(&mut buf)
        .to_owned();
    UserId(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::Argon2Config;
    use crate::protocol::{ClientFrame, ServerFrame};
    use crate::server::{Backends, Config};
    use crate::session::{connect_in_process, PeerInfo};
    use futures_util::{SinkExt, StreamExt};

    #[tokio::test]
    async fn provisioned_accounts_resume_and_log_in() {
        let config = Config {
            argon2: Argon2Config::new(8, 1, 1),
            ..Config::default()
        };
        let server = Server::new(Backends::memory(), config).unwrap();
        let accounts = load_test_accounts(&server, "lt", 3, "a load test password")
            .await
            .unwrap();
        assert_eq!(accounts.len(), 3);
        assert_eq!(accounts[2].username, "lt2");
        let shutdown = tokio_util::sync::CancellationToken::new();
        for (i, frame) in [
            ClientFrame::Resume {
                id: 2,
                token: accounts[1].token.clone(),
            },
            ClientFrame::Login {
                id: 2,
                login: "lt0".into(),
                password: "a load test password".into(),
                device: "d".into(),
            },
        ]
        .into_iter()
        .enumerate()
        {
            let mut c =
                connect_in_process(server.clone(), PeerInfo::default(), 8, shutdown.clone());
            c.tx.send(Ok(ClientFrame::Hello {
                id: 1,
                version: 4,
                client: None,
            }))
            .await
            .unwrap();
            assert!(matches!(
                c.rx.next().await,
                Some(ServerFrame::Welcome { .. })
            ));
            c.tx.send(Ok(frame)).await.unwrap();
            match c.rx.next().await {
                Some(ServerFrame::Session { user, .. }) => {
                    assert_eq!(user, accounts[1 - i].user)
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert!(load_test_accounts(&server, "lt", 1, "x").await.is_err());
    }

    #[tokio::test]
    async fn a_seed_gives_the_same_ids_everywhere_and_another_seed_others() {
        let config = || Config {
            argon2: Argon2Config::new(8, 1, 1),
            ..Config::default()
        };
        let provision = |seed| async move {
            let server = Server::new(Backends::memory(), config()).unwrap();
            load_test_accounts_seeded(&server, "lt", 4, "a load test password", seed)
                .await
                .unwrap()
        };
        let (a, b) = (provision(Some(7)).await, provision(Some(7)).await);
        let other = provision(Some(8)).await;
        let unseeded = provision(None).await;
        for i in 0..4 {
            assert_eq!(a[i].user, b[i].user, "same seed, same id");
            assert_eq!(a[i].username, b[i].username);
            assert_ne!(a[i].token, b[i].token, "tokens stay each store's own");
            assert_ne!(a[i].user, other[i].user, "another seed, another id");
            assert_ne!(a[i].user, unseeded[i].user);
            // A canonical UUID, as generated ids are.
            let u = uuid::Uuid::try_parse(a[i].user.as_str()).unwrap();
            assert_eq!(u.hyphenated().to_string(), a[i].user.as_str());
            assert_eq!(u.get_version_num(), 8);
        }
        let ids: std::collections::HashSet<_> = a.iter().map(|x| &x.user).collect();
        assert_eq!(ids.len(), 4, "one id per index");
        assert_eq!(a[3].user, seeded_user_id(7, 3));
    }
}
