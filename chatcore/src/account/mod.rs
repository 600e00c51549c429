//! Account rules: normalisation of identifiers, the password policy, and
//! argon2id hashing off the async workers.

mod normalize;
mod password;

pub use normalize::{
    normalize_about, normalize_avatar, normalize_device_name, normalize_display_name,
    normalize_email, normalize_phone, normalize_text, normalize_username, search_key,
};
pub use password::{Argon2Config, HashOutcome, PasswordHasher, PasswordPolicy};
