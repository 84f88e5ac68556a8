//! The event contract: one [`Event`] per line of JSON, with the field names users rely on.
//!
//! Field names here are part of the product (scripts, rules and dashboards use them); they follow
//! `docs/ARCHITECTURE.md` § "Event contract (JSON)". A [`Process`] is immutable once built and
//! shared by `Arc` between the process tree and every event that mentions it, so carrying full
//! context on every event costs a pointer, not a copy. `parent` and `ancestors` are serialized as
//! the slim views the contract specifies; the per-event thread id is kept on the event and
//! written into `process.tid`.
//!
//! This file holds the envelope: [`Event`], what happened ([`EventKind`]) and the id that links
//! events of one process image ([`ExecId`]). The payloads live in `process` (the acting
//! process), `payloads` (one type per event family) and `reports` (what the agent itself says:
//! alerts, loss, health, policy and enforcement); `wire` is the JSON form.

mod payloads;
mod process;
mod reports;
mod wire;

pub use payloads::{
    BpfLoad, CredChange, Creds, Dns, FileInfo, Memfd, Module, Mount, NamespaceChange, Network,
    Ptrace, Signal,
};
pub use process::{Container, Exit, LoginUid, Process, StdioSocket};
pub use reports::{
    Alert, CapabilityHealth, Enforced, EnforcedAction, EnforcedRuleChange, Health, Lost,
    PolicyChange, RuleNotInForce,
};
pub(crate) use wire::RawContext;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use crate::incident::{Incident, Suppressed};
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

/// What happened. Serialized in snake_case; the numeric record kinds the kernel uses live in
/// `bpf/abi` and are mapped to these in the decoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    ProcessExec,
    ProcessExit,
    ProcessFork,
    FileOpen,
    FileUnlink,
    FileRename,
    FileChmod,
    FileChown,
    FileLink,
    ModuleLoad,
    BpfLoad,
    Ptrace,
    CredChange,
    Mount,
    Umount,
    NamespaceChange,
    MemfdCreate,
    Signal,
    NetConnect,
    NetAccept,
    NetBind,
    NetListen,
    NetClose,
    Dns,
    /// Synthesized by the agent when the kernel reports records it had to drop.
    EventsLost,
    /// Synthesized by the agent: what it can see and enforce on this kernel, at start and
    /// whenever a capability changes state.
    AgentHealth,
    /// Synthesized by alert shaping: alerts that belong together (`crate::incident`).
    Incident,
    /// Synthesized by alert shaping: alerts held back by dedup and rate limits, per rule.
    AlertsSuppressed,
    /// Synthesized by the agent when a policy reload is applied, held back or refused.
    PolicyChange,
}

impl EventKind {
    /// The contract name, e.g. `process_exec`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ProcessExec => "process_exec",
            EventKind::ProcessExit => "process_exit",
            EventKind::ProcessFork => "process_fork",
            EventKind::FileOpen => "file_open",
            EventKind::FileUnlink => "file_unlink",
            EventKind::FileRename => "file_rename",
            EventKind::FileChmod => "file_chmod",
            EventKind::FileChown => "file_chown",
            EventKind::FileLink => "file_link",
            EventKind::ModuleLoad => "module_load",
            EventKind::BpfLoad => "bpf_load",
            EventKind::Ptrace => "ptrace",
            EventKind::CredChange => "cred_change",
            EventKind::Mount => "mount",
            EventKind::Umount => "umount",
            EventKind::NamespaceChange => "namespace_change",
            EventKind::MemfdCreate => "memfd_create",
            EventKind::Signal => "signal",
            EventKind::NetConnect => "net_connect",
            EventKind::NetAccept => "net_accept",
            EventKind::NetBind => "net_bind",
            EventKind::NetListen => "net_listen",
            EventKind::NetClose => "net_close",
            EventKind::Dns => "dns",
            EventKind::EventsLost => "events_lost",
            EventKind::AgentHealth => "agent_health",
            EventKind::Incident => "incident",
            EventKind::AlertsSuppressed => "alerts_suppressed",
            EventKind::PolicyChange => "policy_change",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    pub exit: Option<Exit>,
    pub file: Option<FileInfo>,
    pub network: Option<Network>,
    pub dns: Option<Dns>,
    pub module: Option<Module>,
    pub bpf: Option<BpfLoad>,
    pub ptrace: Option<Ptrace>,
    pub cred: Option<CredChange>,
    pub mount: Option<Mount>,
    pub namespace: Option<NamespaceChange>,
    pub memfd: Option<Memfd>,
    pub signal: Option<Signal>,
    pub lost: Option<Lost>,
    pub health: Option<Health>,
    /// `incident` events only (boxed: most events are not incidents).
    pub incident: Option<Box<Incident>>,
    /// `alerts_suppressed` events only.
    pub suppressed: Option<Box<Suppressed>>,
    pub policy: Option<PolicyChange>,
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
            exit: None,
            file: None,
            network: None,
            dns: None,
            module: None,
            bpf: None,
            ptrace: None,
            cred: None,
            mount: None,
            namespace: None,
            memfd: None,
            signal: None,
            lost: None,
            health: None,
            incident: None,
            suppressed: None,
            policy: None,
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
