/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Exec rules decided in the kernel: which deny/kill rule, if any, applies to an exec, from the
 * executable's path (exact or prefix, LPM trie), its base name (hash map), and the rule's other
 * constraints — uid, euid, cgroup, the parent image's binary and the ancestors' binaries, read
 * from the lineage map (`procs`), never from user space. Layout in bpf/abi/enforce.h.
 *
 * A constraint the kernel cannot evaluate (an ancestor with no lineage entry) makes the rule
 * not apply here: user space then decides it and reports `alerted`, never a false `killed`.
 * A path cut at the root end (deeper than a record holds) has an unknown prefix: it is never
 * looked up by path (its cut start could look like a rule's prefix); under --strict the rules
 * with a prefix, which could match it, apply instead (enforce_state.cut_refs).
 *
 * A cgroup-scoped rule (a workload scope: a pod, a namespace, an image) holds an exec it would
 * apply to but for a cgroup user space has not placed yet: a container whose first exec runs
 * before the runtime has described it. Such an exec is stopped (SIGSTOP, delivered before the
 * new image's first instruction) and its record says so (SHRIKE_EXEC_HELD, the rule in
 * enforced_rule); user space places the cgroup, then kills or resumes it. Holding is on while
 * user space keeps scope_settled: every cgroup it has placed, container or not, and under key 0
 * a lease, the bpf_ktime_get_ns() time holding ends unless the agent renews it (every second):
 * an agent that dies, pinned programs left running, stops holding within the lease by itself.
 *
 * Verifier cost is kept flat: constraint values are tested with one hash lookup each, the
 * ancestor walk is a bpf_loop, and the per-rule check is a global function, verified once.
 */
#ifndef SHRIKE_EXEC_RULES_H
#define SHRIKE_EXEC_RULES_H

#include "maps.h"
#include "lineage.h"

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct shrike_path_key);
	__type(value, struct shrike_rule_refs);
} exec_rule_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct shrike_name_key);
	__type(value, struct shrike_rule_refs);
} exec_rule_names SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * SHRIKE_EXEC_RULE_SLOTS);
	__type(key, __u32);
	__type(value, struct shrike_exec_rule);
} exec_rule_slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct shrike_rule_value_key);
	__type(value, __u8);
} exec_rule_values SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shrike_enforce_state);
} enforce_state SEC(".maps");

/* The cgroups user space has placed (key: cgroup id, value 1); key 0: the time (ns,
 * bpf_ktime_get_ns) until which holding is on. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SHRIKE_SETTLED_CGROUPS);
	__type(key, __u64);
	__type(value, __u64);
} scope_settled SEC(".maps");

/* The lookup key under construction, per CPU (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shrike_path_key);
} path_key_scratch SEC(".maps");

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* What an exec rule is checked against: set per CPU before the lookups. */
struct exec_subject {
	__u32 uid;
	__u32 euid;
	__u64 cgroup_id;
	/* The new image's ancestry (anc[0] is its parent image), as lineage entries carry it. */
	__u64 anc_path[SHRIKE_ANCESTRY];
	__u64 anc_name[SHRIKE_ANCESTRY];
	__u32 anc_count;
	__u32 anc_flags; /* SHRIKE_PROC_ANCESTRY_CUT / _UNKNOWN */
	/* Out: the first rule that would apply but for an unplaced cgroup (SHRIKE_NO_RULE: none).
	 * Reset when the subject is built (exec_subject_of, exec_subject_get). */
	__u32 held_rule;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_subject);
} exec_subject_scratch SEC(".maps");

static __always_inline bool rule_has_value(__u32 slot, __u32 kind, __u64 value)
{
	struct shrike_rule_value_key key = { .slot = slot, .kind = kind, .value = value };

	return bpf_map_lookup_elem(&exec_rule_values, &key) != NULL;
}

/* A binary (by path hash or name hash) among a slot's values of one kind. */
static __always_inline bool rule_has_binary(__u32 slot, __u32 kind, __u64 path_hash,
					    __u64 name_hash)
{
	return rule_has_value(slot, kind, path_hash) || rule_has_value(slot, kind, name_hash);
}

/* Whether user space places cgroups, so execs in the others can be held: its lease on
 * holding has not run out (see the top). */
