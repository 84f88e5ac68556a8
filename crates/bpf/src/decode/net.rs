//! Network records: socket events (connect, accept, bind, listen, close) and DNS messages.
//!
//! Addresses are decoded as the kernel wrote them (an IPv4-mapped IPv6 address stays IPv6
//! here; reporting it as IPv4 is the pipeline's choice). A DNS record's message bytes are
//! handed on unparsed: the DNS parser is in user space, where malformed input can only cost a
//! skipped answer.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::flags::{DnsFlag, DnsFlags, NetFlags};
use super::{copy, kernel_header, DecodeError, Header};
use crate::abi::net::{shrike_net, shrike_net_dns};
use crate::abi::shrike_record_kind;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

/// Which socket action a [`NetRecord`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetOp {
    Connect,
    Accept,
    Bind,
    Listen,
    Close,
}

/// A socket event (`SHRIKE_REC_NET_CONNECT` .. `SHRIKE_REC_NET_CLOSE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetRecord {
    pub header: Header,
    pub op: NetOp,
    /// The socket cookie: the same for every event of one socket.
    pub cookie: u64,
    /// 2 (IPv4) or 10 (IPv6).
    pub family: u16,
    /// 6 (TCP) or 17 (UDP).
    pub protocol: u16,
    /// The process's own end.
    pub saddr: IpAddr,
    pub sport: u16,
    /// The peer.
    pub daddr: IpAddr,
    pub dport: u16,
    /// 0, or a negative errno.
    pub result: i32,
    pub flags: NetFlags,
    /// The rule that denied or audited, when `flags` says so.
    pub rule_index: u16,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub packets_sent: u64,
    pub packets_received: u64,
}

/// A DNS message seen on UDP port 53 (`SHRIKE_REC_NET_DNS`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsRecord {
    pub header: Header,
    pub cookie: u64,
    pub flags: DnsFlags,
    pub family: u16,
    pub protocol: u16,
    /// The process's end.
    pub saddr: IpAddr,
    pub sport: u16,
    /// The resolver's end.
    pub daddr: IpAddr,
    pub dport: u16,
    /// Bytes of the message in the datagram (more than `message.len()` when cut).
    pub total: u16,
    pub message: Vec<u8>,
}

impl DnsRecord {
    /// A response received, rather than a query sent.
    pub fn ingress(&self) -> bool {
        self.flags.has(DnsFlag::Ingress)
    }

    /// The message was longer than the record carries.
    pub fn truncated(&self) -> bool {
        self.flags.has(DnsFlag::Truncated)
    }

    /// No process was recorded for the socket.
    pub fn owner_unknown(&self) -> bool {
        self.flags.has(DnsFlag::OwnerUnknown)
    }
}

/// An address of `family` from the record's 16 bytes (IPv4 in the first 4).
pub fn addr(family: u16, bytes: &[u8; 16]) -> IpAddr {
    if family == AF_INET {
        IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(*bytes))
    }
}

pub(super) fn decode_net(
    header: Header,
    bytes: &[u8],
    kind: shrike_record_kind,
) -> Result<NetRecord, DecodeError> {
    let r: shrike_net = copy(bytes, "net")?;
    let op = match kind {
        shrike_record_kind::SHRIKE_REC_NET_CONNECT => NetOp::Connect,
        shrike_record_kind::SHRIKE_REC_NET_ACCEPT => NetOp::Accept,
        shrike_record_kind::SHRIKE_REC_NET_BIND => NetOp::Bind,
        shrike_record_kind::SHRIKE_REC_NET_LISTEN => NetOp::Listen,
        shrike_record_kind::SHRIKE_REC_NET_CLOSE => NetOp::Close,
        _ => return Err(DecodeError::UnknownKind(header.kind)),
    };
    if r.family != AF_INET && r.family != AF_INET6 {
        return Err(DecodeError::Invalid {
            kind: "net",
            why: format!("address family {}", r.family),
        });
    }
    Ok(NetRecord {
        header,
        op,
        cookie: r.cookie,
        family: r.family,
        protocol: r.protocol,
        saddr: addr(r.family, &r.saddr),
        sport: r.sport,
        daddr: addr(r.family, &r.daddr),
        dport: r.dport,
        result: r.result,
        flags: NetFlags::from_bits(r.flags),
        rule_index: r.rule_index,
        bytes_sent: r.bytes_sent,
        bytes_received: r.bytes_received,
        packets_sent: r.packets_sent,
        packets_received: r.packets_received,
    })
}

