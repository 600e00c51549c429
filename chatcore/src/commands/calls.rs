//! Calls: `ice_servers`, the STUN and TURN servers a call may use, with
//! TURN credentials made for the caller.

use base64::Engine as _;

use crate::error::CoreError;
use crate::model::{Millis, UserId};
use crate::protocol::{IceServer, ServerFrame};
use crate::request::Caller;
use crate::server::{IceConfig, Server};

/// Whether `url` names a TURN server (which needs credentials).
pub(crate) fn is_turn(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

/// `ice_servers`.
pub(crate) async fn ice_servers(
    s: &Server,
    caller: &Caller,
    id: u32,
) -> Result<ServerFrame, CoreError> {
    let (servers, expires_at) = ice_for(&s.config.ice, &caller.user, s.now());
    Ok(ServerFrame::IceServers {
        id,
        servers,
        expires_at,
    })
}

/// The servers of `ice` for `user` at `now`: the STUN URLs as one server,
/// the TURN URLs as another with a credential that expires `turn_ttl_ms`
/// from now (whole seconds, rounded up), or none without a secret (a TURN
/// URL without credentials is refused by browsers).
pub(crate) fn ice_for(
    ice: &IceConfig,
    user: &UserId,
    now: Millis,
) -> (Vec<IceServer>, Option<Millis>) {
    let mut servers = Vec::new();
    let stun: Vec<String> = ice.urls.iter().filter(|u| !is_turn(u)).cloned().collect();
    if !stun.is_empty() {
        servers.push(IceServer {
            urls: stun,
            username: None,
            credential: None,
        });
    }
    let mut expires_at = None;
    let turn: Vec<String> = ice.urls.iter().filter(|u| is_turn(u)).cloned().collect();
    if let (Some(secret), false) = (&ice.turn_secret, turn.is_empty()) {
        let ttl = i64::try_from(ice.turn_ttl_ms).unwrap_or(i64::MAX);
        let expiry_secs = now.saturating_add(ttl).saturating_add(999).div_euclid(1000);
        let (username, credential) = turn_credential(secret.expose(), expiry_secs, user);
        servers.push(IceServer {
            urls: turn,
            username: Some(username),
            credential: Some(credential),
        });
        expires_at = Some(expiry_secs.saturating_mul(1000));
    }
    (servers, expires_at)
}

/// coturn's `use-auth-secret` credential: username `expiry:user` (expiry in
/// Unix seconds), password base64(HMAC-SHA1(secret, username)).
pub(crate) fn turn_credential(secret: &str, expiry_secs: i64, user: &UserId) -> (String, String) {
    let username = format!("{expiry_secs}:{user}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let tag = ring::hmac::sign(&key, username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
    (username, credential)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::TurnSecret;

    #[test]
    fn credential_matches_the_turn_rest_api() {
        // Python's base64.b64encode(hmac.new(b"north", b"1700000000:u",
        // hashlib.sha1).digest()); the real coturn checks it in chatd's tests.
        let user = UserId::from("u");
        let (name, pass) = turn_credential("north", 1_700_000_000, &user);
        assert_eq!(name, "1700000000:u");
        assert_eq!(pass, "S5t0cXb+5/BonfPqCeQ8Z01i5VE=");
    }

    #[test]
    fn stun_alone_without_a_secret_and_turn_with_one() {
        let user = UserId::from("u");
        let mut ice = IceConfig {
            urls: vec![
                "stun:stun.example:3478".into(),
                "turn:turn.example:3478?transport=udp".into(),
                "turns:turn.example:5349".into(),
            ],
            turn_secret: None,
            turn_ttl_ms: 3_600_500,
        };
        let (servers, expires) = ice_for(&ice, &user, 1_000);
        assert_eq!(servers.len(), 1, "no TURN without credentials: {servers:?}");
        assert_eq!(servers[0].urls, vec!["stun:stun.example:3478".to_owned()]);
        assert_eq!(expires, None);
        ice.turn_secret = Some(TurnSecret::new("north"));
        let (servers, expires) = ice_for(&ice, &user, 1_000);
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[1].urls.len(), 2);
        // 1 s + 3,600.5 s, rounded up to whole seconds.
        assert_eq!(servers[1].username.as_deref(), Some("3602:u"));
        assert_eq!(expires, Some(3_602_000));
        assert_eq!(
            format!("{:?}", ice.turn_secret),
            "Some(TurnSecret(<redacted>))"
        );
    }
}
