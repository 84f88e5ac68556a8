//! From the policy's kernel plan to the kernel's enforcement maps.
//!
//! Deny and kill rules the compiler marked as decidable in the kernel are translated into the
//! sensors' rule structures and loaded before the policy that contains them is put in force;
//! rules the kernel cannot hold as they are (a constraint it cannot read, too many values) are
//! named in the log with the reason and stay with user space, which reports them truthfully as
//! `alerted` rather than `denied`. The exec and file translations are here; the network one,
//! which expands a rule into one kernel rule per network, port range and scope, is in `net`.

use std::collections::BTreeSet;

use shrike_bpf::enforce::{self, BinarySet, ExecRule, ExecRulesLoaded, RuleAction};
use shrike_bpf::file::{
    fnv1a, Access, EnforceKind, FileEventKind, FileRule, Pattern, RuleSite, RuleValue, WatchKind,
};
use shrike_bpf::net::NetRuleSource;
use shrike_bpf::{LoadError, Sensors};
use shrike_event::EventKind;
use shrike_rules::{
    Action, Dim, DimConstraint, Enforcement, KernelPlan, KindRule, PathSet, RulePlan, ValueSet,
};
use tracing::{info, warn};

mod net;

pub use net::net_rules;

/// The exec rules of a plan, and the deny/kill exec rules that cannot be kernel rules.
/// `cgroups` gives a workload-scoped rule's cgroup set: the cgroup ids of the containers its
/// scope covers now (`crate::workload::scope` keeps it current afterwards).
pub fn exec_rules(
    plan: &KernelPlan,
    cgroups: &dyn Fn(u16) -> BTreeSet<u64>,
) -> (Vec<ExecRule>, Vec<(String, String)>) {
    kernel_rules(
        plan,
        |kind| (kind == EventKind::ProcessExec).then_some(()),
        |rule, action, (), entry| {
            let mut r = exec_rule(rule.index, action, &entry.constraints)?;
            if entry.workload.is_some() {
                // The plan keeps no cgroup constraint of its own beside a scope.
                r.cgroup = scope_set(cgroups, rule.index).into_iter().collect();
            }
            Ok(vec![r])
        },
    )
}

/// A cgroup id no cgroup has (ids are inode numbers): the member of an empty cgroup set.
const NO_CGROUP: u64 = u64::MAX;

/// A workload-scoped exec or file rule's cgroup set: the covered containers' cgroups, or, with
/// none covered yet, only an id no cgroup has, so the rule is in place (and gains ids in place)
/// but matches nothing.
fn scope_set(cgroups: &dyn Fn(u16) -> BTreeSet<u64>, rule: u16) -> BTreeSet<u64> {
    let mut set = cgroups(rule);
    if set.is_empty() {
        set.insert(NO_CGROUP);
    }
    set
}

