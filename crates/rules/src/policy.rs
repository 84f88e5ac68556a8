//! A compiled policy and its evaluator: which rules an event matches, and the alert each match
//! becomes once it is known what the kernel did.
//!
//! Rules are indexed by event kind, so an event is only tested against rules that can see its
//! kind; conditions are pre-compiled (hash sets, prefix lists, globs) and the non-matching path
//! allocates nothing (`evaluate` returns an empty `Vec`, which does not allocate).

use std::sync::Arc;

use serde::Serialize;
use shrike_event::{Alert, Event, EventKind};

use crate::cond::{Cond, Tri};
use crate::counting::{RateSpec, RateState};
use crate::kinds::KindSet;
use crate::meta::{Action, Mode, Outcome, Severity};
use crate::pushdown::{self, KernelPlan};
use crate::scope::WorkloadScope;
use crate::source::SourceFile;

/// What a rule says, as written (for listing, explaining and alerts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleInfo {
    /// Position in the policy; the number kernel records use to name the rule.
    pub index: u16,
    pub id: String,
    pub name: String,
    pub description: String,
    pub severity: Severity,
    pub mitre: Vec<String>,
    pub action: Action,
    pub mode: Mode,
    pub enabled: bool,
    pub tags: Vec<String>,
    /// At most this many of the rule's alerts are reported per window (`throttle:`); the
    /// rest are counted as suppressed. Reporting only: the kernel still enforces every event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle: Option<crate::rate::Rate>,
    /// The event kinds the rule can match.
    pub kinds: Vec<EventKind>,
    /// The condition as written (trimmed).
    pub condition: String,
    pub exceptions: Vec<String>,
    /// For a rate rule: `N within Ts by … [distinct …]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    /// Where the rule's id is written.
    pub file: String,
    pub line: u32,
    pub col: u32,
}

/// One rule that matched one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Match {
    /// The rule's index ([`RuleInfo::index`], [`crate::KernelPlan`] `rules[].index`).
    pub index: u16,
    pub rule_id: Arc<str>,
    pub rule: Arc<str>,
    pub severity: Severity,
    pub action: Action,
    pub mode: Mode,
    pub mitre: Arc<[String]>,
}

/// What the kernel did to the action an event describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KernelAction {
    /// Nothing: the action went ahead.
    Nothing,
    /// The action failed with EPERM.
    Denied,
    /// The process was killed with SIGKILL.
    Killed,
}

impl Match {
    /// What really happened, as the alert must say it:
    ///
    /// - an `alert` rule always reports `alerted`, whatever else happened;
    /// - an `audit`-mode `deny`/`kill` rule reports `would_deny`;
    /// - an enforcing `deny`/`kill` rule reports `denied` or `killed` only when the kernel did
    ///   that, and `alerted` when it did not (e.g. the rule needs user-space fields and could not
    ///   be decided in the kernel in time).
    pub fn outcome(&self, kernel: KernelAction) -> Outcome {
        match (self.action, self.mode, kernel) {
            (Action::Alert, _, _) => Outcome::Alerted,
            (_, Mode::Audit, _) => Outcome::WouldDeny,
            (_, Mode::Enforce, KernelAction::Nothing) => Outcome::Alerted,
            (_, Mode::Enforce, KernelAction::Denied) => Outcome::Denied,
            (_, Mode::Enforce, KernelAction::Killed) => Outcome::Killed,
        }
    }

    /// The alert for this match, for an event's `alerts[]`.
    pub fn to_alert(&self, kernel: KernelAction) -> Alert {
        Alert {
            rule_id: self.rule_id.to_string(),
            rule: self.rule.to_string(),
            severity: self.severity.as_str().to_string(),
            action: self.action.as_str().to_string(),
            outcome: self.outcome(kernel).as_str().to_string(),
            mitre: self.mitre.to_vec(),
            incident_id: None,
        }
    }
}

