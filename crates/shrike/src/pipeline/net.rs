//! Network records to events: socket events with their endpoints and flow counters, DNS
//! messages parsed, refusals turned into alerts, and the address → domain cache that names the
//! domain a later connect went to.
//!
//! Reporting choices made here (the kernel sends what it saw):
//! - `saddr`/`sport` are always the process's own end and `daddr`/`dport` the peer;
//!   `direction` says who initiated (`egress`: this process; `ingress`: the peer).
//! - An IPv6 socket talking to an IPv4-mapped address (`::ffff:a.b.c.d`) is reported as `ipv4`.
//! - A refusal by a rule from the network configuration gets its alert here (outcome `denied`,
//!   or `would_deny` for an audit rule); a refusal by a policy rule sets [`Event::enforced`] and
//!   the rule stage writes the alert.
//! - The images that connected out are remembered by exec_id with their binary, longer than
//!   the process tree keeps exited images, so an exec of a file one of them wrote can name it.

pub mod dns;

use std::net::IpAddr;
use std::sync::Arc;

use shrike_bpf::decode::{DnsRecord, NetFlag, NetOp, NetRecord, StdioSocket};
use shrike_bpf::net::unmap;
use shrike_event::{Dns, Enforced, EnforcedAction, Event, EventKind, ExecId, Network};

use super::recent::Recent;
use super::Pipeline;

/// Addresses remembered from DNS answers.
pub const DOMAIN_CACHE_MAX: usize = 4096;
/// Images remembered as having connected out (the kernel's `net_written` map has as many
/// files).
pub const CONNECTED_MAX: usize = 4096;

/// The network family's state in the pipeline.
#[derive(Debug, Default)]
pub struct NetState {
    domains: Recent<IpAddr, String, DOMAIN_CACHE_MAX>,
    /// Images that connected out, and their binaries.
    connected: Recent<ExecId, Arc<str>, CONNECTED_MAX>,
    /// DNS messages that could not be parsed (reported with an empty query).
    pub dns_malformed: u64,
}

impl NetState {
    fn remember(&mut self, addr: IpAddr, domain: &str) {
        self.domains.insert(unmap(addr), domain.to_string());
    }

    /// `exec_id` connected out; its binary is `binary`.
    fn remember_connected(&mut self, exec_id: ExecId, binary: &Arc<str>) {
        self.connected.insert(exec_id, binary.clone());
    }

    /// The binary of an image that connected out, while it is remembered.
    pub fn connected_binary(&self, exec_id: ExecId) -> Option<&Arc<str>> {
        self.connected.get(&exec_id)
    }

    /// The domain a DNS answer seen earlier gave for `addr`.
    pub fn domain(&self, addr: IpAddr) -> Option<&str> {
        self.domains.get(&unmap(addr)).map(String::as_str)
    }
}

fn protocol(p: u16) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        n => n.to_string(),
    }
}

/// Family and the two addresses as reported: IPv4-mapped IPv6 becomes IPv4 (an unspecified
/// IPv6 address on such a socket becomes 0.0.0.0).
fn endpoints(family: u16, saddr: IpAddr, daddr: IpAddr) -> (String, String, String) {
    let mapped = |a: IpAddr| matches!(unmap(a), IpAddr::V4(_));
    let unspecified = |a: IpAddr| a.is_unspecified();
    let v4 = family == 2
        || (mapped(daddr) && (mapped(saddr) || unspecified(saddr)))
        || (mapped(saddr) && unspecified(daddr));
    if v4 {
        let text = |a: IpAddr| match unmap(a) {
            IpAddr::V6(v6) if v6.is_unspecified() => "0.0.0.0".to_string(),
            other => other.to_string(),
        };
        ("ipv4".into(), text(saddr), text(daddr))
    } else {
        ("ipv6".into(), saddr.to_string(), daddr.to_string())
    }
}

/// A socket type's name (SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET), if it has one here.
pub(super) fn sock_type_name(sock_type: u16) -> Option<&'static str> {
    match sock_type {
        1 => Some("stream"),
        2 => Some("dgram"),
        3 => Some("raw"),
        5 => Some("seqpacket"),
        _ => None,
    }
}

