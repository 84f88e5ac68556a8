//! What the agent can see and enforce here, set against what the policy asks for.
//!
//! The sensors report one [`Status`] per capability (see `shrike_bpf::capability`). This module
//! maps each rule of the policy to the capabilities it needs — by the event kinds it can match
//! and, for deny and kill rules, the hook that enforces them — and decides whether the agent
//! may start: a rule whose capability is degraded or unavailable stops `shrike run` unless
//! `--allow-degraded` is given, in which case the rule is reported as not in force. The same
//! facts become the `agent_health` event, written at start and whenever they change, so a SIEM
//! sees a lost capability without reading the agent's logs.

use shrike_bpf::capability::{Capability, State, Status};
use shrike_event::{CapabilityHealth, EventKind, Health, RuleNotInForce};
use shrike_rules::meta::{Action, Mode};
use shrike_rules::policy::RuleInfo;

use crate::file_watch::family_kind;

/// The capability that produces events of `kind`, if any (the agent's own events need none).
pub fn capability_of(kind: EventKind) -> Option<Capability> {
    use EventKind as K;
    Some(match kind {
        K::ProcessExec | K::ProcessExit | K::ProcessFork => Capability::ProcessEvents,
        K::FileOpen
        | K::FileUnlink
        | K::FileRename
        | K::FileChmod
        | K::FileChown
        | K::FileLink
        | K::FileUtimes
        | K::ModuleLoad
        | K::BpfLoad
        | K::Ptrace
        | K::CredChange
        | K::Mount
        | K::Umount
        | K::NamespaceChange
        | K::MemfdCreate
        | K::SocketCreate
        | K::Signal => Capability::FileEvents,
        K::NetConnect | K::NetBind => Capability::NetSockets,
        K::NetAccept | K::NetListen | K::NetClose => Capability::NetTcpState,
        K::Dns => Capability::NetDns,
        K::EventsLost | K::AgentHealth | K::Incident | K::AlertsSuppressed | K::PolicyChange => {
            return None
        }
    })
}

/// The capabilities a rule needs: one per kind it can match, plus the enforcing hook of a
/// deny or kill rule in enforce mode.
pub fn needs(rule: &RuleInfo) -> Vec<Capability> {
    let mut out: Vec<Capability> = Vec::new();
    let mut add = |c: Capability| {
        if !out.contains(&c) {
            out.push(c);
        }
    };
    for kind in &rule.kinds {
        if let Some(c) = capability_of(*kind) {
            add(c);
        }
    }
    let enforces = rule.action != Action::Alert && rule.mode == Mode::Enforce;
    if enforces && rule.kinds.contains(&EventKind::ProcessExec) {
        add(Capability::DenyExec);
    }
    out
}

/// A rule that needs a capability the agent does not have in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub rule_id: String,
    pub capability: Capability,
    pub state: State,
    pub reason: Option<String>,
}

/// The enabled rules whose capabilities are not in force, rule by rule. A capability turned
/// off by an option is listed too (the rule is not in force), but see [`refuses`]; so is a rule
/// whose every event kind this kernel cannot produce (its system calls are not built in: state
/// `off`, with its own reason), though its capability is in force.
pub fn missing<'a>(rules: impl Iterator<Item = &'a RuleInfo>, statuses: &[Status]) -> Vec<Missing> {
    let mut out = Vec::new();
    for rule in rules.filter(|r| r.enabled) {
        for cap in needs(rule) {
            let Some(status) = statuses.iter().find(|s| s.capability == cap) else {
                continue;
            };
            if !status.state.in_force() {
                out.push(Missing {
                    rule_id: rule.id.clone(),
                    capability: cap,
                    state: status.state,
                    reason: status.reason.clone(),
                });
            } else if let Some(calls) = calls_missing_for(rule, status) {
                out.push(Missing {
                    rule_id: rule.id.clone(),
                    capability: cap,
                    state: State::Off,
                    reason: Some(format!(
                        "its events cannot be seen here: the kernel was built without {} (every call fails with ENOSYS, and there is nothing to hook but every system call); --file-hooks raw-tracepoint sees the attempts, at the cost of a program on every system call",
                        calls.join(" and ")
                    )),
                });
            }
        }
    }
    out
}

/// The system calls, all absent from this kernel, behind every kind of `status`'s capability
/// that `rule` matches; `None` when one of those kinds can happen here.
fn calls_missing_for(rule: &RuleInfo, status: &Status) -> Option<Vec<&'static str>> {
    if status.unseen.is_empty() {
        return None;
    }
    let mut calls: Vec<&'static str> = Vec::new();
    for kind in rule
        .kinds
        .iter()
        .filter(|k| capability_of(**k) == Some(status.capability))
    {
        let family = family_kind(*kind)?;
        let unseen = status.unseen.iter().find(|u| u.kind == family)?;
        for call in &unseen.calls {
            if !calls.contains(call) {
                calls.push(call);
            }
        }
    }
    (!calls.is_empty()).then_some(calls)
}

/// The reason `m` has of its own, when it is not its capability's (that one is reported with
/// the capability): why a rule's events cannot happen although its capability is in force.
pub fn own_reason<'a>(m: &'a Missing, statuses: &[Status]) -> Option<&'a str> {
    let capability = statuses.iter().find(|s| s.capability == m.capability);
    let reason = m.reason.as_deref()?;
    (capability.and_then(|s| s.reason.as_deref()) != Some(reason)).then_some(reason)
}

