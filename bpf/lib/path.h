/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Absolute paths from a struct path, in BPF, on every kernel.
 *
 * bpf_d_path() exists only for LSM and fentry programs, which this project cannot rely on
 * (trampolines are refused on some kernels), so the path is built by walking dentries up to
 * the process's root, crossing mount points through struct mount, the way the kernel's own
 * prepend_path() does. Components are prepended right to left into a per-CPU buffer; the walk
 * is a bpf_loop() so the verifier checks one step, not SHRIKE_PATH_DEPTH_MAX of them. The
 * legacy build (no bpf_loop) calls the step as a global function, which the verifier also
 * checks once; 5.10 lets a global function take scalars only, so that walk lives in the
 * scratch buffer beside the path.
 *
 * The result is what d_path() would print, without its " (deleted)" suffix: a path relative to
 * the process's root (so a container's view inside a container). A dentry that has no parent
 * and is not a mount root (a memfd, a pipe, a disconnected dentry) yields "/<its name>" and the
 * PATH_DISCONNECTED flag. Paths longer than SHRIKE_PATH_MAX or deeper than
 * SHRIKE_PATH_DEPTH_MAX are cut at the root end and flagged PATH_TRUNCATED.
 */
#ifndef SHRIKE_PATH_H
#define SHRIKE_PATH_H

#include "maps.h"

#define PATH_TRUNCATED (1U << 0)
#define PATH_DISCONNECTED (1U << 1)
#define PATH_DONE (1U << 2)

#define PATH_NAME_MAX 255
#define PATH_POS_MASK (SHRIKE_PATH_MAX - 1)

struct path_walk {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 pos;   /* the path is buf[pos .. SHRIKE_PATH_MAX - 1) */
	__u32 flags; /* PATH_* */
};

/* Twice the path length: a component written at pos < SHRIKE_PATH_MAX stays inside. */
struct path_buf {
	char buf[SHRIKE_PATH_MAX * 2];
	struct path_walk walk; /* the legacy build's walk (its step takes no pointer) */
	__u64 hash_path;       /* the legacy build's path_hashes() results */
	__u64 hash_name;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buf);
} path_scratch SEC(".maps");

static __always_inline struct mount *real_mount(struct vfsmount *vfsmnt)
{
	return (struct mount *)((void *)vfsmnt - bpf_core_field_offset(struct mount, mnt));
}

/* Prepends "/<name of d>". Returns 0, or -1 when the buffer is full. */
static __always_inline int path_prepend_name(struct path_walk *w, struct path_buf *pb,
					     struct dentry *d)
{
	__u32 len = BPF_CORE_READ(d, d_name.len);
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);

	if (len > PATH_NAME_MAX)
		len = PATH_NAME_MAX;
	if (w->pos < len + 1) {
		w->flags |= PATH_TRUNCATED;
		return -1;
	}
	w->pos -= len;
	if (bpf_probe_read_kernel(&pb->buf[w->pos & PATH_POS_MASK], len & PATH_NAME_MAX, name))
		counter_inc(SHRIKE_CNT_READ_FAIL);
	w->pos -= 1;
	pb->buf[w->pos & PATH_POS_MASK] = '/';
	return 0;
}

static long path_walk_step(__u32 index, void *ctx)
{
	struct path_walk *w = ctx;
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	/* Locals, not w->...: inside BPF_CORE_READ a member access of this (non-kernel) struct
	 * would itself become a CO-RE relocation. */
	struct dentry *d = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct dentry *parent, *mnt_root;
	struct mount *mnt, *mnt_parent;

	if (!pb)
		return 1;
	if (d == w->root_dentry && vfsmnt == w->root_mnt) {
		w->flags |= PATH_DONE;
		return 1;
	}
	mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	parent = BPF_CORE_READ(d, d_parent);
	if (d == mnt_root || d == parent) {
		if (d != mnt_root) {
			/* No parent and not a mount root: a pseudo file. Its name is all there is. */
			w->flags |= PATH_DISCONNECTED | PATH_DONE;
			path_prepend_name(w, pb, d);
			return 1;
		}
		mnt = real_mount(vfsmnt);
		mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (mnt == mnt_parent) {
			/* The root of the mount tree: the process's root is not above us. */
			w->flags |= PATH_DONE;
			return 1;
		}
		/* Continue from the mount point, in the parent mount. */
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->vfsmnt = (struct vfsmount *)((void *)mnt_parent +
						bpf_core_field_offset(struct mount, mnt));
		return 0;
	}
	if (path_prepend_name(w, pb, d))
		return 1;
	w->dentry = parent;
	return 0;
}

#ifdef SHRIKE_LEGACY
__noinline int path_walk_step_global(__u32 index)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);

	if (!pb)
		return 1;
	return path_walk_step(index, &pb->walk) != 0;
}
#endif

/*
 * Resolves `path` against `root` into the per-CPU path buffer. On return the path is
 * buf[*start .. *start + len), not NUL-terminated in the count; returns the length (>= 1),
 * or 0 when the scratch buffer is unavailable. *flags gets PATH_TRUNCATED / PATH_DISCONNECTED.
 */
static __always_inline __u32 path_resolve(const struct path *path, const struct path *root, __u32 *start,
					  __u32 *flags, struct path_buf **out)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	struct path_walk w = {};

	if (!pb) {
		counter_inc(SHRIKE_CNT_SCRATCH_FAIL);
		return 0;
	}
	w.dentry = BPF_CORE_READ(path, dentry);
	w.vfsmnt = BPF_CORE_READ(path, mnt);
	w.root_dentry = BPF_CORE_READ(root, dentry);
	w.root_mnt = BPF_CORE_READ(root, mnt);
	w.pos = SHRIKE_PATH_MAX - 1;
	pb->buf[SHRIKE_PATH_MAX - 1] = '\0';

#ifdef SHRIKE_LEGACY
	pb->walk = w;
	for (__u32 i = 0; i < SHRIKE_PATH_DEPTH_MAX; i++)
		if (path_walk_step_global(i))
			break;
	w = pb->walk;
#else
	bpf_loop(SHRIKE_PATH_DEPTH_MAX, path_walk_step, &w, 0);
#endif
	if (!(w.flags & PATH_DONE)) {
		w.flags |= PATH_TRUNCATED;
		counter_inc(SHRIKE_CNT_PATH_TRUNCATED);
	}
	if (w.pos == SHRIKE_PATH_MAX - 1) {
		/* Nothing prepended: the path is the root itself. */
		w.pos -= 1;
		pb->buf[w.pos & PATH_POS_MASK] = '/';
	}
	*start = w.pos & PATH_POS_MASK;
	*flags = w.flags;
	*out = pb;
	return SHRIKE_PATH_MAX - 1 - w.pos;
}

#endif /* SHRIKE_PATH_H */
