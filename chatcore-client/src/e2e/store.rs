//! The machine's whole state as bytes, encrypted at rest with a 32-byte
//! key that the application keeps (e.g. in the platform's keychain).
//!
//! Layout: `b"CCE2"`, a format byte (1), a 12-byte random nonce, then the
//! ChaCha20-Poly1305 ciphertext of a MessagePack map (named fields, schema
//! version inside) with the 5 header bytes as associated data. vodozemac's
//! own objects are kept as their JSON pickles (their documented form).

use chatcore::model::{ConversationId, DeviceId, MessageId, Millis, UserId};
use chatcore::protocol::DeviceRef;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use vodozemac::megolm::{
    GroupSession, GroupSessionPickle, InboundGroupSession, InboundGroupSessionPickle,
};
use vodozemac::olm::{Account, AccountPickle, Session, SessionPickle};
use vodozemac::Ed25519SecretKey;

use super::backup::BackupState;
use super::devices::{Devices, TrackedUser};
use super::megolm::{Inbound, InboundSource, MegolmState, Outbound, SessionRef};
use super::olm::{OlmState, ToDeviceIn};
use super::{account, E2eError, Machine};

const MAGIC: &[u8; 4] = b"CCE2";
const FORMAT: u8 = 1;
/// The schema of the MessagePack state; a newer one is refused.
const SCHEMA: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Pickle {
    schema: u32,
    user: UserId,
    device: DeviceId,
    account: String,
    identity_published: bool,
    master_secret: Option<String>,
    users: Vec<(UserId, TrackedUser)>,
    olm_sessions: Vec<(String, Vec<String>)>,
    processed: Vec<(UserId, DeviceId, String)>,
    deferred: Vec<ToDeviceIn>,
    claim_failed: Vec<(UserId, DeviceId, Millis)>,
    outbound: Vec<OutboundPickle>,
    inbound: Vec<InboundPickle>,
    waiting: Vec<SessionRef>,
    /// The adopted key backup; missing in states saved before backups
    /// existed, which read as no backup.
    #[serde(default)]
    backup: Option<BackupPickle>,
}

#[derive(Serialize, Deserialize)]
struct BackupPickle {
    version: String,
    public_key: String,
    /// Sessions in this version: creating user, device, session id, and
    /// the first index backed up.
    backed_up: Vec<(UserId, DeviceId, String, u32)>,
}

#[derive(Serialize, Deserialize)]
struct OutboundPickle {
    conv: ConversationId,
    session: String,
    created: Millis,
    shared_with: Vec<(UserId, DeviceId, u32)>,
    /// Absent in states saved before it was kept: every share counted as
    /// confirmed then.
    #[serde(default)]
    unconfirmed: Vec<(UserId, DeviceId)>,
}

#[derive(Serialize, Deserialize)]
struct InboundPickle {
    conv: ConversationId,
    session: String,
    source: InboundSource,
    #[serde(default)]
    seen: Vec<(u32, MessageId)>,
}

fn json<T: Serialize>(value: &T) -> Result<String, E2eError> {
    serde_json::to_string(value).map_err(|e| E2eError::StoreFormat(e.to_string()))
}

fn unjson<T: for<'de> Deserialize<'de>>(value: &str) -> Result<T, E2eError> {
    serde_json::from_str(value).map_err(|e| E2eError::StoreFormat(e.to_string()))
}

fn aead_key(key: &[u8; 32]) -> Result<LessSafeKey, E2eError> {
    UnboundKey::new(&CHACHA20_POLY1305, key)
        .map(LessSafeKey::new)
        .map_err(|_| E2eError::StoreDecrypt)
}

/// Encrypts `data` under the layout of the module documentation.
fn seal(key: &[u8; 32], mut data: Vec<u8>) -> Result<Vec<u8>, E2eError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| E2eError::Random)?;
    let mut out = Vec::with_capacity(5 + NONCE_LEN + data.len() + 16);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT);
    aead_key(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(&out[..5]),
            &mut data,
        )
        .map_err(|_| E2eError::StoreDecrypt)?;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&data);
    Ok(out)
}

