//! register, login, resume, logout, change_password, reset_request, reset_confirm.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::time::Duration;

use crate::account::{
    normalize_device_name, normalize_display_name, normalize_email, normalize_phone,
    normalize_username, HashOutcome,
};
use crate::error::CoreError;
use crate::model::{DeviceId, UserId};
use crate::protocol::ServerFrame;
use crate::session::{Disconnect, Session};
use crate::store::{
    Event, Mail, NewUser, Quota, ResetToken, Revocation, SessionRecord, Topic, UserRecord,
};

/// A fresh 256-bit secret (base64url) and the hash under which it is stored.
pub(crate) fn new_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// Hex SHA-256 of a token: what stores keep instead of the token.
pub(crate) fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Session {
    /// Refuses with `rate_limited` if `key` used up its quota.
    async fn throttle(&self, key: &str, quota: Quota) -> Result<(), CoreError> {
        let now = self.server.now();
        match self.server.backends.limiter.check(key, quota, now).await? {
            Some(retry_after_ms) => Err(CoreError::RateLimited { retry_after_ms }),
            None => Ok(()),
        }
    }

    async fn record_attempt(&self, key: &str, quota: Quota) -> Result<(), CoreError> {
        let now = self.server.now();
        Ok(self.server.backends.limiter.record(key, quota, now).await?)
    }

    /// The limiter key of the client's address for `what` (IPv6 per /64).
    fn address_key(&self, what: &str) -> Option<String> {
        self.addr.map(|a| format!("{what}:addr:{a}"))
    }

    /// Counts one registration or reset request against the client address.
    async fn throttle_signup(&self) -> Result<(), CoreError> {
        let quota = self.server.config.signup_per_address;
        if let Some(key) = self.address_key("signup") {
            self.throttle(&key, quota).await?;
            self.record_attempt(&key, quota).await?;
        }
        Ok(())
    }

    /// Spends one registration from the service-wide budget.
    async fn throttle_signup_globally(&self) -> Result<(), CoreError> {
        let quota = self.server.config.signup_global;
        let now = self.server.now();
        match self
            .server
            .backends
            .limiter
            .spend("signup:all", 1, quota, now)
            .await?
        {
            Some(retry_after_ms) => Err(CoreError::RateLimited { retry_after_ms }),
            None => Ok(()),
        }
    }

    /// Checks the rules for `password` (off the async workers: zxcvbn is CPU work).
    async fn check_password(
        &self,
        password: &str,
        username: &str,
        email: &str,
    ) -> Result<(), CoreError> {
        let policy = self.server.config.password_policy.clone();
        let (pw, user, mail) = (password.to_owned(), username.to_owned(), email.to_owned());
        let (violations, message) = self
            .server
            .hasher
            .blocking(move || policy.violations(&pw, &user, &mail))
            .await?;
        if violations.is_empty() {
            Ok(())
        } else {
            Err(CoreError::WeakPassword {
                violations,
                message,
            })
        }
    }

    /// Creates a session for `user` on a new device, signs this connection in,
    /// and answers with the token.
    async fn open_session(
        &mut self,
        id: u32,
        user: UserRecord,
        device_name: String,
    ) -> Result<ServerFrame, CoreError> {
        self.reserve_account_slot(&user.id)?;
        let result = self.create_session(id, user, device_name).await;
        if result.is_err() {
            self.release_account_slot();
        }
        result
    }

    async fn create_session(
        &mut self,
        id: u32,
        user: UserRecord,
        device_name: String,
    ) -> Result<ServerFrame, CoreError> {
        let (token, token_hash) = new_token();
        let now = self.server.now();
        let expires_at = now.saturating_add(millis(self.server.config.session_ttl));
        let device = DeviceId::generate();
        self.server
            .backends
            .sessions
            .create(SessionRecord::new(
                token_hash.clone(),
                user.id.clone(),
                device.clone(),
                device_name,
                now,
                expires_at,
            ))
            .await?;
        self.sign_in(user.id.clone(), device.clone(), token_hash)
            .await?;
        Ok(ServerFrame::Session {
            id,
            user: user.id.clone(),
            device,
            token: Some(token),
            expires_at,
            profile: user.profile(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn register(
        &mut self,
        id: u32,
        username: String,
        email: String,
        phone: String,
        display_name: String,
        password: String,
        device: String,
    ) -> Result<ServerFrame, CoreError> {
        let (username, username_key) = normalize_username(&username)?;
        let (email, email_key) = normalize_email(&email)?;
        let phone = normalize_phone(&phone)?;
        let display_name = normalize_display_name(&display_name)?;
        let device = normalize_device_name(&device)?;
        self.check_password(&password, &username, &email).await?;
        self.throttle_signup().await?;
        self.throttle_signup_globally().await?;
        let users = &self.server.backends.users;
        // Cheap early answers; the store's unique keys are what really decide.
        if users.find_by_username(&username_key).await?.is_some() {
            return Err(CoreError::Conflict {
                field: "username".into(),
            });
        }
        if users.find_by_email(&email_key).await?.is_some() {
            return Err(CoreError::Conflict {
                field: "email".into(),
            });
        }
        let hash = self.server.hasher.hash(password).await?;
        let user = users
            .create(NewUser::new(
                UserId::generate(),
                username,
                username_key,
                email,
                email_key,
                phone,
                display_name,
                hash,
                self.server.now(),
            ))
            .await?;
        tracing::info!(user = %user.id, "registered");
        self.open_session(id, user, device).await
    }

    pub(crate) async fn login(
        &mut self,
        id: u32,
        login: String,
        password: String,
        device: String,
    ) -> Result<ServerFrame, CoreError> {
        let device = normalize_device_name(&device)?;
        let key = crate::account::search_key(&login);
        let cfg = &self.server.config;
        let (acct_quota, addr_quota) = (cfg.login_per_account, cfg.login_per_address);
        let addr_key = self.address_key("login");
        if let Some(k) = &addr_key {
            self.throttle(k, addr_quota).await?;
        }
        let users = &self.server.backends.users;
        let user = if key.contains('@') {
            users.find_by_email(&key).await?
        } else {
            users.find_by_username(&key).await?
        };
        // Failures count against the account, however it was named (its
        // username or its email), so naming it both ways gains no guesses;
        // an identifier that names no account counts on its own.
        let account_key = match &user {
            Some(u) => format!("login:acct:{}", u.id),
            None => format!("login:acct:?{key}"),
        };
        self.throttle(&account_key, acct_quota).await?;
        let outcome = self
            .server
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
            .await?;
        let (user, rehash) = match (user, outcome) {
            (Some(user), HashOutcome::Match { rehash }) => (user, rehash),
            _ => {
                self.record_attempt(&account_key, acct_quota).await?;
                if let Some(k) = &addr_key {
                    self.record_attempt(k, addr_quota).await?;
                }
                return Err(CoreError::Unauthenticated(
                    "wrong username, email or password".into(),
                ));
            }
        };
        self.server.backends.limiter.clear(&account_key).await?;
        if let Some(hash) = rehash {
            // Best effort: the login succeeds even if the upgrade is not stored.
            if let Err(e) = self
                .server
                .backends
                .users
                .set_password_hash(&user.id, &hash)
                .await
            {
                tracing::warn!(user = %user.id, error = %e, "password rehash not stored");
            }
        }
        self.open_session(id, user, device).await
    }

    pub(crate) async fn resume(
        &mut self,
        id: u32,
        token: String,
    ) -> Result<ServerFrame, CoreError> {
        let hash = hash_token(&token);
        let now = self.server.now();
        let sessions = self.server.backends.sessions.clone();
        let Some(session) = sessions.get(&hash, now).await? else {
            return Err(CoreError::Unauthenticated(
                "the session has expired or was revoked; sign in again".into(),
            ));
        };
        let Some(user) = self.server.backends.users.get(&session.user).await? else {
            return Err(CoreError::Unauthenticated(
                "the account no longer exists".into(),
            ));
        };
        let expires_at = now.saturating_add(millis(self.server.config.session_ttl));
        self.reserve_account_slot(&user.id)?;
        let signed_in = async {
            sessions.extend(&hash, expires_at).await?;
            self.sign_in(user.id.clone(), session.device.clone(), hash.clone())
                .await
        }
        .await;
        if let Err(e) = signed_in {
            self.release_account_slot();
            return Err(e);
        }
        // A logout between the lookup above and the subscription in
        // `sign_in` published its revocation before this connection could
        // hear it: look again now that it listens.
        if sessions.get(&hash, self.server.now()).await?.is_none() {
            self.close_after = Some(Disconnect::Revoked);
            return Err(CoreError::Unauthenticated(
                "the session was revoked; sign in again".into(),
            ));
        }
        Ok(ServerFrame::Session {
            id,
            user: user.id.clone(),
            device: session.device,
            token: None,
            expires_at,
            profile: user.profile(),
        })
    }

    pub(crate) async fn logout(&mut self, id: u32) -> Result<ServerFrame, CoreError> {
        let (user, device, hash) = {
            let a = self.auth()?;
            (a.user.clone(), a.device.clone(), a.token_hash.clone())
        };
        self.server.backends.sessions.revoke(&hash).await?;
        // Other connections that resumed the same token close too (4001);
        // this one closes normally after the reply.
        self.publish_revoked(&user, Revocation::Device(device))
            .await;
        self.close_after = Some(Disconnect::LoggedOut);
        Ok(ServerFrame::Ok { id })
    }

    pub(crate) async fn change_password(
        &mut self,
        id: u32,
        old: String,
        new: String,
    ) -> Result<ServerFrame, CoreError> {
        let (user_id, device, keep) = {
            let a = self.auth()?;
            (a.user.clone(), a.device.clone(), a.token_hash.clone())
        };
        let account_key = format!("password:{user_id}");
        let quota = self.server.config.login_per_account;
        self.throttle(&account_key, quota).await?;
        let user = self
            .server
            .backends
            .users
            .get(&user_id)
            .await?
            .ok_or_else(|| CoreError::Unauthenticated("the account no longer exists".into()))?;
        match self
            .server
            .hasher
            .verify(old, Some(user.password_hash.clone()))
            .await?
        {
            HashOutcome::Match { .. } => {}
            HashOutcome::Mismatch => {
                self.record_attempt(&account_key, quota).await?;
                return Err(CoreError::Unauthenticated(
                    "the current password is wrong".into(),
                ));
            }
        }
        self.check_password(&new, &user.username, &user.email)
            .await?;
        let hash = self.server.hasher.hash(new).await?;
        self.server
            .backends
            .users
            .set_password_hash(&user_id, &hash)
            .await?;
        // A reset link mailed before the change must not undo it.
        self.server.backends.resets.revoke_user(&user_id).await?;
        self.server
            .backends
            .sessions
            .revoke_all(&user_id, Some(&keep))
            .await?;
        self.publish_revoked(&user_id, Revocation::AllDevicesExcept(device))
            .await;
        Ok(ServerFrame::Ok { id })
    }

    /// Closes the revoked connections of `user`, on every node.
    async fn publish_revoked(&self, user: &UserId, which: Revocation) {
        let topic = Topic::User(user.clone());
        if let Err(e) = self
            .server
            .backends
            .broker
            .publish(&topic, Event::Revoked(which))
            .await
        {
            tracing::warn!(error = %e, "revocation publish failed; revoked sessions stay connected until they reconnect");
        }
    }

    /// Always answers `ok`, at once: whether the account exists, and whether
    /// mail could be sent, must not show in the reply or its timing. The work
    /// happens in a background task.
    pub(crate) async fn reset_request(
        &mut self,
        id: u32,
        email: String,
    ) -> Result<ServerFrame, CoreError> {
        let (_, email_key) = normalize_email(&email)?;
        self.throttle_signup().await?;
        let server = self.server.clone();
        tokio::spawn(async move {
            let result: Result<(), CoreError> = async {
                let Some(user) = server.backends.users.find_by_email(&email_key).await? else {
                    return Ok(());
                };
                let (token, hash) = new_token();
                let expires_at = server.now().saturating_add(millis(server.config.reset_ttl));
                server
                    .backends
                    .resets
                    .insert(ResetToken::new(hash, user.id.clone(), expires_at))
                    .await?;
                let minutes = server.config.reset_ttl.as_secs() / 60;
                let body = format!(
                    "Hello {name},\n\nSomeone (hopefully you) asked to reset the password of your account \"{username}\".\n\
                     Open this link within {minutes} minutes to choose a new one:\n\n{prefix}{token}\n\n\
                     Or enter this code: {token}\n\nIf it was not you, ignore this mail: nothing changes.\n",
                    name = user.display_name,
                    username = user.username,
                    prefix = server.config.reset_link_prefix,
                );
                server.backends.mailer.send(Mail::new(user.email.clone(), "Reset your password", body)).await?;
                Ok(())
            }
            .await;
            if let Err(e) = result {
                tracing::warn!(error = %e, "password reset mail not sent");
            }
        });
        Ok(ServerFrame::Ok { id })
    }

    pub(crate) async fn reset_confirm(
        &mut self,
        id: u32,
        token: String,
        new_password: String,
    ) -> Result<ServerFrame, CoreError> {
        let hash = hash_token(&token);
        let now = self.server.now();
        let invalid = || CoreError::NotFound("the reset link is invalid, used or expired".into());
        let resets = &self.server.backends.resets;
        let user_id = resets.get(&hash, now).await?.ok_or_else(invalid)?;
        let user = self
            .server
            .backends
            .users
            .get(&user_id)
            .await?
            .ok_or_else(invalid)?;
        // Rules first: a weak choice must not burn the token.
        self.check_password(&new_password, &user.username, &user.email)
            .await?;
        let new_hash = self.server.hasher.hash(new_password).await?;
        if resets.take(&hash, self.server.now()).await?.as_ref() != Some(&user_id) {
            return Err(invalid());
        }
        self.server
            .backends
            .users
            .set_password_hash(&user_id, &new_hash)
            .await?;
        // Used once, every other link of the account is void too (OWASP).
        self.server.backends.resets.revoke_user(&user_id).await?;
        self.server
            .backends
            .sessions
            .revoke_all(&user_id, None)
            .await?;
        self.publish_revoked(&user_id, Revocation::AllDevices).await;
        Ok(ServerFrame::Ok { id })
    }
}
