/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Reading an inode: its identity as a map key, and its change time under whichever name this
 * kernel gives it. All reads are CO-RE.
 */
#ifndef SHRIKE_INODE_H
#define SHRIKE_INODE_H

#include "common.h"

/* The (s_dev, inode number) pair that names a file on this machine. */
static __always_inline void inode_key_of(struct inode *inode, struct shrike_inode_key *key)
{
	key->ino = BPF_CORE_READ(inode, i_ino);
	key->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	key->_pad0 = 0;
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

#endif /* SHRIKE_INODE_H */
