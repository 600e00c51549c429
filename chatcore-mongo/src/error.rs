//! The one place where driver errors become [`StoreError`]s.

use chatcore::store::StoreError;
use mongodb::error::{Error, ErrorKind, WriteFailure};

/// MongoDB's duplicate-key error code.
const DUPLICATE_KEY: i32 = 11000;

/// Server error codes that mean "not now" rather than "never": the node is
/// stepping down, shutting down, unreachable, or the write concern could not
/// be satisfied in time. Anything transient maps to `Unavailable`.
const TRANSIENT_CODES: &[i32] = &[
    6,     // HostUnreachable
    7,     // HostNotFound
    50,    // MaxTimeMSExpired
    64,    // WriteConcernFailed
    89,    // NetworkTimeout
    91,    // ShutdownInProgress
    189,   // PrimarySteppedDown
    262,   // ExceededTimeLimit
    9001,  // SocketException
    10107, // NotWritablePrimary
    11600, // InterruptedAtShutdown
    11602, // InterruptedDueToReplStateChange
    13435, // NotPrimaryNoSecondaryOk
    13436, // NotPrimaryOrSecondary
];

/// Converts a driver error:
/// - duplicate key (11000, as a write error or a command error) ->
///   `Conflict { field }`, the field read from the violated index's name
///   (see [`conflict_field`]);
/// - deserialisation of a stored document -> `Corrupt`;
/// - everything else, network, server selection, time-outs, elections,
///   write-concern failures and unexpected server answers -> `Unavailable`.
///   The last also covers configuration mistakes (authentication), which
///   retrying will not fix; they are logged at `error` level so an operator
///   sees them.
pub(crate) fn map_err(err: Error) -> StoreError {
    if let Some(message) = duplicate_key_message(&err) {
        return StoreError::Conflict {
            field: conflict_field(index_name(message)),
        };
    }
    match err.kind.as_ref() {
        ErrorKind::BsonDeserialization(e) => StoreError::Corrupt(e.to_string()),
        ErrorKind::BsonSerialization(e) => StoreError::Corrupt(e.to_string()),
        ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::ServerSelection { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Shutdown => StoreError::Unavailable(err.to_string()),
        ErrorKind::Command(c) if TRANSIENT_CODES.contains(&c.code) => {
            StoreError::Unavailable(err.to_string())
        }
        ErrorKind::Write(WriteFailure::WriteConcernError(_)) => {
            StoreError::Unavailable(err.to_string())
        }
        _ => {
            tracing::error!(error = %err, "unexpected MongoDB error");
            StoreError::Unavailable(err.to_string())
        }
    }
}

/// The server's message when `err` is a duplicate-key error.
fn duplicate_key_message(err: &Error) -> Option<&str> {
    match err.kind.as_ref() {
        // A real mongod reports a duplicate as a write error...
        ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == DUPLICATE_KEY => {
            Some(&w.message)
        }
        // ...jongodb as a failed command.
        ErrorKind::Command(c) if c.code == DUPLICATE_KEY => Some(&c.message),
        ErrorKind::InsertMany(e) => e
            .write_errors
            .iter()
            .flatten()
            .find(|w| w.code == DUPLICATE_KEY)
            .map(|w| w.message.as_str()),
        _ => None,
    }
}

/// The index named in an E11000 message (`... index: NAME dup key: ...`);
/// empty if the message does not name one.
fn index_name(message: &str) -> &str {
    message
        .split_once("index: ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("")
}

/// The field a unique index protects. Every unique index of this crate is
/// named `unique_<field>` (see `schema.rs`), so the name carries the answer;
/// `_id_` is the primary key, reported as `id`.
pub(crate) fn conflict_field(index: &str) -> String {
    match index {
        "_id_" => "id".to_owned(),
        other => other.strip_prefix("unique_").unwrap_or(other).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_read_from_both_server_dialects() {
        let mongod = "E11000 duplicate key error collection: app.users index: unique_username dup key: { username_key: \"x\" }";
        let jongodb = "E11000 duplicate key error index: unique_email dup key: { email_key: x }";
        assert_eq!(conflict_field(index_name(mongod)), "username");
        assert_eq!(conflict_field(index_name(jongodb)), "email");
        assert_eq!(
            conflict_field(index_name("E11000 index: _id_ dup key")),
            "id"
        );
        assert_eq!(conflict_field(index_name("no index here")), "");
    }
}
