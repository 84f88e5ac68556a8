//! Process lifecycle records: exec, fork and exit.

use super::flags::{Action, ExecFlag, ExecFlags, TamperKind};
use super::{c_chars, copy, kernel_header, DecodeError, Header};
use crate::abi::{
    shrike_enforce_limits, shrike_exec, shrike_exec_denied, shrike_exec_denied_flags, shrike_exit,
    shrike_fork, shrike_record_kind, shrike_tamper,
};

/// A process image started (`SHRIKE_REC_PROCESS_EXEC`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRecord {
    pub header: Header,
    pub parent_exec_id: u64,
    pub start_boottime_ns: u64,
    pub cgroup_id: u64,
    pub ppid: u32,
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub loginuid: u32,
    pub flags: ExecFlags,
    /// argv bytes the process really has; more than `args.len()` when truncated.
    pub args_total: u32,
    pub comm: Vec<u8>,
    pub binary: Vec<u8>,
    pub filename: Vec<u8>,
    /// The `#!` interpreter as written in the script, for scripts.
    pub interp: Option<Vec<u8>>,
    pub cwd: Vec<u8>,
    /// NUL-separated.
    pub args: Vec<u8>,
    /// NUL-separated `NAME=value` entries.
    pub env: Vec<u8>,
    /// The rule the kernel enforced on this exec (it killed the new image), if any.
    pub enforced: Option<Enforcement>,
    /// The workload-scoped rule that would apply but for a cgroup user space has not placed
    /// yet: the kernel stopped the new image (SIGSTOP) until user space kills or resumes it.
    pub held: Option<u16>,
    /// Which of fds 0, 1, 2 were sockets at exec (only those are listed).
    pub stdio: Vec<StdioSocket>,
    /// Which of fds 0, 1, 2 were pipes or FIFOs at exec, and the pipe's inode number.
    pub stdio_pipes: Vec<StdioPipe>,
    /// The executable's inode change time (CLOCK_REALTIME seconds), when the kernel could
    /// read it.
    pub binary_ctime_s: Option<i64>,
    /// The image that opened the executable for writing after it had connected out.
    pub writer_exec_id: Option<u64>,
}

/// One of fds 0, 1, 2 that was a pipe or FIFO at exec (`pipe_ino` of `struct
/// shrike_stdio_sock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdioPipe {
    pub fd: u8,
    /// The pipe's inode number: two processes with the same one hold two ends of one pipe.
    pub ino: u64,
}

/// One of fds 0, 1, 2 that was a socket at exec (`struct shrike_stdio_sock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdioSocket {
    pub fd: u8,
    /// AF_INET (2), AF_INET6 (10) or AF_UNIX (1).
    pub family: u16,
    /// SOCK_STREAM (1), SOCK_DGRAM (2), ...
    pub sock_type: u16,
    /// IPPROTO_TCP (6), IPPROTO_UDP (17); 0 for unix sockets.
    pub protocol: u16,
    /// The connected peer (unspecified when not connected, and for unix sockets).
    pub peer_addr: std::net::IpAddr,
    pub peer_port: u16,
}

/// A rule the kernel acted on: its index in the policy and what it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enforcement {
    pub rule_index: u16,
    pub action: Action,
}

impl Enforcement {
    /// A record's (rule, action) pair, as the kernel writes it (for the `testing` encoders).
    pub(crate) fn raw(e: Option<Enforcement>) -> (u16, u16) {
        e.map_or((shrike_enforce_limits::SHRIKE_NO_RULE.0 as u16, 0), |e| {
            (e.rule_index, e.action.raw())
        })
    }

    /// From a record's (rule, action) pair; `None` when no rule acted.
    pub fn from_raw(rule: u16, action: u16) -> Option<Self> {
        let action = Action::from_raw(action)?;
        (rule != shrike_enforce_limits::SHRIKE_NO_RULE.0 as u16).then_some(Enforcement {
            rule_index: rule,
            action,
        })
    }
}

