/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Paths and strings into a file record (bpf/lib/file_record.h). Every function writes at
 * raw[base + (off & OFF_MASK)] and returns the length written. Canonical paths come from the
 * kernel's own struct path (bpf/lib/path.h); strings from user memory are made absolute against
 * the cwd or a dirfd and checked for components ("//", "/./", "/../") the watch filter cannot
 * trust lexically. Each path's last component is hashed (FNV-1a 64) for the name lookups.
 */
#ifndef SHRIKE_FILE_PATHS_H
#define SHRIKE_FILE_PATHS_H

#include "file_record.h"
#include "path.h"
#include "watch.h"

struct scan_ctx {
	__u32 start;
	__u32 end;
	__u32 bad;
	__u32 p1, p2, p3; /* the three previous bytes */
	__u64 hash;	  /* FNV-1a 64 of the bytes since the last '/' */
};

/* The legacy build's scan (see scan_path); unused by the main build. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scan_ctx);
} scan_scratch SEC(".maps");

#ifndef SHRIKE_LEGACY
/* One byte of a path in the scratch record: hash the last component, spot "//", "/./", "/../". */
static long scan_step(__u32 index, void *vctx)
{
	struct scan_ctx *c = vctx;
	__u32 zero = 0;
	struct rec_buf *b = bpf_map_lookup_elem(&rec_scratch, &zero);
	/* From the loop index, not a counter in ctx: the verifier then checks one iteration
	 * rather than following a constant position through all of them. */
	__u32 pos = c->start + index;
	__u8 ch;

	if (!b || pos >= c->end)
		return 1;
	ch = b->raw[pos & (RAW_SIZE - 1)];
	if (ch == '/') {
		if (c->p1 == '/')
			c->bad = 1;
		else if (c->p1 == '.' && (c->p2 == '/' || (c->p2 == '.' && c->p3 == '/')))
			c->bad = 1;
		c->hash = WATCH_FNV_OFFSET;
	} else {
		c->hash = (c->hash ^ ch) * WATCH_FNV_PRIME;
	}
	c->p3 = c->p2;
	c->p2 = c->p1;
	c->p1 = ch;
	return 0;
}
#else
/* No bpf_loop: a global function (checked once, scalars only on 5.10) scans SCAN_STEP bytes a
 * step of this CPU's scan_scratch, the same logic as the main build's with masks for branches.
 * Eight bytes: a step of 128 cost the verifier more than the shorter loop saved (measured). */
#define SCAN_STEP 8

__noinline int scan_step_global(__u32 step)
{
	__u32 zero = 0, k;
	struct scan_ctx *c = bpf_map_lookup_elem(&scan_scratch, &zero);
	struct rec_buf *b = bpf_map_lookup_elem(&rec_scratch, &zero);
	__u64 p1, p2, p3, bad, hash;

	if (!c || !b || c->start + step * SCAN_STEP >= c->end)
		return 1;
	p1 = c->p1;
	p2 = c->p2;
	p3 = c->p3;
	bad = c->bad ? ~0ULL : 0;
	hash = c->hash;
#pragma unroll
	for (k = 0; k < SCAN_STEP; k++) {
		__u64 pos = c->start + step * SCAN_STEP + k;
		__u64 inside = sign_mask(pos - c->end);
		__u64 ch = b->raw[pos & (RAW_SIZE - 1)];
		__u64 slash = byte_is(ch, '/');
		__u64 dots = byte_is(p1, '.') & (byte_is(p2, '/') | (byte_is(p2, '.') & byte_is(p3, '/')));
		__u64 now_bad = slash & (byte_is(p1, '/') | dots);
		__u64 h = (WATCH_FNV_OFFSET & slash) | (((hash ^ ch) * WATCH_FNV_PRIME) & ~slash);

		bad |= now_bad & inside;
		hash = (h & inside) | (hash & ~inside);
		p3 = (p2 & inside) | (p3 & ~inside);
		p2 = (p1 & inside) | (p2 & ~inside);
		p1 = (ch & inside) | (p1 & ~inside);
	}
	c->p1 = p1;
	c->p2 = p2;
	c->p3 = p3;
	c->bad = bad ? 1 : 0;
	c->hash = hash;
	return 0;
}
#endif

