//! Hand-built events shaped like what shrike's sensors emit (see `crates/event`), for the
//! integration tests: a process image, its lineage, and one kind-specific object per event.
#![allow(dead_code)]

use std::sync::Arc;

use shrike_event::{
    BpfLoad, Container, CredChange, Creds, Dns, Event, EventKind, ExecId, FileInfo, FileTimes,
    Memfd, Module, Mount, NamespaceChange, Network, Process, Ptrace, StdioSocket, Timestamp,
};

static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A process image running `binary` with `args`; comm is the 15-byte base name, root, on the
/// host.
pub fn process(binary: &str, args: &[&str]) -> Process {
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let base = binary.rsplit('/').next().unwrap_or(binary);
    Process {
        pid: 1000 + id as u32,
        tid: 1000 + id as u32,
        exec_id: ExecId(id),
        binary: binary.into(),
        args: args.iter().map(|a| a.to_string()).collect(),
        comm: base.chars().take(15).collect::<String>().into(),
        cwd: "/root".into(),
        cgroup_id: 42,
        ..Process::default()
    }
}

/// A process with a different comm (e.g. exec through a symlink named like it).
pub fn with_comm(mut p: Process, comm: &str) -> Process {
    p.comm = comm.into();
    p
}

pub fn as_user(mut p: Process, uid: u32) -> Process {
    p.uid = uid;
    p.euid = uid;
    p.gid = uid;
    p.egid = uid;
    p
}

pub fn in_container(mut p: Process) -> Process {
    p.container = Some(std::sync::Arc::new(Container {
        id: "c0ffee".repeat(10) + "abcd",
        runtime: "containerd".into(),
    }));
    p
}

/// The lineage a scenario script runs in: `sh NAME.sh` started by an admin's bash over ssh.
pub fn scenario_shell(name: &str) -> Vec<Process> {
    vec![
        with_comm(process("/usr/bin/dash", &["sh", name]), "sh"),
        process("/usr/bin/bash", &["-bash"]),
        process(
            "/usr/lib/openssh/sshd-session",
            &["sshd-session: root@pts/0"],
        ),
        process("/usr/sbin/sshd", &["sshd", "-D"]),
        process("/usr/lib/systemd/systemd", &["/sbin/init"]),
    ]
}

/// An event of `kind` by `p`, whose parent is `lineage[0]`.
pub fn event(kind: EventKind, p: &Process, lineage: &[Process]) -> Event {
    let mut e = Event::new(Timestamp(1), kind, "node1".into(), Arc::new(p.clone()));
    e.ancestors = lineage.iter().cloned().map(Arc::new).collect();
    e.parent = e.ancestors.first().cloned();
    e
}

/// `p` exec'd, as a child of `lineage[0]`.
pub fn exec(p: &Process, lineage: &[Process]) -> Event {
    event(EventKind::ProcessExec, p, lineage)
}

/// The lineage of a child of `parent` (which itself ran in `lineage`).
pub fn child_of(parent: &Process, lineage: &[Process]) -> Vec<Process> {
    let mut l = vec![parent.clone()];
    l.extend(lineage.iter().cloned());
    l
}

pub fn file(
    kind: EventKind,
    p: &Process,
    lineage: &[Process],
    path: &str,
    access: &[&str],
) -> Event {
    let mut e = event(kind, p, lineage);
    e.set_file(FileInfo {
        path: path.into(),
        access: access.iter().map(|a| a.to_string()).collect(),
        ..FileInfo::default()
    });
    e.result = Some(3);
    e
}

pub fn open(p: &Process, lineage: &[Process], path: &str, access: &[&str]) -> Event {
    file(EventKind::FileOpen, p, lineage, path, access)
}

pub const WRITE_NEW: &[&str] = &["write", "create", "truncate"];

pub fn rename(p: &Process, lineage: &[Process], from: &str, to: &str) -> Event {
    let mut e = file(EventKind::FileRename, p, lineage, from, &[]);
    if let Some(f) = e.file_mut() {
        f.new_path = Some(to.into());
    }
    e
}

pub fn unlink(p: &Process, lineage: &[Process], path: &str) -> Event {
    file(EventKind::FileUnlink, p, lineage, path, &[])
}

