/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Opens (open, openat, openat2, creat) and fd operations (fchmod, fchown): built at the
 * syscall's exit from the fd table when the call succeeded, so the path is the canonical one of
 * the file opened; from the caller's string when it failed.
 */
#ifndef SHRIKE_FILE_OPEN_H
#define SHRIKE_FILE_OPEN_H

#include "file_pathops.h"
#include "dir_cache.h"
#include "net_written.h"

/* Not in vmlinux.h (#defines in the kernel). */
#define O_ACCMODE 00000003
#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 00000100
#define O_TRUNC 00001000
#define O_TMPFILE 020200000 /* __O_TMPFILE | O_DIRECTORY */

/*
 * Whether an open makes a file: O_CREAT, or O_TMPFILE. O_TMPFILE carries O_DIRECTORY's bit, so
 * it is tested whole: a directory opened with O_DIRECTORY (find, ls, tar) creates nothing.
 */
static __always_inline bool open_creates(__u64 flags)
{
	return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE;
}

static __always_inline __u32 access_of(__u32 flags)
{
	__u32 acc = 0;

	switch (flags & O_ACCMODE) {
	case 0:
		acc = SHRIKE_ACCESS_READ;
		break;
	case O_WRONLY:
		acc = SHRIKE_ACCESS_WRITE;
		break;
	case O_RDWR:
		acc = SHRIKE_ACCESS_READ | SHRIKE_ACCESS_WRITE;
		break;
	}
	if (flags & 010000000) /* O_PATH: no access */
		acc = 0;
	if (open_creates(flags))
		acc |= SHRIKE_ACCESS_CREATE;
	if (flags & O_TRUNC)
		acc |= SHRIKE_ACCESS_TRUNCATE;
	return acc;
}

/* The arguments of an open syscall. */
struct open_args {
	long dirfd;
	const char *upath;
	__u64 flags;
	__u32 mode;
};

static __always_inline void open_args_of(__u32 h, struct pt_regs *regs, struct open_args *a)
{
	long dirfd = AT_FDCWD;
	const char *upath;
	__u64 flags = 0;
	__u32 mode = 0;

	switch (h) {
	case SHRIKE_SYS_OPEN:
		upath = (const char *)sys_arg(regs, 0);
		flags = sys_arg(regs, 1);
		mode = sys_arg(regs, 2);
		break;
	case SHRIKE_SYS_CREAT:
		upath = (const char *)sys_arg(regs, 0);
		flags = O_CREAT | O_WRONLY | O_TRUNC;
		mode = sys_arg(regs, 1);
		break;
	case SHRIKE_SYS_OPENAT2: {
		struct open_how how = {};

		dirfd = (int)sys_arg(regs, 0);
		upath = (const char *)sys_arg(regs, 1);
		bpf_probe_read_user(&how, sizeof(how), (void *)sys_arg(regs, 2));
		flags = how.flags;
		mode = how.mode;
		break;
	}
	default:
		dirfd = (int)sys_arg(regs, 0);
		upath = (const char *)sys_arg(regs, 1);
		flags = sys_arg(regs, 2);
		mode = sys_arg(regs, 3);
	}
	a->dirfd = dirfd;
	a->upath = upath;
	a->flags = flags;
	a->mode = mode;
}

/* The fixed part of an open's record from its arguments. */
static __always_inline void open_fill(struct shrike_file_event *e, __u32 h,
				      const struct open_args *a)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->syscall = h;
	e->flags = a->flags;
	e->access = access_of(a->flags);
	e->mode = open_creates(a->flags) ? (a->mode & 07777) : 0;
	e->uid = 0xffffffff;
	e->gid = 0xffffffff;
	e->hdr.kind = SHRIKE_REC_FILE_OPEN;
}

