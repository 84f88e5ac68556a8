//! The event contract: one [`Event`] per line of JSON, with the field names users rely on.
//!
//! Field names here are part of the product (scripts, rules and dashboards use them); they follow
//! `docs/ARCHITECTURE.md` § "Event contract (JSON)". A [`Process`] is immutable once built and
//! shared by `Arc` between the process tree and every event that mentions it, so carrying full
//! context on every event costs a pointer, not a copy. `parent` and `ancestors` are serialized as
//! the slim views the contract specifies; the per-event thread id is kept on the event and
//! written into `process.tid`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};

use serde_json::value::RawValue;

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

/// A container the process runs in, derived from its cgroup path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// The runtime's container id (64 hex digits for Docker and containerd).
    pub id: String,
    /// Which runtime's naming the cgroup path follows: `docker`, `containerd`, `crio`, `podman`.
    pub runtime: String,
}

/// One process image: what was executed, by whom, where. Immutable once built.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Process {
    pub pid: u32,
    /// The thread that did the action; on a shared `Process` this is the thread that exec'd.
    /// Events carry their own thread id and write it here.
    pub tid: u32,
    pub ppid: u32,
    pub exec_id: ExecId,
    /// The image that started this one: the process that forked it, or the image it replaced
    /// when it called exec without forking. `None` only when truly unknown.
    pub parent_exec_id: Option<ExecId>,
    /// The executable the kernel ran, as an absolute path (for a script: its interpreter).
    /// Shared (`Arc`) with the images forked from this one, as are `args`, `cwd` and `comm`: a
    /// fork is a copy of its parent's image, and most processes on a machine are forks.
    pub binary: Arc<str>,
    pub args: Arc<[String]>,
    /// True when `args` is shorter than what the process was given (see the argv limit).
    pub args_truncated: bool,
    /// For `#!` scripts: the script the interpreter runs, as an absolute path.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    /// The executable was a memfd (fileless execution).
    pub binary_memfd: bool,
    /// The executable had no link left in the file system when it ran (deleted or never linked).
    pub binary_deleted: bool,
    /// The executable's path was too deep to read whole: `binary` is its end, cut at the root
    /// end. A rule that needs the missing start cannot decide, and reports `alerted`.
    pub binary_truncated: bool,
    pub cwd: Arc<str>,
    /// Likewise for `cwd`.
    pub cwd_truncated: bool,
    pub comm: Arc<str>,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// The audit login uid; `None` when unset (4294967295 in the kernel).
    pub loginuid: Option<u32>,
    pub cgroup_id: u64,
    /// When the process (not this image) was created.
    pub start_time: Timestamp,
    /// When this image was executed; equal to `start_time` for processes seen only from /proc.
    pub exec_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Security-relevant environment variables the process was started with (only the names
    /// the agent is configured to keep, e.g. `LD_PRELOAD`; never the whole environment).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Which of fds 0, 1 and 2 were sockets at exec, and to which peer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stdio_sockets: Vec<StdioSocket>,
}

/// One of a process's standard fds that was a socket when it exec'd.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StdioSocket {
    /// 0, 1 or 2.
    pub fd: u8,
    /// `ipv4`, `ipv6` or `unix`.
    pub family: String,
    /// `tcp`, `udp` or `stream`/`dgram` for unix sockets.
    pub protocol: String,
    pub peer_addr: String,
    pub peer_port: u16,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Exit {
    /// The exit status passed to exit(), when the process exited by itself.
    pub code: Option<i32>,
    /// The signal that terminated it, when one did.
    pub signal: Option<i32>,
    pub core_dumped: bool,
}

/// A file action's object.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FileInfo {
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_path: Option<String>,
    pub flags: u32,
    /// Derived access: any of `read`, `write`, `create`, `truncate`.
    pub access: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// True when the path was longer than the kernel side could carry.
    pub truncated: bool,
    /// `file_link` only: `hard` or `symbolic` (then `path` is the link's text made absolute
    /// against the link's directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_type: Option<String>,
}

/// A kernel module load attempt (`init_module` / `finit_module`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Module {
    /// The module's name when the kernel knows it (empty when the image was refused unread).
    pub name: String,
    /// The file loaded from, for `finit_module`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub flags: u32,
}

/// A BPF program load by a process other than shrike.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BpfLoad {
    /// Program type name as the kernel spells it, e.g. `kprobe`, `tracing`, `lsm`.
    pub prog_type: String,
    pub prog_name: String,
    pub insn_count: u32,
}

