//! The syscalls the family handles ([`SYSCALLS`]: handler id, x86_64 number, name, event kind,
//! whether the tracepoint hook set reads it at sys_enter), the LSM hooks and the kinds they
//! serve, and the names records carry (syscall and BPF program type).

use crate::abi::file::{shrike_sys, shrike_sys_entry};

use super::{FileEventKind, WatchKind};

/// One syscall the family handles.
pub struct Syscall {
    pub id: shrike_sys,
    /// x86_64 number.
    pub nr: u32,
    /// The name in `__x64_sys_<name>` and in events (`cred.syscall`, `namespace.syscall`).
    pub name: &'static str,
    pub kind: FileEventKind,
    /// Tracepoint mode: sys_enter runs for it (path strings and old credentials are read
    /// there; module, BPF and ptrace rules kill there).
    pub at_enter: bool,
}

const fn sc(
    id: shrike_sys,
    nr: u32,
    name: &'static str,
    kind: FileEventKind,
    at_enter: bool,
) -> Syscall {
    Syscall {
        id,
        nr,
        name,
        kind,
        at_enter,
    }
}

use FileEventKind as K;
use WatchKind as W;

/// Every syscall the family handles, with its x86_64 number.
#[rustfmt::skip]
pub const SYSCALLS: &[Syscall] = &[
    sc(shrike_sys::SHRIKE_SYS_OPEN, 2, "open", K::File(W::Open), false),
    sc(shrike_sys::SHRIKE_SYS_OPENAT, 257, "openat", K::File(W::Open), false),
    sc(shrike_sys::SHRIKE_SYS_OPENAT2, 437, "openat2", K::File(W::Open), false),
    sc(shrike_sys::SHRIKE_SYS_CREAT, 85, "creat", K::File(W::Open), false),
    sc(shrike_sys::SHRIKE_SYS_UNLINK, 87, "unlink", K::File(W::Unlink), true),
    sc(shrike_sys::SHRIKE_SYS_UNLINKAT, 263, "unlinkat", K::File(W::Unlink), true),
    sc(shrike_sys::SHRIKE_SYS_RMDIR, 84, "rmdir", K::File(W::Unlink), true),
    sc(shrike_sys::SHRIKE_SYS_RENAME, 82, "rename", K::File(W::Rename), true),
    sc(shrike_sys::SHRIKE_SYS_RENAMEAT, 264, "renameat", K::File(W::Rename), true),
    sc(shrike_sys::SHRIKE_SYS_RENAMEAT2, 316, "renameat2", K::File(W::Rename), true),
    sc(shrike_sys::SHRIKE_SYS_CHMOD, 90, "chmod", K::File(W::Chmod), true),
    sc(shrike_sys::SHRIKE_SYS_FCHMOD, 91, "fchmod", K::File(W::Chmod), false),
    sc(shrike_sys::SHRIKE_SYS_FCHMODAT, 268, "fchmodat", K::File(W::Chmod), true),
    sc(shrike_sys::SHRIKE_SYS_FCHMODAT2, 452, "fchmodat2", K::File(W::Chmod), true),
    sc(shrike_sys::SHRIKE_SYS_CHOWN, 92, "chown", K::File(W::Chown), true),
    sc(shrike_sys::SHRIKE_SYS_FCHOWN, 93, "fchown", K::File(W::Chown), false),
    sc(shrike_sys::SHRIKE_SYS_LCHOWN, 94, "lchown", K::File(W::Chown), true),
    sc(shrike_sys::SHRIKE_SYS_FCHOWNAT, 260, "fchownat", K::File(W::Chown), true),
    sc(shrike_sys::SHRIKE_SYS_LINK, 86, "link", K::File(W::Link), true),
    sc(shrike_sys::SHRIKE_SYS_LINKAT, 265, "linkat", K::File(W::Link), true),
    sc(shrike_sys::SHRIKE_SYS_SYMLINK, 88, "symlink", K::File(W::Link), true),
    sc(shrike_sys::SHRIKE_SYS_SYMLINKAT, 266, "symlinkat", K::File(W::Link), true),
    sc(shrike_sys::SHRIKE_SYS_INIT_MODULE, 175, "init_module", K::ModuleLoad, true),
    sc(shrike_sys::SHRIKE_SYS_FINIT_MODULE, 313, "finit_module", K::ModuleLoad, true),
    sc(shrike_sys::SHRIKE_SYS_BPF, 321, "bpf", K::BpfLoad, true),
    sc(shrike_sys::SHRIKE_SYS_PTRACE, 101, "ptrace", K::Ptrace, true),
    sc(shrike_sys::SHRIKE_SYS_PROCESS_VM_READV, 310, "process_vm_readv", K::Ptrace, true),
    sc(shrike_sys::SHRIKE_SYS_PROCESS_VM_WRITEV, 311, "process_vm_writev", K::Ptrace, true),
    sc(shrike_sys::SHRIKE_SYS_SETUID, 105, "setuid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETREUID, 113, "setreuid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETRESUID, 117, "setresuid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETGID, 106, "setgid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETREGID, 114, "setregid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETRESGID, 119, "setresgid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETFSUID, 122, "setfsuid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_SETFSGID, 123, "setfsgid", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_CAPSET, 126, "capset", K::CredChange, true),
    sc(shrike_sys::SHRIKE_SYS_MOUNT, 165, "mount", K::Mount, false),
    sc(shrike_sys::SHRIKE_SYS_UMOUNT2, 166, "umount2", K::Mount, false),
    sc(shrike_sys::SHRIKE_SYS_SETNS, 308, "setns", K::Namespace, false),
    sc(shrike_sys::SHRIKE_SYS_UNSHARE, 272, "unshare", K::Namespace, false),
    sc(shrike_sys::SHRIKE_SYS_CLONE, 56, "clone", K::Namespace, false),
    sc(shrike_sys::SHRIKE_SYS_CLONE3, 435, "clone3", K::Namespace, false),
    sc(shrike_sys::SHRIKE_SYS_MEMFD_CREATE, 319, "memfd_create", K::Memfd, false),
    sc(shrike_sys::SHRIKE_SYS_UTIMENSAT, 280, "utimensat", K::File(W::Utimes), true),
    sc(shrike_sys::SHRIKE_SYS_UTIMES, 235, "utimes", K::File(W::Utimes), true),
    sc(shrike_sys::SHRIKE_SYS_FUTIMESAT, 261, "futimesat", K::File(W::Utimes), true),
    sc(shrike_sys::SHRIKE_SYS_UTIME, 132, "utime", K::File(W::Utimes), true),
    sc(shrike_sys::SHRIKE_SYS_SOCKET, 41, "socket", K::Socket, false),
    // No record of their own: they change directories' paths (bpf/lib/dir_cache.h).
    sc(shrike_sys::SHRIKE_SYS_CHROOT, 161, "chroot", K::Namespace, false),
    sc(shrike_sys::SHRIKE_SYS_PIVOT_ROOT, 155, "pivot_root", K::Mount, false),
    sc(shrike_sys::SHRIKE_SYS_MOVE_MOUNT, 429, "move_mount", K::Mount, false),
];

/// The calls that can change a directory's path or a mount (bpf/lib/dir_cache.h): the
/// directory cache is used only where all of them are hooked.
pub(super) const PATH_CHANGING: &[&str] = &[
    "rmdir",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "mount",
    "umount2",
    "move_mount",
    "pivot_root",
    "chroot",
    "setns",
    "unshare",
    "clone",
    "clone3",
];

/// The name of a handler id as records carry it (`SHRIKE_SYS_*`).
pub fn syscall_name(id: u16) -> Option<&'static str> {
    SYSCALLS
        .iter()
        .find(|s| s.id.0 == u32::from(id))
        .map(|s| s.name)
}