/* Scans raw[start, end) of the scratch record. Returns the last component's hash; *bad when
 * the path has a component the filter cannot trust lexically. */
static __always_inline __u64 scan_path(__u32 start, __u32 end, bool *bad)
{
	struct scan_ctx c = {};

	c.start = start;
	c.end = end;
	c.hash = WATCH_FNV_OFFSET;
#ifdef SHRIKE_LEGACY
	{
		__u32 zero = 0;
		struct scan_ctx *s = bpf_map_lookup_elem(&scan_scratch, &zero);

		if (!s) {
			*bad = true;
			return 0;
		}
		*s = c;
		/* Only the step's answer ends the loop: a test on start or end here would give
		 * the verifier a different state at each exit, none of which it could prune. */
		for (__u32 step = 0; step < SHRIKE_PATH_MAX / SCAN_STEP; step++)
			if (scan_step_global(step))
				break;
		c = *s;
	}
#else
	bpf_loop(SHRIKE_PATH_MAX, scan_step, &c, 0);
#endif
	if (c.p1 == '.' && (c.p2 == '/' || (c.p2 == '.' && c.p3 == '/')))
		c.bad = 1;
	*bad = c.bad;
	return c.hash;
}

/* Copies the canonical path of `path` (relative to `root`). Returns its length. */
static __always_inline __u32 put_canonical(struct rec_buf *b, __u32 base, __u32 off,
					   const struct path *path, const struct path *root,
					   __u32 *info, __u32 trunc_flag)
{
	struct path_buf *pb = 0;
	__u32 start = 0, pflags = 0;
	__u32 len = path_resolve(path, root, &start, &pflags, &pb);

	if (!pb || !len)
		return 0;
	if (pflags & PATH_TRUNCATED)
		*info |= trunc_flag;
	len &= LEN_MASK;
	if (bpf_probe_read_kernel(&b->raw[base + (off & OFF_MASK)], len,
				  &pb->buf[start & PATH_POS_MASK]))
		return 0;
	return len;
}

/* A dentry's name, copied for hashing (names are at most 255 bytes). */
struct name_buf {
	__u8 b[256];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct name_buf);
} name_scratch SEC(".maps");

/*
 * The hash of the last component of a canonical path: the dentry's own name, which ends it.
 * A bounded loop over a copy, not bpf_loop: this runs for every open and must be cheap.
 */
static __always_inline __u64 dentry_name_hash(struct dentry *d)
{
	__u32 zero = 0;
	struct name_buf *nb = bpf_map_lookup_elem(&name_scratch, &zero);
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);
	__u32 len = BPF_CORE_READ(d, d_name.len);
	__u64 h = WATCH_FNV_OFFSET;

	if (!nb || !len)
		return h;
	if (len > 255)
		len = 255;
	if (bpf_probe_read_kernel(nb->b, len, name))
		return h;
	for (__u32 i = 0; i < 255; i++) {
		if (i >= len)
			break;
		h = (h ^ nb->b[i]) * WATCH_FNV_PRIME;
	}
	return h;
}

/*
 * Copies a path string from user memory, made absolute: relative strings are joined to the
 * canonical path of `dirfd` (or the cwd for AT_FDCWD). An empty string names dirfd itself
 * (AT_EMPTY_PATH). Sets SHRIKE_FILE_UNRESOLVED when the result cannot be trusted for filtering,
 * RELATIVE when no base could be found. Returns the length; *hash gets the last component's.
 */