/// A `ptrace` request against another process.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Ptrace {
    /// Request name, e.g. `PTRACE_ATTACH`, `PTRACE_POKETEXT`.
    pub request: String,
    pub target_pid: u32,
    pub target_binary: String,
}

/// Credentials before or after a change.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    /// Effective capabilities by name, e.g. `CAP_SYS_ADMIN`.
    pub cap_effective: Vec<String>,
    pub cap_permitted: Vec<String>,
}

/// A change of credentials (`setuid` family, `capset`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CredChange {
    /// The system call, e.g. `setresuid`, `capset`.
    pub syscall: String,
    pub old: Creds,
    pub new: Creds,
    /// Capabilities in `new.cap_effective` that were not in `old.cap_effective`.
    pub caps_gained: Vec<String>,
}

/// A mount or umount.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Mount {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub flags: u64,
}

/// Entering or creating namespaces (`setns`, `unshare`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NamespaceChange {
    pub syscall: String,
    /// Namespace kinds involved: any of `mnt`, `uts`, `ipc`, `user`, `pid`, `net`, `cgroup`, `time`.
    pub namespaces: Vec<String>,
}

/// An anonymous memory file created with `memfd_create`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Memfd {
    pub name: String,
    pub flags: u32,
}

/// A signal sent to another process.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Signal {
    pub signal: i32,
    pub target_pid: u32,
    pub target_binary: String,
}

/// A socket action's endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    /// `tcp` or `udp`.
    pub protocol: String,
    /// `ipv4` or `ipv6` (IPv4-mapped IPv6 is reported as `ipv4`).
    pub family: String,
    pub saddr: String,
    pub sport: u16,
    pub daddr: String,
    pub dport: u16,
    /// `egress` or `ingress`.
    pub direction: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The kernel's socket cookie: the same on every event of one socket (connect, close, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cookie: Option<u64>,
    /// Flow accounting, on `net_close`: payload bytes and segments each way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packets_received: Option<u64>,
}

/// A DNS query or response.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Dns {
    pub query: String,
    pub qtype: String,
    pub rcode: Option<String>,
    pub answers: Vec<String>,
}

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
    /// The capability it needs that is missing.
    pub capability: String,
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

/// What the kernel did to an action because of a rule. Not written to JSON by itself: it
/// becomes the `outcome` of that rule's alert.
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

/// `process` with the event's thread id.
struct ProcessView<'a> {
    process: &'a Process,
    tid: u32,
}

impl Serialize for ProcessView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.tid == self.process.tid {
            return self.process.serialize(serializer);
        }
        let mut copy = self.process.clone();
        copy.tid = self.tid;
        copy.serialize(serializer)
    }
}

/// The contract's `parent` object: `{ pid, exec_id, binary, args }`.
#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct ParentView {
    pid: u32,
    exec_id: ExecId,
    binary: Arc<str>,
    args: Arc<[String]>,
}

/// The contract's `ancestors[]` entry: `{ pid, exec_id, binary }`.
#[derive(Serialize, Deserialize, Default)]
#[serde(default)]
struct AncestorView {
    pid: u32,
    exec_id: ExecId,
    binary: Arc<str>,
}

/// A part of the process context, either serialized now or taken as JSON text written before
/// (`crate::json::ContextCache`).
#[derive(Serialize)]
#[serde(untagged)]
enum Part<'a, T: Serialize> {
    Live(T),
    Raw(&'a RawValue),
}

/// An event's `process`, `parent` and `ancestors` as JSON text already written.
pub(crate) struct RawContext<'a> {
    pub process: &'a RawValue,
    pub parent: &'a RawValue,
    pub ancestors: &'a RawValue,
}

impl Event {
    /// The JSON of `process` (with the process's own tid), `parent` and `ancestors`, as
    /// [`Event`]'s serialization writes them to a terminal-safe writer
    /// ([`crate::text::TerminalSafe`]: DEL, C1 and bidi controls as `\uXXXX`), for
    /// `ContextCache` to keep: the text it reuses is already what the output must carry.
    pub(crate) fn context_json(&self) -> serde_json::Result<[Box<RawValue>; 3]> {
        use crate::text::to_string_terminal_safe as json;
        let raw = |text: String| RawValue::from_string(text);
        Ok([
            raw(json(&ProcessView {
                process: &self.process,
                tid: self.process.tid,
            })?)?,
            raw(json(&self.parent_view())?)?,
            raw(json(&self.ancestor_views())?)?,
        ])
    }

