//! From the policy's kernel plan to the kernel's enforcement maps.
//!
//! Deny and kill rules the compiler marked as decidable in the kernel are translated into the
//! sensors' rule structures and loaded before the policy that contains them is put in force;
//! rules the kernel cannot hold as they are (a constraint it cannot read, too many values) are
//! named in the log with the reason and stay with user space, which reports them truthfully as
//! `alerted` rather than `denied`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use shrike_bpf::enforce::{self, BinarySet, ExecRule, ExecRulesLoaded, RuleAction};
use shrike_bpf::net::{IpNet, NetDirection, NetRule, NetRuleSource, NetScope};
use shrike_bpf::{LoadError, Sensors};
use shrike_event::EventKind;
use shrike_rules::{Action, Dim, DimConstraint, Enforcement, KernelPlan, PathSet, ValueSet};
use tracing::{info, warn};

/// The exec rules of a plan, and the deny/kill exec rules that cannot be kernel rules.
pub fn exec_rules(plan: &KernelPlan) -> (Vec<ExecRule>, Vec<(String, String)>) {
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for rule in &plan.rules {
        let action = match rule.action {
            Action::Deny => RuleAction::Deny,
            Action::Kill => RuleAction::Kill,
            Action::Alert => continue,
        };
        for entry in rule
            .entries
            .iter()
            .filter(|e| e.kind == EventKind::ProcessExec)
        {
            match entry.enforcement {
                Enforcement::Kernel => {}
                // Audit mode: user space reports would_deny; the kernel does nothing.
                Enforcement::KernelAudit | Enforcement::None => continue,
                Enforcement::UserSpace { ref reason } => {
                    skipped.push((rule.id.clone(), reason.clone()));
                    continue;
                }
            }
            match exec_rule(rule.index, action, &entry.constraints) {
                Ok(r) => rules.push(r),
                Err(reason) => skipped.push((rule.id.clone(), reason)),
            }
        }
    }
    (rules, skipped)
}

fn exec_rule(
    index: u16,
    action: RuleAction,
    constraints: &std::collections::BTreeMap<Dim, DimConstraint>,
) -> Result<ExecRule, String> {
    let mut rule = ExecRule {
        rule_index: index,
        action,
        ..ExecRule::default()
    };
    let mut indexed = false;
    for (dim, c) in constraints {
        match dim {
            Dim::Binary | Dim::Script => {
                if c.exclude.is_some() {
                    return Err(format!("the kernel cannot exclude by {}", dim_name(*dim)));
                }
                if let Some(set) = &c.include {
                    if indexed {
                        return Err("the kernel indexes an exec rule by one of the binary or the script, not both".into());
                    }
                    let p = paths(set, *dim)?;
                    rule.paths = p.exact.iter().cloned().collect();
                    rule.prefixes = p.prefixes.iter().cloned().collect();
                    rule.names = p.names.iter().cloned().collect();
                    indexed = true;
                }
            }
            Dim::Uid => rule.uid = numbers(c, *dim)?.into_iter().map(|v| v as u32).collect(),
            Dim::Euid => rule.euid = numbers(c, *dim)?.into_iter().map(|v| v as u32).collect(),
            Dim::CgroupId => {
                rule.cgroup = numbers(c, *dim)?.into_iter().map(|v| v as u64).collect()
            }
            Dim::ParentBinary => {
                rule.parent_include = binaries(c.include.as_ref(), *dim)?;
                rule.parent_exclude = binaries(c.exclude.as_ref(), *dim)?;
            }
            Dim::Ancestors => {
                rule.ancestor_include = binaries(c.include.as_ref(), *dim)?;
                rule.ancestor_exclude = binaries(c.exclude.as_ref(), *dim)?;
            }
            other => return Err(format!("the exec hook cannot read {}", dim_name(*other))),
        }
    }
    Ok(rule)
}

fn dim_name(dim: Dim) -> String {
    serde_json::to_value(dim)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{dim:?}"))
}

fn paths(set: &ValueSet, dim: Dim) -> Result<&PathSet, String> {
    match set {
        ValueSet::Paths(p) => Ok(p),
        _ => Err(format!("{} is not a path set", dim_name(dim))),
    }
}

fn numbers(c: &DimConstraint, dim: Dim) -> Result<Vec<i64>, String> {
    if c.exclude.is_some() {
        return Err(format!("the kernel cannot exclude by {}", dim_name(dim)));
    }
    match &c.include {
        Some(ValueSet::Numbers(n)) => Ok(n.iter().copied().collect()),
        Some(_) => Err(format!("{} is not a number set", dim_name(dim))),
        None => Ok(Vec::new()),
    }
}

fn binaries(set: Option<&ValueSet>, dim: Dim) -> Result<BinarySet, String> {
    let Some(set) = set else {
        return Ok(BinarySet::default());
    };
    let p = paths(set, dim)?;
    if !p.prefixes.is_empty() {
        return Err(format!(
            "the kernel matches {} by exact path or name, not by prefix",
            dim_name(dim)
        ));
    }
    Ok(BinarySet {
        paths: p.exact.iter().cloned().collect(),
        names: p.names.iter().cloned().collect(),
    })
}

/// Most kernel network rules one policy rule may expand to (networks × ports × scopes).
const NET_EXPANSION_MAX: usize = 64;

