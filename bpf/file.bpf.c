// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The file, privilege and kernel-integrity sensor: file_open/unlink/rename/chmod/chown/link,
 * file_utimes, module_load, bpf_load, ptrace, cred_change, mount/umount, namespace_change,
 * memfd_create, socket_create and signal, each with the process's context and the syscall's
 * result; file events filtered in the kernel against the watch set (bpf/lib/watch.h) so only
 * watched paths leave it.
 *
 * Three hook sets, chosen by user space at load by probing (crates/bpf/src/file/load.rs):
 *
 *   tracepoint  syscalls:sys_enter_<call> + sys_exit_<call> of each armed call only (classic
 *               tracepoints, needs tracefs and bpf_task_pt_regs: 5.15+). Arming any puts every
 *               syscall on the slow path (the syscall tracepoint tax, ARCHITECTURE.md), but
 *               only the armed calls run a program. Path strings are read at entry (what the
 *               kernel is about to use) and resolved against the cwd or the dirfd; a successful
 *               open is reported with the canonical path of the file in the fd table at exit.
 *   raw         tp_btf/sys_enter + tp_btf/sys_exit (raw syscall tracepoints with BTF; 5.5+),
 *               where the kernel has no syscall trace events: the same handlers behind a
 *               dispatch table indexed by syscall number, run on every syscall.
 *   lsm         BPF LSM hooks (path_unlink, path_rename, path_chmod, ... sb_mount, task_fix_setuid)
 *               observe the operation with the kernel's own dentries in hand, so paths are
 *               canonical (no "..", no symlinks); fexit on the __x64_sys_* entry points adds
 *               the result. Only the watched syscalls pay (BPF trampolines, 5.7+ and BPF LSM
 *               active), nothing else does. No LSM hook sees a set-times call (utimensat,
 *               futimens, utimes, futimesat, utime): its fexit reads the caller's strings (or
 *               the fd's file) and times, as the other sets do at entry.
 *
 * Signals come from tp_btf/signal_generate on both: not a syscall tracepoint (no tax), and it
 * sees kill, tkill, tgkill, rt_sigqueueinfo and pidfd_send_signal alike.
 *
 * Minimum kernel: 5.8 (the legacy build, bpf/lib/build.h; 5.17 for the main build, bpf_loop).
 * Tested on 5.10, 6.1, 6.12 and sid (kernel matrix, every hook set) and 6.18 (raw, tracepoint).
 *
 * The helpers are in bpf/lib/, one header per concern: file_record.h (the record and its
 * syscall), file_paths.h, file_filter.h (watch set and rules), file_pathops.h, file_open.h,
 * file_priv.h, file_cred.h, file_sys.h (the event families), file_lsm.h (the LSM hook set) and
 * file_dispatch.h (entry and exit to family). This file holds the programs.
 */

#include "file_dispatch.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
SHRIKE_ABI_ANCHOR;
struct shrike_file_anchor shrike_file_anchor SEC(".bss");

/* Not in vmlinux.h (#defines in the kernel). */
#define TS_COMPAT 0x0002
#define PF_KTHREAD 0x00200000
#define SI_USER 0
#define SI_KERNEL 0x80
#define SI_TIMER -2

/* Every syscall the family handles (crates/bpf/src/file/syscalls.rs SYSCALLS is the twin:
 * same names, same handlers): AT_ENTER for those read at entry too, AT_EXIT for the rest. Each
 * hook set below instantiates its programs from this one list. */
