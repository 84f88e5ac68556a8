/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Deny/kill rules of the file, privilege and kernel-integrity family, decided in the kernel:
 * which rule, if any, acts on an open, unlink, rename, chmod, chown, link, module load, BPF
 * program load or ptrace attach. Layout in bpf/abi/file.h; filled by crates/bpf/src/file/maps.rs
 * together with the watch set, in the same generation, so a reload switches both at once.
 *
 * A rule is found by the path of the action (rule[] of the watch entry the path hits, or of its
 * base name's entry; a chain of rules when several act there) or, when it has no path, in its
 * kind's list. Its other constraints (binary, uid, euid, cgroup, parent and ancestors from the
 * lineage map `procs`, the ptrace target's binary) are tested with one hash lookup per value.
 * A constraint the kernel cannot read (no lineage entry, ancestry cut where the answer hides)
 * makes the rule not act here: user space then decides it and reports `alerted`, never a false
 * `denied` or `killed`.
 */
#ifndef SHRIKE_FILE_RULES_H
#define SHRIKE_FILE_RULES_H

#include "maps.h"
#include "file.h"
#include "watch.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096); /* two generations */
	__type(key, struct shrike_file_rule_key);
	__type(value, struct shrike_file_rule);
} file_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384); /* two generations */
	__type(key, struct shrike_file_rule_value_key);
	__type(value, __u8);
} file_rule_values SEC(".maps");

/* Several rules of one kind on one watch entry (its rule[k] has SHRIKE_RULE_CHAIN). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * SHRIKE_RULE_CHAINS_MAX); /* two generations */
	__type(key, struct shrike_file_rule_key);
	__type(value, struct shrike_rule_list);
} file_rule_chains SEC(".maps");

/* file_rule_lists[gen * SHRIKE_ENF_KINDS + kind] */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * SHRIKE_ENF_KINDS);
	__type(key, __u32);
	__type(value, struct shrike_rule_list);
} file_rule_lists SEC(".maps");

/* What a rule did to a syscall, from the hook that decided (an LSM hook, or sys_enter) to the
 * record its exit builds. LRU: a thread that never reaches its exit leaves nothing behind. */
struct enforced_stash {
	__u64 nr;
	__u16 rule;
	__u16 action;
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct enforced_stash);
} enforced SEC(".maps");

/* Where a rule was found: on the path, on the new path, or in its kind's list. */
#define FRULE_SIDE_PATH 0
#define FRULE_SIDE_NEW 1
#define FRULE_SIDE_LIST 2

static __always_inline bool frule_has(__u32 gen, __u32 kind, __u32 rule, __u32 vkind,
				      __u64 value)
{
	struct shrike_file_rule_value_key k = {};

	k.gen = gen;
	k.kind = kind;
	k.rule = rule;
	k.vkind = vkind;
	k.value = value;
	return bpf_map_lookup_elem(&file_rule_values, &k) != NULL;
}

/* A binary, by the FNV-1a 64 of its path or of its base name. */
static __always_inline bool frule_binary(__u32 gen, __u32 kind, __u32 rule, __u32 vkind,
					 __u64 path_hash, __u64 name_hash)
{
	return frule_has(gen, kind, rule, vkind, path_hash) ||
	       frule_has(gen, kind, rule, vkind, name_hash);
}

/* An include/exclude pair on one value: false when the value is outside the include set or
 * inside the exclude set. */
static __always_inline bool frule_pair(__u32 gen, __u32 kind, __u32 rule, __u32 flags,
				       __u32 incl, __u32 excl, __u64 value)
{
	if ((flags & incl) && !frule_has(gen, kind, rule, incl, value))
		return false;
	if ((flags & excl) && frule_has(gen, kind, rule, excl, value))
		return false;
	return true;
}

/*
 * Whether rule `rule` of kind `where >> 8 & 0xff` (generation `where & 1`), found on side
 * `where >> 16` (FRULE_SIDE_*), applies to the current task's action with `access` (file_open:
 * SHRIKE_ACCESS_*) and, for ptrace, the target process `target` (its tgid; 0 unknown).
 * Returns the rule's SHRIKE_ACTION_*, 0 when it does not apply, -1 when the kernel cannot
 * decide. Global, not static, so the verifier checks it once, not at every call site.
 */
