//! Bulk accounts for load testing: the operator path behind chatd's
//! `--load-test-accounts`. Never part of a production deployment.
//!
//! Registering a hundred thousand users through the protocol would cost a
//! hundred thousand argon2 hashes at production cost (hours on one core).
//! Load tests need the accounts, not the hashes: every account made here
//! shares one hash of the same password, computed once at the configured
//! cost, and gets one session whose token the load generator then resumes
//! with, one connection per token, exactly as a real client does.

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
pub async fn load_test_accounts(
    server: &Server,
    prefix: &str,
    n: usize,
    password: &str,
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
                UserId::generate(),
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
}