static __always_inline bool holding_on(void)
{
	__u64 lease_key = 0;
	__u64 *until = bpf_map_lookup_elem(&scope_settled, &lease_key);

	return until && bpf_ktime_get_ns() < *until;
}

/* Whether an exec in `cgroup` waits for user space to place the cgroup (see the top). */
static __always_inline bool cgroup_unsettled(__u64 cgroup)
{
	return holding_on() && !bpf_map_lookup_elem(&scope_settled, &cgroup);
}

/*
 * Whether the rule in `slot` applies to the exec described in exec_subject_scratch: 1 yes,
 * 0 no, -1 undecidable in the kernel (its ancestry is unknown, or longer than the lineage
 * entries carry and the answer depends on the part cut off), 2 it would apply but for a cgroup
 * user space has not placed yet (the exec is held). Global, not static, so the verifier checks
 * it once rather than at every call site.
 */
__noinline int shrike_exec_rule_applies(__u32 slot)
{
	__u32 zero = 0;
	struct exec_subject *sub = bpf_map_lookup_elem(&exec_subject_scratch, &zero);
	struct shrike_exec_rule *r = bpf_map_lookup_elem(&exec_rule_slots, &slot);
	bool found = false, held = false;
	__u32 flags, n;

	if (!sub || !r)
		return -1;
	flags = r->flags;
	if ((flags & SHRIKE_RULE_UID) && !rule_has_value(slot, SHRIKE_VALUE_UID, sub->uid))
		return 0;
	if ((flags & SHRIKE_RULE_EUID) && !rule_has_value(slot, SHRIKE_VALUE_EUID, sub->euid))
		return 0;
	if ((flags & SHRIKE_RULE_CGROUP) &&
	    !rule_has_value(slot, SHRIKE_VALUE_CGROUP, sub->cgroup_id)) {
		if (!cgroup_unsettled(sub->cgroup_id))
			return 0;
		held = true;
	}
	if (!(flags & (SHRIKE_RULE_PARENT_INCL | SHRIKE_RULE_PARENT_EXCL | SHRIKE_RULE_ANCESTOR_INCL |
		       SHRIKE_RULE_ANCESTOR_EXCL)))
		return held ? 2 : 1;
	n = sub->anc_count;
	if (n == 0)
		return -1;
	if ((flags & SHRIKE_RULE_PARENT_INCL) &&
	    !rule_has_binary(slot, SHRIKE_VALUE_PARENT_INCL, sub->anc_path[0], sub->anc_name[0]))
		return 0;
	if ((flags & SHRIKE_RULE_PARENT_EXCL) &&
	    rule_has_binary(slot, SHRIKE_VALUE_PARENT_EXCL, sub->anc_path[0], sub->anc_name[0]))
		return 0;
	if (!(flags & (SHRIKE_RULE_ANCESTOR_INCL | SHRIKE_RULE_ANCESTOR_EXCL)))
		return held ? 2 : 1;
#pragma unroll
	for (int i = 0; i < SHRIKE_ANCESTRY; i++) {
		if (i >= n)
			break;
		if ((flags & SHRIKE_RULE_ANCESTOR_EXCL) &&
		    rule_has_binary(slot, SHRIKE_VALUE_ANCESTOR_EXCL, sub->anc_path[i],
				    sub->anc_name[i]))
			return 0;
		if ((flags & SHRIKE_RULE_ANCESTOR_INCL) && !found &&
		    rule_has_binary(slot, SHRIKE_VALUE_ANCESTOR_INCL, sub->anc_path[i],
				    sub->anc_name[i]))
			found = true;
	}
	/* An exclusion may hide beyond the cut; an inclusion found within it stands. */
	if (sub->anc_flags & SHRIKE_PROC_ANCESTRY_CUT) {
		if (flags & SHRIKE_RULE_ANCESTOR_EXCL)
			return -1;
		if (!found)
			return -1;
	}
	if ((flags & SHRIKE_RULE_ANCESTOR_INCL) && !found)
		return 0;
	return held ? 2 : 1;
}

/* The first rule of `refs` that applies; NULL when none does. The first that would apply
 * but for an unplaced cgroup is noted in the subject's held_rule. */
