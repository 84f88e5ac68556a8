//! A DNS message parser for what the kernel hands up from UDP port 53: the header, the
//! questions, and the A, AAAA and CNAME answers.
//!
//! Input is hostile (anything can send a datagram from port 53), so every read is bounds-checked
//! and every loop is bounded: each compression pointer must point before the previous one's
//! target (the targets strictly decrease, which makes a pointer loop impossible), at most
//! [`MAX_JUMPS`] are followed per name, names are at most
//! 255 bytes, at most [`MAX_RECORDS`] answers are read. A message that breaks a rule yields an
//! error or the records parsed before the break — never a panic.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Compression pointers followed for one name.
pub const MAX_JUMPS: usize = 32;
/// Answer records read from one message.
pub const MAX_RECORDS: usize = 64;
/// Longest name on the wire (RFC 1035 § 2.3.4).
const NAME_MAX: usize = 255;

/// A parsed DNS message (only what the events need).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub id: u16,
    /// QR bit: a response, not a query.
    pub response: bool,
    pub rcode: u8,
    /// The first question: name (no trailing dot) and type.
    pub question: Option<(String, u16)>,
    pub answers: Vec<Answer>,
    /// The answer section was cut short by a malformed or truncated record.
    pub answers_incomplete: bool,
}

/// One answer record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub name: String,
    pub ttl: u32,
    pub data: AnswerData,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerData {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Cname(String),
    /// Any other type (its number).
    Other(u16),
}

/// Why a message could not be parsed at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnsError {
    #[error("message shorter than the 12-byte header")]
    Short,
    #[error("name runs past the end of the message")]
    NameOverrun,
    #[error("compression pointer does not point backwards (a loop)")]
    PointerLoop,
    #[error("name longer than 255 bytes")]
    NameTooLong,
    #[error("unsupported label type {0:#04x}")]
    LabelType(u8),
    #[error("question runs past the end of the message")]
    QuestionOverrun,
}

fn u16_at(msg: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*msg.get(off)?, *msg.get(off + 1)?]))
}

fn u32_at(msg: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *msg.get(off)?,
        *msg.get(off + 1)?,
        *msg.get(off + 2)?,
        *msg.get(off + 3)?,
    ]))
}

/// Reads the name at `off`; returns it (dot-separated, no trailing dot, `.` for the root;
/// bytes outside printable ASCII and dots inside labels escaped as `\DDD`) and the offset just
/// past it in the message (past the first pointer, when it was compressed).
pub fn read_name(msg: &[u8], mut off: usize) -> Result<(String, usize), DnsError> {
    let mut name = String::new();
    let mut wire_len = 0usize;
    let mut end = None;
    let mut jumps = 0;
    let mut floor = off;
    loop {
        let len = *msg.get(off).ok_or(DnsError::NameOverrun)?;
        match len & 0xc0 {
            0x00 => {}
            0xc0 => {
                let low = *msg.get(off + 1).ok_or(DnsError::NameOverrun)?;
                let target = (usize::from(len & 0x3f) << 8) | usize::from(low);
                // Every pointer must point before the previous one's target (and before
                // itself): the targets strictly decrease, so no loop can form.
                if target >= floor || jumps >= MAX_JUMPS {
                    return Err(DnsError::PointerLoop);
                }
                floor = target;
                jumps += 1;
                end.get_or_insert(off + 2);
                off = target;
                continue;
            }
            other => return Err(DnsError::LabelType(other)),
        }
        if len == 0 {
            let end = end.unwrap_or(off + 1);
            if name.is_empty() {
                name.push('.');
            }
            return Ok((name, end));
        }
        let len = usize::from(len);
        wire_len += len + 1;
        if wire_len > NAME_MAX {
            return Err(DnsError::NameTooLong);
        }
        let label = msg
            .get(off + 1..off + 1 + len)
            .ok_or(DnsError::NameOverrun)?;
        if !name.is_empty() {
            name.push('.');
        }
        for &b in label {
            if b.is_ascii_graphic() && b != b'.' && b != b'\\' {
                name.push(b as char);
            } else {
                let _ = write!(name, "\\{b:03}");
            }
        }
        off += 1 + len;
    }
}

