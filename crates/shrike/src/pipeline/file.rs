//! File, privilege and kernel-integrity records to events: `file_*`, `module_load`,
//! `bpf_load`, `ptrace`, `cred_change`, `mount`/`umount`, `namespace_change`, `memfd_create`,
//! `socket_create` and `signal`, each with the acting process's context and the syscall's
//! `result`.
//!
//! Reporting choices made here (the kernel sends what it saw):
//! - Paths are the kernel's canonical ones where it had the file or dentry in hand. A string
//!   it could not resolve (`..`, `//`, `/./`) is cleaned lexically here: `.` and empty
//!   components dropped, `..` applied to the text (across a symlinked directory this differs
//!   from the kernel's answer; the LSM hook set does not have that limit).
//! - `file_link`: `path` is the existing file (hard link) or the link's text made absolute
//!   against the link's directory (symbolic), `new_path` the link created, as for a rename
//!   (`path` → `new_path`); `link_type` says which.
//! - `file_utimes`: `times` says, per time, whether the call set it to a value of its own
//!   (`explicit`, with the seconds), to `now` (plain `touch`), left it `unchanged`, or could
//!   not be read (`unknown`); futimens (utimensat on an fd) has the fd's canonical path.
//! - `signal.result` is 0 when the signal was generated (delivered, ignored or already
//!   pending) and -EAGAIN when the queue overflowed.

use shrike_bpf::decode::{
    BpfLoadRecord, CredIds, CredRecord, FileInfoFlag, FileOp, FileRecord, MemfdRecord,
    ModuleRecord, MountRecord, NamespaceRecord, PtraceRecord, SignalRecord, SocketRecord, TimeSet,
};
use shrike_bpf::file::{prog_type_name, syscall_name, Access};
use shrike_event::text::lossless_utf8;
use shrike_event::{
    BpfLoad, CredChange, Creds, Event, EventKind, ExecId, FileInfo, FileTimes, Memfd, Module,
    Mount, NamespaceChange, Ptrace, Signal, Socket,
};

use super::process::enforced;
use super::Pipeline;

/// A set-times record's times as the contract words them.
fn file_times(t: shrike_bpf::decode::FileTimes) -> FileTimes {
    let word = |s: TimeSet| {
        match s {
            TimeSet::Explicit(_) => "explicit",
            TimeSet::Now => "now",
            TimeSet::Unchanged => "unchanged",
            TimeSet::Unknown => "unknown",
        }
        .to_string()
    };
    let sec = |s: TimeSet| match s {
        TimeSet::Explicit(v) => Some(v),
        _ => None,
    };
    FileTimes {
        atime: word(t.atime()),
        mtime: word(t.mtime()),
        atime_sec: sec(t.atime()),
        mtime_sec: sec(t.mtime()),
    }
}

/// `path` with empty and `.` components removed and `..` applied to the text before it.
fn clean(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if absolute => {
                parts.pop();
            }
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else if joined.is_empty() {
        ".".into()
    } else {
        joined
    }
}

/// The directory part of an absolute path (`/a/b` → `/a`).
fn dirname(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

/// A path from the kernel as text: canonical paths as they are, strings cleaned.
fn path_text(bytes: &[u8], canonical: bool) -> String {
    let text = lossless_utf8(bytes);
    if canonical || text.is_empty() {
        text
    } else {
        clean(&text)
    }
}

const CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Capability names of a mask, in bit order; unknown bits as `CAP_<n>`.
pub fn cap_names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|bit| mask & (1u64 << bit) != 0)
        .map(|bit| {
            CAPABILITIES
                .get(bit)
                .map_or_else(|| format!("CAP_{bit}"), |n| (*n).to_string())
        })
        .collect()
}

fn creds(c: &CredIds) -> Creds {
    Creds {
        uid: c.uid,
        euid: c.euid,
        suid: c.suid,
        fsuid: c.fsuid,
        gid: c.gid,
        egid: c.egid,
        sgid: c.sgid,
        fsgid: c.fsgid,
        cap_effective: cap_names(c.cap_effective),
        cap_permitted: cap_names(c.cap_permitted),
    }
}

