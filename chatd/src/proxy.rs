//! The client's address behind reverse proxies: `X-Forwarded-For` and the
//! PROXY protocol (v1 text, v2 binary), believed only from `--trusted-proxy`
//! peers.
//!
//! chatcore counts failed logins per client address; behind a proxy every
//! socket comes from the proxy, so without this all users would share one
//! budget. Anyone can write these headers, hence the trust list: a header
//! from a peer outside it is ignored (`X-Forwarded-For`) or refused (PROXY).

use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// The networks whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct TrustedProxies(pub(crate) Vec<IpNet>);

impl TrustedProxies {
    /// Parses `10.0.0.0/8`, `fd00::/8` or a bare address (one host).
    pub(crate) fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
        let mut nets = Vec::new();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            let net = entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("--trusted-proxy {entry:?} is not a CIDR like 10.0.0.0/8 or an address")
                })?;
            nets.push(net.trunc());
        }
        Ok(TrustedProxies(nets))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` (an IPv4-mapped IPv6 address counts as IPv4) is trusted.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request that reached us from `peer` with
    /// these `X-Forwarded-For` values (in header order): walking from the
    /// right, the first address that is not a trusted proxy. Each proxy
    /// appends the address it was reached from, so everything left of the
    /// first untrusted hop was written by the client and proves nothing.
    /// An entry that is not an address ends the walk at the last good hop;
    /// if every hop is trusted, the leftmost is the client.
    pub(crate) fn client_address<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl DoubleEndedIterator<Item = &'a [u8]>,
    ) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        for value in forwarded_for.rev() {
            for hop in value.rsplit(|b| *b == b',') {
                let Some(ip) = parse_hop(hop) else {
                    return client;
                };
                client = ip;
                if !self.contains(ip) {
                    return client;
                }
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1` or `[2001:db8::1]:443`.
fn parse_hop(hop: &[u8]) -> Option<IpAddr> {
    let hop = std::str::from_utf8(hop).ok()?.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(sa) = hop.parse::<std::net::SocketAddr>() {
        return Some(sa.ip().to_canonical());
    }
    // `[v6]` without a port.
    let inner = hop.strip_prefix('[')?.strip_suffix(']')?;
    inner
        .parse::<Ipv6Addr>()
        .ok()
        .map(|ip| IpAddr::V6(ip).to_canonical())
}

/// Why a PROXY protocol header was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ProxyError {
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    #[error(
        "PROXY protocol header too long (v1: 107 bytes, v2: {MAX_V2_BODY} after the fixed part)"
    )]
    TooLong,
    #[error("connection closed or failed while reading the PROXY header")]
    Io,
}

