//! The encrypted key backup (docs/E2E.md, "Key backup"): a [`RecoveryKey`]
//! that the user keeps, a backup whose `auth_data` the user's master key
//! signed, the conversation keys encrypted to the backup's Curve25519 key
//! as [`BackupKeyInfo`]s, and the restore of a new device from them.
//!
//! Everything comes from the 32 bytes *R* of the recovery key with
//! HKDF-SHA-256 (no salt): the backup's Curve25519 secret key (info
//! `chatcore-backup-curve25519-v1`) and the AES-256-GCM key that seals the
//! master key (info `chatcore-backup-seal-v1`). Adding keys needs only the
//! backup's public key, so every device of the user backs up what it gets.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chatcore::e2e::verify;
use chatcore::model::{ConversationId, DeviceId, UserId};
use chatcore::protocol::{BackupInfo, BackupKeyInfo, DeviceRef};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf::{Salt, HKDF_SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use vodozemac::megolm::ExportedSessionKey;
use vodozemac::{Curve25519PublicKey, Curve25519SecretKey, Ed25519SecretKey};

use super::megolm::{InboundSource, NewKey};
use super::{malformed, DeviceTrust, E2eError, Machine, Received};

/// The algorithm of backups made here (`create_backup`'s `algorithm`).
pub const BACKUP_V1: &str = "chatcore.backup.v1";
/// Keys per `put_backup_keys` (the server's bound).
pub const BACKUP_KEYS_PER_PUT: usize = 1000;

const CURVE_INFO: &[u8] = b"chatcore-backup-curve25519-v1";
const SEAL_INFO: &[u8] = b"chatcore-backup-seal-v1";
const KEY_INFO: &[u8] = b"chatcore-backup-key-v1";
const KEY_VERSION: u8 = 0x01;
/// Crockford's base32 alphabet.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters of a recovery key: 34 bytes (version, R, parity) in base32.
const TEXT_CHARS: usize = 55;
const RAW_LEN: usize = 34;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;

/// The secret that opens a key backup: 32 random bytes, shown to the user
/// once as text ([`RecoveryKey::to_text`]) and typed back on a new device
/// ([`RecoveryKey::parse`]). Never printed by `Debug`.
#[derive(Clone)]
pub struct RecoveryKey([u8; 32]);

impl std::fmt::Debug for RecoveryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryKey(..)")
    }
}

impl Drop for RecoveryKey {
    fn drop(&mut self) {
        // Best effort without `unsafe`: black_box keeps the wipe.
        self.0 = [0; 32];
        std::hint::black_box(&self.0);
    }
}

impl RecoveryKey {
    /// A new random recovery key.
    pub fn generate() -> Result<Self, E2eError> {
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| E2eError::Random)?;
        Ok(Self(bytes))
    }

    /// The recovery key of these 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Its text form: 55 characters of Crockford base32 in 11 groups of 5
    /// separated by spaces, encoding `0x01 || R || parity` (the parity
    /// byte is the XOR of the 33 before it).
    pub fn to_text(&self) -> String {
        let mut raw = Vec::with_capacity(RAW_LEN);
        raw.push(KEY_VERSION);
        raw.extend_from_slice(&self.0);
        raw.push(parity(&raw));
        let chars = base32(&raw);
        let groups: Vec<&str> = chars
            .as_bytes()
            .chunks(5)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        groups.join(" ")
    }

    /// Reads a recovery key typed by the user: case, spaces and dashes do
    /// not matter, and Crockford's aliases are read (`O` as 0, `I` and `L`
    /// as 1). A wrong length, a foreign character or a wrong parity is
    /// [`E2eError::RecoveryKey`], before anything is tried with it.
    pub fn parse(text: &str) -> Result<Self, E2eError> {
        let mut values = Vec::with_capacity(TEXT_CHARS);
        for c in text.chars() {
            if c.is_whitespace() || c == '-' {
                continue;
            }
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            let Some(v) = ALPHABET.iter().position(|a| char::from(*a) == c) else {
                return Err(E2eError::RecoveryKey(format!(
                    "{c:?} is not a character of recovery keys"
                )));
            };
            values.push(v as u8);
        }
        if values.len() != TEXT_CHARS {
            return Err(E2eError::RecoveryKey(format!(
                "it has {} characters, not {TEXT_CHARS}",
                values.len()
            )));
        }
        let mut raw = Vec::with_capacity(RAW_LEN + 1);
        let (mut acc, mut bits) = (0u32, 0u32);
        for v in values {
            acc = (acc << 5) | u32::from(v);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                raw.push((acc >> bits) as u8);
                acc &= (1 << bits) - 1;
            }
        }
        // 275 bits: 34 bytes, then 3 bits that are always zero.
        if raw.len() != RAW_LEN || acc != 0 {
            return Err(E2eError::RecoveryKey(
                "it is mistyped: its last character is wrong".into(),
            ));
        }
        if raw[0] != KEY_VERSION {
            return Err(E2eError::RecoveryKey(
                "it is mistyped, or of an unknown version".into(),
            ));
        }
        if parity(&raw[..RAW_LEN - 1]) != raw[RAW_LEN - 1] {
            return Err(E2eError::RecoveryKey(
                "it is mistyped: its check does not match".into(),
            ));
        }
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(&raw[1..RAW_LEN - 1]);
        Ok(Self(bytes))
    }

    fn derive(&self, info: &[u8]) -> Result<[u8; 32], E2eError> {
        hkdf(&[], &self.0, info)
    }

    fn secret_key(&self) -> Result<Curve25519SecretKey, E2eError> {
        Ok(Curve25519SecretKey::from_slice(&self.derive(CURVE_INFO)?))
    }

    /// The backup's Curve25519 public key (unpadded base64) that this
    /// recovery key opens.
    pub fn public_key(&self) -> Result<String, E2eError> {
        Ok(Curve25519PublicKey::from(&self.secret_key()?).to_base64())
    }
}