/// The walk every family's translation shares: each entry of a deny/kill rule whose kind
/// `family` maps to one of the family's own, and which the compiler gave to the kernel
/// (`Enforcement::Kernel`), goes through `translate`. Audit-mode entries are skipped (user space
/// reports `would_deny`); entries the compiler or `translate` leave to user space are returned
/// with the reason.
fn kernel_rules<K, R>(
    plan: &KernelPlan,
    family: impl Fn(EventKind) -> Option<K>,
    mut translate: impl FnMut(&RulePlan, RuleAction, K, &KindRule) -> Result<Vec<R>, String>,
) -> (Vec<R>, Vec<(String, String)>) {
    let mut rules = Vec::new();
    let mut skipped = Vec::new();
    for rule in &plan.rules {
        let action = match rule.action {
            Action::Deny => RuleAction::Deny,
            Action::Kill => RuleAction::Kill,
            Action::Alert => continue,
        };
        for entry in &rule.entries {
            let Some(kind) = family(entry.kind) else {
                continue;
            };
            match entry.enforcement {
                Enforcement::Kernel => {}
                // Audit mode: user space reports would_deny; the kernel does nothing.
                Enforcement::KernelAudit | Enforcement::None => continue,
                Enforcement::UserSpace { ref reason } => {
                    skipped.push((rule.id.clone(), reason.clone()));
                    continue;
                }
            }
            match translate(rule, action, kind, entry) {
                Ok(r) => rules.extend(r),
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
                if let Some(set) = &c.exclude {
                    // Exact paths only: the trie leaves the rule out of their own entries.
                    let p = paths(set, *dim)?;
                    if !p.prefixes.is_empty() || !p.names.is_empty() {
                        return Err(format!(
                            "the kernel excludes by {} only as exact paths",
                            dim_name(*dim)
                        ));
                    }
                    rule.exclude_paths.extend(p.exact.iter().cloned());
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
                rule.cgroup = numbers(c, *dim)?.into_iter().map(|v| v as u64).collect();
                if rule.cgroup.is_empty() && c.include.is_some() {
                    // `process.cgroup_id in ()`: an empty include matches nothing.
                    rule.cgroup.push(NO_CGROUP);
                }
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

/// The family's kind a deny/kill rule on `kind` acts on, when the kernel can act on it: the
/// file operations, module and BPF loads and ptrace of the file family's kinds
/// ([`crate::file_watch::family_kind`]).
pub(crate) fn enforce_kind(kind: EventKind) -> Option<EnforceKind> {
    Some(match crate::file_watch::family_kind(kind)? {
        FileEventKind::File(wk) => EnforceKind::File(wk),
        FileEventKind::ModuleLoad => EnforceKind::ModuleLoad,
        FileEventKind::BpfLoad => EnforceKind::BpfLoad,
        FileEventKind::Ptrace => EnforceKind::Ptrace,
        FileEventKind::CredChange
        | FileEventKind::Mount
        | FileEventKind::Namespace
        | FileEventKind::Memfd
        | FileEventKind::Socket
        | FileEventKind::Signal => return None,
    })
}

/// The file, module, BPF and ptrace deny/kill rules of a plan as kernel rules (loaded with the
/// file sensor's watch set), and the ones that cannot be kernel rules, with the reason.
/// Audit-mode rules are not kernel rules: user space reports `would_deny`.
/// `cgroups` gives a workload-scoped rule's cgroup set, as for [`exec_rules`].
pub fn file_rules(
    plan: &KernelPlan,
    cgroups: &dyn Fn(u16) -> BTreeSet<u64>,
) -> (Vec<FileRule>, Vec<(String, String)>) {
    kernel_rules(plan, enforce_kind, |rule, action, kind, entry| {
        let mut r = file_rule(rule.index, kind, action, &entry.constraints)
            .map_err(|reason| format!("{}: {reason}", entry.kind))?;
        if entry.workload.is_some() {
            r.values.extend(
                scope_set(cgroups, rule.index)
                    .into_iter()
                    .map(|c| (RuleValue::CgroupIn, c)),
            );
        }
        Ok(vec![r])
    })
}

fn file_rule(
    index: u16,
    kind: EnforceKind,
    action: RuleAction,
    constraints: &std::collections::BTreeMap<Dim, DimConstraint>,
) -> Result<FileRule, String> {
    let mut rule = FileRule {
        index,
        kind,
        action,
        site: RuleSite::Every,
        access: Access::ANY,
        access_excluded: Access::ANY,
        values: Vec::new(),
    };
    let file_kind = matches!(kind, EnforceKind::File(_));
    for (dim, c) in constraints {
        match dim {
            Dim::Path | Dim::NewPath if file_kind => {
                if matches!(rule.site, RuleSite::Path { .. }) {
                    return Err(
                        "the kernel finds a rule by one of file.path and file.new_path, not both"
                            .into(),
                    );
                }
                let excluded = match &c.exclude {
                    Some(set) => {
                        let p = paths(set, *dim)?;
                        if !p.names.is_empty() {
                            return Err(format!(
                                "the kernel excludes by {} only as exact paths and prefixes",
                                dim_name(*dim)
                            ));
                        }
                        path_patterns(p)
                    }
                    None => Vec::new(),
                };
                let patterns = match &c.include {
                    Some(set) => path_patterns(paths(set, *dim)?),
                    // Only exclusions: every absolute path but those.
                    None if !excluded.is_empty() => vec![Pattern::Prefix("/".into())],
                    None => continue,
                };
                rule.site = RuleSite::Path {
                    patterns,
                    new_path: *dim == Dim::NewPath,
                    excluded,
                };
            }
            Dim::Access if kind == EnforceKind::File(WatchKind::Open) => {
                rule.access = access(c.include.as_ref(), *dim)?;
                rule.access_excluded = access(c.exclude.as_ref(), *dim)?;
            }
            Dim::Binary => binary_values(
                &mut rule,
                c,
                *dim,
                RuleValue::BinaryIn,
                RuleValue::BinaryNotIn,
            )?,
            Dim::ParentBinary => binary_values(
                &mut rule,
                c,
                *dim,
                RuleValue::ParentIn,
                RuleValue::ParentNotIn,
            )?,
            Dim::Ancestors => binary_values(
                &mut rule,
                c,
                *dim,
                RuleValue::AncestorIn,
                RuleValue::AncestorNotIn,
            )?,
            Dim::TargetBinary if kind == EnforceKind::Ptrace => binary_values(
                &mut rule,
                c,
                *dim,
                RuleValue::TargetIn,
                RuleValue::TargetNotIn,
            )?,
            Dim::Uid => number_values(&mut rule, c, *dim, RuleValue::UidIn, RuleValue::UidNotIn)?,
            Dim::Euid => {
                number_values(&mut rule, c, *dim, RuleValue::EuidIn, RuleValue::EuidNotIn)?
            }
            Dim::CgroupId => number_values(
                &mut rule,
                c,
                *dim,
                RuleValue::CgroupIn,
                RuleValue::CgroupNotIn,
            )?,
            other => return Err(format!("the {kind} hooks cannot read {}", dim_name(*other))),
        }
    }
    Ok(rule)
}

/// A path set as watch patterns: exact paths, prefixes, base names.
fn path_patterns(p: &PathSet) -> Vec<Pattern> {
    p.exact
        .iter()
        .cloned()
        .map(Pattern::Exact)
        .chain(p.prefixes.iter().cloned().map(Pattern::Prefix))
        .chain(p.names.iter().cloned().map(Pattern::Name))
        .collect()
}

/// `file.access` words as the kernel's access bits.
fn access(set: Option<&ValueSet>, dim: Dim) -> Result<Access, String> {
    let Some(set) = set else {
        return Ok(Access::ANY);
    };
    let p = paths(set, dim)?;
    let mut bits = 0;
    for word in &p.exact {
        bits |= match word.as_str() {
            "read" => Access::READ.0,
            "write" => Access::WRITE.0,
            "create" => Access::CREATE.0,
            "truncate" => Access::TRUNCATE.0,
            other => return Err(format!("file.access has no word {other:?}")),
        };
    }
    if bits == 0 {
        // An empty include can never match: the kernel must not read it as "any".
        return Err("file.access matches no word".into());
    }
    Ok(Access(bits))
}

fn binary_values(
    rule: &mut FileRule,
    c: &DimConstraint,
    dim: Dim,
    include: RuleValue,
    exclude: RuleValue,
) -> Result<(), String> {
    for (set, which) in [(c.include.as_ref(), include), (c.exclude.as_ref(), exclude)] {
        let Some(set) = set else { continue };
        let b = binaries(Some(set), dim)?;
        if b.paths.is_empty() && b.names.is_empty() {
            // An include that can never hold: the flag with no value says so in the kernel.
            rule.values.push((which, 0));
        }
        for v in b.paths.iter().chain(b.names.iter()) {
            rule.values.push((which, fnv1a(v.as_bytes())));
        }
    }
    Ok(())
}

fn number_values(
    rule: &mut FileRule,
    c: &DimConstraint,
    dim: Dim,
    include: RuleValue,
    exclude: RuleValue,
) -> Result<(), String> {
    for (set, which) in [(c.include.as_ref(), include), (c.exclude.as_ref(), exclude)] {
        match set {
            None => {}
            Some(ValueSet::Numbers(n)) => {
                if n.is_empty() {
                    rule.values.push((which, u64::MAX));
                }
                rule.values.extend(n.iter().map(|&v| (which, v as u64)));
            }
            Some(_) => return Err(format!("{} is not a number set", dim_name(dim))),
        }
    }
    Ok(())
}

/// The deny/kill rules the compiler gives to the kernel but this agent's kernel rules cannot
/// hold as written, with the reason — also for audit-mode rules, as if they enforced (what
/// `shrike policy explain` adds to the compiler's view).
pub fn not_held(plan: &KernelPlan) -> Vec<(String, String)> {
    let mut plan = plan.clone();
    for entry in plan.rules.iter_mut().flat_map(|r| r.entries.iter_mut()) {
        if entry.enforcement == Enforcement::KernelAudit {
            entry.enforcement = Enforcement::Kernel;
        }
    }
    let (_, mut out) = exec_rules(&plan, &|_| BTreeSet::new());
    out.extend(net_rules(&plan, &|_| BTreeSet::new()).1);
    let (file, skipped) = file_rules(&plan, &|_| BTreeSet::new());
    out.extend(skipped);
    if let Ok(compiled) = shrike_bpf::file::compile(&shrike_bpf::file::WatchSet {
        rules: file,
        ..Default::default()
    }) {
        for (index, reason) in compiled.not_enforced {
            if let Some(rule) = plan.rules.iter().find(|r| r.index == index) {
                out.push((rule.id.clone(), reason));
            }
        }
    }
    out
}

/// Loads the plan's exec and network rules into the kernel (each atomically) and logs each
/// deny/kill rule that stays in user space, with the reason.
///
/// With `strict`, the exec rules with a path prefix also stop an exec whose path was cut (see
/// `shrike_bpf::enforce::set_exec_rules_strict`).
pub fn load(
    sensors: &Sensors,
    plan: &KernelPlan,
    strict: bool,
    cgroups: &dyn Fn(u16) -> BTreeSet<u64>,
) -> Result<ExecRulesLoaded, LoadError> {
    let (rules, mut skipped) = exec_rules(plan, cgroups);
    let loaded = enforce::set_exec_rules_strict(sensors, &rules, strict)?;
    let (net, net_skipped) = net_rules(plan, cgroups);
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
    // File, module, BPF and ptrace rules go into the kernel with the file sensor's watch set
    // (crate::file_watch::merged), in the same generation; here they are only reported.
    let (file, file_skipped) = file_rules(plan, cgroups);
    skipped.extend(file_skipped);
    if !file.is_empty() {
        match sensors.file_hook_set() {
            Some(hooks) => {
                let layout = shrike_bpf::file::compile(&shrike_bpf::file::WatchSet {
                    rules: file.clone(),
                    ..Default::default()
                });
                if let Ok(c) = layout {
                    for (index, reason) in c.not_enforced {
                        if let Some(rule) = plan.rules.iter().find(|r| r.index == index) {
                            skipped.push((rule.id.clone(), reason));
                        }
                    }
                }
                info!(
                    rules = file.len(),
                    hook = match hooks {
                        shrike_bpf::file::HookSet::Lsm => "BPF LSM hooks (EPERM)",
                        shrike_bpf::file::HookSet::Tracepoint
                        | shrike_bpf::file::HookSet::RawTracepoint =>
                            "syscall tracepoints (SIGKILL)",
                        shrike_bpf::file::HookSet::Fentry => "fentry/fexit (SIGKILL)",
                    },
                    "file, module, BPF and ptrace rules enforced in the kernel"
                );
            }
            None => warn!(
                rules = file.len(),
                "the policy has file, module, BPF or ptrace deny rules but the file sensor is not loaded: they will be reported as alerted"
            ),
        }
    }
    for (id, reason) in &skipped {
        warn!(rule = %id, %reason, "deny/kill rule not enforced in the kernel: it will be reported as alerted");
    }
    let ids = |indexes: &[u16]| {
        indexes
            .iter()
            .filter_map(|i| plan.rules.iter().find(|r| r.index == *i))
            .map(|r| r.id.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !loaded.cut_paths.is_empty() {
        info!(rules = %ids(&loaded.cut_paths), "--strict: these exec rules also stop an exec whose path is too deep to read whole");
    }
    if !loaded.cut_skipped.is_empty() {
        warn!(rules = %ids(&loaded.cut_skipped), "--strict: more exec rules with a path prefix than the kernel applies to a cut path; an exec too deep for these is alerted, not stopped");
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
    use shrike_bpf::net::{NetDirection, NetRule, NetScope};
    use shrike_rules::Policy;

    fn exec_rules_now(plan: &KernelPlan) -> (Vec<ExecRule>, Vec<(String, String)>) {
        exec_rules(plan, &|_| BTreeSet::new())
    }

    fn file_rules_now(plan: &KernelPlan) -> (Vec<FileRule>, Vec<(String, String)>) {
        file_rules(plan, &|_| BTreeSet::new())
    }

    fn net_rules_now(plan: &KernelPlan) -> (Vec<NetRule>, Vec<(String, String)>) {
        net_rules(plan, &|_| BTreeSet::new())
    }

    fn plan(yaml: &str) -> KernelPlan {
        Policy::compile([("t.yaml", yaml)])
            .unwrap()
            .kernel_plan()
            .clone()
    }

    #[test]
    fn a_script_deny_rule_becomes_an_exact_path_rule() {
        let (rules, skipped) = exec_rules_now(&plan(
            "- rule: Deny marker\n  id: T-1\n  severity: high\n  mitre: [T1059]\n  condition: kind = process_exec and process.script = /tmp/m/marker.sh\n  action: deny\n",
        ));
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].paths, ["/tmp/m/marker.sh"]);
        assert_eq!(rules[0].action, RuleAction::Deny);
    }

    #[test]
    fn lineage_rules_carry_ancestors_and_audit_rules_stay_in_user_space() {
        let (rules, _) = exec_rules_now(&plan(
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
        let (rules, skipped) = net_rules_now(&plan(
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

    /// A rule on what runs below a binary (`ancestors.binary`) is an ancestor scope; two
    /// scopes in one rule (the hooks hold one) stay in user space, and say why.
    #[test]
    fn network_rules_below_a_binary_are_ancestor_scopes_and_two_scopes_stay_in_user_space() {
        let (rules, skipped) = net_rules_now(&plan(
            "- rule: Below the app\n  id: T-N1\n  severity: high\n  condition: kind = net_connect and ancestors.binary = /opt/app/server and network.dport = 25\n  action: deny\n\
             - rule: Two scopes\n  id: T-N2\n  severity: high\n  condition: kind = net_connect and process.binary = /usr/bin/curl and process.cgroup_id = 7\n  action: deny\n",
        ));
        assert_eq!(rules.len(), 2, "IPv4 and IPv6: {rules:?}");
        assert!(rules
            .iter()
            .all(|r| r.scope == NetScope::Ancestor("/opt/app/server".into())));
        let ids: Vec<&str> = skipped.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["T-N2"], "{skipped:?}");
        assert!(skipped[0].1.contains("one scope per rule"), "{skipped:?}");
    }

    #[test]
    fn file_deny_rules_become_path_rules_with_access_and_binary_values() {
        let (rules, skipped) = file_rules_now(&plan(
            "- rule: Shadow\n  id: T-F1\n  severity: high\n  mitre: [T1003]\n  condition: kind = file_open and file.path = /etc/shadow and file.access contains read and not process.name in (sshd, login)\n  action: deny\n\
             - rule: Cron\n  id: T-F2\n  severity: high\n  mitre: [T1053]\n  condition: kind in (file_unlink, file_rename) and file.path startswith /etc/cron.d/\n  action: kill\n\
             - rule: Audit\n  id: T-F3\n  severity: low\n  mitre: [T1003]\n  condition: kind = file_open and file.path = /etc/gshadow\n  action: deny\n  mode: audit\n\
             - rule: Modules\n  id: T-F4\n  severity: high\n  mitre: [T1547.006]\n  condition: kind = module_load\n  action: deny\n\
             - rule: Trace sshd\n  id: T-F5\n  severity: high\n  mitre: [T1055]\n  condition: kind = ptrace and ptrace.target_binary = /usr/sbin/sshd\n  action: deny\n",
        ));
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(
            rules.len(),
            5,
            "audit rules are not kernel rules: {rules:?}"
        );
        let shadow = &rules[0];
        assert_eq!(shadow.kind, EnforceKind::File(WatchKind::Open));
        assert_eq!(
            shadow.site,
            RuleSite::Path {
                patterns: vec![Pattern::Exact("/etc/shadow".into())],
                new_path: false,
                excluded: Vec::new(),
            }
        );
        assert_eq!(shadow.access, Access::READ);
        assert_eq!(
            shadow.values,
            [
                (RuleValue::BinaryNotIn, fnv1a(b"login")),
                (RuleValue::BinaryNotIn, fnv1a(b"sshd"))
            ]
        );
        assert_eq!(rules[1].kind, EnforceKind::File(WatchKind::Unlink));
        assert_eq!(rules[2].kind, EnforceKind::File(WatchKind::Rename));
        assert_eq!(rules[1].action, RuleAction::Kill);
        assert_eq!(
            (rules[3].kind, &rules[3].site),
            (EnforceKind::ModuleLoad, &RuleSite::Every)
        );
        assert_eq!(
            rules[4].values,
            [(RuleValue::TargetIn, fnv1a(b"/usr/sbin/sshd"))]
        );
    }

    #[test]
    fn file_rules_the_hooks_cannot_decide_stay_in_user_space_with_a_reason() {
        let (rules, skipped) = file_rules_now(&plan(
            "- rule: Prefix binary\n  id: T-G1\n  severity: high\n  mitre: [T1003]\n  condition: kind = file_open and file.path = /etc/shadow and process.binary startswith /tmp/\n  action: deny\n\
             - rule: Not name\n  id: T-G2\n  severity: high\n  mitre: [T1003]\n  condition: kind = file_unlink and not file.path endswith /keep.txt\n  action: deny\n",
        ));
        assert!(rules.is_empty(), "{rules:?}");
        let ids: Vec<&str> = skipped.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["T-G1", "T-G2"], "{skipped:?}");
        assert!(skipped[0].1.contains("prefix"), "{skipped:?}");
        assert!(
            skipped[1].1.contains("only as exact paths and prefixes"),
            "{skipped:?}"
        );
    }

    /// An allow-list of paths — every write but to these — is a rule on `/` that leaves out
    /// the listed exact paths and prefixes; an exclusion alone means every path but those.
    #[test]
    fn file_allow_lists_become_rules_on_every_path_with_exclusions() {
        let (rules, skipped) = file_rules_now(&plan(
            "- list: ok\n  items: [/srv/state.txt, /var/log/app.log]\n\
             - rule: Writes\n  id: T-W1\n  severity: high\n  mitre: [T1565]\n  condition: kind = file_open and file.access in (write, truncate) and file.path startswith / and not file.path in (ok) and not file.path startswith /dev/pts/\n  action: deny\n\
             - rule: Unlinks\n  id: T-W2\n  severity: high\n  mitre: [T1565]\n  condition: kind = file_unlink and not file.path startswith /tmp/\n  action: deny\n",
        ));
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(rules.len(), 2, "{rules:?}");
        assert_eq!(
            rules[0].site,
            RuleSite::Path {
                patterns: vec![Pattern::Prefix("/".into())],
                new_path: false,
                excluded: vec![
                    Pattern::Exact("/srv/state.txt".into()),
                    Pattern::Exact("/var/log/app.log".into()),
                    Pattern::Prefix("/dev/pts/".into()),
                ],
            }
        );
        assert_eq!(
            rules[1].site,
            RuleSite::Path {
                patterns: vec![Pattern::Prefix("/".into())],
                new_path: false,
                excluded: vec![Pattern::Prefix("/tmp/".into())],
            }
        );
    }

    /// An allow-list of executables — every path but these — is a prefix rule with exact
    /// exclusions; a network allow-list becomes the complement of its addresses and ports.
    #[test]
    fn allow_lists_become_prefix_rules_with_exclusions_and_complements() {
        let p = plan(
            "- rule: Exec\n  id: T-A1\n  severity: high\n  condition: kind = process_exec and process.cgroup_id = 7 and process.binary startswith / and not process.binary in (/usr/bin/python3.11, /usr/bin/env)\n  action: deny\n\
             - rule: Peers\n  id: T-A2\n  severity: high\n  condition: kind = net_connect and process.cgroup_id = 7 and not network.daddr in (127.0.0.1)\n  action: deny\n\
             - rule: Ports\n  id: T-A3\n  severity: high\n  condition: kind = net_connect and process.cgroup_id = 7 and network.daddr in (127.0.0.1) and not network.dport in (8000)\n  action: deny\n\
             - rule: Names\n  id: T-A4\n  severity: high\n  condition: kind = process_exec and process.binary startswith / and not process.name in (sh)\n  action: deny\n",
        );
        let (exec, skipped) = exec_rules_now(&p);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert_eq!(skipped[0].0, "T-A4", "names cannot be excluded in the trie");
        assert_eq!(exec.len(), 1);
        assert_eq!(exec[0].prefixes, ["/"]);
        assert_eq!(
            exec[0].exclude_paths,
            ["/usr/bin/env", "/usr/bin/python3.11"]
        );
        assert_eq!(exec[0].cgroup, [7]);
        let (net, skipped) = net_rules_now(&p);
        assert!(skipped.is_empty(), "{skipped:?}");
        let peers: Vec<&NetRule> = net.iter().filter(|r| r.index == 1).collect();
        assert_eq!(peers.len(), 32 + crate::exclusion::V6_UNICAST.len());
        assert!(peers
            .iter()
            .all(|r| r.scope == NetScope::CgroupId(7) && r.ports == (0, u16::MAX)));
        let ports: Vec<(u16, u16)> = net
            .iter()
            .filter(|r| r.index == 2)
            .map(|r| r.ports)
            .collect();
        assert_eq!(ports, [(0, 7999), (8001, u16::MAX)]);
    }

    /// A pod-scoped exec deny becomes a kernel rule on the binary whose cgroup set is what the
    /// keeper gives now; with no container covered yet, a set that matches nothing (never an
    /// absent constraint, which would deny the exec everywhere).
    #[test]
    fn a_workload_scoped_exec_rule_carries_the_covered_cgroups_or_matches_nothing() {
        let p = plan(
            "- rule: Pod\n  id: T-W1\n  severity: high\n  condition: kind = process_exec and process.binary = /opt/x and k8s.namespace = prod\n  action: deny\n",
        );
        let (rules, skipped) = exec_rules(&p, &|rule| {
            assert_eq!(rule, 0);
            BTreeSet::from([41, 42])
        });
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].paths, ["/opt/x"]);
        assert_eq!(rules[0].cgroup, [41, 42]);
        let (rules, _) = exec_rules_now(&p);
        assert_eq!(rules[0].cgroup, [NO_CGROUP]);
    }

    /// The same for a file rule: the covered containers' cgroups as its cgroup values, or the
    /// id no cgroup has; and a network rule: one kernel rule per covered container's cgroup,
    /// none while no container is covered.
    #[test]
    fn a_workload_scoped_file_rule_carries_the_covered_cgroups_or_matches_nothing() {
        let p = plan(
            "- rule: Pod writes\n  id: T-W2\n  severity: high\n  condition: kind = file_open and file.path startswith /etc/ and file.access contains write and container.id = abc\n  action: deny\n\
             - rule: Pod connects\n  id: T-W3\n  severity: high\n  condition: kind = net_connect and network.dport = 25 and container.id = abc\n  action: deny\n",
        );
        let (rules, skipped) = file_rules(&p, &|_| BTreeSet::from([41, 42]));
        assert!(skipped.is_empty(), "{skipped:?}");
        assert_eq!(
            rules[0].values,
            [(RuleValue::CgroupIn, 41), (RuleValue::CgroupIn, 42)]
        );
        let (rules, _) = file_rules_now(&p);
        assert_eq!(rules[0].values, [(RuleValue::CgroupIn, NO_CGROUP)]);
        let (net, skipped) = net_rules(&p, &|_| BTreeSet::from([41, 42]));
        assert!(skipped.is_empty(), "{skipped:?}");
        let scopes: Vec<&NetScope> = net.iter().map(|r| &r.scope).collect();
        // Every IPv4 and IPv6 address, port 25, in each container's cgroup.
        assert_eq!(
            scopes,
            [
                &NetScope::CgroupId(41),
                &NetScope::CgroupId(42),
                &NetScope::CgroupId(41),
                &NetScope::CgroupId(42)
            ]
        );
        assert!(net.iter().all(|r| r.ports == (25, 25)));
        assert!(net_rules_now(&p).0.is_empty(), "no container covered yet");
    }

    #[test]
    fn rules_the_kernel_cannot_decide_are_named_with_a_reason() {
        let (rules, skipped) = exec_rules_now(&plan(
            "- rule: Args\n  id: T-4\n  severity: low\n  mitre: [T1059]\n  condition: kind = process_exec and process.args contains -e\n  action: kill\n",
        ));
        assert!(rules.is_empty());
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].0, "T-4");
    }
}
