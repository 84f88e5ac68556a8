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

#endif /* SHRIKE_TASK_H */