/// The namespaces of `CLONE_NEW*` bits, in the contract's order.
pub fn namespace_names(flags: u64) -> Vec<String> {
    [
        (0x0002_0000, "mnt"),
        (0x0400_0000, "uts"),
        (0x0800_0000, "ipc"),
        (0x1000_0000, "user"),
        (0x2000_0000, "pid"),
        (0x4000_0000, "net"),
        (0x0200_0000, "cgroup"),
        (0x0000_0080, "time"),
    ]
    .into_iter()
    .filter(|(bit, _)| flags & bit != 0)
    .map(|(_, name)| name.to_string())
    .collect()
}

impl Pipeline {
    /// The binary of a process another event names (ptrace or signal target).
    fn binary_of(&self, exec_id: u64, pid: u32) -> String {
        self.tree
            .resolve(ExecId(exec_id), pid)
            .map(|n| n.process.binary.to_string())
            .unwrap_or_default()
    }

    pub(super) fn file_op(&mut self, r: FileRecord) -> Event {
        let kind = match r.op {
            FileOp::Open => EventKind::FileOpen,
            FileOp::Unlink => EventKind::FileUnlink,
            FileOp::Rename => EventKind::FileRename,
            FileOp::Chmod => EventKind::FileChmod,
            FileOp::Chown => EventKind::FileChown,
            FileOp::Link => EventKind::FileLink,
            FileOp::Utimes => EventKind::FileUtimes,
        };
        let info = r.info;
        let new_path = (!r.new_path.is_empty() || matches!(r.op, FileOp::Rename | FileOp::Link))
            .then(|| path_text(&r.new_path, info.has(FileInfoFlag::NewCanonical)));
        let symlink = info.has(FileInfoFlag::Symlink);
        let mut path = path_text(&r.path, info.has(FileInfoFlag::Canonical));
        if symlink && !path.starts_with('/') {
            if let Some(link) = new_path.as_deref().filter(|l| l.starts_with('/')) {
                path = clean(&format!("{}/{}", dirname(link), lossless_utf8(&r.path)));
            }
        }
        let mut event = self.context_event(kind, &r.header);
        event.set_file(FileInfo {
            path,
            new_path,
            flags: r.flags,
            access: Access(r.access)
                .words()
                .into_iter()
                .map(String::from)
                .collect(),
            mode: matches!(r.op, FileOp::Chmod).then_some(r.mode),
            uid: (matches!(r.op, FileOp::Chown) && r.uid != u32::MAX).then_some(r.uid),
            gid: (matches!(r.op, FileOp::Chown) && r.gid != u32::MAX).then_some(r.gid),
            truncated: info.has(FileInfoFlag::PathTruncated)
                || info.has(FileInfoFlag::NewPathTruncated),
            link_type: matches!(r.op, FileOp::Link)
                .then(|| if symlink { "symbolic" } else { "hard" }.to_string()),
            times: matches!(r.op, FileOp::Utimes).then(|| file_times(r.times)),
        });
        event.result = Some(r.result);
        event.enforced = r.enforced.map(enforced);
        event
    }

    pub(super) fn module_load(&mut self, r: ModuleRecord) -> Event {
        let mut event = self.context_event(EventKind::ModuleLoad, &r.header);
        event.set_module(Module {
            // The kernel learns the name only by parsing the image; the attempt is the event.
            name: String::new(),
            path: (!r.path.is_empty()).then(|| lossless_utf8(&r.path)),
            flags: r.flags,
        });
        event.result = Some(r.result);
        event.enforced = r.enforced.map(enforced);
        event
    }

    pub(super) fn bpf_load(&mut self, r: BpfLoadRecord) -> Event {
        let mut event = self.context_event(EventKind::BpfLoad, &r.header);
        event.set_bpf(BpfLoad {
            prog_type: prog_type_name(r.prog_type),
            prog_name: lossless_utf8(&r.prog_name),
            insn_count: r.insn_cnt,
        });
        event.result = Some(r.result);
        event.enforced = r.enforced.map(enforced);
        event
    }

    pub(super) fn ptrace(&mut self, r: PtraceRecord) -> Event {
        let target_binary = self.binary_of(r.target_exec_id, r.target_pid);
        let mut event = self.context_event(EventKind::Ptrace, &r.header);
        event.set_ptrace(Ptrace {
            request: r.request.name(),
            target_pid: r.target_pid,
            target_binary,
        });
        event.result = Some(r.result);
        event.enforced = r.enforced.map(enforced);
        event
    }

