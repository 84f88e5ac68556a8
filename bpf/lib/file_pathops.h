/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * File operations whose path is a string (unlink, rmdir, rename, chmod, chown, link, symlink,
 * the set-times calls utimensat, utimes, futimesat and utime, and their *at variants): their
 * arguments, their record, and its completion at the syscall's exit. utimensat with a NULL path
 * (futimens) names its file by fd: its record has the fd's canonical path. Built at sys_enter
 * on the tracepoint hook set; on the LSM hook set only when no LSM hook saw the operation (it
 * failed before one, or it is a set-times call, which no LSM hook sees), at the exit.
 */
#ifndef SHRIKE_FILE_PATHOPS_H
#define SHRIKE_FILE_PATHOPS_H

#include "file_filter.h"
#include "file_paths.h"

/* Not in vmlinux.h (#defines in the kernel). */
#define AT_REMOVEDIR 0x200
#define UTIME_NOW ((1L << 30) - 1L)
#define UTIME_OMIT ((1L << 30) - 2L)

static __always_inline __u32 kind_bit_of(__u32 h)
{
	switch (h) {
	case SHRIKE_SYS_OPEN:
	case SHRIKE_SYS_OPENAT:
	case SHRIKE_SYS_OPENAT2:
	case SHRIKE_SYS_CREAT:
		return SHRIKE_WATCH_OPEN;
	case SHRIKE_SYS_UNLINK:
	case SHRIKE_SYS_UNLINKAT:
	case SHRIKE_SYS_RMDIR:
		return SHRIKE_WATCH_UNLINK;
	case SHRIKE_SYS_RENAME:
	case SHRIKE_SYS_RENAMEAT:
	case SHRIKE_SYS_RENAMEAT2:
		return SHRIKE_WATCH_RENAME;
	case SHRIKE_SYS_CHMOD:
	case SHRIKE_SYS_FCHMOD:
	case SHRIKE_SYS_FCHMODAT:
	case SHRIKE_SYS_FCHMODAT2:
		return SHRIKE_WATCH_CHMOD;
	case SHRIKE_SYS_CHOWN:
	case SHRIKE_SYS_FCHOWN:
	case SHRIKE_SYS_LCHOWN:
	case SHRIKE_SYS_FCHOWNAT:
		return SHRIKE_WATCH_CHOWN;
	case SHRIKE_SYS_LINK:
	case SHRIKE_SYS_LINKAT:
	case SHRIKE_SYS_SYMLINK:
	case SHRIKE_SYS_SYMLINKAT:
		return SHRIKE_WATCH_LINK;
	case SHRIKE_SYS_UTIMENSAT:
	case SHRIKE_SYS_UTIMES:
	case SHRIKE_SYS_FUTIMESAT:
	case SHRIKE_SYS_UTIME:
		return SHRIKE_WATCH_UTIMES;
	}
	return 0;
}

/* SHRIKE_ENF_* of a SHRIKE_WATCH_* bit. */
static __always_inline __u32 enf_kind_of(__u32 kind_bit)
{
	switch (kind_bit) {
	case SHRIKE_WATCH_OPEN:
		return SHRIKE_ENF_OPEN;
	case SHRIKE_WATCH_UNLINK:
		return SHRIKE_ENF_UNLINK;
	case SHRIKE_WATCH_RENAME:
		return SHRIKE_ENF_RENAME;
	case SHRIKE_WATCH_CHMOD:
		return SHRIKE_ENF_CHMOD;
	case SHRIKE_WATCH_CHOWN:
		return SHRIKE_ENF_CHOWN;
	case SHRIKE_WATCH_UTIMES:
		return SHRIKE_ENF_UTIMES;
	default:
		return SHRIKE_ENF_LINK;
	}
}

static __always_inline __u16 record_kind_of(__u32 kind_bit)
{
	switch (kind_bit) {
	case SHRIKE_WATCH_OPEN:
		return SHRIKE_REC_FILE_OPEN;
	case SHRIKE_WATCH_UNLINK:
		return SHRIKE_REC_FILE_UNLINK;
	case SHRIKE_WATCH_RENAME:
		return SHRIKE_REC_FILE_RENAME;
	case SHRIKE_WATCH_CHMOD:
		return SHRIKE_REC_FILE_CHMOD;
	case SHRIKE_WATCH_CHOWN:
		return SHRIKE_REC_FILE_CHOWN;
	case SHRIKE_WATCH_UTIMES:
		return SHRIKE_REC_FILE_UTIMES;
	default:
		return SHRIKE_REC_FILE_LINK;
	}
}

/* The per-syscall arguments of a string-path file operation, normalised. */
struct path_args {
	long dirfd1;
	const char *path1;
	long dirfd2;
	const char *path2;
	__u32 flags;
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__u32 symlink;
	__u32 by_fd;	   /* futimens: dirfd1 is the file itself (path1 is NULL) */
	const void *times; /* the set-times calls: the caller's times (NULL: now) */
};

