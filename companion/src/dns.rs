//! A minimal DNS stub client (RFC 1035) for `validate --dns-server`: A and AAAA queries to one
//! server over UDP, again over TCP when the answer is truncated.
//!
//! Each query gets a random 16-bit ID; an answer is taken only when it is a response (QR) with
//! that ID and echoes the question, anything else on the socket is ignored until the timeout. A
//! try that times out (or fails to send) is repeated with a new ID, [`TRIES`] times in all. The
//! RCODE decides: NOERROR gives the addresses (possibly none: "no data"), NXDOMAIN, SERVFAIL and
//! REFUSED are errors of their own. CNAME chains are followed inside the answer section, as a
//! recursive resolver returns them. No EDNS, no DNSSEC, no search list, no cache.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const DEFAULT_PORT: u16 = 53;
/// How long one try waits for its answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// Tries per query (a timeout is retried with a new ID).
pub const TRIES: u32 = 2;
/// CNAMEs followed before giving up (a loop, or a chain nobody should have).
const MAX_CNAMES: usize = 16;

const CLASS_IN: u16 = 1;
const TYPE_CNAME: u16 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RecordType {
    A,
    Aaaa,
}

impl RecordType {
    pub fn code(self) -> u16 {
        match self {
            RecordType::A => 1,
            RecordType::Aaaa => 28,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        }
    }
}

impl fmt::Display for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a query has no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("NXDOMAIN (no such name)")]
    NxDomain,
    #[error("SERVFAIL (the server could not answer)")]
    ServFail,
    #[error("REFUSED (the server does not answer for this name)")]
    Refused,
    #[error("RCODE {0}")]
    Rcode(u8),
    /// No answer: the tries, each waited for this long.
    #[error("timeout (no answer in {tries} tries of {} s)", .each.as_secs_f64())]
    Timeout { tries: u32, each: Duration },
    #[error("{0}")]
    Io(String),
    #[error("not a DNS name: {0}")]
    BadName(String),
    #[error("malformed answer: {0}")]
    Malformed(String),
    #[error("CNAME chain too long or looping at {0}")]
    CnameLoop(String),
}

/// The addresses a name has, after the CNAMEs on the way (in order, empty without one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub addresses: Vec<IpAddr>,
    pub cnames: Vec<String>,
}

/// A name's A and AAAA answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    pub a: Result<Answer, DnsError>,
    pub aaaa: Result<Answer, DnsError>,
}

impl Lookup {
    pub fn get(&self, t: RecordType) -> &Result<Answer, DnsError> {
        match t {
            RecordType::A => &self.a,
            RecordType::Aaaa => &self.aaaa,
        }
    }
}

/// `ADDR` or `ADDR:PORT`, IPv6 as `ADDR` or `[ADDR]:PORT`; the port defaults to 53.
pub fn parse_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_PORT));
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Ok(sa);
    }
    if let Some(ip) = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .and_then(|r| r.parse::<Ipv6Addr>().ok())
    {
        return Ok(SocketAddr::new(IpAddr::V6(ip), DEFAULT_PORT));
    }
    Err(format!(
        "`{s}` is not ADDR[:PORT] (an IP address, e.g. 172.29.51.1 or 172.29.51.1:5353 or [fd00::1]:53)"
    ))
}

/// A name as the checks compare it: trimmed, lower case, without the trailing dot.
pub fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The stub resolver: one server, [`TIMEOUT`] per try, [`TRIES`] tries.
#[derive(Debug, Clone)]
pub struct Resolver {
    pub server: SocketAddr,
    pub timeout: Duration,
    pub tries: u32,
}

impl Resolver {
    pub fn new(server: SocketAddr) -> Resolver {
        Resolver {
            server,
            timeout: TIMEOUT,
            tries: TRIES,
        }
    }

    /// A and AAAA of `name`, asked at the same time.
    pub async fn lookup(&self, name: &str) -> Lookup {
        let (a, aaaa) = tokio::join!(
            self.query(name, RecordType::A),
            self.query(name, RecordType::Aaaa)
        );
        Lookup { a, aaaa }
    }

