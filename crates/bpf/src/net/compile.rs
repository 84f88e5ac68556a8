//! Network deny rules compiled into the layout of the kernel maps: an LPM trie of CIDRs, each
//! prefix carrying the set of rule slots whose CIDR contains it, and an array of rules. Pure
//! apart from the [`ScopeResolver`], so it is unit-tested without a kernel.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{mask, NetDirection, NetProtocol, NetRule, NetRuleError, NetScope};
use crate::abi::net::{
    shrike_net_direction, shrike_net_rule, shrike_net_rule_flags, shrike_net_scope, RULES_MAX,
};
use crate::abi::shrike_enforce_limits;

/// A rule set in the layout of the kernel maps, for one generation.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    /// Per distinct prefix: (prefix length over the 16-byte address, address, slot bits).
    pub prefixes: Vec<(u32, [u8; 16], [u64; 4])>,
    /// Rules by slot.
    pub rules: Vec<shrike_net_rule>,
    /// `SHRIKE_NET_DIR_*` bits that have at least one rule.
    pub directions: u32,
}

/// Resolves scopes against the file system; a trait so [`compile`] is testable without one.
pub trait ScopeResolver {
    /// The identity of an executable as the lineage map records it: FNV-1a 64 of its absolute
    /// path with symlinks resolved.
    fn binary(&self, path: &Path) -> std::io::Result<u64>;
    /// (cgroup id, level below the root) of a cgroup v2 directory.
    fn cgroup(&self, path: &Path) -> Option<(u64, u32)>;
    /// The cgroup v2 root, for messages.
    fn cgroup_root(&self) -> PathBuf;
}

/// The real file system.
pub struct FsResolver {
    pub cgroup2: PathBuf,
}

impl ScopeResolver for FsResolver {
    fn binary(&self, path: &Path) -> std::io::Result<u64> {
        use std::os::unix::ffi::OsStrExt;
        let real = path.canonicalize()?;
        Ok(crate::enforce::fnv1a(real.as_os_str().as_bytes()))
    }

    fn cgroup(&self, path: &Path) -> Option<(u64, u32)> {
        let path = path.canonicalize().ok()?;
        let rel = path.strip_prefix(&self.cgroup2).ok()?;
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_dir() || !path.join("cgroup.procs").exists() {
            return None;
        }
        Some((meta.ino(), rel.components().count() as u32))
    }

    fn cgroup_root(&self) -> PathBuf {
        self.cgroup2.clone()
    }
}

/// A user-space `dev_t` in the kernel's `s_dev` encoding (`major << 20 | minor`).
pub fn kernel_dev(dev: u64) -> u32 {
    let major = libc::major(dev);
    let minor = libc::minor(dev);
    (major << 20) | (minor & 0xfffff)
}

/// Compiles rules into the layout of the kernel maps. The order of `rules` is the slot order;
/// the kernel prefers a deny rule over an audit rule and otherwise the lowest slot.
pub fn compile(rules: &[NetRule], resolve: &dyn ScopeResolver) -> Result<Compiled, NetRuleError> {
    if rules.len() > RULES_MAX {
        return Err(NetRuleError::TooMany(rules.len()));
    }
    let mut out = Compiled::default();
    let mut nets: BTreeMap<([u8; 16], u32), [u64; 4]> = BTreeMap::new();
    for (slot, rule) in rules.iter().enumerate() {
        let (lo, hi) = rule.ports;
        if lo > hi {
            return Err(NetRuleError::Ports {
                index: rule.index,
                lo,
                hi,
            });
        }
        let (scope, scope_id, scope_dev) = match &rule.scope {
            NetScope::Host => (shrike_net_scope::SHRIKE_NET_SCOPE_HOST, 0, 0),
            _ if rule.direction == NetDirection::Ingress => {
                return Err(NetRuleError::IngressScope { index: rule.index })
            }
            NetScope::Binary(path) | NetScope::Ancestor(path) => {
                let hash = resolve
                    .binary(path)
                    .map_err(|source| NetRuleError::Binary {
                        index: rule.index,
                        path: path.clone(),
                        source,
                    })?;
                let scope = if matches!(rule.scope, NetScope::Binary(_)) {
                    shrike_net_scope::SHRIKE_NET_SCOPE_BINARY
                } else {
                    shrike_net_scope::SHRIKE_NET_SCOPE_ANCESTOR
                };
                (scope, hash, 0)
            }
            NetScope::Cgroup(path) => {
                let (id, level) = resolve.cgroup(path).ok_or_else(|| NetRuleError::Cgroup {
                    index: rule.index,
                    path: path.clone(),
                    root: resolve.cgroup_root(),
                })?;
                (shrike_net_scope::SHRIKE_NET_SCOPE_CGROUP, id, level)
            }
            NetScope::CgroupId(id) => (shrike_net_scope::SHRIKE_NET_SCOPE_CGROUP, *id, LEAF),
        };
        let direction = match rule.direction {
            NetDirection::Egress => shrike_net_direction::SHRIKE_NET_DIR_EGRESS,
            NetDirection::Bind => shrike_net_direction::SHRIKE_NET_DIR_BIND,
            NetDirection::Ingress => shrike_net_direction::SHRIKE_NET_DIR_INGRESS,
        };
        out.directions |= direction.0;
        out.rules.push(shrike_net_rule {
            scope_id,
            scope_dev,
            scope: scope.0,
            flags: if rule.audit {
                shrike_net_rule_flags::SHRIKE_NET_RULE_AUDIT.0
            } else {
                0
            },
            index: rule.index,
            port_lo: lo,
            port_hi: hi,
            direction: direction.0 as u8,
            protocol: rule.protocol.map_or(0, NetProtocol::number),
            ..Default::default()
        });
        nets.entry(rule.network.key()).or_default()[slot / 64] |= 1u64 << (slot % 64);
    }
    // Each prefix carries every rule whose network contains it: the trie returns only the
    // longest matching prefix, and every network containing an address contains that prefix.
    let keys: Vec<([u8; 16], u32)> = nets.keys().copied().collect();
    for &(addr, prefix) in &keys {
        let mut bits = [0u64; 4];
        for &(other, other_prefix) in &keys {
            if other_prefix <= prefix && mask(addr, other_prefix) == other {
                for (b, o) in bits.iter_mut().zip(nets[&(other, other_prefix)]) {
                    *b |= o;
                }
            }
        }
        out.prefixes.push((prefix, addr, bits));
    }
    Ok(out)
}