/// An exec an LSM hook refused (`SHRIKE_REC_EXEC_DENIED`): the caller keeps its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecDeniedRecord {
    /// The caller; `exec_id` is its current image.
    pub header: Header,
    pub enforcement: Enforcement,
    /// The file that was refused, as an absolute path.
    pub path: Vec<u8>,
    /// `path` was cut at the root end (too deep for a record): refused under `--strict`.
    pub path_cut: bool,
    /// What the caller asked to execute.
    pub filename: Vec<u8>,
}

/// What self-protection refused (`SHRIKE_REC_TAMPER`): the header is the process that tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TamperRecord {
    pub header: Header,
    pub kind: TamperKind,
    /// The agent.
    pub target_pid: u32,
    /// For signals, the signal; for ptrace, the access mode.
    pub signal: i32,
}

/// A new process (`SHRIKE_REC_PROCESS_FORK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkRecord {
    pub header: Header,
    pub parent_exec_id: u64,
    pub start_boottime_ns: u64,
    pub ppid: u32,
}

/// A process ended (`SHRIKE_REC_PROCESS_EXIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitRecord {
    pub header: Header,
    /// The wait(2) status word.
    pub status: u32,
}

impl ExitRecord {
    /// The exit code, when the process exited by itself.
    pub fn code(&self) -> Option<i32> {
        (self.status & 0x7f == 0).then_some(((self.status >> 8) & 0xff) as i32)
    }

    /// The terminating signal, when a signal ended the process.
    pub fn signal(&self) -> Option<i32> {
        let sig = self.status & 0x7f;
        (sig != 0).then_some(sig as i32)
    }

    pub fn core_dumped(&self) -> bool {
        self.status & 0x80 != 0
    }
}

pub(super) fn decode_exec(header: Header, bytes: &[u8]) -> Result<ExecRecord, DecodeError> {
    let e: shrike_exec = copy(bytes, "exec")?;
    let data = &bytes[std::mem::size_of::<shrike_exec>()..];
    let lengths = [
        usize::from(e.binary_len),
        usize::from(e.filename_len),
        usize::from(e.interp_len),
        usize::from(e.cwd_len),
        e.args_len as usize,
        e.env_len as usize,
    ];
    let need: usize = lengths.iter().sum();
    if need > data.len() {
        return Err(DecodeError::DataOverrun {
            need,
            have: data.len(),
        });
    }
    let mut pieces = Vec::with_capacity(lengths.len());
    let mut rest = data;
    for len in lengths {
        let (piece, tail) = rest.split_at(len);
        pieces.push(piece.to_vec());
        rest = tail;
    }
    let mut pieces = pieces.into_iter();
    let mut next = || pieces.next().unwrap_or_default();
    let flags = ExecFlags::from_bits(e.flags);
    let binary = next();
    let filename = next();
    let interp = next();
    Ok(ExecRecord {
        header,
        parent_exec_id: e.parent_exec_id,
        start_boottime_ns: e.start_boottime_ns,
        cgroup_id: e.cgroup_id,
        ppid: e.ppid,
        uid: e.uid,
        euid: e.euid,
        gid: e.gid,
        egid: e.egid,
        loginuid: e.loginuid,
        flags,
        args_total: e.args_total,
        comm: c_chars(&e.comm),
        binary,
        filename,
        interp: flags.has(ExecFlag::Script).then_some(interp),
        cwd: next(),
        args: next(),
        env: next(),
        enforced: Enforcement::from_raw(e.enforced_rule, e.enforced_action),
        held: flags.has(ExecFlag::Held).then_some(e.enforced_rule),
        stdio: e
            .stdio
            .iter()
            .enumerate()
            .filter(|(_, s)| s.family != 0)
            .map(|(fd, s)| StdioSocket {
                fd: fd as u8,
                family: s.family,
                sock_type: s.r#type,
                protocol: s.protocol,
                peer_addr: super::net::addr(s.family, &s.peer_addr),
                peer_port: s.peer_port,
            })
            .collect(),
        stdio_pipes: e
            .stdio
            .iter()
            .enumerate()
            .filter(|(_, s)| s.pipe_ino != 0)
            .map(|(fd, s)| StdioPipe {
                fd: fd as u8,
                ino: s.pipe_ino,
            })
            .collect(),
        binary_ctime_s: (!flags.has(ExecFlag::CtimeUnknown)).then_some(e.binary_ctime_s),
        writer_exec_id: flags.has(ExecFlag::NetWritten).then_some(e.writer_exec_id),
    })
}

