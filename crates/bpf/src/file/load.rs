//! Loading `bpf/file.bpf.c` with the hook set the kernel offers: which programs load (the fexit
//! of each armed syscall the kernel has and the LSM hooks of the armed kinds; or fentry/fexit on
//! the armed syscalls where trampolines work without BPF LSM; or the per-syscall
//! tracepoints of each armed syscall; or, where tracefs has no syscall events, the two raw
//! syscall tracepoints), the dispatch table written before anything is attached, and the
//! initial watch set. `auto` takes the raw pair where an armed syscall has no trace event, so
//! that attempts of it are seen; elsewhere an armed syscall the kernel lacks is not hooked, and
//! the kinds that leaves without any call are in the family's status ([`Unseen`]).

use std::collections::BTreeSet;

use libbpf_rs::skel::{OpenSkel, Skel};
use libbpf_rs::{Link, MapCore, MapFlags};

use crate::abi::file::SYSCALL_TABLE;
use crate::capability::{
    disable, load_degrading, open_skel, Capability, ProgramCap, Refusal, State, Status, Unseen,
};
use crate::loader::{Family, LoadError, SharedMaps};
use crate::probe::HookPlan;
use crate::skel::file::FileSkelBuilder;

use super::maps::map_err;
use super::syscalls::{Syscall, LSM_HOOKS, PATH_CHANGING};
use super::{FileEventKind, FileWatch, WatchKind, WatchSet, SYSCALLS};

/// Which hooks observe the family's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileHooks {
    /// LSM hooks + fexit where BPF LSM programs are called, else fentry + fexit where BPF
    /// trampolines work, else syscall tracepoints.
    #[default]
    Auto,
    /// LSM hooks + fexit; loading fails where BPF LSM is not active.
    Lsm,
    /// The armed syscalls' own tracepoints (`syscalls:sys_{enter,exit}_<name>`); the raw
    /// pair where the kernel has no syscall events.
    Tracepoint,
    /// `sys_enter`/`sys_exit` raw tracepoints (with BTF), a program on every syscall: the
    /// fallback, selectable to measure it.
    RawTracepoint,
    /// fentry + fexit on the armed syscalls' entry points (BPF trampolines, no BPF LSM).
    Fentry,
}

/// How the family is configured at load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOptions {
    pub hooks: FileHooks,
    /// The kinds to arm; the others' syscalls are not handled (and, with LSM, not hooked).
    pub kinds: BTreeSet<FileEventKind>,
    /// The watch set in force from the start.
    pub watch: WatchSet,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            hooks: FileHooks::Auto,
            kinds: FileEventKind::all(),
            watch: WatchSet::builtin(),
        }
    }
}

/// The hook set a loaded family uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookSet {
    Lsm,
    /// Per-syscall tracepoints.
    Tracepoint,
    /// The raw `sys_enter`/`sys_exit` pair.
    RawTracepoint,
    /// fentry/fexit on the armed syscalls, without LSM hooks.
    Fentry,
}

/// The loaded family; dropping it detaches its programs.
pub struct FileSensor {
    _links: Vec<Link>,
    hooks: Vec<String>,
    pub hook_set: HookSet,
    /// LSM hooks of the set the kernel refused (their calls are seen at fexit).
    unhooked: Vec<Refusal>,
    /// Armed kinds whose every system call this kernel lacks.
    unseen: Vec<Unseen>,
}

impl Family for FileSensor {
    fn hooks(&self) -> Vec<String> {
        self.hooks.clone()
    }
}

