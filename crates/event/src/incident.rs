//! What the agent's alert shaping writes besides alerts: `incident` events, which tell the story
//! of alerts that belong together, and `alerts_suppressed` events, which count (per rule) the
//! alerts deduplication and rate limits held back, so nothing is dropped silently.
//!
//! Both ride on an ordinary [`crate::Event`]: an incident's `process`, `parent` and `ancestors`
//! are its root process and the root's ancestry; an `alerts_suppressed` event is attributed to
//! the agent itself, like `events_lost`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::model::{Container, ExecId};
use crate::time::Timestamp;

/// Where an incident is in its life. Each state is written as its own `incident` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentState {
    /// The first alert: written at once.
    #[default]
    Open,
    /// New alerts since the last write; at most one update per update interval.
    Update,
    /// No alert for the quiet period (or the agent stopped, or room was needed): final counts.
    Closed,
}

/// Why an incident was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// No new alert for the quiet period.
    Quiet,
    /// The table of open incidents was full and this was the one quiet the longest.
    Evicted,
    /// The agent stopped.
    Shutdown,
}

/// The image that raised an incident's first alert (the root may be the shell that started it).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageRef {
    pub pid: u32,
    pub exec_id: ExecId,
    pub binary: Arc<str>,
}

/// One rule's share of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IncidentRule {
    pub rule_id: String,
    pub rule: String,
    pub severity: String,
    pub mitre: Vec<String>,
    /// Every match of the rule in the incident, reported or not.
    pub count: u64,
    /// How many of those were held back (duplicates, throttle, global limit).
    pub suppressed: u64,
}

/// Matches by what really happened to the action (the alerts' `outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Outcomes {
    pub alerted: u64,
    pub denied: u64,
    pub killed: u64,
    pub would_deny: u64,
}

/// An `incident` event's object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Incident {
    /// Stable for the incident's life; every alert in it carries it as `incident_id`.
    pub id: Arc<str>,
    pub state: IncidentState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub close_reason: Option<CloseReason>,
    /// What holds the incident together: `process_tree` or `container`.
    pub grouped_by: String,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// The highest severity of its alerts.
    pub severity: String,
    /// Every rule match in the incident, reported or suppressed.
    pub alerts: u64,
    /// Matches written as alerts.
    pub reported: u64,
    /// Matches held back (the per-rule counts are in `rules` and `alerts_suppressed` events).
    pub suppressed: u64,
    /// Distinct process images that raised its alerts (counted up to a bound, see README).
    pub processes: u64,
    pub first_alert: ImageRef,
    pub rules: Vec<IncidentRule>,
    /// ATT&CK techniques of its rules, sorted.
    pub techniques: Vec<String>,
    pub outcomes: Outcomes,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
}

/// One rule's suppressed alerts since the previous `alerts_suppressed` event, by reason.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SuppressedRule {
    pub rule_id: String,
    pub rule: String,
    /// Repeats of the same rule on the same image and target within the dedup window.
    pub duplicate: u64,
    /// Over the rule's `throttle:`.
    pub throttle: u64,
    /// Over the agent's `--alert-limit`.
    pub global_limit: u64,
}

/// An `alerts_suppressed` event's object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Suppressed {
    /// The period the counts cover: since the previous report (or the agent's start).
    pub since: Timestamp,
    pub until: Timestamp,
    pub total: u64,
    pub rules: Vec<SuppressedRule>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Alert, Event, EventKind, Process};

    /// An incident event and an alert's `incident_id` are written with the contract's names and
    /// read back (so `shrike policy test --events` replays a stream that has them).
    #[test]
    fn incident_events_and_alert_ids_round_trip_through_json() {
        let mut e = Event::new(
            Timestamp(7),
            EventKind::Incident,
            "n".into(),
            std::sync::Arc::new(Process::default()),
        );
        e.set_incident(Incident {
            id: "00000000000000aa".into(),
            state: IncidentState::Closed,
            close_reason: Some(CloseReason::Shutdown),
            grouped_by: "process_tree".into(),
            ..Incident::default()
        });
        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["kind"], "incident");
        assert_eq!(json["incident"]["state"], "closed");
        assert_eq!(json["incident"]["close_reason"], "shutdown");
        assert_eq!(json["incident"]["outcomes"]["killed"], 0);
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back.incident(), e.incident());

        let mut s = Event::new(
            Timestamp(8),
            EventKind::AlertsSuppressed,
            "n".into(),
            std::sync::Arc::new(Process::default()),
        );
        s.alerts.push(Alert {
            rule_id: "R".into(),
            rule: "r".into(),
            severity: "low".into(),
            action: "alert".into(),
            outcome: "alerted".into(),
            mitre: vec![],
            incident_id: Some("00000000000000aa".into()),
        });
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["kind"], "alerts_suppressed");
        assert_eq!(json["alerts"][0]["incident_id"], "00000000000000aa");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back.alerts, s.alerts);
    }
}