pub(super) fn decode_exec_denied(
    header: Header,
    bytes: &[u8],
) -> Result<ExecDeniedRecord, DecodeError> {
    let d: shrike_exec_denied = copy(bytes, "exec denied")?;
    let data = &bytes[std::mem::size_of::<shrike_exec_denied>()..];
    let (path_len, filename_len) = (usize::from(d.path_len), usize::from(d.filename_len));
    if path_len + filename_len > data.len() {
        return Err(DecodeError::DataOverrun {
            need: path_len + filename_len,
            have: data.len(),
        });
    }
    let enforcement =
        Enforcement::from_raw(d.rule_index, u16::from(d.action)).unwrap_or(Enforcement {
            rule_index: d.rule_index,
            action: Action::Deny,
        });
    Ok(ExecDeniedRecord {
        header,
        enforcement,
        path: data[..path_len].to_vec(),
        path_cut: u32::from(d.flags) & shrike_exec_denied_flags::SHRIKE_DENIED_PATH_CUT.0 != 0,
        filename: data[path_len..path_len + filename_len].to_vec(),
    })
}

pub(super) fn decode_tamper(header: Header, bytes: &[u8]) -> Result<TamperRecord, DecodeError> {
    let t: shrike_tamper = copy(bytes, "tamper")?;
    Ok(TamperRecord {
        header,
        kind: TamperKind::from_raw(t.kind, t.signal),
        target_pid: t.target_pid,
        signal: t.signal,
    })
}

pub(super) fn decode_fork(header: Header, bytes: &[u8]) -> Result<ForkRecord, DecodeError> {
    let f: shrike_fork = copy(bytes, "fork")?;
    Ok(ForkRecord {
        header,
        parent_exec_id: f.parent_exec_id,
        start_boottime_ns: f.start_boottime_ns,
        ppid: f.ppid,
    })
}

pub(super) fn decode_exit(header: Header, bytes: &[u8]) -> Result<ExitRecord, DecodeError> {
    let x: shrike_exit = copy(bytes, "exit")?;
    Ok(ExitRecord {
        header,
        status: x.exit_code,
    })
}

/// Builders of process records as the kernel writes them, for tests.
pub mod testing {
    use super::*;

    fn bytes_of<T: plain::Plain>(value: &T) -> Vec<u8> {
        // SAFETY: T is Plain (repr(C), integers only), so viewing it as bytes is sound; the
        // slice lives no longer than `value`.
        unsafe { plain::as_bytes(value) }.to_vec()
    }

