/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The two builds of every object (crates/bpf/src/variant.rs picks one at load): the main build,
 * for kernels with bpf_loop() (5.17+), and the legacy build (-DSHRIKE_LEGACY) for 5.8–5.16. Only
 * code differs between them, never a map, a program or a global: one skeleton serves both, and
 * build.rs refuses a legacy build whose declarations differ (a map only the legacy build uses is
 * declared in both).
 *
 * What the legacy build does instead:
 * - bpf_loop: a bounded loop whose step is a global function. The verifier checks a global
 *   function once; on 5.10 it may take scalars only, so the step's state lives in a per-CPU
 *   scratch map, and only the step's answer ends the loop (a test on a live value at each exit
 *   would leave the verifier states it cannot prune). Byte loops take many bytes a step and
 *   stand masks for branches (sign_mask, byte_is).
 * - bpf_get_current_task_btf (5.11): bpf_get_current_task(); every read through current_task()
 *   is a BPF_CORE_READ, which works on either pointer.
 * - bpf_task_pt_regs (5.15): the registers read from the top of the task's kernel stack.
 */
#ifndef SHRIKE_BUILD_H
#define SHRIKE_BUILD_H

#ifdef SHRIKE_LEGACY
#define current_task() ((struct task_struct *)bpf_get_current_task())

/* All ones when the top bit of x is set, else zero, in a form clang cannot turn back into a
 * branch. */
static __always_inline __u64 sign_mask(__u64 x)
{
	asm volatile("%[x] s>>= 63" : [x] "+r"(x));
	return x;
}

/* All ones when byte b equals c, else zero. */
static __always_inline __u64 byte_is(__u64 b, __u8 c)
{
	return sign_mask((b ^ c) - 1);
}

/* The saved user registers of a task in a system call, as the kernel's task_pt_regs() finds
 * them on x86-64: the top of its kernel stack (THREAD_SIZE 16 KiB without KASAN, no padding).
 * An address to read with a helper. */
static __always_inline struct pt_regs *task_user_regs(struct task_struct *task)
{
	void *stack = BPF_CORE_READ(task, stack);

	return (struct pt_regs *)(stack + 16384) - 1;
}
#else
#define current_task() bpf_get_current_task_btf()
#endif

#endif /* SHRIKE_BUILD_H */