/// Parses a message. The header and first question must be whole; answers are read until the
/// first malformed one (then `answers_incomplete` is set).
pub fn parse(msg: &[u8]) -> Result<Message, DnsError> {
    if msg.len() < 12 {
        return Err(DnsError::Short);
    }
    let id = u16_at(msg, 0).ok_or(DnsError::Short)?;
    let flags = u16_at(msg, 2).ok_or(DnsError::Short)?;
    let qdcount = u16_at(msg, 4).ok_or(DnsError::Short)?;
    let ancount = u16_at(msg, 6).ok_or(DnsError::Short)?;
    let mut out = Message {
        id,
        response: flags & 0x8000 != 0,
        rcode: (flags & 0x000f) as u8,
        ..Message::default()
    };
    let mut off = 12;
    for i in 0..qdcount {
        let (name, next) = read_name(msg, off)?;
        let qtype = u16_at(msg, next).ok_or(DnsError::QuestionOverrun)?;
        u16_at(msg, next + 2).ok_or(DnsError::QuestionOverrun)?;
        if i == 0 {
            out.question = Some((name, qtype));
        }
        off = next + 4;
        if i >= 16 {
            // More questions than any resolver sends: the answers cannot be found reliably.
            out.answers_incomplete = ancount > 0;
            return Ok(out);
        }
    }
    for _ in 0..usize::from(ancount).min(MAX_RECORDS) {
        match answer(msg, off) {
            Some((a, next)) => {
                out.answers.push(a);
                off = next;
            }
            None => {
                out.answers_incomplete = true;
                return Ok(out);
            }
        }
    }
    out.answers_incomplete = usize::from(ancount) > MAX_RECORDS;
    Ok(out)
}

fn answer(msg: &[u8], off: usize) -> Option<(Answer, usize)> {
    let (name, next) = read_name(msg, off).ok()?;
    let rtype = u16_at(msg, next)?;
    let ttl = u32_at(msg, next + 4)?;
    let rdlen = usize::from(u16_at(msg, next + 8)?);
    let rdata_off = next + 10;
    let rdata = msg.get(rdata_off..rdata_off + rdlen)?;
    let data = match (rtype, rdlen) {
        (1, 4) => AnswerData::A(Ipv4Addr::new(rdata[0], rdata[1], rdata[2], rdata[3])),
        (28, 16) => {
            let mut b = [0u8; 16];
            b.copy_from_slice(rdata);
            AnswerData::Aaaa(Ipv6Addr::from(b))
        }
        (5, _) => {
            let (target, end) = read_name(msg, rdata_off).ok()?;
            if end > rdata_off + rdlen {
                return None;
            }
            AnswerData::Cname(target)
        }
        (1 | 28, _) => return None,
        (other, _) => AnswerData::Other(other),
    };
    Some((Answer { name, ttl, data }, rdata_off + rdlen))
}

/// The contract's name of a query type.
pub fn qtype_name(qtype: u16) -> String {
    match qtype {
        1 => "A".into(),
        2 => "NS".into(),
        5 => "CNAME".into(),
        6 => "SOA".into(),
        12 => "PTR".into(),
        15 => "MX".into(),
        16 => "TXT".into(),
        28 => "AAAA".into(),
        33 => "SRV".into(),
        64 => "SVCB".into(),
        65 => "HTTPS".into(),
        255 => "ANY".into(),
        n => format!("TYPE{n}"),
    }
}