fn parity(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0, |a, b| a ^ b)
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in bytes {
        acc = (acc << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((acc >> bits) & 31) as usize]));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((acc << (5 - bits)) & 31) as usize]));
    }
    out
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8]) -> Result<[u8; 32], E2eError> {
    let mut out = [0u8; 32];
    let info = [info];
    Salt::new(HKDF_SHA256, salt)
        .extract(ikm)
        .expand(&info, HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut out))
        .map_err(|_| E2eError::Refused("key derivation failed".into()))?;
    Ok(out)
}

fn gcm(key: &[u8; 32]) -> Result<LessSafeKey, E2eError> {
    UnboundKey::new(&AES_256_GCM, key)
        .map(LessSafeKey::new)
        .map_err(|_| E2eError::Refused("AES-256-GCM key refused".into()))
}

/// `nonce || ciphertext || tag`.
fn gcm_seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, E2eError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| E2eError::Random)?;
    let mut data = plain.to_vec();
    gcm(key)?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut data,
        )
        .map_err(|_| E2eError::Refused("AES-256-GCM failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&data);
    Ok(out)
}

/// Opens what [`gcm_seal`] made; `None` when it does not decrypt.
fn gcm_open(key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
    if sealed.len() < NONCE_LEN + TAG_LEN {
        return None;
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[..NONCE_LEN]);
    let mut data = sealed[NONCE_LEN..].to_vec();
    let plain = gcm(key)
        .ok()?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut data,
        )
        .ok()?;
    Some(plain.to_vec())
}

/// The text the master key signs to vouch for a backup's public key.
fn backup_key_text(user: &UserId, public_key: &str) -> String {
    format!("chatcore-backup-key-v1\n{user}\n{public_key}")
}

fn master_aad(user: &UserId) -> Vec<u8> {
    format!("chatcore-backup-master-v1\n{user}").into_bytes()
}

fn entry_aad(conv: &ConversationId, session: &str) -> Vec<u8> {
    format!("chatcore-backup-v1\n{conv}\n{session}").into_bytes()
}

/// The backup's description: `auth_data` is the unpadded base64 of this
/// MessagePack map.
#[derive(Serialize, Deserialize)]
struct AuthData {
    /// The backup's Curve25519 public key, unpadded base64.
    public_key: String,
    /// The master key's signature of [`backup_key_text`], unpadded base64.
    signature: String,
    /// The master key's 32 secret bytes sealed with the sealing key:
    /// nonce, then AES-256-GCM ciphertext and tag.
    #[serde(with = "serde_bytes")]
    sealed_master: Vec<u8>,
}

/// The plaintext of a backed-up key.
#[derive(Serialize, Deserialize)]
struct Entry {
    sender_user: UserId,
    sender_device: DeviceId,
    sender_key: String,
    /// The Megolm session exported at its first known index (base64).
    key: String,
}

/// A backup to create on the server with `create_backup`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBackup {
    /// [`BACKUP_V1`].
    pub algorithm: String,
    /// The signed public key and the sealed master key.
    pub auth_data: String,
}

