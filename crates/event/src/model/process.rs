//! The acting process: one immutable process image ([`Process`]), the container it runs in,
//! the sockets among its standard fds, and how it exited.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ExecId;
use crate::time::Timestamp;

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
    pub container: Option<Arc<Container>>,
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
