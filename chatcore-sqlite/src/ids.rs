//! How the log stores message and user ids: a UUID in the canonical form
//! chatcore generates (36 characters, lower case, hyphenated) as its 16
//! bytes, any other id as the text it is.
//!
//! Every entry of the log holds its id and its sender, and every entry of
//! the `(sender, client_id)` index its sender: 16 bytes instead of 36 make
//! rows and index entries smaller (more of them per page, fewer pages
//! written per commit, a smaller file) and key comparisons shorter. The
//! columns are `ANY`, so a BLOB and a TEXT never compare equal: one id has
//! one stored form, decided by [`StoredId::of`] alone, and schema step 3
//! converts older rows by the same rule ([`crate::schema`]'s `uuid_blob!`).

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

/// An id as it is written into the log.
pub(crate) enum StoredId<'a> {
    Uuid([u8; 16]),
    Text(&'a str),
}

impl<'a> StoredId<'a> {
    /// The stored form of `id`.
    pub(crate) fn of(id: &'a str) -> Self {
        match canonical_uuid(id) {
            Some(bytes) => Self::Uuid(bytes),
            None => Self::Text(id),
        }
    }
}

impl ToSql for StoredId<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Self::Uuid(bytes) => ValueRef::Blob(bytes),
            Self::Text(text) => ValueRef::Text(text.as_bytes()),
        }))
    }
}

/// An id read back from the log.
pub(crate) struct LogId(pub(crate) String);

impl FromSql for LogId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        match value {
            ValueRef::Blob(b) => match <[u8; 16]>::try_from(b) {
                Ok(bytes) => Ok(Self(hyphenated(&bytes))),
                Err(_) => Err(FromSqlError::InvalidBlobSize {
                    expected_size: 16,
                    blob_size: b.len(),
                }),
            },
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(|s| Self(s.to_owned()))
                .map_err(|e| FromSqlError::Other(Box::new(e))),
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Where the hyphens of a canonical UUID are.
fn is_hyphen_at(i: usize) -> bool {
    matches!(i, 8 | 13 | 18 | 23)
}

/// The 16 bytes of `s` if it is a UUID written exactly as
/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lower-case hex; `None` for
/// anything else (upper case included: it would not read back the same).
fn canonical_uuid(s: &str) -> Option<[u8; 16]> {
    let s = s.as_bytes();
    if s.len() != 36 {
        return None;
    }
    let mut out = [0u8; 16];
    let mut nibbles = 0usize;
    for (i, &c) in s.iter().enumerate() {
        if is_hyphen_at(i) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => return None,
        };
        let byte = out.get_mut(nibbles / 2)?;
        *byte = (*byte << 4) | v;
        nibbles += 1;
    }
    Some(out)
}

/// `bytes` as a canonical UUID.
fn hyphenated(bytes: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_uuids_round_trip_through_16_bytes_and_nothing_else_is_converted() {
        let id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let bytes = canonical_uuid(id).expect("canonical");
        assert_eq!(bytes[0], 0x01);
        assert_eq!(bytes[15], 0x5b);
        assert_eq!(hyphenated(&bytes), id);
        for other in [
            "",
            "alice",
            "0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B",
            "0193a1b2c3d47e5f8a9b0c1d2e3f4a5b",
            "{0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5}",
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5g",
            "0193a1b2-c3d4-7e5f-8a9b0-c1d2e3f4a5b",
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5bb",
            "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4é",
        ] {
            assert_eq!(canonical_uuid(other), None, "{other:?}");
        }
    }
}
