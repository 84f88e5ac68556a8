//! File, privilege and kernel-integrity records (`bpf/abi/file.h`): file operations, module and
//! BPF loads, ptrace, credential changes, mounts, namespaces, memfds and signals.

use super::flags::{FileInfo, PtraceRequest};
use super::{c_chars, copy, kernel_header, DecodeError, Enforcement, Header};
use crate::abi::file::{
    shrike_bpf_event, shrike_cred_event, shrike_creds, shrike_file_event, shrike_file_times,
    shrike_memfd_event, shrike_module_event, shrike_mount_event, shrike_ns_event,
    shrike_ptrace_event, shrike_signal_event, shrike_socket_event,
};
use crate::abi::shrike_record_kind;

/// Splits `data` into pieces of the given lengths, or says by how much they overrun it.
fn pieces<const N: usize>(data: &[u8], lens: [usize; N]) -> Result<[Vec<u8>; N], DecodeError> {
    let need: usize = lens.iter().sum();
    if need > data.len() {
        return Err(DecodeError::DataOverrun {
            need,
            have: data.len(),
        });
    }
    let mut rest = data;
    Ok(lens.map(|len| {
        let (piece, tail) = rest.split_at(len);
        rest = tail;
        piece.to_vec()
    }))
}

/// Which file operation a [`FileRecord`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileOp {
    Open,
    Unlink,
    Rename,
    Chmod,
    Chown,
    Link,
    /// Set-times calls (utimensat, futimens, utimes, futimesat, utime).
    Utimes,
}

/// What a set-times call asked for (`SHRIKE_TIMES_*`, [`FileOp::Utimes`] only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileTimes {
    /// `SHRIKE_TIMES_*` bits.
    pub flags: u16,
    /// The explicit atime, seconds since the epoch (with `SHRIKE_TIMES_ATIME_EXPLICIT`).
    pub atime: i64,
    /// The explicit mtime, seconds since the epoch (with `SHRIKE_TIMES_MTIME_EXPLICIT`).
    pub mtime: i64,
}

/// How a set-times call sets one of the times.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeSet {
    /// To this value, seconds since the epoch: what `touch -r`, `touch -d` and timestomping do.
    Explicit(i64),
    /// To the current time (NULL times, UTIME_NOW): what plain `touch` does.
    Now,
    /// Left as it is (UTIME_OMIT).
    Unchanged,
    /// The caller's times could not be read.
    Unknown,
}

impl FileTimes {
    fn set(self, explicit: u32, now: u32, value: i64) -> TimeSet {
        let f = u32::from(self.flags);
        if f & shrike_file_times::SHRIKE_TIMES_UNREAD.0 != 0 {
            TimeSet::Unknown
        } else if f & explicit != 0 {
            TimeSet::Explicit(value)
        } else if f & now != 0 {
            TimeSet::Now
        } else {
            TimeSet::Unchanged
        }
    }

    /// What the call does to the access time.
    pub fn atime(self) -> TimeSet {
        self.set(
            shrike_file_times::SHRIKE_TIMES_ATIME_EXPLICIT.0,
            shrike_file_times::SHRIKE_TIMES_ATIME_NOW.0,
            self.atime,
        )
    }

    /// What the call does to the modification time.
    pub fn mtime(self) -> TimeSet {
        self.set(
            shrike_file_times::SHRIKE_TIMES_MTIME_EXPLICIT.0,
            shrike_file_times::SHRIKE_TIMES_MTIME_NOW.0,
            self.mtime,
        )
    }
}

/// A file operation on a watched path (`SHRIKE_REC_FILE_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub header: Header,
    pub op: FileOp,
    pub result: i64,
    pub flags: u32,
    /// `SHRIKE_ACCESS_*` bits (opens).
    pub access: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// `SHRIKE_FILE_*` bits.
    pub info: FileInfo,
    /// `SHRIKE_SYS_*` handler id.
    pub syscall: u16,
    pub path: Vec<u8>,
    pub new_path: Vec<u8>,
    /// The deny/kill rule that refused the operation or killed the process, if one did.
    pub enforced: Option<Enforcement>,
    /// Set-times calls: the times asked for (default elsewhere).
    pub times: FileTimes,
}