    /// The addresses of `rtype` for `name`.
    pub async fn query(&self, name: &str, rtype: RecordType) -> Result<Answer, DnsError> {
        let name = normalize(name);
        encode_name(&name)?;
        let mut last = None;
        for _ in 0..self.tries.max(1) {
            let id = fastrand::u16(..);
            let query = build_query(id, &name, rtype)?;
            match self.udp(&query, id, &name, rtype).await {
                Ok(msg) if msg.truncated => {
                    let id = fastrand::u16(..);
                    let query = build_query(id, &name, rtype)?;
                    let msg = self.tcp(&query, id, &name, rtype).await?;
                    return resolve(&msg, &name, rtype);
                }
                Ok(msg) => return resolve(&msg, &name, rtype),
                Err(e) => {
                    tracing::debug!(server = %self.server, %name, %rtype, "DNS try failed: {e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(DnsError::Timeout {
            tries: self.tries,
            each: self.timeout,
        }))
    }

    /// One UDP try: waits until the timeout for a matching answer, ignoring others.
    async fn udp(
        &self,
        query: &[u8],
        id: u16,
        name: &str,
        rtype: RecordType,
    ) -> Result<Message, DnsError> {
        let local: SocketAddr = match self.server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let io = |e: std::io::Error| DnsError::Io(format!("{}: {e}", self.server));
        let sock = tokio::net::UdpSocket::bind(local).await.map_err(io)?;
        // Connected: the kernel drops datagrams from any other address.
        sock.connect(self.server).await.map_err(io)?;
        sock.send(query).await.map_err(io)?;
        let deadline = Instant::now() + self.timeout;
        let mut buf = vec![0u8; 65535];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let n = match tokio::time::timeout(left, sock.recv(&mut buf)).await {
                Err(_) => {
                    return Err(DnsError::Timeout {
                        tries: self.tries,
                        each: self.timeout,
                    })
                }
                Ok(r) => r.map_err(io)?,
            };
            match parse(&buf[..n]) {
                Ok(msg) if msg.answers_query(id, name, rtype) => return Ok(msg),
                Ok(msg) => tracing::debug!(
                    "ignored a DNS message for another query (id {}, expected {id})",
                    msg.id
                ),
                Err(e) => tracing::debug!("ignored a DNS message: {e}"),
            }
        }
    }

    /// The query again over TCP (two-byte length prefix), one connection, within the timeout.
    async fn tcp(
        &self,
        query: &[u8],
        id: u16,
        name: &str,
        rtype: RecordType,
    ) -> Result<Message, DnsError> {
        let io = |e: std::io::Error| DnsError::Io(format!("{} over TCP: {e}", self.server));
        let exchange = async {
            let mut stream = tokio::net::TcpStream::connect(self.server)
                .await
                .map_err(io)?;
            let len = u16::try_from(query.len()).expect("a query is short");
            let mut out = len.to_be_bytes().to_vec();
            out.extend_from_slice(query);
            stream.write_all(&out).await.map_err(io)?;
            let mut len = [0u8; 2];
            stream.read_exact(&mut len).await.map_err(io)?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            stream.read_exact(&mut buf).await.map_err(io)?;
            let msg = parse(&buf)?;
            if !msg.answers_query(id, name, rtype) {
                return Err(DnsError::Malformed(format!(
                    "the TCP answer is for another query (id {}, expected {id})",
                    msg.id
                )));
            }
            if msg.truncated {
                return Err(DnsError::Malformed("truncated over TCP".into()));
            }
            Ok(msg)
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(DnsError::Timeout {
                tries: 1,
                each: self.timeout,
            }))
    }
}