/// The network rules of a plan (connect/UDP send and bind), and the deny/kill network rules
/// that cannot be kernel rules. A rule's networks, ports and scopes are expanded into one kernel
/// rule per combination; no network constraint means every IPv4 and IPv6 address.
pub fn net_rules(plan: &KernelPlan) -> (Vec<NetRule>, Vec<(String, String)>) {
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for rule in &plan.rules {
        if rule.action == Action::Alert {
            continue;
        }
        for entry in &rule.entries {
            let direction = match entry.kind {
                EventKind::NetConnect => NetDirection::Egress,
                EventKind::NetBind => NetDirection::Bind,
                _ => continue,
            };
            match entry.enforcement {
                Enforcement::Kernel => {}
                Enforcement::KernelAudit | Enforcement::None => continue,
                Enforcement::UserSpace { ref reason } => {
                    skipped.push((rule.id.clone(), reason.clone()));
                    continue;
                }
            }
            match net_rule(rule.index, direction, &entry.constraints) {
                Ok(expanded) => rules.extend(expanded),
                Err(reason) => skipped.push((rule.id.clone(), reason)),
            }
        }
    }
    (rules, skipped)
}

fn net_rule(
    index: u16,
    direction: NetDirection,
    constraints: &std::collections::BTreeMap<Dim, DimConstraint>,
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
    for (dim, c) in constraints {
        if c.exclude.is_some() {
            return Err(format!(
                "the network hooks cannot exclude by {}",
                dim_name(*dim)
            ));
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
                scopes = p.exact.iter().map(|b| NetScope::Binary(b.into())).collect();
            }
            (Dim::CgroupId, ValueSet::Numbers(ids)) => {
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

/// Loads the plan's exec and network rules into the kernel (each atomically) and logs each
/// deny/kill rule that stays in user space, with the reason.
pub fn load(sensors: &Sensors, plan: &KernelPlan) -> Result<ExecRulesLoaded, LoadError> {
    let (rules, mut skipped) = exec_rules(plan);
    let loaded = enforce::set_exec_rules(sensors, &rules)?;
    let (net, net_skipped) = net_rules(plan);
    skipped.extend(net_skipped);
    match sensors.net_rules() {
        Some(handle) => {
            handle
                .replace_source(NetRuleSource::Policy, &net)
                .map_err(|e| LoadError::Option(format!("the policy's network rules: {e}")))?;
            if !net.is_empty() {
                info!(
                    rules = net.len(),
                    "network rules enforced in the kernel (cgroup connect/sendmsg/bind hooks)"
                );
            }
        }
        None if !net.is_empty() => {
            warn!(rules = net.len(), "the policy has network deny rules but the network sensor is not loaded: they will be reported as alerted");
        }
        None => {}
    }
    for (index, reason) in &loaded.skipped {
        if let Some(rule) = plan.rules.iter().find(|r| r.index == *index) {
            skipped.push((rule.id.clone(), reason.clone()));
        }
    }
    for (id, reason) in &skipped {
        warn!(rule = %id, %reason, "deny/kill rule not enforced in the kernel: it will be reported as alerted");
    }
    if !loaded.loaded.is_empty() {
        info!(
            rules = loaded.loaded.len(),
            hook = if sensors.exec_enforced_by_lsm() {
                "lsm/bprm_check_security (EPERM)"
            } else {
                "sched_process_exec (SIGKILL)"
            },
            "exec rules enforced in the kernel"
        );
    }
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_rules::Policy;

    fn plan(yaml: &str) -> KernelPlan {
        Policy::compile([("t.yaml", yaml)])
            .unwrap()
            .kernel_plan()
            .clone()
    }

    #[test]
    fn a_script_deny_rule_becomes_an_exact_path_rule() {
        let (rules, skipped) = exec_rules(&plan(
            "- rule: Deny marker\n  id: T-1\n  severity: high\n  mitre: [T1059]\n  condition: kind = process_exec and process.script = /tmp/m/marker.sh\n  action: deny\n",
        ));
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].paths, ["/tmp/m/marker.sh"]);
        assert_eq!(rules[0].action, RuleAction::Deny);
    }

    #[test]
    fn lineage_rules_carry_ancestors_and_audit_rules_stay_in_user_space() {
        let (rules, _) = exec_rules(&plan(
            "- rule: Shell under nginx\n  id: T-2\n  severity: high\n  mitre: [T1059]\n  condition: kind = process_exec and process.name in (sh, bash) and ancestors.name = nginx\n  action: kill\n\
             - rule: Audit\n  id: T-3\n  severity: low\n  mitre: [T1059]\n  condition: kind = process_exec and process.name = nc\n  action: deny\n  mode: audit\n",
        ));
        assert_eq!(rules.len(), 1, "audit rules are not kernel rules");
        assert_eq!(rules[0].names, ["bash", "sh"]);
        assert_eq!(rules[0].ancestor_include.names, ["nginx"]);
        assert_eq!(rules[0].action, RuleAction::Kill);
    }

    #[test]
    fn network_deny_rules_expand_to_kernel_rules_per_network_port_and_binary() {
        let (rules, skipped) = net_rules(&plan(
            "- rule: No miner pools\n  id: T-NET\n  severity: high\n  mitre: [T1496]\n  condition: kind = net_connect and network.dport in (3333, 4444) and network.daddr cidr 10.0.0.0/8\n  action: deny\n",
        ));
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(rules.len(), 2);
        assert!(rules
            .iter()
            .all(|r| r.direction == NetDirection::Egress && r.network.prefix == 8 && r.index == 0));
        let ports: Vec<(u16, u16)> = rules.iter().map(|r| r.ports).collect();
        assert_eq!(ports, [(3333, 3333), (4444, 4444)]);
    }

    #[test]
    fn rules_the_kernel_cannot_decide_are_named_with_a_reason() {
        let (rules, skipped) = exec_rules(&plan(
            "- rule: Args\n  id: T-4\n  severity: low\n  mitre: [T1059]\n  condition: kind = process_exec and process.args contains -e\n  action: kill\n",
        ));
        assert!(rules.is_empty());
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].0, "T-4");
    }
}