pub(super) fn decode_dns(header: Header, bytes: &[u8]) -> Result<DnsRecord, DecodeError> {
    let d: shrike_net_dns = copy(bytes, "dns")?;
    let data = &bytes[std::mem::size_of::<shrike_net_dns>()..];
    let len = usize::from(d.len);
    if len > data.len() {
        return Err(DecodeError::DataOverrun {
            need: len,
            have: data.len(),
        });
    }
    if d.family != AF_INET && d.family != AF_INET6 {
        return Err(DecodeError::Invalid {
            kind: "dns",
            why: format!("address family {}", d.family),
        });
    }
    Ok(DnsRecord {
        header,
        cookie: d.cookie,
        flags: DnsFlags::from_bits(d.flags),
        family: d.family,
        protocol: d.protocol,
        saddr: addr(d.family, &d.saddr),
        sport: d.sport,
        daddr: addr(d.family, &d.daddr),
        dport: d.dport,
        total: d.total,
        message: data[..len].to_vec(),
    })
}

/// Builders of network records as the kernel writes them, for tests.
pub mod testing {
    use super::*;

    fn bytes_of<T: plain::Plain>(value: &T) -> Vec<u8> {
        // SAFETY: T is Plain (repr(C), integers only), so viewing it as bytes is sound; the
        // slice lives no longer than `value`.
        unsafe { plain::as_bytes(value) }.to_vec()
    }

    fn octets(a: IpAddr) -> [u8; 16] {
        match a {
            IpAddr::V4(v4) => {
                let mut out = [0u8; 16];
                out[..4].copy_from_slice(&v4.octets());
                out
            }
            IpAddr::V6(v6) => v6.octets(),
        }
    }

    /// The bytes of a socket record for `r`.
    pub fn net_bytes(r: &NetRecord) -> Vec<u8> {
        let kind = match r.op {
            NetOp::Connect => shrike_record_kind::SHRIKE_REC_NET_CONNECT,
            NetOp::Accept => shrike_record_kind::SHRIKE_REC_NET_ACCEPT,
            NetOp::Bind => shrike_record_kind::SHRIKE_REC_NET_BIND,
            NetOp::Listen => shrike_record_kind::SHRIKE_REC_NET_LISTEN,
            NetOp::Close => shrike_record_kind::SHRIKE_REC_NET_CLOSE,
        };
        let n = shrike_net {
            hdr: kernel_header(kind, std::mem::size_of::<shrike_net>(), &r.header),
            cookie: r.cookie,
            bytes_sent: r.bytes_sent,
            bytes_received: r.bytes_received,
            packets_sent: r.packets_sent,
            packets_received: r.packets_received,
            result: r.result,
            flags: r.flags.bits(),
            family: r.family,
            protocol: r.protocol,
            sport: r.sport,
            dport: r.dport,
            saddr: octets(r.saddr),
            daddr: octets(r.daddr),
            rule_index: r.rule_index,
            ..Default::default()
        };
        bytes_of(&n)
    }

