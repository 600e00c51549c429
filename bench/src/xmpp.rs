//! A lean XMPP client over WebSocket (RFC 7395) for the ejabberd peer: one
//! stanza or nonza per text frame, framed by `<open/>` and `<close/>` of
//! `urn:ietf:params:xml:ns:xmpp-framing`; SASL PLAIN (loopback only),
//! resource binding, session, stream management (XEP-0198) and in-band
//! registration (XEP-0077, to create the users), and multi-user chat
//! (XEP-0045: instant rooms, joining, groupchat messages).
//!
//! The XML is read by a small hand parser of one element per frame (no
//! DTDs, no entities beyond XML's five and character references): enough
//! for what a server sends on such a stream, and it returns an error,
//! never panics, on anything else.

use anyhow::{bail, Context as _, Result};
use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use tokio_tungstenite::tungstenite::Message;

use crate::net::{self, Ws};

/// The bench node's only virtual host.
pub(crate) const DOMAIN: &str = "localhost";
/// The resource every bench client binds (peers address full JIDs).
pub(crate) const RESOURCE: &str = "r";
/// Stream management's namespace (XEP-0198 version 3).
const SM: &str = "urn:xmpp:sm:3";
/// The multi-user chat service of the bench node (mod_muc's default host).
pub(crate) const MUC_DOMAIN: &str = "conference.localhost";
/// The sender's request for an acknowledgement, sent after each message.
pub(crate) const REQUEST_ACK: &str = "<r xmlns='urn:xmpp:sm:3'/>";

/// The user name of bench user `i`.
pub(crate) fn user(i: usize) -> String {
    format!("u{i}")
}

/// The full JID of bench user `i`.
pub(crate) fn full_jid(i: usize) -> String {
    format!("u{i}@{DOMAIN}/{RESOURCE}")
}

/// One XML element: its local name (any prefix dropped), attributes,
/// child elements and character data (all text children, concatenated).
#[derive(Debug, Default)]
pub(crate) struct Element {
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) children: Vec<Element>,
    pub(crate) text: String,
}

impl Element {
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }
}

/// Nesting deeper than this is refused (no stanza here comes close).
const MAX_DEPTH: usize = 64;

