//! From the policy's kernel plan to the kernel's enforcement maps.
//!
//! Deny and kill rules the compiler marked as decidable in the kernel are translated into the
//! sensors' rule structures and loaded before the policy that contains them is put in force;
//! rules the kernel cannot hold as they are (a constraint it cannot read, too many values) are
//! named in the log with the reason and stay with user space, which reports them truthfully as
//! `alerted` rather than `denied`.

use shrike_bpf::enforce::{self, BinarySet, ExecRule, ExecRulesLoaded, RuleAction};
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

/// Loads the plan's exec rules into the kernel (atomically) and logs each deny/kill rule that
/// stays in user space, with the reason.
pub fn load(sensors: &Sensors, plan: &KernelPlan) -> Result<ExecRulesLoaded, LoadError> {
    let (rules, mut skipped) = exec_rules(plan);
    let loaded = enforce::set_exec_rules(sensors, &rules)?;
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
    fn rules_the_kernel_cannot_decide_are_named_with_a_reason() {
        let (rules, skipped) = exec_rules(&plan(
            "- rule: Args\n  id: T-4\n  severity: low\n  mitre: [T1059]\n  condition: kind = process_exec and process.args contains -e\n  action: kill\n",
        ));
        assert!(rules.is_empty());
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].0, "T-4");
    }
}