#define SHRIKE_FILE_SYSCALLS(AT_ENTER, AT_EXIT)                                             \
	AT_EXIT(open, SHRIKE_SYS_OPEN)                                                      \
	AT_EXIT(openat, SHRIKE_SYS_OPENAT)                                                  \
	AT_EXIT(openat2, SHRIKE_SYS_OPENAT2)                                                \
	AT_EXIT(creat, SHRIKE_SYS_CREAT)                                                    \
	AT_ENTER(unlink, SHRIKE_SYS_UNLINK)                                                 \
	AT_ENTER(unlinkat, SHRIKE_SYS_UNLINKAT)                                             \
	AT_ENTER(rmdir, SHRIKE_SYS_RMDIR)                                                   \
	AT_ENTER(rename, SHRIKE_SYS_RENAME)                                                 \
	AT_ENTER(renameat, SHRIKE_SYS_RENAMEAT)                                             \
	AT_ENTER(renameat2, SHRIKE_SYS_RENAMEAT2)                                           \
	AT_ENTER(chmod, SHRIKE_SYS_CHMOD)                                                   \
	AT_EXIT(fchmod, SHRIKE_SYS_FCHMOD)                                                  \
	AT_ENTER(fchmodat, SHRIKE_SYS_FCHMODAT)                                             \
	AT_ENTER(fchmodat2, SHRIKE_SYS_FCHMODAT2)                                           \
	AT_ENTER(chown, SHRIKE_SYS_CHOWN)                                                   \
	AT_EXIT(fchown, SHRIKE_SYS_FCHOWN)                                                  \
	AT_ENTER(lchown, SHRIKE_SYS_LCHOWN)                                                 \
	AT_ENTER(fchownat, SHRIKE_SYS_FCHOWNAT)                                             \
	AT_ENTER(link, SHRIKE_SYS_LINK)                                                     \
	AT_ENTER(linkat, SHRIKE_SYS_LINKAT)                                                 \
	AT_ENTER(symlink, SHRIKE_SYS_SYMLINK)                                               \
	AT_ENTER(symlinkat, SHRIKE_SYS_SYMLINKAT)                                           \
	AT_ENTER(init_module, SHRIKE_SYS_INIT_MODULE)                                       \
	AT_ENTER(finit_module, SHRIKE_SYS_FINIT_MODULE)                                     \
	AT_ENTER(bpf, SHRIKE_SYS_BPF)                                                       \
	AT_ENTER(ptrace, SHRIKE_SYS_PTRACE)                                                 \
	AT_ENTER(process_vm_readv, SHRIKE_SYS_PROCESS_VM_READV)                             \
	AT_ENTER(process_vm_writev, SHRIKE_SYS_PROCESS_VM_WRITEV)                           \
	AT_ENTER(setuid, SHRIKE_SYS_SETUID)                                                 \
	AT_ENTER(setreuid, SHRIKE_SYS_SETREUID)                                             \
	AT_ENTER(setresuid, SHRIKE_SYS_SETRESUID)                                           \
	AT_ENTER(setgid, SHRIKE_SYS_SETGID)                                                 \
	AT_ENTER(setregid, SHRIKE_SYS_SETREGID)                                             \
	AT_ENTER(setresgid, SHRIKE_SYS_SETRESGID)                                           \
	AT_ENTER(setfsuid, SHRIKE_SYS_SETFSUID)                                             \
	AT_ENTER(setfsgid, SHRIKE_SYS_SETFSGID)                                             \
	AT_ENTER(capset, SHRIKE_SYS_CAPSET)                                                 \
	AT_EXIT(mount, SHRIKE_SYS_MOUNT)                                                    \
	AT_EXIT(umount, SHRIKE_SYS_UMOUNT2)                                                 \
	AT_EXIT(setns, SHRIKE_SYS_SETNS)                                                    \
	AT_EXIT(unshare, SHRIKE_SYS_UNSHARE)                                                \
	AT_EXIT(clone, SHRIKE_SYS_CLONE)                                                    \
	AT_EXIT(clone3, SHRIKE_SYS_CLONE3)                                                  \
	AT_EXIT(memfd_create, SHRIKE_SYS_MEMFD_CREATE)                                      \
	AT_ENTER(utimensat, SHRIKE_SYS_UTIMENSAT)                                           \
	AT_ENTER(utimes, SHRIKE_SYS_UTIMES)                                                 \
	AT_ENTER(futimesat, SHRIKE_SYS_FUTIMESAT)                                           \
	AT_ENTER(utime, SHRIKE_SYS_UTIME)                                                   \
	AT_EXIT(socket, SHRIKE_SYS_SOCKET)                                                  \
	AT_EXIT(chroot, SHRIKE_SYS_CHROOT)                                                  \
	AT_EXIT(pivot_root, SHRIKE_SYS_PIVOT_ROOT)                                          \
	AT_EXIT(move_mount, SHRIKE_SYS_MOVE_MOUNT)