impl Machine {
    /// The whole state, encrypted with `key`. Persist it after every call
    /// that changed the state (any `&mut self` method).
    pub fn to_bytes(&self, key: &[u8; 32]) -> Result<Vec<u8>, E2eError> {
        let pickle = Pickle {
            schema: SCHEMA,
            user: self.user.clone(),
            device: self.device.clone(),
            account: json(&self.account.account.pickle())?,
            identity_published: self.account.identity_published,
            master_secret: self.devices.master_secret.as_ref().map(|s| s.to_base64()),
            users: self
                .devices
                .users
                .iter()
                .map(|(u, t)| (u.clone(), t.clone()))
                .collect(),
            olm_sessions: self
                .olm
                .sessions
                .iter()
                .map(|(k, list)| {
                    let pickles = list
                        .iter()
                        .map(|s| json(&s.pickle()))
                        .collect::<Result<_, _>>()?;
                    Ok((k.clone(), pickles))
                })
                .collect::<Result<_, E2eError>>()?,
            processed: self.olm.processed.iter().cloned().collect(),
            deferred: self.olm.deferred.clone(),
            claim_failed: self
                .olm
                .claim_failed
                .iter()
                .map(|((u, d), t)| (u.clone(), d.clone(), *t))
                .collect(),
            outbound: self
                .megolm
                .outbound
                .iter()
                .map(|(conv, o)| {
                    Ok(OutboundPickle {
                        conv: conv.clone(),
                        session: json(&o.session.pickle())?,
                        created: o.created,
                        shared_with: o
                            .shared_with
                            .iter()
                            .map(|((u, d), i)| (u.clone(), d.clone(), *i))
                            .collect(),
                        unconfirmed: o.unconfirmed.iter().cloned().collect(),
                    })
                })
                .collect::<Result<_, E2eError>>()?,
            inbound: self
                .megolm
                .inbound
                .values()
                .map(|i| {
                    Ok(InboundPickle {
                        conv: i.conv.clone(),
                        session: json(&i.session.pickle())?,
                        source: i.source.clone(),
                        seen: i.seen.iter().map(|(n, m)| (*n, m.clone())).collect(),
                    })
                })
                .collect::<Result<_, E2eError>>()?,
            waiting: self.megolm.waiting.iter().cloned().collect(),
            backup: self.backup.as_ref().map(|b| BackupPickle {
                version: b.version.clone(),
                public_key: b.public_key.clone(),
                backed_up: b
                    .backed_up
                    .iter()
                    .map(|((u, d, s), i)| (u.clone(), d.clone(), s.clone(), *i))
                    .collect(),
            }),
        };
        let data =
            rmp_serde::to_vec_named(&pickle).map_err(|e| E2eError::StoreFormat(e.to_string()))?;
        seal(key, data)
    }

