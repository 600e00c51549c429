//! The broker's own connections to Redis: RESP2 over TCP or a Unix socket,
//! just what publishing and subscribing need.
//!
//! Every event between nodes crosses two of these (a `PUBLISH` on one
//! node, a pub/sub message on the others), so their cost is per message.
//! redis-rs parses replies with a general parser combinator that copied a
//! message's payload byte by byte and took a quarter of a node's
//! instructions in the cross-node relay; here a reply is found by its
//! length prefixes and its bulk strings are slices of the read buffer, never
//! copied. Everything else (scripts, presence, limiters, calls) stays on
//! redis-rs, whose connection manager and script handling it needs.
//!
//! Bad input from Redis (or from something else on its port) is an error
//! that closes the connection, never a panic; sizes and depth are bounded.

use std::io;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use redis::{ConnectionAddr, ConnectionInfo};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A bulk string longer than this is refused (Redis's own limit is 512 MB;
/// a broker frame is a few KiB).
const MAX_BULK: usize = 64 * 1024 * 1024;
/// An array longer than this is refused.
const MAX_ARRAY: usize = 1 << 20;
/// Arrays nested deeper than this are refused (pub/sub uses depth 1).
const MAX_DEPTH: usize = 4;
/// A read asks the socket for at least this much room...
const READ_MIN: usize = 16 * 1024;
/// ...and grows the buffer by this much when there is less.
const READ_SIZE: usize = 64 * 1024;
/// How long connecting (and authenticating) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A RESP2 value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    /// `+OK`.
    Simple(Bytes),
    /// `-ERR ...`.
    Error(Bytes),
    /// `:1`.
    Int(i64),
    /// `$3 abc`.
    Bulk(Bytes),
    /// `$-1` or `*-1`.
    Nil,
    /// `*2 ...`.
    Array(Vec<Value>),
}

fn malformed(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// The line at `at` in `b` (without its CRLF) and where the next starts, or
/// `None` when the line is not complete yet.
fn line(b: &[u8], at: usize) -> io::Result<Option<(&[u8], usize)>> {
    let Some(rest) = b.get(at..) else {
        return Ok(None);
    };
    match rest.iter().position(|&c| c == b'\n') {
        None if rest.len() > 64 * 1024 => Err(malformed("a RESP line of over 64 KiB")),
        None => Ok(None),
        Some(0) => Err(malformed("a RESP line without CR")),
        Some(n) if rest[n - 1] != b'\r' => Err(malformed("a RESP line without CR")),
        Some(n) => Ok(Some((&rest[..n - 1], at + n + 1))),
    }
}

/// A RESP integer: an optional `-`, then 1 to 18 decimal digits.
fn int(text: &[u8]) -> io::Result<i64> {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(malformed("a RESP length or integer that is not a number"));
    }
    let n = digits
        .iter()
        .fold(0i64, |n, d| n * 10 + i64::from(d - b'0'));
    Ok(if negative { -n } else { n })
}

