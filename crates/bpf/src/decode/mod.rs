//! Ring-buffer bytes to records: the one place kernel records are decoded.
//!
//! Every read is length-checked and copies into an aligned value (`plain::copy_from_bytes`), so
//! a short, corrupt or unaligned buffer is an error, never undefined behaviour. Kinds are
//! matched by number; an unknown kind is reported as [`DecodeError::UnknownKind`] for the caller
//! to count and skip. Strings stay bytes here: turning them into text is the pipeline's job.
//!
//! One submodule per sensor family decodes that family's records; [`Record`], the header, the
//! typed flags (`flags`: user space names a flag, never its contract number) and the dispatch
//! on the kind number are the only shared parts.

pub mod file;
pub mod flags;
pub mod net;
pub mod process;

pub use file::{
    BpfLoadRecord, CredIds, CredRecord, FileOp, FileRecord, FileTimes, MemfdRecord, ModuleRecord,
    MountRecord, NamespaceRecord, PtraceRecord, SignalRecord, SocketRecord, TimeSet,
};
pub use flags::{
    Action, BpfObject, DnsFlag, DnsFlags, ExecFlag, ExecFlags, FileInfo, FileInfoFlag, NetFlag,
    NetFlags, PtraceRequest, TamperKind,
};
pub use net::{DnsRecord, NetOp, NetRecord};
pub use process::{
    Enforcement, ExecDeniedRecord, ExecRecord, ExitRecord, ForkRecord, StdioPipe, StdioSocket,
    TamperRecord,
};

use crate::abi::{shrike_header, shrike_record_kind};

/// The common header, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kind: u16,
    /// CLOCK_BOOTTIME nanoseconds.
    pub ktime_ns: u64,
    pub pid: u32,
    pub tid: u32,
    /// 0 when the kernel side did not know the process.
    pub exec_id: u64,
}

/// One decoded kernel record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Exec(ExecRecord),
    Fork(ForkRecord),
    Exit(ExitRecord),
    ExecDenied(ExecDeniedRecord),
    Tamper(TamperRecord),
    Net(NetRecord),
    Dns(DnsRecord),
    File(FileRecord),
    Module(ModuleRecord),
    BpfLoad(BpfLoadRecord),
    Ptrace(PtraceRecord),
    Cred(CredRecord),
    Mount(MountRecord),
    Namespace(NamespaceRecord),
    Memfd(MemfdRecord),
    Socket(SocketRecord),
    Signal(SignalRecord),
}

impl Record {
    pub fn header(&self) -> &Header {
        match self {
            Record::Exec(r) => &r.header,
            Record::Fork(r) => &r.header,
            Record::Exit(r) => &r.header,
            Record::ExecDenied(r) => &r.header,
            Record::Tamper(r) => &r.header,
            Record::Net(r) => &r.header,
            Record::Dns(r) => &r.header,
            Record::File(r) => &r.header,
            Record::Module(r) => &r.header,
            Record::BpfLoad(r) => &r.header,
            Record::Ptrace(r) => &r.header,
            Record::Cred(r) => &r.header,
            Record::Mount(r) => &r.header,
            Record::Namespace(r) => &r.header,
            Record::Memfd(r) => &r.header,
            Record::Socket(r) => &r.header,
            Record::Signal(r) => &r.header,
        }
    }
}

/// Why bytes from the ring buffer are not a record.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The buffer is shorter than the fixed part of the record it claims to be.
    #[error("record too short: {kind} needs {need} bytes, buffer has {have}")]
    TooShort {
        kind: &'static str,
        need: usize,
        have: usize,
    },
    /// The header's size disagrees with the buffer.
    #[error("record size {claimed} in header does not match buffer of {have} bytes")]
    SizeMismatch { claimed: usize, have: usize },
    /// The variable-length pieces add up to more than the record holds.
    #[error(
        "exec record's data lengths add up to {need} bytes but only {have} follow the fixed part"
    )]
    DataOverrun { need: usize, have: usize },
    /// A field holds a value the contract does not allow.
    #[error("{kind} record: {why}")]
    Invalid { kind: &'static str, why: String },
    /// A record kind this build does not know (a newer kernel object?); count and skip it.
    #[error("unknown record kind {0}")]
    UnknownKind(u16),
}

pub(crate) fn copy<T: plain::Plain + Default>(
    bytes: &[u8],
    kind: &'static str,
) -> Result<T, DecodeError> {
    let mut value = T::default();
    plain::copy_from_bytes(&mut value, bytes).map_err(|_| DecodeError::TooShort {
        kind,
        need: std::mem::size_of::<T>(),
        have: bytes.len(),
    })?;
    Ok(value)
}

/// The one header decoder: every family's record starts with the same `struct shrike_header`
/// (its layout is asserted in `abi`), decoded here once and handed to the family's decoder.
fn header(h: &shrike_header) -> Header {
    Header {
        kind: h.kind,
        ktime_ns: h.ktime_ns,
        pid: h.pid,
        tid: h.tid,
        exec_id: h.exec_id,
    }
}

