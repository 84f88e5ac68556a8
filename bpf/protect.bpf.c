// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * Self-protection (`shrike run --protect-self`), where BPF LSM is active: no other process,
 * root included, may signal or ptrace the agent or remove its pins under /sys/fs/bpf/shrike,
 * unless it runs an allowed binary (the shrike binary itself, and those given with
 * --allow-control). Every refusal is a record the agent turns into an alert.
 *
 * Hooks: lsm/task_kill, lsm/ptrace_access_check, lsm/inode_unlink (BPF LSM, 5.7+; active on
 * kernels booted with bpf in lsm=). Where BPF LSM is not active, these attempts are seen by
 * the signal and ptrace sensors and alerted on, not refused.
 */
#include "common.h"
#include "maps.h"
#include "emit.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
SHRIKE_ABI_ANCHOR;

/* The agent's thread-group id (set before load). */
const volatile __u32 cfg_self_tgid = 0;

/* FNV-1a 64 path hashes of binaries allowed to control the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u8);
} allowed_controllers SEC(".maps");

/* (s_dev << 32 | low bits of i_ino) of the pin directories (links/, maps/). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u64);
	__type(value, __u8);
} protected_dirs SEC(".maps");

/* Whether the current process may control the agent: the agent itself, or an allowed binary
 * (by the path hash its lineage entry carries). */
static __always_inline bool controller_allowed(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct shrike_proc *p;

	if (tgid == cfg_self_tgid)
		return true;
	p = bpf_map_lookup_elem(&procs, &tgid);
	return p && bpf_map_lookup_elem(&allowed_controllers, &p->path_hash);
}

static __always_inline void report(__u32 kind, __s32 signal)
{
	struct shrike_tamper t = {};
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct shrike_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	t.hdr.kind = SHRIKE_REC_TAMPER;
	t.hdr.size = sizeof(t);
	t.hdr.ktime_ns = bpf_ktime_get_boot_ns();
	t.hdr.pid = tgid;
	t.hdr.tid = (__u32)pid_tgid;
	t.hdr.exec_id = p ? p->exec_id : 0;
	t.kind = kind;
	t.target_pid = cfg_self_tgid;
	t.signal = signal;
	emit_record(&t, sizeof(t));
}

SEC("lsm/task_kill")
int BPF_PROG(protect_kill, struct task_struct *p, struct kernel_siginfo *info, int sig,
	     const struct cred *cred, int ret)
{
	if (ret)
		return ret;
	if (sig == 0 || BPF_CORE_READ(p, tgid) != cfg_self_tgid || controller_allowed())
		return 0;
	report(SHRIKE_TAMPER_SIGNAL, sig);
	return -1; /* -EPERM */
}

SEC("lsm/ptrace_access_check")
int BPF_PROG(protect_ptrace, struct task_struct *child, unsigned int mode, int ret)
{
	if (ret)
		return ret;
	if (BPF_CORE_READ(child, tgid) != cfg_self_tgid || controller_allowed())
		return 0;
	report(SHRIKE_TAMPER_PTRACE, mode);
	return -1;
}

SEC("lsm/inode_unlink")
int BPF_PROG(protect_pins, struct inode *dir, struct dentry *victim, int ret)
{
	__u64 key;

	if (ret)
		return ret;
	key = ((__u64)BPF_CORE_READ(dir, i_sb, s_dev) << 32) | (__u32)BPF_CORE_READ(dir, i_ino);
	if (!bpf_map_lookup_elem(&protected_dirs, &key) || controller_allowed())
		return 0;
	report(SHRIKE_TAMPER_UNPIN, 0);
	return -1;
}