/// A rule ready to evaluate.
#[derive(Debug, Clone)]
pub(crate) struct CompiledRule {
    pub info: Arc<RuleInfo>,
    pub cond: Cond,
    pub exceptions: Vec<Cond>,
    pub kinds: KindSet,
    /// Alert on a rate of matches rather than on each one.
    pub rate: Option<RateSpec>,
    template: Match,
}

impl CompiledRule {
    pub fn new(
        info: Arc<RuleInfo>,
        cond: Cond,
        exceptions: Vec<Cond>,
        kinds: KindSet,
        rate: Option<RateSpec>,
    ) -> Self {
        let template = Match {
            index: info.index,
            rule_id: info.id.as_str().into(),
            rule: info.name.as_str().into(),
            severity: info.severity,
            action: info.action,
            mode: info.mode,
            mitre: info.mitre.clone().into(),
        };
        CompiledRule {
            info,
            cond,
            exceptions,
            kinds,
            rate,
            template,
        }
    }

    fn matches(&self, event: &Event) -> bool {
        self.cond.eval(event) && !self.exceptions.iter().any(|x| x.eval(event))
    }

    /// For an event with a cut path: whether the rule could match — its condition is not
    /// false and no exception is surely true. A rule that cannot be decided is reported.
    fn could_match(&self, event: &Event) -> bool {
        self.cond.eval_cut(event) != Tri::No
            && !self
                .exceptions
                .iter()
                .any(|x| x.eval_cut(event) == Tri::Yes)
    }

    /// The condition with its exceptions folded in: `cond and not exc1 and not exc2 …`.
    pub fn effective(&self) -> Cond {
        let mut parts = vec![self.cond.clone()];
        parts.extend(
            self.exceptions
                .iter()
                .map(|x| Cond::Not(Box::new(x.clone()))),
        );
        if parts.len() == 1 {
            self.cond.clone()
        } else {
            Cond::And(parts)
        }
    }
}

/// Counts for `validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub files: Vec<String>,
    pub rules: usize,
    pub enabled: usize,
    pub lists: usize,
    pub macros: usize,
    /// Event kinds at least one enabled rule needs (the sensors to arm).
    pub kinds: Vec<EventKind>,
    /// (rule, kind) pairs the kernel decides completely.
    pub kernel_exact: usize,
    /// (rule, kind) pairs that need a user-space check.
    pub with_residual: usize,
}

/// A compiled, immutable policy. Cheap to share behind an `Arc`; a reload compiles a new one
/// and swaps it in whole.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Vec<CompiledRule>,
    by_kind: Vec<Vec<u16>>,
    plan: KernelPlan,
    scopes: Vec<WorkloadScope>,
    sources: Vec<SourceFile>,
    lists: usize,
    macros: usize,
}

impl Policy {
    pub(crate) fn new(
        rules: Vec<CompiledRule>,
        sources: Vec<SourceFile>,
        lists: usize,
        macros: usize,
    ) -> Policy {
        let mut by_kind = vec![Vec::new(); EventKind::ALL.len()];
        for rule in rules.iter().filter(|r| r.info.enabled) {
            for kind in rule.kinds.iter() {
                by_kind[kind.index()].push(rule.info.index);
            }
        }
        let (plan, scopes) = pushdown::plan(&rules);
        Policy {
            rules,
            by_kind,
            plan,
            scopes,
            sources,
            lists,
            macros,
        }
    }

    /// The rules `event` matches (enabled rules only; exceptions applied), in policy order.
    /// Rate rules need counting state and are left out: see [`Policy::evaluate_with`].
    pub fn evaluate(&self, event: &Event) -> Vec<Match> {
        let mut out = Vec::new();
        self.evaluate_into(event, &mut out);
        out
    }

    /// Like [`Policy::evaluate`], appending to a caller-owned buffer.
    pub fn evaluate_into(&self, event: &Event, out: &mut Vec<Match>) {
        self.evaluate_inner(event, None, out);
    }

    /// Like [`Policy::evaluate_into`], with rate rules too: each match of a rate rule is counted
    /// in `rates`, and the rule matches the event that brings its group to the threshold.
    /// Use one [`RateState`] per policy (a new one after a reload).
    pub fn evaluate_with(&self, event: &Event, rates: &mut RateState, out: &mut Vec<Match>) {
        self.evaluate_inner(event, Some(rates), out);
    }