    fn parent_view(&self) -> Option<ParentView> {
        self.parent.as_deref().map(|p| ParentView {
            pid: p.pid,
            exec_id: p.exec_id,
            binary: p.binary.clone(),
            args: p.args.clone(),
        })
    }

    fn ancestor_views(&self) -> Vec<AncestorView> {
        self.ancestors
            .iter()
            .map(|a| AncestorView {
                pid: a.pid,
                exec_id: a.exec_id,
                binary: a.binary.clone(),
            })
            .collect()
    }

    /// Serializes the event with its context taken from `ctx` (which must be this event's).
    pub(crate) fn serialize_with<S: Serializer>(
        &self,
        ctx: &RawContext<'_>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        self.wire(Some(ctx)).serialize(serializer)
    }

    fn wire<'a>(&'a self, ctx: Option<&RawContext<'a>>) -> WireOut<'a> {
        let (process, parent, ancestors) = match ctx {
            Some(c) => (
                Part::Raw(c.process),
                Part::Raw(c.parent),
                Part::Raw(c.ancestors),
            ),
            None => (
                Part::Live(ProcessView {
                    process: &self.process,
                    tid: self.tid,
                }),
                Part::Live(self.parent_view()),
                Part::Live(self.ancestor_views()),
            ),
        };
        WireOut {
            time: self.time,
            kind: self.kind,
            node: &self.node,
            process,
            parent,
            ancestors,
            container: self.container.as_deref(),
            k8s: self.k8s.as_deref(),
            exit: self.exit.as_ref(),
            file: self.file.as_ref(),
            network: self.network.as_ref(),
            dns: self.dns.as_ref(),
            module: self.module.as_ref(),
            bpf: self.bpf.as_ref(),
            ptrace: self.ptrace.as_ref(),
            cred: self.cred.as_ref(),
            mount: self.mount.as_ref(),
            namespace: self.namespace.as_ref(),
            memfd: self.memfd.as_ref(),
            signal: self.signal.as_ref(),
            lost: self.lost.as_ref(),
            health: self.health.as_ref(),
            incident: self.incident.as_deref(),
            suppressed: self.suppressed.as_deref(),
            policy: self.policy.as_ref(),
            result: self.result,
            alerts: &self.alerts,
        }
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    time: Timestamp,
    kind: EventKind,
    node: &'a str,
    process: Part<'a, ProcessView<'a>>,
    parent: Part<'a, Option<ParentView>>,
    ancestors: Part<'a, Vec<AncestorView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    container: Option<&'a ContainerIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    k8s: Option<&'a PodIdentity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit: Option<&'a Exit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<&'a FileInfo>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<&'a Network>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dns: Option<&'a Dns>,
    #[serde(skip_serializing_if = "Option::is_none")]
    module: Option<&'a Module>,
    #[serde(skip_serializing_if = "Option::is_none")]
    bpf: Option<&'a BpfLoad>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ptrace: Option<&'a Ptrace>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cred: Option<&'a CredChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mount: Option<&'a Mount>,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<&'a NamespaceChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memfd: Option<&'a Memfd>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signal: Option<&'a Signal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lost: Option<&'a Lost>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<&'a Health>,
    incident: Option<&'a Incident>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suppressed: Option<&'a Suppressed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a PolicyChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<i64>,
    #[serde(skip_serializing_if = "<[Alert]>::is_empty")]
    alerts: &'a [Alert],
}

#[derive(Deserialize)]
struct WireIn {
    time: Timestamp,
    kind: EventKind,
    #[serde(default)]
    node: String,
    process: Process,
    #[serde(default)]
    parent: Option<ParentView>,
    #[serde(default)]
    ancestors: Vec<AncestorView>,
    #[serde(default)]
    container: Option<ContainerIdentity>,
    #[serde(default)]
    k8s: Option<PodIdentity>,
    #[serde(default)]
    exit: Option<Exit>,
    #[serde(default)]
    file: Option<FileInfo>,
    #[serde(default)]
    network: Option<Network>,
    #[serde(default)]
    dns: Option<Dns>,
    #[serde(default)]
    module: Option<Module>,
    #[serde(default)]
    bpf: Option<BpfLoad>,
    #[serde(default)]
    ptrace: Option<Ptrace>,
    #[serde(default)]
    cred: Option<CredChange>,
    #[serde(default)]
    mount: Option<Mount>,
    #[serde(default)]
    namespace: Option<NamespaceChange>,
    #[serde(default)]
    memfd: Option<Memfd>,
    #[serde(default)]
    signal: Option<Signal>,
    #[serde(default)]
    lost: Option<Lost>,
    #[serde(default)]
    health: Option<Health>,
    incident: Option<Box<Incident>>,
    #[serde(default)]
    suppressed: Option<Box<Suppressed>>,
    #[serde(default)]
    policy: Option<PolicyChange>,
    #[serde(default)]
    result: Option<i64>,
    #[serde(default)]
    alerts: Vec<Alert>,
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.wire(None).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    /// Reads an event back (for `policy test` and tools): `parent` and `ancestors` become
    /// processes with only the fields the contract writes for them.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = WireIn::deserialize(deserializer)?;
        let tid = wire.process.tid;
        Ok(Event {
            time: wire.time,
            kind: wire.kind,
            node: Arc::from(wire.node),
            process: Arc::new(wire.process),
            tid,
            parent: wire.parent.map(|p| {
                Arc::new(Process {
                    pid: p.pid,
                    exec_id: p.exec_id,
                    binary: p.binary,
                    args: p.args,
                    ..Process::default()
                })
            }),
            ancestors: wire
                .ancestors
                .into_iter()
                .map(|a| {
                    Arc::new(Process {
                        pid: a.pid,
                        exec_id: a.exec_id,
                        binary: a.binary,
                        ..Process::default()
                    })
                })
                .collect(),
            exit: wire.exit,
            file: wire.file,
            network: wire.network,
            dns: wire.dns,
            module: wire.module,
            bpf: wire.bpf,
            ptrace: wire.ptrace,
            cred: wire.cred,
            mount: wire.mount,
            namespace: wire.namespace,
            memfd: wire.memfd,
            signal: wire.signal,
            lost: wire.lost,
            health: wire.health,
            incident: wire.incident,
            suppressed: wire.suppressed,
            policy: wire.policy,
            result: wire.result,
            alerts: wire.alerts,
            enforced: None,
            container: wire.container.map(Arc::new),
            k8s: wire.k8s.map(Arc::new),
        })
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