/// A BPF program type's name as libbpf and bpftool spell it (`socket_filter`, `kprobe`, ...),
/// or its number when this build does not know it.
pub fn prog_type_name(prog_type: u32) -> String {
    // SAFETY: libbpf_bpf_prog_type_str takes any value and returns NULL or a pointer to a
    // static NUL-terminated string.
    let name = unsafe { libbpf_rs::libbpf_sys::libbpf_bpf_prog_type_str(prog_type) };
    if name.is_null() {
        return prog_type.to_string();
    }
    // SAFETY: non-NULL, static and NUL-terminated (above).
    unsafe { std::ffi::CStr::from_ptr(name) }
        .to_string_lossy()
        .into_owned()
}

impl Syscall {
    /// Its name in the kernel's entry points, trace events and program names (`umount2` is
    /// `umount`).
    pub(super) fn entry_name(&self) -> &'static str {
        if self.name == "umount2" {
            "umount"
        } else {
            self.name
        }
    }

    /// The kernel function its fexit program attaches to.
    pub(super) fn entry_point(&self) -> String {
        format!("__x64_sys_{}", self.entry_name())
    }

    /// Its fexit program in `bpf/file.bpf.c` (`FEXIT(name, id)` defines `fx_<name>`).
    pub(super) fn fexit_program(&self) -> String {
        format!("fx_{}", self.entry_name())
    }

    /// Its `syscalls:sys_exit_<name>` program (`SYSCALL_EXIT(name, id)` defines `tx_<name>`).
    pub(super) fn exit_tracepoint_program(&self) -> String {
        format!("tx_{}", self.entry_name())
    }

    /// Its `syscalls:sys_enter_<name>` program, defined for the syscalls read at entry
    /// (`SYSCALL_ENTER_EXIT(name, id)` defines `te_<name>`).
    pub(super) fn enter_tracepoint_program(&self) -> String {
        format!("te_{}", self.entry_name())
    }

    /// Its fexit program of the fentry hook set (`FENTRY_EXIT(name, id)` defines `fy_<name>`).
    pub(super) fn fentry_exit_program(&self) -> String {
        format!("fy_{}", self.entry_name())
    }

    /// Its fentry program, defined for the syscalls read at entry (`FENTRY_ENTER_EXIT(name,
    /// id)` defines `fe_<name>`).
    pub(super) fn fentry_program(&self) -> String {
        format!("fe_{}", self.entry_name())
    }

    /// Its `syscall_handlers` entry: its handler id, with `SHRIKE_SYS_AT_ENTER` when
    /// sys_enter runs for it; 0 when its kind is not `armed`.
    pub(super) fn handler_entry(&self, armed: bool) -> u32 {
        match (armed, self.at_enter) {
            (false, _) => 0,
            (true, false) => self.id.0,
            (true, true) => self.id.0 | shrike_sys_entry::SHRIKE_SYS_AT_ENTER.0,
        }
    }
}