/// The wire form of `name` (`name` normalized, not the root).
fn encode_name(name: &str) -> Result<Vec<u8>, DnsError> {
    let bad = |why: &str| DnsError::BadName(format!("{name:?}: {why}"));
    if name.is_empty() {
        return Err(bad("empty"));
    }
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.split('.') {
        if label.is_empty() {
            return Err(bad("an empty label"));
        }
        if label.len() > 63 {
            return Err(bad("a label longer than 63 bytes"));
        }
        if !label.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(
                "not ASCII (write an international name in its xn-- form)",
            ));
        }
        out.push(u8::try_from(label.len()).expect("at most 63"));
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() > 255 {
        return Err(bad("longer than 255 bytes"));
    }
    Ok(out)
}

/// A standard query with recursion desired, one question of class IN.
pub fn build_query(id: u16, name: &str, rtype: RecordType) -> Result<Vec<u8>, DnsError> {
    let mut out = Vec::with_capacity(12 + name.len() + 6);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    out.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    out.extend_from_slice(&[0; 6]); // ANCOUNT, NSCOUNT, ARCOUNT
    out.extend_from_slice(&encode_name(name)?);
    out.extend_from_slice(&rtype.code().to_be_bytes());
    out.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(out)
}

/// What the client reads of a message: header, question, answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: u16,
    pub response: bool,
    pub opcode: u8,
    pub truncated: bool,
    pub rcode: u8,
    /// (name, type, class)
    pub questions: Vec<(String, u16, u16)>,
    /// Empty when the message is truncated (a cut answer section is not read).
    pub answers: Vec<Record>,
}

