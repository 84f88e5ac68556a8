/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The directory decision cache: an open whose directory is known to hold nothing the watch set
 * could match is dropped before its path is built (building the canonical path is most of what
 * an unwatched open costs).
 *
 * A directory is "cold" in a generation when no watch entry covers it (no path entry is a prefix
 * of "<dir>/") and none lies below it (user space lists every directory above an entry in
 * `watch_dirs`). An open whose path was built and found unwatched files its directory here,
 * keyed by what makes that directory's path: the file's mount, the directory's device and inode,
 * the process's root, and the generation's serial. A later open under the same key, with its
 * base name matching no name entry and no path-less rule acting on it, is decided without a path.
 *
 * What can change a cached directory's path bumps `dir_epoch`, and an entry is good only for the
 * epoch it was filed under: renames and directory removal (at entry and at exit, with the
 * thread counted in `dir_busy` in between, during which nothing is filed or trusted), mount,
 * umount, move_mount, pivot_root, chroot, setns, and unshare/clone of a mount namespace (at
 * exit). An inode number is reused only after its directory was removed, which bumps the epoch;
 * a policy reload changes the serial. What no hook sees (a rename on another NFS client, an
 * automount, a 32-bit process's rename: no set decodes ia32 calls) can leave an entry stale until
 * the next bump: the README lists it. Only the non-LSM hook sets use the cache (`cfg_dir_cache`,
 * set by the loader when every call above is armed).
 */
#ifndef SHRIKE_DIR_CACHE_H
#define SHRIKE_DIR_CACHE_H

#include "file_filter.h"
#include "file_paths.h"

/* Set by user space before load (rodata): the hook set has no LSM and arms every call above. */
const volatile __u32 cfg_dir_cache = 0;

/* Not in vmlinux.h (#defines in the kernel). */
#define AT_REMOVEDIR 0x200
#define CLONE_NEWNS 0x00020000

/* Bumped by every call that can change a directory's path; threads inside one. */
__u64 dir_epoch = 0;
__s64 dir_busy = 0;

struct dir_cache_key {
	__u64 mnt;	   /* struct vfsmount of the opened file */
	__u64 root_mnt;	   /* the process's root */
	__u64 root_dentry;
	__u64 ino;	   /* the directory's inode */
	__u32 dev;	   /* ... and its superblock's s_dev */
	__u32 serial;	   /* shrike_watch_state.serial of the generation */
	__u32 access;	   /* SHRIKE_ACCESS_* of the open: cold for reads is not cold for writes */
	__u32 _pad;
};

/* An open's directory key and the opened file's dentry (its name is checked on every skip). */
struct dir_probe {
	struct dir_cache_key key;
	struct dentry *dentry;
};

/* dir_cache value: (dir_epoch when filed) << 1, and this bit when opens there are watched. */
#define DIR_WATCHED 1ULL

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct dir_cache_key);
	__type(value, __u64);
} dir_cache SEC(".maps");

/* The threads inside a path-changing call (a thread counted in dir_busy). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} dir_busy_tids SEC(".maps");

/* Directories above a watch entry, as exact LPM keys "<dir>/\0" (per generation). */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * SHRIKE_WATCH_DIRS_MAX); /* two generations */
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct shrike_watch_key);
	__type(value, __u8);
} watch_dirs SEC(".maps");

/* Whether call `h` can change a directory's path before it returns (read at entry). */
static __always_inline bool dir_changing_at_enter(__u32 h, struct pt_regs *regs)
{
	switch (h) {
	case SHRIKE_SYS_RMDIR:
	case SHRIKE_SYS_RENAME ... SHRIKE_SYS_RENAMEAT2:
		return true;
	case SHRIKE_SYS_UNLINKAT:
		return sys_arg(regs, 2) & AT_REMOVEDIR;
	}
	return false;
}