__noinline int shrike_file_rule_check(__u32 where, __u32 rule, __u32 access, __u32 target)
{
	__u32 gen = where & 1, kind = (where >> 8) & 0xff, side = (where >> 16) & 3;
	struct shrike_file_rule_key key = {};
	struct task_struct *task = current_task();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	const __u32 lineage = SHRIKE_FRULE_BINARY_INCL | SHRIKE_FRULE_BINARY_EXCL |
			      SHRIKE_FRULE_PARENT_INCL | SHRIKE_FRULE_PARENT_EXCL |
			      SHRIKE_FRULE_ANCESTOR_INCL | SHRIKE_FRULE_ANCESTOR_EXCL;
	const __u32 ancestry = SHRIKE_FRULE_ANCESTOR_INCL | SHRIKE_FRULE_ANCESTOR_EXCL;
	struct shrike_file_rule *r;
	struct shrike_proc *p;
	bool found = false;
	__u32 flags, n;

	key.gen = gen;
	key.kind = kind;
	key.rule = rule;
	r = bpf_map_lookup_elem(&file_rules, &key);
	if (!r)
		return 0;
	flags = r->flags;
	if (side != FRULE_SIDE_LIST && ((flags & SHRIKE_FRULE_NEW_PATH) != 0) != (side == FRULE_SIDE_NEW))
		return 0;
	if (r->access && !(r->access & access))
		return 0;
	if (r->access_excl & access)
		return 0;
	if ((flags & (SHRIKE_FRULE_UID_INCL | SHRIKE_FRULE_UID_EXCL)) &&
	    !frule_pair(gen, kind, rule, flags, SHRIKE_FRULE_UID_INCL, SHRIKE_FRULE_UID_EXCL,
			BPF_CORE_READ(task, cred, uid.val)))
		return 0;
	if ((flags & (SHRIKE_FRULE_EUID_INCL | SHRIKE_FRULE_EUID_EXCL)) &&
	    !frule_pair(gen, kind, rule, flags, SHRIKE_FRULE_EUID_INCL, SHRIKE_FRULE_EUID_EXCL,
			BPF_CORE_READ(task, cred, euid.val)))
		return 0;
	if ((flags & (SHRIKE_FRULE_CGROUP_INCL | SHRIKE_FRULE_CGROUP_EXCL)) &&
	    !frule_pair(gen, kind, rule, flags, SHRIKE_FRULE_CGROUP_INCL, SHRIKE_FRULE_CGROUP_EXCL,
			bpf_get_current_cgroup_id()))
		return 0;
	if (flags & (SHRIKE_FRULE_TARGET_INCL | SHRIKE_FRULE_TARGET_EXCL)) {
		struct shrike_proc *t;

		if (!target)
			return -1;
		t = bpf_map_lookup_elem(&procs, &target);
		if (!t || !t->name_hash)
			return -1;
		if ((flags & SHRIKE_FRULE_TARGET_INCL) &&
		    !frule_binary(gen, kind, rule, SHRIKE_FRULE_TARGET_INCL, t->path_hash,
				  t->name_hash))
			return 0;
		if ((flags & SHRIKE_FRULE_TARGET_EXCL) &&
		    frule_binary(gen, kind, rule, SHRIKE_FRULE_TARGET_EXCL, t->path_hash,
				 t->name_hash))
			return 0;
	}
	if (!(flags & lineage))
		return r->action;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		return -1;
	if (flags & (SHRIKE_FRULE_BINARY_INCL | SHRIKE_FRULE_BINARY_EXCL)) {
		if (!p->name_hash)
			return -1;
		if ((flags & SHRIKE_FRULE_BINARY_INCL) &&
		    !frule_binary(gen, kind, rule, SHRIKE_FRULE_BINARY_INCL, p->path_hash,
				  p->name_hash))
			return 0;
		if ((flags & SHRIKE_FRULE_BINARY_EXCL) &&
		    frule_binary(gen, kind, rule, SHRIKE_FRULE_BINARY_EXCL, p->path_hash,
				 p->name_hash))
			return 0;
	}
	if (!(flags & (SHRIKE_FRULE_PARENT_INCL | SHRIKE_FRULE_PARENT_EXCL | ancestry)))
		return r->action;
	/* The process's ancestry, nearest first (anc[0] is its parent image), as the user-space
	 * tree orders it: the same values exec rules test. */
	n = p->anc_count;
	if (n == 0)
		return -1;
	if ((flags & SHRIKE_FRULE_PARENT_INCL) &&
	    !frule_binary(gen, kind, rule, SHRIKE_FRULE_PARENT_INCL, p->anc_path[0], p->anc_name[0]))
		return 0;
	if ((flags & SHRIKE_FRULE_PARENT_EXCL) &&
	    frule_binary(gen, kind, rule, SHRIKE_FRULE_PARENT_EXCL, p->anc_path[0], p->anc_name[0]))
		return 0;
	if (!(flags & ancestry))
		return r->action;
#pragma unroll
	for (int i = 0; i < SHRIKE_ANCESTRY; i++) {
		if (i >= n)
			break;
		if ((flags & SHRIKE_FRULE_ANCESTOR_EXCL) &&
		    frule_binary(gen, kind, rule, SHRIKE_FRULE_ANCESTOR_EXCL, p->anc_path[i],
				 p->anc_name[i]))
			return 0;
		if ((flags & SHRIKE_FRULE_ANCESTOR_INCL) && !found &&
		    frule_binary(gen, kind, rule, SHRIKE_FRULE_ANCESTOR_INCL, p->anc_path[i],
				 p->anc_name[i]))
			found = true;
	}
	/* An exclusion may hide beyond the cut; an inclusion found within it stands. */
	if (p->flags & (SHRIKE_PROC_ANCESTRY_CUT | SHRIKE_PROC_ANCESTRY_UNKNOWN)) {
		if (flags & SHRIKE_FRULE_ANCESTOR_EXCL)
			return -1;
		if ((flags & SHRIKE_FRULE_ANCESTOR_INCL) && !found)
			return -1;
	}
	if ((flags & SHRIKE_FRULE_ANCESTOR_INCL) && !found)
		return 0;
	return r->action;
}

