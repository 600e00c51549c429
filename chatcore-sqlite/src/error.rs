//! The one place where SQLite errors become [`StoreError`]s.

use chatcore::store::StoreError;
use rusqlite::ErrorCode;

/// Converts a driver error of a store that is serving:
/// - a unique constraint -> `Conflict { field }`, the field read from the
///   violated column (see [`conflict_field`]);
/// - a value of the wrong type -> `Corrupt` (one record is bad);
/// - a damaged file (a corrupt page, a file that is no longer a database)
///   -> `Unavailable`: clients are told the service is down, not that their
///   request failed on its own, and nothing of the write is kept (its
///   savepoint or its group is rolled back), until the file is restored;
/// - a full disk, a lock held too long, a read-only file, an I/O error and
///   anything else -> `Unavailable`, with SQLite's own words.
pub(crate) fn map_err(err: rusqlite::Error) -> StoreError {
    convert(err, Damaged::Unavailable)
}

/// Converts a driver error met while opening (or backing up) a file: as
/// [`map_err`], except that a damaged file is `Corrupt`, so that the start
/// fails with what is wrong with the file.
pub(crate) fn map_open_err(err: rusqlite::Error) -> StoreError {
    convert(err, Damaged::Corrupt)
}

/// What a damaged file is reported as.
#[derive(Clone, Copy)]
enum Damaged {
    Corrupt,
    Unavailable,
}

fn convert(err: rusqlite::Error, damaged: Damaged) -> StoreError {
    match &err {
        rusqlite::Error::SqliteFailure(e, msg) => {
            let msg = msg.clone().unwrap_or_else(|| e.to_string());
            match e.code {
                ErrorCode::ConstraintViolation
                    if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                        || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY =>
                {
                    StoreError::Conflict {
                        field: conflict_field(&msg),
                    }
                }
                ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => match damaged {
                    Damaged::Corrupt => StoreError::Corrupt(format!(
                        "{msg}: the file is not a chatcore database or is damaged (restore a \
                         backup)"
                    )),
                    Damaged::Unavailable => StoreError::Unavailable(format!(
                        "{msg}: the database file was damaged while in use (stop the server and \
                         restore a backup)"
                    )),
                },
                ErrorCode::DiskFull => StoreError::Unavailable(format!(
                    "{msg}: the disk (or the configured max_page_count) is full"
                )),
                ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StoreError::Unavailable(
                    format!("{msg}: another process holds a lock on the database"),
                ),
                ErrorCode::ReadOnly => StoreError::Unavailable(format!(
                    "{msg}: the database cannot be written (read-only file, directory or mount)"
                )),
                ErrorCode::SystemIoFailure => StoreError::Unavailable(format!(
                    "{msg}: a read or write of the file failed (disk full, file size limit, or a \
                     failing device)"
                )),
                ErrorCode::CannotOpen => StoreError::Unavailable(format!(
                    "{msg}: cannot open the database file (missing directory or no permission)"
                )),
                _ => StoreError::Unavailable(msg),
            }
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(..) => StoreError::Corrupt(err.to_string()),
        _ => StoreError::Unavailable(err.to_string()),
    }
}

/// The field a unique constraint protects, from SQLite's message
/// (`UNIQUE constraint failed: users.username_key`): the name a
/// `Conflict` reports, as the other stores do.
pub(crate) fn conflict_field(message: &str) -> String {
    let column = message
        .rsplit_once(": ")
        .map_or(message, |(_, c)| c)
        .split(',')
        .next()
        .unwrap_or("")
        .trim();
    match column {
        "users.username_key" => "username",
        "users.email_key" => "email",
        "users.phone" => "phone",
        "users.id" => "id",
        "sessions.token_hash" => "token",
        "conversations.id" => "conv",
        "messages.sender" => "client_id",
        other => other.rsplit('.').next().unwrap_or(other),
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_from_constraint_messages() {
        assert_eq!(
            conflict_field("UNIQUE constraint failed: users.username_key"),
            "username"
        );
        assert_eq!(
            conflict_field("UNIQUE constraint failed: users.email_key"),
            "email"
        );
        assert_eq!(
            conflict_field("UNIQUE constraint failed: messages.sender, messages.client_id"),
            "client_id"
        );
        assert_eq!(conflict_field("UNIQUE constraint failed: x.y"), "y");
    }
}