impl HookSet {
    /// The file sensor's capability on this hook set.
    pub(crate) fn status(self) -> Status {
        match self {
            HookSet::Lsm => Status::new(
                Capability::FileEvents,
                State::Ok,
                "BPF LSM hooks + fexit on the watched system calls",
            ),
            HookSet::Tracepoint => Status::new(
                Capability::FileEvents,
                State::Fallback,
                "the armed system calls' own tracepoints (syscalls:sys_enter_*/sys_exit_*)",
            )
            .because("BPF LSM is not active and BPF trampolines are refused: every system call takes the kernel's slow path while the sensor is armed (the syscall-tracepoint tax), only the armed ones run a program; unlink/rename/chmod/chown/link/set-times/mount paths are the caller's strings made absolute against the cwd or dirfd; 32-bit (ia32) system calls are not decoded"),
            HookSet::Fentry => Status::new(
                Capability::FileEvents,
                State::Fallback,
                "fentry + fexit on the armed system calls",
            )
            .because("BPF LSM is not active: only the armed system calls pay (BPF trampolines, no syscall tracepoint), but unlink/rename/chmod/chown/link/set-times/mount paths are the caller's strings made absolute against the cwd or dirfd, and deny rules kill (SIGKILL) instead of refusing (EPERM)"),
            HookSet::RawTracepoint => Status::new(
                Capability::FileEvents,
                State::Fallback,
                "tp_btf sys_enter + sys_exit behind a syscall dispatch table",
            )
            .because("BPF LSM is not active, BPF trampolines are refused, and the per-syscall tracepoints were not taken (an armed system call has no trace events here, e.g. the module calls on a kernel without module support, and only this pair sees attempts of it; or tracefs has no syscall events; or --file-hooks raw-tracepoint; the log says which): a program runs on every system call while the sensor is armed; unlink/rename/chmod/chown/link/set-times/mount paths are the caller's strings made absolute against the cwd or dirfd; 32-bit (ia32) system calls are not decoded"),
        }
    }
}

impl FileSensor {
    /// The family's capability as loaded: its hook set's, what a refused LSM hook costs, and
    /// the armed kinds the kernel cannot produce.
    pub fn status(&self) -> Status {
        let mut status = status_of(self.hook_set, &self.unhooked);
        status.unseen = self.unseen.clone();
        status
    }
}

/// The capability of `hook_set` loaded without the `unhooked` LSM hooks.
fn status_of(hook_set: HookSet, unhooked: &[Refusal]) -> Status {
    let status = hook_set.status();
    if unhooked.is_empty() {
        return status;
    }
    let calls: Vec<&str> = unhooked
        .iter()
        .filter_map(|r| LSM_PATH_HOOKS.iter().find(|p| p.program == r.program))
        .map(|p| p.hook)
        .collect();
    let refused: Vec<String> = unhooked
        .iter()
        .map(|r| format!("{} refused: {}", r.program, r.reason))
        .collect();
    let hook = format!("{}, except {} (fexit only)", status.hook, calls.join(", "));
    Status::new(Capability::FileEvents, State::Fallback, hook)
        .because(format!("{FEXIT_ONLY}; {}", refused.join("; ")))
}

/// What a refused LSM path hook costs its calls.
const FEXIT_ONLY: &str = "the kernel refused some of the set's LSM hooks: their calls are seen at fexit, with the caller's strings made absolute against the cwd or dirfd, and deny rules on them kill (SIGKILL) instead of refusing (EPERM)";

/// The LSM hooks whose calls the fexit programs also handle (`bpf/lib/file_dispatch.h`: a call
/// no LSM hook saw is built from the caller's strings): one the kernel refuses is left out, and
/// those calls are seen at fexit only.
const LSM_PATH_HOOKS: &[ProgramCap] = &[
    path_hook("lsm_path_unlink", "lsm/path_unlink"),
    path_hook("lsm_path_rmdir", "lsm/path_rmdir"),
    path_hook("lsm_path_rename", "lsm/path_rename"),
    path_hook("lsm_path_chmod", "lsm/path_chmod"),
    path_hook("lsm_path_chown", "lsm/path_chown"),
    path_hook("lsm_path_link", "lsm/path_link"),
    path_hook("lsm_path_symlink", "lsm/path_symlink"),
];

const fn path_hook(program: &'static str, hook: &'static str) -> ProgramCap {
    ProgramCap {
        program,
        hook,
        capability: Capability::FileEvents,
    }
}