/// `init_module` / `finit_module` (`SHRIKE_REC_MODULE_LOAD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleRecord {
    pub header: Header,
    pub result: i64,
    pub flags: u32,
    pub info: FileInfo,
    pub fd: i32,
    pub syscall: u16,
    /// The file's path (finit_module), empty otherwise.
    pub path: Vec<u8>,
    /// The rule that refused the load or killed the process, if one did.
    pub enforced: Option<Enforcement>,
}

/// A BPF program load (`SHRIKE_REC_BPF_LOAD`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BpfLoadRecord {
    pub header: Header,
    pub result: i64,
    pub prog_type: u32,
    pub insn_cnt: u32,
    pub prog_name: Vec<u8>,
    /// The rule that refused the load or killed the process, if one did.
    pub enforced: Option<Enforcement>,
}

/// A ptrace request, or a process_vm_readv/writev call (`SHRIKE_REC_PTRACE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PtraceRecord {
    pub header: Header,
    pub result: i64,
    /// What the caller did to the target.
    pub request: PtraceRequest,
    pub target_pid: u32,
    /// 0 when the kernel had no lineage entry.
    pub target_exec_id: u64,
    /// The rule that refused the request or killed the process, if one did.
    pub enforced: Option<Enforcement>,
}

/// Credentials as the kernel reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CredIds {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
    pub fsuid: u32,
    pub gid: u32,
    pub egid: u32,
    pub sgid: u32,
    pub fsgid: u32,
    pub cap_effective: u64,
    pub cap_permitted: u64,
}

impl From<&shrike_creds> for CredIds {
    fn from(c: &shrike_creds) -> Self {
        CredIds {
            uid: c.uid,
            euid: c.euid,
            suid: c.suid,
            fsuid: c.fsuid,
            gid: c.gid,
            egid: c.egid,
            sgid: c.sgid,
            fsgid: c.fsgid,
            cap_effective: c.cap_effective,
            cap_permitted: c.cap_permitted,
        }
    }
}

/// A credential change or a failed attempt (`SHRIKE_REC_CRED_CHANGE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredRecord {
    pub header: Header,
    pub result: i64,
    pub syscall: u16,
    pub old: CredIds,
    pub new: CredIds,
    pub info: FileInfo,
}

/// A mount or umount (`SHRIKE_REC_MOUNT` / `SHRIKE_REC_UMOUNT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountRecord {
    pub header: Header,
    pub umount: bool,
    pub result: i64,
    pub flags: u64,
    pub info: FileInfo,
    pub syscall: u16,
    pub source: Vec<u8>,
    pub target: Vec<u8>,
    pub fstype: Vec<u8>,
}

/// setns / unshare / clone creating namespaces (`SHRIKE_REC_NAMESPACE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamespaceRecord {
    pub header: Header,
    pub result: i64,
    /// `CLONE_NEW*` bits.
    pub ns_flags: u64,
    pub flags: u64,
    pub syscall: u16,
    /// A setns that succeeded: how deep the caller's own pid namespace is (0 = the initial
    /// one), and the inode numbers of the namespaces it is in after the call, by
    /// [`NS_KINDS`] (0 where unknown, and on every other call).
    pub pid_level: u32,
    pub inum: [u32; NS_KINDS.len()],
}

impl NamespaceRecord {
    /// A setns that succeeded: the one call whose record carries `pid_level` and `inum`.
    pub fn entered(&self) -> bool {
        u32::from(self.syscall) == crate::abi::file::shrike_sys::SHRIKE_SYS_SETNS.0
            && self.result == 0
    }
}

/// The namespace kinds of [`NamespaceRecord::inum`], in order, as `/proc/PID/ns/` names them
/// (`pid`: the one the caller's children get, `pid_for_children` there).
pub const NS_KINDS: [&str; 8] = ["mnt", "uts", "ipc", "user", "pid", "net", "cgroup", "time"];

// The order above is the kernel's (`enum shrike_ns_index` in bpf/abi/file.h).
const _: () = {
    use crate::abi::file::shrike_ns_index as I;
    assert!(I::SHRIKE_NS_KINDS.0 as usize == NS_KINDS.len());
    assert!(I::SHRIKE_NS_MNT.0 == 0 && I::SHRIKE_NS_UTS.0 == 1 && I::SHRIKE_NS_IPC.0 == 2);
    assert!(I::SHRIKE_NS_USER.0 == 3 && I::SHRIKE_NS_PID.0 == 4 && I::SHRIKE_NS_NET.0 == 5);
    assert!(I::SHRIKE_NS_CGROUP.0 == 6 && I::SHRIKE_NS_TIME.0 == 7);
};