static __always_inline __u32 put_user_path(struct rec_buf *b, __u32 base, __u32 off, long dirfd,
					   const char *upath, __u32 *info, __u32 trunc_flag,
					   __u64 *hash)
{
	struct task_struct *task = current_task();
	struct path root, dir;
	struct file *f = 0;
	__u32 len = 0, room;
	char first = 0;
	long n;
	bool bad = false;

	if (!upath || bpf_probe_read_user(&first, 1, upath)) {
		*info |= SHRIKE_FILE_UNRESOLVED;
		return 0;
	}
	if (first != '/') {
		task_root(task, &root);
		if (dirfd == AT_FDCWD) {
			struct fs_struct *fs = BPF_CORE_READ(task, fs);

			bpf_core_read(&dir, sizeof(dir), &fs->pwd);
		} else {
			f = fd_file(task, dirfd);
			if (!f) {
				*info |= SHRIKE_FILE_UNRESOLVED | SHRIKE_FILE_RELATIVE;
				goto string;
			}
			bpf_core_read(&dir, sizeof(dir), &f->f_path);
		}
		len = put_canonical(b, base, off, &dir, &root, info, trunc_flag);
		if (first == 0) {
			/* AT_EMPTY_PATH: the dirfd (or cwd) itself. */
			*hash = dentry_name_hash(dir.dentry);
			return len;
		}
		if (len > 1 && len < LEN_MASK) {
			b->raw[base + ((off + len) & OFF_MASK)] = '/';
			len += 1;
		} else if (len == 1) {
			/* the base is "/": no second slash */
		} else {
			*info |= SHRIKE_FILE_UNRESOLVED;
		}
	}
string:
	len &= LEN_MASK;
	room = SHRIKE_PATH_MAX - len;
	if (room > SHRIKE_PATH_MAX)
		room = SHRIKE_PATH_MAX;
	n = bpf_probe_read_user_str(&b->raw[base + ((off + len) & OFF_MASK)], room, upath);
	if (n <= 0) {
		counter_inc(SHRIKE_CNT_READ_FAIL);
		*info |= SHRIKE_FILE_UNRESOLVED;
		return len;
	}
	if ((__u32)n >= room) {
		*info |= trunc_flag;
		counter_inc(SHRIKE_CNT_FILE_STR_TRUNCATED);
	}
	len = (len + n - 1) & LEN_MASK;
	*hash = scan_path(base + (off & OFF_MASK), base + (off & OFF_MASK) + len, &bad);
	if (bad)
		*info |= SHRIKE_FILE_UNRESOLVED;
	return len;
}

/* Copies a kernel or user string as it is (no resolution), at most SHRIKE_SMALL_STR_MAX bytes
 * (or SHRIKE_PATH_MAX - 1 when `path_sized`). */
static __always_inline __u32 put_str(struct rec_buf *b, __u32 base, __u32 off, const char *s,
				     bool user, bool path_sized)
{
	__u32 max = path_sized ? SHRIKE_PATH_MAX : SHRIKE_SMALL_STR_MAX;
	long n;

	if (!s)
		return 0;
	if (user)
		n = bpf_probe_read_user_str(&b->raw[base + (off & OFF_MASK)], max, s);
	else
		n = bpf_probe_read_kernel_str(&b->raw[base + (off & OFF_MASK)], max, s);
	if (n <= 0)
		return 0;
	return (n - 1) & LEN_MASK;
}

/*
 * A symlink's text as the caller wrote it, at raw[base] (not resolved: relative text names
 * something beside the link). Returns its length; *hash gets its last component's hash; *info
 * gets SHRIKE_FILE_SYMLINK, and SHRIKE_FILE_UNRESOLVED when a component cannot be trusted.
 */
static __always_inline __u32 put_symlink_text(struct rec_buf *b, __u32 base, const char *text,
					      bool user, __u32 *info, __u64 *hash)
{
	bool bad = false;
	__u32 len;

	*info |= SHRIKE_FILE_SYMLINK;
	len = put_str(b, base, 0, text, user, true);
	*hash = scan_path(base, base + len, &bad);
	if (bad)
		*info |= SHRIKE_FILE_UNRESOLVED;
	return len;
}

/* The canonical path of an open file into the record at `off`. */
static __always_inline __u32 put_file(struct rec_buf *b, __u32 base, struct file *f, __u32 *info,
				      __u64 *hash)
{
	struct task_struct *task = current_task();
	struct path root, fpath;
	__u32 len;

	task_root(task, &root);
	bpf_core_read(&fpath, sizeof(fpath), &f->f_path);
	len = put_canonical(b, base, 0, &fpath, &root, info, SHRIKE_FILE_PATH_TRUNCATED);
	*info |= SHRIKE_FILE_CANONICAL;
	*hash = dentry_name_hash(fpath.dentry);
	return len;
}

#endif /* SHRIKE_FILE_PATHS_H */