static __always_inline void path_args_of(__u32 h, struct pt_regs *regs, struct path_args *a)
{
	a->dirfd1 = AT_FDCWD;
	a->dirfd2 = AT_FDCWD;
	a->path2 = 0;
	a->flags = 0;
	a->mode = 0;
	a->uid = 0xffffffff;
	a->gid = 0xffffffff;
	a->symlink = 0;
	a->by_fd = 0;
	a->times = 0;
	switch (h) {
	case SHRIKE_SYS_UNLINK:
		a->path1 = (const char *)sys_arg(regs, 0);
		break;
	case SHRIKE_SYS_RMDIR:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->flags = AT_REMOVEDIR;
		break;
	case SHRIKE_SYS_UNLINKAT:
		a->dirfd1 = (int)sys_arg(regs, 0);
		a->path1 = (const char *)sys_arg(regs, 1);
		a->flags = sys_arg(regs, 2);
		break;
	case SHRIKE_SYS_RENAME:
	case SHRIKE_SYS_LINK:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->path2 = (const char *)sys_arg(regs, 1);
		break;
	case SHRIKE_SYS_RENAMEAT:
	case SHRIKE_SYS_RENAMEAT2:
	case SHRIKE_SYS_LINKAT:
		a->dirfd1 = (int)sys_arg(regs, 0);
		a->path1 = (const char *)sys_arg(regs, 1);
		a->dirfd2 = (int)sys_arg(regs, 2);
		a->path2 = (const char *)sys_arg(regs, 3);
		if (h != SHRIKE_SYS_RENAMEAT)
			a->flags = sys_arg(regs, 4);
		break;
	case SHRIKE_SYS_SYMLINK:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->path2 = (const char *)sys_arg(regs, 1);
		a->symlink = 1;
		break;
	case SHRIKE_SYS_SYMLINKAT:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->dirfd2 = (int)sys_arg(regs, 1);
		a->path2 = (const char *)sys_arg(regs, 2);
		a->symlink = 1;
		break;
	case SHRIKE_SYS_CHMOD:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->mode = sys_arg(regs, 1) & 07777;
		break;
	case SHRIKE_SYS_FCHMODAT:
	case SHRIKE_SYS_FCHMODAT2:
		a->dirfd1 = (int)sys_arg(regs, 0);
		a->path1 = (const char *)sys_arg(regs, 1);
		a->mode = sys_arg(regs, 2) & 07777;
		if (h == SHRIKE_SYS_FCHMODAT2)
			a->flags = sys_arg(regs, 3);
		break;
	case SHRIKE_SYS_CHOWN:
	case SHRIKE_SYS_LCHOWN:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->uid = sys_arg(regs, 1);
		a->gid = sys_arg(regs, 2);
		break;
	case SHRIKE_SYS_FCHOWNAT:
		a->dirfd1 = (int)sys_arg(regs, 0);
		a->path1 = (const char *)sys_arg(regs, 1);
		a->uid = sys_arg(regs, 2);
		a->gid = sys_arg(regs, 3);
		a->flags = sys_arg(regs, 4);
		break;
	case SHRIKE_SYS_UTIMENSAT:
		a->dirfd1 = (int)sys_arg(regs, 0);
		a->path1 = (const char *)sys_arg(regs, 1);
		a->times = (const void *)sys_arg(regs, 2);
		a->flags = sys_arg(regs, 3);
		/* utimensat(fd, NULL, times, 0) is futimens: the fd is the file. */
		a->by_fd = !a->path1;
		break;
	case SHRIKE_SYS_UTIMES:
	case SHRIKE_SYS_UTIME:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->times = (const void *)sys_arg(regs, 1);
		break;
	case SHRIKE_SYS_FUTIMESAT:
		a->dirfd1 = (int)sys_arg(regs, 0);
		a->path1 = (const char *)sys_arg(regs, 1);
		a->times = (const void *)sys_arg(regs, 2);
		break;
	default:
		a->path1 = 0;
	}
}

/*
 * What a set-times call asks for, into the record: per time, an explicit value (the tell of
 * timestomping: `touch -r`, `touch -d`), the current time (NULL times, UTIME_NOW: what plain
 * `touch` does) or nothing (UTIME_OMIT). utimensat takes two timespecs, utimes and futimesat
 * two timevals, utime a utimbuf (two time_t): the seconds come first in each.
 */
