/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The LSM hook set's helpers (the programs are in bpf/file.bpf.c): an LSM hook sees the
 * operation with the kernel's own dentries, decides with the rules, and either refuses it
 * (-EPERM) or leaves its record in `pending` for the fexit program of its syscall, which adds
 * the result; `lsm_decided` tells that exit the hook ran. A hook outside any watched syscall
 * (an io_uring worker, a kernel path) only enforces, and reports what it refused at once.
 */
#ifndef SHRIKE_FILE_LSM_H
#define SHRIKE_FILE_LSM_H

#include "file_open.h"
#include "file_priv.h"
#include "file_cred.h"

/* LSM mode: the syscall number whose LSM hook already decided (kept in `pending`, or dropped). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} lsm_decided SEC(".maps");

/* LSM mode: what the LSM hook of this syscall decided, if it ran. */
static __always_inline bool lsm_took(__u64 nr)
{
	__u32 tid = tid_of_current();
	__u64 *seen = bpf_map_lookup_elem(&lsm_decided, &tid);
	bool took = seen && *seen == nr;

	if (seen)
		bpf_map_delete_elem(&lsm_decided, &tid);
	return took;
}

/* The syscall an LSM hook runs in, when a watched one (io_uring workers and other kernel paths
 * have none and are not reported). */
static __always_inline __u64 lsm_syscall_of(struct pt_regs *regs, __u32 *handler)
{
	__u64 nr = regs ? regs->orig_ax : 0;

	*handler = handler_of(nr) & SHRIKE_SYS_ID_MASK;
	return nr;
}

static __always_inline __u64 lsm_syscall(__u32 *handler)
{
	return lsm_syscall_of(syscall_regs(), handler);
}

static __always_inline void lsm_decide(__u64 nr, struct rec_buf *b, bool keep)
{
	__u32 tid = tid_of_current();

	bpf_map_update_elem(&lsm_decided, &tid, &nr, BPF_ANY_FLAG);
	if (keep)
		keep_pending(b, nr);
}

/*
 * A refused operation the syscall exits will not see (an io_uring worker, a kernel path): its
 * record goes out now, with the refusal as its result.
 */
static __always_inline void lsm_emit_refused(struct rec_buf *b, struct shrike_file_event *e)
{
	send_result(b, -EPERM);
}

/* What an LSM hook returns for a rule's action: EPERM, and a kill rule's SIGKILL too. */
static __always_inline int lsm_refuse(__u32 act)
{
	if (act == SHRIKE_ACTION_KILL)
		bpf_send_signal(SIGKILL);
	return -EPERM;
}

/*
 * A file operation on `d` in `dir`'s mount (and, for two-path operations, on `d2`). A deny/kill
 * rule acting on it makes the hook return -EPERM (the operation does not happen); the record
 * waits for the syscall's exit, or goes out now when there is no watched syscall around it.
 */
static __always_inline int lsm_file_op(__u32 kind_bit, struct vfsmount *mnt, struct dentry *d,
				       struct vfsmount *mnt2, struct dentry *d2, const char *text,
				       __u32 mode, __u32 uid, __u32 gid)
{
	struct task_struct *task = current_task();
	struct rec_buf *b;
	struct shrike_file_event *e;
	__u32 base = sizeof(*e);
	__u32 h, len1 = 0, len2 = 0, gen = 0, act;
	struct path root, p;
	__u64 nr = lsm_syscall(&h), hash1 = 0, hash2 = 0;
	bool in_syscall = h && kind_bit_of(h) == kind_bit;

	if (!in_syscall) {
		/* Not reported outside its syscalls; enforced everywhere. */
		struct shrike_watch_state *st = watch_current(&gen);

		if (!st || !(st->enforce & kind_bit))
			return 0;
	}
	b = scratch();
	if (!b)
		return 0;
	e = (struct shrike_file_event *)b->raw;
	__builtin_memset(e, 0, sizeof(*e));
	e->info = SHRIKE_FILE_LSM;
	e->mode = mode;
	e->uid = uid;
	e->gid = gid;
	task_root(task, &root);
	if (text) {
		len1 = put_symlink_text(b, base, text, false, &e->info, &hash1);
	} else {
		p.mnt = mnt;
		p.dentry = d;
		len1 = put_canonical(b, base, 0, &p, &root, &e->info, SHRIKE_FILE_PATH_TRUNCATED);
		e->info |= SHRIKE_FILE_CANONICAL;
		hash1 = dentry_name_hash(d);
	}
	len1 &= LEN_MASK;
	if (d2) {
		p.mnt = mnt2;
		p.dentry = d2;
		len2 = put_canonical(b, base, len1, &p, &root, &e->info,
				     SHRIKE_FILE_NEW_PATH_TRUNCATED) &
		       LEN_MASK;
		e->info |= SHRIKE_FILE_NEW_CANONICAL;
		hash2 = dentry_name_hash(d2);
	}
	e->path_len = len1;
	e->new_path_len = len2;
	e->hdr.kind = record_kind_of(kind_bit);
	b->size = base + len1 + len2;
	act = file_enforce(b, e, enf_kind_of(kind_bit), hash1, hash2);
	if (in_syscall)
		lsm_decide(nr, b, act || file_keep(b, e, kind_bit, hash1, hash2));
	else if (act)
		lsm_emit_refused(b, e);
	return act ? lsm_refuse(act) : 0;
}