/// LSM hooks and the kinds they serve.
pub(super) const LSM_HOOKS: &[(&str, FileEventKind)] = &[
    ("lsm_path_unlink", K::File(W::Unlink)),
    ("lsm_path_rmdir", K::File(W::Unlink)),
    ("lsm_path_rename", K::File(W::Rename)),
    ("lsm_path_chmod", K::File(W::Chmod)),
    ("lsm_path_chown", K::File(W::Chown)),
    ("lsm_path_link", K::File(W::Link)),
    ("lsm_path_symlink", K::File(W::Link)),
    ("lsm_sb_mount", K::Mount),
    ("lsm_sb_umount", K::Mount),
    ("lsm_file_open", K::File(W::Open)),
    ("lsm_path_mknod", K::File(W::Open)),
    ("lsm_kernel_read_file", K::ModuleLoad),
    ("lsm_kernel_load_data", K::ModuleLoad),
    ("lsm_bpf", K::BpfLoad),
    ("lsm_ptrace_access_check", K::Ptrace),
    ("lsm_ptrace_traceme", K::Ptrace),
    ("lsm_task_fix_setuid", K::CredChange),
    ("lsm_task_fix_setgid", K::CredChange),
    ("lsm_capset", K::CredChange),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::abi::file::SYSCALL_TABLE;

    #[test]
    fn syscall_table_ids_are_unique_and_numbers_fit_the_table() {
        let ids: BTreeSet<u32> = SYSCALLS.iter().map(|s| s.id.0).collect();
        let nrs: BTreeSet<u32> = SYSCALLS.iter().map(|s| s.nr).collect();
        assert_eq!(ids.len(), SYSCALLS.len());
        assert_eq!(nrs.len(), SYSCALLS.len());
        assert!(SYSCALLS.iter().all(|s| (s.nr as usize) < SYSCALL_TABLE));
        assert_eq!(
            ids.len(),
            shrike_sys::SHRIKE_SYS_MAX.0 as usize - 1,
            "every handler has a syscall"
        );
    }
}