/// Keys to upload with `put_backup_keys`, then to give to
/// [`Machine::mark_backed_up`] once the server took them.
#[derive(Clone, Debug)]
pub struct BackupBatch {
    /// The backup version they are for.
    pub version: String,
    /// The encrypted keys, at most the limit asked for.
    pub keys: Vec<BackupKeyInfo>,
    marks: Vec<(SessionKey, u32)>,
}

type SessionKey = (UserId, DeviceId, String);

/// The backup this device adds its keys to.
#[derive(Clone, Debug, Default)]
pub(super) struct BackupState {
    pub(super) version: String,
    pub(super) public_key: String,
    /// Sessions in this version, with the first index backed up.
    pub(super) backed_up: BTreeMap<SessionKey, u32>,
}

fn decode_auth_data(auth_data: &str) -> Result<AuthData, E2eError> {
    let bytes = STANDARD_NO_PAD
        .decode(auth_data)
        .map_err(|_| E2eError::Malformed("the backup's auth_data is not base64".into()))?;
    rmp_serde::from_slice(&bytes)
        .map_err(|e| E2eError::Malformed(format!("the backup's auth_data: {e}")))
}

fn open_entry(
    secret: &Curve25519SecretKey,
    public: &Curve25519PublicKey,
    key: &BackupKeyInfo,
) -> Result<Entry, E2eError> {
    let data = STANDARD_NO_PAD
        .decode(&key.data)
        .map_err(|_| E2eError::Malformed("the backed-up key is not base64".into()))?;
    if data.len() < KEY_LEN + NONCE_LEN + TAG_LEN {
        return Err(E2eError::Malformed("the backed-up key is too short".into()));
    }
    let ephemeral = Curve25519PublicKey::from_slice(&data[..KEY_LEN]).map_err(malformed)?;
    let shared = secret
        .diffie_hellman(&ephemeral)
        .ok_or_else(|| E2eError::Malformed("the backed-up key's ephemeral key is weak".into()))?;
    let mut salt = data[..KEY_LEN].to_vec();
    salt.extend_from_slice(public.as_bytes());
    let aead = hkdf(&salt, shared.as_bytes(), KEY_INFO)?;
    let plain = gcm_open(&aead, &entry_aad(&key.conv, &key.session), &data[KEY_LEN..]).ok_or_else(
        || {
            E2eError::Misbound(
                "the backed-up key does not decrypt for this conversation and session".into(),
            )
        },
    )?;
    rmp_serde::from_slice(&plain).map_err(malformed)
}

fn seal_entry(
    public: &Curve25519PublicKey,
    conv: &ConversationId,
    session: &str,
    plain: &[u8],
) -> Result<Vec<u8>, E2eError> {
    let ephemeral = Curve25519SecretKey::new();
    let ephemeral_public = Curve25519PublicKey::from(&ephemeral);
    let shared = ephemeral
        .diffie_hellman(public)
        .ok_or_else(|| E2eError::Refused("the backup's public key is weak".into()))?;
    let mut salt = ephemeral_public.to_bytes().to_vec();
    salt.extend_from_slice(public.as_bytes());
    let aead = hkdf(&salt, shared.as_bytes(), KEY_INFO)?;
    let mut out = ephemeral_public.to_bytes().to_vec();
    out.extend(gcm_seal(&aead, &entry_aad(conv, session), plain)?);
    Ok(out)
}

impl Machine {
    /// Describes a new backup opened by `recovery`: its public key signed
    /// by the user's master key, and the master key sealed with the
    /// recovery key. Create it on the server (`create_backup`), then
    /// [`Machine::adopt_backup`] the reply. Needs the master key here.
    pub fn create_backup(&self, recovery: &RecoveryKey) -> Result<NewBackup, E2eError> {
        let Some(master) = &self.devices.master_secret else {
            return Err(E2eError::NoMasterKey);
        };
        let public_key = recovery.public_key()?;
        let signature = master
            .sign(backup_key_text(&self.user, &public_key).as_bytes())
            .to_base64();
        let sealed_master = gcm_seal(
            &recovery.derive(SEAL_INFO)?,
            &master_aad(&self.user),
            master.to_bytes().as_slice(),
        )?;
        let auth = AuthData {
            public_key,
            signature,
            sealed_master,
        };
        let bytes = rmp_serde::to_vec_named(&auth).map_err(malformed)?;
        Ok(NewBackup {
            algorithm: BACKUP_V1.into(),
            auth_data: STANDARD_NO_PAD.encode(bytes),
        })
    }

