//! Alert shaping: what turns a flood of rule matches into a story an analyst can read.
//!
//! It runs after the rule stage, on every event, and changes only what is *reported*: the
//! kernel has already decided enforcement for the event, and nothing here can undo or skip
//! that. Each alert joins an incident ([`incidents`]) and carries its `incident_id`; a repeat of
//! the same rule on the same image and target within the dedup window ([`dedup`]), an alert
//! over its rule's `throttle:` or over the global `--alert-limit` ([`limits`]) is taken off the
//! event and counted — in the incident's per-rule counts and in the next `alerts_suppressed`
//! event — never dropped silently. Time is the events' own wall-clock time; [`Shaper::tick`]
//! (called by the agent at least every 200 ms) writes incident updates, closes quiet incidents
//! and reports suppressed alerts.

mod config;
mod dedup;
mod incidents;
mod limits;

use std::sync::Arc;

use shrike_event::{Event, IncidentState, Process, Timestamp};
use shrike_rules::Policy;

pub use config::{ShapingArgs, ShapingConfig};
pub use dedup::MAX_KEYS as MAX_DEDUP_KEYS;
pub use incidents::{MAX_MEMBERS, MAX_OPEN, MAX_RULES};

use dedup::Dedup;
use incidents::Incidents;
use limits::{Limits, Reason, SuppressionLog};

/// Counts for the agent's log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShapingStats {
    pub incidents: u64,
    pub suppressed: u64,
}

pub struct Shaper {
    enabled: bool,
    incidents: Incidents,
    dedup: Dedup,
    limits: Limits,
    log: SuppressionLog,
    node: Arc<str>,
    /// The agent's own process, which `alerts_suppressed` events are attributed to.
    agent: Arc<Process>,
    report_ns: u64,
}

impl Shaper {
    pub fn new(
        config: &ShapingConfig,
        node: Arc<str>,
        agent: Arc<Process>,
        now: Timestamp,
    ) -> Self {
        let ns = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Shaper {
            enabled: config.enabled,
            incidents: Incidents::new(
                ns(config.incident_window),
                ns(config.update_interval),
                node.clone(),
            ),
            dedup: Dedup::new(ns(config.dedup_window)),
            limits: Limits::new(config.alert_limit),
            log: SuppressionLog::new(now),
            node,
            agent,
            report_ns: ns(config.update_interval),
        }
    }

    /// Takes the running policy's per-rule throttles (at start and after each reload).
    pub fn set_policy(&mut self, policy: &Policy) {
        self.limits.set_policy(policy);
    }

    /// Shapes one event that has been through the rule stage: its alerts get their
    /// `incident_id`, the suppressed ones are taken off it and counted. Events to write
    /// *before* it (an incident it opens, one closed to make room) are pushed to `before`.
    pub fn shape(&mut self, event: &mut Event, before: &mut Vec<Event>) {
        if !self.enabled {
            return;
        }
        if event.alerts.is_empty() {
            self.incidents.observe(event);
            return;
        }
        let (slot, opened) = self.incidents.assign(event, before);
        let id = self.incidents.id(slot);
        let now = event.time.0;
        for mut alert in std::mem::take(&mut event.alerts) {
            let key = dedup::key(&alert.rule_id, event, id.as_deref());
            let verdict = if self.dedup.is_repeat(key, now) {
                Err(Reason::Duplicate)
            } else {
                self.limits.admit(&alert.rule_id, now)
            };
            self.incidents.count(slot, event, &alert, verdict.is_err());
            match verdict {
                Ok(()) => {
                    self.dedup.remember(key, now);
                    alert.incident_id = id.clone();
                    event.alerts.push(alert);
                }
                Err(reason) => self.log.add(&alert.rule_id, &alert.rule, reason),
            }
        }
        if opened {
            before.extend(
                self.incidents
                    .snapshot(slot, IncidentState::Open, event.time),
            );
        }
    }

    /// Writes what is due at `now`: incident updates, closes of quiet incidents, and the
    /// suppressed-alert report once per update interval when something was suppressed.
    pub fn tick(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        if !self.enabled {
            return;
        }
        self.dedup.expire(now.0);
        self.incidents.tick(now, out);
        if now.0 >= self.log.since().0.saturating_add(self.report_ns) {
            out.extend(self.log.report(now, &self.node, &self.agent));
        }
    }

    /// The agent is stopping: closes every incident and reports what is still counted.
    pub fn finish(&mut self, now: Timestamp, out: &mut Vec<Event>) {
        if !self.enabled {
            return;
        }
        self.incidents.close_all(now, out);
        out.extend(self.log.report(now, &self.node, &self.agent));
    }

    pub fn stats(&self) -> ShapingStats {
        ShapingStats {
            incidents: self.incidents.opened,
            suppressed: self.log.all_time,
        }
    }
}

#[cfg(test)]
mod tests;