static __always_inline struct shrike_exec_rule *exec_rules_first(const struct shrike_rule_refs *refs,
								 __u32 gen)
{
	__u32 zero = 0;

	for (int i = 0; i < SHRIKE_RULES_PER_KEY; i++) {
		struct shrike_exec_rule *r;
		struct exec_subject *sub;
		__u32 slot;
		int applies;

		if (i >= refs->count)
			break;
		slot = gen * SHRIKE_EXEC_RULE_SLOTS + (refs->slot[i] % SHRIKE_EXEC_RULE_SLOTS);
		applies = shrike_exec_rule_applies(slot);
		if (applies == 1)
			return bpf_map_lookup_elem(&exec_rule_slots, &slot);
		if (applies == 2) {
			sub = bpf_map_lookup_elem(&exec_subject_scratch, &zero);
			r = bpf_map_lookup_elem(&exec_rule_slots, &slot);
			if (sub && r && sub->held_rule == SHRIKE_NO_RULE)
				sub->held_rule = r->rule_index;
		}
	}
	return NULL;
}

/*
 * The exec rule for a path (bytes at `path`, `len` of them, in kernel memory) and its base
 * name hash, or NULL. Exact and prefix entries come from the LPM trie, base names from the
 * hash map. A path longer than a key is looked up by its first bytes, so prefix rules apply
 * to it (exact rule paths are never that long). `cut`: the path was cut at the root end, so
 * only its base name is known (and, under --strict, the prefix rules apply). The subject must
 * be in exec_subject_scratch.
 */
static __noinline struct shrike_exec_rule *exec_rule_for(const void *path, __u32 len,
							 __u64 name_hash, bool cut)
{
	__u32 zero = 0;
	struct shrike_enforce_state *st = bpf_map_lookup_elem(&enforce_state, &zero);
	struct shrike_path_key *key;
	struct shrike_rule_refs *refs;
	struct shrike_name_key nkey = {};
	struct shrike_exec_rule *r = NULL;
	__u32 gen;

	if (!st || !st->exec_rules)
		return NULL;
	gen = st->active_gen & 1;
	key = bpf_map_lookup_elem(&path_key_scratch, &zero);
	if (!key)
		return NULL;
	if (!cut) {
		bool whole = len < SHRIKE_RULE_PATH_MAX;
		__u32 n = whole ? len : SHRIKE_RULE_PATH_MAX - 1;

		__builtin_memset(key->path, 0, sizeof(key->path));
		key->gen = gen;
		/* The barrier keeps clang from dropping the mask the verifier needs to see. */
		barrier_var(n);
		n &= SHRIKE_RULE_PATH_MAX - 1;
		if (n && bpf_probe_read_kernel(key->path, n, path) == 0) {
			/* A whole path with its NULs matches exact and prefix entries; the first
			 * bytes of a longer one only prefixes no longer than them. */
			key->prefixlen = 8 * (1 + (whole ? SHRIKE_RULE_PATH_MAX : n));
			refs = bpf_map_lookup_elem(&exec_rule_paths, key);
			if (refs)
				r = exec_rules_first(refs, gen);
		}
	}
	if (!r && name_hash) {
		nkey.gen = gen;
		nkey.name_hash = name_hash;
		refs = bpf_map_lookup_elem(&exec_rule_names, &nkey);
		if (refs)
			r = exec_rules_first(refs, gen);
	}
	if (!r && cut && st->cut_refs.count)
		r = exec_rules_first(&st->cut_refs, gen);
	return r;
}

/* The subject of the exec rules' checks for this CPU, with the ancestry of a new image's
 * lineage entry (already computed). */
static __always_inline struct exec_subject *exec_subject_of(const struct shrike_proc *img)
{
	__u32 zero = 0;
	struct exec_subject *sub = bpf_map_lookup_elem(&exec_subject_scratch, &zero);

	if (!sub)
		return NULL;
#pragma unroll
	for (int i = 0; i < SHRIKE_ANCESTRY; i++) {
		sub->anc_path[i] = img->anc_path[i];
		sub->anc_name[i] = img->anc_name[i];
	}
	sub->anc_count = img->anc_count;
	sub->anc_flags = img->flags & (SHRIKE_PROC_ANCESTRY_CUT | SHRIKE_PROC_ANCESTRY_UNKNOWN);
	sub->held_rule = SHRIKE_NO_RULE;
	return sub;
}

/*
 * The subject of the exec rules' checks for this CPU, with the new image's ancestry filled
 * from the lineage entry of the image it starts from (`from`, NULL when unknown).
 */