/* ------------------------------------------------------------------------------------------ */
/* Raw tracepoint mode (the fallback). */

static __always_inline bool compat_task(void)
{
	struct task_struct *task = current_task();

	return BPF_CORE_READ(task, thread_info.status) & TS_COMPAT;
}

/* Every entry handler behind one variable id is more than the verifier should walk in one
 * program: over its million instructions in the legacy build, 693,193 in the main one (845 ms of
 * the agent's start-up on this kernel). So each syscall's entry handler is a global function,
 * checked once with its handler a constant, as the per-syscall programs are (scalars only, as
 * 5.10 requires, so the registers are syscall_regs()', the same saved user registers the raw
 * tracepoint is given), and sys_enter only dispatches to them: 358,726 instructions, 528 ms.
 * The exit handlers are fewer and smaller: the main build walks them all in one program (91,241
 * instructions, 108 ms; as global functions 186,269 and 236 ms), the legacy build cannot. */
#define RAW_ENTER(name, handler)                                                            \
	__noinline int raw_enter_##name(__u64 nr)                                           \
	{                                                                                   \
		struct pt_regs *regs = syscall_regs();                                      \
                                                                                            \
		if (regs)                                                                   \
			on_enter(handler, regs, nr);                                        \
		return 0;                                                                   \
	}
#define RAW_EXIT(name, handler)                                                             \
	__noinline int raw_exit_##name(long ret)                                            \
	{                                                                                   \
		struct pt_regs *regs = syscall_regs();                                      \
                                                                                            \
		if (regs)                                                                   \
			on_exit(handler, regs, ret, false);                                 \
		return 0;                                                                   \
	}
#define RAW_ENTER_EXIT(name, handler) RAW_ENTER(name, handler) RAW_EXIT(name, handler)
#define RAW_NONE(name, handler)

#ifdef SHRIKE_LEGACY
SHRIKE_FILE_SYSCALLS(RAW_ENTER_EXIT, RAW_EXIT)
#else
SHRIKE_FILE_SYSCALLS(RAW_ENTER, RAW_NONE)
#endif

#define CASE_ENTER(name, handler)                                                           \
	case handler:                                                                       \
		raw_enter_##name(nr);                                                       \
		break;
#define CASE_EXIT(name, handler)                                                            \
	case handler:                                                                       \
		raw_exit_##name(ret);                                                       \
		break;

static __always_inline void raw_on_enter(__u32 h, struct pt_regs *regs, __u64 nr)
{
	switch (h) {
		SHRIKE_FILE_SYSCALLS(CASE_ENTER, RAW_NONE)
	}
}

#ifdef SHRIKE_LEGACY
static __always_inline void raw_on_exit(__u32 h, struct pt_regs *regs, long ret)
{
	switch (h) {
		SHRIKE_FILE_SYSCALLS(CASE_EXIT, CASE_EXIT)
	}
}
#else
#define raw_on_exit(h, regs, ret) on_exit(h, regs, ret, false)
#endif

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	__u32 entry = handler_of(id);

	if (!(entry & SHRIKE_SYS_AT_ENTER))
		return 0;
	if (compat_task()) {
		counter_inc(SHRIKE_CNT_COMPAT_SKIPPED);
		return 0;
	}
	raw_on_enter(entry & SHRIKE_SYS_ID_MASK, regs, id);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	__u64 nr = regs->orig_ax;
	__u32 entry = handler_of(nr);

	if (!entry)
		return 0;
	if (compat_task())
		return 0;
	raw_on_exit(entry & SHRIKE_SYS_ID_MASK, regs, ret);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Per-syscall tracepoint mode: one program on each armed syscall's own tracepoints
 * (syscalls:sys_enter_<name> and sys_exit_<name>), attached only for the armed kinds, so no
 * program runs on a syscall nothing watches. They still put every syscall on the slow path
 * while attached (the tracepoint tax is per task, not per call), but a call nobody watches
 * runs no BPF. The registers are the task's saved user registers (bpf_task_pt_regs, 5.15+),
 * the same the raw sys_enter/sys_exit programs above are given, so both share the handlers;
 * `handler` is a constant in each program, so each keeps only its own family's code. */