/// memfd_create (`SHRIKE_REC_MEMFD_CREATE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemfdRecord {
    pub header: Header,
    pub result: i64,
    pub flags: u32,
    pub name: Vec<u8>,
}

/// A netfilter netlink socket created (`SHRIKE_REC_SOCKET_CREATE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketRecord {
    pub header: Header,
    /// The fd, or a negative errno.
    pub result: i64,
    /// AF_* (AF_NETLINK is 16).
    pub family: u16,
    /// SOCK_* (SOCK_RAW is 3).
    pub sock_type: u16,
    /// For AF_NETLINK: NETLINK_* (NETLINK_NETFILTER is 12).
    pub protocol: u16,
}

/// A signal to another process (`SHRIKE_REC_SIGNAL`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalRecord {
    pub header: Header,
    pub signal: i32,
    pub target_pid: u32,
    pub target_tid: u32,
    pub target_exec_id: u64,
    pub si_code: i32,
    /// The tracepoint's delivery result (0 delivered, 1 ignored, 2 already pending,
    /// 3 queue overflow, 4 info lost).
    pub delivery: i32,
}

pub(super) fn decode_file(
    header: Header,
    bytes: &[u8],
    kind: shrike_record_kind,
) -> Result<FileRecord, DecodeError> {
    let op = match kind {
        shrike_record_kind::SHRIKE_REC_FILE_OPEN => FileOp::Open,
        shrike_record_kind::SHRIKE_REC_FILE_UNLINK => FileOp::Unlink,
        shrike_record_kind::SHRIKE_REC_FILE_RENAME => FileOp::Rename,
        shrike_record_kind::SHRIKE_REC_FILE_CHMOD => FileOp::Chmod,
        shrike_record_kind::SHRIKE_REC_FILE_CHOWN => FileOp::Chown,
        shrike_record_kind::SHRIKE_REC_FILE_UTIMES => FileOp::Utimes,
        _ => FileOp::Link,
    };
    let e: shrike_file_event = copy(bytes, "file")?;
    let data = &bytes[std::mem::size_of::<shrike_file_event>()..];
    let [path, new_path] = pieces(data, [usize::from(e.path_len), usize::from(e.new_path_len)])?;
    Ok(FileRecord {
        header,
        op,
        result: e.result,
        flags: e.flags,
        access: e.access,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        info: FileInfo::from_bits(e.info),
        syscall: e.syscall,
        path,
        new_path,
        enforced: Enforcement::from_raw(e.enforced_rule, e.enforced_action),
        times: FileTimes {
            flags: e.times,
            atime: e.atime,
            mtime: e.mtime,
        },
    })
}

pub(super) fn decode_module(header: Header, bytes: &[u8]) -> Result<ModuleRecord, DecodeError> {
    let m: shrike_module_event = copy(bytes, "module")?;
    let data = &bytes[std::mem::size_of::<shrike_module_event>()..];
    let [path] = pieces(data, [usize::from(m.path_len)])?;
    Ok(ModuleRecord {
        header,
        result: m.result,
        flags: m.flags,
        info: FileInfo::from_bits(m.info),
        fd: m.fd,
        syscall: m.syscall,
        path,
        enforced: Enforcement::from_raw(m.enforced_rule, m.enforced_action),
    })
}

pub(super) fn decode_bpf(header: Header, bytes: &[u8]) -> Result<BpfLoadRecord, DecodeError> {
    let b: shrike_bpf_event = copy(bytes, "bpf")?;
    Ok(BpfLoadRecord {
        header,
        result: b.result,
        prog_type: b.prog_type,
        insn_cnt: b.insn_cnt,
        prog_name: c_chars(&b.prog_name),
        enforced: Enforcement::from_raw(b.enforced_rule, b.enforced_action),
    })
}

