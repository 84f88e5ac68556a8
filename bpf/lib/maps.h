/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The maps every shrike BPF object shares: the event ring buffer, the kernel-side counters and
 * the process lineage map. Each object declares them from this header; the process object
 * creates them and user space hands their fds to the other objects (reuse_fd) before those
 * load, so there is one ring buffer, one counter array and one lineage map per agent.
 * Sizes here are defaults: user space sets the real ones before load.
 */
#ifndef SHRIKE_MAPS_H
#define SHRIKE_MAPS_H

#include "common.h"

/* All records, in one ring so their order across sensors is the kernel's order. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024);
} events SEC(".maps");

/* SHRIKE_CNT_* counters, per CPU so incrementing needs no atomics. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SHRIKE_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* Lineage: thread-group id -> the image it runs now and the image that started it. Sized from
 * pid_max by user space, so a live process always has room; not preallocated. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 32768);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct shrike_proc);
} procs SEC(".maps");

static __always_inline void counter_add(__u32 id, __u64 n)
{
	__u64 *slot = bpf_map_lookup_elem(&counters, &id);

	if (slot)
		*slot += n;
}

static __always_inline void counter_inc(__u32 id)
{
	counter_add(id, 1);
}

#endif /* SHRIKE_MAPS_H */