/// Whether opens may be decided on their directory (`cfg_dir_cache`, bpf/lib/dir_cache.h): a
/// hook set without LSM that sees every call changing a directory's path (`hooked`) and arms
/// opens; the LSM set decides its opens in its own hook.
fn dir_cache_usable(
    hook_set: HookSet,
    armed: &dyn Fn(&FileEventKind) -> bool,
    hooked: impl Fn(&Syscall) -> bool,
) -> bool {
    hook_set != HookSet::Lsm
        && armed(&FileEventKind::File(WatchKind::Open))
        && SYSCALLS
            .iter()
            .filter(|s| PATH_CHANGING.contains(&s.name))
            .all(|s| armed(&s.kind) && hooked(s))
}

/// The `SHRIKE_WATCH_*` kinds of the refused LSM hooks (`cfg_lsm_unhooked`).
fn unhooked_kinds(refused: &[Refusal]) -> u32 {
    LSM_HOOKS
        .iter()
        .filter(|(name, _)| refused.iter().any(|r| r.program == *name))
        .fold(0, |mask, (_, kind)| match kind {
            FileEventKind::File(w) => mask | w.bit(),
            _ => mask,
        })
}

/// Functions of the running kernel's BTF, to skip fexit programs whose syscall it lacks
/// (`fchmodat2` before 6.6).
fn kernel_has_function(btf: &libbpf_rs::btf::Btf<'_>, name: &str) -> bool {
    btf.type_by_name::<libbpf_rs::btf::types::Func<'_>>(name)
        .is_some()
}