/* Whether call `h`, seen at exit only, may have changed a directory's path or a mount. */
static __always_inline bool dir_changing_at_exit(__u32 h, struct pt_regs *regs)
{
	__u64 flags = 0;

	switch (h) {
	case SHRIKE_SYS_MOUNT:
	case SHRIKE_SYS_UMOUNT2:
	case SHRIKE_SYS_MOVE_MOUNT:
	case SHRIKE_SYS_PIVOT_ROOT:
	case SHRIKE_SYS_CHROOT:
	case SHRIKE_SYS_SETNS:
		return true;
	case SHRIKE_SYS_UNSHARE:
	case SHRIKE_SYS_CLONE:
		return sys_arg(regs, 0) & CLONE_NEWNS;
	case SHRIKE_SYS_CLONE3:
		/* struct clone_args starts with its flags; unreadable: assume the worst. */
		if (bpf_probe_read_user(&flags, sizeof(flags), (void *)sys_arg(regs, 0)))
			return true;
		return flags & CLONE_NEWNS;
	}
	return false;
}

/* At the entry of a call: one that changes paths stops the cache until it returns. */
static __always_inline void dir_cache_enter(__u32 h, struct pt_regs *regs)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u8 one = 1;

	if (!dir_changing_at_enter(h, regs))
		return;
	if (!bpf_map_update_elem(&dir_busy_tids, &tid, &one, BPF_ANY_FLAG))
		__sync_fetch_and_add(&dir_busy, 1);
	__sync_fetch_and_add(&dir_epoch, 1);
}

/* At the exit of a call: what it may have changed is filed under an epoch no longer current. */
static __always_inline void dir_cache_exit(__u32 h, struct pt_regs *regs)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (dir_changing_at_enter(h, regs)) {
		__sync_fetch_and_add(&dir_epoch, 1);
		/* Counted at entry only if the entry ran (the agent may have started in between). */
		if (!bpf_map_delete_elem(&dir_busy_tids, &tid))
			__sync_fetch_and_add(&dir_busy, -1);
		return;
	}
	if (dir_changing_at_exit(h, regs))
		__sync_fetch_and_add(&dir_epoch, 1);
}

/* Where an open's file sits: its directory's key, or false when the file is a mount root or
 * disconnected (no directory in the same mount to decide on). */
static __always_inline bool dir_key_of(struct file *f, const struct shrike_watch_state *st,
				       __u32 access, struct dir_probe *p)
{
	struct dir_cache_key *k = &p->key;
	struct path fpath, root;
	struct dentry *parent;

	bpf_core_read(&fpath, sizeof(fpath), &f->f_path);
	parent = BPF_CORE_READ(fpath.dentry, d_parent);
	if (!parent || parent == fpath.dentry || fpath.dentry == BPF_CORE_READ(fpath.mnt, mnt_root))
		return false;
	task_root(current_task(), &root);
	k->mnt = (__u64)fpath.mnt;
	k->root_mnt = (__u64)root.mnt;
	k->root_dentry = (__u64)root.dentry;
	p->dentry = fpath.dentry;
	k->ino = BPF_CORE_READ(parent, d_inode, i_ino);
	k->dev = BPF_CORE_READ(fpath.mnt, mnt_sb, s_dev);
	k->serial = st->serial;
	k->access = access;
	return true;
}

/* Whether a watch entry (or name) makes an open with `access` leave the kernel or meet a rule. */
static __always_inline bool dir_entry_wants(const struct shrike_watch_value *v, __u32 access)
{
	return v && (watch_hit(v, SHRIKE_WATCH_OPEN, access) ||
		     v->rule[SHRIKE_ENF_OPEN] != SHRIKE_NO_RULE);
}

/*
 * Whether an open of `f` (access `access`) can be dropped without its path: its directory is
 * filed cold for this access, the current epoch and generation, its base name is no watched
 * name, and no path-less open rule acts on it. Otherwise *p is the directory's key and *epoch
 * the epoch to file it under once the path is built (0: do not file: known watched, or the
 * cache is off or busy).
 */