/*
 * An open, at its exit. Without LSM (`lsm` false), a rule acting on a successful open kills
 * the process here: the fd exists but the process never returns to use it, so no byte of the
 * file reaches user space (a create or a truncation has happened). The path is the canonical
 * one of the file in the fd table, so a symlink or ".." does not get past the rule.
 */
static __always_inline void open_exit(__u32 h, struct pt_regs *regs, long ret, bool lsm)
{
	struct rec_buf *b;
	struct shrike_file_event *e;
	__u32 base = sizeof(*e);
	struct dir_probe dir = {};
	struct open_args a;
	__u64 hash = 0, epoch = 0;
	__u32 len = 0, access;
	struct file *f = 0;
	bool enforced = false;

	open_args_of(h, regs, &a);
	access = access_of(a.flags);
	if (ret >= 0)
		f = fd_file(current_task(), ret);
	/* Whatever the watch set says: an exec of this file will ask whether a networked
	 * image wrote it. */
	if (f && (access & SHRIKE_ACCESS_WRITE))
		net_written_note(f);
	/* Without LSM: a file in a directory known to hold nothing watched needs no record. */
	if (f && !lsm && dir_cache_skips(f, access, &dir, &epoch))
		return;
	b = scratch();
	if (!b)
		return;
	e = (struct shrike_file_event *)b->raw;
	open_fill(e, h, &a);
	if (f)
		len = put_file(b, base, f, &e->info, &hash);
	else
		len = put_user_path(b, base, 0, a.dirfd, a.upath, &e->info,
				    SHRIKE_FILE_PATH_TRUNCATED, &hash);
	e->path_len = len & LEN_MASK;
	b->size = base + (len & LEN_MASK);
	enforced = !lsm && ret >= 0 && file_kill(b, e, SHRIKE_ENF_OPEN, hash, 0);
	if (!enforced && !file_keep(b, e, SHRIKE_WATCH_OPEN, hash, 0)) {
		if (epoch && !(e->info & (SHRIKE_FILE_PATH_TRUNCATED | SHRIKE_FILE_UNRESOLVED)))
			dir_cache_file(&dir, &b->raw[base], e->path_len, epoch);
		return;
	}
	send_result(b, ret);
}

/* fchmod / fchown: the fd's file. Without LSM (or where the kernel refused the kind's LSM
 * hook), a rule acting on it kills the process here (the change has been made); with it,
 * path_chmod/path_chown refused it already. */
static __always_inline void fd_op_exit(__u32 h, struct pt_regs *regs, long ret, bool lsm)
{
	struct rec_buf *b = scratch();
	struct shrike_file_event *e;
	__u32 base = sizeof(*e);
	__u32 kind_bit = kind_bit_of(h);
	bool kill = !lsm || (cfg_lsm_unhooked & kind_bit);
	struct file *f;
	__u64 hash = 0;
	__u32 len = 0;

	if (!b)
		return;
	e = (struct shrike_file_event *)b->raw;
	__builtin_memset(e, 0, sizeof(*e));
	e->syscall = h;
	e->uid = 0xffffffff;
	e->gid = 0xffffffff;
	if (h == SHRIKE_SYS_FCHMOD) {
		e->mode = sys_arg(regs, 1) & 07777;
	} else {
		e->uid = sys_arg(regs, 1);
		e->gid = sys_arg(regs, 2);
	}
	f = fd_file(current_task(), (int)sys_arg(regs, 0));
	if (f)
		len = put_file(b, base, f, &e->info, &hash);
	else
		e->info |= SHRIKE_FILE_UNRESOLVED;
	e->path_len = len & LEN_MASK;
	e->hdr.kind = record_kind_of(kind_bit);
	b->size = base + (len & LEN_MASK);
	if (!(kill && file_kill(b, e, enf_kind_of(kind_bit), hash, 0)) &&
	    !file_keep(b, e, kind_bit, hash, 0))
		return;
	send_result(b, ret);
}

#endif /* SHRIKE_FILE_OPEN_H */
