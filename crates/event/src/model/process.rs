//! The acting process: one immutable process image ([`Process`]), the container it runs in,
//! the sockets among its standard fds, and how it exited.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::ExecId;
use crate::time::Timestamp;

/// The audit login uid in 4 bytes (an `Option<u32>` takes 8): the kernel's "unset",
/// 4294967295, is `None`, and JSON `null`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoginUid(u32);

impl LoginUid {
    pub const UNSET: LoginUid = LoginUid(u32::MAX);

    /// The value as the kernel keeps it (u32::MAX: unset).
    pub fn from_kernel(raw: u32) -> LoginUid {
        LoginUid(raw)
    }

    pub fn get(self) -> Option<u32> {
        (self.0 != u32::MAX).then_some(self.0)
    }
}

impl Default for LoginUid {
    fn default() -> Self {
        LoginUid::UNSET
    }
}

impl From<Option<u32>> for LoginUid {
    fn from(v: Option<u32>) -> Self {
        v.map_or(LoginUid::UNSET, LoginUid)
    }
}

impl Serialize for LoginUid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for LoginUid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Option::<u32>::deserialize(deserializer).map(LoginUid::from)
    }
}

/// A container the process runs in, derived from its cgroup path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    pub script: Option<Arc<str>>,
    /// The executable was a memfd (fileless execution).
    pub binary_memfd: bool,
    /// The executable had no link left in the file system when it ran (deleted or never linked).
    pub binary_deleted: bool,
    /// The executable's path was too deep to read whole: `binary` is its end, cut at the root
    /// end. A rule that needs the missing start cannot decide, and reports `alerted`.
    pub binary_truncated: bool,
    /// An image above this one (the image that forked it or that it replaced, or one of
    /// theirs) listened on a TCP port: a network server is in its lineage, whatever it is
    /// called. PID 1 does not count (it listens for the services it socket-activates).
    pub under_server: bool,
    /// The binary of the nearest image above this one that listened on a TCP port, as far as
    /// the agent saw it listen (its `net_listen`, or its listening socket in /proc at start):
    /// which server that is, however many images lie between. Absent when none did or the
    /// agent did not see it. Behind a thin pointer (8 bytes, shared down the tree), so a
    /// `Process` stays within malloc's 224-byte chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_binary: Option<Arc<Arc<str>>>,
    pub cwd: Arc<str>,
    /// Likewise for `cwd`.
    pub cwd_truncated: bool,
    pub comm: Arc<str>,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    /// The audit login uid; null when unset (4294967295 in the kernel).
    pub loginuid: LoginUid,
    pub cgroup_id: u64,
    /// When the process (not this image) was created.
    pub start_time: Timestamp,
    /// When this image was executed; equal to `start_time` for processes seen only from /proc.
    pub exec_time: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Arc<Container>>,
    /// Security-relevant environment variables the process was started with (only the names
    /// the agent is configured to keep, e.g. `LD_PRELOAD`; never the whole environment).
    /// Rarely set, so one pointer (shared with the images forked from this one); read it with
    /// [`Process::env_var`].
    #[serde(skip_serializing_if = "no_env")]
    pub env: Option<Arc<BTreeMap<String, String>>>,
    /// Where the standard fds lead and how fresh the executable is ([`ImageLinks`]: its
    /// fields appear in the JSON as fields of the process). Rarely set, so one pointer; read
    /// it with [`Process::stdio_sockets`], [`Process::stdio_pipes`], [`Process::binary_age`],
    /// [`Process::binary_writer`].
    #[serde(flatten, deserialize_with = "links_from_fields")]
    pub links: Option<Arc<ImageLinks>>,
}

/// `env` is left out of the JSON when unset or empty.
fn no_env(env: &Option<Arc<BTreeMap<String, String>>>) -> bool {
    env.as_deref().is_none_or(BTreeMap::is_empty)
}

/// `links` read back from a process's own fields: `None` when none of them is there.
fn links_from_fields<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Arc<ImageLinks>>, D::Error> {
    ImageLinks::deserialize(deserializer).map(Process::links_field)
}

impl Process {
    /// A kept environment variable's value (see `env`).
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env.as_deref()?.get(name).map(String::as_str)
    }

    /// Sets a kept environment variable (tests and tools that build events by hand).
    pub fn set_env_var(&mut self, name: impl Into<String>, value: impl Into<String>) {
        Arc::make_mut(self.env.get_or_insert_default()).insert(name.into(), value.into());
    }

    /// The standard fds that were sockets at exec.
    pub fn stdio_sockets(&self) -> &[StdioSocket] {
        self.links
            .as_deref()
            .map_or(&[], |l| l.stdio_sockets.as_slice())
    }

    /// The standard fds that were pipes at exec, with the processes at the other ends.
    pub fn stdio_pipes(&self) -> &[StdioPipe] {
        self.links
            .as_deref()
            .map_or(&[], |l| l.stdio_pipes.as_slice())
    }

    /// Seconds from the executable's last change to this exec, when that was recent.
    pub fn binary_age(&self) -> Option<u32> {
        self.links.as_deref().and_then(|l| l.binary_age)
    }

    /// Whether a networked process wrote the executable.
    pub fn binary_downloaded(&self) -> bool {
        self.links.as_deref().is_some_and(|l| l.binary_downloaded)
    }

    /// The networked program that wrote the executable, when one did and the agent knows it.
    pub fn binary_writer(&self) -> Option<&str> {
        self.links
            .as_deref()
            .and_then(|l| l.binary_writer.as_deref())
    }

    /// `env` as the field holds it: `None` for no variables, so that most processes carry no
    /// allocation for it.
    pub fn env_field(env: BTreeMap<String, String>) -> Option<Arc<BTreeMap<String, String>>> {
        (!env.is_empty()).then(|| Arc::new(env))
    }

    /// `links` as the field holds it (`None` when it says nothing).
    pub fn links_field(links: ImageLinks) -> Option<Arc<ImageLinks>> {
        (links != ImageLinks::default()).then(|| Arc::new(links))
    }

    /// Sets the sockets among the standard fds (tests and tools that build events by hand).
    pub fn set_stdio_sockets(&mut self, sockets: Vec<StdioSocket>) {
        let mut links = self.links.as_deref().cloned().unwrap_or_default();
        links.stdio_sockets = sockets;
        self.links = Process::links_field(links);
    }
}

