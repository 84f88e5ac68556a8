/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Files written by networked images: the file object remembers each write open made by an
 * image that connected out (SHRIKE_PROC_CONNECTED, set by the network sensor), keyed by the
 * inode; the process object looks the executable up at exec. Together they say "this program
 * was written by something that talked to the network", whatever the downloader is called and
 * wherever it put the file. The map is an LRU: a machine that writes many files from networked
 * processes forgets the oldest first. Included only by the process and file objects.
 */
#ifndef SHRIKE_NET_WRITTEN_H
#define SHRIKE_NET_WRITTEN_H

#include "maps.h"
#include "inode.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct shrike_inode_key);
	__type(value, struct shrike_net_write);
} net_written SEC(".maps");

/* A write open of `file` by the current process: remembered when its image connected out. */
static __always_inline void net_written_note(struct file *file)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct shrike_proc *proc = bpf_map_lookup_elem(&procs, &tgid);
	struct shrike_inode_key key;
	struct shrike_net_write w;

	if (!proc || !(proc->flags & SHRIKE_PROC_CONNECTED))
		return;
	inode_key_of(BPF_CORE_READ(file, f_inode), &key);
	w.writer_exec_id = proc->exec_id;
	w.ktime_ns = bpf_ktime_get_boot_ns();
	bpf_map_update_elem(&net_written, &key, &w, BPF_ANY_FLAG);
}

/* The image that wrote `inode` after connecting out, or 0. */
static __always_inline __u64 net_writer_of(struct inode *inode)
{
	struct shrike_inode_key key;
	struct shrike_net_write *w;

	inode_key_of(inode, &key);
	w = bpf_map_lookup_elem(&net_written, &key);
	return w ? w->writer_exec_id : 0;
}

#endif /* SHRIKE_NET_WRITTEN_H */
