//! The field table: every name a condition can use, its type, the event kinds where it exists,
//! and how to read it from a `shrike_event::Event` without allocating.
//!
//! This table is the single place that knows the event model's shape. Adding a field is one
//! line in [`FIELDS`]. A getter calls its visitor once per value (once for a scalar, once per
//! element of a list, stopping early when the visitor says "matched") and returns `None` when
//! the field is absent on this event (an empty list counts as absent), `Some(matched)` otherwise.
//!
//! `process.env.NAME` is the one family of names not listed here: any `NAME` is accepted and
//! reads `process.env[NAME]` (the variables the agent was configured to keep, e.g. `LD_PRELOAD`).

use shrike_event::{Event, Process};

use crate::derived;
use crate::kinds::{self, KindSet, FILE, NET, PROCESS, SYSCALL};
use shrike_event::EventKind as K;

/// The scalar type of a field (or of each element of a list field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base {
    Str,
    /// A signed integer; unsigned 64-bit event values above `i64::MAX` (none in practice)
    /// would wrap.
    Num,
    Bool,
    /// An IP address written as text in the event; compared as an address.
    Addr,
    /// The event kind: compared against the kind names of the event contract.
    Kind,
}

/// A field's type: a base type, single-valued or a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldType {
    pub base: Base,
    pub list: bool,
}

impl FieldType {
    /// `string`, `number list`, … for messages.
    pub fn describe(self) -> &'static str {
        match (self.base, self.list) {
            (Base::Str, false) => "string",
            (Base::Str, true) => "string list",
            (Base::Num, false) => "number",
            (Base::Num, true) => "number list",
            (Base::Bool, _) => "boolean",
            (Base::Addr, false) => "address",
            (Base::Addr, true) => "address list",
            (Base::Kind, _) => "event kind",
        }
    }
}

const STR: FieldType = FieldType {
    base: Base::Str,
    list: false,
};
const STRS: FieldType = FieldType {
    base: Base::Str,
    list: true,
};
const NUM: FieldType = FieldType {
    base: Base::Num,
    list: false,
};
const NUMS: FieldType = FieldType {
    base: Base::Num,
    list: true,
};
const BOOL: FieldType = FieldType {
    base: Base::Bool,
    list: false,
};
const ADDR: FieldType = FieldType {
    base: Base::Addr,
    list: false,
};
const ADDRS: FieldType = FieldType {
    base: Base::Addr,
    list: true,
};
const KIND: FieldType = FieldType {
    base: Base::Kind,
    list: false,
};

/// One value read from an event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'e> {
    Str(&'e str),
    Num(i64),
    Bool(bool),
}

/// Reads a field: calls the visitor per value, returns `None` when absent.
pub type Getter = for<'e, 'v> fn(&'e Event, &'v mut dyn FnMut(Value<'e>) -> bool) -> Option<bool>;

/// One row of the field table.
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    /// The event kinds on which this field can have a value.
    pub kinds: KindSet,
    pub get: Getter,
}

type V<'v, 'e> = &'v mut dyn FnMut(Value<'e>) -> bool;

fn s<'e>(v: V<'_, 'e>, x: &'e str) -> Option<bool> {
    Some(v(Value::Str(x)))
}
fn n<'e>(v: V<'_, 'e>, x: impl Into<i64>) -> Option<bool> {
    Some(v(Value::Num(x.into())))
}
fn n64<'e>(v: V<'_, 'e>, x: u64) -> Option<bool> {
    Some(v(Value::Num(x as i64)))
}
fn b<'e>(v: V<'_, 'e>, x: bool) -> Option<bool> {
    Some(v(Value::Bool(x)))
}
/// The known programs at the other end of a process's stdin pipe (`stdin`) or of its stdout
/// and stderr pipes.
fn pipe_peers(p: &Process, stdin: bool) -> impl Iterator<Item = &str> {
    p.stdio_pipes()
        .iter()
        .filter(move |x| (x.fd == 0) == stdin)
        .filter_map(|x| x.peer_binary.as_deref())
}