/// `process.stdio_sockets` from an exec record.
pub(super) fn stdio_sockets(stdio: &[StdioSocket]) -> Vec<shrike_event::StdioSocket> {
    stdio
        .iter()
        .map(|s| {
            let (family, protocol, peer_addr) = match s.family {
                1 => (
                    "unix".to_string(),
                    sock_type_name(s.sock_type).unwrap_or("unix").to_string(),
                    String::new(),
                ),
                f => {
                    let (family, _, peer) = endpoints(f, s.peer_addr, s.peer_addr);
                    (family, protocol(s.protocol), peer)
                }
            };
            shrike_event::StdioSocket {
                fd: s.fd,
                family,
                protocol,
                peer_addr,
                peer_port: s.peer_port,
            }
        })
        .collect()
}

impl Pipeline {
    pub(super) fn net(&mut self, r: NetRecord) -> Event {
        let kind = match r.op {
            NetOp::Connect => EventKind::NetConnect,
            NetOp::Accept => EventKind::NetAccept,
            NetOp::Bind => EventKind::NetBind,
            NetOp::Listen => EventKind::NetListen,
            NetOp::Close => EventKind::NetClose,
        };
        if r.op == NetOp::Listen && r.result == 0 {
            self.tree
                .mark_listened(ExecId(r.header.exec_id), r.header.pid);
        }
        let mut event = self.context_event(kind, &r.header);
        let (family, saddr, daddr) = endpoints(r.family, r.saddr, r.daddr);
        let ingress = r.flags.has(NetFlag::Ingress) || matches!(r.op, NetOp::Bind | NetOp::Listen);
        if r.op == NetOp::Connect && !ingress && event.process.exec_id.0 != 0 {
            self.net
                .remember_connected(event.process.exec_id, &event.process.binary);
        }
        let close = r.op == NetOp::Close;
        let domain = (!ingress)
            .then(|| self.net.domain(r.daddr).map(str::to_string))
            .flatten();
        event.set_network(Network {
            protocol: protocol(r.protocol),
            family,
            saddr,
            sport: r.sport,
            daddr,
            dport: r.dport,
            direction: if ingress { "ingress" } else { "egress" }.into(),
            domain,
            cookie: (r.cookie != 0).then_some(r.cookie),
            bytes_sent: close.then_some(r.bytes_sent),
            bytes_received: close.then_some(r.bytes_received),
            packets_sent: close.then_some(r.packets_sent),
            packets_received: close.then_some(r.packets_received),
        });
        if !close {
            event.result = Some(i64::from(r.result));
        }
        // The rule stage writes the alert of the rule the kernel named (policy or `--net-config`).
        let action = if r.flags.has(NetFlag::Denied) {
            Some(EnforcedAction::Denied)
        } else if r.flags.has(NetFlag::Audit) {
            Some(EnforcedAction::Audited)
        } else {
            None
        };
        event.enforced = action.map(|action| Enforced {
            rule_index: r.rule_index,
            action,
        });
        event
    }

    pub(super) fn dns(&mut self, r: DnsRecord) -> Event {
        let mut event = self.context_event(EventKind::Dns, &r.header);
        let (family, saddr, daddr) = endpoints(r.family, r.saddr, r.daddr);
        let ingress = r.ingress();
        let network = Network {
            protocol: protocol(r.protocol),
            family,
            saddr,
            sport: r.sport,
            daddr,
            dport: r.dport,
            direction: if ingress { "ingress" } else { "egress" }.into(),
            cookie: (r.cookie != 0).then_some(r.cookie),
            ..Network::default()
        };
        let mut out = Dns::default();
        match dns::parse(&r.message) {
            Ok(m) => {
                if let Some((name, qtype)) = &m.question {
                    out.query = name.clone();
                    out.qtype = dns::qtype_name(*qtype);
                }
                if m.response {
                    out.rcode = Some(dns::rcode_name(m.rcode));
                }
                for a in &m.answers {
                    match &a.data {
                        dns::AnswerData::A(v4) => {
                            out.answers.push(v4.to_string());
                            self.net.remember(IpAddr::V4(*v4), &out.query);
                        }
                        dns::AnswerData::Aaaa(v6) => {
                            out.answers.push(v6.to_string());
                            self.net.remember(IpAddr::V6(*v6), &out.query);
                        }
                        dns::AnswerData::Cname(target) => out.answers.push(target.clone()),
                        dns::AnswerData::Other(_) => {}
                    }
                }
            }
            Err(_) => self.net.dns_malformed += 1,
        }
        event.set_dns(network, out);
        event
    }

