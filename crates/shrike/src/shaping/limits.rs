//! Rate limits on written alerts — each rule's `throttle:` and the agent's `--alert-limit` —
//! and the per-rule count of everything held back, written as `alerts_suppressed` events.
//!
//! Both limits are fixed windows: `10/min` lets 10 alerts through in the minute that starts
//! with the first of them. Memory: one window per throttled rule of the running policy, one
//! global window, and per report period one row per rule that had something suppressed (so
//! at most the number of rules, plus the few alert sources outside the policy).

use std::collections::HashMap;
use std::sync::Arc;

use shrike_event::{Event, EventKind, Process, Suppressed, SuppressedRule, Timestamp};
use shrike_rules::{Policy, Rate};

/// Why an alert was not written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    Duplicate,
    Throttle,
    GlobalLimit,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    rate: Rate,
    start: u64,
    used: u32,
}

impl Window {
    fn new(rate: Rate) -> Self {
        Window {
            rate,
            start: 0,
            used: 0,
        }
    }

    /// Takes one slot at `now` if the window has one.
    fn take(&mut self, now: u64) -> bool {
        if self.used == 0 || now >= self.start.saturating_add(self.rate.window_ns()) {
            self.start = now;
            self.used = 0;
        }
        if self.used < self.rate.count {
            self.used += 1;
            true
        } else {
            false
        }
    }
}

pub(super) struct Limits {
    throttles: HashMap<Arc<str>, Window>,
    global: Option<Window>,
}

impl Limits {
    pub fn new(global: Option<Rate>) -> Self {
        Limits {
            throttles: HashMap::new(),
            global: global.map(Window::new),
        }
    }

    /// Takes the throttles of `policy`'s rules; a rule whose rate did not change keeps its
    /// window across a reload.
    pub fn set_policy(&mut self, policy: &Policy) {
        let mut next = HashMap::new();
        for rule in policy.rules().filter(|r| r.enabled) {
            if let Some(rate) = rule.throttle {
                let id: Arc<str> = rule.id.as_str().into();
                let window = match self.throttles.get(&id) {
                    Some(w) if w.rate == rate => *w,
                    _ => Window::new(rate),
                };
                next.insert(id, window);
            }
        }
        self.throttles = next;
    }

    /// Whether an alert of `rule_id` may be written at `now`; the reason when not. The rule's
    /// throttle is asked first, so an alert it holds back does not use the global budget.
    pub fn admit(&mut self, rule_id: &str, now: u64) -> Result<(), Reason> {
        if let Some(w) = self.throttles.get_mut(rule_id) {
            if !w.take(now) {
                return Err(Reason::Throttle);
            }
        }
        if let Some(w) = self.global.as_mut() {
            if !w.take(now) {
                return Err(Reason::GlobalLimit);
            }
        }
        Ok(())
    }
}

/// Suppressed alerts per rule since the last report.
pub(super) struct SuppressionLog {
    since: Timestamp,
    rows: Vec<SuppressedRule>,
    index: HashMap<String, usize>,
    total: u64,
    /// Everything suppressed since start, for the agent's final log line.
    pub all_time: u64,
}

impl SuppressionLog {
    pub fn new(since: Timestamp) -> Self {
        SuppressionLog {
            since,
            rows: Vec::new(),
            index: HashMap::new(),
            total: 0,
            all_time: 0,
        }
    }

    pub fn add(&mut self, rule_id: &str, rule: &str, reason: Reason) {
        let i = match self.index.get(rule_id) {
            Some(&i) => i,
            None => {
                self.rows.push(SuppressedRule {
                    rule_id: rule_id.to_string(),
                    rule: rule.to_string(),
                    ..SuppressedRule::default()
                });
                self.index.insert(rule_id.to_string(), self.rows.len() - 1);
                self.rows.len() - 1
            }
        };
        let row = &mut self.rows[i];
        match reason {
            Reason::Duplicate => row.duplicate += 1,
            Reason::Throttle => row.throttle += 1,
            Reason::GlobalLimit => row.global_limit += 1,
        }
        self.total += 1;
        self.all_time += 1;
    }