/// Opens, configures, loads and attaches the family, sharing the process object's maps.
pub fn load(
    shared: &SharedMaps<'_>,
    wakeup_bytes: u64,
    opts: &FileOptions,
    plan: &HookPlan,
) -> Result<(FileSensor, FileWatch), LoadError> {
    let lsm = match opts.hooks {
        FileHooks::Lsm => true,
        FileHooks::Auto => plan.bpf_lsm,
        FileHooks::Tracepoint | FileHooks::RawTracepoint | FileHooks::Fentry => false,
    };
    let fentry = match opts.hooks {
        FileHooks::Fentry => true,
        FileHooks::Auto => !lsm && plan.fentry,
        _ => false,
    };
    // The armed calls the kernel lacks (no trace event, no entry point): not hooked.
    let mut absent = Vec::new();
    let hook_set = if lsm {
        HookSet::Lsm
    } else if fentry {
        HookSet::Fentry
    } else if opts.hooks == FileHooks::RawTracepoint {
        HookSet::RawTracepoint
    } else {
        match syscall_events() {
            Ok(dir) => {
                let untraced = untraced(&dir, opts);
                if opts.hooks == FileHooks::Auto && !untraced.is_empty() {
                    // Only the raw pair sees a call the kernel has no trace events for (one it
                    // was built without: a module load attempt is ENOSYS, but still an attack).
                    tracing::info!(
                        syscalls = ?untraced,
                        "the kernel has no trace events for these armed system calls: the file sensor runs on the raw sys_enter/sys_exit pair so that attempts of them are seen (--file-hooks tracepoint leaves them unseen, their rules not in force, and runs no program on unwatched calls)"
                    );
                    HookSet::RawTracepoint
                } else {
                    absent = untraced;
                    HookSet::Tracepoint
                }
            }
            Err(why) => {
                tracing::warn!(
                    "per-syscall tracepoints are not available ({why}): the file sensor runs a program on every system call instead (raw sys_enter/sys_exit)"
                );
                HookSet::RawTracepoint
            }
        }
    };
    let armed = |k: &FileEventKind| opts.kinds.contains(k);
    let mut wanted: BTreeSet<String> = BTreeSet::new();
    match hook_set {
        HookSet::Tracepoint => {
            for s in SYSCALLS.iter().filter(|s| armed(&s.kind)) {
                if absent.contains(&s.name) {
                    continue;
                }
                wanted.insert(s.exit_tracepoint_program());
                if s.at_enter {
                    wanted.insert(s.enter_tracepoint_program());
                }
            }
        }
        HookSet::RawTracepoint => {
            if SYSCALLS.iter().any(|s| armed(&s.kind)) {
                wanted.insert("sys_enter".into());
                wanted.insert("sys_exit".into());
            }
        }
        HookSet::Lsm | HookSet::Fentry => {
            let btf = libbpf_rs::btf::Btf::from_vmlinux().map_err(|source| LoadError::Open {
                object: "vmlinux BTF",
                source,
            })?;
            for s in SYSCALLS.iter().filter(|s| armed(&s.kind)) {
                if !kernel_has_function(&btf, &s.entry_point()) {
                    absent.push(s.name);
                } else if hook_set == HookSet::Lsm {
                    wanted.insert(s.fexit_program());
                } else {
                    wanted.insert(s.fentry_exit_program());
                    if s.at_enter {
                        wanted.insert(s.fentry_program());
                    }
                }
            }
            if hook_set == HookSet::Lsm {
                for (name, kind) in LSM_HOOKS {
                    if armed(kind) {
                        wanted.insert((*name).to_string());
                    }
                }
            }
        }
    }
    if armed(&FileEventKind::Signal) {
        wanted.insert("on_signal".into());
    }
    if !absent.is_empty() {
        tracing::info!(
            syscalls = ?absent,
            "the kernel has no such system calls (it was built without them, e.g. the module calls without module support: every call fails with ENOSYS and has no trace event or entry point to hook): not hooked, attempts are not seen (--file-hooks raw-tracepoint sees them, with a program on every system call)"
        );
    }
    let unseen = unseen_kinds(&absent, &armed);
    let dir_cache = dir_cache_usable(hook_set, &armed, |s| match hook_set {
        HookSet::Tracepoint => wanted.contains(&s.exit_tracepoint_program()),
        HookSet::Fentry => wanted.contains(&s.fentry_exit_program()),
        HookSet::RawTracepoint => true,
        HookSet::Lsm => false,
    });
    // With LSM, a path hook the kernel refuses (5.10 takes no struct argument: kuid_t in
    // path_chown) costs its calls the LSM's view, not the family: they are seen at fexit.
    let optional: &[ProgramCap] = if hook_set == HookSet::Lsm {
        LSM_PATH_HOOKS
    } else {
        &[]
    };
    let (mut skel, unhooked) = load_degrading("file", optional, |refused| {
        let mut open = open_skel(
            FileSkelBuilder::default(),
            &crate::skel::file::OBJECT,
            "file",
        )?;
        let maps = &mut open.maps;
        shared.reuse(&mut maps.events, &mut maps.counters, &mut maps.procs)?;
        shared.reuse_net_written(&mut open.maps.net_written)?;
        if let Some(rodata) = open.maps.rodata_data.as_deref_mut() {
            rodata.cfg_wakeup_bytes = wakeup_bytes;
            rodata.cfg_self_tgid = std::process::id();
            rodata.cfg_lsm_unhooked = unhooked_kinds(refused);
            rodata.cfg_dir_cache = u32::from(dir_cache);
        }
        for mut prog in open.open_object_mut().progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            prog.set_autoload(wanted.contains(&name));
        }
        disable(open.open_object_mut(), refused);
        Ok(open)
    })?;
    for r in &unhooked {
        wanted.remove(&r.program);
    }

    // The dispatch table, before anything is attached.
    for s in SYSCALLS {
        let value = s.handler_entry(armed(&s.kind));
        debug_assert!((s.nr as usize) < SYSCALL_TABLE);
        skel.maps
            .syscall_handlers
            .update(&s.nr.to_ne_bytes(), &value.to_ne_bytes(), MapFlags::ANY)
            .map_err(map_err("syscall_handlers"))?;
    }
    let watch = FileWatch::open(&skel)?;
    watch.replace(&opts.watch)?;

    let mut links = Vec::new();
    let mut hooks = Vec::new();
    for prog in skel.object_mut().progs_mut() {
        let name = prog.name().to_string_lossy().into_owned();
        if !wanted.contains(&name) {
            continue;
        }
        let section = prog.section().to_string_lossy().into_owned();
        let link = prog.attach().map_err(|source| LoadError::Attach {
            program: leak_name(&name),
            source,
        })?;
        links.push(link);
        hooks.push(section);
    }
    // The links hold the programs and `watch` the maps it writes: the skeleton goes now, and
    // with it libbpf's copy of the object and the ~3 MB of inflated object bytes.
    drop(skel);
    Ok((
        FileSensor {
            _links: links,
            hooks,
            hook_set,
            unhooked,
            unseen,
        },
        watch,
    ))
}