static __always_inline void put_times(struct shrike_file_event *e, __u32 h, const void *times)
{
	__s64 v[4] = {};
	__u32 i;

	if (!times) {
		e->times = SHRIKE_TIMES_ATIME_NOW | SHRIKE_TIMES_MTIME_NOW;
		return;
	}
	if (bpf_probe_read_user(v, h == SHRIKE_SYS_UTIME ? 2 * sizeof(__s64) : sizeof(v), times)) {
		e->times = SHRIKE_TIMES_UNREAD;
		return;
	}
	if (h == SHRIKE_SYS_UTIME) {
		/* struct utimbuf: actime, modtime; no sub-second part, never "now". */
		v[2] = v[1];
		v[1] = 0;
		v[3] = 0;
	}
	for (i = 0; i < 2; i++) {
		__s64 sec = v[2 * i], sub = v[2 * i + 1];
		__u16 now = i ? SHRIKE_TIMES_MTIME_NOW : SHRIKE_TIMES_ATIME_NOW;
		__u16 set = i ? SHRIKE_TIMES_MTIME_EXPLICIT : SHRIKE_TIMES_ATIME_EXPLICIT;

		if (h == SHRIKE_SYS_UTIMENSAT && sub == UTIME_OMIT)
			continue;
		if (h == SHRIKE_SYS_UTIMENSAT && sub == UTIME_NOW) {
			e->times |= now;
			continue;
		}
		e->times |= set;
		if (i)
			e->mtime = sec;
		else
			e->atime = sec;
	}
}

/* Builds the record of a string-path file operation in the scratch buffer; returns whether the
 * filter keeps it. With `kill` (tracepoint mode, at sys_enter; a set-times call at its exit on
 * the LSM set), a rule that acts on it sends SIGKILL now: the operation itself still completes,
 * the process never returns from it. */
static __always_inline bool build_path_op(struct rec_buf *b, __u32 h, struct pt_regs *regs,
					  bool kill)
{
	struct shrike_file_event *e = (struct shrike_file_event *)b->raw;
	__u32 base = sizeof(*e);
	__u32 kind_bit = kind_bit_of(h);
	struct path_args a;
	__u64 hash1 = 0, hash2 = 0;
	__u32 len1, len2 = 0;

	path_args_of(h, regs, &a);
	__builtin_memset(e, 0, sizeof(*e));
	e->syscall = h;
	e->flags = a.flags;
	e->mode = a.mode;
	e->uid = a.uid;
	e->gid = a.gid;
	if (kind_bit == SHRIKE_WATCH_UTIMES)
		put_times(e, h, a.times);
	if (a.by_fd) {
		struct file *f = fd_file(current_task(), a.dirfd1);

		len1 = 0;
		if (f)
			len1 = put_file(b, base, f, &e->info, &hash1);
		else
			e->info |= SHRIKE_FILE_UNRESOLVED;
	} else if (a.symlink) {
		len1 = put_symlink_text(b, base, a.path1, true, &e->info, &hash1);
	} else {
		len1 = put_user_path(b, base, 0, a.dirfd1, a.path1, &e->info,
				     SHRIKE_FILE_PATH_TRUNCATED, &hash1);
	}
	len1 &= LEN_MASK;
	if (a.path2)
		len2 = put_user_path(b, base, len1, a.dirfd2, a.path2, &e->info,
				     SHRIKE_FILE_NEW_PATH_TRUNCATED, &hash2);
	e->path_len = len1;
	e->new_path_len = len2 & LEN_MASK;
	b->size = base + len1 + (len2 & LEN_MASK);
	e->hdr.kind = record_kind_of(kind_bit);
	if (kill && file_kill(b, e, enf_kind_of(kind_bit), hash1, hash2))
		return true;
	return file_keep(b, e, kind_bit, hash1, hash2);
}

/* Completes a kept record with the result and sends it. `rec` may be the scratch or pending. */
static __always_inline void finish_file(struct rec_buf *rec, __u32 h, struct pt_regs *regs,
					long ret)
{
	struct shrike_file_event *e = (struct shrike_file_event *)rec->raw;
	struct path_args a;

	/* LSM hooks do not see the syscall's flags: take them from its arguments. */
	path_args_of(h, regs, &a);
	e->syscall = h;
	e->flags = a.flags;
	send_result(rec, ret);
}

/*
 * Exit of a syscall whose record was kept at entry or by an LSM hook: completed with the result
 * and sent when it is this syscall's, then dropped. With `file_args` (file operations other
 * than opens) its syscall and flags are taken from the arguments first (finish_file).
 */
static __always_inline void finish_pending(__u32 h, struct pt_regs *regs, long ret,
					   bool file_args)
{
	__u32 tid = tid_of_current();
	struct rec_buf *p = bpf_map_lookup_elem(&pending, &tid);

	if (!p)
		return;
	if (p->nr == regs->orig_ax) {
		if (file_args)
			finish_file(p, h, regs, ret);
		else
			send_result(p, ret);
	}
	bpf_map_delete_elem(&pending, &tid);
}

#endif /* SHRIKE_FILE_PATHOPS_H */