/// A set-times call on `path`: both times to `explicit` seconds when given, else to "now" (what
/// plain `touch` asks for).
pub fn utimes(p: &Process, lineage: &[Process], path: &str, explicit: Option<i64>) -> Event {
    let mut e = file(EventKind::FileUtimes, p, lineage, path, &[]);
    let word = if explicit.is_some() {
        "explicit"
    } else {
        "now"
    };
    if let Some(f) = e.file_mut() {
        f.times = Some(FileTimes {
            atime: word.into(),
            mtime: word.into(),
            atime_sec: explicit,
            mtime_sec: explicit,
        });
    }
    e.result = Some(0);
    e
}

pub fn chmod(p: &Process, lineage: &[Process], path: &str, mode: u32) -> Event {
    let mut e = file(EventKind::FileChmod, p, lineage, path, &[]);
    if let Some(f) = e.file_mut() {
        f.mode = Some(mode);
    }
    e
}

pub fn connect(p: &Process, lineage: &[Process], daddr: &str, dport: u16) -> Event {
    let mut e = event(EventKind::NetConnect, p, lineage);
    e.set_network(Network {
        protocol: "tcp".into(),
        family: if daddr.contains(':') { "ipv6" } else { "ipv4" }.into(),
        saddr: "127.0.0.1".into(),
        sport: 40000,
        daddr: daddr.into(),
        dport,
        direction: "egress".into(),
        domain: None,
        ..Network::default()
    });
    e.result = Some(0);
    e
}

pub fn dns(p: &Process, lineage: &[Process], query: &str) -> Event {
    let mut e = event(EventKind::Dns, p, lineage);
    e.set_dns(
        Network {
            protocol: "udp".into(),
            dport: 53,
            ..Network::default()
        },
        Dns {
            query: query.into(),
            qtype: "A".into(),
            rcode: None,
            answers: vec![],
        },
    );
    e
}

pub fn stdio_tcp(mut p: Process, peer: &str, port: u16) -> Process {
    p.set_stdio_sockets(
        (0..3)
            .map(|fd| StdioSocket {
                fd,
                family: "ipv4".into(),
                protocol: "tcp".into(),
                peer_addr: peer.into(),
                peer_port: port,
            })
            .collect(),
    );
    p
}

pub fn module_load(p: &Process, lineage: &[Process], path: Option<&str>, result: i64) -> Event {
    let mut e = event(EventKind::ModuleLoad, p, lineage);
    e.set_module(Module {
        name: String::new(),
        path: path.map(String::from),
        flags: 0,
    });
    e.result = Some(result);
    e
}

pub fn ptrace(p: &Process, lineage: &[Process], request: &str, target: &Process) -> Event {
    let mut e = event(EventKind::Ptrace, p, lineage);
    e.set_ptrace(Ptrace {
        request: request.into(),
        target_pid: target.pid,
        target_binary: target.binary.to_string(),
    });
    e.result = Some(0);
    e
}

pub fn memfd_create(p: &Process, lineage: &[Process], name: &str) -> Event {
    let mut e = event(EventKind::MemfdCreate, p, lineage);
    e.set_memfd(Memfd {
        name: name.into(),
        flags: 0,
    });
    e.result = Some(3);
    e
}

pub fn cred_change(
    p: &Process,
    lineage: &[Process],
    old: (u32, u32),
    new: (u32, u32),
    caps_gained: &[&str],
) -> Event {
    let mut e = event(EventKind::CredChange, p, lineage);
    e.set_cred(CredChange {
        syscall: "setresuid".into(),
        old: Creds {
            uid: old.0,
            euid: old.1,
            ..Creds::default()
        },
        new: Creds {
            uid: new.0,
            euid: new.1,
            ..Creds::default()
        },
        caps_gained: caps_gained.iter().map(|c| c.to_string()).collect(),
    });
    e.result = Some(0);
    e
}

pub fn mount(p: &Process, lineage: &[Process], source: &str, target: &str, fstype: &str) -> Event {
    let mut e = event(EventKind::Mount, p, lineage);
    e.set_mount(Mount {
        source: source.into(),
        target: target.into(),
        fstype: fstype.into(),
        flags: 0,
    });
    e
}

pub fn setns(p: &Process, lineage: &[Process]) -> Event {
    let mut e = event(EventKind::NamespaceChange, p, lineage);
    e.set_namespace(NamespaceChange {
        syscall: "setns".into(),
        namespaces: vec!["mnt".into()],
        ..NamespaceChange::default()
    });
    e
}

pub fn bpf_load(p: &Process, lineage: &[Process], prog_type: &str) -> Event {
    let mut e = event(EventKind::BpfLoad, p, lineage);
    e.set_bpf(BpfLoad {
        prog_type: prog_type.into(),
        prog_name: "x".into(),
        insn_count: 10,
    });
    e
}