/*
 * An open (file_open, for every open of an existing file) or a create (path_mknod: open with
 * O_CREAT of a new file, mknod) that a rule refuses: EPERM before any byte is read, before
 * O_TRUNC truncates, before a new file exists. Costs two map lookups per open when no open
 * rule is loaded. `fpath` is the file (or the new name); `fflags` its open flags when there is
 * no open syscall around it.
 */
static __always_inline int lsm_open(const struct path *fpath, __u32 fflags, bool create)
{
	struct task_struct *task = current_task();
	struct shrike_watch_state *st;
	struct shrike_file_event *e;
	struct rec_buf *b;
	struct path root;
	struct open_args a;
	struct pt_regs *regs;
	__u32 base = sizeof(*e), gen = 0, h, len, act;
	__u64 nr, hash;
	bool in_syscall;

	st = watch_current(&gen);
	if (!st || !(st->enforce & SHRIKE_WATCH_OPEN) || is_self())
		return 0;
	b = scratch();
	if (!b)
		return 0;
	e = (struct shrike_file_event *)b->raw;
	/* One read of the registers (in the legacy build a copy from the stack) for both. */
	regs = syscall_regs();
	nr = lsm_syscall_of(regs, &h);
	in_syscall = regs && kind_bit_of(h) == SHRIKE_WATCH_OPEN;
	if (in_syscall && regs) { /* regs again: the verifier does not follow the bool */
		open_args_of(h, regs, &a);
	} else {
		a.flags = fflags;
		a.mode = 0;
	}
	open_fill(e, in_syscall ? h : 0, &a);
	if (create)
		e->access |= SHRIKE_ACCESS_CREATE;
	e->info = SHRIKE_FILE_LSM | SHRIKE_FILE_CANONICAL;
	task_root(task, &root);
	len = put_canonical(b, base, 0, fpath, &root, &e->info, SHRIKE_FILE_PATH_TRUNCATED) &
	      LEN_MASK;
	hash = dentry_name_hash(fpath->dentry);
	e->path_len = len;
	b->size = base + len;
	act = file_enforce(b, e, SHRIKE_ENF_OPEN, hash, 0);
	if (!act)
		return 0;
	if (in_syscall)
		lsm_decide(nr, b, true);
	else
		lsm_emit_refused(b, e);
	return lsm_refuse(act);
}

/* mount and umount2: the whole record, the target canonical. */
static __always_inline int lsm_mount(__u16 kind, const char *dev_name, const struct path *target,
				     const char *type, __u64 flags)
{
	struct task_struct *task = current_task();
	struct rec_buf *b;
	struct shrike_mount_event *m;
	__u32 base = sizeof(*m);
	__u32 h, off = 0;
	struct path root;
	__u64 nr = lsm_syscall(&h);

	if (h != SHRIKE_SYS_MOUNT && h != SHRIKE_SYS_UMOUNT2)
		return 0;
	b = scratch();
	if (!b)
		return 0;
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	m = (struct shrike_mount_event *)b->raw;
	__builtin_memset(m, 0, sizeof(*m));
	m->syscall = h;
	m->flags = flags;
	m->info = SHRIKE_FILE_LSM | SHRIKE_FILE_NEW_CANONICAL;
	task_root(task, &root);
	m->source_len = put_str(b, base, 0, dev_name, false, true);
	off = m->source_len & LEN_MASK;
	m->target_len = put_canonical(b, base, off, target, &root, &m->info,
				      SHRIKE_FILE_NEW_PATH_TRUNCATED) &
			LEN_MASK;
	off += m->target_len;
	m->fstype_len = put_str(b, base, off, type, false, false);
	off += m->fstype_len & 0xff;
	m->hdr.kind = kind;
	b->size = base + (off & (DATA_HALF * 2 - 1));
	lsm_decide(nr, b, true);
	return 0;
}

/* Credentials before the change (the failure paths return before these hooks: unchanged). */
static __always_inline int lsm_old_creds(const struct cred *old)
{
	struct cred_stash s = {};
	__u32 h, tid = tid_of_current();

	s.nr = lsm_syscall(&h);
	if (!is_cred_op(h))
		return 0;
	s.lsm = 1;
	read_creds(old, &s.old);
	if (bpf_map_update_elem(&old_creds, &tid, &s, BPF_ANY_FLAG))
		counter_inc(SHRIKE_CNT_FILE_PENDING_FAIL);
	return 0;
}

/*
 * Module loads, BPF program loads and ptrace attaches a rule refuses: EPERM before the module
 * is read, before the verifier runs, before the tracer is attached. The record is built at the
 * syscall's exit (fexit), which takes the rule from the stash.
 */
static __always_inline int lsm_priv(__u32 kind, __u32 target)
{
	__u16 rule = SHRIKE_NO_RULE;
	__u32 h, act;
	__u64 nr = lsm_syscall(&h);

	act = priv_enforce(kind, target, &rule);
	if (!act)
		return 0;
	/* Kept for the record of the syscall's exit (a kernel path without one has no record). */
	enforced_keep(nr, rule, act);
	return lsm_refuse(act);
}

#endif /* SHRIKE_FILE_LSM_H */
