//! The one error type: a Rust value on the host (so tests can look at it),
//! a JavaScript `Error` once it crosses into JavaScript.

use wasm_bindgen::JsValue;

/// What kind of failure an [`Error`] is; its `code` string in JavaScript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// An argument is out of range (a pickle key of the wrong length, a
    /// count too large, an unknown Olm message type): `invalid_argument`.
    InvalidArgument,
    /// A key is not base64 or not a valid key of its kind: `invalid_key`.
    InvalidKey,
    /// A message or signature does not decode: `invalid_message`.
    InvalidMessage,
    /// A message decodes but does not decrypt or authenticate (tampered,
    /// wrong session, replayed Olm message): `decrypt`.
    Decrypt,
    /// A Megolm message older than the first index this session knows:
    /// `unknown_index`; the error also carries `firstKnownIndex` and
    /// `messageIndex`.
    UnknownIndex,
    /// An Olm session could not be made (unknown one-time key, a
    /// pre-key message from another identity key): `session`.
    Session,
    /// A pickle does not load with this key: `pickle`.
    Pickle,
}

impl ErrorCode {
    /// The stable string JavaScript sees as `error.code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::InvalidKey => "invalid_key",
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::Decrypt => "decrypt",
            ErrorCode::UnknownIndex => "unknown_index",
            ErrorCode::Session => "session",
            ErrorCode::Pickle => "pickle",
        }
    }
}

/// A failure, thrown in JavaScript as an `Error` named `VodozemacError`
/// with a `code` ([`ErrorCode::as_str`]) and a message saying what failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    code: ErrorCode,
    message: String,
    /// For [`ErrorCode::UnknownIndex`]: (first known index, message index).
    indices: Option<(u32, u32)>,
}

impl Error {
    pub(crate) fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            indices: None,
        }
    }

    pub(crate) fn unknown_index(first_known: u32, index: u32) -> Self {
        Self {
            code: ErrorCode::UnknownIndex,
            message: format!(
                "the message has index {index}, before the first index this session knows ({first_known})"
            ),
            indices: Some((first_known, index)),
        }
    }

    /// What kind of failure it is.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The message, as `error.message` in JavaScript.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.as_str())
    }
}

impl std::error::Error for Error {}

impl From<Error> for JsValue {
    fn from(e: Error) -> JsValue {
        let error = js_sys::Error::new(&e.message);
        error.set_name("VodozemacError");
        let set = |key: &str, value: JsValue| {
            // Setting a property of a fresh Error object cannot fail; if it
            // did, the error would still carry its message.
            let _ = js_sys::Reflect::set(&error, &JsValue::from_str(key), &value);
        };
        set("code", JsValue::from_str(e.code.as_str()));
        if let Some((first_known, index)) = e.indices {
            set("firstKnownIndex", JsValue::from(first_known));
            set("messageIndex", JsValue::from(index));
        }
        error.into()
    }
}