fn strs<'e>(v: V<'_, 'e>, items: impl IntoIterator<Item = &'e str>) -> Option<bool> {
    let mut seen = false;
    for x in items {
        seen = true;
        if v(Value::Str(x)) {
            return Some(true);
        }
    }
    seen.then_some(false)
}
fn nums<'e>(v: V<'_, 'e>, items: impl IntoIterator<Item = i64>) -> Option<bool> {
    let mut seen = false;
    for x in items {
        seen = true;
        if v(Value::Num(x)) {
            return Some(true);
        }
    }
    seen.then_some(false)
}

/// The last component of a path (`/usr/bin/cat` → `cat`).
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// True when `comm` is not the (15-byte truncated) name of the binary or script that ran: a
/// process that renamed itself, or was started through a link named like something else.
fn comm_mismatch(p: &Process) -> bool {
    let comm = p.comm.as_bytes();
    if comm.is_empty() || p.binary.is_empty() {
        return false;
    }
    let names = |path: &str| {
        let base = basename(path).as_bytes();
        base == comm || (comm.len() >= 15 && base.starts_with(comm))
    };
    !(names(&p.binary) || p.script.as_deref().is_some_and(names))
}

const fn f(name: &'static str, ty: FieldType, kinds: KindSet, get: Getter) -> Field {
    Field {
        name,
        ty,
        kinds,
        get,
    }
}

const PTRACE: KindSet = kinds::one(K::Ptrace);
const CRED: KindSet = kinds::one(K::CredChange);
const EXIT: KindSet = kinds::one(K::ProcessExit);
const MODULE: KindSet = kinds::one(K::ModuleLoad);
const BPF: KindSet = kinds::one(K::BpfLoad);
const DNS: KindSet = kinds::one(K::Dns);
const MOUNT: KindSet = KindSet::of(&[K::Mount, K::Umount]);
const NS: KindSet = kinds::one(K::NamespaceChange);
const MEMFD: KindSet = kinds::one(K::MemfdCreate);
const SOCKET: KindSet = kinds::one(K::SocketCreate);
const SIGNAL: KindSet = kinds::one(K::Signal);
const LOST: KindSet = kinds::one(K::EventsLost);
const OPEN: KindSet = kinds::one(K::FileOpen);
const RENAME: KindSet = KindSet::of(&[K::FileRename, K::FileLink]);
const UTIMES: KindSet = kinds::one(K::FileUtimes);

/// Prefix of the environment-variable fields.
pub const ENV_PREFIX: &str = "process.env.";

