//! The records' flag words and small enums, decoded into typed values: user space names a flag
//! (`ExecFlag::Script`), never the contract's number (`SHRIKE_EXEC_SCRIPT`), so the numbers stay
//! in this crate. Each set keeps the whole word (bits this build does not know included), so a
//! record re-encoded for a test is the record that was decoded.

use crate::abi::file::{shrike_file_info, shrike_sys};
use crate::abi::net::{shrike_net_dns_flags, shrike_net_flags};
use crate::abi::{shrike_action, shrike_bpf_object, shrike_exec_flags, shrike_tamper_kind};

/// A set of flags of one record field, and the enum that names its flags.
macro_rules! flag_set {
    (
        $(#[$set_doc:meta])* $set:ident,
        $(#[$flag_doc:meta])* $flag:ident {
            $($(#[$doc:meta])* $name:ident = $bit:expr,)*
        }
    ) => {
        $(#[$flag_doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $flag {
            $($(#[$doc])* $name,)*
        }

        impl $flag {
            /// Every flag, in bit order.
            pub const ALL: &'static [$flag] = &[$($flag::$name,)*];

            const fn bit(self) -> u32 {
                match self {
                    $($flag::$name => $bit,)*
                }
            }
        }

        $(#[$set_doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $set(u32);

        impl $set {
            /// The set of the word a record carries.
            pub(crate) const fn from_bits(bits: u32) -> Self {
                $set(bits)
            }

            /// The word, as the kernel writes it (for the `testing` encoders).
            pub(crate) const fn bits(self) -> u32 {
                self.0
            }

            pub fn has(self, flag: $flag) -> bool {
                self.0 & flag.bit() != 0
            }

            /// This set with `flag` added.
            pub fn with(self, flag: $flag) -> Self {
                $set(self.0 | flag.bit())
            }
        }

        impl From<$flag> for $set {
            fn from(flag: $flag) -> Self {
                $set(flag.bit())
            }
        }

        impl FromIterator<$flag> for $set {
            fn from_iter<I: IntoIterator<Item = $flag>>(flags: I) -> Self {
                flags.into_iter().fold($set::default(), $set::with)
            }
        }
    };
}

flag_set! {
    /// The flags of an exec record (`shrike_exec.flags`).
    ExecFlags,
    /// One flag of [`ExecFlags`].
    ExecFlag {
        ArgsTruncated = shrike_exec_flags::SHRIKE_EXEC_ARGS_TRUNCATED.0,
        EnvTruncated = shrike_exec_flags::SHRIKE_EXEC_ENV_TRUNCATED.0,
        BinaryTruncated = shrike_exec_flags::SHRIKE_EXEC_BINARY_TRUNCATED.0,
        CwdTruncated = shrike_exec_flags::SHRIKE_EXEC_CWD_TRUNCATED.0,
        FilenameTruncated = shrike_exec_flags::SHRIKE_EXEC_FILENAME_TRUNCATED.0,
        /// The executed file is a memfd.
        Memfd = shrike_exec_flags::SHRIKE_EXEC_MEMFD.0,
        /// The executed file has no links.
        Deleted = shrike_exec_flags::SHRIKE_EXEC_DELETED.0,
        /// The filename was a `#!` script run by the binary.
        Script = shrike_exec_flags::SHRIKE_EXEC_SCRIPT.0,
        /// Exec without fork: the parent is the replaced image.
        ParentIsPrev = shrike_exec_flags::SHRIKE_EXEC_PARENT_IS_PREV.0,
        /// argv could not be read.
        ArgsFault = shrike_exec_flags::SHRIKE_EXEC_ARGS_FAULT.0,
        /// No lineage entry existed for the process.
        LineageUnknown = shrike_exec_flags::SHRIKE_EXEC_LINEAGE_UNKNOWN.0,
        /// Stopped until user space places its cgroup (the rule is in `held`).
        Held = shrike_exec_flags::SHRIKE_EXEC_HELD.0,
        /// An image above this one listened on a TCP port: a network server is in its lineage.
        UnderServer = shrike_exec_flags::SHRIKE_EXEC_UNDER_SERVER.0,
        NetWritten = shrike_exec_flags::SHRIKE_EXEC_NET_WRITTEN.0,
        CtimeUnknown = shrike_exec_flags::SHRIKE_EXEC_CTIME_UNKNOWN.0,
    }
}

flag_set! {
    /// The flags of a socket record (`shrike_net.flags`).
    NetFlags,
    /// One flag of [`NetFlags`].
    NetFlag {
        /// A deny rule refused the action (result -EPERM).
        Denied = shrike_net_flags::SHRIKE_NET_DENIED.0,
        /// An audit rule matched: reported, not refused.
        Audit = shrike_net_flags::SHRIKE_NET_AUDIT.0,
        /// No process was recorded for the socket.
        OwnerUnknown = shrike_net_flags::SHRIKE_NET_OWNER_UNKNOWN.0,
        /// The peer initiated (accept, inbound drop).
        Ingress = shrike_net_flags::SHRIKE_NET_INGRESS.0,
        /// An inbound packet dropped at tc: no socket.
        Tc = shrike_net_flags::SHRIKE_NET_TC.0,
    }
}

flag_set! {
    /// The flags of a DNS record (`shrike_net_dns.flags`).
    DnsFlags,
    /// One flag of [`DnsFlags`].
    DnsFlag {
        /// Received (a response), else sent (a query).
        Ingress = shrike_net_dns_flags::SHRIKE_NET_DNS_INGRESS.0,
        /// The message was longer than the record carries.
        Truncated = shrike_net_dns_flags::SHRIKE_NET_DNS_TRUNCATED.0,
        /// No process was recorded for the socket.
        OwnerUnknown = shrike_net_flags::SHRIKE_NET_OWNER_UNKNOWN.0,
    }
}

flag_set! {
    /// How the paths of a file, module, credential or mount record were found
    /// (`shrike_file_info`).
    FileInfo,
    /// One flag of [`FileInfo`].
    FileInfoFlag {
        /// The path was cut at the path limit or the depth limit.
        PathTruncated = shrike_file_info::SHRIKE_FILE_PATH_TRUNCATED.0,
        /// The new path (or mount target) was cut.
        NewPathTruncated = shrike_file_info::SHRIKE_FILE_NEW_PATH_TRUNCATED.0,
        /// The path was built from the kernel's own file or dentry.
        Canonical = shrike_file_info::SHRIKE_FILE_CANONICAL.0,
        /// The new path likewise.
        NewCanonical = shrike_file_info::SHRIKE_FILE_NEW_CANONICAL.0,
        /// A string the filter cannot trust ("..", "//", "/./").
        Unresolved = shrike_file_info::SHRIKE_FILE_UNRESOLVED.0,
        /// A link record for a symbolic link: the path is its text.
        Symlink = shrike_file_info::SHRIKE_FILE_SYMLINK.0,
        /// The paths came from an LSM hook.
        Lsm = shrike_file_info::SHRIKE_FILE_LSM.0,
        /// The path is relative: its base could not be resolved.
        Relative = shrike_file_info::SHRIKE_FILE_RELATIVE.0,
        /// Passed because a chmod set setuid or setgid.
        SetidRule = shrike_file_info::SHRIKE_FILE_SETID_RULE.0,
    }
}

/// What the kernel did to an operation a rule matched (`SHRIKE_ACTION_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The operation failed with EPERM.
    Deny,
    /// The process got SIGKILL.
    Kill,
}

impl Action {
    /// The record's action word; `None` when no rule acted. An action this build does not know
    /// is a refusal.
    pub(crate) fn from_raw(action: u16) -> Option<Action> {
        match shrike_action(u32::from(action)) {
            shrike_action::SHRIKE_ACTION_NONE => None,
            shrike_action::SHRIKE_ACTION_KILL => Some(Action::Kill),
            _ => Some(Action::Deny),
        }
    }

    /// The action word, as the kernel writes it.
    pub(crate) fn raw(self) -> u16 {
        match self {
            Action::Deny => shrike_action::SHRIKE_ACTION_DENY.0 as u16,
            Action::Kill => shrike_action::SHRIKE_ACTION_KILL.0 as u16,
        }
    }
}

/// One of the agent's BPF objects another process tried to take hold of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BpfObject {
    Prog,
    Map,
    Link,
}

impl BpfObject {
    /// `prog`, `map` or `link`.
    pub fn name(self) -> &'static str {
        match self {
            BpfObject::Prog => "prog",
            BpfObject::Map => "map",
            BpfObject::Link => "link",
        }
    }

    fn from_raw(raw: i32) -> BpfObject {
        match shrike_bpf_object(raw as u32) {
            shrike_bpf_object::SHRIKE_OBJ_PROG => BpfObject::Prog,
            shrike_bpf_object::SHRIKE_OBJ_MAP => BpfObject::Map,
            _ => BpfObject::Link,
        }
    }

    #[cfg(test)]
    fn raw(self) -> i32 {
        let object = match self {
            BpfObject::Prog => shrike_bpf_object::SHRIKE_OBJ_PROG,
            BpfObject::Map => shrike_bpf_object::SHRIKE_OBJ_MAP,
            BpfObject::Link => shrike_bpf_object::SHRIKE_OBJ_LINK,
        };
        object.0 as i32
    }
}

/// What a ptrace record's caller did to its target: a ptrace(2) request (its number), or a
/// read or write of the target's memory with process_vm_readv(2)/process_vm_writev(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PtraceRequest {
    Ptrace(i64),
    ProcessVmRead,
    ProcessVmWrite,
}

impl PtraceRequest {
    /// From the record's `syscall` (handler id) and `request` words.
    pub(crate) fn from_raw(syscall: u32, request: i64) -> PtraceRequest {
        match shrike_sys(syscall) {
            shrike_sys::SHRIKE_SYS_PROCESS_VM_READV => PtraceRequest::ProcessVmRead,
            shrike_sys::SHRIKE_SYS_PROCESS_VM_WRITEV => PtraceRequest::ProcessVmWrite,
            _ => PtraceRequest::Ptrace(request),
        }
    }

    /// The `syscall` and `request` words, as the kernel writes them.
    #[cfg(test)]
    fn raw(self) -> (u32, i64) {
        match self {
            PtraceRequest::Ptrace(request) => (shrike_sys::SHRIKE_SYS_PTRACE.0, request),
            PtraceRequest::ProcessVmRead => (shrike_sys::SHRIKE_SYS_PROCESS_VM_READV.0, 0),
            PtraceRequest::ProcessVmWrite => (shrike_sys::SHRIKE_SYS_PROCESS_VM_WRITEV.0, 0),
        }
    }

    /// The name events carry (`ptrace.request`): `PTRACE_ATTACH`, ... (`PTRACE_<n>` for a
    /// request this build does not name), `PROCESS_VM_READV` or `PROCESS_VM_WRITEV`.
    pub fn name(self) -> String {
        let request = match self {
            PtraceRequest::ProcessVmRead => return "PROCESS_VM_READV".into(),
            PtraceRequest::ProcessVmWrite => return "PROCESS_VM_WRITEV".into(),
            PtraceRequest::Ptrace(request) => request,
        };
        let name = match request {
            0 => "PTRACE_TRACEME",
            1 => "PTRACE_PEEKTEXT",
            2 => "PTRACE_PEEKDATA",
            3 => "PTRACE_PEEKUSER",
            4 => "PTRACE_POKETEXT",
            5 => "PTRACE_POKEDATA",
            6 => "PTRACE_POKEUSER",
            7 => "PTRACE_CONT",
            8 => "PTRACE_KILL",
            9 => "PTRACE_SINGLESTEP",
            12 => "PTRACE_GETREGS",
            13 => "PTRACE_SETREGS",
            14 => "PTRACE_GETFPREGS",
            15 => "PTRACE_SETFPREGS",
            16 => "PTRACE_ATTACH",
            17 => "PTRACE_DETACH",
            0x4200 => "PTRACE_SETOPTIONS",
            0x4203 => "PTRACE_SETSIGINFO",
            0x4205 => "PTRACE_SETREGSET",
            0x4206 => "PTRACE_SEIZE",
            _ => return format!("PTRACE_{request}"),
        };
        name.to_string()
    }
}

/// What self-protection refused (`SHRIKE_TAMPER_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperKind {
    /// A signal to the agent (also what a kind this build does not know is taken for).
    Signal,
    /// ptrace of the agent.
    Ptrace,
    /// Removing one of the agent's pins under bpffs.
    Unpin,
    /// Taking hold of one of the agent's BPF objects.
    Bpf(BpfObject),
}

impl TamperKind {
    /// From the record's kind word and its `signal` field (which names the object for `Bpf`).
    pub(crate) fn from_raw(kind: u32, signal: i32) -> TamperKind {
        match shrike_tamper_kind(kind) {
            shrike_tamper_kind::SHRIKE_TAMPER_PTRACE => TamperKind::Ptrace,
            shrike_tamper_kind::SHRIKE_TAMPER_UNPIN => TamperKind::Unpin,
            shrike_tamper_kind::SHRIKE_TAMPER_BPF => TamperKind::Bpf(BpfObject::from_raw(signal)),
            _ => TamperKind::Signal,
        }
    }

    /// The kind word, and the `signal` field's value for `Bpf` (else `signal` as given).
    #[cfg(test)]
    fn raw(self, signal: i32) -> (u32, i32) {
        match self {
            TamperKind::Signal => (shrike_tamper_kind::SHRIKE_TAMPER_SIGNAL.0, signal),
            TamperKind::Ptrace => (shrike_tamper_kind::SHRIKE_TAMPER_PTRACE.0, signal),
            TamperKind::Unpin => (shrike_tamper_kind::SHRIKE_TAMPER_UNPIN.0, signal),
            TamperKind::Bpf(object) => (shrike_tamper_kind::SHRIKE_TAMPER_BPF.0, object.raw()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_is_one_distinct_bit_of_its_word() {
        fn distinct(bits: &[u32]) {
            let mut seen = 0u32;
            for &bit in bits {
                assert_eq!(bit.count_ones(), 1, "{bit:#x}");
                assert_eq!(seen & bit, 0, "{bit:#x} twice");
                seen |= bit;
            }
        }
        distinct(&ExecFlag::ALL.iter().map(|f| f.bit()).collect::<Vec<_>>());
        distinct(&NetFlag::ALL.iter().map(|f| f.bit()).collect::<Vec<_>>());
        distinct(&DnsFlag::ALL.iter().map(|f| f.bit()).collect::<Vec<_>>());
        distinct(
            &FileInfoFlag::ALL
                .iter()
                .map(|f| f.bit())
                .collect::<Vec<_>>(),
        );
    }

    #[test]
    fn a_set_answers_for_its_flags_and_keeps_unknown_bits() {
        let set = ExecFlags::from_bits(shrike_exec_flags::SHRIKE_EXEC_SCRIPT.0 | 1 << 31);
        assert!(set.has(ExecFlag::Script));
        assert!(!set.has(ExecFlag::Memfd));
        assert_eq!(set.bits() & 1 << 31, 1 << 31);
        let built: NetFlags = [NetFlag::Denied, NetFlag::Ingress].into_iter().collect();
        assert_eq!(
            built.bits(),
            shrike_net_flags::SHRIKE_NET_DENIED.0 | shrike_net_flags::SHRIKE_NET_INGRESS.0
        );
    }

    #[test]
    fn actions_and_tamper_kinds_round_trip() {
        assert_eq!(Action::from_raw(0), None);
        for a in [Action::Deny, Action::Kill] {
            assert_eq!(Action::from_raw(a.raw()), Some(a));
        }
        assert_eq!(Action::from_raw(9), Some(Action::Deny));
        for kind in [
            TamperKind::Signal,
            TamperKind::Ptrace,
            TamperKind::Unpin,
            TamperKind::Bpf(BpfObject::Prog),
            TamperKind::Bpf(BpfObject::Map),
            TamperKind::Bpf(BpfObject::Link),
        ] {
            let (raw, signal) = kind.raw(15);
            assert_eq!(TamperKind::from_raw(raw, signal), kind);
        }
        assert_eq!(TamperKind::from_raw(99, 0), TamperKind::Signal);
    }

    #[test]
    fn ptrace_requests_round_trip_and_are_named() {
        for r in [
            PtraceRequest::Ptrace(16),
            PtraceRequest::Ptrace(0x4206),
            PtraceRequest::ProcessVmRead,
            PtraceRequest::ProcessVmWrite,
        ] {
            let (syscall, request) = r.raw();
            assert_eq!(PtraceRequest::from_raw(syscall, request), r);
        }
        assert_eq!(PtraceRequest::Ptrace(16).name(), "PTRACE_ATTACH");
        assert_eq!(PtraceRequest::Ptrace(99).name(), "PTRACE_99");
        assert_eq!(PtraceRequest::ProcessVmRead.name(), "PROCESS_VM_READV");
        assert_eq!(PtraceRequest::ProcessVmWrite.name(), "PROCESS_VM_WRITEV");
    }
}
