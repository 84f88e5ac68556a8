//! The table of event kinds: every fact about a kind — its contract name, the object its event
//! carries, whether a process did it and whether it is a system call with a result — is one row
//! of [`KINDS`], and everything else (`as_str`, the rule engine's kind sets and slots, the
//! payload check) is read from that row. Adding a kind is adding a variant and its row; the
//! `kinds_are_in_slot_order` test fails until the two agree.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What happened. Serialized in snake_case; the numeric record kinds the kernel uses live in
/// `bpf/abi` and are mapped to these in the decoder. The discriminant is the kind's row in
/// [`KINDS`] (and its slot in the rule engine's kind sets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
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
    /// A set-times call (utimensat, futimens, utimes, futimesat, utime) on a watched path.
    FileUtimes,
    ModuleLoad,
    BpfLoad,
    Ptrace,
    CredChange,
    Mount,
    Umount,
    NamespaceChange,
    MemfdCreate,
    SocketCreate,
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

/// The object an event of a kind carries besides its process context (the JSON key it is
/// written under is the payload's name: `file`, `network`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKind {
    Exit,
    File,
    Network,
    /// `network` and `dns` both: the packet's endpoints and the parsed message.
    Dns,
    Module,
    Bpf,
    Ptrace,
    Cred,
    Mount,
    Namespace,
    Memfd,
    Socket,
    Signal,
    Lost,
    Health,
    Incident,
    Suppressed,
    Policy,
    /// Nothing beyond the process (`process_exec`, `process_fork`).
    Nothing,
}

/// Where events of a kind come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A process's life: exec, exit, fork.
    Lifecycle,
    /// A system call, which may carry its `result`.
    Syscall,
    /// A packet the process sent or received (DNS).
    Packet,
    /// Alert shaping, about a process's alerts (incidents).
    Shaping,
    /// The agent about itself: no process acted (`process` is the agent's placeholder).
    Agent,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct KindFacts {
    pub kind: EventKind,
    /// The contract name, e.g. `process_exec`.
    pub name: &'static str,
    pub payload: PayloadKind,
    pub origin: Origin,
}

const fn row(
    kind: EventKind,
    name: &'static str,
    payload: PayloadKind,
    origin: Origin,
) -> KindFacts {
    KindFacts {
        kind,
        name,
        payload,
        origin,
    }
}

/// Every kind, in discriminant order.
pub const KINDS: [KindFacts; 31] = {
    use EventKind as K;
    use Origin::*;
    use PayloadKind as P;
    [
        row(K::ProcessExec, "process_exec", P::Nothing, Lifecycle),
        row(K::ProcessExit, "process_exit", P::Exit, Lifecycle),
        row(K::ProcessFork, "process_fork", P::Nothing, Lifecycle),
        row(K::FileOpen, "file_open", P::File, Syscall),
        row(K::FileUnlink, "file_unlink", P::File, Syscall),
        row(K::FileRename, "file_rename", P::File, Syscall),
        row(K::FileChmod, "file_chmod", P::File, Syscall),
        row(K::FileChown, "file_chown", P::File, Syscall),
        row(K::FileLink, "file_link", P::File, Syscall),
        row(K::FileUtimes, "file_utimes", P::File, Syscall),
        row(K::ModuleLoad, "module_load", P::Module, Syscall),
        row(K::BpfLoad, "bpf_load", P::Bpf, Syscall),
        row(K::Ptrace, "ptrace", P::Ptrace, Syscall),
        row(K::CredChange, "cred_change", P::Cred, Syscall),
        row(K::Mount, "mount", P::Mount, Syscall),
        row(K::Umount, "umount", P::Mount, Syscall),
        row(
            K::NamespaceChange,
            "namespace_change",
            P::Namespace,
            Syscall,
        ),
        row(K::MemfdCreate, "memfd_create", P::Memfd, Syscall),
        row(K::SocketCreate, "socket_create", P::Socket, Syscall),
        row(K::Signal, "signal", P::Signal, Syscall),
        row(K::NetConnect, "net_connect", P::Network, Syscall),
        row(K::NetAccept, "net_accept", P::Network, Syscall),
        row(K::NetBind, "net_bind", P::Network, Syscall),
        row(K::NetListen, "net_listen", P::Network, Syscall),
        row(K::NetClose, "net_close", P::Network, Syscall),
        row(K::Dns, "dns", P::Dns, Packet),
        row(K::EventsLost, "events_lost", P::Lost, Agent),
        row(K::AgentHealth, "agent_health", P::Health, Agent),
        row(K::Incident, "incident", P::Incident, Shaping),
        row(
            K::AlertsSuppressed,
            "alerts_suppressed",
            P::Suppressed,
            Agent,
        ),
        row(K::PolicyChange, "policy_change", P::Policy, Agent),
    ]
};

impl EventKind {
    /// Every kind, in discriminant order.
    pub const ALL: [EventKind; KINDS.len()] = {
        let mut all = [EventKind::ProcessExec; KINDS.len()];
        let mut i = 0;
        while i < KINDS.len() {
            all[i] = KINDS[i].kind;
            i += 1;
        }
        all
    };

    /// The kind's row in [`KINDS`].
    pub const fn facts(self) -> &'static KindFacts {
        &KINDS[self as usize]
    }

    /// The kind's position in [`EventKind::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The contract name, e.g. `process_exec`.
    pub const fn as_str(self) -> &'static str {
        self.facts().name
    }

    /// The kind named `name` in the event contract (`file_open`, …).
    pub fn from_name(name: &str) -> Option<EventKind> {
        KINDS.iter().find(|f| f.name == name).map(|f| f.kind)
    }

    pub const fn payload(self) -> PayloadKind {
        self.facts().payload
    }

    pub const fn origin(self) -> Origin {
        self.facts().origin
    }

    /// Whether a sensor saw it (not made by the agent: loss, health, policy, shaping).
    pub const fn from_sensor(self) -> bool {
        !matches!(self.origin(), Origin::Agent | Origin::Shaping)
    }

    /// Whether a process did it, so the event carries `process`, `parent` and `ancestors`.
    pub const fn has_process(self) -> bool {
        !matches!(self.origin(), Origin::Agent)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_in_slot_order_and_named_as_serde_names_them() {
        for (i, facts) in KINDS.iter().enumerate() {
            assert_eq!(facts.kind as usize, i, "{} is out of order", facts.name);
            assert_eq!(EventKind::ALL[i], facts.kind);
            let json = serde_json::to_string(&facts.kind).unwrap();
            assert_eq!(json, format!("\"{}\"", facts.name));
            assert_eq!(EventKind::from_name(facts.name), Some(facts.kind));
        }
        assert_eq!(EventKind::from_name("file_opened"), None);
    }
}