    pub(super) fn cred_change(&mut self, r: CredRecord) -> Event {
        let old = creds(&r.old);
        let new = creds(&r.new);
        let caps_gained = cap_names(r.new.cap_effective & !r.old.cap_effective);
        let mut event = self.context_event(EventKind::CredChange, &r.header);
        event.set_cred(CredChange {
            syscall: syscall_name(r.syscall).unwrap_or("unknown").to_string(),
            old,
            new,
            caps_gained,
        });
        event.result = Some(r.result);
        event
    }

    pub(super) fn mount(&mut self, r: MountRecord) -> Event {
        let kind = if r.umount {
            EventKind::Umount
        } else {
            EventKind::Mount
        };
        let mut event = self.context_event(kind, &r.header);
        event.set_mount(Mount {
            source: lossless_utf8(&r.source),
            target: path_text(&r.target, r.info.has(FileInfoFlag::NewCanonical)),
            fstype: lossless_utf8(&r.fstype),
            flags: r.flags,
        });
        event.result = Some(r.result);
        event
    }

    pub(super) fn namespace(&mut self, r: NamespaceRecord) -> Event {
        let mut event = self.context_event(EventKind::NamespaceChange, &r.header);
        let namespaces = namespace_names(r.ns_flags);
        let entered = r.entered();
        let host_namespaces: Vec<String> = if entered {
            self.host_ns.entered(&namespaces, &r.inum)
        } else {
            Vec::new()
        };
        event.set_namespace(NamespaceChange {
            syscall: syscall_name(r.syscall).unwrap_or("unknown").to_string(),
            into_host: !namespaces.is_empty() && host_namespaces.len() == namespaces.len(),
            host_namespaces,
            caller_pid_level: entered.then_some(r.pid_level),
            namespaces,
        });
        event.result = Some(r.result);
        event
    }

    pub(super) fn memfd(&mut self, r: MemfdRecord) -> Event {
        let mut event = self.context_event(EventKind::MemfdCreate, &r.header);
        event.set_memfd(Memfd {
            name: lossless_utf8(&r.name),
            flags: r.flags,
        });
        event.result = Some(r.result);
        event
    }

    pub(super) fn socket(&mut self, r: SocketRecord) -> Event {
        let mut event = self.context_event(EventKind::SocketCreate, &r.header);
        let name =
            |known: Option<&str>, n: u16| known.map_or_else(|| n.to_string(), str::to_string);
        event.set_socket(Socket {
            family: name((r.family == 16).then_some("netlink"), r.family),
            sock_type: name(super::net::sock_type_name(r.sock_type), r.sock_type),
            protocol: name(
                (r.family == 16 && r.protocol == 12).then_some("netfilter"),
                r.protocol,
            ),
        });
        event.result = Some(r.result);
        event
    }

    pub(super) fn signal(&mut self, r: SignalRecord) -> Event {
        let target_binary = self.binary_of(r.target_exec_id, r.target_pid);
        let mut event = self.context_event(EventKind::Signal, &r.header);
        event.set_signal(Signal {
            signal: r.signal,
            target_pid: r.target_pid,
            target_binary,
        });
        event.result = Some(if r.delivery == 3 { -11 } else { 0 });
        event
    }
}

#[cfg(test)]
mod tests {
    use shrike_bpf::decode::testing::{cred_bytes, file_bytes, mount_bytes, signal_bytes};
    use shrike_bpf::decode::Header;
    use shrike_event::Process;
    use shrike_proctree::{ProcessTree, TreeOptions};

    use super::*;
    use crate::cgroups::CgroupResolver;
    use crate::clock::BootClock;
    use crate::pipeline::PipelineOptions;

