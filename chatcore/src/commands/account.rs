//! register, login, resume, logout, change_password, reset_request, reset_confirm.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

use super::devices;
use crate::account::{
    normalize_device_name, normalize_display_name, normalize_email, normalize_phone,
    normalize_username, HashOutcome,
};
use crate::error::CoreError;
use crate::model::{DeviceId, UserId};
use crate::protocol::{KeyCountsInfo, ServerFrame};
use crate::request::{Caller, Out, SignIn, Who};
use crate::server::Server;
use crate::session::Disconnect;
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

/// Refuses with `rate_limited` if `key` used up its quota.
async fn throttle(s: &Server, key: &str, quota: Quota) -> Result<(), CoreError> {
    match s.backends.limiter.check(key, quota, s.now()).await? {
        Some(retry_after_ms) => Err(CoreError::RateLimited { retry_after_ms }),
        None => Ok(()),
    }
}

async fn record_attempt(s: &Server, key: &str, quota: Quota) -> Result<(), CoreError> {
    Ok(s.backends.limiter.record(key, quota, s.now()).await?)
}

/// The limiter key of the client's address for `what` (IPv6 per /64).
fn address_key(who: Who<'_>, what: &str) -> Option<String> {
    who.addr.map(|a| format!("{what}:addr:{a}"))
}

/// Counts one registration or reset request against the client address.
async fn throttle_signup(s: &Server, who: Who<'_>) -> Result<(), CoreError> {
    let quota = s.config.signup_per_address;
    if let Some(key) = address_key(who, "signup") {
        throttle(s, &key, quota).await?;
        record_attempt(s, &key, quota).await?;
    }
    Ok(())
}

/// Spends one registration from the service-wide budget.
async fn throttle_signup_globally(s: &Server) -> Result<(), CoreError> {
    let quota = s.config.signup_global;
    match s
        .backends
        .limiter
        .spend("signup:all", 1, quota, s.now())
        .await?
    {
        Some(retry_after_ms) => Err(CoreError::RateLimited { retry_after_ms }),
        None => Ok(()),
    }
}

/// Checks the rules for `password` (off the async workers: zxcvbn is CPU work).
async fn check_password(
    s: &Server,
    password: &str,
    username: &str,
    email: &str,
) -> Result<(), CoreError> {
    let policy = s.config.password_policy.clone();
    let (pw, user, mail) = (password.to_owned(), username.to_owned(), email.to_owned());
    let (violations, message) = s
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

/// Takes one of `user`'s connection slots for the asking connection, before
/// a session is created for it (so that a refused sign-in leaves no device
/// behind). Over the cap: `limit_reached`, and the connection closes (4029).
/// The cap holds across nodes where the presence store counts connections
/// across them (Redis): sign-ins racing each other on several nodes may
/// pass it by at most one per node.
async fn reserve_account_slot(
    s: &Server,
    who: Who<'_>,
    out: &mut Out,
    user: &UserId,
) -> Result<(), CoreError> {
    let everywhere = s.backends.presence.connections(user).await?;
    if everywhere.is_none_or(|n| n < s.config.max_connections_per_user)
        && s.admission.sign_in(who.addr, user)
    {
        return Ok(());
    }
    out.close = Some(Disconnect::TooManyForAccount);
    Err(CoreError::LimitReached(format!(
        "this account has {} connections open, the most it may; close one and retry",
        s.config.max_connections_per_user
    )))
}

/// Creates a session for `user` on a new device and answers with the
/// token; the connection signs in ([`Out::sign_in`]).
async fn open_session(
    s: &Server,
    who: Who<'_>,
    out: &mut Out,
    id: u32,
    user: UserRecord,
    device_name: String,
) -> Result<ServerFrame, CoreError> {
    reserve_account_slot(s, who, out, &user.id).await?;
    let (token, token_hash) = new_token();
    let now = s.now();
    let expires_at = now.saturating_add(millis(s.config.session_ttl));
    let device = DeviceId::generate();
    let created = s
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
        .await;
    if let Err(e) = created {
        s.admission.sign_in_failed(who.addr, &user.id);
        return Err(e.into());
    }
    out.sign_in = Some(SignIn {
        user: user.id.clone(),
        device: device.clone(),
        token_hash,
    });
    // The user's other devices list this one now; nobody else can encrypt
    // to it before it uploads keys, so nobody else is told yet.
    devices::changed(s, out, &user.id, who.conn.cloned(), false).await?;
    Ok(ServerFrame::Session {
        id,
        user: user.id.clone(),
        device,
        token: Some(token),
        expires_at,
        profile: Box::new(user.profile()),
        privacy: user.privacy,
        // A new device has no keys yet.
        keys: KeyCountsInfo::default(),
    })
}

/// The fields of `register`.
pub(crate) struct Registration {
    pub(crate) username: String,
    pub(crate) email: String,
    pub(crate) phone: String,
    pub(crate) display_name: String,
    pub(crate) password: String,
    pub(crate) device: String,
}

pub(crate) async fn register(
    s: &Server,
    who: Who<'_>,
    out: &mut Out,
    id: u32,
    form: Registration,
) -> Result<ServerFrame, CoreError> {
    let (username, username_key) = normalize_username(&form.username)?;
    let (email, email_key) = normalize_email(&form.email)?;
    let phone = normalize_phone(&form.phone)?;
    let display_name = normalize_display_name(&form.display_name)?;
    let device = normalize_device_name(&form.device)?;
    check_password(s, &form.password, &username, &email).await?;
    throttle_signup(s, who).await?;
    throttle_signup_globally(s).await?;
    let users = &s.backends.users;
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
    let hash = s.hasher.hash(form.password).await?;
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
            s.now(),
        ))
        .await?;
    tracing::info!(user = %user.id, "registered");
    // Published only if the sign-in below succeeds (events of a failed
    // request are dropped).
    super::directory::announce_new_user(out, &user);
    open_session(s, who, out, id, user, device).await
}