    /// The state written by [`Machine::to_bytes`]. A wrong key or altered
    /// bytes give [`E2eError::StoreDecrypt`]; state from a newer version
    /// [`E2eError::StoreTooNew`].
    pub fn from_bytes(bytes: &[u8], key: &[u8; 32]) -> Result<Self, E2eError> {
        if bytes.len() < 5 + NONCE_LEN || &bytes[..4] != MAGIC {
            return Err(E2eError::StoreFormat("not an end-to-end state".into()));
        }
        if bytes[4] != FORMAT {
            return Err(E2eError::StoreTooNew {
                found: u32::from(bytes[4]),
                supported: u32::from(FORMAT),
            });
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[5..5 + NONCE_LEN]);
        let mut data = bytes[5 + NONCE_LEN..].to_vec();
        let plain = aead_key(key)?
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&bytes[..5]),
                &mut data,
            )
            .map_err(|_| E2eError::StoreDecrypt)?;
        #[derive(Deserialize)]
        struct Schema {
            schema: u32,
        }
        let schema: Schema =
            rmp_serde::from_slice(plain).map_err(|e| E2eError::StoreFormat(e.to_string()))?;
        if schema.schema > SCHEMA {
            return Err(E2eError::StoreTooNew {
                found: schema.schema,
                supported: SCHEMA,
            });
        }
        let p: Pickle =
            rmp_serde::from_slice(plain).map_err(|e| E2eError::StoreFormat(e.to_string()))?;

        let account = Account::from_pickle(unjson::<AccountPickle>(&p.account)?);
        let master_secret = p
            .master_secret
            .map(|s| {
                Ed25519SecretKey::from_base64(&s).map_err(|e| E2eError::StoreFormat(e.to_string()))
            })
            .transpose()?;
        let mut olm = OlmState::default();
        for (peer, list) in p.olm_sessions {
            let sessions = list
                .iter()
                .map(|s| unjson::<SessionPickle>(s).map(Session::from_pickle))
                .collect::<Result<_, _>>()?;
            olm.sessions.insert(peer, sessions);
        }
        for key in p.processed {
            olm.remember(key);
        }
        olm.deferred = p.deferred;
        olm.claim_failed = p
            .claim_failed
            .into_iter()
            .map(|(u, d, t)| ((u, d), t))
            .collect();
        let mut megolm = MegolmState::default();
        for o in p.outbound {
            let session = GroupSession::from_pickle(unjson::<GroupSessionPickle>(&o.session)?);
            let shared_with = o
                .shared_with
                .into_iter()
                .map(|(u, d, i)| ((u, d), i))
                .collect();
            megolm.outbound.insert(
                o.conv,
                Outbound {
                    session,
                    created: o.created,
                    shared_with,
                    unconfirmed: o.unconfirmed.into_iter().collect(),
                },
            );
        }
        for i in p.inbound {
            let session =
                InboundGroupSession::from_pickle(unjson::<InboundGroupSessionPickle>(&i.session)?);
            let DeviceRef { user, device } = i.source.sender.clone();
            megolm.inbound.insert(
                (user, device, session.session_id()),
                Inbound {
                    session,
                    conv: i.conv,
                    source: i.source,
                    seen: i.seen.into_iter().collect(),
                },
            );
        }
        megolm.waiting = p.waiting.into_iter().collect();
        let backup = p.backup.map(|b| BackupState {
            version: b.version,
            public_key: b.public_key,
            backed_up: b
                .backed_up
                .into_iter()
                .map(|(u, d, s, i)| ((u, d, s), i))
                .collect(),
        });
        Ok(Self {
            user: p.user,
            device: p.device,
            account: account::AccountState {
                account,
                identity_published: p.identity_published,
            },
            devices: Devices {
                users: p.users.into_iter().collect(),
                master_secret,
            },
            olm,
            megolm,
            backup,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Newer {
        schema: u32,
        something: &'static str,
    }

    /// A state saved before key backups existed (no `backup` field) loads
    /// as one without a backup.
    #[test]
    fn a_state_without_backup_loads_as_no_backup() {
        let key = [5u8; 32];
        let m = Machine::new(UserId::from("u"), DeviceId::from("d"));
        let bytes = m.to_bytes(&key).unwrap();
        // Re-seal the same map without its `backup` field.
        let plain = {
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&bytes[5..5 + NONCE_LEN]);
            let mut data = bytes[5 + NONCE_LEN..].to_vec();
            aead_key(&key)
                .unwrap()
                .open_in_place(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(&bytes[..5]),
                    &mut data,
                )
                .unwrap()
                .to_vec()
        };
        let mut map: std::collections::BTreeMap<String, serde_json::Value> =
            rmp_serde::from_slice(&plain).unwrap();
        assert!(map.remove("backup").is_some(), "the state names its backup");
        let old = seal(&key, rmp_serde::to_vec_named(&map).unwrap()).unwrap();
        let loaded = Machine::from_bytes(&old, &key).unwrap();
        assert_eq!(loaded.backup_version(), None);
        assert_eq!(loaded.user(), &UserId::from("u"));
    }

    /// State from a newer version is refused with a clear error, and a
    /// sealed state of an unknown shape is a format error, not a panic.
    #[test]
    fn newer_or_foreign_state_is_refused() {
        let key = [3u8; 32];
        let newer = rmp_serde::to_vec_named(&Newer {
            schema: SCHEMA + 1,
            something: "x",
        })
        .unwrap();
        let sealed = seal(&key, newer).unwrap();
        assert!(matches!(
            Machine::from_bytes(&sealed, &key),
            Err(E2eError::StoreTooNew { found, supported: SCHEMA }) if found == SCHEMA + 1
        ));
        let same = rmp_serde::to_vec_named(&Newer {
            schema: SCHEMA,
            something: "x",
        })
        .unwrap();
        let sealed = seal(&key, same).unwrap();
        assert!(matches!(
            Machine::from_bytes(&sealed, &key),
            Err(E2eError::StoreFormat(_))
        ));
        let sealed = seal(&key, b"not msgpack at all".to_vec()).unwrap();
        assert!(matches!(
            Machine::from_bytes(&sealed, &key),
            Err(E2eError::StoreFormat(_))
        ));
        let message = E2eError::StoreTooNew {
            found: 2,
            supported: 1,
        }
        .to_string();
        assert!(message.contains("newer"), "{message}");
    }
}