pub(super) fn decode_ptrace(header: Header, bytes: &[u8]) -> Result<PtraceRecord, DecodeError> {
    let p: shrike_ptrace_event = copy(bytes, "ptrace")?;
    Ok(PtraceRecord {
        header,
        result: p.result,
        request: PtraceRequest::from_raw(p.syscall, p.request),
        target_pid: p.target_pid,
        target_exec_id: p.target_exec_id,
        enforced: Enforcement::from_raw(p.enforced_rule, p.enforced_action),
    })
}

pub(super) fn decode_cred(header: Header, bytes: &[u8]) -> Result<CredRecord, DecodeError> {
    let c: shrike_cred_event = copy(bytes, "cred")?;
    Ok(CredRecord {
        header,
        result: c.result,
        syscall: c.syscall,
        old: CredIds::from(&c.old),
        new: CredIds::from(&c.new),
        info: FileInfo::from_bits(c.info),
    })
}

pub(super) fn decode_mount(
    header: Header,
    bytes: &[u8],
    umount: bool,
) -> Result<MountRecord, DecodeError> {
    let m: shrike_mount_event = copy(bytes, "mount")?;
    let data = &bytes[std::mem::size_of::<shrike_mount_event>()..];
    let [source, target, fstype] = pieces(
        data,
        [
            usize::from(m.source_len),
            usize::from(m.target_len),
            usize::from(m.fstype_len),
        ],
    )?;
    Ok(MountRecord {
        header,
        umount,
        result: m.result,
        flags: m.flags,
        info: FileInfo::from_bits(m.info),
        syscall: m.syscall,
        source,
        target,
        fstype,
    })
}

pub(super) fn decode_ns(header: Header, bytes: &[u8]) -> Result<NamespaceRecord, DecodeError> {
    let n: shrike_ns_event = copy(bytes, "namespace")?;
    Ok(NamespaceRecord {
        header,
        result: n.result,
        ns_flags: n.ns_flags,
        flags: n.flags,
        syscall: n.syscall,
        pid_level: n.pid_level,
        inum: n.inum,
    })
}

pub(super) fn decode_memfd(header: Header, bytes: &[u8]) -> Result<MemfdRecord, DecodeError> {
    let m: shrike_memfd_event = copy(bytes, "memfd")?;
    let data = &bytes[std::mem::size_of::<shrike_memfd_event>()..];
    let [name] = pieces(data, [usize::from(m.name_len)])?;
    Ok(MemfdRecord {
        header,
        result: m.result,
        flags: m.flags,
        name,
    })
}

pub(super) fn decode_socket(header: Header, bytes: &[u8]) -> Result<SocketRecord, DecodeError> {
    let s: shrike_socket_event = copy(bytes, "socket")?;
    Ok(SocketRecord {
        header,
        result: s.result,
        family: s.family,
        sock_type: s.r#type,
        protocol: s.protocol,
    })
}

pub(super) fn decode_signal(header: Header, bytes: &[u8]) -> Result<SignalRecord, DecodeError> {
    let s: shrike_signal_event = copy(bytes, "signal")?;
    Ok(SignalRecord {
        header,
        signal: s.signal,
        target_pid: s.target_pid,
        target_tid: s.target_tid,
        target_exec_id: s.target_exec_id,
        si_code: s.si_code,
        delivery: s.delivery,
    })
}

/// Builders of this family's records as the kernel writes them, for tests.
pub mod testing {
    use super::*;

    fn bytes_of<T: plain::Plain>(value: &T) -> Vec<u8> {
        // SAFETY: T is Plain (repr(C), integers only), so viewing it as bytes is sound; the
        // slice lives no longer than `value`.
        unsafe { plain::as_bytes(value) }.to_vec()
    }