pub(crate) async fn login(
    s: &Server,
    who: Who<'_>,
    out: &mut Out,
    id: u32,
    login: String,
    password: String,
    device: String,
) -> Result<ServerFrame, CoreError> {
    let device = normalize_device_name(&device)?;
    let key = crate::account::search_key(&login);
    let (acct_quota, addr_quota) = (s.config.login_per_account, s.config.login_per_address);
    let addr_key = address_key(who, "login");
    if let Some(k) = &addr_key {
        throttle(s, k, addr_quota).await?;
    }
    let users = &s.backends.users;
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
    throttle(s, &account_key, acct_quota).await?;
    let outcome = s
        .hasher
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await?;
    let (user, rehash) = match (user, outcome) {
        (Some(user), HashOutcome::Match { rehash }) => (user, rehash),
        _ => {
            record_attempt(s, &account_key, acct_quota).await?;
            if let Some(k) = &addr_key {
                record_attempt(s, k, addr_quota).await?;
            }
            return Err(CoreError::Unauthenticated(
                "wrong username, email or password".into(),
            ));
        }
    };
    s.backends.limiter.clear(&account_key).await?;
    if let Some(hash) = rehash {
        // Best effort: the login succeeds even if the upgrade is not stored.
        if let Err(e) = s.backends.users.set_password_hash(&user.id, &hash).await {
            tracing::warn!(user = %user.id, error = %e, "password rehash not stored");
        }
    }
    open_session(s, who, out, id, user, device).await
}

pub(crate) async fn resume(
    s: &Server,
    who: Who<'_>,
    out: &mut Out,
    id: u32,
    token: String,
) -> Result<ServerFrame, CoreError> {
    let hash = hash_token(&token);
    let now = s.now();
    let sessions = &s.backends.sessions;
    let Some(session) = sessions.get(&hash, now).await? else {
        return Err(CoreError::Unauthenticated(
            "the session has expired or was revoked; sign in again".into(),
        ));
    };
    let Some(user) = s.backends.users.get(&session.user).await? else {
        return Err(CoreError::Unauthenticated(
            "the account no longer exists".into(),
        ));
    };
    let expires_at = now.saturating_add(millis(s.config.session_ttl));
    reserve_account_slot(s, who, out, &user.id).await?;
    if let Err(e) = sessions.extend(&hash, now, expires_at).await {
        s.admission.sign_in_failed(who.addr, &user.id);
        return Err(e.into());
    }
    let keys = s.backends.keys.counts(&user.id, &session.device).await;
    let keys = match keys {
        Ok(k) => super::keys::counts_info(k),
        Err(e) => {
            s.admission.sign_in_failed(who.addr, &user.id);
            return Err(e.into());
        }
    };
    out.sign_in = Some(SignIn {
        user: user.id.clone(),
        device: session.device.clone(),
        token_hash: hash,
    });
    Ok(ServerFrame::Session {
        id,
        user: user.id.clone(),
        device: session.device,
        token: None,
        expires_at,
        profile: Box::new(user.profile()),
        privacy: user.privacy,
        keys,
    })
}

