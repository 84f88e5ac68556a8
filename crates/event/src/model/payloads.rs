//! One payload type per event family: files, modules, BPF loads, ptrace, credentials, mounts,
//! namespaces, memfds, signals, network connections and DNS answers. An
//! [`Event`](super::Event) carries the one its kind has.

use serde::{Deserialize, Serialize};

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
    /// `file_utimes` only: what the call set each time to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub times: Option<FileTimes>,
}

/// What a set-times call (`file_utimes`) asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FileTimes {
    /// The access time: `explicit` (a value the caller gave, as `touch -r`/`touch -d` and
    /// timestomping do), `now` (the current time, as plain `touch` does), `unchanged`
    /// (UTIME_OMIT) or `unknown` (the caller's times could not be read).
    pub atime: String,
    /// The modification time, in the same words.
    pub mtime: String,
    /// The explicit access time, seconds since the epoch (with `atime` `explicit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atime_sec: Option<i64>,
    /// The explicit modification time, seconds since the epoch (with `mtime` `explicit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mtime_sec: Option<i64>,
}

impl FileTimes {
    /// Whether the call set either time to a value of the caller's (not "now").
    pub fn explicit(&self) -> bool {
        self.atime == "explicit" || self.mtime == "explicit"
    }
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
    /// A setns that succeeded: the kinds, among those it named, the caller is now in the host's
    /// namespace of (the kernel's initial namespaces, as kthreadd shows them; else PID 1's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host_namespaces: Vec<String>,
    /// A setns that succeeded and left the caller in the host's namespace of every kind it
    /// named: an entry into the host's namespaces (a no-op for a process already in them).
    pub into_host: bool,
    /// A setns that succeeded: how deep the caller's own pid namespace is (0 is the host's;
    /// setns never moves the caller itself). A process in a container's pid namespace
    /// entering the host's namespaces is leaving its container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_pid_level: Option<u32>,
}

/// An anonymous memory file created with `memfd_create`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Memfd {
    pub name: String,
    pub flags: u32,
}

/// A socket created to configure the system rather than talk to a peer: today netfilter's
/// netlink socket, which nft and iptables-nft use to change firewall rules.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Socket {
    /// `netlink` (or the number of another AF_* family).
    pub family: String,
    /// `raw`, `dgram`, … (or the number).
    #[serde(rename = "type")]
    pub sock_type: String,
    /// For netlink: `netfilter` (or the number).
    pub protocol: String,
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