/// Indexes of configuration rules start here, above any policy's rule indexes.
pub const CONFIG_INDEX_BASE: u16 = 0xf000;

/// How many configuration rules there can be: their indexes run from [`CONFIG_INDEX_BASE`] up
/// to, not including, `SHRIKE_NO_RULE` (the index a record carries when no rule acted).
pub const CONFIG_RULES_MAX: usize =
    (shrike_enforce_limits::SHRIKE_NO_RULE.0 as u16 - CONFIG_INDEX_BASE) as usize;

/// `scope_dev` of a cgroup-id rule: match the process's own cgroup only.
const LEAF: u32 = u32::MAX;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::{unmap, IpNet};
    use std::net::IpAddr;
    use std::net::Ipv6Addr;

    struct Fake;

    impl ScopeResolver for Fake {
        fn binary(&self, path: &Path) -> std::io::Result<u64> {
            if path == Path::new("/usr/bin/curl") {
                Ok(42)
            } else {
                Err(std::io::Error::from_raw_os_error(libc::ENOENT))
            }
        }
        fn cgroup(&self, path: &Path) -> Option<(u64, u32)> {
            (path == Path::new("/cg/a/b")).then_some((77, 2))
        }
        fn cgroup_root(&self) -> PathBuf {
            PathBuf::from("/cg")
        }
    }

    fn rule(index: u16, cidr: &str) -> NetRule {
        NetRule {
            index,
            direction: NetDirection::Egress,
            network: IpNet::parse(cidr).unwrap(),
            ports: (0, 65535),
            protocol: None,
            scope: NetScope::Host,
            audit: false,
        }
    }

    #[test]
    fn cidrs_parse_and_reject_garbage() {
        assert_eq!(
            IpNet::parse("10.1.0.0/16").unwrap(),
            IpNet {
                addr: "10.1.0.0".parse().unwrap(),
                prefix: 16
            }
        );
        assert_eq!(IpNet::parse("::1").unwrap().prefix, 128);
        assert_eq!(IpNet::parse("192.0.2.7").unwrap().prefix, 32);
        for bad in ["10.0.0.0/33", "x", "10.0.0/8", "::/129", "1.2.3.4/-1", ""] {
            assert!(IpNet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ipv4_is_keyed_as_mapped_ipv6_with_host_bits_cleared() {
        let (addr, prefix) = IpNet::parse("10.1.2.3/8").unwrap().key();
        assert_eq!(prefix, 104);
        assert_eq!(
            addr,
            "::ffff:10.0.0.0".parse::<Ipv6Addr>().unwrap().octets()
        );
        let (addr, prefix) = IpNet::parse("2001:db8:ffff::1/33").unwrap().key();
        assert_eq!(prefix, 33);
        assert_eq!(
            addr,
            "2001:db8:8000::".parse::<Ipv6Addr>().unwrap().octets()
        );
    }

    #[test]
    fn each_prefix_carries_the_rules_of_every_network_containing_it() {
        let rules = [
            rule(10, "0.0.0.0/0"),
            rule(11, "10.0.0.0/8"),
            rule(12, "10.1.0.0/16"),
            rule(13, "192.168.0.0/16"),
            rule(14, "10.1.0.0/16"),
        ];
        let c = compile(&rules, &Fake).unwrap();
        let bits = |cidr: &str| {
            let (addr, prefix) = IpNet::parse(cidr).unwrap().key();
            c.prefixes
                .iter()
                .find(|(p, a, _)| *p == prefix && *a == addr)
                .map(|(_, _, b)| b[0])
                .unwrap()
        };
        assert_eq!(bits("0.0.0.0/0"), 0b00001);
        assert_eq!(bits("10.0.0.0/8"), 0b00011);
        assert_eq!(bits("10.1.0.0/16"), 0b10111);
        assert_eq!(bits("192.168.0.0/16"), 0b01001);
        assert_eq!(c.prefixes.len(), 4, "one trie entry per distinct network");
        assert_eq!(c.rules[2].index, 12);
        assert_eq!(c.directions, shrike_net_direction::SHRIKE_NET_DIR_EGRESS.0);
    }

    #[test]
    fn ipv4_rules_do_not_cover_ipv6_and_v6_default_covers_mapped_v4() {
        let c = compile(&[rule(1, "0.0.0.0/0"), rule(2, "::/0")], &Fake).unwrap();
        let v4 = c.prefixes.iter().find(|(p, _, _)| *p == 96).unwrap();
        assert_eq!(v4.2[0], 0b11, "::/0 contains ::ffff:0:0/96");
        let v6 = c.prefixes.iter().find(|(p, _, _)| *p == 0).unwrap();
        assert_eq!(v6.2[0], 0b10);
    }

    #[test]
    fn scopes_resolve_and_errors_name_the_rule() {
        let mut r = rule(5, "10.0.0.0/8");
        r.scope = NetScope::Binary("/usr/bin/curl".into());
        r.ports = (80, 443);
        r.protocol = Some(NetProtocol::Tcp);
        let c = compile(&[r.clone()], &Fake).unwrap();
        assert_eq!(
            (
                c.rules[0].scope_id,
                c.rules[0].scope_dev,
                c.rules[0].port_lo,
                c.rules[0].port_hi
            ),
            (42, 0, 80, 443)
        );
        assert_eq!(c.rules[0].protocol, 6);
        r.scope = NetScope::Ancestor("/usr/bin/curl".into());
        let c = compile(&[r.clone()], &Fake).unwrap();
        assert_eq!(
            (c.rules[0].scope, c.rules[0].scope_id),
            (shrike_net_scope::SHRIKE_NET_SCOPE_ANCESTOR.0, 42),
            "an ancestor is hashed as a binary is"
        );
        r.scope = NetScope::Binary("/nope".into());
        assert!(matches!(
            compile(&[r.clone()], &Fake),
            Err(NetRuleError::Binary { index: 5, .. })
        ));
        r.scope = NetScope::Cgroup("/cg/a/b".into());
        let c = compile(&[r.clone()], &Fake).unwrap();
        assert_eq!((c.rules[0].scope_id, c.rules[0].scope_dev), (77, 2));
        r.scope = NetScope::Cgroup("/elsewhere".into());
        assert!(compile(&[r.clone()], &Fake).is_err());
        r.scope = NetScope::Binary("/usr/bin/curl".into());
        r.direction = NetDirection::Ingress;
        assert!(matches!(
            compile(&[r.clone()], &Fake),
            Err(NetRuleError::IngressScope { index: 5 })
        ));
        r.scope = NetScope::Host;
        r.ports = (10, 9);
        assert!(matches!(
            compile(&[r], &Fake),
            Err(NetRuleError::Ports { .. })
        ));
        let many: Vec<NetRule> = (0..=RULES_MAX as u16)
            .map(|i| rule(i, "10.0.0.0/8"))
            .collect();
        assert!(matches!(
            compile(&many, &Fake),
            Err(NetRuleError::TooMany(257))
        ));
    }

    #[test]
    fn slots_past_64_land_in_later_words() {
        let rules: Vec<NetRule> = (0..200).map(|i| rule(i, "10.0.0.0/8")).collect();
        let c = compile(&rules, &Fake).unwrap();
        assert_eq!(
            c.prefixes[0].2,
            [u64::MAX, u64::MAX, u64::MAX, (1 << 8) - 1]
        );
    }

    #[test]
    fn kernel_dev_uses_the_s_dev_encoding() {
        assert_eq!(kernel_dev(libc::makedev(8, 1)), (8 << 20) | 1);
        assert_eq!(kernel_dev(libc::makedev(259, 70000)), (259 << 20) | 70000);
    }

    #[test]
    fn mapped_addresses_are_reported_as_ipv4() {
        assert_eq!(
            unmap("::ffff:127.0.0.1".parse().unwrap()),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            unmap("::1".parse().unwrap()),
            "::1".parse::<IpAddr>().unwrap()
        );
    }
}