/// The directory of the kernel's syscall trace events (`<tracefs>/events/syscalls`), mounting
/// tracefs at its default path first if it is not there (libbpf looks for it there); an error
/// says why there is none (tracefs cannot be mounted, or the kernel was built without
/// `CONFIG_FTRACE_SYSCALLS`).
fn syscall_events() -> Result<std::path::PathBuf, String> {
    use crate::mounts::{ensure_at_default, SpecialFs};
    let tracefs = ensure_at_default(SpecialFs::Tracefs).map_err(|e| e.to_string())?;
    if tracefs.mounted_now {
        tracing::info!(path = %tracefs.path.display(), "mounted tracefs for the syscall tracepoints");
    }
    let events = tracefs.path.join("events/syscalls");
    if events.is_dir() {
        Ok(events)
    } else {
        Err(format!(
            "{} does not exist: the kernel has no syscall trace events",
            events.display()
        ))
    }
}

/// The armed syscalls the kernel has no trace events for (in `events`, the syscall events
/// directory): ones it was built without, e.g. the module calls without module support.
fn untraced(events: &std::path::Path, opts: &FileOptions) -> Vec<&'static str> {
    SYSCALLS
        .iter()
        .filter(|s| opts.kinds.contains(&s.kind))
        .filter(|s| !events.join(format!("sys_exit_{}", s.entry_name())).exists())
        .map(|s| s.name)
        .collect()
}

/// The armed kinds every system call of which is `absent` from the kernel: events of them
/// cannot happen on the hooks in use (a call the kernel lacks fails with ENOSYS before any of
/// them; only the raw pair, which sees every call number, would see the attempt).
fn unseen_kinds(absent: &[&'static str], armed: &dyn Fn(&FileEventKind) -> bool) -> Vec<Unseen> {
    let mut out: Vec<Unseen> = Vec::new();
    for kind in FileEventKind::all().into_iter().filter(|k| armed(k)) {
        let calls: Vec<&'static str> = SYSCALLS
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.name)
            .collect();
        if !calls.is_empty() && calls.iter().all(|c| absent.contains(c)) {
            out.push(Unseen { kind, calls });
        }
    }
    out
}

/// Program names for errors, which want `&'static str`; only on the failure path.
fn leak_name(name: &str) -> &'static str {
    Box::leak(name.to_string().into_boxed_str())
}

#[cfg(test)]
mod tests {
    use std::mem::MaybeUninit;

    use libbpf_rs::skel::SkelBuilder;

    use super::*;