/// Parses one element (with an optional XML declaration, comments and
/// surrounding whitespace).
pub(crate) fn parse(s: &str) -> Result<Element> {
    let mut p = Parser { s, i: 0 };
    p.skip_misc()?;
    let e = p.element(0)?;
    p.skip_misc()?;
    if p.i != s.len() {
        bail!("trailing data after the element");
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a str,
    i: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.s[self.i..]
    }

    fn skip_ws(&mut self) {
        let r = self.rest();
        self.i += r.len() - r.trim_start().len();
    }

    /// Skips whitespace, `<?...?>` and `<!--...-->`.
    fn skip_misc(&mut self) -> Result<()> {
        loop {
            self.skip_ws();
            if self.rest().starts_with("<?") {
                self.skip_past("?>")?;
            } else if self.rest().starts_with("<!--") {
                self.skip_past("-->")?;
            } else {
                return Ok(());
            }
        }
    }

    fn skip_past(&mut self, end: &str) -> Result<()> {
        let at = self.rest().find(end).context("unterminated markup")?;
        self.i += at + end.len();
        Ok(())
    }

    fn name(&mut self) -> Result<&str> {
        let r = self.rest();
        let n = r
            .find(|c: char| c.is_whitespace() || matches!(c, '/' | '>' | '='))
            .unwrap_or(r.len());
        if n == 0 {
            bail!("expected a name");
        }
        let start = self.i;
        self.i += n;
        Ok(&self.s[start..self.i])
    }

    fn element(&mut self, depth: usize) -> Result<Element> {
        if depth > MAX_DEPTH {
            bail!("elements nested too deep");
        }
        if !self.rest().starts_with('<') {
            bail!("expected an element");
        }
        self.i += 1;
        let qname = self.name()?;
        let mut e = Element {
            name: local(qname).to_owned(),
            ..Default::default()
        };
        let qname = qname.to_owned();
        loop {
            self.skip_ws();
            let r = self.rest();
            if r.starts_with("/>") {
                self.i += 2;
                return Ok(e);
            }
            if r.starts_with('>') {
                self.i += 1;
                break;
            }
            let k = self.name()?.to_owned();
            self.skip_ws();
            if !self.rest().starts_with('=') {
                bail!("attribute {k} without a value");
            }
            self.i += 1;
            self.skip_ws();
            let q = self.rest().chars().next().context("truncated attribute")?;
            if q != '"' && q != '\'' {
                bail!("unquoted attribute {k}");
            }
            self.i += 1;
            let end = self.rest().find(q).context("unterminated attribute")?;
            let v = unescape(&self.rest()[..end])?;
            self.i += end + 1;
            e.attrs.push((k, v));
        }
        // Content.
        loop {
            let r = self.rest();
            if r.is_empty() {
                bail!("unterminated element {qname}");
            } else if let Some(after) = r.strip_prefix("</") {
                let end = after.find('>').context("unterminated end tag")?;
                if after[..end].trim_end() != qname {
                    bail!("end tag {} does not close {qname}", &after[..end]);
                }
                self.i += 2 + end + 1;
                return Ok(e);
            } else if r.starts_with("<!--") {
                self.skip_past("-->")?;
            } else if let Some(after) = r.strip_prefix("<![CDATA[") {
                let end = after.find("]]>").context("unterminated CDATA")?;
                e.text.push_str(&after[..end]);
                self.i += 9 + end + 3;
            } else if r.starts_with('<') {
                let child = self.element(depth + 1)?;
                e.children.push(child);
            } else {
                let end = r.find('<').unwrap_or(r.len());
                e.text.push_str(&unescape(&r[..end])?);
                self.i += end;
            }
        }
    }
}

fn local(qname: &str) -> &str {
    qname.rsplit_once(':').map_or(qname, |(_, l)| l)
}

