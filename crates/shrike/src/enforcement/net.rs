//! The network family's translation: a deny/kill rule on `net_connect` or `net_bind` becomes
//! kernel network rules, one per network × port range × scope, with excluded networks and ports
//! cut out of the ranges first.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use shrike_bpf::net::{IpNet, NetDirection, NetRule, NetScope};
use shrike_event::EventKind;
use shrike_rules::{Dim, DimConstraint, KernelPlan, ValueSet};

use super::{dim_name, kernel_rules};

/// Why a rule with two of binary, ancestors, cgroup and workload stays in user space.
const ONE_SCOPE: &str =
    "the network hooks hold one scope per rule: a binary, an ancestor, a cgroup or a workload";

/// Most kernel network rules one policy rule may expand to (networks × ports × scopes): the
/// complement of four IPv4 hosts (an allow-list `shrike learn` writes) fits.
const NET_EXPANSION_MAX: usize = 160;

/// The network rules of a plan (connect/UDP send and bind), and the deny/kill network rules
/// that cannot be kernel rules. A rule's networks, ports and scopes are expanded into one kernel
/// rule per combination; no network constraint means every IPv4 and IPv6 address. A
/// workload-scoped rule's scopes are the cgroups `cgroups` gives it (each container's own
/// cgroup); with none covered it has no kernel rule, and matches nothing.
pub fn net_rules(
    plan: &KernelPlan,
    cgroups: &dyn Fn(u16) -> BTreeSet<u64>,
) -> (Vec<NetRule>, Vec<(String, String)>) {
    let direction = |kind| match kind {
        EventKind::NetConnect => Some(NetDirection::Egress),
        EventKind::NetBind => Some(NetDirection::Bind),
        _ => None,
    };
    kernel_rules(plan, direction, |rule, _, direction, entry| {
        let workload = entry.workload.is_some().then(|| cgroups(rule.index));
        net_rule(rule.index, direction, &entry.constraints, workload)
    })
}

fn net_rule(
    index: u16,
    direction: NetDirection,
    constraints: &BTreeMap<Dim, DimConstraint>,
    workload: Option<BTreeSet<u64>>,
) -> Result<Vec<NetRule>, String> {
    let (addr_dim, port_dim) = match direction {
        NetDirection::Bind => (Dim::Saddr, Dim::Sport),
        _ => (Dim::Daddr, Dim::Dport),
    };
    let mut networks = vec![
        IpNet {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            prefix: 0,
        },
        IpNet {
            addr: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            prefix: 0,
        },
    ];
    let mut ports = vec![(0u16, u16::MAX)];
    let mut scopes = vec![NetScope::Host];
    // Exclusions of addresses and ports become complements (crate::exclusion).
    let mut addr_excluded: Vec<IpNet> = Vec::new();
    let mut port_excluded: Vec<u16> = Vec::new();
    for (dim, c) in constraints {
        match (dim, &c.exclude) {
            (_, None) => {}
            (d, Some(ValueSet::Networks(nets))) if *d == addr_dim => {
                addr_excluded.extend(nets.iter().map(|n| IpNet {
                    addr: n.addr,
                    prefix: n.prefix,
                }))
            }
            (d, Some(ValueSet::Numbers(values))) if *d == port_dim => {
                // A port outside 0..=65535 never matches: nothing to exclude.
                port_excluded.extend(values.iter().filter_map(|&p| u16::try_from(p).ok()))
            }
            _ => {
                return Err(format!(
                    "the network hooks cannot exclude by {}",
                    dim_name(*dim)
                ))
            }
        }
        let Some(include) = &c.include else { continue };
        match (dim, include) {
            (d, ValueSet::Networks(nets)) if *d == addr_dim => {
                networks = nets
                    .iter()
                    .map(|n| IpNet {
                        addr: n.addr,
                        prefix: n.prefix,
                    })
                    .collect();
            }
            (d, ValueSet::Numbers(values)) if *d == port_dim => {
                ports = values
                    .iter()
                    .map(|&p| {
                        u16::try_from(p)
                            .map(|p| (p, p))
                            .map_err(|_| format!("port {p} is out of range"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            (Dim::Binary, ValueSet::Paths(p)) if p.prefixes.is_empty() && p.names.is_empty() => {
                if scopes != [NetScope::Host] {
                    return Err(ONE_SCOPE.into());
                }
                scopes = p.exact.iter().map(|b| NetScope::Binary(b.into())).collect();
            }
            (Dim::Ancestors, ValueSet::Paths(p)) if p.prefixes.is_empty() && p.names.is_empty() => {
                if scopes != [NetScope::Host] {
                    return Err(ONE_SCOPE.into());
                }
                scopes = p
                    .exact
                    .iter()
                    .map(|b| NetScope::Ancestor(b.into()))
                    .collect();
            }
            (Dim::CgroupId, ValueSet::Numbers(ids)) => {
                if scopes != [NetScope::Host] {
                    return Err(ONE_SCOPE.into());
                }
                scopes = ids
                    .iter()
                    .map(|&id| NetScope::CgroupId(id as u64))
                    .collect();
            }
            (other, _) => {
                return Err(format!(
                    "the network hooks cannot decide on {} as written",
                    dim_name(*other)
                ))
            }
        }
    }
    if let Some(covered) = workload {
        if scopes != [NetScope::Host] {
            return Err(ONE_SCOPE.into());
        }
        scopes = covered.into_iter().map(NetScope::CgroupId).collect();
    }
    if !addr_excluded.is_empty() {
        networks = crate::exclusion::networks_excluding(&networks, &addr_excluded);
    }
    if !port_excluded.is_empty() {
        ports = crate::exclusion::ports_excluding(&ports, &port_excluded);
    }
    let count = networks.len() * ports.len() * scopes.len();
    if count > NET_EXPANSION_MAX {
        return Err(format!("{count} network × port × scope combinations; the kernel takes at most {NET_EXPANSION_MAX} per rule"));
    }
    let mut out = Vec::with_capacity(count);
    for network in &networks {
        for &ports in &ports {
            for scope in &scopes {
                out.push(NetRule {
                    index,
                    direction,
                    network: *network,
                    ports,
                    protocol: None,
                    scope: scope.clone(),
                    audit: false,
                });
            }
        }
    }
    Ok(out)
}
