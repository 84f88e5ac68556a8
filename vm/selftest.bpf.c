// SPDX-License-Identifier: GPL-2.0
/* BPF programs for vm/selftest.sh only (not part of shrike): they prove that
 * a guest kernel of the matrix loads and runs the two program types the host
 * kernel refuses, an LSM program (denies exec of /tmp/shrike-vm-deny-me) and
 * an fentry program (counts vfs_unlink calls; do_unlinkat, which it counted
 * before, is gone from sid's 7.x BTF). Self-contained: it needs the
 * repository's bpf/include/vmlinux.h and clang, not libbpf's headers. */
#include "vmlinux.h"

#define SEC(name) __attribute__((section(name), used))
#define EPERM 1

static long (*bpf_probe_read_kernel_str)(void *dst, __u32 size, const void *src) = (void *)115;

char LICENSE[] SEC("license") = "GPL";

__u64 unlink_count = 0;
__u64 denied_count = 0;

static const char deny_path[] = "/tmp/shrike-vm-deny-me";

SEC("lsm/bprm_check_security")
int deny_exec(unsigned long long *ctx)
{
	struct linux_binprm *bprm = (void *)ctx[0];
	int ret = (int)ctx[1];
	char name[sizeof(deny_path)] = {};

	if (ret)
		return ret;
	if (bpf_probe_read_kernel_str(name, sizeof(name), bprm->filename) != sizeof(name))
		return 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(name); i++)
		if (name[i] != deny_path[i])
			return 0;
	__sync_fetch_and_add(&denied_count, 1);
	return -EPERM;
}

SEC("fentry/vfs_unlink")
int count_unlink(unsigned long long *ctx)
{
	__sync_fetch_and_add(&unlink_count, 1);
	return 0;
}