#define SYSCALL_EXIT(name, handler)                                                         \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                          \
	int tx_##name(struct trace_event_raw_sys_exit *ctx)                                 \
	{                                                                                   \
		struct pt_regs *regs;                                                       \
                                                                                            \
		if (handler_of(ctx->id) && !compat_task() && (regs = syscall_regs()))       \
			on_exit(handler, regs, ctx->ret, false);                            \
		return 0;                                                                   \
	}

#define SYSCALL_ENTER_EXIT(name, handler)                                                   \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                         \
	int te_##name(struct trace_event_raw_sys_enter *ctx)                                \
	{                                                                                   \
		struct pt_regs *regs;                                                       \
                                                                                            \
		if (!(handler_of(ctx->id) & SHRIKE_SYS_AT_ENTER))                           \
			return 0;                                                           \
		if (compat_task()) {                                                        \
			counter_inc(SHRIKE_CNT_COMPAT_SKIPPED);                             \
			return 0;                                                           \
		}                                                                           \
		regs = syscall_regs();                                                      \
		if (regs)                                                                   \
			on_enter(handler, regs, ctx->id);                                   \
		return 0;                                                                   \
	}                                                                                   \
	SYSCALL_EXIT(name, handler)

SHRIKE_FILE_SYSCALLS(SYSCALL_ENTER_EXIT, SYSCALL_EXIT)


/* ------------------------------------------------------------------------------------------ */
/* Fentry mode (BPF trampolines without BPF LSM): fentry on the entry point of each armed call
 * read at entry, fexit on each armed call. Only the armed calls pay: no syscall tracepoint is
 * attached, so no other system call takes the slow path. The strings and registers are the
 * ones the tracepoint sets read; `handler` is a constant in each program. */

/* The registers an entry point was given. 5.10's BTF gives some entry points a pt_regs it only
 * forward-declares (e.g. __x64_sys_init_module), which the verifier will not let a program
 * read: the legacy build takes the copy syscall_regs() reads from the task's stack instead. */
#ifdef SHRIKE_LEGACY
#define entry_regs(regs) syscall_regs()
#else
#define entry_regs(regs) (regs)
#endif

