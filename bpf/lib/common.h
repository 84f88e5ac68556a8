/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Includes and small definitions every shrike BPF program starts with. Include order follows
 * STYLE.md: vmlinux.h, the libbpf headers, then shrike's own.
 */
#ifndef SHRIKE_COMMON_H
#define SHRIKE_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "shrike_abi.h"
#include "build.h"

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#endif
#ifndef unlikely
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* Not in vmlinux.h: these are #defines in the kernel. */
#define BPF_RB_NO_WAKEUP_FLAG 1
#define BPF_RB_FORCE_WAKEUP_FLAG 2
#define BPF_RB_AVAIL_DATA_QUERY 0
#define BPF_NOEXIST_FLAG 1
#define BPF_ANY_FLAG 0

#endif /* SHRIKE_COMMON_H */