    /// The bytes of a file record.
    pub fn file_bytes(r: &FileRecord) -> Vec<u8> {
        let kind = match r.op {
            FileOp::Open => shrike_record_kind::SHRIKE_REC_FILE_OPEN,
            FileOp::Unlink => shrike_record_kind::SHRIKE_REC_FILE_UNLINK,
            FileOp::Rename => shrike_record_kind::SHRIKE_REC_FILE_RENAME,
            FileOp::Chmod => shrike_record_kind::SHRIKE_REC_FILE_CHMOD,
            FileOp::Chown => shrike_record_kind::SHRIKE_REC_FILE_CHOWN,
            FileOp::Link => shrike_record_kind::SHRIKE_REC_FILE_LINK,
            FileOp::Utimes => shrike_record_kind::SHRIKE_REC_FILE_UTIMES,
        };
        let size = std::mem::size_of::<shrike_file_event>() + r.path.len() + r.new_path.len();
        let e = shrike_file_event {
            hdr: kernel_header(kind, size, &r.header),
            result: r.result,
            flags: r.flags,
            access: r.access,
            mode: r.mode,
            uid: r.uid,
            gid: r.gid,
            info: r.info.bits(),
            syscall: r.syscall,
            path_len: r.path.len() as u16,
            new_path_len: r.new_path.len() as u16,
            enforced_rule: Enforcement::raw(r.enforced).0,
            enforced_action: Enforcement::raw(r.enforced).1,
            times: r.times.flags,
            atime: r.times.atime,
            mtime: r.times.mtime,
            ..Default::default()
        };
        let mut out = bytes_of(&e);
        out.extend_from_slice(&r.path);
        out.extend_from_slice(&r.new_path);
        out
    }

    /// The bytes of a credential-change record.
    pub fn cred_bytes(r: &CredRecord) -> Vec<u8> {
        let creds = |c: &CredIds| shrike_creds {
            uid: c.uid,
            euid: c.euid,
            suid: c.suid,
            fsuid: c.fsuid,
            gid: c.gid,
            egid: c.egid,
            sgid: c.sgid,
            fsgid: c.fsgid,
            cap_effective: c.cap_effective,
            cap_permitted: c.cap_permitted,
        };
        let c = shrike_cred_event {
            hdr: kernel_header(
                shrike_record_kind::SHRIKE_REC_CRED_CHANGE,
                std::mem::size_of::<shrike_cred_event>(),
                &r.header,
            ),
            result: r.result,
            old: creds(&r.old),
            new: creds(&r.new),
            syscall: r.syscall,
            info: r.info.bits(),
            ..Default::default()
        };
        bytes_of(&c)
    }

    /// The bytes of a mount or umount record.
    pub fn mount_bytes(r: &MountRecord) -> Vec<u8> {
        let kind = if r.umount {
            shrike_record_kind::SHRIKE_REC_UMOUNT
        } else {
            shrike_record_kind::SHRIKE_REC_MOUNT
        };
        let size = std::mem::size_of::<shrike_mount_event>()
            + r.source.len()
            + r.target.len()
            + r.fstype.len();
        let m = shrike_mount_event {
            hdr: kernel_header(kind, size, &r.header),
            result: r.result,
            flags: r.flags,
            info: r.info.bits(),
            syscall: r.syscall,
            source_len: r.source.len() as u16,
            target_len: r.target.len() as u16,
            fstype_len: r.fstype.len() as u16,
            ..Default::default()
        };
        let mut out = bytes_of(&m);
        out.extend_from_slice(&r.source);
        out.extend_from_slice(&r.target);
        out.extend_from_slice(&r.fstype);
        out
    }