/// Resolves XML's five entities and character references.
fn unescape(s: &str) -> Result<String> {
    if !s.contains('&') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let end = after.find(';').context("unterminated entity")?;
        let ent = &after[..end];
        let c = match ent {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(h) = ent.strip_prefix("#x") {
                    u32::from_str_radix(h, 16).ok()
                } else if let Some(d) = ent.strip_prefix('#') {
                    d.parse().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .with_context(|| format!("unknown entity &{ent};"))?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Escapes text for character data and attribute values.
pub(crate) fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// A chat message to `to` (a full JID) with `id` and body `text`.
pub(crate) fn encode_message(to: &str, id: &str, text: &str) -> Message {
    encode_typed("chat", to, id, text)
}

/// A `<message>` of `kind` (`chat`, `groupchat`) to `to` with `id` and body `text`.
fn encode_typed(kind: &str, to: &str, id: &str, text: &str) -> Message {
    let mut s = String::with_capacity(text.len() + 96);
    s.push_str("<message type='");
    s.push_str(kind);
    s.push_str("' to='");
    escape_into(&mut s, to);
    s.push_str("' id='");
    escape_into(&mut s, id);
    s.push_str("'><body>");
    escape_into(&mut s, text);
    s.push_str("</body></message>");
    Message::text(s)
}

/// The bare JID of bench room `g`.
pub(crate) fn room_jid(g: usize) -> String {
    format!("g{g}@{MUC_DOMAIN}")
}

/// A groupchat message to the room `room` (a bare JID) with `id` and body `text`.
pub(crate) fn encode_groupchat(room: &str, id: &str, text: &str) -> Message {
    encode_typed("groupchat", room, id, text)
}

/// The answer to the server's `<r/>`: stanzas handled so far.
pub(crate) fn encode_ack(handled: u32) -> Message {
    let mut s = String::with_capacity(48);
    let _ = write!(s, "<a xmlns='{SM}' h='{handled}'/>");
    Message::text(s)
}

/// What a frame from the server means to the relay.
pub(crate) enum Incoming {
    /// A chat message's body (a stanza: counts as handled).
    Delivered(String),
    /// A message of type error (a stanza).
    Error,
    /// Any other stanza (presence, iq, message without a body).
    Stanza,
    /// Stream management: the server acknowledged `h` of our stanzas.
    Acked(u32),
    /// Stream management: the server asks how many of its stanzas we handled.
    AckRequest,
    /// The stream ends (`<close/>`, a stream error).
    Closed(String),
    Other,
}

pub(crate) fn classify(msg: &Message) -> Incoming {
    let text = match msg {
        Message::Text(t) => t.as_str(),
        Message::Binary(b) => match std::str::from_utf8(b) {
            Ok(t) => t,
            Err(_) => return Incoming::Other,
        },
        Message::Close(c) => return Incoming::Closed(format!("websocket close {c:?}")),
        _ => return Incoming::Other,
    };
    let e = match parse(text) {
        Ok(e) => e,
        Err(_) => return Incoming::Other,
    };
    match e.name.as_str() {
        "message" if e.attr("type") == Some("error") => Incoming::Error,
        "message" => match e.child("body") {
            Some(b) => Incoming::Delivered(b.text.clone()),
            None => Incoming::Stanza,
        },
        "presence" | "iq" => Incoming::Stanza,
        "a" => Incoming::Acked(e.attr("h").and_then(|h| h.parse().ok()).unwrap_or(0)),
        "r" => Incoming::AckRequest,
        "close" | "error" => Incoming::Closed(text.to_owned()),
        _ => Incoming::Other,
    }
}

/// Reads the next element from the server (WebSocket pings are answered
/// by tungstenite).
async fn next(ws: &mut Ws, what: &str) -> Result<Element> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => {
                let e = parse(t.as_str()).with_context(|| format!("{what}: bad XML {t:?}"))?;
                if e.name == "error" || e.name == "close" {
                    bail!("{what}: the server ended the stream: {t}");
                }
                return Ok(e);
            }
            Some(Ok(Message::Close(c))) => bail!("{what}: the server closed: {c:?}"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e).context(what.to_owned()),
            None => bail!("{what}: connection closed"),
        }
    }
}

/// Opens (or restarts) the stream; returns the server's features.
async fn open(ws: &mut Ws) -> Result<Element> {
    ws.send(Message::text(format!(
        "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='{DOMAIN}' version='1.0'/>"
    )))
    .await?;
    let mut opened = false;
    loop {
        let e = next(ws, "stream open").await?;
        match e.name.as_str() {
            "open" => opened = true,
            "features" if opened => return Ok(e),
            other => bail!("stream open: unexpected <{other}>"),
        }
    }
}

/// Sends an iq and waits for its answer (other stanzas before it are
/// skipped); returns the result, or an error for `type='error'`.
async fn iq(ws: &mut Ws, id: &str, kind: &str, payload: &str) -> Result<Element> {
    ws.send(Message::text(format!(
        "<iq type='{kind}' id='{id}'>{payload}</iq>"
    )))
    .await?;
    loop {
        let e = next(ws, id).await?;
        if e.name == "iq" && e.attr("id") == Some(id) {
            return Ok(e);
        }
    }
}

/// Registers `user` in-band (XEP-0077) on a stream opened with `features`;
/// an existing account is fine.
async fn register_on(ws: &mut Ws, features: &Element, user: &str, password: &str) -> Result<()> {
    if features.child("register").is_none() {
        bail!("the server offers no in-band registration");
    }
    let r = iq(
        ws,
        "reg",
        "set",
        &format!(
            "<query xmlns='jabber:iq:register'><username>{}</username><password>{}</password></query>",
            escape(user),
            escape(password)
        ),
    )
    .await?;
    let conflict = r
        .child("error")
        .is_some_and(|e| e.child("conflict").is_some());
    if r.attr("type") != Some("result") && !conflict {
        let why = r
            .child("error")
            .and_then(|e| e.children.first())
            .map_or("?", |c| c.name.as_str());
        bail!("registering {user} failed: {why}");
    }
    Ok(())
}