    /// The bytes of a DNS record for `r` (its message as given).
    pub fn dns_bytes(r: &DnsRecord) -> Vec<u8> {
        let size = std::mem::size_of::<shrike_net_dns>() + r.message.len();
        let d = shrike_net_dns {
            hdr: kernel_header(shrike_record_kind::SHRIKE_REC_NET_DNS, size, &r.header),
            cookie: r.cookie,
            flags: r.flags.bits(),
            family: r.family,
            protocol: r.protocol,
            sport: r.sport,
            dport: r.dport,
            len: r.message.len() as u16,
            total: r.total,
            saddr: octets(r.saddr),
            daddr: octets(r.daddr),
        };
        let mut out = bytes_of(&d);
        out.extend_from_slice(&r.message);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::decode::flags::NetFlag;
    use crate::decode::Record;

    fn sample() -> NetRecord {
        NetRecord {
            header: Header {
                kind: 300,
                ktime_ns: 9,
                pid: 10,
                tid: 11,
                exec_id: 12,
            },
            op: NetOp::Connect,
            cookie: 77,
            family: AF_INET,
            protocol: 6,
            saddr: "127.0.0.1".parse().unwrap(),
            sport: 40000,
            daddr: "127.0.0.2".parse().unwrap(),
            dport: 8080,
            result: -1,
            flags: NetFlags::from(NetFlag::Denied),
            rule_index: 3,
            bytes_sent: 0,
            bytes_received: 0,
            packets_sent: 0,
            packets_received: 0,
        }
    }

    #[test]
    fn socket_records_round_trip_for_every_op_and_family() {
        for op in [
            NetOp::Connect,
            NetOp::Accept,
            NetOp::Bind,
            NetOp::Listen,
            NetOp::Close,
        ] {
            let mut r = sample();
            r.op = op;
            r.header.kind = match op {
                NetOp::Connect => 300,
                NetOp::Accept => 301,
                NetOp::Bind => 302,
                NetOp::Listen => 303,
                NetOp::Close => 304,
            };
            assert_eq!(
                Record::try_from(net_bytes(&r).as_slice()),
                Ok(Record::Net(r.clone()))
            );
            r.family = AF_INET6;
            r.saddr = "::ffff:127.0.0.1".parse().unwrap();
            r.daddr = "2001:db8::1".parse().unwrap();
            r.bytes_sent = 1 << 40;
            assert_eq!(
                Record::try_from(net_bytes(&r).as_slice()),
                Ok(Record::Net(r))
            );
        }
    }

    #[test]
    fn dns_records_carry_their_message_and_reject_overruns() {
        let r = DnsRecord {
            header: Header {
                kind: 305,
                ktime_ns: 1,
                pid: 2,
                tid: 2,
                exec_id: 3,
            },
            cookie: 4,
            flags: DnsFlags::from(DnsFlag::Ingress),
            family: AF_INET6,
            protocol: 17,
            saddr: "::1".parse().unwrap(),
            sport: 5353,
            daddr: "::1".parse().unwrap(),
            dport: 53,
            total: 5,
            message: vec![1, 2, 3, 4, 5],
        };
        let bytes = dns_bytes(&r);
        assert_eq!(
            Record::try_from(bytes.as_slice()),
            Ok(Record::Dns(r.clone()))
        );
        assert!(r.ingress() && !r.truncated());
        // len says more than follows: the header size is honest, the length is not.
        let mut bad = bytes.clone();
        let len_off = std::mem::size_of::<shrike_net_dns>() - 32 - 4;
        bad[len_off..len_off + 2].copy_from_slice(&600u16.to_le_bytes());
        assert!(matches!(
            Record::try_from(bad.as_slice()),
            Err(DecodeError::DataOverrun { .. })
        ));
        for len in 0..bytes.len() {
            assert!(
                Record::try_from(&bytes[..len]).is_err(),
                "{len} bytes decoded"
            );
        }
    }

    #[test]
    fn unknown_address_families_are_errors() {
        let mut bytes = net_bytes(&sample());
        let fam_off = std::mem::size_of::<crate::abi::shrike_header>() + 5 * 8 + 8;
        bytes[fam_off..fam_off + 2].copy_from_slice(&1u16.to_le_bytes());
        assert!(matches!(
            Record::try_from(bytes.as_slice()),
            Err(DecodeError::Invalid { .. })
        ));
    }
}