    /// The bytes of a signal record.
    pub fn signal_bytes(r: &SignalRecord) -> Vec<u8> {
        let s = shrike_signal_event {
            hdr: kernel_header(
                shrike_record_kind::SHRIKE_REC_SIGNAL,
                std::mem::size_of::<shrike_signal_event>(),
                &r.header,
            ),
            target_exec_id: r.target_exec_id,
            signal: r.signal,
            target_pid: r.target_pid,
            target_tid: r.target_tid,
            si_code: r.si_code,
            delivery: r.delivery,
            ..Default::default()
        };
        bytes_of(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::decode::Record;

    fn h(kind: u16) -> Header {
        Header {
            kind,
            ktime_ns: 9,
            pid: 42,
            tid: 43,
            exec_id: 0x77,
        }
    }

    fn rename() -> FileRecord {
        FileRecord {
            header: h(102),
            op: FileOp::Rename,
            result: 0,
            flags: 0,
            access: 0,
            mode: 0,
            uid: u32::MAX,
            gid: u32::MAX,
            info: FileInfo::default(),
            syscall: 8,
            path: b"/etc/cron.d/a".to_vec(),
            new_path: b"/etc/cron.d/\xffb".to_vec(),
            enforced: None,
            times: FileTimes::default(),
        }
    }

    #[test]
    fn set_times_record_round_trips_with_what_was_asked() {
        use crate::abi::file::shrike_file_times as T;
        let r = FileRecord {
            header: h(106),
            op: FileOp::Utimes,
            syscall: crate::abi::file::shrike_sys::SHRIKE_SYS_UTIMENSAT.0 as u16,
            path: b"/usr/local/bin/implant".to_vec(),
            new_path: Vec::new(),
            times: FileTimes {
                flags: (T::SHRIKE_TIMES_MTIME_EXPLICIT.0 | T::SHRIKE_TIMES_ATIME_NOW.0) as u16,
                atime: 0,
                mtime: 1_546_300_800,
            },
            ..rename()
        };
        let back = Record::try_from(file_bytes(&r).as_slice());
        assert_eq!(back, Ok(Record::File(r.clone())));
        assert_eq!(r.times.mtime(), TimeSet::Explicit(1_546_300_800));
        assert_eq!(r.times.atime(), TimeSet::Now);
        let omitted = FileTimes::default();
        assert_eq!(omitted.mtime(), TimeSet::Unchanged);
        let unread = FileTimes {
            flags: T::SHRIKE_TIMES_UNREAD.0 as u16,
            ..omitted
        };
        assert_eq!(unread.atime(), TimeSet::Unknown);
    }

    #[test]
    fn a_refused_operation_carries_its_rule() {
        let r = FileRecord {
            result: -1,
            enforced: Some(Enforcement {
                rule_index: 7,
                action: crate::decode::Action::Deny,
            }),
            ..rename()
        };
        assert_eq!(
            Record::try_from(file_bytes(&r).as_slice()),
            Ok(Record::File(r))
        );
    }

    #[test]
    fn file_record_round_trips_with_both_paths() {
        let r = rename();
        assert_eq!(
            Record::try_from(file_bytes(&r).as_slice()),
            Ok(Record::File(r))
        );
    }

    #[test]
    fn file_record_decodes_from_an_unaligned_buffer() {
        let r = rename();
        let mut bytes = vec![0u8; 3];
        bytes.extend(file_bytes(&r));
        assert_eq!(Record::try_from(&bytes[3..]), Ok(Record::File(r)));
    }

    #[test]
    fn short_and_overrunning_file_records_are_errors() {
        let bytes = file_bytes(&rename());
        for len in 0..bytes.len() {
            assert!(
                Record::try_from(&bytes[..len]).is_err(),
                "{len} bytes decoded"
            );
        }
        let mut bad = bytes.clone();
        // path_len is the second u16 after hdr (32) + result (8) + six u32 (24) + syscall.
        let off = 32 + 8 + 24 + 2;
        bad[off..off + 2].copy_from_slice(&4000u16.to_le_bytes());
        assert!(matches!(
            Record::try_from(bad.as_slice()),
            Err(DecodeError::DataOverrun { .. })
        ));
    }

    #[test]
    fn cred_mount_and_signal_records_decode() {
        let c = CredRecord {
            header: h(203),
            result: 0,
            syscall: 29,
            old: CredIds {
                cap_effective: 0x1ff_ffff_ffff,
                ..Default::default()
            },
            new: CredIds {
                uid: 65534,
                euid: 65534,
                suid: 65534,
                fsuid: 65534,
                ..Default::default()
            },
            info: FileInfo::default(),
        };
        assert_eq!(
            Record::try_from(cred_bytes(&c).as_slice()),
            Ok(Record::Cred(c))
        );
        let m = MountRecord {
            header: h(204),
            umount: false,
            result: -1,
            flags: 0,
            info: FileInfo::default(),
            syscall: 36,
            source: b"none".to_vec(),
            target: b"/tmp/x".to_vec(),
            fstype: b"tmpfs".to_vec(),
        };
        assert_eq!(
            Record::try_from(mount_bytes(&m).as_slice()),
            Ok(Record::Mount(m))
        );
        let s = SignalRecord {
            header: h(208),
            signal: 15,
            target_pid: 7,
            target_tid: 7,
            target_exec_id: 5,
            si_code: 0,
            delivery: 0,
        };
        assert_eq!(
            Record::try_from(signal_bytes(&s).as_slice()),
            Ok(Record::Signal(s))
        );
    }
}