pub(crate) async fn logout(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
) -> Result<ServerFrame, CoreError> {
    let (user, device) = (&caller.user, &caller.device);
    // A sign-in is a device: logging out ends it, sessions first (what
    // matters most), then what others would go on sending it. Each step
    // may be retried: a logout that failed half-way is asked again.
    s.backends.sessions.revoke_device(user, device).await?;
    devices::forget(s, user, std::slice::from_ref(device)).await?;
    // Other connections that resumed the same token close too (4001);
    // this one closes normally after the reply.
    revoked(out, user, Revocation::Device(device.clone()));
    devices::changed(s, out, user, Some(caller.conn.clone()), true).await?;
    out.close = Some(Disconnect::LoggedOut);
    Ok(ServerFrame::Ok { id })
}

pub(crate) async fn change_password(
    s: &Server,
    caller: &Caller,
    out: &mut Out,
    id: u32,
    old: String,
    new: String,
) -> Result<ServerFrame, CoreError> {
    let user_id = &caller.user;
    let account_key = format!("password:{user_id}");
    let quota = s.config.login_per_account;
    throttle(s, &account_key, quota).await?;
    let user = s
        .backends
        .users
        .get(user_id)
        .await?
        .ok_or_else(|| CoreError::Unauthenticated("the account no longer exists".into()))?;
    match s
        .hasher
        .verify(old, Some(user.password_hash.clone()))
        .await?
    {
        HashOutcome::Match { .. } => {}
        HashOutcome::Mismatch => {
            record_attempt(s, &account_key, quota).await?;
            return Err(CoreError::Unauthenticated(
                "the current password is wrong".into(),
            ));
        }
    }
    check_password(s, &new, &user.username, &user.email).await?;
    let hash = s.hasher.hash(new).await?;
    s.backends.users.set_password_hash(user_id, &hash).await?;
    // A reset link mailed before the change must not undo it.
    s.backends.resets.revoke_user(user_id).await?;
    let mut ended = devices::known(s, user_id, s.now()).await?;
    ended.remove(&caller.device);
    s.backends
        .sessions
        .revoke_all(user_id, Some(&caller.token_hash))
        .await?;
    let ended: Vec<DeviceId> = ended.into_iter().collect();
    devices::forget(s, user_id, &ended).await?;
    revoked(
        out,
        user_id,
        Revocation::AllDevicesExcept(caller.device.clone()),
    );
    if !ended.is_empty() {
        devices::changed(s, out, user_id, Some(caller.conn.clone()), true).await?;
    }
    Ok(ServerFrame::Ok { id })
}

/// Closes the revoked connections of `user`, on every node.
fn revoked(out: &mut Out, user: &UserId, which: Revocation) {
    out.publish(Topic::User(user.clone()), Event::Revoked(which));
}

/// Always answers `ok`, at once: whether the account exists, and whether
/// mail could be sent, must not show in the reply or its timing. The work
/// happens in a background task.
pub(crate) async fn reset_request(
    s: &Arc<Server>,
    who: Who<'_>,
    id: u32,
    email: String,
) -> Result<ServerFrame, CoreError> {
    let (_, email_key) = normalize_email(&email)?;
    throttle_signup(s, who).await?;
    let server = s.clone();
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
    s: &Server,
    _who: Who<'_>,
    out: &mut Out,
    id: u32,
    token: String,
    new_password: String,
) -> Result<ServerFrame, CoreError> {
    let hash = hash_token(&token);
    let invalid = || CoreError::NotFound("the reset link is invalid, used or expired".into());
    let resets = &s.backends.resets;
    let user_id = resets.get(&hash, s.now()).await?.ok_or_else(invalid)?;
    let user = s.backends.users.get(&user_id).await?.ok_or_else(invalid)?;
    // Rules first: a weak choice must not burn the token.
    check_password(s, &new_password, &user.username, &user.email).await?;
    let new_hash = s.hasher.hash(new_password).await?;
    if resets.take(&hash, s.now()).await?.as_ref() != Some(&user_id) {
        return Err(invalid());
    }
    s.backends
        .users
        .set_password_hash(&user_id, &new_hash)
        .await?;
    // Used once, every other link of the account is void too (OWASP).
    resets.revoke_user(&user_id).await?;
    let ended: Vec<DeviceId> = devices::known(s, &user_id, s.now())
        .await?
        .into_iter()
        .collect();
    s.backends.sessions.revoke_all(&user_id, None).await?;
    devices::forget(s, &user_id, &ended).await?;
    revoked(out, &user_id, Revocation::AllDevices);
    if !ended.is_empty() {
        devices::changed(s, out, &user_id, None, true).await?;
    }
    Ok(ServerFrame::Ok { id })
}
