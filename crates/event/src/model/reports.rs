//! What the agent itself reports on an event or as one: alerts, lost records, health and its
//! capabilities, rules not in force, policy changes and what the kernel enforced.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A rule match on an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub rule_id: String,
    pub rule: String,
    pub severity: String,
    /// What the rule asked for: `alert`, `deny` or `kill`.
    pub action: String,
    /// What really happened: `alerted`, `denied`, `killed` or `would_deny`.
    pub outcome: String,
    pub mitre: Vec<String>,
    /// The incident the alert belongs to (set by the agent's alert shaping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<Arc<str>>,
}

/// Records the kernel could not deliver, reported in the stream so loss is never silent.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Lost {
    /// Records dropped since the previous `events_lost` event, by reason.
    pub ringbuf_full: u64,
    pub pipeline_full: u64,
    pub other: u64,
    /// Events an output (file, syslog, webhook, …) dropped since the previous report, by the
    /// output's name: its queue was full or its destination refused them. Reported on the
    /// outputs that still work; absent when no output dropped anything.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub outputs: std::collections::BTreeMap<String, u64>,
}

/// The agent's capabilities on this kernel (an `agent_health` event).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Health {
    /// Every capability, in a fixed order.
    pub capabilities: Vec<CapabilityHealth>,
    /// Rules of the running policy that are not in force because a capability they need is
    /// missing (the agent runs with them only under `--allow-degraded`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules_not_in_force: Vec<RuleNotInForce>,
}

/// One capability: `state` is `ok`, `fallback`, `degraded`, `unavailable` or `off`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CapabilityHealth {
    pub name: String,
    pub state: String,
    /// The hooks it runs on (empty when unavailable or off).
    pub hook: String,
    /// Why it is not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A rule the agent cannot enforce or detect on this kernel.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RuleNotInForce {
    pub rule_id: String,
    /// The capability it needs that is missing (or that cannot produce its events here).
    pub capability: String,
    /// Why, when the capability is in force but the rule's events cannot happen on this
    /// kernel (its system calls are not built in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A policy reload, as the `policy_change` event reports it (see `policy_source` in the agent).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct PolicyChange {
    /// `applied`, `held` (it weakens enforcement: it waits until its files stop changing) or
    /// `refused` (it does not compile, or its kernel rules could not be loaded).
    pub status: String,
    /// What asked for the reload: `sighup` or `file_changed`.
    pub trigger: String,
    /// The policy files, as the agent describes them.
    pub source: String,
    /// Rules in the new policy (0 when it was refused before compiling).
    pub rules: usize,
    /// Every enforcing (deny/kill, mode enforce) rule of the running policy that the new one
    /// removes, weakens or changes.
    pub enforced: Vec<EnforcedRuleChange>,
    /// Why it was held or refused, in words.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// One enforcing rule a policy reload touches.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct EnforcedRuleChange {
    pub rule_id: String,
    pub rule: String,
    /// Its action in the running policy: `deny` or `kill`.
    pub was: String,
    /// What the new policy makes of it: `removed`, `alert`, `audit`, `disabled` or
    /// `condition_changed`.
    pub now: String,
}

/// What the kernel did to an action because of a rule (or would have done: an audit-mode rule).
/// Not written to JSON by itself: it becomes the `outcome` of that rule's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enforced {
    /// The rule's index in the running policy (the kernel's maps carry indexes, not ids).
    pub rule_index: u16,
    pub action: EnforcedAction,
}

/// How the kernel stopped an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnforcedAction {
    /// The action failed with EPERM (LSM hook or cgroup hook).
    Denied,
    /// The process was killed with SIGKILL (the fallback where no hook can refuse).
    Killed,
    /// The kernel matched the rule in audit mode and let the action go (`would_deny`).
    Audited,
}