    fn pipeline() -> Pipeline {
        let mut tree = ProcessTree::new(TreeOptions::default());
        tree.seed(vec![
            Process {
                pid: 1,
                tid: 1,
                exec_id: ExecId(1),
                binary: "/sbin/init".into(),
                ..Process::default()
            },
            Process {
                pid: 50,
                tid: 50,
                ppid: 1,
                exec_id: ExecId(5),
                parent_exec_id: Some(ExecId(1)),
                binary: "/usr/bin/cat".into(),
                ..Process::default()
            },
        ]);
        Pipeline::new(
            PipelineOptions {
                emit_forks: false,
                keep_env: vec![],
            },
            "node".into(),
            tree,
            BootClock::new(),
            CgroupResolver::new(None),
        )
    }

    fn h(kind: u16) -> Header {
        Header {
            kind,
            ktime_ns: 10,
            pid: 50,
            tid: 51,
            exec_id: 5,
        }
    }

    fn file(
        op: FileOp,
        path: &[u8],
        new_path: &[u8],
        info: shrike_bpf::decode::FileInfo,
    ) -> FileRecord {
        FileRecord {
            header: h(100),
            op,
            result: 3,
            flags: 0,
            access: Access::READ.0,
            mode: 0o4755,
            uid: 1234,
            gid: u32::MAX,
            info,
            syscall: 2,
            path: path.to_vec(),
            new_path: new_path.to_vec(),
            enforced: None,
            times: Default::default(),
        }
    }

    #[test]
    fn set_times_becomes_file_utimes_with_the_times_asked_for() {
        use shrike_bpf::abi::file::shrike_file_times as T;
        let mut p = pipeline();
        let r = FileRecord {
            times: shrike_bpf::decode::FileTimes {
                flags: (T::SHRIKE_TIMES_ATIME_EXPLICIT.0 | T::SHRIKE_TIMES_MTIME_EXPLICIT.0) as u16,
                atime: 1_546_300_800,
                mtime: -86_400,
            },
            ..file(FileOp::Utimes, b"/etc/cron.d/x", b"", Default::default())
        };
        let e = p.handle(&file_bytes(&r)).unwrap().unwrap();
        assert_eq!(e.kind, EventKind::FileUtimes);
        let t = e.file().unwrap().times.clone().unwrap();
        assert!(t.explicit());
        assert_eq!(
            (t.atime.as_str(), t.atime_sec),
            ("explicit", Some(1_546_300_800))
        );
        assert_eq!((t.mtime.as_str(), t.mtime_sec), ("explicit", Some(-86_400)));
        assert_eq!(e.file().unwrap().mode, None);

        let touch = FileRecord {
            times: shrike_bpf::decode::FileTimes {
                flags: (T::SHRIKE_TIMES_ATIME_NOW.0 | T::SHRIKE_TIMES_MTIME_NOW.0) as u16,
                ..Default::default()
            },
            ..r
        };
        let e = p.handle(&file_bytes(&touch)).unwrap().unwrap();
        let t = e.file().unwrap().times.clone().unwrap();
        assert!(!t.explicit());
        assert_eq!((t.mtime.as_str(), t.mtime_sec), ("now", None));
        let open = file(FileOp::Open, b"/etc/shadow", b"", Default::default());
        let e = p.handle(&file_bytes(&open)).unwrap().unwrap();
        assert_eq!(e.file().unwrap().times, None);
    }

    #[test]
    fn open_becomes_file_open_with_context_access_and_result() {
        let mut p = pipeline();
        let bytes = file_bytes(&file(
            FileOp::Open,
            b"/etc/shadow",
            b"",
            FileInfoFlag::Canonical.into(),
        ));
        let e = p.handle(&bytes).unwrap().unwrap();
        assert_eq!(e.kind, EventKind::FileOpen);
        assert_eq!(&*e.process.binary, "/usr/bin/cat");
        assert_eq!(e.tid, 51);
        assert_eq!(e.result, Some(3));
        let f = e.file().unwrap();
        assert_eq!(f.path, "/etc/shadow");
        assert_eq!(f.access, ["read"]);
        assert_eq!(
            (f.mode, f.uid, &f.new_path, &f.link_type),
            (None, None, &None, &None)
        );
        assert_eq!(&*e.parent.unwrap().binary, "/sbin/init");
    }