impl Message {
    /// A response to the query `id` for `name`/`rtype`, echoing its question.
    fn answers_query(&self, id: u16, name: &str, rtype: RecordType) -> bool {
        self.id == id
            && self.response
            && self.opcode == 0
            && matches!(self.questions.as_slice(),
                [(n, t, c)] if n.eq_ignore_ascii_case(name) && *t == rtype.code() && *c == CLASS_IN)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub name: String,
    pub class: u16,
    pub data: RData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    Other(u16),
}

/// Parses a message; the answer section only when it is not truncated.
pub fn parse(buf: &[u8]) -> Result<Message, DnsError> {
    let mut r = Reader { buf, pos: 0 };
    let id = r.u16()?;
    let flags = r.u16()?;
    let qd = r.u16()?;
    let an = r.u16()?;
    let _ns = r.u16()?;
    let _ar = r.u16()?;
    let mut msg = Message {
        id,
        response: flags & 0x8000 != 0,
        opcode: ((flags >> 11) & 0xf) as u8,
        truncated: flags & 0x0200 != 0,
        rcode: (flags & 0xf) as u8,
        questions: Vec::new(),
        answers: Vec::new(),
    };
    for _ in 0..qd {
        let name = r.name()?;
        let t = r.u16()?;
        let c = r.u16()?;
        msg.questions.push((name, t, c));
    }
    if msg.truncated {
        return Ok(msg);
    }
    for _ in 0..an {
        let name = r.name()?;
        let t = r.u16()?;
        let class = r.u16()?;
        let _ttl = r.u32()?;
        let len = usize::from(r.u16()?);
        let start = r.pos;
        let end = start + len;
        if end > buf.len() {
            return Err(DnsError::Malformed(format!(
                "record data of {len} bytes past the end"
            )));
        }
        let data = match (t, len) {
            (1, 4) => RData::A(Ipv4Addr::new(
                buf[start],
                buf[start + 1],
                buf[start + 2],
                buf[start + 3],
            )),
            (28, 16) => {
                let mut b = [0u8; 16];
                b.copy_from_slice(&buf[start..end]);
                RData::Aaaa(Ipv6Addr::from(b))
            }
            (1 | 28, _) => {
                return Err(DnsError::Malformed(format!(
                    "type {t} record of {len} bytes"
                )))
            }
            (TYPE_CNAME, _) => {
                let target = r.name()?;
                if r.pos != end {
                    return Err(DnsError::Malformed("CNAME data length".into()));
                }
                RData::Cname(target)
            }
            _ => RData::Other(t),
        };
        r.pos = end;
        msg.answers.push(Record { name, class, data });
    }
    Ok(msg)
}

/// The answer to `name`/`rtype` in a response: the RCODE, then the addresses at the end of the
/// CNAME chain that starts at `name`.
pub fn resolve(msg: &Message, name: &str, rtype: RecordType) -> Result<Answer, DnsError> {
    match msg.rcode {
        0 => {}
        2 => return Err(DnsError::ServFail),
        3 => return Err(DnsError::NxDomain),
        5 => return Err(DnsError::Refused),
        n => return Err(DnsError::Rcode(n)),
    }
    let mut answer = Answer::default();
    let mut current = normalize(name);
    loop {
        let here = msg
            .answers
            .iter()
            .filter(|r| r.class == CLASS_IN && r.name.eq_ignore_ascii_case(&current));
        answer.addresses = here
            .clone()
            .filter_map(|r| match (&r.data, rtype) {
                (RData::A(a), RecordType::A) => Some(IpAddr::V4(*a)),
                (RData::Aaaa(a), RecordType::Aaaa) => Some(IpAddr::V6(*a)),
                _ => None,
            })
            .collect();
        if !answer.addresses.is_empty() {
            return Ok(answer);
        }
        let Some(target) = here.into_iter().find_map(|r| match &r.data {
            RData::Cname(t) => Some(normalize(t)),
            _ => None,
        }) else {
            return Ok(answer);
        };
        if answer.cnames.len() >= MAX_CNAMES
            || answer.cnames.contains(&target)
            || target == normalize(name)
        {
            return Err(DnsError::CnameLoop(target));
        }
        answer.cnames.push(target.clone());
        current = target;
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn short() -> DnsError {
        DnsError::Malformed("message ends early".into())
    }

    fn u8(&mut self) -> Result<u8, DnsError> {
        let b = *self.buf.get(self.pos).ok_or_else(Self::short)?;
        self.pos += 1;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, DnsError> {
        Ok(u16::from(self.u8()?) << 8 | u16::from(self.u8()?))
    }

    fn u32(&mut self) -> Result<u32, DnsError> {
        Ok(u32::from(self.u16()?) << 16 | u32::from(self.u16()?))
    }

    /// A name, following compression pointers (each strictly backwards, so no loop), lower case,
    /// without the trailing dot; odd bytes escaped as `\DDD`.
    fn name(&mut self) -> Result<String, DnsError> {
        let mut labels: Vec<String> = Vec::new();
        let mut pos = self.pos;
        let mut resume = None;
        let mut wire = 0usize;
        loop {
            let len = *self.buf.get(pos).ok_or_else(Self::short)?;
            match len & 0xc0 {
                0x00 if len == 0 => {
                    pos += 1;
                    break;
                }
                0x00 => {
                    let len = usize::from(len);
                    let label = self
                        .buf
                        .get(pos + 1..pos + 1 + len)
                        .ok_or_else(Self::short)?;
                    wire += len + 1;
                    if wire > 255 {
                        return Err(DnsError::Malformed("a name longer than 255 bytes".into()));
                    }
                    labels.push(
                        label
                            .iter()
                            .map(|&b| match b {
                                b'.' | b'\\' => format!("\\{b:03}"),
                                _ if b.is_ascii_graphic() => {
                                    char::from(b.to_ascii_lowercase()).to_string()
                                }
                                _ => format!("\\{b:03}"),
                            })
                            .collect(),
                    );
                    pos += 1 + len;
                }
                0xc0 => {
                    let low = *self.buf.get(pos + 1).ok_or_else(Self::short)?;
                    let target = usize::from(len & 0x3f) << 8 | usize::from(low);
                    if target >= pos {
                        return Err(DnsError::Malformed(
                            "a compression pointer that does not point backwards".into(),
                        ));
                    }
                    resume.get_or_insert(pos + 2);
                    pos = target;
                }
                _ => return Err(DnsError::Malformed(format!("label type {len:#04x}"))),
            }
        }
        self.pos = resume.unwrap_or(pos);
        Ok(labels.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Answers of dnsmasq 2.90 (Debian 12) to the queries below, captured off the wire:
    // --local=/example.lan/ --host-record=web.example.lan,172.29.52.100
    // --cname=alias.example.lan,web.example.lan --host-record=v6.example.lan,fd47:25e1:2f96:52:100::5
    // and 40 --host-record=big.example.lan,10.0.0.N.
    /// web.example.lan A, ID 0x1234.
    const WEB_A: &str = "12348580000100010000000003776562076578616d706c65036c616e0000010001c00c00010001000000000004ac1d3464";
    /// alias.example.lan A, ID 0x2345: the CNAME, then web's A (both compressed).
    const ALIAS_A: &str = "23458580000100020000000005616c696173076578616d706c65036c616e0000010001c00c0005000100000000001103776562076578616d706c65036c616e00c02f00010001000000000004ac1d3464";
    /// missing.example.lan A, ID 0x3456: NXDOMAIN.
    const MISSING_A: &str =
        "345681830001000000000000076d697373696e67076578616d706c65036c616e0000010001";
    /// v6.example.lan AAAA, ID 0x4567.
    const V6_AAAA: &str = "456785800001000100000000027636076578616d706c65036c616e00001c0001c00c001c0001000000000010fd4725e12f9600520100000000000005";
    /// web.example.lan AAAA, ID 0x5678: NOERROR, no data.
    const WEB_AAAA: &str = "56788180000100000000000003776562076578616d706c65036c616e00001c0001";
    /// big.example.lan A over UDP, ID 0x6789: TC set, 29 of the 40 records (the first three bytes
    /// of the answer section kept; the parser never reads it).
    const BIG_A_TC: &str = "678987800001001d0000000003626967076578616d706c65036c616e0000010001c00c000100010000000000040a000003";

    #[test]
    fn the_query_is_what_dnsmasq_answered() {
        // Header: the ID, RD, one question; the question dnsmasq echoed is byte for byte ours.
        let q = build_query(0x1234, "web.example.lan", RecordType::A).unwrap();
        assert_eq!(&q[..12], &hex("123401000001000000000000")[..]);
        assert_eq!(&q[12..], &hex(WEB_A)[12..q.len()]);
        let q = build_query(0x4567, "v6.example.lan", RecordType::Aaaa).unwrap();
        assert_eq!(&q[12..], &hex(V6_AAAA)[12..q.len()]);
        // Names are normalized by the caller.
        assert!(build_query(1, "web.example.lan.", RecordType::A).is_err());
    }

    #[test]
    fn a_plain_answer() {
        let m = parse(&hex(WEB_A)).unwrap();
        assert!(m.answers_query(0x1234, "web.example.lan", RecordType::A));
        assert!(!m.answers_query(0x1235, "web.example.lan", RecordType::A));
        assert!(!m.answers_query(0x1234, "www.example.lan", RecordType::A));
        assert!(!m.answers_query(0x1234, "web.example.lan", RecordType::Aaaa));
        assert_eq!(
            resolve(&m, "web.example.lan", RecordType::A).unwrap(),
            Answer {
                addresses: vec!["172.29.52.100".parse().unwrap()],
                cnames: vec![]
            }
        );
        let m = parse(&hex(V6_AAAA)).unwrap();
        assert_eq!(
            resolve(&m, "v6.example.lan", RecordType::Aaaa)
                .unwrap()
                .addresses,
            vec!["fd47:25e1:2f96:52:100::5".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn a_cname_chain_is_followed_in_the_answer() {
        let m = parse(&hex(ALIAS_A)).unwrap();
        assert_eq!(m.answers.len(), 2);
        assert_eq!(
            m.answers[0].data,
            RData::Cname("web.example.lan".to_string())
        );
        assert_eq!(
            resolve(&m, "alias.example.lan", RecordType::A).unwrap(),
            Answer {
                addresses: vec!["172.29.52.100".parse().unwrap()],
                cnames: vec!["web.example.lan".into()]
            }
        );
        // An address record for another owner is not this name's.
        let mut other = m.clone();
        other.answers.remove(0);
        assert_eq!(
            resolve(&other, "alias.example.lan", RecordType::A).unwrap(),
            Answer::default()
        );
        // A loop is an error, not a hang.
        let mut looped = m.clone();
        looped.answers[1].data = RData::Cname("alias.example.lan".into());
        assert_eq!(
            resolve(&looped, "alias.example.lan", RecordType::A),
            Err(DnsError::CnameLoop("alias.example.lan".into()))
        );
    }

    #[test]
    fn rcodes() {
        let m = parse(&hex(MISSING_A)).unwrap();
        assert!(m.answers_query(0x3456, "missing.example.lan", RecordType::A));
        assert_eq!(
            resolve(&m, "missing.example.lan", RecordType::A),
            Err(DnsError::NxDomain)
        );
        let m = parse(&hex(WEB_AAAA)).unwrap();
        assert_eq!(
            resolve(&m, "web.example.lan", RecordType::Aaaa).unwrap(),
            Answer::default()
        );
        // The same answer with RCODE 2, 5, 4.
        for (rcode, e) in [
            (2u8, DnsError::ServFail),
            (5, DnsError::Refused),
            (4, DnsError::Rcode(4)),
        ] {
            let mut b = hex(WEB_AAAA);
            b[3] = (b[3] & 0xf0) | rcode;
            let m = parse(&b).unwrap();
            assert_eq!(resolve(&m, "web.example.lan", RecordType::Aaaa), Err(e));
        }
    }

    #[test]
    fn a_truncated_answer_is_recognized_without_reading_its_records() {
        let m = parse(&hex(BIG_A_TC)).unwrap();
        assert!(m.truncated);
        assert!(m.answers.is_empty());
        assert!(m.answers_query(0x6789, "big.example.lan", RecordType::A));
    }

    #[test]
    fn a_query_or_garbage_is_not_an_answer() {
        let q = parse(&build_query(7, "web.example.lan", RecordType::A).unwrap()).unwrap();
        assert!(!q.answers_query(7, "web.example.lan", RecordType::A));
        let full = hex(ALIAS_A);
        for n in 0..full.len() {
            // Every truncation parses or fails, never panics.
            let _ = parse(&full[..n]);
        }
        assert!(parse(&full[..full.len() - 1]).is_err());
        // A pointer to itself.
        let mut b = hex(WEB_A);
        let at = 33; // the answer's owner name, c0 0c
        b[at] = 0xc0;
        b[at + 1] = 33;
        assert!(matches!(parse(&b), Err(DnsError::Malformed(_))));
    }

    #[test]
    fn names_are_checked_before_asking() {
        assert!(encode_name("a.b").is_ok());
        assert!(encode_name("").is_err());
        assert!(encode_name("a..b").is_err());
        assert!(encode_name(&"x".repeat(64)).is_err());
        assert!(encode_name(&["abcdefghi"; 26].join(".")).is_err());
        assert!(encode_name("bücher.example").is_err());
        assert_eq!(normalize(" Web.Example.LAN. "), "web.example.lan");
    }

    #[test]
    fn servers() {
        assert_eq!(
            parse_server("172.29.51.1").unwrap(),
            "172.29.51.1:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("172.29.51.1:5353").unwrap(),
            "172.29.51.1:5353".parse().unwrap()
        );
        assert_eq!(
            parse_server("fd00::1").unwrap(),
            "[fd00::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("[fd00::1]").unwrap(),
            "[fd00::1]:53".parse().unwrap()
        );
        assert_eq!(
            parse_server("[fd00::1]:54").unwrap(),
            "[fd00::1]:54".parse().unwrap()
        );
        assert!(parse_server("dns.example.lan").is_err());
        assert!(parse_server("1.2.3.4:99999").is_err());
    }
}
