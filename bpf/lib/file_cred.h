/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Credential changes (the setuid family and capset): the credentials before the call are kept
 * by thread (at sys_enter, or by the LSM hooks task_fix_setuid/setgid and capset) and compared
 * with those after it at the exit; a call that changed nothing and succeeded is not an event.
 */
#ifndef SHRIKE_FILE_CRED_H
#define SHRIKE_FILE_CRED_H

#include "file_record.h"

/* Credentials before a setuid-family call or capset, by thread id. */
struct cred_stash {
	__u64 nr;
	__u32 lsm; /* taken by an LSM hook (else at sys_enter) */
	__u32 _pad;
	struct shrike_creds old;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct cred_stash);
} old_creds SEC(".maps");

static __always_inline void read_creds(const struct cred *c, struct shrike_creds *out)
{
	out->uid = BPF_CORE_READ(c, uid.val);
	out->euid = BPF_CORE_READ(c, euid.val);
	out->suid = BPF_CORE_READ(c, suid.val);
	out->fsuid = BPF_CORE_READ(c, fsuid.val);
	out->gid = BPF_CORE_READ(c, gid.val);
	out->egid = BPF_CORE_READ(c, egid.val);
	out->sgid = BPF_CORE_READ(c, sgid.val);
	out->fsgid = BPF_CORE_READ(c, fsgid.val);
	/* kernel_cap_t is u32[2] before 6.3 and one u64 after: 8 bytes either way. */
	out->cap_effective = 0;
	out->cap_permitted = 0;
	bpf_core_read(&out->cap_effective, 8, &c->cap_effective);
	bpf_core_read(&out->cap_permitted, 8, &c->cap_permitted);
}

static __always_inline bool is_cred_op(__u32 h)
{
	return h >= SHRIKE_SYS_SETUID && h <= SHRIKE_SYS_CAPSET;
}

static __always_inline void cred_enter(__u64 nr)
{
	struct task_struct *task = current_task();
	struct cred_stash s = {};
	__u32 tid = tid_of_current();

	s.nr = nr;
	read_creds(BPF_CORE_READ(task, cred), &s.old);
	if (bpf_map_update_elem(&old_creds, &tid, &s, BPF_ANY_FLAG))
		counter_inc(SHRIKE_CNT_FILE_PENDING_FAIL);
}

static __always_inline bool creds_equal(const struct shrike_creds *a,
					const struct shrike_creds *b)
{
	return a->uid == b->uid && a->euid == b->euid && a->suid == b->suid &&
	       a->fsuid == b->fsuid && a->gid == b->gid && a->egid == b->egid &&
	       a->sgid == b->sgid && a->fsgid == b->fsgid && a->cap_effective == b->cap_effective &&
	       a->cap_permitted == b->cap_permitted;
}

static __always_inline void cred_exit(__u32 h, struct pt_regs *regs, long ret)
{
	struct task_struct *task = current_task();
	struct rec_buf *b = scratch();
	struct shrike_cred_event *c;
	struct cred_stash *s;
	__u32 tid = tid_of_current();
	__u64 nr = regs->orig_ax;

	if (!b)
		return;
	c = (struct shrike_cred_event *)b->raw;
	__builtin_memset(c, 0, sizeof(*c));
	read_creds(BPF_CORE_READ(task, cred), &c->new);
	s = bpf_map_lookup_elem(&old_creds, &tid);
	if (s && s->nr == nr) {
		c->old = s->old;
		c->info = s->lsm ? SHRIKE_FILE_LSM : 0;
	} else {
		/* No hook ran before the change: it failed before any (or nothing changed). */
		c->old = c->new;
	}
	if (s)
		bpf_map_delete_elem(&old_creds, &tid);
	if (ret >= 0 && creds_equal(&c->old, &c->new))
		return; /* nothing changed: not an event */
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	c->syscall = h;
	c->result = ret;
	fill_header(&c->hdr, SHRIKE_REC_CRED_CHANGE, sizeof(*c));
	emit_raw(b->raw, sizeof(*c));
}

#endif /* SHRIKE_FILE_CRED_H */