static __always_inline __u32 frule_where(__u32 gen, __u32 kind, __u32 side)
{
	return (gen & 1) | ((kind & 0xff) << 8) | (side << 16);
}

/*
 * The first rule of a list (a kind's rules without a path, or a chain) that applies: its
 * action (0 none), the rule in *rule.
 */
static __always_inline __u32 frule_first(const struct shrike_rule_list *l, __u32 where,
					 __u32 access, __u32 target, __u16 *rule)
{
	if (!l)
		return 0;
	for (int i = 0; i < SHRIKE_ENF_LIST_MAX; i++) {
		int act;

		if (i >= l->count)
			break;
		act = shrike_file_rule_check(where, l->rule[i], access, target);
		if (act > 0) {
			*rule = l->rule[i];
			return act;
		}
	}
	return 0;
}

/*
 * The first rule of chain `chain` of kind `where >> 8 & 0xff` that applies to the current
 * task's action: (rule << 8) | action, 0 when none does. Global, so the verifier checks the
 * loop once, not at every entry lookup that might meet a chain.
 */
__noinline int shrike_file_rule_chain(__u32 where, __u32 chain, __u32 access)
{
	struct shrike_file_rule_key key = {};
	__u16 rule = SHRIKE_NO_RULE;
	__u32 act;

	key.gen = where & 1;
	key.kind = (where >> 8) & 0xff;
	key.rule = chain;
	act = frule_first(bpf_map_lookup_elem(&file_rule_chains, &key), where, access, 0, &rule);
	if (!act)
		return 0;
	return ((int)rule << 8) | (act & 0xff);
}