    #[test]
    fn a_refused_open_says_which_rule_and_how() {
        let mut p = pipeline();
        let r = FileRecord {
            result: -1,
            enforced: Some(shrike_bpf::decode::Enforcement {
                rule_index: 3,
                action: shrike_bpf::decode::Action::Deny,
            }),
            ..file(FileOp::Open, b"/etc/shadow", b"", Default::default())
        };
        let e = p.handle(&file_bytes(&r)).unwrap().unwrap();
        assert_eq!(
            e.enforced,
            Some(shrike_event::Enforced {
                rule_index: 3,
                action: shrike_event::EnforcedAction::Denied
            })
        );
        assert_eq!(e.result, Some(-1));
    }

    #[test]
    fn chmod_carries_the_new_mode_and_chown_only_changed_ids() {
        let mut p = pipeline();
        let e = p
            .handle(&file_bytes(&file(
                FileOp::Chmod,
                b"/tmp/sh",
                b"",
                Default::default(),
            )))
            .unwrap()
            .unwrap();
        assert_eq!(e.file().unwrap().mode, Some(0o4755));
        let e = p
            .handle(&file_bytes(&file(
                FileOp::Chown,
                b"/tmp/sh",
                b"",
                Default::default(),
            )))
            .unwrap()
            .unwrap();
        let f = e.file().unwrap();
        assert_eq!((f.uid, f.gid, f.mode), (Some(1234), None, None));
    }

    #[test]
    fn unresolved_strings_are_cleaned_and_relative_symlink_text_made_absolute() {
        let mut p = pipeline();
        let unresolved = FileInfoFlag::Unresolved.into();
        let e = p
            .handle(&file_bytes(&file(
                FileOp::Unlink,
                b"/tmp/a/.././/etc/./shadow",
                b"",
                unresolved,
            )))
            .unwrap()
            .unwrap();
        assert_eq!(e.file().unwrap().path, "/tmp/etc/shadow");
        let e = p
            .handle(&file_bytes(&file(
                FileOp::Link,
                b"../shadow",
                b"/etc/x/link",
                FileInfoFlag::Symlink.into(),
            )))
            .unwrap()
            .unwrap();
        let f = e.file().unwrap();
        assert_eq!(f.path, "/etc/shadow");
        assert_eq!(f.new_path.as_deref(), Some("/etc/x/link"));
        assert_eq!(f.link_type.as_deref(), Some("symbolic"));
    }

    #[test]
    fn cred_change_names_the_syscall_and_caps_gained() {
        let mut p = pipeline();
        let r = CredRecord {
            header: h(203),
            result: 0,
            syscall: shrike_bpf::abi::file::shrike_sys::SHRIKE_SYS_CAPSET.0 as u16,
            old: CredIds::default(),
            new: CredIds {
                cap_effective: (1 << 21) | (1 << 7),
                ..Default::default()
            },
            info: Default::default(),
        };
        let e = p.handle(&cred_bytes(&r)).unwrap().unwrap();
        let c = e.cred().unwrap();
        assert_eq!(c.syscall, "capset");
        assert_eq!(c.caps_gained, ["CAP_SETUID", "CAP_SYS_ADMIN"]);
    }

    #[test]
    fn umount_and_signal_events() {
        let mut p = pipeline();
        let m = MountRecord {
            header: h(205),
            umount: true,
            result: 0,
            flags: 2,
            info: Default::default(),
            syscall: 37,
            source: vec![],
            target: b"/tmp/x/".to_vec(),
            fstype: vec![],
        };
        let e = p.handle(&mount_bytes(&m)).unwrap().unwrap();
        assert_eq!(e.kind, EventKind::Umount);
        assert_eq!(e.mount().unwrap().target, "/tmp/x");
        let s = SignalRecord {
            header: h(208),
            signal: 9,
            target_pid: 1,
            target_tid: 1,
            target_exec_id: 1,
            si_code: 0,
            delivery: 0,
        };
        let e = p.handle(&signal_bytes(&s)).unwrap().unwrap();
        let sig = e.signal().unwrap();
        assert_eq!((sig.signal, sig.target_binary.as_str()), (9, "/sbin/init"));
        assert_eq!(e.result, Some(0));
    }

    #[test]
    fn names_of_namespaces_caps_and_requests() {
        assert_eq!(namespace_names(0x4000_0000 | 0x0400_0000), ["uts", "net"]);
        assert_eq!(cap_names(1 << 50), ["CAP_50"]);
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("/../x"), "/x");
    }
}
