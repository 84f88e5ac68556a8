/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * exec_id: one id per process image over the node's uptime, and the lineage map that maps a
 * process to its image and the image that started it.
 *
 * An exec_id is CLOCK_BOOTTIME nanoseconds with the low 10 bits replaced by the CPU number, and
 * kept strictly increasing per CPU, so two ids made on one CPU never collide and ids made on
 * different CPUs differ in their low bits (up to 1024 CPUs). The top bit is always 0: ids that
 * user space makes for processes older than the agent have it set (crates/proctree), so the two
 * kinds can never collide either.
 */
#ifndef SHRIKE_LINEAGE_H
#define SHRIKE_LINEAGE_H

#include "maps.h"

#define EXEC_ID_CPU_BITS 10
#define EXEC_ID_CPU_MASK ((1ULL << EXEC_ID_CPU_BITS) - 1)

/* The last id handed out on each CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} exec_id_last SEC(".maps");

static __always_inline __u64 exec_id_new(void)
{
	__u32 zero = 0;
	__u64 cpu = bpf_get_smp_processor_id() & EXEC_ID_CPU_MASK;
	__u64 id = (bpf_ktime_get_boot_ns() & ~EXEC_ID_CPU_MASK) | cpu;
	__u64 *last = bpf_map_lookup_elem(&exec_id_last, &zero);

	if (last) {
		if (id <= *last)
			id = *last + (1ULL << EXEC_ID_CPU_BITS);
		*last = id;
	}
	return id & ~(1ULL << 63);
}

static __always_inline struct shrike_proc *proc_lookup(__u32 tgid)
{
	return bpf_map_lookup_elem(&procs, &tgid);
}

static __always_inline void proc_store(__u32 tgid, struct shrike_proc *proc)
{
	if (bpf_map_update_elem(&procs, &tgid, proc, BPF_ANY_FLAG))
		counter_inc(SHRIKE_CNT_PROCS_UPDATE_FAIL);
}

/*
 * Ancestry of an image started from `img` by fork or by exec without fork: `img` itself, then
 * `img`'s own ancestors, cut at SHRIKE_ANCESTRY.
 */
static __always_inline void ancestry_below(const struct shrike_proc *img, __u64 *path,
					   __u64 *name, __u32 *count, __u32 *flags)
{
	__u32 n = img->anc_count;

	path[0] = img->path_hash;
	name[0] = img->name_hash;
#pragma unroll
	for (int i = 1; i < SHRIKE_ANCESTRY; i++) {
		path[i] = img->anc_path[i - 1];
		name[i] = img->anc_name[i - 1];
	}
	*count = n + 1 > SHRIKE_ANCESTRY ? SHRIKE_ANCESTRY : n + 1;
	*flags = img->flags & (SHRIKE_PROC_ANCESTRY_CUT | SHRIKE_PROC_ANCESTRY_UNKNOWN);
	if (n + 1 > SHRIKE_ANCESTRY)
		*flags |= SHRIKE_PROC_ANCESTRY_CUT;
	if (!img->name_hash)
		*flags |= SHRIKE_PROC_ANCESTRY_UNKNOWN;
	if (img->flags & (SHRIKE_PROC_LISTENED | SHRIKE_PROC_UNDER_SERVER))
		*flags |= SHRIKE_PROC_UNDER_SERVER;
}

/*
 * Ancestry of the image an exec is about to start in the process whose lineage entry is
 * `cur`: a fork clone's exec gets the clone's ancestry (its parent is the forking image); an
 * exec without fork gets the replaced image and its ancestry. Unknown when `cur` is NULL.
 */
static __always_inline void ancestry_of_new_image(const struct shrike_proc *cur, __u64 *path,
						  __u64 *name, __u32 *count, __u32 *flags)
{
	if (!cur) {
		*count = 0;
		*flags = SHRIKE_PROC_ANCESTRY_UNKNOWN;
		return;
	}
	if (cur->flags & SHRIKE_PROC_CLONE) {
#pragma unroll
		for (int i = 0; i < SHRIKE_ANCESTRY; i++) {
			path[i] = cur->anc_path[i];
			name[i] = cur->anc_name[i];
		}
		*count = cur->anc_count;
		*flags = cur->flags & (SHRIKE_PROC_ANCESTRY_CUT | SHRIKE_PROC_ANCESTRY_UNKNOWN |
				       SHRIKE_PROC_UNDER_SERVER);
		/* A clone that listened itself runs the image that becomes the new one's parent. */
		if (cur->flags & SHRIKE_PROC_LISTENED)
			*flags |= SHRIKE_PROC_UNDER_SERVER;
		return;
	}
	ancestry_below(cur, path, name, count, flags);
}

#endif /* SHRIKE_LINEAGE_H */