/* The rule of `kind` on a watch entry, if one applies; its action (0 none), the rule in *rule. */
static __always_inline __u32 frule_on_entry(const struct shrike_watch_value *v, __u32 gen,
					    __u32 kind, __u32 side, __u32 access, __u16 *rule)
{
	__u16 r;
	int act;

	if (!v || kind >= SHRIKE_ENF_PATH_KINDS)
		return 0;
	r = v->rule[kind];
	if (r == SHRIKE_NO_RULE)
		return 0;
	if (r & SHRIKE_RULE_CHAIN) {
		act = shrike_file_rule_chain(frule_where(gen, kind, side), r & ~SHRIKE_RULE_CHAIN,
					     access);
		if (act <= 0)
			return 0;
		*rule = (act >> 8) & 0xffff;
		return act & 0xff;
	}
	act = shrike_file_rule_check(frule_where(gen, kind, side), r, access, 0);
	if (act <= 0)
		return 0;
	*rule = r;
	return act;
}

/*
 * The rule of `kind` found by a path (`len` bytes at `src`, kernel memory; 0: look up the base
 * name only) whose last component hashes to `name_hash`: the LPM entry first, then the name.
 */
static __always_inline __u32 frule_by_path(__u32 gen, const struct shrike_watch_state *st,
					   __u32 kind, __u32 side, __u32 access, const __u8 *src,
					   __u32 len, __u64 name_hash, __u16 *rule)
{
	__u32 zero = 0, act = 0;

	if (st->entries && len) {
		struct shrike_watch_key *k = bpf_map_lookup_elem(&watch_key_scratch, &zero);
		__u32 n = len < SHRIKE_WATCH_PATH_MAX ? len : SHRIKE_WATCH_PATH_MAX;
		__u32 bytes = n;

		if (!k)
			return 0;
		k->gen = gen;
		if (bpf_probe_read_kernel(k->path, watch_key_len(n), src))
			return 0;
		if (n < SHRIKE_WATCH_PATH_MAX) {
			watch_key_end(k, n);
			bytes = n + 1;
		}
		k->prefixlen = 8 * (1 + bytes);
		act = frule_on_entry(bpf_map_lookup_elem(&watch_paths, k), gen, kind, side, access,
				     rule);
		if (act)
			return act;
	}
	if (st->names) {
		struct shrike_watch_name_key nk = {};

		nk.gen = gen;
		nk.name_hash = name_hash;
		act = frule_on_entry(bpf_map_lookup_elem(&watch_names, &nk), gen, kind, side, access,
				     rule);
	}
	return act;
}

/* The first rule of `kind`'s list (rules without a path) that applies. */
static __always_inline __u32 frule_in_list(__u32 gen, __u32 kind, __u32 access, __u32 target,
					   __u16 *rule)
{
	__u32 idx = (gen & 1) * SHRIKE_ENF_KINDS + kind;

	if (kind >= SHRIKE_ENF_KINDS)
		return 0;
	return frule_first(bpf_map_lookup_elem(&file_rule_lists, &idx),
			   frule_where(gen, kind, FRULE_SIDE_LIST), access, target, rule);
}

/* Keeps what a rule did to this thread's syscall `nr` for the record its exit builds. */
static __always_inline void enforced_keep(__u64 nr, __u16 rule, __u16 action)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct enforced_stash s = {};

	s.nr = nr;
	s.rule = rule;
	s.action = action;
	bpf_map_update_elem(&enforced, &tid, &s, BPF_ANY_FLAG);
}

/* What a rule did to this thread's syscall `nr`, if anything (taken: it is removed). */
static __always_inline void enforced_take(__u64 nr, __u16 *rule, __u16 *action)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct enforced_stash *s = bpf_map_lookup_elem(&enforced, &tid);

	if (!s)
		return;
	if (s->nr == nr) {
		*rule = s->rule;
		*action = s->action;
	}
	bpf_map_delete_elem(&enforced, &tid);
}

#endif /* SHRIKE_FILE_RULES_H */