static __always_inline struct exec_subject *exec_subject_get(const struct shrike_proc *from)
{
	__u32 zero = 0;
	struct exec_subject *sub = bpf_map_lookup_elem(&exec_subject_scratch, &zero);

	if (!sub)
		return NULL;
	ancestry_of_new_image(from, sub->anc_path, sub->anc_name, &sub->anc_count,
			      &sub->anc_flags);
	sub->held_rule = SHRIKE_NO_RULE;
	return sub;
}

/* FNV-1a 64 of a path and of its last component, computed in one pass over a buffer. */
#ifndef SHRIKE_LEGACY
struct path_hash_ctx {
	const __u8 *buf;
	__u32 len;
	__u32 _pad;
	__u64 path_hash;
	__u64 name_hash;
};

static long path_hash_step(__u32 i, void *ctx)
{
	struct path_hash_ctx *c = ctx;
	__u8 b = 0;

	if (i >= c->len)
		return 1;
	if (bpf_probe_read_kernel(&b, 1, c->buf + i))
		return 1;
	c->path_hash = (c->path_hash ^ b) * FNV_PRIME;
	if (b == '/')
		c->name_hash = FNV_OFFSET;
	else
		c->name_hash = (c->name_hash ^ b) * FNV_PRIME;
	return 0;
}

static __always_inline void path_hashes(const void *buf, __u32 len, __u64 *path_hash,
					__u64 *name_hash)
{
	struct path_hash_ctx c = {
		.buf = buf,
		.len = len,
		.path_hash = FNV_OFFSET,
		.name_hash = FNV_OFFSET,
	};

	bpf_loop(SHRIKE_PATH_MAX, path_hash_step, &c, 0);
	*path_hash = c.path_hash;
	*name_hash = c.name_hash;
}
#else
/*
 * The legacy build has no bpf_loop, and a loop over the bytes in the program itself grows the
 * verifier's work past its limit: the bytes are copied into the second half of the path
 * scratch, and each step hashes eight of them in a global function (checked once; on 5.10 it
 * may take scalars only) without a branch. Masks stand for the branches: all ones while inside
 * the path, all ones at a '/'.
 */

__noinline int path_hashes_step(__u32 step, __u32 len)
{
	__u32 zero = 0, k;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	__u64 ph, nh, word;

	if (!pb || step >= SHRIKE_PATH_MAX / 8 || step * 8 >= len)
		return 1;
	ph = pb->hash_path;
	nh = pb->hash_name;
	barrier_var(step);
	step &= SHRIKE_PATH_MAX / 8 - 1;
	word = *(__u64 *)&pb->buf[SHRIKE_PATH_MAX + step * 8];
#pragma unroll
	for (k = 0; k < 8; k++) {
		__u64 b = (word >> (8 * k)) & 0xff;
		__u64 inside = sign_mask((__u64)(step * 8 + k) - len);
		__u64 slash = sign_mask((b ^ '/') - 1);
		__u64 p = (ph ^ b) * FNV_PRIME;
		__u64 n = (FNV_OFFSET & slash) | (((nh ^ b) * FNV_PRIME) & ~slash);

		ph = (p & inside) | (ph & ~inside);
		nh = (n & inside) | (nh & ~inside);
	}
	pb->hash_path = ph;
	pb->hash_name = nh;
	return 0;
}

static __always_inline void path_hashes(const void *buf, __u32 len, __u64 *path_hash,
					__u64 *name_hash)
{
	__u32 zero = 0, step;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);

	*path_hash = FNV_OFFSET;
	*name_hash = FNV_OFFSET;
	if (!pb)
		return;
	len &= SHRIKE_PATH_MAX - 1;
	if (bpf_probe_read_kernel(&pb->buf[SHRIKE_PATH_MAX], len, buf))
		return;
	pb->hash_path = FNV_OFFSET;
	pb->hash_name = FNV_OFFSET;
	/* Only the step's answer ends the loop (see scan_path in file_paths.h). */
	for (step = 0; step < SHRIKE_PATH_MAX / 8; step++)
		if (path_hashes_step(step, len))
			break;
	*path_hash = pb->hash_path;
	*name_hash = pb->hash_name;
}
#endif

#endif /* SHRIKE_EXEC_RULES_H */
