use serde::{Deserialize, Serialize};
use std::fmt;

/// The stable, machine-readable reason of an `error` frame.
///
/// Clients switch on these; the human `message` beside them may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame needs a signed-in session, or the credentials/token were wrong.
    Unauthenticated,
    /// Signed in, but not allowed to do this (e.g. read someone else's conversation).
    Forbidden,
    /// The user, conversation or token named does not exist.
    NotFound,
    /// A uniqueness rule was broken (username, email or phone taken); `field` names which.
    Conflict,
    /// The password breaks the rules; `violations` lists each broken rule.
    WeakPassword,
    /// Too many attempts; `retry_after_ms` says when to try again.
    RateLimited,
    /// A count limit is reached (connections of an account, later members
    /// of a group); waiting does not help, closing or removing something does.
    LimitReached,
    /// The frame or a field is larger than the server accepts.
    TooLarge,
    /// The bytes are not a frame of this protocol (bad encoding, unknown type or field).
    InvalidFrame,
    /// A well-formed frame with a bad value (malformed email, empty text, ...); `field` names it.
    InvalidArgument,
    /// The client's protocol version is not spoken by this server.
    UnsupportedVersion,
    /// A backend (store, broker, mailer) is down; retrying later may succeed.
    Unavailable,
    /// A bug on the server; details are in its log, never in the frame.
    Internal,
}

impl ErrorCode {
    /// The wire spelling of the code.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::LimitReached => "limit_reached",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::InvalidFrame => "invalid_frame",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }

    /// Every code, for metrics labels and documentation checks.
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::WeakPassword,
        ErrorCode::RateLimited,
        ErrorCode::LimitReached,
        ErrorCode::TooLarge,
        ErrorCode::InvalidFrame,
        ErrorCode::InvalidArgument,
        ErrorCode::UnsupportedVersion,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