    /// Checks a backup's `auth_data`: the algorithm is [`BACKUP_V1`] and
    /// the user's pinned master key signed its public key.
    fn check_backup(&self, backup: &BackupInfo) -> Result<AuthData, E2eError> {
        if backup.algorithm != BACKUP_V1 {
            return Err(E2eError::Unsupported(backup.algorithm.clone()));
        }
        let auth = decode_auth_data(&backup.auth_data)?;
        Curve25519PublicKey::from_base64(&auth.public_key).map_err(malformed)?;
        let Some(master) = self.master_key(&self.user) else {
            return Err(E2eError::BadSignature(
                "the user's master key is unknown: the backup cannot be checked".into(),
            ));
        };
        verify(
            &master,
            &backup_key_text(&self.user, &auth.public_key),
            &auth.signature,
        )
        .map_err(|_| {
            E2eError::BadSignature("the backup is not signed by the user's master key".into())
        })?;
        Ok(auth)
    }

    /// Follows `backup` (the server's current one): from now on
    /// [`Machine::backup_batch`] encrypts keys to it. Refused unless the
    /// user's pinned master key signed it (a server that swapped the key
    /// would read every later key). Adopting another version starts its
    /// key list afresh.
    pub fn adopt_backup(&mut self, backup: &BackupInfo) -> Result<(), E2eError> {
        let auth = self.check_backup(backup)?;
        let same = self
            .backup
            .as_ref()
            .is_some_and(|b| b.version == backup.version && b.public_key == auth.public_key);
        if !same {
            self.backup = Some(BackupState {
                version: backup.version.clone(),
                public_key: auth.public_key,
                backed_up: BTreeMap::new(),
            });
        }
        Ok(())
    }

    /// The version of the backup this device adds its keys to.
    pub fn backup_version(&self) -> Option<&str> {
        self.backup.as_ref().map(|b| b.version.as_str())
    }

    /// Stops adding keys to the backup (it is gone from the server).
    pub fn forget_backup(&mut self) {
        self.backup = None;
    }

    /// How many conversation keys are not yet in the adopted backup (0
    /// without one).
    pub fn keys_not_backed_up(&self) -> usize {
        let Some(state) = &self.backup else {
            return 0;
        };
        self.megolm
            .inbound
            .iter()
            .filter(|(k, i)| !is_backed_up(state, k, i.session.first_known_index()))
            .count()
    }

