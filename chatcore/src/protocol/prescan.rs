//! One pass over MessagePack bytes before serde reads them, to refuse
//! length prefixes that the bytes cannot back and absurd nesting.
//!
//! rmp-serde reports an array or map header's length as the size hint of
//! what follows, and serde reserves from the hint: up to 1 MiB per
//! container when it buffers an internally tagged frame (every frame of
//! ours). A 5-byte `array 32` header claiming 2^32 - 1 values was thus a
//! 1 MiB reservation, and nesting them (rmp-serde allows 1,024 levels) a
//! gigabyte from a few kilobytes. Such a header can only be a lie: every
//! value takes at least one byte. So before decoding we check that the
//! values still owed never outnumber the bytes left, which caps the sum of
//! all reservations by the input's length, and that nesting stays shallow.
//!
//! The pass only refuses bytes the decoder would refuse anyway (a container
//! that cannot be complete, or nesting no frame type has), so it changes
//! no decoded frame, only the error's wording; the differential tests check
//! exactly that. It reads only the first value, as rmp-serde does.

use super::ProtocolError;

/// Levels of nested arrays and maps accepted. The deepest frame of the
/// protocol nests five (a conversation list's message's content);
/// rmp-serde alone would recurse through 1,024 levels of a frame that no
/// type can accept.
const MAX_DEPTH: usize = 32;

/// Refuses MessagePack bytes whose first value claims more items than the
/// bytes left could hold, nests deeper than [`MAX_DEPTH`], or is followed
/// by more bytes.
pub(super) fn check_msgpack_claims(bytes: &[u8]) -> Result<(), ProtocolError> {
    let mut r = bytes;
    // Values still to read at each open nesting level; the bottom one is
    // the frame itself, and `owed` is their sum.
    let mut open = [0usize; MAX_DEPTH + 1];
    let mut depth = 0;
    open[0] = 1;
    let mut owed = 1usize;
    loop {
        while open[depth] == 0 {
            if depth == 0 {
                // One WebSocket message is one frame: bytes after it are
                // not ignored but refused, as JSON's decoder does too.
                return if r.is_empty() {
                    Ok(())
                } else {
                    Err(ProtocolError::Decode(format!(
                        "{} bytes after the end of the frame",
                        r.len()
                    )))
                };
            }
            depth -= 1;
        }
        open[depth] -= 1;
        owed -= 1;
        let Some((&marker, rest)) = r.split_first() else {
            return Err(truncated());
        };
        r = rest;
        let (skip, items) = match marker {
            // fixint, nil, false, true, negative fixint
            0x00..=0x7f | 0xc0 | 0xc2 | 0xc3 | 0xe0..=0xff => (0, 0),
            0x80..=0x8f => (0, 2 * usize::from(marker & 0x0f)),
            0x90..=0x9f => (0, usize::from(marker & 0x0f)),
            0xa0..=0xbf => (usize::from(marker & 0x1f), 0),
            // bin 8, str 8
            0xc4 | 0xd9 => (read_len(&mut r, 1)?, 0),
            // bin 16, str 16
            0xc5 | 0xda => (read_len(&mut r, 2)?, 0),
            // bin 32, str 32
            0xc6 | 0xdb => (read_len(&mut r, 4)?, 0),
            // ext 8, 16, 32: the length, then a type byte and the data
            0xc7 => (read_len(&mut r, 1)?.saturating_add(1), 0),
            0xc8 => (read_len(&mut r, 2)?.saturating_add(1), 0),
            0xc9 => (read_len(&mut r, 4)?.saturating_add(1), 0),
            // numbers: uint 8..64, int 8..64, float 32/64
            0xcc | 0xd0 => (1, 0),
            0xcd | 0xd1 => (2, 0),
            0xca | 0xce | 0xd2 => (4, 0),
            0xcb | 0xcf | 0xd3 => (8, 0),
            // fixext 1, 2, 4, 8, 16: a type byte and the data
            0xd4 => (2, 0),
            0xd5 => (3, 0),
            0xd6 => (5, 0),
            0xd7 => (9, 0),
            0xd8 => (17, 0),
            0xdc => (0, read_len(&mut r, 2)?),
            0xdd => (0, read_len(&mut r, 4)?),
            0xde => (0, read_len(&mut r, 2)?.saturating_mul(2)),
            0xdf => (0, read_len(&mut r, 4)?.saturating_mul(2)),
            // 0xc1 is never used: the decoder refuses it in its own words.
            0xc1 => return Ok(()),
        };
        r = r.get(skip..).ok_or_else(truncated)?;
        if items > 0 {
            depth += 1;
            if depth > MAX_DEPTH {
                return Err(ProtocolError::Decode(format!(
                    "nested deeper than {MAX_DEPTH} levels"
                )));
            }
            open[depth] = items;
            owed = owed.saturating_add(items);
            if owed > r.len() {
                return Err(truncated());
            }
        }
    }
}

/// A big-endian length of `n` bytes.
fn read_len(r: &mut &[u8], n: usize) -> Result<usize, ProtocolError> {
    let (len, rest) = r.split_at_checked(n).ok_or_else(truncated)?;
    *r = rest;
    Ok(len.iter().fold(0, |acc, &b| acc << 8 | usize::from(b)))
}

fn truncated() -> ProtocolError {
    ProtocolError::Decode("truncated: a length claims more than the bytes left".into())
}

#[cfg(test)]
mod tests {
    use super::check_msgpack_claims;

    #[test]
    fn refuses_claims_the_bytes_cannot_back() {
        let ok: [&[u8]; 5] = [
            &[0xc0],
            &[0x92, 0x01, 0x02],
            &[0x81, 0xa1, b'a', 0x90],
            &[0xdd, 0, 0, 0, 2, 0x01, 0x02],
            // 0xc1 is left to the decoder
            &[0x91, 0xc1],
        ];
        for b in ok {
            assert!(check_msgpack_claims(b).is_ok(), "{b:02x?}");
        }
        let refused: [&[u8]; 7] = [
            &[],
            &[0x92, 0x01],
            &[0x81, 0xa1],
            &[0xdd, 0xff, 0xff, 0xff, 0xff],
            &[0xdf, 0, 0, 0, 1, 0x01],
            &[0xdb, 0, 0, 0, 2, b'a'],
            // two values owed inside, at one level deeper: three bytes needed
            &[0x92, 0x92, 0x01],
        ];
        for b in refused {
            assert!(check_msgpack_claims(b).is_err(), "{b:02x?}");
        }
    }

    #[test]
    fn refuses_bytes_after_the_frame() {
        let ping = [
            0x82, 0xa4, b't', b'y', b'p', b'e', 0xa4, b'p', b'i', b'n', b'g', 0xa2, b'i', b'd',
            0x01,
        ];
        assert!(check_msgpack_claims(&ping).is_ok());
        let mut trailing = ping.to_vec();
        trailing.push(0xc0);
        let err = check_msgpack_claims(&trailing).unwrap_err().to_string();
        assert!(err.contains("1 bytes after the end"), "{err}");
    }

    #[test]
    fn refuses_deep_nesting() {
        let nested = |levels: usize| {
            let mut b = vec![0x91; levels];
            b.push(0xc0);
            b
        };
        assert!(check_msgpack_claims(&nested(super::MAX_DEPTH)).is_ok());
        assert!(check_msgpack_claims(&nested(super::MAX_DEPTH + 1)).is_err());
    }
}