/// Registers user `i` on a connection of its own, closed after: the
/// account exists before the connection that is measured.
pub(crate) async fn register(
    addr: SocketAddr,
    src: Ipv4Addr,
    i: usize,
    password: &str,
) -> Result<()> {
    let mut ws = net::connect(addr, "/ws", src, Some("xmpp"), true).await?;
    let features = open(&mut ws).await?;
    register_on(&mut ws, &features, &user(i), password).await?;
    let _ = ws
        .send(Message::text(
            "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>",
        ))
        .await;
    let _ = ws.close(None).await;
    Ok(())
}

/// Connects user `i` over WebSocket from `src`: registers it first if
/// `register` (XEP-0077; an existing account is fine), then SASL PLAIN,
/// binds [`RESOURCE`], starts the session, enables stream management and
/// sends initial presence. Ready to relay: the next stanza it receives is
/// the first to count for stream management's `h`.
pub(crate) async fn connect(
    addr: SocketAddr,
    src: Ipv4Addr,
    i: usize,
    password: &str,
    register: bool,
) -> Result<Ws> {
    connect_with(addr, src, i, password, register, false).await
}

/// [`connect`], with the generator's small buffers if `small` (idle connections).
pub(crate) async fn connect_with(
    addr: SocketAddr,
    src: Ipv4Addr,
    i: usize,
    password: &str,
    register: bool,
    small: bool,
) -> Result<Ws> {
    let mut ws = net::connect(addr, "/ws", src, Some("xmpp"), small).await?;
    let user = user(i);
    let features = open(&mut ws).await?;
    if register {
        register_on(&mut ws, &features, &user, password).await?;
    }
    let plain = features
        .child("mechanisms")
        .is_some_and(|m| m.children.iter().any(|c| c.text == "PLAIN"));
    if !plain {
        bail!("the server does not offer SASL PLAIN");
    }
    let creds = base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
    ws.send(Message::text(format!(
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{creds}</auth>"
    )))
    .await?;
    let e = next(&mut ws, "sasl").await?;
    if e.name != "success" {
        bail!("SASL PLAIN for {user} failed: <{}>", e.name);
    }
    let features = open(&mut ws).await?;
    let r = iq(
        &mut ws,
        "bind",
        "set",
        &format!(
            "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>{RESOURCE}</resource></bind>"
        ),
    )
    .await?;
    let jid = r
        .child("bind")
        .and_then(|b| b.child("jid"))
        .map(|j| j.text.as_str());
    if jid != Some(full_jid(i).as_str()) {
        bail!("bind for {user} gave {jid:?}, not {}", full_jid(i));
    }
    if features.child("session").is_some() {
        let r = iq(
            &mut ws,
            "sess",
            "set",
            "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>",
        )
        .await?;
        if r.attr("type") != Some("result") {
            bail!("session for {user} refused");
        }
    }
    if features.child("sm").is_none() {
        bail!("the server offers no stream management");
    }
    ws.send(Message::text(format!("<enable xmlns='{SM}'/>")))
        .await?;
    loop {
        let e = next(&mut ws, "sm enable").await?;
        match e.name.as_str() {
            "enabled" => break,
            "failed" => bail!("stream management refused for {user}"),
            _ => {}
        }
    }
    ws.send(Message::text("<presence/>")).await?;
    Ok(ws)
}

/// Reads the next stanza or nonza: stanzas (message, presence, iq) count
/// in `handled`, and the server's `<r/>` is answered with it.
async fn next_counted(ws: &mut Ws, handled: &mut u32, what: &str) -> Result<Element> {
    loop {
        let e = next(ws, what).await?;
        match e.name.as_str() {
            "message" | "presence" | "iq" => {
                *handled = handled.wrapping_add(1);
                return Ok(e);
            }
            "r" => ws.send(encode_ack(*handled)).await?,
            _ => {}
        }
    }
}