    /// Up to `limit` conversation keys not yet in the adopted backup,
    /// encrypted to it; `None` when there is none (or no backup). Upload
    /// them with `put_backup_keys`, then [`Machine::mark_backed_up`].
    pub fn backup_batch(&self, limit: usize) -> Result<Option<BackupBatch>, E2eError> {
        let Some(state) = &self.backup else {
            return Ok(None);
        };
        let public = Curve25519PublicKey::from_base64(&state.public_key).map_err(malformed)?;
        let mut keys = Vec::new();
        let mut marks = Vec::new();
        for (k, inbound) in &self.megolm.inbound {
            if keys.len() >= limit {
                break;
            }
            let first_index = inbound.session.first_known_index();
            if is_backed_up(state, k, first_index) {
                continue;
            }
            let (user, device, session) = k;
            let entry = Entry {
                sender_user: user.clone(),
                sender_device: device.clone(),
                sender_key: inbound.source.sender_key.clone(),
                key: inbound.session.export_at_first_known_index().to_base64(),
            };
            let plain = rmp_serde::to_vec_named(&entry).map_err(malformed)?;
            let data = seal_entry(&public, &inbound.conv, session, &plain)?;
            keys.push(BackupKeyInfo {
                conv: inbound.conv.clone(),
                session: session.clone(),
                first_index,
                forwarded: u32::from(inbound.source.forwarded),
                verified: self.device_trust(user, device) == DeviceTrust::Verified,
                data: STANDARD_NO_PAD.encode(data),
            });
            marks.push((k.clone(), first_index));
        }
        if keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(BackupBatch {
            version: state.version.clone(),
            keys,
            marks,
        }))
    }

    /// The server took `batch`: its keys count as backed up (unless the
    /// backup changed meanwhile).
    pub fn mark_backed_up(&mut self, batch: &BackupBatch) {
        if let Some(state) = &mut self.backup {
            if state.version == batch.version {
                for (k, index) in &batch.marks {
                    state.backed_up.insert(k.clone(), *index);
                }
            }
        }
    }

    /// Checks that `recovery` opens `backup` (its signature first): the
    /// backup's secret and public key.
    fn open_backup(
        &self,
        recovery: &RecoveryKey,
        backup: &BackupInfo,
    ) -> Result<(AuthData, Curve25519SecretKey, Curve25519PublicKey), E2eError> {
        let auth = self.check_backup(backup)?;
        let secret = recovery.secret_key()?;
        let public = Curve25519PublicKey::from(&secret);
        if public.to_base64() != auth.public_key {
            return Err(E2eError::WrongRecoveryKey);
        }
        Ok((auth, secret, public))
    }

    /// Imports keys of `backup` (pages of `get_backup_keys`) with the
    /// recovery key. Fails as a whole when the recovery key does not open
    /// the backup ([`E2eError::WrongRecoveryKey`]) or the backup is not
    /// signed by the user's master key; then one result per key, in order:
    /// a key that does not decrypt for its conversation and session, or
    /// whose session is another, is refused alone. Imported keys count as
    /// not from their sender (like forwarded ones); on
    /// [`Received::RoomKey`] with `waiting`, decrypt those messages again.
    pub fn restore_backup_keys(
        &mut self,
        recovery: &RecoveryKey,
        backup: &BackupInfo,
        keys: &[BackupKeyInfo],
    ) -> Result<Vec<Result<Received, E2eError>>, E2eError> {
        let (_, secret, public) = self.open_backup(recovery, backup)?;
        Ok(keys
            .iter()
            .map(|k| self.restore_one(&secret, &public, &backup.version, k))
            .collect())
    }

    fn restore_one(
        &mut self,
        secret: &Curve25519SecretKey,
        public: &Curve25519PublicKey,
        version: &str,
        key: &BackupKeyInfo,
    ) -> Result<Received, E2eError> {
        let entry = open_entry(secret, public, key)?;
        if let Some(d) = self.devices.get(&entry.sender_user, &entry.sender_device) {
            if d.agreement_key != entry.sender_key {
                return Err(E2eError::Misbound(
                    "the backed-up session's sender key is not its device's".into(),
                ));
            }
        }
        let exported = ExportedSessionKey::from_base64(&entry.key).map_err(malformed)?;
        let source = InboundSource {
            sender: DeviceRef {
                user: entry.sender_user.clone(),
                device: entry.sender_device.clone(),
            },
            sender_key: entry.sender_key,
            forwarded: true,
        };
        let received = self.add_inbound(
            key.conv.clone(),
            key.session.clone(),
            source,
            NewKey::Exported(&exported),
        )?;
        // What came from the current backup need not go back to it.
        let map_key = (entry.sender_user, entry.sender_device, key.session.clone());
        let first = self
            .megolm
            .inbound
            .get(&map_key)
            .map(|i| i.session.first_known_index());
        if let (Some(state), Some(first)) = (&mut self.backup, first) {
            if state.version == version && key.first_index <= first {
                state.backed_up.insert(map_key, first);
            }
        }
        Ok(received)
    }

    /// Takes the master key sealed in `backup` with the recovery key, so
    /// that this device can sign itself ([`Machine::sign_own_device`]) and
    /// the user's later devices. Accepted only when it is the user's pinned
    /// master key.
    pub fn unseal_master_key(
        &mut self,
        recovery: &RecoveryKey,
        backup: &BackupInfo,
    ) -> Result<(), E2eError> {
        let (auth, _, _) = self.open_backup(recovery, backup)?;
        let plain = gcm_open(
            &recovery.derive(SEAL_INFO)?,
            &master_aad(&self.user),
            &auth.sealed_master,
        )
        .ok_or(E2eError::WrongRecoveryKey)?;
        let bytes: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| E2eError::Malformed("the sealed master key is not 32 bytes".into()))?;
        let secret = Ed25519SecretKey::from_slice(&bytes);
        self.accept_master_secret(&secret.to_base64())
    }

    /// Signs this very device with the master key held here (after
    /// [`Machine::unseal_master_key`]): the signature to upload.
    pub fn sign_own_device(&mut self) -> Result<String, E2eError> {
        let own = self.own_device_info();
        self.sign_device(&own)
    }
}

fn is_backed_up(state: &BackupState, k: &SessionKey, first_index: u32) -> bool {
    state.backed_up.get(k).is_some_and(|b| *b <= first_index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base32_is_crockfords() {
        assert_eq!(base32(&[0xff]), "ZW");
        assert_eq!(base32(&[0, 0, 0, 0, 0]), "00000000");
        let key = RecoveryKey::from_bytes([0; 32]);
        let text = key.to_text();
        assert_eq!(text.len(), 55 + 10);
        assert!(text.starts_with("04000"), "{text}");
    }

    #[test]
    fn hkdf_without_salt_is_rfc5869() {
        // RFC 5869 test case 3 (no salt, no info): the first 32 bytes.
        let ikm = [0x0b; 22];
        let okm = hkdf(&[], &ikm, &[]).unwrap();
        let hex: String = okm.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        );
    }
}
