//! The event contract: one [`Event`] per line of JSON, with the field names users rely on.
//!
//! Field names here are part of the product (scripts, rules and dashboards use them); they follow
//! `docs/ARCHITECTURE.md` § "Event contract (JSON)". A [`Process`] is immutable once built and
//! shared by `Arc` between the process tree and every event that mentions it, so carrying full
//! context on every event costs a pointer, not a copy. `parent` and `ancestors` are serialized as
//! the slim views the contract specifies; the per-event thread id is kept on the event and
//! written into `process.tid`.
//!
//! This file holds the envelope: [`Event`] and the id that links events of one process image
//! ([`ExecId`]). What happened is `kinds` (the table of [`EventKind`]s and their facts); the
//! object an event carries is `payload` (one [`Payload`] per event, the variant its kind
//! names), built from `process` (the acting process), `payloads` (one type per event family)
//! and `reports` (what the agent itself says: alerts, loss, health, policy and enforcement);
//! `wire` is the JSON form.

mod kinds;
mod payload;
mod payloads;
mod process;
mod reports;
mod wire;

pub use kinds::{EventKind, KindFacts, Origin, PayloadKind, KINDS};
pub use payload::Payload;
pub use payloads::{
    BpfLoad, CredChange, Creds, Dns, FileInfo, FileTimes, Memfd, Module, Mount, NamespaceChange,
    Network, Ptrace, Signal, Socket,
};
pub use process::{Container, Exit, ImageLinks, LoginUid, Process, StdioPipe, StdioSocket};
pub use reports::{
    Alert, CapabilityHealth, Enforced, EnforcedAction, EnforcedRuleChange, Health, Lost,
    PolicyChange, RuleNotInForce,
};
pub(crate) use wire::RawContext;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use crate::time::Timestamp;
use crate::workload::{ContainerIdentity, PodIdentity};

/// Identifies one process image over the node's uptime; the key that links events.
///
/// Written as 16 lower-case hex digits so that JSON consumers that read numbers as doubles
/// (jq 1.6, JavaScript) cannot corrupt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ExecId(pub u64);

impl ExecId {
    /// The 16 lower-case hex digits, written without `core::fmt` (several exec ids go into
    /// every event).
    pub fn hex(self) -> [u8; 16] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'0'; 16];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = HEX[((self.0 >> (60 - 4 * i)) & 0xf) as usize];
        }
        out
    }
}

impl fmt::Display for ExecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl Serialize for ExecId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let hex = self.hex();
        match std::str::from_utf8(&hex) {
            Ok(text) => serializer.serialize_str(text),
            Err(_) => Err(serde::ser::Error::custom("exec_id is not ASCII")),
        }
    }
}

impl<'de> Deserialize<'de> for ExecId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        u64::from_str_radix(&text, 16).map(ExecId).map_err(|_| {
            serde::de::Error::custom(format!("invalid exec_id {text:?}: expected hex"))
        })
    }
}

/// One event: what happened, to what, and the full context of the process that did it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub time: Timestamp,
    pub kind: EventKind,
    pub node: Arc<str>,
    pub process: Arc<Process>,
    /// The thread that did the action (written as `process.tid`).
    pub tid: u32,
    pub parent: Option<Arc<Process>>,
    /// Nearest first, starting with the parent; bounded by the configured depth.
    pub ancestors: Vec<Arc<Process>>,
    /// The object its kind carries (`file`, `network`, …): read with the accessors
    /// (`event.file()`), given with the typed setters (`event.set_file(…)`).
    payload: Payload,
    /// The system call's return value, where there is one.
    pub result: Option<i64>,
    pub alerts: Vec<Alert>,
    /// Set when the kernel refused or killed the action because of a rule.
    pub enforced: Option<Enforced>,
    /// The container the process runs in (none for host processes), shared by its events.
    pub container: Option<Arc<ContainerIdentity>>,
    /// The Kubernetes pod of that container, when it is in one.
    pub k8s: Option<Arc<PodIdentity>>,
}

impl Event {
    /// An event of `kind` by `process`, with no kind-specific object yet.
    pub fn new(time: Timestamp, kind: EventKind, node: Arc<str>, process: Arc<Process>) -> Self {
        let tid = process.tid;
        Event {
            time,
            kind,
            node,
            process,
            tid,
            parent: None,
            ancestors: Vec::new(),
            payload: Payload::Nothing,
            result: None,
            alerts: Vec::new(),
            enforced: None,
            container: None,
            k8s: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written hex agrees with `{:016x}` and is what JSON carries.
    #[test]
    fn exec_ids_are_sixteen_lower_case_hex_digits() {
        for id in [
            0,
            1,
            0xa,
            0x0123_4567_89ab_cdef,
            u64::MAX,
            0x8000_0000_0000_0000,
        ] {
            let want = format!("{id:016x}");
            assert_eq!(ExecId(id).to_string(), want);
            assert_eq!(
                serde_json::to_string(&ExecId(id)).unwrap(),
                format!("\"{want}\"")
            );
        }
    }
}