    /// The bytes of an exec record for `r` (its kind field is ignored).
    pub fn exec_bytes(r: &ExecRecord) -> Vec<u8> {
        let interp = r.interp.clone().unwrap_or_default();
        let data: Vec<u8> = [&r.binary, &r.filename, &interp, &r.cwd, &r.args, &r.env]
            .iter()
            .flat_map(|p| p.iter().copied())
            .collect();
        let size = std::mem::size_of::<shrike_exec>() + data.len();
        let mut comm = [0i8; 16];
        for (slot, &b) in comm.iter_mut().zip(r.comm.iter().take(15)) {
            *slot = b as i8;
        }
        let e = shrike_exec {
            hdr: kernel_header(shrike_record_kind::SHRIKE_REC_PROCESS_EXEC, size, &r.header),
            parent_exec_id: r.parent_exec_id,
            start_boottime_ns: r.start_boottime_ns,
            cgroup_id: r.cgroup_id,
            ppid: r.ppid,
            uid: r.uid,
            euid: r.euid,
            gid: r.gid,
            egid: r.egid,
            loginuid: r.loginuid,
            flags: r.flags.bits(),
            args_total: r.args_total,
            args_len: r.args.len() as u32,
            env_len: r.env.len() as u32,
            binary_len: r.binary.len() as u16,
            filename_len: r.filename.len() as u16,
            interp_len: interp.len() as u16,
            cwd_len: r.cwd.len() as u16,
            enforced_rule: r.held.unwrap_or(Enforcement::raw(r.enforced).0),
            enforced_action: Enforcement::raw(r.enforced).1,
            comm,
            stdio: stdio_raw(&r.stdio, &r.stdio_pipes),
            binary_ctime_s: r.binary_ctime_s.unwrap_or(0),
            writer_exec_id: r.writer_exec_id.unwrap_or(0),
            ..Default::default()
        };
        let mut out = bytes_of(&e);
        out.extend_from_slice(&data);
        out
    }

    fn stdio_raw(stdio: &[StdioSocket], pipes: &[StdioPipe]) -> [crate::abi::shrike_stdio_sock; 3] {
        let mut out = [crate::abi::shrike_stdio_sock::default(); 3];
        for p in pipes {
            out[usize::from(p.fd) % 3].pipe_ino = p.ino;
        }
        for s in stdio {
            let slot = &mut out[usize::from(s.fd) % 3];
            slot.family = s.family;
            slot.r#type = s.sock_type;
            slot.protocol = s.protocol;
            slot.peer_port = s.peer_port;
            slot.peer_addr = match s.peer_addr {
                std::net::IpAddr::V4(a) => {
                    let mut b = [0u8; 16];
                    b[..4].copy_from_slice(&a.octets());
                    b
                }
                std::net::IpAddr::V6(a) => a.octets(),
            };
        }
        out
    }

    /// The bytes of a fork record.
    pub fn fork_bytes(r: &ForkRecord) -> Vec<u8> {
        let f = shrike_fork {
            hdr: kernel_header(
                shrike_record_kind::SHRIKE_REC_PROCESS_FORK,
                std::mem::size_of::<shrike_fork>(),
                &r.header,
            ),
            parent_exec_id: r.parent_exec_id,
            start_boottime_ns: r.start_boottime_ns,
            ppid: r.ppid,
            ..Default::default()
        };
        bytes_of(&f)
    }

    /// The bytes of an exit record.
    pub fn exit_bytes(r: &ExitRecord) -> Vec<u8> {
        let x = shrike_exit {
            hdr: kernel_header(
                shrike_record_kind::SHRIKE_REC_PROCESS_EXIT,
                std::mem::size_of::<shrike_exit>(),
                &r.header,
            ),
            exit_code: r.status,
            ..Default::default()
        };
        bytes_of(&x)
    }