    fn sample() -> Event {
        let bash = Arc::new(Process {
            pid: 10,
            tid: 10,
            exec_id: ExecId(0xa),
            binary: "/usr/bin/bash".into(),
            args: vec!["bash".into(), "-c".into(), "x".into()].into(),
            ..Process::default()
        });
        let env = Arc::new(Process {
            pid: 11,
            tid: 11,
            ppid: 10,
            exec_id: ExecId(0xb),
            parent_exec_id: Some(ExecId(0xa)),
            binary: "/usr/bin/env".into(),
            args: vec!["/usr/bin/env".into(), "true".into()].into(),
            loginuid: None,
            ..Process::default()
        });
        let mut event = Event::new(Timestamp(5), EventKind::ProcessExec, "n1".into(), env);
        event.parent = Some(bash.clone());
        event.ancestors = vec![bash];
        event
    }

    #[test]
    fn serializes_contract_field_names_and_slim_parent_views() {
        let json: serde_json::Value = serde_json::to_value(sample()).unwrap();
        assert_eq!(json["kind"], "process_exec");
        assert_eq!(json["time"], "1970-01-01T00:00:00.000000005Z");
        assert_eq!(json["process"]["exec_id"], "000000000000000b");
        assert_eq!(json["process"]["parent_exec_id"], "000000000000000a");
        assert_eq!(json["process"]["loginuid"], serde_json::Value::Null);
        assert_eq!(
            json["parent"],
            serde_json::json!({"pid": 10, "exec_id": "000000000000000a",
                "binary": "/usr/bin/bash", "args": ["bash", "-c", "x"]})
        );
        assert_eq!(
            json["ancestors"],
            serde_json::json!([{"pid": 10, "exec_id": "000000000000000a", "binary": "/usr/bin/bash"}])
        );
        assert!(
            json.get("alerts").is_none(),
            "alerts appear only when rules matched"
        );
        assert!(json.get("exit").is_none());
    }

    #[test]
    fn event_tid_is_written_into_process_tid() {
        let mut event = sample();
        event.tid = 99;
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["process"]["tid"], 99);
        assert_eq!(json["process"]["pid"], 11);
    }

    #[test]
    fn round_trips_through_json() {
        let event = sample();
        let text = serde_json::to_string(&event).unwrap();
        let back: Event = serde_json::from_str(&text).unwrap();
        assert_eq!(back.process, event.process);
        assert_eq!(&*back.parent.as_ref().unwrap().binary, "/usr/bin/bash");
        assert_eq!(back.ancestors[0].exec_id, ExecId(0xa));
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }
}