    /// DNS messages that could not be parsed so far.
    pub fn dns_malformed(&self) -> u64 {
        self.net.dns_malformed
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use shrike_bpf::decode::testing::{dns_bytes, net_bytes};
    use shrike_bpf::decode::{DnsFlag, DnsFlags, Header, NetFlags};
    use shrike_event::{ExecId, Process};
    use shrike_proctree::{ProcessTree, TreeOptions};

    use super::*;
    use crate::cgroups::CgroupResolver;
    use crate::clock::BootClock;
    use crate::pipeline::PipelineOptions;

    fn pipeline() -> Pipeline {
        let mut tree = ProcessTree::new(TreeOptions::default());
        tree.seed(vec![Process {
            pid: 42,
            tid: 42,
            exec_id: ExecId(4200),
            binary: "/usr/bin/curl".into(),
            ..Process::default()
        }]);
        Pipeline::new(
            PipelineOptions {
                emit_forks: false,
                keep_env: Vec::new(),
            },
            "node".into(),
            tree,
            BootClock::new(),
            CgroupResolver::new(None),
        )
    }

    fn header(kind: u16) -> Header {
        Header {
            kind,
            ktime_ns: 1,
            pid: 42,
            tid: 43,
            exec_id: 4200,
        }
    }

    fn connect(daddr: &str, family: u16) -> NetRecord {
        NetRecord {
            header: header(300),
            op: NetOp::Connect,
            cookie: 5,
            family,
            protocol: 6,
            saddr: if family == 2 {
                "127.0.0.1".parse().unwrap()
            } else {
                "::ffff:127.0.0.1".parse().unwrap()
            },
            sport: 40000,
            daddr: daddr.parse().unwrap(),
            dport: 80,
            result: 0,
            flags: NetFlags::default(),
            rule_index: 0,
            bytes_sent: 0,
            bytes_received: 0,
            packets_sent: 0,
            packets_received: 0,
        }
    }

    #[test]
    fn connect_has_endpoints_process_and_result_and_mapped_v6_is_v4() {
        let mut p = pipeline();
        let e = p
            .handle(&net_bytes(&connect("::ffff:10.1.2.3", 10)))
            .unwrap()
            .unwrap();
        assert_eq!(e.kind, EventKind::NetConnect);
        assert_eq!(&*e.process.binary, "/usr/bin/curl");
        assert_eq!(e.tid, 43);
        let n = e.network().unwrap();
        assert_eq!(
            (n.family.as_str(), n.saddr.as_str(), n.daddr.as_str()),
            ("ipv4", "127.0.0.1", "10.1.2.3")
        );
        assert_eq!(
            (n.sport, n.dport, n.direction.as_str()),
            (40000, 80, "egress")
        );
        assert_eq!(n.cookie, Some(5));
        assert_eq!(n.bytes_sent, None);
        assert_eq!(e.result, Some(0));
        let mut v6 = connect("2001:db8::5", 10);
        v6.saddr = "2001:db8::1".parse().unwrap();
        let e = p.handle(&net_bytes(&v6)).unwrap().unwrap();
        let n = e.network().unwrap();
        assert_eq!(
            (n.family.as_str(), n.daddr.as_str()),
            ("ipv6", "2001:db8::5")
        );
    }

    #[test]
    fn a_dns_answer_names_the_domain_of_a_later_connect() {
        let mut p = pipeline();
        let msg = dns::tests::response(3, "shop.example", &[Ipv4Addr::new(10, 9, 8, 7)]);
        let rec = DnsRecord {
            header: header(305),
            cookie: 1,
            flags: DnsFlags::from(DnsFlag::Ingress),
            family: 2,
            protocol: 17,
            saddr: "127.0.0.1".parse().unwrap(),
            sport: 33333,
            daddr: "127.0.0.53".parse().unwrap(),
            dport: 53,
            total: msg.len() as u16,
            message: msg,
        };
        let e = p.handle(&dns_bytes(&rec)).unwrap().unwrap();
        let d = e.dns().unwrap();
        assert_eq!(d.query, "shop.example");
        assert_eq!(d.qtype, "A");
        assert_eq!(d.rcode.as_deref(), Some("NOERROR"));
        assert_eq!(d.answers, ["cdn.shop.example", "10.9.8.7"]);
        assert_eq!(e.network().unwrap().direction, "ingress");
        let c = p
            .handle(&net_bytes(&connect("10.9.8.7", 2)))
            .unwrap()
            .unwrap();
        assert_eq!(c.network().unwrap().domain.as_deref(), Some("shop.example"));
        // Garbage is an event with an empty query, counted.
        let mut bad = rec.clone();
        bad.message = vec![1, 2, 3];
        let e = p.handle(&dns_bytes(&bad)).unwrap().unwrap();
        assert_eq!(e.dns().unwrap().query, "");
        assert_eq!(p.dns_malformed(), 1);
    }

    #[test]
    fn the_domain_cache_is_bounded() {
        let mut s = NetState::default();
        for i in 0..(DOMAIN_CACHE_MAX as u32 + 10) {
            s.remember(IpAddr::V4(Ipv4Addr::from(i)), "x");
        }
        assert_eq!(s.domains.len(), DOMAIN_CACHE_MAX);
        assert_eq!(s.domain(IpAddr::V4(Ipv4Addr::from(0))), None);
        assert_eq!(s.domain(IpAddr::V4(Ipv4Addr::from(20))), Some("x"));
    }

    /// A refusal or an audit match names the rule for the rule stage, which writes the alert;
    /// the pipeline writes none itself.
    #[test]
    fn refusals_and_audit_matches_name_the_rule_for_the_rule_stage() {
        let mut p = pipeline();
        let mut r = connect("169.254.169.254", 2);
        r.result = -1;
        r.flags = NetFlags::from(NetFlag::Denied);
        r.rule_index = 7;
        let e = p.handle(&net_bytes(&r)).unwrap().unwrap();
        assert_eq!(e.result, Some(-1));
        assert!(e.alerts.is_empty());
        assert_eq!(
            e.enforced,
            Some(Enforced {
                rule_index: 7,
                action: EnforcedAction::Denied
            })
        );
        r.result = 0;
        r.flags = NetFlags::from(NetFlag::Audit);
        let e = p.handle(&net_bytes(&r)).unwrap().unwrap();
        assert_eq!(
            e.enforced,
            Some(Enforced {
                rule_index: 7,
                action: EnforcedAction::Audited
            })
        );
        r.flags = NetFlags::default();
        let e = p.handle(&net_bytes(&r)).unwrap().unwrap();
        assert_eq!(e.enforced, None);
    }

    #[test]
    fn close_reports_flow_counters_and_accept_is_ingress() {
        let mut p = pipeline();
        let mut r = connect("127.0.0.1", 2);
        r.op = NetOp::Close;
        r.header.kind = 304;
        r.flags = NetFlags::from(NetFlag::Ingress);
        r.bytes_sent = 100;
        r.bytes_received = 2000;
        r.packets_sent = 5;
        r.packets_received = 6;
        let e = p.handle(&net_bytes(&r)).unwrap().unwrap();
        assert_eq!(e.kind, EventKind::NetClose);
        assert_eq!(e.result, None);
        let n = e.network().unwrap();
        assert_eq!(
            (
                n.bytes_sent,
                n.bytes_received,
                n.packets_sent,
                n.packets_received
            ),
            (Some(100), Some(2000), Some(5), Some(6))
        );
        assert_eq!(n.direction, "ingress");
    }

    #[test]
    fn stdio_sockets_are_named() {
        let s = stdio_sockets(&[
            StdioSocket {
                fd: 0,
                family: 10,
                sock_type: 1,
                protocol: 6,
                peer_addr: "::ffff:192.0.2.1".parse().unwrap(),
                peer_port: 4444,
            },
            StdioSocket {
                fd: 2,
                family: 1,
                sock_type: 1,
                protocol: 0,
                peer_addr: "0.0.0.0".parse().unwrap(),
                peer_port: 0,
            },
        ]);
        assert_eq!(
            (
                s[0].family.as_str(),
                s[0].protocol.as_str(),
                s[0].peer_addr.as_str()
            ),
            ("ipv4", "tcp", "192.0.2.1")
        );
        assert_eq!(
            (s[1].fd, s[1].family.as_str(), s[1].protocol.as_str()),
            (2, "unix", "stream")
        );
    }
}
