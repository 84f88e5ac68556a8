/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Writing records to the ring buffer with batched wake-ups.
 *
 * Waking the reader on every record costs about 4x on a syscall-heavy loop (measured), so
 * records are written with BPF_RB_NO_WAKEUP and the reader is woken only once enough data is
 * waiting (cfg_wakeup_bytes); the reader also polls with a short timeout, which bounds the
 * latency of a quiet period. A record that does not fit is counted, never lost silently.
 */
#ifndef SHRIKE_EMIT_H
#define SHRIKE_EMIT_H

#include "maps.h"

/* Set by user space before load (rodata). */
const volatile __u64 cfg_wakeup_bytes = 256 * 1024;

static __always_inline __u64 emit_flags(__u64 size)
{
	__u64 pending = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA_QUERY);

	return pending + size >= cfg_wakeup_bytes ? BPF_RB_FORCE_WAKEUP_FLAG : BPF_RB_NO_WAKEUP_FLAG;
}

static __always_inline long emit_with(void *data, __u64 size, __u64 flags)
{
	long err = bpf_ringbuf_output(&events, data, size, flags);

	if (err)
		counter_inc(SHRIKE_CNT_RINGBUF_FULL);
	return err;
}

/* Copies `size` bytes at `data` into the ring buffer. Returns 0 or a negative errno. */
static __always_inline long emit_record(void *data, __u64 size)
{
	return emit_with(data, size, emit_flags(size));
}

/* The same, waking the reader at once: for a record a process waits on (a held exec). */
static __always_inline long emit_record_now(void *data, __u64 size)
{
	return emit_with(data, size, BPF_RB_FORCE_WAKEUP_FLAG);
}

#endif /* SHRIKE_EMIT_H */
