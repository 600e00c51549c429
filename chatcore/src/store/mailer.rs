use async_trait::async_trait;

use super::StoreResult;

/// An outgoing mail (plain text).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

impl Mail {
    /// A mail.
    pub fn new(to: impl Into<String>, subject: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            to: to.into(),
            subject: subject.into(),
            body: body.into(),
        }
    }
}

/// Sends mail (password resets).
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Hands the mail to the transport. `Unavailable` if it could not.
    async fn send(&self, mail: Mail) -> StoreResult<()>;
}