/// v1 lines are at most 107 bytes including CRLF (the specification's bound).
const MAX_V1: usize = 107;
/// v2 address block and TLVs accepted: addresses take 216 bytes at most;
/// the rest is room for the TLVs proxies add (TLS details, unique id).
pub(crate) const MAX_V2_BODY: usize = 4096;
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Reads a PROXY header (v1 or v2) from the start of `r`, consuming exactly
/// its bytes, and returns the client address it carries: `None` for
/// `UNKNOWN`/`LOCAL` (a health check by the proxy itself, or a transport we
/// cannot name), meaning the socket peer stands.
pub(crate) async fn read_header<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<IpAddr>, ProxyError> {
    let mut start = [0u8; 12];
    // "PROXY " (v1) and the v2 signature differ in the first byte already;
    // 6 bytes fit in both, and the shortest v1 line is longer.
    r.read_exact(&mut start[..6])
        .await
        .map_err(|_| ProxyError::Io)?;
    if &start[..6] == b"PROXY " {
        let mut line = Vec::with_capacity(MAX_V1);
        line.extend_from_slice(&start[..6]);
        // Byte by byte: whatever follows the line (TLS, HTTP) must stay unread.
        while !line.ends_with(b"\r\n") {
            if line.len() >= MAX_V1 {
                return Err(ProxyError::TooLong);
            }
            line.push(r.read_u8().await.map_err(|_| ProxyError::Io)?);
        }
        return parse_v1(&line);
    }
    if start[..6] != V2_SIGNATURE[..6] {
        return Err(ProxyError::Missing);
    }
    r.read_exact(&mut start[6..])
        .await
        .map_err(|_| ProxyError::Io)?;
    if start != V2_SIGNATURE {
        return Err(ProxyError::Missing);
    }
    let mut fixed = [0u8; 4];
    r.read_exact(&mut fixed).await.map_err(|_| ProxyError::Io)?;
    let len = usize::from(u16::from_be_bytes([fixed[2], fixed[3]]));
    if len > MAX_V2_BODY {
        return Err(ProxyError::TooLong);
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await.map_err(|_| ProxyError::Io)?;
    parse_v2(fixed[0], fixed[1], &body)
}

/// `PROXY TCP4 <src> <dst> <sport> <dport>\r\n` (or TCP6, or `UNKNOWN ...`).
pub(crate) fn parse_v1(line: &[u8]) -> Result<Option<IpAddr>, ProxyError> {
    let bad = ProxyError::Malformed;
    let line = line
        .strip_suffix(b"\r\n")
        .ok_or(bad("v1 line without CRLF"))?;
    if line.len() + 2 > MAX_V1 {
        return Err(ProxyError::TooLong);
    }
    let line = std::str::from_utf8(line).map_err(|_| bad("v1 line is not ASCII"))?;
    let mut parts = line.split(' ');
    if parts.next() != Some("PROXY") {
        return Err(bad("v1 line does not start with PROXY"));
    }
    let family = parts.next().ok_or(bad("v1 without a protocol"))?;
    if family == "UNKNOWN" {
        // The rest of the line is to be ignored.
        return Ok(None);
    }
    let fields: Vec<&str> = parts.collect();
    let [src, dst, sport, dport] = fields[..] else {
        return Err(bad("v1 needs source, destination and two ports"));
    };
    // The destination is validated, not used.
    let (src, _dst): (IpAddr, IpAddr) = match family {
        "TCP4" => (
            src.parse::<Ipv4Addr>()
                .map_err(|_| bad("v1 TCP4 source"))?
                .into(),
            dst.parse::<Ipv4Addr>()
                .map_err(|_| bad("v1 TCP4 destination"))?
                .into(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>()
                .map_err(|_| bad("v1 TCP6 source"))?
                .into(),
            dst.parse::<Ipv6Addr>()
                .map_err(|_| bad("v1 TCP6 destination"))?
                .into(),
        ),
        _ => return Err(bad("v1 protocol is not TCP4, TCP6 or UNKNOWN")),
    };
    for port in [sport, dport] {
        // Decimal without a sign or leading zeros, as the specification has it.
        if port.is_empty()
            || (port.len() > 1 && port.starts_with('0'))
            || !port.bytes().all(|b| b.is_ascii_digit())
            || port.parse::<u16>().is_err()
        {
            return Err(bad("v1 port"));
        }
    }
    Ok(Some(src.to_canonical()))
}

/// The v2 header after its signature: version/command, family/transport,
/// and the `len` bytes of addresses and TLVs.
pub(crate) fn parse_v2(ver_cmd: u8, family: u8, body: &[u8]) -> Result<Option<IpAddr>, ProxyError> {
    let bad = ProxyError::Malformed;
    if ver_cmd >> 4 != 2 {
        return Err(bad("v2 version is not 2"));
    }
    match ver_cmd & 0x0f {
        // LOCAL: the proxy's own connection; addresses are to be ignored.
        0 => return Ok(None),
        1 => {}
        _ => return Err(bad("v2 command is neither LOCAL nor PROXY")),
    }
    match family >> 4 {
        1 => {
            let a: [u8; 4] = body
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(bad("v2 IPv4 block too short"))?;
            if body.len() < 12 {
                return Err(bad("v2 IPv4 block too short"));
            }
            Ok(Some(IpAddr::V4(Ipv4Addr::from(a))))
        }
        2 => {
            let a: [u8; 16] = body
                .get(..16)
                .and_then(|b| b.try_into().ok())
                .ok_or(bad("v2 IPv6 block too short"))?;
            if body.len() < 36 {
                return Err(bad("v2 IPv6 block too short"));
            }
            Ok(Some(IpAddr::V6(Ipv6Addr::from(a)).to_canonical()))
        }
        // UNSPEC or a UNIX socket: no IP address to give.
        0 | 3 => Ok(None),
        _ => Err(bad("v2 address family")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trusted(nets: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&nets.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(t: &TrustedProxies, peer: &str, headers: &[&str]) -> IpAddr {
        t.client_address(ip(peer), headers.iter().map(|h| h.as_bytes()))
    }

    #[test]
    fn cidrs_parse_and_match() {
        let t = trusted(&["10.0.0.0/8", "192.0.2.1", " fd00::/8 ", "10.1.2.3/8"]);
        assert!(t.contains(ip("10.200.0.1")));
        assert!(t.contains(ip("192.0.2.1")));
        assert!(!t.contains(ip("192.0.2.2")));
        assert!(t.contains(ip("fd12::1")));
        assert!(
            t.contains(ip("::ffff:10.0.0.1")),
            "IPv4-mapped peers of a [::] listener"
        );
        assert!(!t.contains(ip("2001:db8::1")));
        assert!(TrustedProxies::parse(&["10.0.0.0/33".into()]).is_err());
        assert!(TrustedProxies::parse(&["proxy.example".into()]).is_err());
        assert!(TrustedProxies::default().is_empty());
    }

    #[test]
    fn forwarded_for_is_walked_from_the_right_past_trusted_hops() {
        let t = trusted(&["127.0.0.0/8", "10.0.0.0/8"]);
        // An untrusted peer's header is ignored.
        assert_eq!(
            xff(&t, "198.51.100.1", &["203.0.113.7"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            xff(&TrustedProxies::default(), "127.0.0.1", &["203.0.113.7"]),
            ip("127.0.0.1")
        );
        // No header: the proxy itself.
        assert_eq!(xff(&t, "127.0.0.1", &[]), ip("127.0.0.1"));
        assert_eq!(xff(&t, "127.0.0.1", &["203.0.113.7"]), ip("203.0.113.7"));
        // The client's own claims left of the first untrusted hop are ignored.
        assert_eq!(
            xff(&t, "127.0.0.1", &["1.1.1.1, 203.0.113.7, 10.0.0.2"]),
            ip("203.0.113.7")
        );
        // Several header lines are one list, in order.
        assert_eq!(
            xff(
                &t,
                "127.0.0.1",
                &["1.1.1.1", "203.0.113.7,10.0.0.2", "10.0.0.3"]
            ),
            ip("203.0.113.7")
        );
        // Ports and brackets.
        assert_eq!(
            xff(&t, "127.0.0.1", &["203.0.113.7:5555"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            xff(&t, "127.0.0.1", &["[2001:db8::7]:443"]),
            ip("2001:db8::7")
        );
        assert_eq!(xff(&t, "127.0.0.1", &["[2001:db8::7]"]), ip("2001:db8::7"));
        assert_eq!(xff(&t, "127.0.0.1", &["2001:db8::7"]), ip("2001:db8::7"));
        assert_eq!(
            xff(&t, "::ffff:127.0.0.1", &["::ffff:203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Garbage ends the walk at the last good hop.
        assert_eq!(xff(&t, "127.0.0.1", &["unknown"]), ip("127.0.0.1"));
        assert_eq!(
            xff(&t, "127.0.0.1", &["203.0.113.9, junk, 10.0.0.2"]),
            ip("10.0.0.2")
        );
        assert_eq!(xff(&t, "127.0.0.1", &[""]), ip("127.0.0.1"));
        // Every hop trusted: the leftmost.
        assert_eq!(
            xff(&t, "127.0.0.1", &["10.0.0.9, 10.0.0.2"]),
            ip("10.0.0.9")
        );
        // Not UTF-8.
        let t2 = t.clone();
        assert_eq!(
            t2.client_address(ip("127.0.0.1"), [&b"\xff\xfe"[..]].into_iter()),
            ip("127.0.0.1")
        );
    }

    async fn read(bytes: &[u8]) -> (Result<Option<IpAddr>, ProxyError>, Vec<u8>) {
        let mut r = bytes;
        let got = read_header(&mut r).await;
        (got, r.to_vec())
    }

    fn v2(cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.extend_from_slice(&[cmd, fam]);
        h.extend_from_slice(&(body.len() as u16).to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[tokio::test]
    async fn v1_headers() {
        let (got, rest) =
            read(b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n").await;
        assert_eq!(got, Ok(Some(ip("203.0.113.7"))));
        assert_eq!(rest, b"GET / HTTP/1.1\r\n", "only the header is consumed");
        let (got, _) = read(b"PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n").await;
        assert_eq!(got, Ok(Some(ip("2001:db8::7"))));
        assert_eq!(read(b"PROXY UNKNOWN\r\n").await.0, Ok(None));
        assert_eq!(
            read(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").await.0,
            Ok(None)
        );
        for bad in [
            &b"PROXY TCP4 203.0.113.7 10.0.0.1 56324\r\n"[..],
            b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
            b"PROXY TCP6 203.0.113.7 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 65536 2\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 01 2\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 +1 2\r\n",
            b"PROXY TCP4  203.0.113.7 10.0.0.1 1 2\r\n",
            b"PROXY UDP4 203.0.113.7 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 1 2 3\r\n",
            b"PROXY \xff\r\n",
        ] {
            assert!(
                matches!(read(bad).await.0, Err(ProxyError::Malformed(_))),
                "{bad:?}"
            );
        }
        let long = [b"PROXY ".as_slice(), &[b'1'; 200]].concat();
        assert_eq!(read(&long).await.0, Err(ProxyError::TooLong));
        assert_eq!(read(b"PROXY TCP4 1.2.3.4").await.0, Err(ProxyError::Io));
        assert_eq!(
            read(b"GET / HTTP/1.1\r\n\r\n").await.0,
            Err(ProxyError::Missing)
        );
        assert_eq!(
            read(b"\x16\x03\x01\x02\x00\x01").await.0,
            Err(ProxyError::Missing)
        );
        assert_eq!(read(b"PRO").await.0, Err(ProxyError::Io));
    }

    #[tokio::test]
    async fn v2_headers() {
        let mut v4 = vec![203, 0, 113, 7, 10, 0, 0, 1, 0xdc, 0x04, 0x01, 0xbb];
        let (got, rest) = read(&[v2(0x21, 0x11, &v4), b"\x16\x03".to_vec()].concat()).await;
        assert_eq!(got, Ok(Some(ip("203.0.113.7"))));
        assert_eq!(rest, b"\x16\x03");
        // With a TLV after the addresses.
        v4.extend_from_slice(&[0x04, 0x00, 0x01, 0x00]);
        assert_eq!(
            read(&v2(0x21, 0x11, &v4)).await.0,
            Ok(Some(ip("203.0.113.7")))
        );
        let mut v6 = ip6("2001:db8::7").to_vec();
        v6.extend_from_slice(&ip6("2001:db8::1"));
        v6.extend_from_slice(&[0, 1, 0, 2]);
        assert_eq!(
            read(&v2(0x21, 0x21, &v6)).await.0,
            Ok(Some(ip("2001:db8::7")))
        );
        // LOCAL, UNSPEC and UNIX: the socket peer stands.
        assert_eq!(read(&v2(0x20, 0x00, &[])).await.0, Ok(None));
        assert_eq!(read(&v2(0x21, 0x00, &[])).await.0, Ok(None));
        assert_eq!(read(&v2(0x21, 0x31, &[0; 216])).await.0, Ok(None));
        for (cmd, fam, body) in [
            (0x11, 0x11, &v4[..]),
            (0x22, 0x11, &v4[..]),
            (0x21, 0x11, &v4[..11]),
            (0x21, 0x21, &v6[..35]),
            (0x21, 0x41, &v4[..]),
        ] {
            assert!(matches!(
                read(&v2(cmd, fam, body)).await.0,
                Err(ProxyError::Malformed(_))
            ));
        }
        let huge = v2(0x21, 0x11, &vec![0; MAX_V2_BODY + 1]);
        assert_eq!(read(&huge).await.0, Err(ProxyError::TooLong));
        // Truncated anywhere.
        let full = v2(0x21, 0x11, &v4);
        for cut in 0..full.len() {
            assert!(read(&full[..cut]).await.0.is_err(), "cut at {cut}");
        }
        let mut wrong_sig = full.clone();
        wrong_sig[9] = b'X';
        assert_eq!(read(&wrong_sig).await.0, Err(ProxyError::Missing));
    }

    fn ip6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_nor_overread(bytes in proptest::collection::vec(any::<u8>(), 0..300), v1 in any::<bool>(), v2sig in any::<bool>()) {
            let mut input = Vec::new();
            if v1 { input.extend_from_slice(b"PROXY "); } else if v2sig { input.extend_from_slice(&V2_SIGNATURE); }
            input.extend_from_slice(&bytes);
            let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let (got, rest) = rt.block_on(read(&input));
            let used = input.len() - rest.len();
            prop_assert!(used <= 16 + MAX_V2_BODY);
            if got.is_ok() {
                prop_assert!(used <= 16 + MAX_V2_BODY);
            }
            let t = trusted(&["0.0.0.0/0"]);
            let _ = t.client_address(ip("127.0.0.1"), [&bytes[..]].into_iter());
        }
    }
}
