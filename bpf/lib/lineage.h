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

#endif /* SHRIKE_LINEAGE_H */
