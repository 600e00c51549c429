//! Safety numbers: what two users compare (in person or on a call) to know
//! that no one sits between them. Made from the users' master keys, so a
//! new device does not change it, in the form of Signal's: 60 digits in 12
//! groups of 5, each user's half 30 digits from 5200 rounds of SHA-512
//! over version, master key and user id, the two halves in sorted order so
//! both sides read the same number.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chatcore::model::UserId;
use ring::digest::{digest, SHA512};

use super::{E2eError, Machine};

/// The version of the number's derivation, hashed in.
const VERSION: [u8; 2] = [0, 1];
/// Hash rounds per half (as Signal), to make a collision search costly.
const ROUNDS: usize = 5200;

/// The 30 digits of one user.
fn half(user: &UserId, master_key: &str) -> Result<String, E2eError> {
    let key = STANDARD_NO_PAD
        .decode(master_key)
        .ok()
        .filter(|k| k.len() == 32)
        .ok_or_else(|| E2eError::BadSignature("a master key is 32 bytes of base64".into()))?;
    let mut hash = digest(
        &SHA512,
        &[&VERSION[..], &key, user.as_str().as_bytes()].concat(),
    )
    .as_ref()
    .to_vec();
    for _ in 1..ROUNDS {
        hash = digest(&SHA512, &[hash.as_slice(), &key].concat())
            .as_ref()
            .to_vec();
    }
    // Six chunks of 5 bytes, each a number below 100000.
    Ok(hash[..30]
        .chunks(5)
        .map(|c| {
            let n = c.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
            format!("{:05}", n % 100_000)
        })
        .collect())
}

/// The safety number of two users from their master keys (base64): the
/// same whichever side computes it. 60 digits in 12 groups of 5, spaced.
pub fn safety_number(
    user_a: &UserId,
    master_a: &str,
    user_b: &UserId,
    master_b: &str,
) -> Result<String, E2eError> {
    let (a, b) = (half(user_a, master_a)?, half(user_b, master_b)?);
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let digits = lo + &hi;
    Ok(digits
        .as_bytes()
        .chunks(5)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" "))
}

impl Machine {
    /// The safety number of this user and `other`, from the master keys
    /// this device pinned. Fails while either master key is unknown.
    pub fn safety_number(&self, other: &UserId) -> Result<String, E2eError> {
        let missing =
            |user: &UserId| E2eError::Refused(format!("the master key of {user} is not known yet"));
        let mine = self
            .master_key(&self.user)
            .ok_or_else(|| missing(&self.user))?;
        let theirs = self.master_key(other).ok_or_else(|| missing(other))?;
        safety_number(&self.user, &mine, other, &theirs)
    }
}
