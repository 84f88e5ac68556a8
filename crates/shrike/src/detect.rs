//! The rule stage: every event is evaluated against the running policy and gets its `alerts`;
//! rate rules count their matches here (bounded state, `shrike_rules::counting`).
//!
//! The policy is an `Arc` swapped whole on reload, so evaluation never sees half a policy. What
//! the kernel did to the action (nothing, denied, killed) comes from the record
//! ([`Event::enforced`]), so an alert's `outcome` says what really happened: a rule the kernel
//! enforced says `denied` or `killed`, an enforcing rule the kernel could not act on says
//! `alerted`, an audit-mode rule says `would_deny`. Every alert is made here: policy matches,
//! rules the kernel acted on (including the `--net-config` rules, which have no user-space
//! condition) and self-protection.

use std::collections::HashMap;
use std::sync::Arc;

use shrike_event::{Alert, Enforced, EnforcedAction, Event};
use shrike_rules::{Action, KernelAction, Match, Outcome, Policy, RateState};

use crate::netconfig::NetRuleInfo;

pub struct Detector {
    policy: Arc<Policy>,
    /// Counting state of the policy's rate rules (bounded; reset with the policy).
    rates: RateState,
    matches: Vec<Match>,
    alerts_emitted: u64,
    /// The `--net-config` rules, by the index the kernel names them with.
    config_rules: HashMap<u16, NetRuleInfo>,
    /// The agent's pid and whether self-protection refuses attempts (`selfprotect`).
    self_pid: u32,
    protecting: bool,
}

impl Detector {
    pub fn new(policy: Arc<Policy>) -> Self {
        Detector {
            policy,
            rates: RateState::new(),
            matches: Vec::new(),
            alerts_emitted: 0,
            config_rules: HashMap::new(),
            self_pid: std::process::id(),
            protecting: false,
        }
    }

    /// Replaces the `--net-config` rules' descriptions (their indexes never meet a policy
    /// rule's: they start at `shrike_bpf::net::CONFIG_INDEX_BASE`).
    pub fn set_config_rules(&mut self, rules: impl IntoIterator<Item = NetRuleInfo>) {
        self.config_rules = rules.into_iter().map(|r| (r.index, r)).collect();
    }

    /// Self-protection refuses attempts against the agent (`--protect-self` on BPF LSM).
    pub fn set_protecting(&mut self, on: bool) {
        self.protecting = on;
    }

    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    /// Replaces the running policy (rate counts start again: rule indexes may have changed).
    pub fn replace(&mut self, policy: Arc<Policy>) {
        self.policy = policy;
        self.rates = RateState::new();
    }

    /// Adds an alert to `event` for every rule that matches it, and for the rule the kernel
    /// enforced even if its user-space check did not match (the action was stopped: that must
    /// be reported).
    /// The agent's own actions (reading every /proc/PID/environ while it seeds its process
    /// table, its own files) are not evaluated against the policy: they are not an attacker's,
    /// and attempts on the agent are self-protection's to report.
    pub fn apply(&mut self, event: &mut Event) {
        self.matches.clear();
        if event.process.pid != self.self_pid {
            self.policy
                .evaluate_with(event, &mut self.rates, &mut self.matches);
        }
        let before = event.alerts.len();
        let enforced = event.enforced;
        for m in &self.matches {
            let kernel = match enforced {
                Some(e) if e.rule_index == m.index => kernel_action(e.action),
                _ => KernelAction::Nothing,
            };
            push_unique(event, m.to_alert(kernel));
        }
        if let Some(e) = enforced {
            if !self.matches.iter().any(|m| m.index == e.rule_index) {
                if let Some(alert) = self.kernel_match_alert(e) {
                    push_unique(event, alert);
                }
            }
        }
        if let Some(alert) = crate::selfprotect::alert(event, self.self_pid, self.protecting) {
            push_unique(event, alert);
        }
        self.alerts_emitted += (event.alerts.len() - before) as u64;
    }

    /// The alert of a rule the kernel acted on (or matched in audit mode) that user space did
    /// not match: a `--net-config` rule (user space has no condition for it), or a policy rule
    /// whose kernel form matched (the action was stopped: that must be reported).
    fn kernel_match_alert(&self, e: Enforced) -> Option<Alert> {
        let outcome = match e.action {
            EnforcedAction::Denied => Outcome::Denied,
            EnforcedAction::Killed => Outcome::Killed,
            EnforcedAction::Audited => Outcome::WouldDeny,
        }
        .as_str();
        if let Some(rule) = self.config_rules.get(&e.rule_index) {
            return Some(Alert {
                rule_id: rule.rule_id.clone(),
                rule: rule.name.clone(),
                severity: rule.severity.clone(),
                action: Action::Deny.as_str().into(),
                outcome: outcome.into(),
                mitre: Vec::new(),
                incident_id: None,
            });
        }
        let info = self.policy.rule(e.rule_index)?;
        Some(Alert {
            rule_id: info.id.clone(),
            rule: info.name.clone(),
            severity: info.severity.as_str().to_string(),
            action: info.action.as_str().to_string(),
            outcome: outcome.into(),
            mitre: info.mitre.clone(),
            incident_id: None,
        })
    }

