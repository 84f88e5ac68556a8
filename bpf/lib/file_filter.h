/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The two decisions on a file-family record: whether it leaves the kernel (the watch set,
 * bpf/lib/watch.h) and which deny/kill rule, if any, acts on it (bpf/lib/file_rules.h).
 */
#ifndef SHRIKE_FILE_FILTER_H
#define SHRIKE_FILE_FILTER_H

#include "file_record.h"
#include "watch.h"
#include "file_rules.h"

/* Not in vmlinux.h (#defines in the kernel). */
#define S_ISUID 04000
#define S_ISGID 02000

/* Decides whether a file record leaves the kernel; counts what it sees and drops. */
static __always_inline bool file_keep(struct rec_buf *b, struct shrike_file_event *e,
				      __u32 kind_bit, __u64 hash1, __u64 hash2)
{
	struct shrike_watch_state *st;
	__u32 gen = 0;
	__u32 base = sizeof(*e);

	counter_inc(SHRIKE_CNT_FILE_SEEN);
	st = watch_current(&gen);
	if (!st)
		return true;
	if (st->pass_all & kind_bit)
		return true;
	if (kind_bit == SHRIKE_WATCH_CHMOD && st->setid_chmod && (e->mode & (S_ISUID | S_ISGID))) {
		e->info |= SHRIKE_FILE_SETID_RULE;
		return true;
	}
	if (e->info & (SHRIKE_FILE_UNRESOLVED | SHRIKE_FILE_PATH_TRUNCATED |
		       SHRIKE_FILE_NEW_PATH_TRUNCATED)) {
		counter_inc(SHRIKE_CNT_FILE_UNRESOLVED);
		return true;
	}
	if ((e->info & SHRIKE_FILE_SYMLINK) && e->path_len) {
		/* A symlink's text: relative text names something beside the link; only its name
		 * can be checked. */
		__u8 first = b->raw[base];

		if (first == '/') {
			if (watch_path(gen, st, kind_bit, 0, &b->raw[base], e->path_len, hash1))
				return true;
		} else if (watch_path(gen, st, kind_bit, 0, &b->raw[base], 0, hash1)) {
			return true;
		}
	} else if (e->path_len &&
		   watch_path(gen, st, kind_bit, e->access, &b->raw[base], e->path_len, hash1)) {
		return true;
	}
	if (e->new_path_len &&
	    watch_path(gen, st, kind_bit, e->access,
		       &b->raw[base + (e->path_len & LEN_MASK)], e->new_path_len, hash2))
		return true;
	counter_inc(SHRIKE_CNT_FILE_FILTERED);
	return false;
}

/*
 * The deny/kill rule acting on a file operation whose record is in `b`: found by its path, its
 * new path, or in the kind's list. Sets the record's enforced_rule/_action (the rule's action;
 * callers without LSM turn it into KILL) and returns the action, 0 when no rule acts. A path the
 * filter cannot trust (unresolved, cut) finds no path rule: user space decides those.
 */
static __always_inline __u32 file_enforce(struct rec_buf *b, struct shrike_file_event *e,
					  __u32 kind, __u64 hash1, __u64 hash2)
{
	struct shrike_watch_state *st;
	__u32 gen = 0, base = sizeof(*e), act = 0, len1;
	__u16 rule = SHRIKE_NO_RULE;

	st = watch_current(&gen);
	if (!st || !(st->enforce & (1U << kind)) || is_self())
		return 0;
	if (!(e->info & (SHRIKE_FILE_UNRESOLVED | SHRIKE_FILE_PATH_TRUNCATED |
			 SHRIKE_FILE_NEW_PATH_TRUNCATED))) {
		len1 = e->path_len & LEN_MASK;
		/* A relative symlink text names something beside the link: only its name counts. */
		if ((e->info & SHRIKE_FILE_SYMLINK) && len1 && b->raw[base] != '/')
			len1 = 0;
		if (e->path_len)
			act = frule_by_path(gen, st, kind, FRULE_SIDE_PATH, e->access, &b->raw[base],
					    len1, hash1, &rule);
		if (!act && e->new_path_len)
			act = frule_by_path(gen, st, kind, FRULE_SIDE_NEW, e->access,
					    &b->raw[base + (e->path_len & LEN_MASK)],
					    e->new_path_len & LEN_MASK, hash2, &rule);
	}
	if (!act)
		act = frule_in_list(gen, kind, e->access, 0, &rule);
	if (!act)
		return 0;
	e->enforced_rule = rule;
	e->enforced_action = act;
	counter_inc(SHRIKE_CNT_FILE_ENFORCED);
	return act;
}

/*
 * The tracepoint hook set's enforcement of a file operation: a rule acting on it kills the
 * process now. The operation itself completes (or has completed); the process never returns
 * from it to use the result. Returns whether a rule acted.
 */
static __always_inline bool file_kill(struct rec_buf *b, struct shrike_file_event *e, __u32 kind,
				      __u64 hash1, __u64 hash2)
{
	if (!file_enforce(b, e, kind, hash1, hash2))
		return false;
	bpf_send_signal(SIGKILL);
	e->enforced_action = SHRIKE_ACTION_KILL;
	return true;
}

/* A privilege or kernel-integrity action (module, BPF or ptrace kind) a rule acts on. */
static __always_inline __u32 priv_enforce(__u32 kind, __u32 target, __u16 *rule)
{
	struct shrike_watch_state *st;
	__u32 gen = 0, act;

	st = watch_current(&gen);
	if (!st || !(st->enforce & (1U << kind)) || is_self())
		return 0;
	act = frule_in_list(gen, kind, 0, target, rule);
	if (act)
		counter_inc(SHRIKE_CNT_FILE_ENFORCED);
	return act;
}

#endif /* SHRIKE_FILE_FILTER_H */