    /// The bytes of an exec-denied record.
    pub fn exec_denied_bytes(r: &ExecDeniedRecord) -> Vec<u8> {
        let size = std::mem::size_of::<shrike_exec_denied>() + r.path.len() + r.filename.len();
        let d = shrike_exec_denied {
            hdr: kernel_header(shrike_record_kind::SHRIKE_REC_EXEC_DENIED, size, &r.header),
            rule_index: r.enforcement.rule_index,
            action: r.enforcement.action.raw() as u8,
            flags: if r.path_cut {
                shrike_exec_denied_flags::SHRIKE_DENIED_PATH_CUT.0 as u8
            } else {
                0
            },
            path_len: r.path.len() as u16,
            filename_len: r.filename.len() as u16,
        };
        let mut out = bytes_of(&d);
        out.extend_from_slice(&r.path);
        out.extend_from_slice(&r.filename);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::decode::Record;

    fn exec_sample() -> ExecRecord {
        ExecRecord {
            header: Header {
                kind: 1,
                ktime_ns: 7,
                pid: 100,
                tid: 100,
                exec_id: 0xabc,
            },
            parent_exec_id: 0xab,
            start_boottime_ns: 5,
            cgroup_id: 1,
            ppid: 99,
            uid: 0,
            euid: 0,
            gid: 0,
            egid: 0,
            loginuid: u32::MAX,
            flags: ExecFlags::from(ExecFlag::Script).with(ExecFlag::NetWritten),
            args_total: 21,
            comm: b"x.sh".to_vec(),
            binary: b"/usr/bin/dash".to_vec(),
            filename: b"./x.sh".to_vec(),
            interp: Some(b"/bin/sh".to_vec()),
            cwd: b"/tmp".to_vec(),
            args: b"/bin/sh\0./x.sh\0a\xff\0".to_vec(),
            env: b"LD_PRELOAD=/x.so\0".to_vec(),
            stdio: vec![
                StdioSocket {
                    fd: 0,
                    family: 2,
                    sock_type: 1,
                    protocol: 6,
                    peer_addr: "192.0.2.9".parse().unwrap(),
                    peer_port: 4444,
                },
                StdioSocket {
                    fd: 2,
                    family: 10,
                    sock_type: 1,
                    protocol: 6,
                    peer_addr: "2001:db8::9".parse().unwrap(),
                    peer_port: 4445,
                },
            ],
            stdio_pipes: vec![StdioPipe { fd: 1, ino: 77 }],
            binary_ctime_s: Some(1_700_000_000),
            writer_exec_id: Some(0x55),
            enforced: Some(Enforcement {
                rule_index: 2,
                action: Action::Kill,
            }),
            held: None,
        }
    }

    #[test]
    fn exec_record_round_trips_with_every_piece_in_place() {
        let r = exec_sample();
        let bytes = exec_bytes(&r);
        assert_eq!(Record::try_from(bytes.as_slice()), Ok(Record::Exec(r)));
    }

    /// A held exec carries its rule in the enforced-rule word with no action: decoded as
    /// `held`, never as an enforcement.
    #[test]
    fn a_held_exec_decodes_its_rule_and_no_enforcement() {
        let mut r = exec_sample();
        r.flags = r.flags.with(ExecFlag::Held);
        r.enforced = None;
        r.held = Some(7);
        let bytes = exec_bytes(&r);
        assert_eq!(
            Record::try_from(bytes.as_slice()),
            Ok(Record::Exec(r.clone()))
        );
        r.flags = ExecFlags::from(ExecFlag::Script);
        r.held = None;
        let Ok(Record::Exec(plain)) = Record::try_from(exec_bytes(&r).as_slice()) else {
            panic!("not an exec")
        };
        assert_eq!((plain.held, plain.enforced), (None, None));
    }

    #[test]
    fn decoding_works_from_an_unaligned_buffer() {
        let r = exec_sample();
        let mut bytes = vec![0u8];
        bytes.extend(exec_bytes(&r));
        assert_eq!(Record::try_from(&bytes[1..]), Ok(Record::Exec(r)));
    }

    #[test]
    fn fork_and_exit_records_decode() {
        let f = ForkRecord {
            header: Header {
                kind: 3,
                ktime_ns: 1,
                pid: 5,
                tid: 5,
                exec_id: 9,
            },
            parent_exec_id: 8,
            start_boottime_ns: 1,
            ppid: 4,
        };
        assert_eq!(
            Record::try_from(fork_bytes(&f).as_slice()),
            Ok(Record::Fork(f))
        );
        let x = ExitRecord {
            header: Header {
                kind: 2,
                ktime_ns: 2,
                pid: 5,
                tid: 6,
                exec_id: 9,
            },
            status: 3 << 8,
        };
        assert_eq!(
            Record::try_from(exit_bytes(&x).as_slice()),
            Ok(Record::Exit(x))
        );
        assert_eq!((x.code(), x.signal()), (Some(3), None));
    }

    #[test]
    fn exit_status_distinguishes_signals_and_core_dumps() {
        let h = Header {
            kind: 2,
            ktime_ns: 0,
            pid: 1,
            tid: 1,
            exec_id: 0,
        };
        let killed = ExitRecord {
            header: h,
            status: 9,
        };
        assert_eq!(
            (killed.code(), killed.signal(), killed.core_dumped()),
            (None, Some(9), false)
        );
        let segv = ExitRecord {
            header: h,
            status: 11 | 0x80,
        };
        assert_eq!(
            (segv.code(), segv.signal(), segv.core_dumped()),
            (None, Some(11), true)
        );
    }

    #[test]
    fn short_buffers_are_errors_not_panics() {
        let bytes = exec_bytes(&exec_sample());
        for len in 0..bytes.len() {
            assert!(
                Record::try_from(&bytes[..len]).is_err(),
                "{len} bytes decoded"
            );
        }
    }

    #[test]
    fn lengths_that_overrun_the_record_are_rejected() {
        let mut bytes = exec_bytes(&exec_sample());
        // binary_len is the first u16 after the ten u32 fields following three u64s.
        let off = std::mem::size_of::<crate::abi::shrike_header>() + 3 * 8 + 10 * 4;
        bytes[off..off + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(matches!(
            Record::try_from(bytes.as_slice()),
            Err(DecodeError::DataOverrun { .. })
        ));
    }

    #[test]
    fn exec_denied_records_round_trip_and_overruns_are_rejected() {
        let r = ExecDeniedRecord {
            header: Header {
                kind: 4,
                ktime_ns: 9,
                pid: 7,
                tid: 7,
                exec_id: 3,
            },
            enforcement: Enforcement {
                rule_index: 5,
                action: Action::Deny,
            },
            path: b"/tmp/m/marker.sh".to_vec(),
            path_cut: true,
            filename: b"./marker.sh".to_vec(),
        };
        let bytes = exec_denied_bytes(&r);
        assert_eq!(
            Record::try_from(bytes.as_slice()),
            Ok(Record::ExecDenied(r))
        );
        let mut short = bytes.clone();
        short.truncate(bytes.len() - 1);
        let len = short.len() as u32;
        short[4..8].copy_from_slice(&len.to_le_bytes());
        assert!(matches!(
            Record::try_from(short.as_slice()),
            Err(DecodeError::DataOverrun { .. })
        ));
    }

    #[test]
    fn enforcement_fields_say_which_rule_acted_and_how() {
        assert_eq!(
            Enforcement::from_raw(shrike_enforce_limits::SHRIKE_NO_RULE.0 as u16, 2),
            None
        );
        assert_eq!(Enforcement::from_raw(3, 0), None);
        assert_eq!(
            Enforcement::from_raw(3, 2),
            Some(Enforcement {
                rule_index: 3,
                action: Action::Kill
            })
        );
    }

    #[test]
    fn unknown_kinds_are_reported_for_counting() {
        let mut bytes = exit_bytes(&ExitRecord {
            header: Header {
                kind: 2,
                ktime_ns: 0,
                pid: 1,
                tid: 1,
                exec_id: 0,
            },
            status: 0,
        });
        bytes[0..2].copy_from_slice(&999u16.to_le_bytes());
        assert_eq!(
            Record::try_from(bytes.as_slice()),
            Err(DecodeError::UnknownKind(999))
        );
    }

    #[test]
    fn header_size_larger_than_the_buffer_is_rejected() {
        let mut bytes = exit_bytes(&ExitRecord {
            header: Header {
                kind: 2,
                ktime_ns: 0,
                pid: 1,
                tid: 1,
                exec_id: 0,
            },
            status: 0,
        });
        bytes[4..8].copy_from_slice(&1000u32.to_le_bytes());
        assert!(matches!(
            Record::try_from(bytes.as_slice()),
            Err(DecodeError::SizeMismatch { .. })
        ));
    }
}
