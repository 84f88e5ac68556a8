// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Capability probes for `shrike doctor` and for choosing hooks at start-up. Each program here
 * is loaded on its own (the others' autoload switched off) to learn whether the running kernel
 * accepts that program type and whether it really fires: BPF LSM can be built, load, and still
 * never be called when "bpf" is missing from the active LSM list, so the LSM and fentry probes
 * count their calls from one chosen process and user space checks the count after it opens a
 * file. Hooks are chosen by what loads and fires here, never by kernel version number.
 */
#include "common.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The probing process; only its calls are counted. */
const volatile __u32 cfg_probe_tgid = 0;

__u64 lsm_calls = 0;
__u64 fentry_calls = 0;
__u64 tp_btf_calls = 0;
__u64 send_signal_calls = 0;
__s64 send_signal_ret = 0;

static __always_inline bool from_prober(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == cfg_probe_tgid;
}

SEC("lsm/file_open")
int BPF_PROG(probe_lsm, struct file *file)
{
	if (from_prober())
		__sync_fetch_and_add(&lsm_calls, 1);
	return 0;
}

SEC("fentry/security_file_open")
int BPF_PROG(probe_fentry, struct file *file)
{
	if (from_prober())
		__sync_fetch_and_add(&fentry_calls, 1);
	return 0;
}

/* A sched tracepoint, not sys_enter: probing must not tax every system call. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(probe_tp_btf, struct task_struct *parent, struct task_struct *child)
{
	if (from_prober())
		__sync_fetch_and_add(&tp_btf_calls, 1);
	return 0;
}

/* bpf_send_signal with signal 0 checks permission and delivers nothing: proof the helper
 * works from a tracepoint, which the SIGKILL enforcement fallback relies on. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(probe_send_signal, struct task_struct *parent, struct task_struct *child)
{
	if (from_prober()) {
		send_signal_ret = bpf_send_signal(0);
		__sync_fetch_and_add(&send_signal_calls, 1);
	}
	return 0;
}
