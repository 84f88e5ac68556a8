/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * From a syscall's entry or exit to the handler of its family (bpf/lib/file_pathops.h,
 * file_open.h, file_priv.h, file_cred.h, file_sys.h). `lsm` is a constant in every caller, so
 * each program keeps only its own hook set's branches.
 */
#ifndef SHRIKE_FILE_DISPATCH_H
#define SHRIKE_FILE_DISPATCH_H

#include "file_lsm.h"
#include "file_sys.h"

static __always_inline bool is_path_op(__u32 h)
{
	switch (h) {
	case SHRIKE_SYS_UNLINK ... SHRIKE_SYS_RENAMEAT2:
	case SHRIKE_SYS_CHMOD:
	case SHRIKE_SYS_FCHMODAT:
	case SHRIKE_SYS_FCHMODAT2:
	case SHRIKE_SYS_CHOWN:
	case SHRIKE_SYS_LCHOWN:
	case SHRIKE_SYS_FCHOWNAT:
	case SHRIKE_SYS_LINK ... SHRIKE_SYS_SYMLINKAT:
	case SHRIKE_SYS_UTIMENSAT ... SHRIKE_SYS_UTIME:
		return true;
	}
	return false;
}

/* sys_enter (tracepoint mode): records whose inputs must be read before the call runs. */
static __always_inline void on_enter(__u32 h, struct pt_regs *regs, __u64 nr)
{
	struct rec_buf *b;

	dir_cache_enter(h, regs);
	if (is_cred_op(h)) {
		cred_enter(nr);
		return;
	}
	if (!is_path_op(h)) {
		priv_enter(h, regs, nr);
		return;
	}
	b = scratch();
	if (b && build_path_op(b, h, regs, true))
		keep_pending(b, nr);
}

static __always_inline void on_exit(__u32 h, struct pt_regs *regs, long ret, bool lsm)
{
	dir_cache_exit(h, regs);
	switch (h) {
	case SHRIKE_SYS_OPEN ... SHRIKE_SYS_CREAT:
		/* An open an LSM hook refused: its record is waiting. */
		if (lsm && lsm_took(regs->orig_ax)) {
			finish_pending(h, regs, ret, false);
			return;
		}
		open_exit(h, regs, ret, lsm);
		return;
	case SHRIKE_SYS_FCHMOD:
	case SHRIKE_SYS_FCHOWN:
		/* With LSM, path_chmod/path_chown built the record (and may have refused it). */
		if (lsm && lsm_took(regs->orig_ax)) {
			finish_pending(h, regs, ret, true);
			return;
		}
		fd_op_exit(h, regs, ret, lsm);
		return;
	case SHRIKE_SYS_INIT_MODULE:
	case SHRIKE_SYS_FINIT_MODULE:
		module_exit(h, regs, ret);
		return;
	case SHRIKE_SYS_BPF:
		bpf_exit(regs, ret);
		return;
	case SHRIKE_SYS_PTRACE:
	case SHRIKE_SYS_PROCESS_VM_READV:
	case SHRIKE_SYS_PROCESS_VM_WRITEV:
		ptrace_exit(h, regs, ret);
		return;
	case SHRIKE_SYS_SETUID ... SHRIKE_SYS_CAPSET:
		cred_exit(h, regs, ret);
		return;
	case SHRIKE_SYS_MOUNT:
	case SHRIKE_SYS_UMOUNT2:
		/* With LSM, sb_mount/sb_umount built the record. */
		if (lsm && lsm_took(regs->orig_ax)) {
			finish_pending(h, regs, ret, false);
			return;
		}
		mount_exit(h, regs, ret);
		return;
	case SHRIKE_SYS_SETNS ... SHRIKE_SYS_CLONE3:
		ns_exit(h, regs, ret);
		return;
	case SHRIKE_SYS_MEMFD_CREATE:
		memfd_exit(regs, ret);
		return;
	case SHRIKE_SYS_SOCKET:
		socket_exit(regs, ret);
		return;
	}
	if (!is_path_op(h))
		return;
	/* Built at entry (tracepoint), or by the LSM hook that saw it. */
	if (!lsm || lsm_took(regs->orig_ax)) {
		finish_pending(h, regs, ret, true);
		return;
	}
	/* No LSM hook saw it (the call failed before reaching one; the set-times calls have
	 * none, nor a kind whose hook the kernel refused): the caller's strings. A rule acting on
	 * a call without a hook kills here, as the tracepoint set does at entry: the change is
	 * made, the process never returns. */
	{
		struct rec_buf *b = scratch();
		__u32 kind_bit = kind_bit_of(h);
		bool unhooked = kind_bit == SHRIKE_WATCH_UTIMES || (cfg_lsm_unhooked & kind_bit);

		if (b && build_path_op(b, h, regs, unhooked))
			finish_file(b, h, regs, ret);
	}
}

#endif /* SHRIKE_FILE_DISPATCH_H */