    /// Alerts added since start.
    pub fn alerts_emitted(&self) -> u64 {
        self.alerts_emitted
    }
}

fn kernel_action(action: EnforcedAction) -> KernelAction {
    match action {
        EnforcedAction::Denied => KernelAction::Denied,
        EnforcedAction::Killed => KernelAction::Killed,
        EnforcedAction::Audited => KernelAction::Nothing,
    }
}

/// A sensor may already have attached an alert for the same rule (e.g. from its own config).
fn push_unique(event: &mut Event, alert: Alert) {
    if !event.alerts.iter().any(|a| a.rule_id == alert.rule_id) {
        event.alerts.push(alert);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_event::{Enforced, EventKind, Process, Timestamp};

    fn policy() -> Arc<Policy> {
        Arc::new(
            Policy::compile([(
                "t.yaml",
                r#"
- rule: Marker exec
  id: T-1
  severity: high
  mitre: [T1059]
  condition: kind = process_exec and process.binary = /tmp/marker
  action: kill
- rule: Audit marker
  id: T-2
  severity: low
  mitre: [T1059]
  condition: kind = process_exec and process.binary = /tmp/marker
  action: deny
  mode: audit
"#,
            )])
            .unwrap(),
        )
    }

    fn exec(binary: &str) -> Event {
        let p = Arc::new(Process {
            binary: binary.into(),
            ..Process::default()
        });
        Event::new(Timestamp(0), EventKind::ProcessExec, "n".into(), p)
    }

    /// A `--net-config` rule has no user-space condition: its alert comes from the rule the
    /// kernel named, with what the kernel did; an index neither source knows gets none.
    #[test]
    fn config_network_rules_are_alerted_from_the_kernel_match() {
        let mut d = Detector::new(policy());
        d.set_config_rules([NetRuleInfo {
            index: 0xf007,
            rule_id: "NET-7".into(),
            name: "no metadata".into(),
            severity: "high".into(),
        }]);
        let p = Arc::new(Process::default());
        let connect = |action, rule_index| {
            let mut e = Event::new(Timestamp(0), EventKind::NetConnect, "n".into(), p.clone());
            e.enforced = Some(Enforced { rule_index, action });
            e
        };
        let mut e = connect(EnforcedAction::Denied, 0xf007);
        d.apply(&mut e);
        let alert = |e: &Event| {
            e.alerts
                .iter()
                .map(|a| (a.rule_id.clone(), a.severity.clone(), a.outcome.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            alert(&e),
            [(
                "NET-7".to_string(),
                "high".to_string(),
                "denied".to_string()
            )]
        );
        let mut e = connect(EnforcedAction::Audited, 0xf007);
        d.apply(&mut e);
        assert_eq!(alert(&e)[0].2, "would_deny");
        let mut e = connect(EnforcedAction::Denied, 0xf008);
        d.apply(&mut e);
        assert!(e.alerts.is_empty());
        assert_eq!(d.alerts_emitted(), 2);
    }

    #[test]
    fn outcomes_follow_what_the_kernel_did() {
        let mut d = Detector::new(policy());
        let mut e = exec("/tmp/marker");
        d.apply(&mut e);
        let outcomes: Vec<(&str, &str)> = e
            .alerts
            .iter()
            .map(|a| (a.rule_id.as_str(), a.outcome.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            [("T-1", "alerted"), ("T-2", "would_deny")],
            "not enforced: never 'killed'"
        );

        let mut e = exec("/tmp/marker");
        e.enforced = Some(Enforced {
            rule_index: 0,
            action: EnforcedAction::Killed,
        });
        d.apply(&mut e);
        assert_eq!(e.alerts[0].outcome, "killed");
        assert_eq!(d.alerts_emitted(), 4);
    }

    #[test]
    fn a_kernel_enforcement_is_reported_even_without_a_user_space_match() {
        let mut d = Detector::new(policy());
        let mut e = exec("/usr/bin/other");
        e.enforced = Some(Enforced {
            rule_index: 0,
            action: EnforcedAction::Killed,
        });
        d.apply(&mut e);
        assert_eq!(e.alerts.len(), 1);
        assert_eq!(
            (e.alerts[0].rule_id.as_str(), e.alerts[0].outcome.as_str()),
            ("T-1", "killed")
        );
    }
}