/// The header as the kernel writes it, as the `hdr` field of any family's record: the one
/// header encoder, for the `testing` builders.
pub(crate) fn kernel_header<H: plain::Plain + Default>(
    kind: shrike_record_kind,
    size: usize,
    h: &Header,
) -> H {
    let common = shrike_header {
        kind: kind.0 as u16,
        size: size as u32,
        ktime_ns: h.ktime_ns,
        pid: h.pid,
        tid: h.tid,
        exec_id: h.exec_id,
        ..Default::default()
    };
    let mut out = H::default();
    // SAFETY: shrike_header is Plain (repr(C), integers only); the byte view lives for this
    // call only.
    let bytes = unsafe { plain::as_bytes(&common) };
    plain::copy_from_bytes(&mut out, bytes).expect("every family's header has the common layout");
    out
}

/// Bytes of `comm` up to its first NUL.
pub(crate) fn c_chars(chars: &[i8]) -> Vec<u8> {
    chars
        .iter()
        .map(|&c| c as u8)
        .take_while(|&c| c != 0)
        .collect()
}

impl TryFrom<&[u8]> for Record {
    type Error = DecodeError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        let h: shrike_header = copy(bytes, "header")?;
        let claimed = h.size as usize;
        if claimed > bytes.len() || claimed < std::mem::size_of::<shrike_header>() {
            return Err(DecodeError::SizeMismatch {
                claimed,
                have: bytes.len(),
            });
        }
        let bytes = &bytes[..claimed];
        let header = header(&h);
        match shrike_record_kind(u32::from(h.kind)) {
            shrike_record_kind::SHRIKE_REC_PROCESS_EXEC => {
                process::decode_exec(header, bytes).map(Record::Exec)
            }
            shrike_record_kind::SHRIKE_REC_PROCESS_FORK => {
                process::decode_fork(header, bytes).map(Record::Fork)
            }
            shrike_record_kind::SHRIKE_REC_PROCESS_EXIT => {
                process::decode_exit(header, bytes).map(Record::Exit)
            }
            shrike_record_kind::SHRIKE_REC_EXEC_DENIED => {
                process::decode_exec_denied(header, bytes).map(Record::ExecDenied)
            }
            shrike_record_kind::SHRIKE_REC_TAMPER => {
                process::decode_tamper(header, bytes).map(Record::Tamper)
            }
            k @ (shrike_record_kind::SHRIKE_REC_NET_CONNECT
            | shrike_record_kind::SHRIKE_REC_NET_ACCEPT
            | shrike_record_kind::SHRIKE_REC_NET_BIND
            | shrike_record_kind::SHRIKE_REC_NET_LISTEN
            | shrike_record_kind::SHRIKE_REC_NET_CLOSE) => {
                net::decode_net(header, bytes, k).map(Record::Net)
            }
            shrike_record_kind::SHRIKE_REC_NET_DNS => {
                net::decode_dns(header, bytes).map(Record::Dns)
            }
            k @ (shrike_record_kind::SHRIKE_REC_FILE_OPEN
            | shrike_record_kind::SHRIKE_REC_FILE_UNLINK
            | shrike_record_kind::SHRIKE_REC_FILE_RENAME
            | shrike_record_kind::SHRIKE_REC_FILE_CHMOD
            | shrike_record_kind::SHRIKE_REC_FILE_CHOWN
            | shrike_record_kind::SHRIKE_REC_FILE_LINK
            | shrike_record_kind::SHRIKE_REC_FILE_UTIMES) => {
                file::decode_file(header, bytes, k).map(Record::File)
            }
            shrike_record_kind::SHRIKE_REC_MODULE_LOAD => {
                file::decode_module(header, bytes).map(Record::Module)
            }
            shrike_record_kind::SHRIKE_REC_BPF_LOAD => {
                file::decode_bpf(header, bytes).map(Record::BpfLoad)
            }
            shrike_record_kind::SHRIKE_REC_PTRACE => {
                file::decode_ptrace(header, bytes).map(Record::Ptrace)
            }
            shrike_record_kind::SHRIKE_REC_CRED_CHANGE => {
                file::decode_cred(header, bytes).map(Record::Cred)
            }
            k @ (shrike_record_kind::SHRIKE_REC_MOUNT | shrike_record_kind::SHRIKE_REC_UMOUNT) => {
                file::decode_mount(header, bytes, k == shrike_record_kind::SHRIKE_REC_UMOUNT)
                    .map(Record::Mount)
            }
            shrike_record_kind::SHRIKE_REC_NAMESPACE => {
                file::decode_ns(header, bytes).map(Record::Namespace)
            }
            shrike_record_kind::SHRIKE_REC_MEMFD_CREATE => {
                file::decode_memfd(header, bytes).map(Record::Memfd)
            }
            shrike_record_kind::SHRIKE_REC_SIGNAL => {
                file::decode_signal(header, bytes).map(Record::Signal)
            }
            shrike_record_kind::SHRIKE_REC_SOCKET_CREATE => {
                file::decode_socket(header, bytes).map(Record::Socket)
            }
            _ => Err(DecodeError::UnknownKind(h.kind)),
        }
    }
}

/// Builders of raw records as the kernel writes them, for tests here and in other crates.
pub mod testing {
    pub use super::file::testing::*;
    pub use super::net::testing::*;
    pub use super::process::testing::*;
}