/// Enters room `room` (a bare JID) as `nick` (XEP-0045), without history;
/// if `create`, the room is new and this member its owner, who unlocks it
/// as an instant room (default configuration). Returns when the server
/// has sent this occupant's own presence (after everyone else's) and, when
/// creating, accepted the configuration. `handled` counts the stanzas
/// received (stream management).
pub(crate) async fn join_room(
    ws: &mut Ws,
    room: &str,
    nick: &str,
    create: bool,
    handled: &mut u32,
) -> Result<()> {
    let me = format!("{room}/{nick}");
    let mut s = String::with_capacity(160);
    s.push_str("<presence to='");
    escape_into(&mut s, &me);
    s.push_str(
        "'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>",
    );
    ws.send(Message::text(s)).await?;
    loop {
        let e = next_counted(ws, handled, "room join").await?;
        if e.name == "presence" && e.attr("from") == Some(me.as_str()) {
            if e.attr("type") == Some("error") {
                let why = e
                    .child("error")
                    .and_then(|e| e.children.first())
                    .map_or("?", |c| c.name.as_str());
                bail!("joining {me} refused: {why}");
            }
            break;
        }
    }
    if create {
        let mut s = String::with_capacity(200);
        s.push_str("<iq type='set' id='cfg' to='");
        escape_into(&mut s, room);
        s.push_str("'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>");
        ws.send(Message::text(s)).await?;
        loop {
            let e = next_counted(ws, handled, "room configuration").await?;
            if e.name == "iq" && e.attr("id") == Some("cfg") {
                if e.attr("type") != Some("result") {
                    bail!("the instant room {room} was refused");
                }
                break;
            }
        }
    }
    Ok(())
}

/// Reads (counting stanzas, answering `<r/>`) until `stop` fires: a
/// member that has joined keeps its stream read while the others join.
pub(crate) async fn drain_until(
    ws: &mut Ws,
    handled: &mut u32,
    stop: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            e = next_counted(ws, handled, "waiting for the run") => { e?; }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stanzas() {
        let e = parse(
            "<message xmlns='jabber:client' from='u1@localhost/r' type=\"chat\"><body>a&lt;b&#x41;</body></message>",
        )
        .unwrap();
        assert_eq!(e.name, "message");
        assert_eq!(e.attr("type"), Some("chat"));
        assert_eq!(e.child("body").unwrap().text, "a<bA");
        let f = parse("<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms><sm xmlns='urn:xmpp:sm:3'/></stream:features>").unwrap();
        assert_eq!(f.name, "features");
        assert!(f.child("sm").is_some());
        let a = parse("<a xmlns='urn:xmpp:sm:3' h='42'/>").unwrap();
        assert_eq!(a.attr("h"), Some("42"));
    }

    #[test]
    fn refuses_bad_xml_without_panicking() {
        for bad in [
            "",
            "<",
            "<a",
            "<a b>",
            "<a b='c>",
            "<a></b>",
            "<a>&bogus;</a>",
            "<a>&#xffffffff;</a>",
            "<a/><b/>",
            "text",
            "<a><!-- x",
            "<a><![CDATA[x",
            "<é",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&deep).is_err());
    }

    #[test]
    fn groupchat_messages_go_to_the_room() {
        let m = encode_groupchat(&room_jid(3), "a'1", "x<y");
        let e = parse(m.to_text().unwrap()).unwrap();
        assert_eq!(e.attr("type"), Some("groupchat"));
        assert_eq!(e.attr("to"), Some("g3@conference.localhost"));
        assert_eq!(e.attr("id"), Some("a'1"));
        assert_eq!(e.child("body").unwrap().text, "x<y");
    }

    #[test]
    fn escapes() {
        let m = encode_message("u1@localhost/r", "1", "<&'\">");
        let e = parse(m.to_text().unwrap()).unwrap();
        assert_eq!(e.child("body").unwrap().text, "<&'\">");
    }
}
