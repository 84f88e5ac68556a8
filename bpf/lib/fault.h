/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Fault injection for the degradation tests: a program calls fault_point() with its family's
 * `cfg_fault_refuse` mask and its own bit; with the bit set, the program reads above its stack
 * frame, which every verifier refuses, so the kernel really rejects the program at load and the
 * loader's degradation path runs for real. The mask is rodata, which the verifier knows: with
 * the bit clear the read is dead code and never verified. Set from user space by
 * SHRIKE_FAULT_REFUSE (crates/bpf/src/capability.rs); zero in normal runs.
 */
#ifndef SHRIKE_FAULT_H
#define SHRIKE_FAULT_H

static __always_inline void fault_point(__u64 mask, __u64 bit)
{
	if (mask & bit)
		asm volatile("r0 = *(u64 *)(r10 + 8)" ::: "r0");
}

#endif /* SHRIKE_FAULT_H */
