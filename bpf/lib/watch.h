/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The in-kernel watch filter of the file family: only events on paths the configuration or the
 * policy watches leave the kernel. Layout and generation scheme in bpf/abi/file.h; filled by
 * crates/bpf/src/file/maps.rs.
 *
 * A policy reload fills the inactive generation completely, writes its watch_state, then flips
 * watch_active[0] (one aligned 32-bit store): a lookup sees either the old set or the new one,
 * never half of one and never nothing.
 */
#ifndef SHRIKE_WATCH_H
#define SHRIKE_WATCH_H

#include "maps.h"
#include "file.h"

#define WATCH_FNV_OFFSET 0xcbf29ce484222325ULL
#define WATCH_FNV_PRIME 0x100000001b3ULL

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * SHRIKE_WATCH_PATHS_MAX); /* two generations */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct shrike_watch_key);
	__type(value, struct shrike_watch_value);
} watch_paths SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 2 * SHRIKE_WATCH_NAMES_MAX); /* two generations */
	__type(key, struct shrike_watch_name_key);
	__type(value, struct shrike_watch_value);
} watch_names SEC(".maps");

/* watch_state[gen] */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, struct shrike_watch_state);
} watch_state SEC(".maps");

/* watch_active[0]: the generation in force. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} watch_active SEC(".maps");

/* The LPM lookup key under construction (260 bytes: too big for the stack next to the rest). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shrike_watch_key);
} watch_key_scratch SEC(".maps");

/*
 * Index and length arithmetic on watch keys that every verifier can follow. Clang knows n is at
 * most SHRIKE_WATCH_PATH_MAX from the caller's min() and drops a mask it thinks redundant; 6.1's
 * verifier then sees the unbounded register and refused the file object ("invalid access to
 * map value, value_size=260 off=5 size=4095", and "off=260 size=1" for the NUL). The barrier
 * keeps the mask (or the check) on the very register that is used.
 */
static __always_inline __u32 watch_key_len(__u32 n)
{
	barrier_var(n);
	return n & 0xff; /* n <= SHRIKE_WATCH_PATH_MAX (255): the mask only tells the verifier */
}

/* Ends a watch key's path with a NUL at byte `n` (< SHRIKE_WATCH_PATH_MAX). */
static __always_inline void watch_key_end(struct shrike_watch_key *k, __u32 n)
{
	barrier_var(n);
	if (n < SHRIKE_WATCH_PATH_MAX)
		k->path[n] = 0;
}

static __always_inline bool watch_hit(const struct shrike_watch_value *v, __u32 kind_bit,
				      __u32 access)
{
	if (!v || !(v->kinds & kind_bit))
		return false;
	if (kind_bit == SHRIKE_WATCH_OPEN && v->access && !(v->access & access))
		return false;
	return true;
}

/* The generation in force and its state; NULL only if the maps are missing (never after load). */
static __always_inline struct shrike_watch_state *watch_current(__u32 *gen)
{
	__u32 zero = 0;
	__u32 *active = bpf_map_lookup_elem(&watch_active, &zero);

	*gen = active ? (*active & 1) : 0;
	return bpf_map_lookup_elem(&watch_state, gen);
}

/*
 * Whether `len` bytes of path at `src` (kernel memory), whose last component hashes to
 * `name_hash`, are watched for `kind_bit` (and, for opens, `access`).
 */
static __always_inline bool watch_path(__u32 gen, const struct shrike_watch_state *st,
				       __u32 kind_bit, __u32 access, const __u8 *src, __u32 len,
				       __u64 name_hash)
{
	__u32 zero = 0;

	if (st->entries) {
		struct shrike_watch_key *k = bpf_map_lookup_elem(&watch_key_scratch, &zero);
		__u32 n = len < SHRIKE_WATCH_PATH_MAX ? len : SHRIKE_WATCH_PATH_MAX;
		__u32 bytes = n;

		if (!k) {
			counter_inc(SHRIKE_CNT_SCRATCH_FAIL);
			return true; /* cannot decide: let it through */
		}
		k->gen = gen;
		if (bpf_probe_read_kernel(k->path, watch_key_len(n), src))
			return true;
		if (n < SHRIKE_WATCH_PATH_MAX) {
			watch_key_end(k, n); /* exact entries end with their NUL */
			bytes = n + 1;
		}
		k->prefixlen = 8 * (1 + bytes);
		if (watch_hit(bpf_map_lookup_elem(&watch_paths, k), kind_bit, access))
			return true;
	}
	if (st->names) {
		struct shrike_watch_name_key nk = {};

		nk.gen = gen;
		nk.name_hash = name_hash;
		if (watch_hit(bpf_map_lookup_elem(&watch_names, &nk), kind_bit, access))
			return true;
	}
	return false;
}

#endif /* SHRIKE_WATCH_H */
