//! Exclusions turned into what the kernel's network rules can hold: the network hooks match a
//! rule by networks, port ranges and a scope, and have no "but not". `not network.daddr in
//! (a, b)` becomes the set of networks that covers every address except a and b, and `not
//! network.dport in (80, 443)` the port ranges between them. (Allow-lists written by `shrike
//! learn` are exactly such rules.)
//!
//! A complement of k host addresses within one family takes at most 32·k (IPv4) or 128·k
//! (IPv6) networks; the caller bounds what it loads. The kernel keys IPv4 addresses as
//! IPv4-mapped IPv6 (`::ffff:a.b.c.d`) in the same trie, so an IPv6 network such as `::/0`
//! would cover every IPv4 address the complement leaves out; the IPv6 side of a complement is
//! therefore built within the unicast blocks [`V6_UNICAST`] (loopback, global, unique-local,
//! link-local), and the rest of the IPv6 space (`::`, multicast, mapped addresses written as
//! IPv6) is not refused by the kernel: user space still matches the rule and says `alerted`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use shrike_bpf::net::IpNet;

/// Where the IPv6 side of a complement is built: every unicast destination in practice, and
/// nothing of the IPv4-mapped range.
pub const V6_UNICAST: [(Ipv6Addr, u8); 4] = [
    (Ipv6Addr::LOCALHOST, 128),
    (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3),
    (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
    (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
];

fn width(addr: IpAddr) -> u32 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

fn to_bits(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_bits(bits: u128, v4: bool) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(bits))
    }
}

/// The first and last address of a network, as bits.
fn range(net: &IpNet) -> (u128, u128) {
    let w = width(net.addr);
    let host_bits = w - u32::from(net.prefix);
    let size_mask = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    let lo = to_bits(net.addr) & !size_mask;
    (lo, lo | size_mask)
}

/// The networks covering every address of `within` except those in `excluded`, fewest first
/// split: each network of `within` is halved until each half is wholly excluded (dropped) or
/// wholly outside every excluded network (kept). Families never mix: an IPv4 exclusion does
/// not touch an IPv6 network.
pub fn networks_excluding(within: &[IpNet], excluded: &[IpNet]) -> Vec<IpNet> {
    let mut out = Vec::new();
    let mut work: Vec<IpNet> = clip_v6(within).into_iter().rev().collect();
    while let Some(net) = work.pop() {
        let (lo, hi) = range(&net);
        let v4 = net.addr.is_ipv4();
        let same_family = excluded.iter().filter(|e| e.addr.is_ipv4() == v4);
        let mut overlaps = false;
        let mut covered = false;
        for e in same_family {
            let (elo, ehi) = range(e);
            if elo <= lo && hi <= ehi {
                covered = true;
                break;
            }
            if elo <= hi && lo <= ehi {
                overlaps = true;
            }
        }
        if covered {
            continue;
        }
        if !overlaps {
            out.push(net);
            continue;
        }
        // Split in two halves (an overlapping network is never a single host).
        let prefix = net.prefix + 1;
        let half = 1u128 << (width(net.addr) - u32::from(prefix));
        work.push(IpNet {
            addr: from_bits(lo + half, v4),
            prefix,
        });
        work.push(IpNet {
            addr: from_bits(lo, v4),
            prefix,
        });
    }
    out
}

/// `within` with each IPv6 network narrowed to its overlap with [`V6_UNICAST`].
fn clip_v6(within: &[IpNet]) -> Vec<IpNet> {
    let mut out = Vec::new();
    for net in within {
        if net.addr.is_ipv4() {
            out.push(*net);
            continue;
        }
        let (lo, hi) = range(net);
        for (addr, prefix) in V6_UNICAST {
            let block = IpNet {
                addr: IpAddr::V6(addr),
                prefix,
            };
            let (blo, bhi) = range(&block);
            if lo <= blo && bhi <= hi {
                out.push(block);
            } else if blo <= lo && hi <= bhi {
                out.push(*net);
            }
        }
    }
    out
}

