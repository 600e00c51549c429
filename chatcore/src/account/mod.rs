//! Account rules: normalisation of identifiers, the password policy, and
//! argon2id hashing off the async workers.

mod normalize;
mod password;

pub use normalize::{
    normalize_display_name, normalize_email, normalize_phone, normalize_username, search_key,
};
pub use password::{Argon2Config, HashOutcome, PasswordHasher, PasswordPolicy};
