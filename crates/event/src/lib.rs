//! shrike's event model: the types every sensor produces, every rule reads and every sink writes.
//!
//! This crate has no BPF or OS dependencies on purpose: the rule engine, the outputs and offline
//! tools (`shrike policy test --events`) depend on it alone. The JSON it writes is the contract
//! documented in `docs/ARCHITECTURE.md`; changing a field name here is a change for every user.

pub mod compact;
pub mod incident;
pub mod json;
pub mod model;
pub mod text;
pub mod time;
pub mod workload;

pub use incident::{
    CloseReason, ImageRef, Incident, IncidentRule, IncidentState, Outcomes, Suppressed,
    SuppressedRule,
};
pub use model::{
    Alert, BpfLoad, CapabilityHealth, Container, CredChange, Creds, Dns, Enforced, EnforcedAction,
    EnforcedRuleChange, Event, EventKind, ExecId, Exit, FileInfo, FileTimes, Health, ImageLinks,
    KindFacts, LoginUid, Lost, Memfd, Module, Mount, NamespaceChange, Network, Origin, Payload,
    PayloadKind, PolicyChange, Process, Ptrace, RuleNotInForce, Signal, Socket, StdioPipe,
    StdioSocket, KINDS,
};
pub use time::Timestamp;
pub use workload::{ContainerIdentity, PodIdentity};