    /// The directory cache needs a set without LSM that sees every call changing a
    /// directory's path: one missing call (a kernel without move_mount's trace events, a kind
    /// left unarmed) turns it off.
    #[test]
    fn the_directory_cache_is_on_only_where_every_path_change_is_hooked() {
        use HookSet::{Fentry, Lsm, RawTracepoint as Raw, Tracepoint};
        let all = |_: &FileEventKind| true;
        let every = |_: &Syscall| true;
        assert!(dir_cache_usable(Raw, &all, every));
        assert!(dir_cache_usable(Tracepoint, &all, every));
        assert!(dir_cache_usable(Fentry, &all, every));
        assert!(!dir_cache_usable(Lsm, &all, every));
        let no_move_mount = |s: &Syscall| s.name != "move_mount";
        assert!(!dir_cache_usable(Tracepoint, &all, no_move_mount));
        let no_mounts = |k: &FileEventKind| *k != FileEventKind::Mount;
        assert!(!dir_cache_usable(Raw, &no_mounts, every));
        let no_opens = |k: &FileEventKind| *k != FileEventKind::File(WatchKind::Open);
        assert!(!dir_cache_usable(Raw, &no_opens, every));
        for name in PATH_CHANGING {
            let handled = SYSCALLS.iter().any(|s| s.name == *name);
            assert!(handled, "{name} is in SYSCALLS");
        }
    }

    /// A refused path hook (5.10's `lsm_path_chown`) keeps the LSM set but makes it a fallback
    /// that names the hook and the verifier's words, and its kind is the one fexit enforces.
    #[test]
    fn a_refused_path_hook_is_a_fallback_for_its_calls_only() {
        assert_eq!(status_of(HookSet::Lsm, &[]).state, State::Ok);
        let refused = [Refusal {
            program: "lsm_path_chown".into(),
            reason: "-EINVAL; verifier: arg1 type STRUCT is unsupported".into(),
        }];
        let status = status_of(HookSet::Lsm, &refused);
        assert_eq!(status.state, State::Fallback);
        assert_eq!(
            status.hook,
            "BPF LSM hooks + fexit on the watched system calls, except lsm/path_chown (fexit only)"
        );
        let reason = status.reason.expect("a reason");
        assert!(
            reason.ends_with(
                "; lsm_path_chown refused: -EINVAL; verifier: arg1 type STRUCT is unsupported"
            ),
            "{reason}"
        );
        assert_eq!(
            unhooked_kinds(&refused),
            crate::file::WatchKind::Chown.bit()
        );
        assert_eq!(unhooked_kinds(&[]), 0);
        // Every optional hook is an LSM hook of a file kind, so its calls have an exit.
        for p in LSM_PATH_HOOKS {
            let kind = LSM_HOOKS.iter().find(|(name, _)| *name == p.program);
            assert!(
                matches!(kind, Some((_, FileEventKind::File(_)))),
                "{}",
                p.program
            );
            assert_eq!(p.hook, p.program.replacen("lsm_", "lsm/", 1));
        }
    }

    /// The programs `load` asks for by name (the fexit and the tracepoint programs of every
    /// syscall in the table, the LSM hooks, the raw tracepoints) are the ones `bpf/file.bpf.c` defines: a renamed or missing
    /// program would otherwise only show as a hook silently not loaded.
    #[test]
    fn every_program_the_loader_names_is_in_the_object() {
        let _lease = crate::skel::file::OBJECT.lease();
        let mut storage = MaybeUninit::uninit();
        let open = FileSkelBuilder::default()
            .open(&mut storage)
            .expect("the embedded file object opens (no kernel needed)");
        let programs: BTreeSet<String> = open
            .open_object()
            .progs()
            .map(|p| p.name().to_string_lossy().into_owned())
            .collect();
        let named = SYSCALLS
            .iter()
            .map(|s| s.fexit_program())
            .chain(LSM_HOOKS.iter().map(|(name, _)| name.to_string()))
            .chain(SYSCALLS.iter().map(|s| s.exit_tracepoint_program()))
            .chain(SYSCALLS.iter().map(|s| s.fentry_exit_program()))
            .chain(
                SYSCALLS
                    .iter()
                    .filter(|s| s.at_enter)
                    .map(|s| s.fentry_program()),
            )
            .chain(
                SYSCALLS
                    .iter()
                    .filter(|s| s.at_enter)
                    .map(|s| s.enter_tracepoint_program()),
            )
            .chain(["sys_enter", "sys_exit", "on_signal"].map(String::from));
        for name in named {
            assert!(programs.contains(&name), "no program {name} in the object");
        }
    }
}