    fn evaluate_inner(
        &self,
        event: &Event,
        mut rates: Option<&mut RateState>,
        out: &mut Vec<Match>,
    ) {
        let Some(candidates) = self.by_kind.get(event.kind.index()) else {
            return;
        };
        // A path cut at the root end (too deep for a record) decides nothing about its start:
        // a rule that needs it is reported as a match, never silently missed or matched.
        let cut = crate::kinds::PROCESS.contains(event.kind)
            && (event.process.binary_truncated || event.process.cwd_truncated);
        for &i in candidates {
            let Some(rule) = self.rules.get(usize::from(i)) else {
                continue;
            };
            let hit = if cut {
                rule.could_match(event)
            } else {
                rule.matches(event)
            };
            if !hit {
                continue;
            }
            match (&rule.rate, rates.as_deref_mut()) {
                (None, _) => out.push(rule.template.clone()),
                (Some(spec), Some(state)) => {
                    if state.hit(i, spec, event) {
                        out.push(rule.template.clone());
                    }
                }
                (Some(_), None) => {}
            }
        }
    }

    /// Whether some enabled rule counts a rate (and so needs [`Policy::evaluate_with`]).
    pub fn has_rates(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.info.enabled && r.rate.is_some())
    }

    /// The compiled rules, for checks over the conditions themselves.
    #[cfg(test)]
    pub(crate) fn compiled(&self) -> &[CompiledRule] {
        &self.rules
    }

    /// Every rule, enabled or not, in policy order (index order).
    pub fn rules(&self) -> impl Iterator<Item = &RuleInfo> {
        self.rules.iter().map(|r| &*r.info)
    }

    /// The rule with `index`, e.g. from a kernel record.
    pub fn rule(&self, index: u16) -> Option<&RuleInfo> {
        self.rules.get(usize::from(index)).map(|r| &*r.info)
    }

    /// The rule with id `id`.
    pub fn rule_by_id(&self, id: &str) -> Option<&RuleInfo> {
        self.rules().find(|r| r.id == id)
    }

    /// Whether rule `index` here and rule `other_index` of `other` match exactly the same events:
    /// the same kinds and the same condition and exceptions once lists and macros are expanded
    /// (where they were written does not matter). A reload uses it to notice that an enforcing
    /// rule changed, including through a list it uses.
    pub fn same_condition(&self, index: u16, other: &Policy, other_index: u16) -> bool {
        match (
            self.rules.get(usize::from(index)),
            other.rules.get(usize::from(other_index)),
        ) {
            (Some(a), Some(b)) => {
                a.kinds == b.kinds && a.cond == b.cond && a.exceptions == b.exceptions
            }
            _ => false,
        }
    }

    /// What the sensors load into BPF maps.
    pub fn kernel_plan(&self) -> &KernelPlan {
        &self.plan
    }

    /// The workload scopes of the plan's entries (those with [`crate::KindRule::workload`]).
    pub fn workload_scopes(&self) -> &[WorkloadScope] {
        &self.scopes
    }

    /// The names of the sources this policy was compiled from.
    pub fn source_names(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.name.clone()).collect()
    }

    /// Counts for `validate`.
    pub fn summary(&self) -> Summary {
        let mut kinds = KindSet::EMPTY;
        for r in self.rules.iter().filter(|r| r.info.enabled) {
            kinds = kinds.union(r.kinds);
        }
        let entries = self.plan.rules.iter().flat_map(|r| r.entries.iter());
        let (exact, residual) = entries.fold(
            (0, 0),
            |(e, r), x| if x.exact { (e + 1, r) } else { (e, r + 1) },
        );
        Summary {
            files: self.source_names(),
            rules: self.rules.len(),
            enabled: self.rules.iter().filter(|r| r.info.enabled).count(),
            lists: self.lists,
            macros: self.macros,
            kinds: kinds.iter().collect(),
            kernel_exact: exact,
            with_residual: residual,
        }
    }
}
