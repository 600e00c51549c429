//! The core layer's error, and its one mapping onto wire error frames.

use crate::protocol::{ErrorCode, ServerFrame};
use crate::store::StoreError;

/// Why a request failed. Converted to an `error` frame by [`CoreError::to_frame`],
/// the single place where internal errors meet the wire: internal details are
/// logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// Not signed in, or wrong credentials or token.
    #[error("{0}")]
    Unauthenticated(String),
    /// Not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// A unique field is taken.
    #[error("{field} is already taken")]
    Conflict {
        /// The field.
        field: String,
    },
    /// The password breaks rules.
    #[error("password too weak: {message}")]
    WeakPassword {
        /// Rule codes.
        violations: Vec<String>,
        /// Explanation.
        message: String,
    },
    /// Too many attempts.
    #[error("too many attempts; retry in {retry_after_ms} ms")]
    RateLimited {
        /// Wait before retrying.
        retry_after_ms: u64,
    },
    /// A count limit is reached (connections of an account).
    #[error("{0}")]
    LimitReached(String),
    /// A value is too large.
    #[error("{message}")]
    TooLarge {
        /// The field.
        field: String,
        /// Explanation.
        message: String,
    },
    /// A value is malformed.
    #[error("{message}")]
    InvalidArgument {
        /// The field.
        field: String,
        /// Explanation.
        message: String,
    },
    /// The frame is not valid protocol.
    #[error("{0}")]
    InvalidFrame(String),
    /// The client's version is not spoken here.
    #[error(
        "protocol version {0} is not supported; this server speaks version {v}",
        v = crate::protocol::PROTOCOL_VERSION
    )]
    UnsupportedVersion(u32),
    /// A backend is down.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// A bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// `invalid_argument` on `field`, saying `message`.
pub(crate) fn invalid(field: &str, message: impl Into<String>) -> CoreError {
    CoreError::InvalidArgument {
        field: field.to_owned(),
        message: message.into(),
    }
}

impl From<StoreError> for CoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { field } => CoreError::Conflict { field },
            StoreError::NotFound => CoreError::NotFound("not found".into()),
            StoreError::NotMember => {
                CoreError::Forbidden("you are not a member of this conversation".into())
            }
            StoreError::Blocked => CoreError::Forbidden(crate::contacts::REFUSED.into()),
            StoreError::NotAccepted => {
                CoreError::Forbidden("accept the message request first".into())
            }
            StoreError::Encrypted => CoreError::InvalidArgument {
                field: "content".into(),
                message: "this conversation is end-to-end encrypted: send encrypted content".into(),
            },
            StoreError::Unavailable(m) => CoreError::Unavailable(m),
            StoreError::Corrupt(m) => CoreError::Internal(format!("corrupt record: {m}")),
            StoreError::Incompatible(m) => CoreError::Internal(format!("incompatible store: {m}")),
            StoreError::TooLarge { max } => CoreError::TooLarge {
                field: "media".into(),
                message: format!("larger than {max} bytes"),
            },
            StoreError::Full => CoreError::LimitReached("no space left for media".into()),
            StoreError::Interrupted(m) => {
                invalid("media", format!("the upload was interrupted: {m}"))
            }
            StoreError::RangeNotSatisfiable { size } => invalid(
                "range",
                format!("the range is outside the media's {size} bytes"),
            ),
        }
    }
}

impl CoreError {
    /// The wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            CoreError::Unauthenticated(_) => ErrorCode::Unauthenticated,
            CoreError::Forbidden(_) => ErrorCode::Forbidden,
            CoreError::NotFound(_) => ErrorCode::NotFound,
            CoreError::Conflict { .. } => ErrorCode::Conflict,
            CoreError::WeakPassword { .. } => ErrorCode::WeakPassword,
            CoreError::RateLimited { .. } => ErrorCode::RateLimited,
            CoreError::LimitReached(_) => ErrorCode::LimitReached,
            CoreError::TooLarge { .. } => ErrorCode::TooLarge,
            CoreError::InvalidArgument { .. } => ErrorCode::InvalidArgument,
            CoreError::InvalidFrame(_) => ErrorCode::InvalidFrame,
            CoreError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            CoreError::Unavailable(_) => ErrorCode::Unavailable,
            CoreError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The `error` frame answering request `id`. Backend and internal
    /// details are replaced by a generic message (and should be logged by
    /// the caller).
    pub fn to_frame(&self, id: Option<u32>) -> ServerFrame {
        let (field, violations, retry_after_ms) = match self {
            CoreError::Conflict { field }
            | CoreError::TooLarge { field, .. }
            | CoreError::InvalidArgument { field, .. } => (Some(field.clone()), Vec::new(), None),
            CoreError::WeakPassword { violations, .. } => {
                (Some("password".to_owned()), violations.clone(), None)
            }
            CoreError::RateLimited { retry_after_ms } => (None, Vec::new(), Some(*retry_after_ms)),
            _ => (None, Vec::new(), None),
        };
        let message = match self {
            CoreError::Unavailable(_) => {
                "the service is temporarily unavailable; retry later".to_owned()
            }
            CoreError::Internal(_) => "internal server error".to_owned(),
            other => other.to_string(),
        };
        ServerFrame::Error {
            id,
            code: self.code(),
            message,
            field,
            violations,
            retry_after_ms,
        }
    }
}