/// Whether a missing capability stops the agent from starting: one the kernel refused does;
/// one the user turned off (`--no-net`, `--no-file-sensor`) does not.
pub fn refuses(m: &Missing) -> bool {
    matches!(m.state, State::Degraded | State::Unavailable)
}

/// The `agent_health` payload.
pub fn health(statuses: &[Status], missing: &[Missing]) -> Health {
    Health {
        capabilities: statuses
            .iter()
            .map(|s| CapabilityHealth {
                name: s.capability.name().to_string(),
                state: s.state.as_str().to_string(),
                hook: s.hook.clone(),
                reason: s.reason.clone(),
            })
            .collect(),
        rules_not_in_force: missing
            .iter()
            .map(|m| RuleNotInForce {
                rule_id: m.rule_id.clone(),
                capability: m.capability.name().to_string(),
                reason: own_reason(m, statuses).map(str::to_string),
            })
            .collect(),
    }
}

/// The error `run` stops with: every rule and the capability it lacks, and the way out.
pub fn refusal_message(missing: &[Missing]) -> String {
    let mut text =
        String::from("rules of the policy need capabilities that could not load on this kernel:\n");
    for m in missing.iter().filter(|m| refuses(m)) {
        text.push_str(&format!(
            "  - rule {} needs {} ({}), which is {}{}\n",
            m.rule_id,
            m.capability.name(),
            m.capability.describe(),
            m.state.as_str(),
            m.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ));
    }
    text.push_str(
        "run `shrike doctor` for the details; start with --allow-degraded to run without these rules in force, or disable them in the policy",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_rules::meta::Severity;

    fn rule(id: &str, kinds: &[EventKind], action: Action) -> RuleInfo {
        RuleInfo {
            index: 0,
            id: id.into(),
            name: id.into(),
            description: String::new(),
            severity: Severity::High,
            mitre: Vec::new(),
            action,
            mode: Mode::Enforce,
            enabled: true,
            tags: Vec::new(),
            throttle: None,
            kinds: kinds.to_vec(),
            condition: String::new(),
            exceptions: Vec::new(),
            rate: None,
            file: String::new(),
            line: 1,
            col: 1,
        }
    }

    /// A DNS rule on a kernel that refused the DNS programs stops the start; a connect rule
    /// with `--no-net` is listed but does not; an exec deny rule on the SIGKILL fallback runs.
    #[test]
    fn rules_are_checked_against_the_capabilities_they_need() {
        let statuses = vec![
            Status::new(Capability::ProcessEvents, State::Ok, "tp_btf"),
            Status::new(Capability::DenyExec, State::Fallback, "SIGKILL"),
            Status::new(Capability::NetDns, State::Unavailable, "").because("refused"),
            Status::new(Capability::NetSockets, State::Off, "").because("--no-net"),
        ];
        let rules = [
            rule("DNS-1", &[EventKind::Dns], Action::Alert),
            rule("NET-1", &[EventKind::NetConnect], Action::Deny),
            rule("EXEC-1", &[EventKind::ProcessExec], Action::Deny),
        ];
        let missing = missing(rules.iter(), &statuses);
        let ids: Vec<(&str, Capability, bool)> = missing
            .iter()
            .map(|m| (m.rule_id.as_str(), m.capability, refuses(m)))
            .collect();
        assert_eq!(
            ids,
            vec![
                ("DNS-1", Capability::NetDns, true),
                ("NET-1", Capability::NetSockets, false)
            ]
        );
        let text = refusal_message(&missing);
        assert!(text.contains("rule DNS-1 needs net_dns"), "{text}");
        assert!(!text.contains("NET-1"), "{text}");
        let h = health(&statuses, &missing);
        assert_eq!(h.capabilities.len(), 4);
        assert_eq!(h.rules_not_in_force.len(), 2);
    }

    /// On a kernel built without the module calls, a module rule is not in force (and says
    /// why) but does not stop the start; a rule that also matches another kind stays in force.
    #[test]
    fn a_rule_whose_system_calls_the_kernel_lacks_is_not_in_force() {
        let mut file = Status::new(Capability::FileEvents, State::Fallback, "tracepoints")
            .because("slow path");
        file.unseen = vec![shrike_bpf::capability::Unseen {
            kind: shrike_bpf::file::FileEventKind::ModuleLoad,
            calls: vec!["init_module", "finit_module"],
        }];
        let statuses = vec![file];
        let rules = [
            rule("MOD-1", &[EventKind::ModuleLoad], Action::Alert),
            rule(
                "MOD-2",
                &[EventKind::ModuleLoad, EventKind::BpfLoad],
                Action::Alert,
            ),
            rule("OPEN-1", &[EventKind::FileOpen], Action::Deny),
        ];
        let missing = missing(rules.iter(), &statuses);
        assert_eq!(missing.len(), 1, "{missing:?}");
        let m = &missing[0];
        assert_eq!((m.rule_id.as_str(), m.state), ("MOD-1", State::Off));
        assert!(!refuses(m));
        let reason = m.reason.as_deref().unwrap();
        assert!(
            reason.contains("built without init_module and finit_module"),
            "{reason}"
        );
        let h = health(&statuses, &missing);
        assert_eq!(h.rules_not_in_force[0].reason.as_deref(), Some(reason));
    }

    /// Every kind a rule can match maps to a capability, except the agent's own events.
    #[test]
    fn every_sensor_kind_has_a_capability() {
        for kind in EventKind::ALL {
            assert_eq!(
                capability_of(kind).is_some(),
                kind.from_sensor(),
                "{kind:?}"
            );
        }
    }
}