    /// The `alerts_suppressed` event for what was counted since the last one (none when
    /// nothing was), attributed to `agent`.
    pub fn report(
        &mut self,
        now: Timestamp,
        node: &Arc<str>,
        agent: &Arc<Process>,
    ) -> Option<Event> {
        if self.total == 0 {
            self.since = now;
            return None;
        }
        let mut event = Event::new(
            now,
            EventKind::AlertsSuppressed,
            node.clone(),
            agent.clone(),
        );
        event.set_suppressed(Suppressed {
            since: self.since,
            until: now,
            total: self.total,
            rules: std::mem::take(&mut self.rows),
        });
        self.index.clear();
        self.total = 0;
        self.since = now;
        Some(event)
    }

    pub fn since(&self) -> Timestamp {
        self.since
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn policy(yaml: &str) -> Policy {
        Policy::compile([("p.yaml", yaml)]).unwrap()
    }

    const THROTTLED: &str = "- rule: r\n  id: R\n  severity: low\n  condition: kind = process_exec\n  throttle: 2/min\n- rule: q\n  id: Q\n  severity: low\n  condition: kind = process_exec\n";

    /// `throttle: 2/min` lets two through per minute and holds back the rest; an unthrottled
    /// rule is not limited by it.
    #[test]
    fn a_rule_throttle_admits_n_per_window() {
        let mut l = Limits::new(None);
        l.set_policy(&policy(THROTTLED));
        assert_eq!(l.admit("R", 0), Ok(()));
        assert_eq!(l.admit("R", S), Ok(()));
        assert_eq!(l.admit("R", 2 * S), Err(Reason::Throttle));
        assert_eq!(l.admit("R", 59 * S), Err(Reason::Throttle));
        assert_eq!(l.admit("R", 60 * S), Ok(()), "a new minute");
        for t in 0..100 {
            assert_eq!(l.admit("Q", t), Ok(()));
        }
    }

    /// The global limit holds back whatever the rules let through beyond it.
    #[test]
    fn the_global_limit_applies_after_throttles() {
        let mut l = Limits::new(Some(Rate {
            count: 3,
            per_secs: 1,
        }));
        l.set_policy(&policy(THROTTLED));
        assert_eq!(l.admit("Q", 0), Ok(()));
        assert_eq!(l.admit("R", 0), Ok(()));
        assert_eq!(l.admit("R", 0), Ok(()));
        assert_eq!(l.admit("R", 0), Err(Reason::Throttle));
        assert_eq!(l.admit("Q", 0), Err(Reason::GlobalLimit));
        assert_eq!(l.admit("Q", S), Ok(()));
    }

    /// Counts are per rule and reason, reported once and then start again; nothing to report
    /// makes no event.
    #[test]
    fn suppressed_counts_are_reported_per_rule_and_reset() {
        let node: Arc<str> = "n".into();
        let agent = Arc::new(Process::default());
        let mut log = SuppressionLog::new(Timestamp(0));
        assert!(log.report(Timestamp(1), &node, &agent).is_none());
        log.add("R", "r", Reason::Duplicate);
        log.add("R", "r", Reason::Duplicate);
        log.add("R", "r", Reason::Throttle);
        log.add("Q", "q", Reason::GlobalLimit);
        let e = log.report(Timestamp(5), &node, &agent).unwrap();
        assert_eq!(e.kind, EventKind::AlertsSuppressed);
        let s = e.suppressed().unwrap();
        assert_eq!((s.since, s.until, s.total), (Timestamp(1), Timestamp(5), 4));
        assert_eq!(
            (
                s.rules[0].rule_id.as_str(),
                s.rules[0].duplicate,
                s.rules[0].throttle
            ),
            ("R", 2, 1)
        );
        assert_eq!(
            (s.rules[1].rule_id.as_str(), s.rules[1].global_limit),
            ("Q", 1)
        );
        assert!(log.report(Timestamp(9), &node, &agent).is_none());
        assert_eq!(log.all_time, 4);
    }
}