/// Every field. One line each; order is the order `explain` and suggestions use.
#[rustfmt::skip]
pub static FIELDS: &[Field] = &[
    f("kind", KIND, KindSet::ALL, |e, v| s(v, e.kind.as_str())),
    f("node", STR, KindSet::ALL, |e, v| s(v, &e.node)),
    f("result", NUM, SYSCALL, |e, v| e.result.and_then(|r| n(v, r))),
    // The acting process.
    f("process.pid", NUM, PROCESS, |e, v| n(v, e.process.pid)),
    f("process.tid", NUM, PROCESS, |e, v| n(v, e.tid)),
    f("process.ppid", NUM, PROCESS, |e, v| n(v, e.process.ppid)),
    f("process.binary", STR, PROCESS, |e, v| s(v, &e.process.binary)),
    f("process.name", STR, PROCESS, |e, v| s(v, basename(&e.process.binary))),
    f("process.args", STRS, PROCESS, |e, v| strs(v, e.process.args.iter().map(String::as_str))),
    f("process.argv0", STR, PROCESS, |e, v| e.process.args.first().and_then(|a| s(v, a))),
    f("process.args_truncated", BOOL, PROCESS, |e, v| b(v, e.process.args_truncated)),
    f("process.script", STR, PROCESS, |e, v| e.process.script.as_deref().and_then(|x| s(v, x))),
    f("process.binary_memfd", BOOL, PROCESS, |e, v| b(v, e.process.binary_memfd)),
    f("process.binary_deleted", BOOL, PROCESS, |e, v| b(v, e.process.binary_deleted)),
    f("process.cwd", STR, PROCESS, |e, v| s(v, &e.process.cwd)),
    f("process.binary_truncated", BOOL, PROCESS, |e, v| b(v, e.process.binary_truncated)),
    f("process.cwd_truncated", BOOL, PROCESS, |e, v| b(v, e.process.cwd_truncated)),
    f("process.under_server", BOOL, PROCESS, |e, v| b(v, e.process.under_server)),
    f("process.server_binary", STR, PROCESS, |e, v| e.process.server_binary.as_deref().and_then(|x| s(v, x))),
    f("process.comm", STR, PROCESS, |e, v| s(v, &e.process.comm)),
    f("process.comm_mismatch", BOOL, PROCESS, |e, v| b(v, comm_mismatch(&e.process))),
    f("process.uid", NUM, PROCESS, |e, v| n(v, e.process.uid)),
    f("process.euid", NUM, PROCESS, |e, v| n(v, e.process.euid)),
    f("process.gid", NUM, PROCESS, |e, v| n(v, e.process.gid)),
    f("process.egid", NUM, PROCESS, |e, v| n(v, e.process.egid)),
    f("process.loginuid", NUM, PROCESS, |e, v| e.process.loginuid.get().and_then(|x| n(v, x))),
    f("process.cgroup_id", NUM, PROCESS, |e, v| n64(v, e.process.cgroup_id)),
    f("process.in_container", BOOL, PROCESS, |e, v| b(v, e.process.container.is_some())),
    f("process.container.id", STR, PROCESS, |e, v| e.process.container.as_ref().and_then(|c| s(v, &c.id))),
    f("process.container.runtime", STR, PROCESS, |e, v| e.process.container.as_ref().and_then(|c| s(v, &c.runtime))),
    // Workload identity from the container runtime (absent on host processes; until the
    // runtime answers only `id`, `runtime` and `resolved` = false are known).
    f("container.id", STR, PROCESS, |e, v| e.container.as_ref().and_then(|c| s(v, &c.id))),
    f("container.name", STR, PROCESS, |e, v| e.container.as_ref().and_then(|c| s(v, &c.name))),
    f("container.image", STR, PROCESS, |e, v| e.container.as_ref().and_then(|c| s(v, &c.image))),
    f("container.image_id", STR, PROCESS, |e, v| e.container.as_ref().and_then(|c| s(v, &c.image_id))),
    f("container.runtime", STR, PROCESS, |e, v| e.container.as_ref().and_then(|c| s(v, &c.runtime))),
    f("container.resolved", BOOL, PROCESS, |e, v| e.container.as_ref().and_then(|c| b(v, c.resolved))),
    f("container.label_keys", STRS, PROCESS, |e, v| e.container.as_ref().and_then(|c| strs(v, c.labels.keys().map(String::as_str)))),
    f("container.privileged", BOOL, PROCESS, |e, v| e.container.as_ref().and_then(|c| c.privileged).and_then(|x| b(v, x))),
    f("container.host_pid", BOOL, PROCESS, |e, v| e.container.as_ref().and_then(|c| c.host_pid).and_then(|x| b(v, x))),
    f("container.host_network", BOOL, PROCESS, |e, v| e.container.as_ref().and_then(|c| c.host_network).and_then(|x| b(v, x))),
    f("container.host_mounts", STRS, PROCESS, |e, v| e.container.as_ref().and_then(|c| strs(v, c.host_mounts.iter().map(String::as_str)))),
    f("container.runtime_socket_mounted", BOOL, PROCESS, |e, v| e.container.as_ref().and_then(|c| c.runtime_socket_mounted).and_then(|x| b(v, x))),
    f("k8s.namespace", STR, PROCESS, |e, v| e.k8s.as_ref().and_then(|p| s(v, &p.namespace))),
    f("k8s.pod", STR, PROCESS, |e, v| e.k8s.as_ref().and_then(|p| s(v, &p.pod))),
    f("k8s.uid", STR, PROCESS, |e, v| e.k8s.as_ref().and_then(|p| s(v, &p.uid))),
    f("k8s.container", STR, PROCESS, |e, v| e.k8s.as_ref().and_then(|p| s(v, &p.container))),
    f("k8s.label_keys", STRS, PROCESS, |e, v| e.k8s.as_ref().and_then(|p| strs(v, p.labels.keys().map(String::as_str)))),
    f("process.argv0_name", STR, PROCESS, |e, v| derived::argv0_name(&e.process).and_then(|x| s(v, x))),
    f("process.argv0_mismatch", BOOL, PROCESS, |e, v| derived::argv0_mismatch(&e.process).and_then(|x| b(v, x))),
    f("process.args_encoded_blob", BOOL, PROCESS, |e, v| b(v, derived::args_encoded_blob(&e.process.args))),
    f("process.args_count", NUM, PROCESS, |e, v| n(v, derived::args_count(&e.process))),
    f("process.stdio_sockets.fd", NUMS, PROCESS, |e, v| nums(v, e.process.stdio_sockets().iter().map(|x| i64::from(x.fd)))),
    f("process.stdio_sockets.family", STRS, PROCESS, |e, v| strs(v, e.process.stdio_sockets().iter().map(|x| x.family.as_str()))),
    f("process.stdio_sockets.protocol", STRS, PROCESS, |e, v| strs(v, e.process.stdio_sockets().iter().map(|x| x.protocol.as_str()))),
    f("process.stdio_sockets.peer_addr", ADDRS, PROCESS, |e, v| strs(v, e.process.stdio_sockets().iter().map(|x| x.peer_addr.as_str()))),
    f("process.stdio_sockets.peer_port", NUMS, PROCESS, |e, v| nums(v, e.process.stdio_sockets().iter().map(|x| i64::from(x.peer_port)))),
    // Where the standard fds' pipes lead: the programs at the other ends (a writer into
    // stdin, a reader of stdout or stderr), by path and by name.
    f("process.stdio_pipes.fd", NUMS, PROCESS, |e, v| nums(v, e.process.stdio_pipes().iter().map(|x| i64::from(x.fd)))),
    f("process.piped_from", STRS, PROCESS, |e, v| strs(v, pipe_peers(&e.process, true))),
    f("process.piped_from_name", STRS, PROCESS, |e, v| strs(v, pipe_peers(&e.process, true).map(basename))),
    f("process.piped_to", STRS, PROCESS, |e, v| strs(v, pipe_peers(&e.process, false))),
    f("process.piped_to_name", STRS, PROCESS, |e, v| strs(v, pipe_peers(&e.process, false).map(basename))),
    // Where the executable came from.
    f("process.binary_age", NUM, PROCESS, |e, v| e.process.binary_age().and_then(|x| n(v, x))),
    f("process.binary_downloaded", BOOL, PROCESS, |e, v| b(v, e.process.binary_downloaded())),
    f("process.binary_writer", STR, PROCESS, |e, v| e.process.binary_writer().and_then(|x| s(v, x))),
    // Lineage: the parent as the contract writes it, and the ancestors nearest first.
    f("parent.pid", NUM, PROCESS, |e, v| e.parent.as_ref().and_then(|p| n(v, p.pid))),
    f("parent.binary", STR, PROCESS, |e, v| e.parent.as_ref().and_then(|p| s(v, &p.binary))),
    f("parent.name", STR, PROCESS, |e, v| e.parent.as_ref().and_then(|p| s(v, basename(&p.binary)))),
    f("parent.args", STRS, PROCESS, |e, v| e.parent.as_ref().and_then(|p| strs(v, p.args.iter().map(String::as_str)))),
    f("parent.args_encoded_blob", BOOL, PROCESS, |e, v| e.parent.as_ref().and_then(|p| b(v, derived::args_encoded_blob(&p.args)))),
    f("parent.script", STR, PROCESS, |e, v| e.parent.as_ref().and_then(|p| p.script.as_deref()).and_then(|x| s(v, x))),
    f("ancestors.pid", NUMS, PROCESS, |e, v| nums(v, e.ancestors.iter().map(|a| i64::from(a.pid)))),
    f("ancestors.binary", STRS, PROCESS, |e, v| strs(v, e.ancestors.iter().map(|a| &*a.binary))),
    f("ancestors.name", STRS, PROCESS, |e, v| strs(v, e.ancestors.iter().map(|a| basename(&a.binary)))),
    f("ancestors.script", STRS, PROCESS, |e, v| strs(v, e.ancestors.iter().filter_map(|a| a.script.as_deref()))),
    // file_* events.
    f("file.path", STR, FILE, |e, v| e.file().and_then(|x| s(v, &x.path))),
    f("file.name", STR, FILE, |e, v| e.file().and_then(|x| s(v, basename(&x.path)))),
    f("file.new_path", STR, RENAME, |e, v| e.file().and_then(|x| x.new_path.as_deref()).and_then(|x| s(v, x))),
    f("file.new_name", STR, RENAME, |e, v| e.file().and_then(|x| x.new_path.as_deref()).and_then(|x| s(v, basename(x)))),
    f("file.flags", NUM, FILE, |e, v| e.file().and_then(|x| n(v, x.flags))),
    f("file.access", STRS, FILE, |e, v| e.file().and_then(|x| strs(v, x.access.iter().map(String::as_str)))),
    f("file.mode", NUM, FILE, |e, v| e.file().and_then(|x| x.mode).and_then(|m| n(v, m))),
    f("file.mode.setuid", BOOL, FILE, |e, v| e.file().and_then(|x| x.mode).and_then(|m| b(v, m & 0o4000 != 0))),
    f("file.mode.setgid", BOOL, FILE, |e, v| e.file().and_then(|x| x.mode).and_then(|m| b(v, m & 0o2000 != 0))),
    f("file.uid", NUM, FILE, |e, v| e.file().and_then(|x| x.uid).and_then(|u| n(v, u))),
    f("file.gid", NUM, FILE, |e, v| e.file().and_then(|x| x.gid).and_then(|g| n(v, g))),
    f("file.directory", BOOL, OPEN, |e, v| e.file().and_then(|x| b(v, derived::directory_open(x.flags)))),
    f("file.mode.sticky", BOOL, FILE, |e, v| e.file().and_then(|x| x.mode).and_then(|m| b(v, m & 0o1000 != 0))),
    f("file.mode.other_write", BOOL, FILE, |e, v| e.file().and_then(|x| x.mode).and_then(|m| b(v, m & 0o002 != 0))),
    f("file.proc_other", BOOL, FILE, |e, v| derived::proc_other(e).and_then(|x| b(v, x))),
    f("file.own_program", BOOL, FILE, |e, v| derived::own_program(e).and_then(|x| b(v, x))),
    f("file.extension_added", BOOL, RENAME, |e, v| derived::extension_added(e).and_then(|x| b(v, x))),
    f("file.truncated", BOOL, FILE, |e, v| e.file().and_then(|x| b(v, x.truncated))),
    f("file.times_explicit", BOOL, UTIMES, |e, v| e.file().and_then(|x| x.times.as_ref()).and_then(|t| b(v, t.explicit()))),
    f("file.atime", NUM, UTIMES, |e, v| e.file().and_then(|x| x.times.as_ref()).and_then(|t| t.atime_sec).and_then(|x| n(v, x))),
    f("file.mtime", NUM, UTIMES, |e, v| e.file().and_then(|x| x.times.as_ref()).and_then(|t| t.mtime_sec).and_then(|x| n(v, x))),
    // net_* events.
    f("network.protocol", STR, NET, |e, v| e.network().and_then(|x| s(v, &x.protocol))),
    f("network.family", STR, NET, |e, v| e.network().and_then(|x| s(v, &x.family))),
    f("network.saddr", ADDR, NET, |e, v| e.network().and_then(|x| s(v, &x.saddr))),
    f("network.sport", NUM, NET, |e, v| e.network().and_then(|x| n(v, x.sport))),
    f("network.daddr", ADDR, NET, |e, v| e.network().and_then(|x| s(v, &x.daddr))),
    f("network.dport", NUM, NET, |e, v| e.network().and_then(|x| n(v, x.dport))),
    f("network.direction", STR, NET, |e, v| e.network().and_then(|x| s(v, &x.direction))),
    f("network.domain", STR, NET, |e, v| e.network().and_then(|x| x.domain.as_deref()).and_then(|d| s(v, d))),
    // dns events.
    f("dns.query", STR, DNS, |e, v| e.dns().and_then(|x| s(v, &x.query))),
    f("dns.qtype", STR, DNS, |e, v| e.dns().and_then(|x| s(v, &x.qtype))),
    f("dns.rcode", STR, DNS, |e, v| e.dns().and_then(|x| x.rcode.as_deref()).and_then(|r| s(v, r))),
    f("dns.length", NUM, DNS, |e, v| e.dns().and_then(|x| n(v, x.query.trim_end_matches('.').len() as i64))),
    f("dns.labels", NUM, DNS, |e, v| e.dns().and_then(|x| n(v, derived::label_count(&x.query)))),
    f("dns.longest_label", NUM, DNS, |e, v| e.dns().and_then(|x| n(v, derived::longest_label(&x.query)))),
    f("dns.parent_domain", STR, DNS, |e, v| e.dns().and_then(|x| s(v, derived::parent_domain(&x.query)))),
    f("dns.subdomain", STR, DNS, |e, v| e.dns().and_then(|x| s(v, derived::subdomain(&x.query)))),
    f("dns.subdomain_length", NUM, DNS, |e, v| e.dns().and_then(|x| n(v, derived::subdomain(&x.query).len() as i64))),
    f("dns.subdomain_entropy", NUM, DNS, |e, v| e.dns().and_then(|x| n(v, derived::subdomain_entropy(&x.query)))),
    f("dns.answers", STRS, DNS, |e, v| e.dns().and_then(|x| strs(v, x.answers.iter().map(String::as_str)))),
    // process_exit events.
    f("exit.code", NUM, EXIT, |e, v| e.exit().and_then(|x| x.code).and_then(|c| n(v, c))),
    f("exit.signal", NUM, EXIT, |e, v| e.exit().and_then(|x| x.signal).and_then(|c| n(v, c))),
    f("exit.core_dumped", BOOL, EXIT, |e, v| e.exit().and_then(|x| b(v, x.core_dumped))),
    // Kernel integrity.
    f("module.name", STR, MODULE, |e, v| e.module().and_then(|x| s(v, &x.name))),
    f("module.path", STR, MODULE, |e, v| e.module().and_then(|x| x.path.as_deref()).and_then(|p| s(v, p))),
    f("module.flags", NUM, MODULE, |e, v| e.module().and_then(|x| n(v, x.flags))),
    f("bpf.prog_type", STR, BPF, |e, v| e.bpf().and_then(|x| s(v, &x.prog_type))),
    f("bpf.prog_name", STR, BPF, |e, v| e.bpf().and_then(|x| s(v, &x.prog_name))),
    f("bpf.insn_count", NUM, BPF, |e, v| e.bpf().and_then(|x| n(v, x.insn_count))),
    f("ptrace.request", STR, PTRACE, |e, v| e.ptrace().and_then(|x| s(v, &x.request))),
    f("ptrace.target_pid", NUM, PTRACE, |e, v| e.ptrace().and_then(|x| n(v, x.target_pid))),
    f("ptrace.target_binary", STR, PTRACE, |e, v| e.ptrace().and_then(|x| s(v, &x.target_binary))),
    // cred_change events.
    f("cred.syscall", STR, CRED, |e, v| e.cred().and_then(|x| s(v, &x.syscall))),
    f("cred.caps_gained", STRS, CRED, |e, v| e.cred().and_then(|x| strs(v, x.caps_gained.iter().map(String::as_str)))),
    f("cred.caps_gained_permitted", STRS, CRED, |e, v| e.cred().and_then(|x| strs(v, x.new.cap_permitted.iter().filter(|c| !x.old.cap_permitted.contains(c)).map(String::as_str)))),
    f("cred.old.uid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.old.uid))),
    f("cred.old.euid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.old.euid))),
    f("cred.old.suid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.old.suid))),
    f("cred.old.fsuid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.old.fsuid))),
    f("cred.old.gid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.old.gid))),
    f("cred.old.egid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.old.egid))),
    f("cred.old.sgid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.old.sgid))),
    f("cred.old.fsgid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.old.fsgid))),
    f("cred.old.cap_effective", STRS, CRED, |e, v| e.cred().and_then(|x| strs(v, x.old.cap_effective.iter().map(String::as_str)))),
    f("cred.old.cap_permitted", STRS, CRED, |e, v| e.cred().and_then(|x| strs(v, x.old.cap_permitted.iter().map(String::as_str)))),
    f("cred.new.uid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.new.uid))),
    f("cred.new.euid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.new.euid))),
    f("cred.new.suid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.new.suid))),
    f("cred.new.fsuid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.new.fsuid))),
    f("cred.new.gid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.new.gid))),
    f("cred.new.egid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.new.egid))),
    f("cred.new.sgid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.new.sgid))),
    f("cred.new.fsgid", NUM, CRED, |e, v| e.cred().and_then(|x| n(v, x.new.fsgid))),
    f("cred.new.cap_effective", STRS, CRED, |e, v| e.cred().and_then(|x| strs(v, x.new.cap_effective.iter().map(String::as_str)))),
    f("cred.new.cap_permitted", STRS, CRED, |e, v| e.cred().and_then(|x| strs(v, x.new.cap_permitted.iter().map(String::as_str)))),
    // mount / umount events.
    f("mount.source", STR, MOUNT, |e, v| e.mount().and_then(|x| s(v, &x.source))),
    f("mount.target", STR, MOUNT, |e, v| e.mount().and_then(|x| s(v, &x.target))),
    f("mount.fstype", STR, MOUNT, |e, v| e.mount().and_then(|x| s(v, &x.fstype))),
    f("mount.flags", NUM, MOUNT, |e, v| e.mount().and_then(|x| n64(v, x.flags))),
    f("namespace.syscall", STR, NS, |e, v| e.namespace().and_then(|x| s(v, &x.syscall))),
    f("namespace.namespaces", STRS, NS, |e, v| e.namespace().and_then(|x| strs(v, x.namespaces.iter().map(String::as_str)))),
    f("namespace.host_namespaces", STRS, NS, |e, v| e.namespace().and_then(|x| strs(v, x.host_namespaces.iter().map(String::as_str)))),
    f("namespace.into_host", BOOL, NS, |e, v| e.namespace().and_then(|x| b(v, x.into_host))),
    f("namespace.caller_pid_level", NUM, NS, |e, v| e.namespace().and_then(|x| x.caller_pid_level).and_then(|l| n(v, l))),
    f("memfd.name", STR, MEMFD, |e, v| e.memfd().and_then(|x| s(v, &x.name))),
    f("memfd.flags", NUM, MEMFD, |e, v| e.memfd().and_then(|x| n(v, x.flags))),
    f("socket.family", STR, SOCKET, |e, v| e.socket().and_then(|x| s(v, &x.family))),
    f("socket.type", STR, SOCKET, |e, v| e.socket().and_then(|x| s(v, &x.sock_type))),
    f("socket.protocol", STR, SOCKET, |e, v| e.socket().and_then(|x| s(v, &x.protocol))),
    f("signal.signal", NUM, SIGNAL, |e, v| e.signal().and_then(|x| n(v, x.signal))),
    f("signal.target_pid", NUM, SIGNAL, |e, v| e.signal().and_then(|x| n(v, x.target_pid))),
    f("signal.target_binary", STR, SIGNAL, |e, v| e.signal().and_then(|x| s(v, &x.target_binary))),
    f("lost.ringbuf_full", NUM, LOST, |e, v| e.lost().and_then(|x| n64(v, x.ringbuf_full))),
    f("lost.pipeline_full", NUM, LOST, |e, v| e.lost().and_then(|x| n64(v, x.pipeline_full))),
    f("lost.other", NUM, LOST, |e, v| e.lost().and_then(|x| n64(v, x.other))),
];

/// The table index of the field named `name`.
pub fn lookup(name: &str) -> Option<usize> {
    FIELDS.iter().position(|f| f.name == name)
}

/// Reads `process.env[name]`: present when the agent kept that variable.
pub fn get_env<'e>(e: &'e Event, name: &str, v: V<'_, 'e>) -> Option<bool> {
    e.process.env_var(name).and_then(|x| s(v, x))
}

/// Whose labels a `*.labels.KEY` field reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LabelOf {
    /// `container.labels.KEY`: the container's labels as its runtime reports them.
    Container,
    /// `k8s.labels.KEY`: the pod's labels.
    Pod,
}

impl LabelOf {
    pub fn prefix(self) -> &'static str {
        match self {
            LabelOf::Container => "container.labels.",
            LabelOf::Pod => "k8s.labels.",
        }
    }
}

/// `container.labels.KEY` / `k8s.labels.KEY` split into whose labels and the key.
pub fn label_field(name: &str) -> Option<(LabelOf, &str)> {
    [LabelOf::Container, LabelOf::Pod]
        .into_iter()
        .find_map(|of| {
            name.strip_prefix(of.prefix())
                .filter(|k| !k.is_empty())
                .map(|k| (of, k))
        })
}

/// Reads a label of the event's container or pod: present when it has that label.
pub fn get_label<'e>(e: &'e Event, of: LabelOf, key: &str, v: V<'_, 'e>) -> Option<bool> {
    let labels = match of {
        LabelOf::Container => &e.container.as_deref()?.labels,
        LabelOf::Pod => &e.k8s.as_deref()?.labels,
    };
    labels.get(key).and_then(|x| s(v, x))
}

/// Every name a suggestion may offer (the table plus the env family).
pub fn all_names() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().map(|f| f.name).chain([
        "process.env.LD_PRELOAD",
        "container.labels.app",
        "k8s.labels.app",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_event::{FileInfo, Timestamp};
    use std::collections::HashSet;
    use std::sync::Arc;

    #[test]
    fn names_are_unique_and_dotted_lower_case() {
        let mut seen = HashSet::new();
        for field in FIELDS {
            assert!(seen.insert(field.name), "duplicate field {}", field.name);
            assert!(
                field
                    .name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '_'),
                "{}",
                field.name
            );
            assert!(!field.kinds.is_empty(), "{} exists for no kind", field.name);
        }
    }

    #[test]
    fn getters_read_values_and_report_absence() {
        let process = Arc::new(Process {
            binary: "/usr/bin/cat".into(),
            comm: "cat".into(),
            args: vec!["cat".into(), "/etc/shadow".into()].into(),
            ..Process::default()
        });
        let mut ev = Event::new(Timestamp(0), K::FileOpen, "n".into(), process);
        ev.set_file(FileInfo {
            path: "/etc/shadow".into(),
            access: vec!["read".into()],
            mode: Some(0o4755),
            ..FileInfo::default()
        });
        let read = |name: &str| {
            let field = &FIELDS[lookup(name).unwrap()];
            let mut values = Vec::new();
            let present = (field.get)(&ev, &mut |v| {
                values.push(format!("{v:?}"));
                false
            });
            (present, values)
        };
        assert_eq!(
            read("process.name"),
            (Some(false), vec!["Str(\"cat\")".to_string()])
        );
        assert_eq!(
            read("file.mode.setuid"),
            (Some(false), vec!["Bool(true)".to_string()])
        );
        assert_eq!(read("process.args").1.len(), 2);
        assert_eq!(read("network.dport"), (None, vec![]));
        assert_eq!(read("ancestors.binary"), (None, vec![]));
        assert_eq!(
            read("process.comm_mismatch").1,
            vec!["Bool(false)".to_string()]
        );
    }

    #[test]
    fn comm_mismatch_allows_truncation_and_scripts() {
        let p = |binary: &str, comm: &str, script: Option<&str>| Process {
            binary: binary.into(),
            comm: comm.into(),
            script: script.map(Arc::from),
            ..Process::default()
        };
        assert!(!comm_mismatch(&p(
            "/usr/bin/unattended-upgrade-shutdown",
            "unattended-upgr",
            None
        )));
        assert!(!comm_mismatch(&p(
            "/usr/bin/bash",
            "deploy.sh",
            Some("/opt/deploy.sh")
        )));
        assert!(comm_mismatch(&p("/tmp/miner", "kworker/0:1", None)));
    }
}