/// The port ranges within `within` (inclusive ranges) that contain none of `excluded`.
pub fn ports_excluding(within: &[(u16, u16)], excluded: &[u16]) -> Vec<(u16, u16)> {
    let mut excluded: Vec<u16> = excluded.to_vec();
    excluded.sort_unstable();
    excluded.dedup();
    let mut out = Vec::new();
    for &(lo, hi) in within {
        let mut start = u32::from(lo);
        for &p in excluded.iter().filter(|&&p| lo <= p && p <= hi) {
            if u32::from(p) > start {
                out.push((start as u16, p - 1));
            }
            start = u32::from(p) + 1;
        }
        if start <= u32::from(hi) {
            out.push((start as u16, hi));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        let (a, p) = text.split_once('/').unwrap();
        IpNet {
            addr: a.parse().unwrap(),
            prefix: p.parse().unwrap(),
        }
    }

    fn contains(nets: &[IpNet], addr: &str) -> bool {
        let a: IpAddr = addr.parse().unwrap();
        let b = to_bits(a);
        nets.iter()
            .filter(|n| n.addr.is_ipv4() == a.is_ipv4())
            .any(|n| {
                let (lo, hi) = range(n);
                lo <= b && b <= hi
            })
    }

    /// Everything but one IPv4 host: 32 IPv4 networks, the host in none of them, its
    /// neighbours and the rest of the space in one each; IPv6 as its unicast blocks, none of
    /// which covers the IPv4-mapped range the kernel keys IPv4 with.
    #[test]
    fn the_complement_of_a_host_covers_everything_else() {
        let all = [net("0.0.0.0/0"), net("::/0")];
        let out = networks_excluding(&all, &[net("127.0.0.1/32")]);
        assert_eq!(out.len(), 32 + V6_UNICAST.len());
        assert!(!contains(&out, "127.0.0.1"));
        for other in [
            "127.0.0.0",
            "127.0.0.2",
            "10.1.2.3",
            "255.255.255.255",
            "0.0.0.0",
        ] {
            assert!(contains(&out, other), "{other}");
        }
        for v6 in ["::1", "2001:db8::1", "fd00::5", "fe80::1"] {
            assert!(contains(&out, v6), "{v6}");
        }
        assert!(
            !contains(&out, "::ffff:127.0.0.1"),
            "the mapped range is never covered"
        );
        let v6_without_loopback = networks_excluding(&[net("::/0")], &[net("::1/128")]);
        assert!(!contains(&v6_without_loopback, "::1"));
        assert_eq!(v6_without_loopback.len(), 3);
        // The networks do not overlap: their sizes add up to all but one address.
        let v4: u128 = out
            .iter()
            .filter(|n| n.addr.is_ipv4())
            .map(|n| 1u128 << (32 - u32::from(n.prefix)))
            .sum();
        assert_eq!(v4, (1u128 << 32) - 1);
    }

    /// Two hosts and a network within a narrower universe.
    #[test]
    fn several_exclusions_within_a_network() {
        let out = networks_excluding(
            &[net("10.0.0.0/8")],
            &[
                net("10.0.0.1/32"),
                net("10.9.0.0/16"),
                net("192.168.0.0/16"),
            ],
        );
        assert!(!contains(&out, "10.0.0.1"));
        assert!(!contains(&out, "10.9.4.4"));
        assert!(contains(&out, "10.0.0.2"));
        assert!(contains(&out, "10.10.0.0"));
        assert!(!contains(&out, "11.0.0.0"));
    }

    /// Port ranges around the excluded ports, at the edges too.
    #[test]
    fn port_ranges_skip_the_excluded_ports() {
        assert_eq!(
            ports_excluding(&[(0, 65535)], &[8000, 0, 8001]),
            [(1, 7999), (8002, 65535)]
        );
        assert_eq!(ports_excluding(&[(0, 65535)], &[65535]), [(0, 65534)]);
        assert_eq!(
            ports_excluding(&[(80, 80), (443, 443)], &[80]),
            [(443, 443)]
        );
        assert!(ports_excluding(&[(5, 5)], &[5]).is_empty());
    }
}