#define FENTRY_EXIT(name, handler)                                                          \
	SEC("fexit/__x64_sys_" #name)                                                       \
	int BPF_PROG(fy_##name, struct pt_regs *regs, long ret)                             \
	{                                                                                   \
		struct pt_regs *r = entry_regs(regs);                                       \
                                                                                            \
		if (r && handler_of(r->orig_ax))                                            \
			on_exit(handler, r, ret, false);                                    \
		return 0;                                                                   \
	}

#define FENTRY_ENTER_EXIT(name, handler)                                                    \
	SEC("fentry/__x64_sys_" #name)                                                      \
	int BPF_PROG(fe_##name, struct pt_regs *regs)                                       \
	{                                                                                   \
		struct pt_regs *r = entry_regs(regs);                                       \
		__u64 nr;                                                                   \
                                                                                            \
		if (!r)                                                                     \
			return 0;                                                           \
		nr = r->orig_ax;                                                            \
		if (handler_of(nr) & SHRIKE_SYS_AT_ENTER)                                   \
			on_enter(handler, r, nr);                                           \
		return 0;                                                                   \
	}                                                                                   \
	FENTRY_EXIT(name, handler)

SHRIKE_FILE_SYSCALLS(FENTRY_ENTER_EXIT, FENTRY_EXIT)

/* ------------------------------------------------------------------------------------------ */
/* LSM mode: fexit on each syscall's entry point, and the LSM hooks that see the objects. */

#define FEXIT(name, id)                                                                     \
	SEC("fexit/__x64_sys_" #name)                                                       \
	int BPF_PROG(fx_##name, struct pt_regs *regs, long ret)                             \
	{                                                                                   \
		struct pt_regs *r = entry_regs(regs);                                       \
                                                                                            \
		if (r && handler_of(r->orig_ax))                                            \
			on_exit(id, r, ret, true);                                          \
		return 0;                                                                   \
	}

SHRIKE_FILE_SYSCALLS(FEXIT, FEXIT)


SEC("lsm/file_open")
int BPF_PROG(lsm_file_open, struct file *file)
{
	struct path fpath;

	bpf_core_read(&fpath, sizeof(fpath), &file->f_path);
	return lsm_open(&fpath, BPF_CORE_READ(file, f_flags), false);
}

SEC("lsm/path_mknod")
int BPF_PROG(lsm_path_mknod, const struct path *dir, struct dentry *dentry, umode_t mode,
	     unsigned int dev)
{
	struct path fpath;

	fpath.mnt = BPF_CORE_READ(dir, mnt);
	fpath.dentry = dentry;
	return lsm_open(&fpath, O_CREAT, true);
}

SEC("lsm/path_unlink")
int BPF_PROG(lsm_path_unlink, const struct path *dir, struct dentry *dentry)
{
	return lsm_file_op(SHRIKE_WATCH_UNLINK, BPF_CORE_READ(dir, mnt), dentry, 0, 0, 0, 0,
			   0xffffffff, 0xffffffff);
}

SEC("lsm/path_rmdir")
int BPF_PROG(lsm_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	return lsm_file_op(SHRIKE_WATCH_UNLINK, BPF_CORE_READ(dir, mnt), dentry, 0, 0, 0, 0,
			   0xffffffff, 0xffffffff);
}

SEC("lsm/path_rename")
int BPF_PROG(lsm_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	return lsm_file_op(SHRIKE_WATCH_RENAME, BPF_CORE_READ(old_dir, mnt), old_dentry,
			   BPF_CORE_READ(new_dir, mnt), new_dentry, 0, 0, 0xffffffff, 0xffffffff);
}

SEC("lsm/path_chmod")
int BPF_PROG(lsm_path_chmod, const struct path *path, umode_t mode)
{
	return lsm_file_op(SHRIKE_WATCH_CHMOD, BPF_CORE_READ(path, mnt),
			   BPF_CORE_READ(path, dentry), 0, 0, 0, mode & 07777, 0xffffffff,
			   0xffffffff);
}

SEC("lsm/path_chown")
int BPF_PROG(lsm_path_chown, const struct path *path, __u32 uid, __u32 gid)
{
	/* kuid_t and kgid_t are one-member structs, passed as the integer. */
	return lsm_file_op(SHRIKE_WATCH_CHOWN, BPF_CORE_READ(path, mnt),
			   BPF_CORE_READ(path, dentry), 0, 0, 0, 0, uid, gid);
}

SEC("lsm/path_link")
int BPF_PROG(lsm_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	struct vfsmount *mnt = BPF_CORE_READ(new_dir, mnt);

	return lsm_file_op(SHRIKE_WATCH_LINK, mnt, old_dentry, mnt, new_dentry, 0, 0, 0xffffffff,
			   0xffffffff);
}

SEC("lsm/path_symlink")
int BPF_PROG(lsm_path_symlink, const struct path *dir, struct dentry *dentry, const char *old_name)
{
	return lsm_file_op(SHRIKE_WATCH_LINK, 0, 0, BPF_CORE_READ(dir, mnt), dentry, old_name, 0,
			   0xffffffff, 0xffffffff);
}

SEC("lsm/sb_mount")
int BPF_PROG(lsm_sb_mount, const char *dev_name, const struct path *path, const char *type,
	     unsigned long flags, void *data)
{
	return lsm_mount(SHRIKE_REC_MOUNT, dev_name, path, type, flags);
}

SEC("lsm/sb_umount")
int BPF_PROG(lsm_sb_umount, struct vfsmount *mnt, int flags)
{
	struct path target;

	target.mnt = mnt;
	target.dentry = BPF_CORE_READ(mnt, mnt_root);
	return lsm_mount(SHRIKE_REC_UMOUNT, 0, &target, 0, flags);
}

SEC("lsm/task_fix_setuid")
int BPF_PROG(lsm_task_fix_setuid, struct cred *new, const struct cred *old, int flags)
{
	return lsm_old_creds(old);
}

SEC("lsm/task_fix_setgid")
int BPF_PROG(lsm_task_fix_setgid, struct cred *new, const struct cred *old, int flags)
{
	return lsm_old_creds(old);
}

SEC("lsm/capset")
int BPF_PROG(lsm_capset, struct cred *new, const struct cred *old)
{
	return lsm_old_creds(old);
}

SEC("lsm/kernel_read_file")
int BPF_PROG(lsm_kernel_read_file, struct file *file, enum kernel_read_file_id id, bool contents)
{
	if (id != bpf_core_enum_value(enum kernel_read_file_id, READING_MODULE))
		return 0;
	return lsm_priv(SHRIKE_ENF_MODULE, 0);
}

SEC("lsm/kernel_load_data")
int BPF_PROG(lsm_kernel_load_data, enum kernel_load_data_id id, bool contents)
{
	if (id != bpf_core_enum_value(enum kernel_load_data_id, LOADING_MODULE))
		return 0;
	return lsm_priv(SHRIKE_ENF_MODULE, 0);
}

SEC("lsm/bpf")
int BPF_PROG(lsm_bpf, int cmd, union bpf_attr *attr, unsigned int size)
{
	if (cmd != BPF_PROG_LOAD_CMD)
		return 0;
	return lsm_priv(SHRIKE_ENF_BPF, 0);
}

/* Attaching (PTRACE_ATTACH, PTRACE_SEIZE) checks PTRACE_MODE_ATTACH, and so does
 * process_vm_readv/writev before it touches the target's memory; /proc reads and other checks
 * outside those syscalls are not ptrace events and are left alone. */
SEC("lsm/ptrace_access_check")
int BPF_PROG(lsm_ptrace_access_check, struct task_struct *child, unsigned int mode)
{
	__u32 h;

	lsm_syscall(&h);
	if (!is_ptrace_op(h) || !(mode & PTRACE_MODE_ATTACH))
		return 0;
	return lsm_priv(SHRIKE_ENF_PTRACE, BPF_CORE_READ(child, tgid));
}

SEC("lsm/ptrace_traceme")
int BPF_PROG(lsm_ptrace_traceme, struct task_struct *parent)
{
	return lsm_priv(SHRIKE_ENF_PTRACE, BPF_CORE_READ(parent, tgid));
}

/* ------------------------------------------------------------------------------------------ */
/* Signals, on both hook sets. */

SEC("tp_btf/signal_generate")
int BPF_PROG(on_signal, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
	     int result)
{
	struct task_struct *cur = current_task();
	struct shrike_signal_event e = {};
	__u32 sender = bpf_get_current_pid_tgid() >> 32;
	__u32 target = BPF_CORE_READ(task, tgid);
	int code;

	if (target == sender || (BPF_CORE_READ(cur, flags) & PF_KTHREAD))
		return 0;
	/* SEND_SIG_NOINFO (0) is a kill() by a process; SEND_SIG_PRIV (1) is the kernel. */
	if ((unsigned long)info == 0)
		code = SI_USER;
	else if ((unsigned long)info == 1)
		return 0;
	else
		code = BPF_CORE_READ(info, si_code);
	/* Positive codes and SI_TIMER are the kernel's own signals. */
	if (code > 0 || code == SI_TIMER)
		return 0;
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	e.signal = sig;
	e.target_pid = target;
	e.target_tid = BPF_CORE_READ(task, pid);
	e.si_code = code;
	e.delivery = result;
	{
		/* task->tgid is the global id: the lineage map's key. */
		struct shrike_proc *p = bpf_map_lookup_elem(&procs, &target);

		e.target_exec_id = p ? p->exec_id : 0;
	}
	fill_header(&e.hdr, SHRIKE_REC_SIGNAL, sizeof(e));
	emit_record(&e, sizeof(e));
	return 0;
}
