/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/* Reading identity out of a task: credentials, login uid, start time. All reads are CO-RE. */
#ifndef SHRIKE_TASK_H
#define SHRIKE_TASK_H

#include "common.h"

#define SHRIKE_UID_UNSET 4294967295U

/* The audit login uid; unset when the kernel is built without CONFIG_AUDIT. */
static __always_inline __u32 task_loginuid(struct task_struct *task)
{
	if (bpf_core_field_exists(task->loginuid))
		return BPF_CORE_READ(task, loginuid.val);
	return SHRIKE_UID_UNSET;
}

/* Process start: CLOCK_BOOTTIME ns of the thread-group leader's fork. */
static __always_inline __u64 task_start_boottime(struct task_struct *task)
{
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);

	return BPF_CORE_READ(leader, start_boottime);
}

/* An inode's change time has had three names: i_ctime (timespec64, to 6.5), __i_ctime (6.6 to
 * 6.10), i_ctime_sec (6.11 on). */
struct inode___ctime_ts {
	struct timespec64 i_ctime;
} __attribute__((preserve_access_index));

struct inode___ctime_hidden {
	struct timespec64 __i_ctime;
} __attribute__((preserve_access_index));

/* The inode's change time in CLOCK_REALTIME seconds; false when this kernel has none we know. */
static __always_inline bool inode_ctime_s(struct inode *inode, __s64 *out)
{
	if (bpf_core_field_exists(inode->i_ctime_sec)) {
		*out = BPF_CORE_READ(inode, i_ctime_sec);
		return true;
	}
	if (bpf_core_field_exists(((struct inode___ctime_hidden *)inode)->__i_ctime)) {
		*out = BPF_CORE_READ((struct inode___ctime_hidden *)inode, __i_ctime.tv_sec);
		return true;
	}
	if (bpf_core_field_exists(((struct inode___ctime_ts *)inode)->i_ctime)) {
		*out = BPF_CORE_READ((struct inode___ctime_ts *)inode, i_ctime.tv_sec);
		return true;
	}
	return false;
}

#endif /* SHRIKE_TASK_H */