/// Where an image's standard fds led when it started, and where its executable came from: the
/// facts most images lack, kept together behind one pointer.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageLinks {
    /// Which of fds 0, 1 and 2 were sockets at exec, and to which peer.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stdio_sockets: Vec<StdioSocket>,
    /// Which of fds 0, 1 and 2 were pipes at exec, and which programs held the other end.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stdio_pipes: Vec<StdioPipe>,
    /// Seconds from the executable's last change (its inode's change time: content written,
    /// renamed, mode or owner changed; `touch -d` cannot set it back) to the exec. Only when
    /// that was within a day ([`ImageLinks::RECENT_SECS`]); older or unknown: absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_age: Option<u32>,
    /// A process that had connected out (TCP, or UDP other than DNS) opened the executable
    /// for writing before it ran: a download, whatever the downloader is called and wherever
    /// it put the file (the kernel remembers the last 4,096 such files).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub binary_downloaded: bool,
    /// That process's executable, when the agent saw it connect (the last 4,096 images that
    /// connected out are remembered) or it is still in the process tree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binary_writer: Option<String>,
}

impl ImageLinks {
    /// How recent an executable's change must be for `binary_age` to be kept.
    pub const RECENT_SECS: u32 = 86_400;
}

/// One of a process's standard fds that was a pipe (or FIFO) when it exec'd, with one program
/// at the other end: for fd 0 a writer, for fds 1 and 2 a reader. The agent knows the other end
/// when that program exec'd before this one; otherwise the other program's own event names
/// this one.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct StdioPipe {
    /// 0, 1 or 2.
    pub fd: u8,
    /// The other end's executable; absent when no process the agent saw exec holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_binary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_exec_id: Option<ExecId>,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The rarely set fields are one pointer each and cost the JSON nothing when unset or
    /// empty; set, they read as before (`env` an object, `stdio_sockets` an array), and a
    /// fork's copy shares them.
    #[test]
    fn rare_fields_are_left_out_unset_and_read_back_set() {
        let mut p = Process::default();
        let json = serde_json::to_value(&p).unwrap();
        assert!(json.get("env").is_none() && json.get("stdio_sockets").is_none());
        p.env = Some(Arc::default());
        p.links = Some(Arc::default());
        let json = serde_json::to_value(&p).unwrap();
        assert!(json.get("env").is_none() && json.get("stdio_sockets").is_none());

        p.set_env_var("LD_PRELOAD", "/tmp/x.so");
        p.set_stdio_sockets(vec![StdioSocket {
            fd: 0,
            family: "ipv4".into(),
            ..StdioSocket::default()
        }]);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["env"], serde_json::json!({"LD_PRELOAD": "/tmp/x.so"}));
        assert_eq!(json["stdio_sockets"][0]["family"], "ipv4");
        let back: Process = serde_json::from_value(json).unwrap();
        assert_eq!(back.env_var("LD_PRELOAD"), Some("/tmp/x.so"));
        assert_eq!(back.stdio_sockets().len(), 1);
        assert_eq!(back, p, "read back as written");
        assert_eq!(Process::env_field(BTreeMap::new()), None);
        let none: Process =
            serde_json::from_value(serde_json::to_value(Process::default()).unwrap()).unwrap();
        assert_eq!(none.links, None, "no link fields: no allocation");

        // The links' other fields are the process's own fields in the JSON.
        let mut links = p.links.as_deref().cloned().unwrap();
        links.stdio_pipes = vec![StdioPipe {
            fd: 0,
            peer_binary: Some("/usr/bin/curl".into()),
            peer_exec_id: Some(ExecId(9)),
        }];
        links.binary_age = Some(12);
        links.binary_downloaded = true;
        links.binary_writer = Some("/usr/bin/wget".into());
        p.links = Process::links_field(links);
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["stdio_pipes"][0]["peer_binary"], "/usr/bin/curl");
        assert_eq!(
            (json["binary_age"].clone(), json["binary_writer"].clone()),
            (12.into(), "/usr/bin/wget".into())
        );
        let back: Process = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
        assert_eq!(
            (back.binary_age(), back.binary_writer()),
            (Some(12), Some("/usr/bin/wget"))
        );

        let fork = p.clone();
        assert!(Arc::ptr_eq(
            fork.env.as_ref().unwrap(),
            p.env.as_ref().unwrap()
        ));
        assert!(
            std::mem::size_of::<Process>() <= 200,
            "Process is {} bytes: its Arc allocation leaves malloc's 224-byte chunk",
            std::mem::size_of::<Process>()
        );
    }
}