static __always_inline bool dir_cache_skips(struct file *f, __u32 access, struct dir_probe *p,
					    __u64 *epoch)
{
	struct shrike_watch_state *st;
	__u64 now, *filed;
	__u32 gen = 0;
	__u16 rule = SHRIKE_NO_RULE;

	*epoch = 0;
	if (!cfg_dir_cache)
		return false;
	st = watch_current(&gen);
	if (!st || !st->dir_cache || (st->pass_all & SHRIKE_WATCH_OPEN))
		return false;
	now = dir_epoch;
	if (dir_busy > 0 || !dir_key_of(f, st, access, p))
		return false;
	filed = bpf_map_lookup_elem(&dir_cache, &p->key);
	if (!filed || (*filed >> 1) != now) {
		*epoch = now + 1; /* +1: 0 means "do not file" */
		return false;
	}
	if (*filed & DIR_WATCHED)
		return false;
	if (st->names) {
		struct shrike_watch_name_key nk = {};

		nk.gen = gen;
		nk.name_hash = dentry_name_hash(p->dentry);
		if (dir_entry_wants(bpf_map_lookup_elem(&watch_names, &nk), access))
			return false;
	}
	if ((st->enforce & (1U << SHRIKE_ENF_OPEN)) && !is_self() &&
	    frule_in_list(gen, SHRIKE_ENF_OPEN, access, 0, &rule))
		return false;
	counter_inc(SHRIKE_CNT_FILE_SEEN);
	counter_inc(SHRIKE_CNT_FILE_FILTERED);
	counter_inc(SHRIKE_CNT_FILE_DIR_SKIPPED);
	return true;
}

/*
 * After an open was built and dropped: files its directory (`p`, from dir_cache_skips()) as
 * cold for its access when no watch entry covering the directory wants the open and no entry
 * wanting opens lies below it, as watched otherwise (so the next open there does not ask
 * again). `path` is the canonical path (`len` bytes, kernel memory), whose last component is
 * the dentry's name; `epoch` what dir_cache_skips() gave.
 */
static __always_inline void dir_cache_file(const struct dir_probe *p, const __u8 *path,
					   __u32 len, __u64 epoch)
{
	/* A local: a member access of this (non-kernel) struct inside BPF_CORE_READ would itself
	 * become a CO-RE relocation. */
	struct dentry *dentry = p->dentry;
	__u32 name_len = BPF_CORE_READ(dentry, d_name.len);
	struct shrike_watch_state *st;
	struct shrike_watch_key *wk;
	__u32 gen = 0, zero = 0, dir_len, last;
	__u64 filed = (epoch - 1) << 1;

	if (!epoch || name_len >= len)
		return;
	dir_len = len - name_len; /* "<dir>/" */
	if (dir_len + 1 >= SHRIKE_WATCH_PATH_MAX)
		return;
	st = watch_current(&gen);
	wk = bpf_map_lookup_elem(&watch_key_scratch, &zero);
	if (!st || !wk || st->serial != p->key.serial)
		return;
	wk->gen = gen;
	if (bpf_probe_read_kernel(wk->path, watch_key_len(dir_len), path))
		return;
	last = dir_len - 1;
	barrier_var(last);
	if (last >= SHRIKE_WATCH_PATH_MAX || wk->path[last] != '/')
		return;
	/* The entry covering the directory ("<dir>/" is the key, no NUL). */
	wk->prefixlen = 8 * (1 + dir_len);
	if (st->entries && dir_entry_wants(bpf_map_lookup_elem(&watch_paths, wk), p->key.access)) {
		filed |= DIR_WATCHED;
	} else {
		/* An entry wanting opens below it ("<dir>/\0" exactly). */
		watch_key_end(wk, dir_len);
		wk->prefixlen = 8 * (2 + dir_len);
		if (bpf_map_lookup_elem(&watch_dirs, wk))
			filed |= DIR_WATCHED;
	}
	bpf_map_update_elem(&dir_cache, &p->key, &filed, BPF_ANY_FLAG);
}

#endif /* SHRIKE_DIR_CACHE_H */