/// The contract's name of a response code.
pub fn rcode_name(rcode: u8) -> String {
    match rcode {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A query for `name` of `qtype`, as a stub resolver sends it.
    pub fn query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
        let mut m = vec![
            (id >> 8) as u8,
            id as u8,
            0x01,
            0x00,
            0,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
        ];
        for label in name.split('.') {
            m.push(label.len() as u8);
            m.extend_from_slice(label.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m
    }

    /// The response to `query(id, name, 1)`: a CNAME to `cdn.<name>`, then A records for it,
    /// all names compressed.
    pub fn response(id: u16, name: &str, addrs: &[Ipv4Addr]) -> Vec<u8> {
        let mut m = query(id, name, 1);
        m[2] = 0x81;
        m[3] = 0x80;
        m[7] = 1 + addrs.len() as u8;
        // CNAME: name = ptr to 12; rdata = "cdn" + ptr to 12.
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6]);
        let cname_at = m.len();
        m.extend_from_slice(&[3, b'c', b'd', b'n', 0xc0, 12]);
        for a in addrs {
            m.extend_from_slice(&[0xc0, cname_at as u8, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4]);
            m.extend_from_slice(&a.octets());
        }
        m
    }

    #[test]
    fn a_query_and_its_compressed_cname_answer_parse() {
        let q = parse(&query(7, "example.test", 28)).unwrap();
        assert_eq!(q.question, Some(("example.test".into(), 28)));
        assert!(!q.response);
        let r = parse(&response(
            7,
            "example.test",
            &[Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)],
        ))
        .unwrap();
        assert!(r.response);
        assert_eq!(r.rcode, 0);
        assert_eq!(
            r.answers.iter().map(|a| a.data.clone()).collect::<Vec<_>>(),
            [
                AnswerData::Cname("cdn.example.test".into()),
                AnswerData::A(Ipv4Addr::new(192, 0, 2, 1)),
                AnswerData::A(Ipv4Addr::new(192, 0, 2, 2)),
            ]
        );
        assert_eq!(r.answers[1].name, "cdn.example.test");
        assert_eq!(r.answers[1].ttl, 256);
        assert!(!r.answers_incomplete);
    }

    #[test]
    fn malformed_messages_are_errors_or_partial_never_panics() {
        let good = response(9, "a.example", &[Ipv4Addr::new(10, 0, 0, 1)]);
        // Table: (what, bytes, expected outcome of parse).
        let mut self_loop = query(1, "x", 1);
        self_loop.truncate(12);
        self_loop.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let mut forward = query(1, "x", 1);
        forward.truncate(12);
        forward.extend_from_slice(&[0xc0, 14, 0, 0, 1, 0, 1]);
        let mut two_loop = query(1, "x", 1);
        two_loop.truncate(12);
        two_loop.extend_from_slice(&[1, b'a', 0xc0, 12]);
        let mut long = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for _ in 0..5 {
            long.push(63);
            long.extend_from_slice(&[b'a'; 63]);
        }
        long.extend_from_slice(&[0, 0, 1, 0, 1]);
        let mut label_type = query(1, "x", 1);
        label_type[12] = 0x41;
        let cases: Vec<(&str, Vec<u8>, Result<(), DnsError>)> = vec![
            ("empty", vec![], Err(DnsError::Short)),
            ("11 bytes", vec![0; 11], Err(DnsError::Short)),
            ("pointer to itself", self_loop, Err(DnsError::PointerLoop)),
            ("pointer forwards", forward, Err(DnsError::PointerLoop)),
            (
                "label then pointer back to it",
                two_loop,
                Err(DnsError::PointerLoop),
            ),
            ("name over 255 bytes", long, Err(DnsError::NameTooLong)),
            (
                "reserved label type",
                label_type,
                Err(DnsError::LabelType(0x40)),
            ),
            (
                "question cut in its type",
                query(1, "example.test", 1)[..27].to_vec(),
                Err(DnsError::QuestionOverrun),
            ),
            (
                "question cut in its name",
                query(1, "example.test", 1)[..15].to_vec(),
                Err(DnsError::NameOverrun),
            ),
        ];
        for (what, bytes, want) in cases {
            assert_eq!(parse(&bytes).map(|_| ()), want, "{what}");
        }
        // Answers cut anywhere: the question survives, answers stop, nothing panics.
        for cut in 31..good.len() {
            let m = parse(&good[..cut]).unwrap();
            assert_eq!(m.question.as_ref().unwrap().0, "a.example", "cut at {cut}");
            assert!(m.answers_incomplete || m.answers.len() == 2, "cut at {cut}");
        }
        // An A record with a 3-byte address is refused, not misread.
        let mut bad_a = good.clone();
        let rdlen_at = good.len() - 6;
        bad_a[rdlen_at + 1] = 3;
        bad_a.truncate(good.len() - 1);
        let m = parse(&bad_a).unwrap();
        assert!(m.answers_incomplete);
        assert_eq!(m.answers.len(), 1);
    }

    #[test]
    fn odd_bytes_in_labels_are_escaped_and_root_is_a_dot() {
        let mut m = vec![
            0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 3, b'a', b'.', 0xff, 0, 0, 1, 0, 1,
        ];
        assert_eq!(parse(&m).unwrap().question.unwrap().0, "a\\046\\255");
        m.truncate(12);
        m.extend_from_slice(&[0, 0, 2, 0, 1]);
        assert_eq!(parse(&m).unwrap().question.unwrap(), (".".into(), 2));
    }

    /// Random bytes and random mutations of a good message: the parser must only return.
    #[test]
    fn random_and_mutated_messages_never_panic() {
        let mut state = 0x9e3779b97f4a7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let good = response(1, "mutate.example", &[Ipv4Addr::new(1, 2, 3, 4); 3]);
        for _ in 0..20_000 {
            let len = (next() % 300) as usize;
            let random: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let _ = parse(&random);
            let mut m = good.clone();
            for _ in 0..(next() % 4 + 1) {
                let i = (next() as usize) % m.len();
                m[i] = next() as u8;
            }
            let _ = parse(&m);
        }
    }

    #[test]
    fn names_of_types_and_codes() {
        assert_eq!(qtype_name(28), "AAAA");
        assert_eq!(qtype_name(999), "TYPE999");
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(11), "RCODE11");
    }
}