/// Appends the decimal digits of `n`.
fn push_decimal(out: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        // `n % 10` is a digit: the cast keeps it whole.
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// The length in bytes of the complete value at `at` in `b`, or `None` when
/// more bytes are needed.
fn value_len(b: &[u8], at: usize, depth: usize) -> io::Result<Option<usize>> {
    let Some(&kind) = b.get(at) else {
        return Ok(None);
    };
    if !matches!(kind, b'+' | b'-' | b':' | b'$' | b'*') {
        return Err(malformed(format!(
            "a RESP value of type {:?}",
            kind as char
        )));
    }
    let Some((head, next)) = line(b, at + 1)? else {
        return Ok(None);
    };
    match kind {
        b'+' | b'-' => Ok(Some(next - at)),
        b':' => int(head).map(|_| Some(next - at)),
        b'$' => {
            let n = int(head)?;
            if n < 0 {
                return Ok(Some(next - at));
            }
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > MAX_BULK {
                return Err(malformed(format!("a RESP bulk string of {n} bytes")));
            }
            let end = next + n + 2;
            if b.len() < end {
                return Ok(None);
            }
            if &b[next + n..end] != b"\r\n" {
                return Err(malformed("a RESP bulk string without its CRLF"));
            }
            Ok(Some(end - at))
        }
        b'*' => {
            let n = int(head)?;
            if n < 0 {
                return Ok(Some(next - at));
            }
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            if n > MAX_ARRAY {
                return Err(malformed(format!("a RESP array of {n} values")));
            }
            if depth >= MAX_DEPTH {
                return Err(malformed("RESP arrays nested too deep"));
            }
            let mut end = next;
            for _ in 0..n {
                match value_len(b, end, depth + 1)? {
                    Some(len) => end += len,
                    None => return Ok(None),
                }
            }
            Ok(Some(end - at))
        }
        other => Err(malformed(format!(
            "a RESP value of type {:?}",
            other as char
        ))),
    }
}

/// Takes the complete value at the start of `frame` (checked by
/// [`value_len`]); bulk strings share its memory.
fn take(frame: &mut Bytes) -> Value {
    let kind = frame[0];
    let nl = frame
        .iter()
        .position(|&c| c == b'\n')
        .unwrap_or(frame.len() - 1);
    let head = frame.slice(1..nl - 1);
    frame.advance(nl + 1);
    // The lengths were checked by `value_len`: the parses cannot fail.
    let n = || int(&head).unwrap_or(-1);
    match kind {
        b'+' => Value::Simple(head),
        b'-' => Value::Error(head),
        b':' => Value::Int(n()),
        b'$' => match usize::try_from(n()) {
            Err(_) => Value::Nil,
            Ok(len) => {
                let bulk = frame.slice(..len);
                frame.advance(len + 2);
                Value::Bulk(bulk)
            }
        },
        _ => match usize::try_from(n()) {
            Err(_) => Value::Nil,
            Ok(len) => Value::Array((0..len).map(|_| take(frame)).collect()),
        },
    }
}

/// Parses one value off the front of `buf`: `None` when it is not complete.
pub(crate) fn parse(buf: &mut BytesMut) -> io::Result<Option<Value>> {
    match value_len(buf, 0, 0)? {
        None => Ok(None),
        Some(len) => Ok(Some(take(&mut buf.split_to(len).freeze()))),
    }
}

/// Appends the command `args` to `out`, as a RESP array of bulk strings.
pub(crate) fn command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    push_decimal(out, args.len());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        push_decimal(out, a.len());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One connection, authenticated.
pub(crate) struct Conn {
    io: Box<dyn Io>,
    buf: BytesMut,
}

impl Conn {
    /// Connects to the Redis of `info` (TCP or a Unix socket) and
    /// authenticates as it says.
    pub(crate) async fn connect(info: &ConnectionInfo) -> io::Result<Self> {
        tokio::time::timeout(CONNECT_TIMEOUT, Self::open(info))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting to Redis timed out"))?
    }

    async fn open(info: &ConnectionInfo) -> io::Result<Self> {
        let io: Box<dyn Io> = match info.addr() {
            ConnectionAddr::Tcp(host, port) => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port)).await?;
                s.set_nodelay(true)?;
                Box::new(s)
            }
            #[cfg(unix)]
            ConnectionAddr::Unix(path) => Box::new(tokio::net::UnixStream::connect(path).await?),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "the broker connects to Redis over TCP or a Unix socket (no TLS)",
                ))
            }
        };
        let mut conn = Self {
            io,
            buf: BytesMut::with_capacity(READ_SIZE),
        };
        let settings = info.redis_settings();
        if let Some(password) = settings.password() {
            let mut auth = Vec::new();
            match settings.username() {
                Some(user) => command(&mut auth, &[b"AUTH", user.as_bytes(), password.as_bytes()]),
                None => command(&mut auth, &[b"AUTH", password.as_bytes()]),
            }
            conn.write(&auth).await?;
            match conn.read().await? {
                Value::Simple(_) => {}
                Value::Error(e) => {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "Redis refused the credentials: {}",
                            String::from_utf8_lossy(&e)
                        ),
                    ))
                }
                other => return Err(malformed(format!("AUTH answered {other:?}"))),
            }
        }
        Ok(conn)
    }

    /// Writes `bytes` (one or more commands) whole.
    pub(crate) async fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.write_all(bytes).await
    }

    /// The next value Redis sends. Cancel-safe: what was read stays in the
    /// buffer for the next call.
    pub(crate) async fn read(&mut self) -> io::Result<Value> {
        loop {
            if let Some(v) = parse(&mut self.buf)? {
                return Ok(v);
            }
            // Room for many messages per read (left alone, the buffer
            // would offer the socket a few bytes at a time).
            if self.buf.capacity() - self.buf.len() < READ_MIN {
                self.buf.reserve(READ_SIZE);
            }
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "Redis closed the connection",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(bytes: &[u8]) -> io::Result<Vec<Value>> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(v) = parse(&mut buf)? {
            out.push(v);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        Ok(out)
    }

    fn bulk(s: &[u8]) -> Value {
        Value::Bulk(Bytes::copy_from_slice(s))
    }

    #[test]
    fn parses_every_kind_and_a_pubsub_message_with_binary_payload() {
        let payload = b"\x02\r\n\x00$3\r\n*";
        let mut wire = b"+OK\r\n-ERR no\r\n:42\r\n:-1\r\n$-1\r\n*-1\r\n$0\r\n\r\n".to_vec();
        wire.extend_from_slice(b"*3\r\n$7\r\nmessage\r\n$5\r\np:t:d\r\n$9\r\n");
        wire.extend_from_slice(payload);
        wire.extend_from_slice(b"\r\n");
        assert_eq!(
            all(&wire).unwrap(),
            vec![
                Value::Simple(Bytes::from_static(b"OK")),
                Value::Error(Bytes::from_static(b"ERR no")),
                Value::Int(42),
                Value::Int(-1),
                Value::Nil,
                Value::Nil,
                bulk(b""),
                Value::Array(vec![bulk(b"message"), bulk(b"p:t:d"), bulk(payload)]),
            ]
        );
    }

    #[test]
    fn a_value_split_anywhere_waits_for_the_rest() {
        let wire = b"*3\r\n$9\r\nsubscribe\r\n$3\r\nabc\r\n:1\r\n";
        for cut in 0..wire.len() {
            let mut buf = BytesMut::from(&wire[..cut]);
            assert_eq!(parse(&mut buf).unwrap(), None, "cut at {cut}");
            assert_eq!(buf.len(), cut, "nothing consumed at {cut}");
            buf.extend_from_slice(&wire[cut..]);
            assert_eq!(
                parse(&mut buf).unwrap(),
                Some(Value::Array(vec![
                    bulk(b"subscribe"),
                    bulk(b"abc"),
                    Value::Int(1)
                ]))
            );
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        for bad in [
            &b"?what\r\n"[..],
            b"$abc\r\n",
            b"$3\r\nabcd\r\n",
            b":1\n",
            b"\n",
            b"$99999999999\r\n",
            b"*99999999999\r\n",
            b"*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
            b"$-5\r\n\r\n",
        ] {
            let mut buf = BytesMut::from(bad);
            let r = parse(&mut buf);
            // `$-5` is a nil like `$-1` (any negative length), the rest errors.
            if bad.starts_with(b"$-5") {
                assert_eq!(r.unwrap(), Some(Value::Nil));
            } else {
                assert!(r.is_err(), "{:?} gave {r:?}", String::from_utf8_lossy(bad));
            }
        }
        // A line that never ends is refused once it is too long to be one.
        let mut buf = BytesMut::from(&vec![b'+'; 70 * 1024][..]);
        assert!(parse(&mut buf).is_err());
    }

    /// Whatever comes, parsing answers (a value, "more", or an error) and
    /// never panics: 200,000 strings of RESP's own characters.
    #[test]
    fn arbitrary_bytes_never_panic() {
        const ALPHABET: &[u8] = b"+-:$*\r\n0123456789-1ab\r\n";
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..200_000 {
            let len = (next() % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
                .collect();
            let mut buf = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = parse(&mut buf) {}
        }
    }

    #[test]
    fn integers_and_decimals() {
        for (text, n) in [
            (&b"0"[..], 0),
            (b"42", 42),
            (b"-1", -1),
            (b"999999999999999999", 999_999_999_999_999_999),
        ] {
            assert_eq!(int(text).unwrap(), n);
        }
        for bad in [&b""[..], b"-", b"1a", b"+1", b" 1", b"1000000000000000000"] {
            assert!(int(bad).is_err(), "{bad:?}");
        }
        for n in [0usize, 7, 10, 255, 1_000_000, usize::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut out = Vec::new();
        command(&mut out, &[b"PUBLISH", b"c", b"\x00\r\n"]);
        assert_eq!(out, b"*3\r\n$7\r\nPUBLISH\r\n$1\r\nc\r\n$3\r\n\x00\r\n\r\n");
        assert_eq!(
            all(&out).unwrap(),
            vec![Value::Array(vec![
                bulk(b"PUBLISH"),
                bulk(b"c"),
                bulk(b"\x00\r\n")
            ])]
        );
    }
}
