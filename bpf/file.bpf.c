// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The file, privilege and kernel-integrity sensor: file_open/unlink/rename/chmod/chown/link,
 * module_load, bpf_load, ptrace, cred_change, mount/umount, namespace_change, memfd_create and
 * signal, each with the process's context and the syscall's result; file events filtered in
 * the kernel against the watch set (bpf/lib/watch.h) so only watched paths leave it.
 *
 * Two hook sets, chosen by user space at load by probing (crates/bpf/src/file.rs):
 *
 *   tracepoint  tp_btf/sys_enter + tp_btf/sys_exit (raw syscall tracepoints with BTF; 5.5+).
 *               A dispatch table indexed by syscall number returns at once for calls nobody
 *               watches, but arming them puts every syscall on the slow path (the syscall
 *               tracepoint tax, ARCHITECTURE.md). Path strings are read at entry (what the
 *               kernel is about to use) and resolved against the cwd or the dirfd; a successful
 *               open is reported with the canonical path of the file in the fd table at exit.
 *   lsm         BPF LSM hooks (path_unlink, path_rename, path_chmod, ... sb_mount, task_fix_setuid)
 *               observe the operation with the kernel's own dentries in hand, so paths are
 *               canonical (no "..", no symlinks); fexit on the __x64_sys_* entry points adds
 *               the result. Only the watched syscalls pay (BPF trampolines, 5.7+ and BPF LSM
 *               active), nothing else does.
 *
 * Signals come from tp_btf/signal_generate on both: not a syscall tracepoint (no tax), and it
 * sees kill, tkill, tgkill, rt_sigqueueinfo and pidfd_send_signal alike.
 *
 * Minimum kernel: 5.17 (bpf_loop). Tested on 6.1 and 6.12 (lsm) and 6.18 (tracepoint).
 */
#include "common.h"
#include "maps.h"
#include "emit.h"
#include "path.h"
#include "file.h"
#include "watch.h"
#include "file_rules.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
SHRIKE_ABI_ANCHOR;
struct shrike_file_anchor shrike_file_anchor SEC(".bss");

/* Set by user space before load (rodata). */
const volatile __u32 cfg_self_tgid = 0; /* the agent: its own BPF loads are not reported */

/* Not in vmlinux.h (#defines in the kernel). */
#define AT_FDCWD -100
#define AT_REMOVEDIR 0x200
#define O_ACCMODE 00000003
#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 00000100
#define O_TRUNC 00001000
#define O_TMPFILE 020200000
#define S_ISUID 04000
#define S_ISGID 02000
#define TS_COMPAT 0x0002
#define PF_KTHREAD 0x00200000
#define NSFS_MAGIC 0x6e736673
#define SI_USER 0
#define SI_KERNEL 0x80
#define SI_TIMER -2
#define CLONE_NEW_MASK 0x7e020080ULL /* NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME */
#define BPF_PROG_LOAD_CMD 5
#define SIGKILL 9
#define EPERM 1
#define PTRACE_MODE_ATTACH 0x02

/*
 * A record under construction: the fixed part at raw[0], its data right after the fixed part
 * of its type. Paths are at most SHRIKE_PATH_MAX - 1 bytes each and written at offsets below
 * DATA_HALF, so every masked write stays inside raw.
 */
#define FIXED_MAX 160
#define DATA_HALF 8192
#define OFF_MASK (DATA_HALF - 1)
#define LEN_MASK (SHRIKE_PATH_MAX - 1)
#define RAW_SIZE 16384 /* >= FIXED_MAX + DATA_HALF + SHRIKE_PATH_MAX, a power of two */

struct rec_buf {
	__u8 raw[RAW_SIZE];
	__u32 size; /* bytes of raw in use */
	__u32 _pad;
	__u64 nr; /* the syscall number it belongs to: exit checks it is its own */
};

/* syscall number -> SHRIKE_SYS_* | SHRIKE_SYS_AT_ENTER; 0: not watched (user space fills it). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SHRIKE_SYSCALL_TABLE);
	__type(key, __u32);
	__type(value, __u32);
} syscall_handlers SEC(".maps");

/* One record under construction per CPU (a per-CPU value may be up to 32 KiB). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rec_buf);
} rec_scratch SEC(".maps");

/* Records waiting for their syscall's exit, by thread id; allocated only for watched paths. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u32);
	__type(value, struct rec_buf);
} pending SEC(".maps");

/* Credentials before a setuid-family call or capset, by thread id. */
struct cred_stash {
	__u64 nr;
	__u32 lsm; /* taken by an LSM hook (else at sys_enter) */
	__u32 _pad;
	struct shrike_creds old;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct cred_stash);
} old_creds SEC(".maps");

/* LSM mode: the syscall number whose LSM hook already decided (kept in `pending`, or dropped). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} lsm_decided SEC(".maps");

/* ------------------------------------------------------------------------------------------ */
/* Small helpers. */

static __always_inline unsigned long sys_arg(struct pt_regs *regs, int n)
{
	/* regs is a BTF pointer (tp_btf, fexit, bpf_task_pt_regs): plain loads, no helper. */
	switch (n) {
	case 0:
		return regs->di;
	case 1:
		return regs->si;
	case 2:
		return regs->dx;
	case 3:
		return regs->r10;
	case 4:
		return regs->r8;
	default:
		return regs->r9;
	}
}

static __always_inline __u32 tid_of_current(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

static __always_inline struct rec_buf *scratch(void)
{
	__u32 zero = 0;
	struct rec_buf *b = bpf_map_lookup_elem(&rec_scratch, &zero);

	if (!b)
		counter_inc(SHRIKE_CNT_SCRATCH_FAIL);
	return b;
}

/* The handler entry for a syscall number; 0 when nobody watches it. */
static __always_inline __u32 handler_of(__u64 nr)
{
	__u32 key = (__u32)nr;
	__u32 *v;

	if (nr >= SHRIKE_SYSCALL_TABLE)
		return 0;
	v = bpf_map_lookup_elem(&syscall_handlers, &key);
	return v ? *v : 0;
}

static __always_inline void fill_header(struct shrike_header *h, __u16 kind, __u32 size)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct shrike_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	h->kind = kind;
	h->_pad0 = 0;
	h->size = size;
	h->ktime_ns = bpf_ktime_get_boot_ns();
	h->pid = tgid;
	h->tid = (__u32)pid_tgid;
	h->exec_id = p ? p->exec_id : 0;
}

static __always_inline void emit_raw(void *raw, __u32 size)
{
	if (size > RAW_SIZE)
		size = RAW_SIZE;
	emit_record(raw, size);
}

static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct files_struct *files = BPF_CORE_READ(task, files);
	struct fdtable *fdt = BPF_CORE_READ(files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;

	if (fd < 0 || fd >= max)
		return 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]))
		return 0;
	return f;
}

static __always_inline void task_root(struct task_struct *task, struct path *root)
{
	struct fs_struct *fs = BPF_CORE_READ(task, fs);

	bpf_core_read(root, sizeof(*root), &fs->root);
}

static __always_inline void read_creds(const struct cred *c, struct shrike_creds *out)
{
	out->uid = BPF_CORE_READ(c, uid.val);
	out->euid = BPF_CORE_READ(c, euid.val);
	out->suid = BPF_CORE_READ(c, suid.val);
	out->fsuid = BPF_CORE_READ(c, fsuid.val);
	out->gid = BPF_CORE_READ(c, gid.val);
	out->egid = BPF_CORE_READ(c, egid.val);
	out->sgid = BPF_CORE_READ(c, sgid.val);
	out->fsgid = BPF_CORE_READ(c, fsgid.val);
	/* kernel_cap_t is u32[2] before 6.3 and one u64 after: 8 bytes either way. */
	out->cap_effective = 0;
	out->cap_permitted = 0;
	bpf_core_read(&out->cap_effective, 8, &c->cap_effective);
	bpf_core_read(&out->cap_permitted, 8, &c->cap_permitted);
}

/* ------------------------------------------------------------------------------------------ */
/* Paths into a record. Every function writes at raw[base + (off & OFF_MASK)]. */

struct scan_ctx {
	__u32 start;
	__u32 end;
	__u32 bad;
	__u32 p1, p2, p3; /* the three previous bytes */
	__u64 hash;	  /* FNV-1a 64 of the bytes since the last '/' */
};

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

/* Scans raw[start, end) of the scratch record. Returns the last component's hash; *bad when
 * the path has a component the filter cannot trust lexically. */
static __always_inline __u64 scan_path(__u32 start, __u32 end, bool *bad)
{
	struct scan_ctx c = {};

	c.start = start;
	c.end = end;
	c.hash = WATCH_FNV_OFFSET;
	bpf_loop(SHRIKE_PATH_MAX, scan_step, &c, 0);
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
	struct task_struct *task = bpf_get_current_task_btf();
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

/* ------------------------------------------------------------------------------------------ */
/* The filter. */

/* Decides whether a file record leaves the kernel; counts what it sees and drops. */
static __always_inline bool file_keep(struct rec_buf *b, struct shrike_file_event *e,
				      __u32 kind_bit, __u64 hash1, __u64 hash2)
{
	struct shrike_watch_state *st;
	__u32 gen = 0;
	__u32 base = sizeof(*e);

	counter_inc(SHRIKE_CNT_FILE_SEEN);
	st = watch_current(&gen);
	if (!st)
		return true;
	if (st->pass_all & kind_bit)
		return true;
	if (kind_bit == SHRIKE_WATCH_CHMOD && st->setid_chmod && (e->mode & (S_ISUID | S_ISGID))) {
		e->info |= SHRIKE_FILE_SETID_RULE;
		return true;
	}
	if (e->info & (SHRIKE_FILE_UNRESOLVED | SHRIKE_FILE_PATH_TRUNCATED |
		       SHRIKE_FILE_NEW_PATH_TRUNCATED)) {
		counter_inc(SHRIKE_CNT_FILE_UNRESOLVED);
		return true;
	}
	if ((e->info & SHRIKE_FILE_SYMLINK) && e->path_len) {
		/* A symlink's text: relative text names something beside the link; only its name
		 * can be checked. */
		__u8 first = b->raw[base];

		if (first == '/') {
			if (watch_path(gen, st, kind_bit, 0, &b->raw[base], e->path_len, hash1))
				return true;
		} else if (watch_path(gen, st, kind_bit, 0, &b->raw[base], 0, hash1)) {
			return true;
		}
	} else if (e->path_len &&
		   watch_path(gen, st, kind_bit, e->access, &b->raw[base], e->path_len, hash1)) {
		return true;
	}
	if (e->new_path_len &&
	    watch_path(gen, st, kind_bit, e->access,
		       &b->raw[base + (e->path_len & LEN_MASK)], e->new_path_len, hash2))
		return true;
	counter_inc(SHRIKE_CNT_FILE_FILTERED);
	return false;
}

/* ------------------------------------------------------------------------------------------ */
/* Enforcement (bpf/lib/file_rules.h). */

static __always_inline bool is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == cfg_self_tgid;
}

/*
 * The deny/kill rule acting on a file operation whose record is in `b`: found by its path, its
 * new path, or in the kind's list. Sets the record's enforced_rule/_action (the rule's action;
 * callers without LSM turn it into KILL) and returns the action, 0 when no rule acts. A path the
 * filter cannot trust (unresolved, cut) finds no path rule: user space decides those.
 */
static __always_inline __u32 file_enforce(struct rec_buf *b, struct shrike_file_event *e,
					  __u32 kind, __u64 hash1, __u64 hash2)
{
	struct shrike_watch_state *st;
	__u32 gen = 0, base = sizeof(*e), act = 0, len1;
	__u16 rule = SHRIKE_NO_RULE;

	st = watch_current(&gen);
	if (!st || !(st->enforce & (1U << kind)) || is_self())
		return 0;
	if (!(e->info & (SHRIKE_FILE_UNRESOLVED | SHRIKE_FILE_PATH_TRUNCATED |
			 SHRIKE_FILE_NEW_PATH_TRUNCATED))) {
		len1 = e->path_len & LEN_MASK;
		/* A relative symlink text names something beside the link: only its name counts. */
		if ((e->info & SHRIKE_FILE_SYMLINK) && len1 && b->raw[base] != '/')
			len1 = 0;
		if (e->path_len)
			act = frule_by_path(gen, st, kind, FRULE_SIDE_PATH, e->access, &b->raw[base],
					    len1, hash1, &rule);
		if (!act && e->new_path_len)
			act = frule_by_path(gen, st, kind, FRULE_SIDE_NEW, e->access,
					    &b->raw[base + (e->path_len & LEN_MASK)],
					    e->new_path_len & LEN_MASK, hash2, &rule);
	}
	if (!act)
		act = frule_in_list(gen, kind, e->access, 0, &rule);
	if (!act)
		return 0;
	e->enforced_rule = rule;
	e->enforced_action = act;
	counter_inc(SHRIKE_CNT_FILE_ENFORCED);
	return act;
}

/* A privilege or kernel-integrity action (module, BPF or ptrace kind) a rule acts on. */
static __always_inline __u32 priv_enforce(__u32 kind, __u32 target, __u16 *rule)
{
	struct shrike_watch_state *st;
	__u32 gen = 0, act;

	st = watch_current(&gen);
	if (!st || !(st->enforce & (1U << kind)) || is_self())
		return 0;
	act = frule_in_list(gen, kind, 0, target, rule);
	if (act)
		counter_inc(SHRIKE_CNT_FILE_ENFORCED);
	return act;
}

/* ------------------------------------------------------------------------------------------ */
/* File operations whose path is a string: built at entry (tracepoint) or, when no LSM hook saw
 * the operation, at exit (lsm). */

static __always_inline __u32 kind_bit_of(__u32 h)
{
	switch (h) {
	case SHRIKE_SYS_OPEN:
	case SHRIKE_SYS_OPENAT:
	case SHRIKE_SYS_OPENAT2:
	case SHRIKE_SYS_CREAT:
		return SHRIKE_WATCH_OPEN;
	case SHRIKE_SYS_UNLINK:
	case SHRIKE_SYS_UNLINKAT:
	case SHRIKE_SYS_RMDIR:
		return SHRIKE_WATCH_UNLINK;
	case SHRIKE_SYS_RENAME:
	case SHRIKE_SYS_RENAMEAT:
	case SHRIKE_SYS_RENAMEAT2:
		return SHRIKE_WATCH_RENAME;
	case SHRIKE_SYS_CHMOD:
	case SHRIKE_SYS_FCHMOD:
	case SHRIKE_SYS_FCHMODAT:
	case SHRIKE_SYS_FCHMODAT2:
		return SHRIKE_WATCH_CHMOD;
	case SHRIKE_SYS_CHOWN:
	case SHRIKE_SYS_FCHOWN:
	case SHRIKE_SYS_LCHOWN:
	case SHRIKE_SYS_FCHOWNAT:
		return SHRIKE_WATCH_CHOWN;
	case SHRIKE_SYS_LINK:
	case SHRIKE_SYS_LINKAT:
	case SHRIKE_SYS_SYMLINK:
	case SHRIKE_SYS_SYMLINKAT:
		return SHRIKE_WATCH_LINK;
	}
	return 0;
}

/* SHRIKE_ENF_* of a SHRIKE_WATCH_* bit. */
static __always_inline __u32 enf_kind_of(__u32 kind_bit)
{
	switch (kind_bit) {
	case SHRIKE_WATCH_OPEN:
		return SHRIKE_ENF_OPEN;
	case SHRIKE_WATCH_UNLINK:
		return SHRIKE_ENF_UNLINK;
	case SHRIKE_WATCH_RENAME:
		return SHRIKE_ENF_RENAME;
	case SHRIKE_WATCH_CHMOD:
		return SHRIKE_ENF_CHMOD;
	case SHRIKE_WATCH_CHOWN:
		return SHRIKE_ENF_CHOWN;
	default:
		return SHRIKE_ENF_LINK;
	}
}

static __always_inline __u16 record_kind_of(__u32 kind_bit)
{
	switch (kind_bit) {
	case SHRIKE_WATCH_OPEN:
		return SHRIKE_REC_FILE_OPEN;
	case SHRIKE_WATCH_UNLINK:
		return SHRIKE_REC_FILE_UNLINK;
	case SHRIKE_WATCH_RENAME:
		return SHRIKE_REC_FILE_RENAME;
	case SHRIKE_WATCH_CHMOD:
		return SHRIKE_REC_FILE_CHMOD;
	case SHRIKE_WATCH_CHOWN:
		return SHRIKE_REC_FILE_CHOWN;
	default:
		return SHRIKE_REC_FILE_LINK;
	}
}

/* The per-syscall arguments of a string-path file operation, normalised. */
struct path_args {
	long dirfd1;
	const char *path1;
	long dirfd2;
	const char *path2;
	__u32 flags;
	__u32 mode;
	__u32 uid;
	__u32 gid;
	__u32 symlink;
};

static __always_inline void path_args_of(__u32 h, struct pt_regs *regs, struct path_args *a)
{
	a->dirfd1 = AT_FDCWD;
	a->dirfd2 = AT_FDCWD;
	a->path2 = 0;
	a->flags = 0;
	a->mode = 0;
	a->uid = 0xffffffff;
	a->gid = 0xffffffff;
	a->symlink = 0;
	switch (h) {
	case SHRIKE_SYS_UNLINK:
		a->path1 = (const char *)sys_arg(regs, 0);
		break;
	case SHRIKE_SYS_RMDIR:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->flags = AT_REMOVEDIR;
		break;
	case SHRIKE_SYS_UNLINKAT:
		a->dirfd1 = (int)sys_arg(regs, 0);
		a->path1 = (const char *)sys_arg(regs, 1);
		a->flags = sys_arg(regs, 2);
		break;
	case SHRIKE_SYS_RENAME:
	case SHRIKE_SYS_LINK:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->path2 = (const char *)sys_arg(regs, 1);
		break;
	case SHRIKE_SYS_RENAMEAT:
	case SHRIKE_SYS_RENAMEAT2:
	case SHRIKE_SYS_LINKAT:
		a->dirfd1 = (int)sys_arg(regs, 0);
		a->path1 = (const char *)sys_arg(regs, 1);
		a->dirfd2 = (int)sys_arg(regs, 2);
		a->path2 = (const char *)sys_arg(regs, 3);
		if (h != SHRIKE_SYS_RENAMEAT)
			a->flags = sys_arg(regs, 4);
		break;
	case SHRIKE_SYS_SYMLINK:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->path2 = (const char *)sys_arg(regs, 1);
		a->symlink = 1;
		break;
	case SHRIKE_SYS_SYMLINKAT:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->dirfd2 = (int)sys_arg(regs, 1);
		a->path2 = (const char *)sys_arg(regs, 2);
		a->symlink = 1;
		break;
	case SHRIKE_SYS_CHMOD:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->mode = sys_arg(regs, 1) & 07777;
		break;
	case SHRIKE_SYS_FCHMODAT:
	case SHRIKE_SYS_FCHMODAT2:
		a->dirfd1 = (int)sys_arg(regs, 0);
		a->path1 = (const char *)sys_arg(regs, 1);
		a->mode = sys_arg(regs, 2) & 07777;
		if (h == SHRIKE_SYS_FCHMODAT2)
			a->flags = sys_arg(regs, 3);
		break;
	case SHRIKE_SYS_CHOWN:
	case SHRIKE_SYS_LCHOWN:
		a->path1 = (const char *)sys_arg(regs, 0);
		a->uid = sys_arg(regs, 1);
		a->gid = sys_arg(regs, 2);
		break;
	case SHRIKE_SYS_FCHOWNAT:
		a->dirfd1 = (int)sys_arg(regs, 0);
		a->path1 = (const char *)sys_arg(regs, 1);
		a->uid = sys_arg(regs, 2);
		a->gid = sys_arg(regs, 3);
		a->flags = sys_arg(regs, 4);
		break;
	default:
		a->path1 = 0;
	}
}

/* Builds the record of a string-path file operation in the scratch buffer; returns whether the
 * filter keeps it. With `kill` (tracepoint mode, at sys_enter), a rule that acts on it sends
 * SIGKILL now: the operation itself still completes, the process never returns from it. */
static __always_inline bool build_path_op(struct rec_buf *b, __u32 h, struct pt_regs *regs,
					  bool kill)
{
	struct shrike_file_event *e = (struct shrike_file_event *)b->raw;
	__u32 base = sizeof(*e);
	__u32 kind_bit = kind_bit_of(h);
	struct path_args a;
	__u64 hash1 = 0, hash2 = 0;
	__u32 len1, len2 = 0;

	path_args_of(h, regs, &a);
	__builtin_memset(e, 0, sizeof(*e));
	e->syscall = h;
	e->flags = a.flags;
	e->mode = a.mode;
	e->uid = a.uid;
	e->gid = a.gid;
	if (a.symlink) {
		/* The link's text, as the caller wrote it. */
		bool bad = false;

		e->info |= SHRIKE_FILE_SYMLINK;
		len1 = put_str(b, base, 0, a.path1, true, true);
		hash1 = scan_path(base, base + len1, &bad);
		if (bad)
			e->info |= SHRIKE_FILE_UNRESOLVED;
	} else {
		len1 = put_user_path(b, base, 0, a.dirfd1, a.path1, &e->info,
				     SHRIKE_FILE_PATH_TRUNCATED, &hash1);
	}
	len1 &= LEN_MASK;
	if (a.path2)
		len2 = put_user_path(b, base, len1, a.dirfd2, a.path2, &e->info,
				     SHRIKE_FILE_NEW_PATH_TRUNCATED, &hash2);
	e->path_len = len1;
	e->new_path_len = len2 & LEN_MASK;
	b->size = base + len1 + (len2 & LEN_MASK);
	e->hdr.kind = record_kind_of(kind_bit);
	if (kill && file_enforce(b, e, enf_kind_of(kind_bit), hash1, hash2)) {
		bpf_send_signal(SIGKILL);
		e->enforced_action = SHRIKE_ACTION_KILL;
		return true;
	}
	return file_keep(b, e, kind_bit, hash1, hash2);
}

/* Completes a kept record with the result and sends it. `rec` may be the scratch or pending. */
static __always_inline void finish_file(struct rec_buf *rec, __u32 h, struct pt_regs *regs,
					long ret)
{
	struct shrike_file_event *e = (struct shrike_file_event *)rec->raw;
	struct path_args a;

	/* LSM hooks do not see the syscall's flags: take them from its arguments. */
	path_args_of(h, regs, &a);
	e->syscall = h;
	e->flags = a.flags;
	e->result = ret;
	fill_header(&e->hdr, e->hdr.kind, rec->size);
	emit_raw(rec->raw, rec->size);
}

/* Exit of a string-path operation whose record was kept at entry or by an LSM hook. */
static __always_inline bool finish_pending(__u32 h, struct pt_regs *regs, long ret)
{
	__u32 tid = tid_of_current();
	struct rec_buf *p = bpf_map_lookup_elem(&pending, &tid);
	__u64 nr = regs->orig_ax;

	if (!p)
		return false;
	if (p->nr == nr)
		finish_file(p, h, regs, ret);
	bpf_map_delete_elem(&pending, &tid);
	return true;
}

/* Exit of an open whose record an LSM hook kept (it refused the open): the result, then send. */
static __always_inline void finish_open_pending(struct pt_regs *regs, long ret)
{
	__u32 tid = tid_of_current();
	struct rec_buf *p = bpf_map_lookup_elem(&pending, &tid);

	if (!p)
		return;
	if (p->nr == regs->orig_ax) {
		struct shrike_file_event *e = (struct shrike_file_event *)p->raw;

		e->result = ret;
		fill_header(&e->hdr, SHRIKE_REC_FILE_OPEN, p->size);
		emit_raw(p->raw, p->size);
	}
	bpf_map_delete_elem(&pending, &tid);
}

static __always_inline void keep_pending(struct rec_buf *b, __u64 nr)
{
	__u32 tid = tid_of_current();

	b->nr = nr;
	if (bpf_map_update_elem(&pending, &tid, b, BPF_ANY_FLAG))
		counter_inc(SHRIKE_CNT_FILE_PENDING_FAIL);
}

/* ------------------------------------------------------------------------------------------ */
/* Opens and fd operations: built at exit, from the fd table when the call succeeded. */

static __always_inline __u32 access_of(__u32 flags)
{
	__u32 acc = 0;

	switch (flags & O_ACCMODE) {
	case 0:
		acc = SHRIKE_ACCESS_READ;
		break;
	case O_WRONLY:
		acc = SHRIKE_ACCESS_WRITE;
		break;
	case O_RDWR:
		acc = SHRIKE_ACCESS_READ | SHRIKE_ACCESS_WRITE;
		break;
	}
	if (flags & 010000000) /* O_PATH: no access */
		acc = 0;
	if (flags & (O_CREAT | O_TMPFILE))
		acc |= SHRIKE_ACCESS_CREATE;
	if (flags & O_TRUNC)
		acc |= SHRIKE_ACCESS_TRUNCATE;
	return acc;
}

/* The canonical path of an open file into the record at `off`. */
static __always_inline __u32 put_file(struct rec_buf *b, __u32 base, struct file *f, __u32 *info,
				      __u64 *hash)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct path root, fpath;
	__u32 len;

	task_root(task, &root);
	bpf_core_read(&fpath, sizeof(fpath), &f->f_path);
	len = put_canonical(b, base, 0, &fpath, &root, info, SHRIKE_FILE_PATH_TRUNCATED);
	*info |= SHRIKE_FILE_CANONICAL;
	*hash = dentry_name_hash(fpath.dentry);
	return len;
}

/* The arguments of an open syscall. */
struct open_args {
	long dirfd;
	const char *upath;
	__u64 flags;
	__u32 mode;
};

static __always_inline void open_args_of(__u32 h, struct pt_regs *regs, struct open_args *a)
{
	long dirfd = AT_FDCWD;
	const char *upath;
	__u64 flags = 0;
	__u32 mode = 0;

	switch (h) {
	case SHRIKE_SYS_OPEN:
		upath = (const char *)sys_arg(regs, 0);
		flags = sys_arg(regs, 1);
		mode = sys_arg(regs, 2);
		break;
	case SHRIKE_SYS_CREAT:
		upath = (const char *)sys_arg(regs, 0);
		flags = O_CREAT | O_WRONLY | O_TRUNC;
		mode = sys_arg(regs, 1);
		break;
	case SHRIKE_SYS_OPENAT2: {
		struct open_how how = {};

		dirfd = (int)sys_arg(regs, 0);
		upath = (const char *)sys_arg(regs, 1);
		bpf_probe_read_user(&how, sizeof(how), (void *)sys_arg(regs, 2));
		flags = how.flags;
		mode = how.mode;
		break;
	}
	default:
		dirfd = (int)sys_arg(regs, 0);
		upath = (const char *)sys_arg(regs, 1);
		flags = sys_arg(regs, 2);
		mode = sys_arg(regs, 3);
	}
	a->dirfd = dirfd;
	a->upath = upath;
	a->flags = flags;
	a->mode = mode;
}

/* The fixed part of an open's record from its arguments. */
static __always_inline void open_fill(struct shrike_file_event *e, __u32 h,
				      const struct open_args *a)
{
	__builtin_memset(e, 0, sizeof(*e));
	e->syscall = h;
	e->flags = a->flags;
	e->access = access_of(a->flags);
	e->mode = (a->flags & (O_CREAT | O_TMPFILE)) ? (a->mode & 07777) : 0;
	e->uid = 0xffffffff;
	e->gid = 0xffffffff;
	e->hdr.kind = SHRIKE_REC_FILE_OPEN;
}

/*
 * An open, at its exit. Without LSM (`lsm` false), a rule acting on a successful open kills
 * the process here: the fd exists but the process never returns to use it, so no byte of the
 * file reaches user space (a create or a truncation has happened). The path is the canonical
 * one of the file in the fd table, so a symlink or ".." does not get past the rule.
 */
static __always_inline void open_exit(__u32 h, struct pt_regs *regs, long ret, bool lsm)
{
	struct rec_buf *b = scratch();
	struct shrike_file_event *e;
	__u32 base = sizeof(*e);
	struct open_args a;
	__u64 hash = 0;
	__u32 len = 0;
	struct file *f = 0;
	bool enforced = false;

	if (!b)
		return;
	e = (struct shrike_file_event *)b->raw;
	open_args_of(h, regs, &a);
	open_fill(e, h, &a);
	if (ret >= 0)
		f = fd_file(bpf_get_current_task_btf(), ret);
	if (f)
		len = put_file(b, base, f, &e->info, &hash);
	else
		len = put_user_path(b, base, 0, a.dirfd, a.upath, &e->info,
				    SHRIKE_FILE_PATH_TRUNCATED, &hash);
	e->path_len = len & LEN_MASK;
	b->size = base + (len & LEN_MASK);
	if (!lsm && ret >= 0 && file_enforce(b, e, SHRIKE_ENF_OPEN, hash, 0)) {
		bpf_send_signal(SIGKILL);
		e->enforced_action = SHRIKE_ACTION_KILL;
		enforced = true;
	}
	if (!enforced && !file_keep(b, e, SHRIKE_WATCH_OPEN, hash, 0))
		return;
	e->result = ret;
	fill_header(&e->hdr, SHRIKE_REC_FILE_OPEN, b->size);
	emit_raw(b->raw, b->size);
}

/* fchmod / fchown: the fd's file. Without LSM, a rule acting on it kills the process here
 * (the change has been made). */
static __always_inline void fd_op_exit(__u32 h, struct pt_regs *regs, long ret, bool lsm)
{
	struct rec_buf *b = scratch();
	struct shrike_file_event *e;
	__u32 base = sizeof(*e);
	__u32 kind_bit = kind_bit_of(h);
	struct file *f;
	__u64 hash = 0;
	__u32 len = 0;

	if (!b)
		return;
	e = (struct shrike_file_event *)b->raw;
	__builtin_memset(e, 0, sizeof(*e));
	e->syscall = h;
	e->uid = 0xffffffff;
	e->gid = 0xffffffff;
	if (h == SHRIKE_SYS_FCHMOD) {
		e->mode = sys_arg(regs, 1) & 07777;
	} else {
		e->uid = sys_arg(regs, 1);
		e->gid = sys_arg(regs, 2);
	}
	f = fd_file(bpf_get_current_task_btf(), (int)sys_arg(regs, 0));
	if (f)
		len = put_file(b, base, f, &e->info, &hash);
	else
		e->info |= SHRIKE_FILE_UNRESOLVED;
	e->path_len = len & LEN_MASK;
	e->hdr.kind = record_kind_of(kind_bit);
	b->size = base + (len & LEN_MASK);
	if (!lsm && file_enforce(b, e, enf_kind_of(kind_bit), hash, 0)) {
		bpf_send_signal(SIGKILL);
		e->enforced_action = SHRIKE_ACTION_KILL;
	} else if (!file_keep(b, e, kind_bit, hash, 0)) {
		return;
	}
	e->result = ret;
	fill_header(&e->hdr, e->hdr.kind, b->size);
	emit_raw(b->raw, b->size);
}

/* ------------------------------------------------------------------------------------------ */
/* Privilege and kernel integrity: built at exit. */

static __always_inline void module_exit(__u32 h, struct pt_regs *regs, long ret)
{
	struct rec_buf *b = scratch();
	struct shrike_module_event *m;
	__u32 base = sizeof(*m);
	__u32 len = 0;

	if (!b)
		return;
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	m = (struct shrike_module_event *)b->raw;
	__builtin_memset(m, 0, sizeof(*m));
	m->syscall = h;
	m->result = ret;
	m->fd = -1;
	if (h == SHRIKE_SYS_FINIT_MODULE) {
		struct file *f;
		__u64 hash = 0;

		m->fd = (int)sys_arg(regs, 0);
		m->flags = sys_arg(regs, 2);
		f = fd_file(bpf_get_current_task_btf(), m->fd);
		if (f)
			len = put_file(b, base, f, &m->info, &hash);
	}
	m->path_len = len & LEN_MASK;
	b->size = base + (len & LEN_MASK);
	enforced_take(regs->orig_ax, &m->enforced_rule, &m->enforced_action);
	fill_header(&m->hdr, SHRIKE_REC_MODULE_LOAD, b->size);
	emit_raw(b->raw, b->size);
}

static __always_inline void bpf_exit(struct pt_regs *regs, long ret)
{
	struct shrike_bpf_event e = {};
	__u32 size = sys_arg(regs, 2);
	void *attr = (void *)sys_arg(regs, 1);

	if (sys_arg(regs, 0) != BPF_PROG_LOAD_CMD)
		return;
	if ((bpf_get_current_pid_tgid() >> 32) == cfg_self_tgid)
		return;
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	e.result = ret;
	bpf_probe_read_user(&e.prog_type, 4, attr);
	bpf_probe_read_user(&e.insn_cnt, 4, attr + 4);
	if (size >= __builtin_offsetof(union bpf_attr, prog_name) + 16)
		bpf_probe_read_user(e.prog_name, 16, attr + __builtin_offsetof(union bpf_attr, prog_name));
	e.prog_name[15] = 0;
	enforced_take(regs->orig_ax, &e.enforced_rule, &e.enforced_action);
	fill_header(&e.hdr, SHRIKE_REC_BPF_LOAD, sizeof(e));
	emit_record(&e, sizeof(e));
}

static __always_inline bool ptrace_interesting(long req)
{
	switch (req) {
	case 0:	     /* PTRACE_TRACEME */
	case 4:	     /* PTRACE_POKETEXT */
	case 5:	     /* PTRACE_POKEDATA */
	case 6:	     /* PTRACE_POKEUSER */
	case 13:     /* PTRACE_SETREGS */
	case 15:     /* PTRACE_SETFPREGS */
	case 16:     /* PTRACE_ATTACH */
	case 0x4203: /* PTRACE_SETSIGINFO */
	case 0x4205: /* PTRACE_SETREGSET */
	case 0x4206: /* PTRACE_SEIZE */
		return true;
	}
	return false;
}

/* The lineage entry of a pid the caller named, when the caller sees the initial pid namespace. */
static __always_inline __u64 exec_id_of_pid(__u32 pid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct shrike_proc *p;

	if (BPF_CORE_READ(task, thread_pid, level) != 0)
		return 0;
	p = bpf_map_lookup_elem(&procs, &pid);
	return p ? p->exec_id : 0;
}

/* The tgid of a ptrace request's target, for rules on it: the caller's parent for
 * PTRACE_TRACEME, else the pid it named when it sees the initial pid namespace (0 unknown). */
static __always_inline __u32 ptrace_target_of(long req, struct pt_regs *regs)
{
	struct task_struct *task = bpf_get_current_task_btf();

	if (req == 0)
		return BPF_CORE_READ(task, real_parent, tgid);
	if (BPF_CORE_READ(task, thread_pid, level) != 0)
		return 0;
	return (__u32)sys_arg(regs, 1);
}

/*
 * Tracepoint mode, at sys_enter: a module load, BPF program load or ptrace request a rule acts
 * on gets SIGKILL before the call runs. With the signal pending, the BPF verifier gives up
 * (-EAGAIN: no program is loaded); a module load or ptrace attach may still complete, and the
 * process dies on its way back. The exit's record says which rule acted.
 */
static __always_inline void priv_enter(__u32 h, struct pt_regs *regs, __u64 nr)
{
	__u16 rule = SHRIKE_NO_RULE;
	__u32 kind, target = 0;
	long req;

	switch (h) {
	case SHRIKE_SYS_INIT_MODULE:
	case SHRIKE_SYS_FINIT_MODULE:
		kind = SHRIKE_ENF_MODULE;
		break;
	case SHRIKE_SYS_BPF:
		if (sys_arg(regs, 0) != BPF_PROG_LOAD_CMD)
			return;
		kind = SHRIKE_ENF_BPF;
		break;
	case SHRIKE_SYS_PTRACE:
		req = sys_arg(regs, 0);
		if (!ptrace_interesting(req))
			return;
		kind = SHRIKE_ENF_PTRACE;
		target = ptrace_target_of(req, regs);
		break;
	default:
		return;
	}
	if (!priv_enforce(kind, target, &rule))
		return;
	bpf_send_signal(SIGKILL);
	enforced_keep(nr, rule, SHRIKE_ACTION_KILL);
}

static __always_inline void ptrace_exit(struct pt_regs *regs, long ret)
{
	struct shrike_ptrace_event e = {};
	long req = sys_arg(regs, 0);

	if (!ptrace_interesting(req))
		return;
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	e.result = ret;
	e.request = req;
	if (req == 0) {
		struct task_struct *task = bpf_get_current_task_btf();

		e.target_pid = BPF_CORE_READ(task, real_parent, tgid);
	} else {
		e.target_pid = sys_arg(regs, 1);
	}
	e.target_exec_id = exec_id_of_pid(e.target_pid);
	enforced_take(regs->orig_ax, &e.enforced_rule, &e.enforced_action);
	fill_header(&e.hdr, SHRIKE_REC_PTRACE, sizeof(e));
	emit_record(&e, sizeof(e));
}

static __always_inline void cred_enter(__u64 nr)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct cred_stash s = {};
	__u32 tid = tid_of_current();

	s.nr = nr;
	read_creds(BPF_CORE_READ(task, cred), &s.old);
	if (bpf_map_update_elem(&old_creds, &tid, &s, BPF_ANY_FLAG))
		counter_inc(SHRIKE_CNT_FILE_PENDING_FAIL);
}

static __always_inline bool creds_equal(const struct shrike_creds *a,
					const struct shrike_creds *b)
{
	return a->uid == b->uid && a->euid == b->euid && a->suid == b->suid &&
	       a->fsuid == b->fsuid && a->gid == b->gid && a->egid == b->egid &&
	       a->sgid == b->sgid && a->fsgid == b->fsgid && a->cap_effective == b->cap_effective &&
	       a->cap_permitted == b->cap_permitted;
}

static __always_inline void cred_exit(__u32 h, struct pt_regs *regs, long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rec_buf *b = scratch();
	struct shrike_cred_event *c;
	struct cred_stash *s;
	__u32 tid = tid_of_current();
	__u64 nr = regs->orig_ax;

	if (!b)
		return;
	c = (struct shrike_cred_event *)b->raw;
	__builtin_memset(c, 0, sizeof(*c));
	read_creds(BPF_CORE_READ(task, cred), &c->new);
	s = bpf_map_lookup_elem(&old_creds, &tid);
	if (s && s->nr == nr) {
		c->old = s->old;
		c->info = s->lsm ? SHRIKE_FILE_LSM : 0;
	} else {
		/* No hook ran before the change: it failed before any (or nothing changed). */
		c->old = c->new;
	}
	if (s)
		bpf_map_delete_elem(&old_creds, &tid);
	if (ret >= 0 && creds_equal(&c->old, &c->new))
		return; /* nothing changed: not an event */
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	c->syscall = h;
	c->result = ret;
	fill_header(&c->hdr, SHRIKE_REC_CRED_CHANGE, sizeof(*c));
	emit_raw(b->raw, sizeof(*c));
}

static __always_inline void mount_exit(__u32 h, struct pt_regs *regs, long ret)
{
	struct rec_buf *b = scratch();
	struct shrike_mount_event *m;
	__u32 base = sizeof(*m);
	__u32 off = 0;
	__u64 hash = 0;

	if (!b)
		return;
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	m = (struct shrike_mount_event *)b->raw;
	__builtin_memset(m, 0, sizeof(*m));
	m->syscall = h;
	m->result = ret;
	if (h == SHRIKE_SYS_MOUNT) {
		m->flags = sys_arg(regs, 3);
		m->source_len = put_str(b, base, 0, (const char *)sys_arg(regs, 0), true, true);
		off = m->source_len & LEN_MASK;
		m->target_len = put_user_path(b, base, off, AT_FDCWD, (const char *)sys_arg(regs, 1),
					      &m->info, SHRIKE_FILE_NEW_PATH_TRUNCATED, &hash) &
				LEN_MASK;
		off += m->target_len;
		m->fstype_len = put_str(b, base, off, (const char *)sys_arg(regs, 2), true, false);
		off += m->fstype_len & 0xff;
	} else {
		m->flags = sys_arg(regs, 1);
		m->target_len = put_user_path(b, base, 0, AT_FDCWD, (const char *)sys_arg(regs, 0),
					      &m->info, SHRIKE_FILE_NEW_PATH_TRUNCATED, &hash) &
				LEN_MASK;
		off = m->target_len;
	}
	b->size = base + (off & (DATA_HALF * 2 - 1));
	fill_header(&m->hdr, h == SHRIKE_SYS_MOUNT ? SHRIKE_REC_MOUNT : SHRIKE_REC_UMOUNT, b->size);
	emit_raw(b->raw, b->size);
}

/* Before 6.18 the type is in the namespace's operations; since, in ns_common itself. */
struct proc_ns_operations___typed {
	int type;
} __attribute__((preserve_access_index));

struct ns_common___typed {
	u32 ns_type;
} __attribute__((preserve_access_index));

/* The namespace type of an nsfs file (CLONE_NEW*), 0 when it is not one. */
static __always_inline __u64 ns_type_of_fd(long fd)
{
	struct file *f = fd_file(bpf_get_current_task_btf(), fd);
	struct proc_ns_operations___typed *ops;
	struct inode *inode;
	struct ns_common *ns;

	if (!f)
		return 0;
	inode = BPF_CORE_READ(f, f_inode);
	if (BPF_CORE_READ(inode, i_sb, s_magic) != NSFS_MAGIC)
		return 0;
	ns = BPF_CORE_READ(inode, i_private);
	if (bpf_core_field_exists(((struct ns_common___typed *)ns)->ns_type))
		return BPF_CORE_READ((struct ns_common___typed *)ns, ns_type);
	ops = (struct proc_ns_operations___typed *)BPF_CORE_READ(ns, ops);
	return (__u64)BPF_CORE_READ(ops, type);
}

static __always_inline void ns_exit(__u32 h, struct pt_regs *regs, long ret)
{
	struct shrike_ns_event e = {};

	switch (h) {
	case SHRIKE_SYS_SETNS:
		e.flags = sys_arg(regs, 1);
		e.ns_flags = e.flags ? e.flags : ns_type_of_fd((int)sys_arg(regs, 0));
		break;
	case SHRIKE_SYS_UNSHARE:
	case SHRIKE_SYS_CLONE:
		/* The child returns from clone too (ret 0): only the parent reports. */
		if (h == SHRIKE_SYS_CLONE && ret == 0)
			return;
		e.flags = sys_arg(regs, 0);
		e.ns_flags = e.flags & CLONE_NEW_MASK;
		if (!e.ns_flags)
			return;
		break;
	case SHRIKE_SYS_CLONE3:
		if (ret == 0)
			return;
		bpf_probe_read_user(&e.flags, 8, (void *)sys_arg(regs, 0));
		e.ns_flags = e.flags & CLONE_NEW_MASK;
		if (!e.ns_flags)
			return;
		break;
	}
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	e.syscall = h;
	e.result = ret;
	fill_header(&e.hdr, SHRIKE_REC_NAMESPACE, sizeof(e));
	emit_record(&e, sizeof(e));
}

static __always_inline void memfd_exit(struct pt_regs *regs, long ret)
{
	struct rec_buf *b = scratch();
	struct shrike_memfd_event *m;
	__u32 base = sizeof(*m);

	if (!b)
		return;
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	m = (struct shrike_memfd_event *)b->raw;
	__builtin_memset(m, 0, sizeof(*m));
	m->result = ret;
	m->flags = sys_arg(regs, 1);
	m->name_len = put_str(b, base, 0, (const char *)sys_arg(regs, 0), true, false) & 0xff;
	b->size = base + m->name_len;
	fill_header(&m->hdr, SHRIKE_REC_MEMFD_CREATE, b->size);
	emit_raw(b->raw, b->size);
}

/* ------------------------------------------------------------------------------------------ */
/* Dispatch. `lsm` is a constant in every caller, so each program keeps only its own branches. */

static __always_inline bool is_path_op(__u32 h)
{
	switch (h) {
	case SHRIKE_SYS_UNLINK ... SHRIKE_SYS_RENAMEAT2:
	case SHRIKE_SYS_CHMOD:
	case SHRIKE_SYS_FCHMODAT:
	case SHRIKE_SYS_FCHMODAT2:
	case SHRIKE_SYS_CHOWN:
	case SHRIKE_SYS_LCHOWN:
	case SHRIKE_SYS_FCHOWNAT:
	case SHRIKE_SYS_LINK ... SHRIKE_SYS_SYMLINKAT:
		return true;
	}
	return false;
}

static __always_inline bool is_cred_op(__u32 h)
{
	return h >= SHRIKE_SYS_SETUID && h <= SHRIKE_SYS_CAPSET;
}

/* sys_enter (tracepoint mode): records whose inputs must be read before the call runs. */
static __always_inline void on_enter(__u32 h, struct pt_regs *regs, __u64 nr)
{
	struct rec_buf *b;

	if (is_cred_op(h)) {
		cred_enter(nr);
		return;
	}
	if (!is_path_op(h)) {
		priv_enter(h, regs, nr);
		return;
	}
	b = scratch();
	if (b && build_path_op(b, h, regs, true))
		keep_pending(b, nr);
}

/* LSM mode: what the LSM hook of this syscall decided, if it ran. */
static __always_inline bool lsm_took(__u64 nr)
{
	__u32 tid = tid_of_current();
	__u64 *seen = bpf_map_lookup_elem(&lsm_decided, &tid);
	bool took = seen && *seen == nr;

	if (seen)
		bpf_map_delete_elem(&lsm_decided, &tid);
	return took;
}

static __always_inline void on_exit(__u32 h, struct pt_regs *regs, long ret, bool lsm)
{
	switch (h) {
	case SHRIKE_SYS_OPEN ... SHRIKE_SYS_CREAT:
		/* An open an LSM hook refused: its record is waiting. */
		if (lsm && lsm_took(regs->orig_ax)) {
			finish_open_pending(regs, ret);
			return;
		}
		open_exit(h, regs, ret, lsm);
		return;
	case SHRIKE_SYS_FCHMOD:
	case SHRIKE_SYS_FCHOWN:
		/* With LSM, path_chmod/path_chown built the record (and may have refused it). */
		if (lsm && lsm_took(regs->orig_ax)) {
			finish_pending(h, regs, ret);
			return;
		}
		fd_op_exit(h, regs, ret, lsm);
		return;
	case SHRIKE_SYS_INIT_MODULE:
	case SHRIKE_SYS_FINIT_MODULE:
		module_exit(h, regs, ret);
		return;
	case SHRIKE_SYS_BPF:
		bpf_exit(regs, ret);
		return;
	case SHRIKE_SYS_PTRACE:
		ptrace_exit(regs, ret);
		return;
	case SHRIKE_SYS_SETUID ... SHRIKE_SYS_CAPSET:
		cred_exit(h, regs, ret);
		return;
	case SHRIKE_SYS_MOUNT:
	case SHRIKE_SYS_UMOUNT2:
		if (lsm && lsm_took(regs->orig_ax)) {
			__u32 tid = tid_of_current();
			struct rec_buf *p = bpf_map_lookup_elem(&pending, &tid);

			if (p) {
				struct shrike_mount_event *m = (struct shrike_mount_event *)p->raw;

				m->result = ret;
				fill_header(&m->hdr, m->hdr.kind, p->size);
				emit_raw(p->raw, p->size);
				bpf_map_delete_elem(&pending, &tid);
			}
			return;
		}
		mount_exit(h, regs, ret);
		return;
	case SHRIKE_SYS_SETNS ... SHRIKE_SYS_CLONE3:
		ns_exit(h, regs, ret);
		return;
	case SHRIKE_SYS_MEMFD_CREATE:
		memfd_exit(regs, ret);
		return;
	}
	if (!is_path_op(h))
		return;
	if (!lsm) {
		finish_pending(h, regs, ret);
		return;
	}
	if (lsm_took(regs->orig_ax)) {
		finish_pending(h, regs, ret);
		return;
	}
	/* No LSM hook saw it (the call failed before reaching one): the caller's strings. */
	{
		struct rec_buf *b = scratch();

		if (b && build_path_op(b, h, regs, false))
			finish_file(b, h, regs, ret);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* Tracepoint mode. */

static __always_inline bool compat_task(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return BPF_CORE_READ(task, thread_info.status) & TS_COMPAT;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sys_enter, struct pt_regs *regs, long id)
{
	__u32 entry = handler_of(id);

	if (!(entry & SHRIKE_SYS_AT_ENTER))
		return 0;
	if (compat_task()) {
		counter_inc(SHRIKE_CNT_COMPAT_SKIPPED);
		return 0;
	}
	on_enter(entry & SHRIKE_SYS_ID_MASK, regs, id);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(sys_exit, struct pt_regs *regs, long ret)
{
	__u64 nr = regs->orig_ax;
	__u32 entry = handler_of(nr);

	if (!entry)
		return 0;
	if (compat_task())
		return 0;
	on_exit(entry & SHRIKE_SYS_ID_MASK, regs, ret, false);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* LSM mode: fexit on each syscall's entry point, and the LSM hooks that see the objects. */

#define FEXIT(name, id)                                                                     \
	SEC("fexit/__x64_sys_" #name)                                                       \
	int BPF_PROG(fx_##name, struct pt_regs *regs, long ret)                             \
	{                                                                                   \
		if (handler_of(regs->orig_ax))                               \
			on_exit(id, regs, ret, true);                                       \
		return 0;                                                                   \
	}

FEXIT(open, SHRIKE_SYS_OPEN)
FEXIT(openat, SHRIKE_SYS_OPENAT)
FEXIT(openat2, SHRIKE_SYS_OPENAT2)
FEXIT(creat, SHRIKE_SYS_CREAT)
FEXIT(unlink, SHRIKE_SYS_UNLINK)
FEXIT(unlinkat, SHRIKE_SYS_UNLINKAT)
FEXIT(rmdir, SHRIKE_SYS_RMDIR)
FEXIT(rename, SHRIKE_SYS_RENAME)
FEXIT(renameat, SHRIKE_SYS_RENAMEAT)
FEXIT(renameat2, SHRIKE_SYS_RENAMEAT2)
FEXIT(chmod, SHRIKE_SYS_CHMOD)
FEXIT(fchmod, SHRIKE_SYS_FCHMOD)
FEXIT(fchmodat, SHRIKE_SYS_FCHMODAT)
FEXIT(fchmodat2, SHRIKE_SYS_FCHMODAT2)
FEXIT(chown, SHRIKE_SYS_CHOWN)
FEXIT(fchown, SHRIKE_SYS_FCHOWN)
FEXIT(lchown, SHRIKE_SYS_LCHOWN)
FEXIT(fchownat, SHRIKE_SYS_FCHOWNAT)
FEXIT(link, SHRIKE_SYS_LINK)
FEXIT(linkat, SHRIKE_SYS_LINKAT)
FEXIT(symlink, SHRIKE_SYS_SYMLINK)
FEXIT(symlinkat, SHRIKE_SYS_SYMLINKAT)
FEXIT(init_module, SHRIKE_SYS_INIT_MODULE)
FEXIT(finit_module, SHRIKE_SYS_FINIT_MODULE)
FEXIT(bpf, SHRIKE_SYS_BPF)
FEXIT(ptrace, SHRIKE_SYS_PTRACE)
FEXIT(setuid, SHRIKE_SYS_SETUID)
FEXIT(setreuid, SHRIKE_SYS_SETREUID)
FEXIT(setresuid, SHRIKE_SYS_SETRESUID)
FEXIT(setgid, SHRIKE_SYS_SETGID)
FEXIT(setregid, SHRIKE_SYS_SETREGID)
FEXIT(setresgid, SHRIKE_SYS_SETRESGID)
FEXIT(setfsuid, SHRIKE_SYS_SETFSUID)
FEXIT(setfsgid, SHRIKE_SYS_SETFSGID)
FEXIT(capset, SHRIKE_SYS_CAPSET)
FEXIT(mount, SHRIKE_SYS_MOUNT)
FEXIT(umount, SHRIKE_SYS_UMOUNT2)
FEXIT(setns, SHRIKE_SYS_SETNS)
FEXIT(unshare, SHRIKE_SYS_UNSHARE)
FEXIT(clone, SHRIKE_SYS_CLONE)
FEXIT(clone3, SHRIKE_SYS_CLONE3)
FEXIT(memfd_create, SHRIKE_SYS_MEMFD_CREATE)

/* The syscall an LSM hook runs in, when a watched one (io_uring workers and other kernel paths
 * have none and are not reported). */
static __always_inline __u64 lsm_syscall(__u32 *handler)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(task);
	__u64 nr = regs->orig_ax;

	*handler = handler_of(nr) & SHRIKE_SYS_ID_MASK;
	return nr;
}

static __always_inline void lsm_decide(__u64 nr, struct rec_buf *b, bool keep)
{
	__u32 tid = tid_of_current();

	bpf_map_update_elem(&lsm_decided, &tid, &nr, BPF_ANY_FLAG);
	if (keep)
		keep_pending(b, nr);
}

/*
 * A refused operation the syscall exits will not see (an io_uring worker, a kernel path): its
 * record goes out now, with the refusal as its result.
 */
static __always_inline void lsm_emit_refused(struct rec_buf *b, struct shrike_file_event *e)
{
	e->result = -EPERM;
	fill_header(&e->hdr, e->hdr.kind, b->size);
	emit_raw(b->raw, b->size);
}

/* What an LSM hook returns for a rule's action: EPERM, and a kill rule's SIGKILL too. */
static __always_inline int lsm_refuse(__u32 act)
{
	if (act == SHRIKE_ACTION_KILL)
		bpf_send_signal(SIGKILL);
	return -EPERM;
}

/*
 * A file operation on `d` in `dir`'s mount (and, for two-path operations, on `d2`). A deny/kill
 * rule acting on it makes the hook return -EPERM (the operation does not happen); the record
 * waits for the syscall's exit, or goes out now when there is no watched syscall around it.
 */
static __always_inline int lsm_file_op(__u32 kind_bit, struct vfsmount *mnt, struct dentry *d,
				       struct vfsmount *mnt2, struct dentry *d2, const char *text,
				       __u32 mode, __u32 uid, __u32 gid)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rec_buf *b;
	struct shrike_file_event *e;
	__u32 base = sizeof(*e);
	__u32 h, len1 = 0, len2 = 0, gen = 0, act;
	struct path root, p;
	__u64 nr = lsm_syscall(&h), hash1 = 0, hash2 = 0;
	bool in_syscall = h && kind_bit_of(h) == kind_bit;

	if (!in_syscall) {
		/* Not reported outside its syscalls; enforced everywhere. */
		struct shrike_watch_state *st = watch_current(&gen);

		if (!st || !(st->enforce & kind_bit))
			return 0;
	}
	b = scratch();
	if (!b)
		return 0;
	e = (struct shrike_file_event *)b->raw;
	__builtin_memset(e, 0, sizeof(*e));
	e->info = SHRIKE_FILE_LSM;
	e->mode = mode;
	e->uid = uid;
	e->gid = gid;
	task_root(task, &root);
	if (text) {
		bool bad = false;

		e->info |= SHRIKE_FILE_SYMLINK;
		len1 = put_str(b, base, 0, text, false, true);
		hash1 = scan_path(base, base + len1, &bad);
		if (bad)
			e->info |= SHRIKE_FILE_UNRESOLVED;
	} else {
		p.mnt = mnt;
		p.dentry = d;
		len1 = put_canonical(b, base, 0, &p, &root, &e->info, SHRIKE_FILE_PATH_TRUNCATED);
		e->info |= SHRIKE_FILE_CANONICAL;
		hash1 = dentry_name_hash(d);
	}
	len1 &= LEN_MASK;
	if (d2) {
		p.mnt = mnt2;
		p.dentry = d2;
		len2 = put_canonical(b, base, len1, &p, &root, &e->info,
				     SHRIKE_FILE_NEW_PATH_TRUNCATED) &
		       LEN_MASK;
		e->info |= SHRIKE_FILE_NEW_CANONICAL;
		hash2 = dentry_name_hash(d2);
	}
	e->path_len = len1;
	e->new_path_len = len2;
	e->hdr.kind = record_kind_of(kind_bit);
	b->size = base + len1 + len2;
	act = file_enforce(b, e, enf_kind_of(kind_bit), hash1, hash2);
	if (in_syscall)
		lsm_decide(nr, b, act || file_keep(b, e, kind_bit, hash1, hash2));
	else if (act)
		lsm_emit_refused(b, e);
	return act ? lsm_refuse(act) : 0;
}

/*
 * An open (file_open, for every open of an existing file) or a create (path_mknod: open with
 * O_CREAT of a new file, mknod) that a rule refuses: EPERM before any byte is read, before
 * O_TRUNC truncates, before a new file exists. Costs two map lookups per open when no open
 * rule is loaded. `fpath` is the file (or the new name); `fflags` its open flags when there is
 * no open syscall around it.
 */
static __always_inline int lsm_open(const struct path *fpath, __u32 fflags, bool create)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct shrike_watch_state *st;
	struct shrike_file_event *e;
	struct rec_buf *b;
	struct path root;
	struct open_args a;
	__u32 base = sizeof(*e), gen = 0, h, len, act;
	__u64 nr, hash;
	bool in_syscall;

	st = watch_current(&gen);
	if (!st || !(st->enforce & SHRIKE_WATCH_OPEN) || is_self())
		return 0;
	b = scratch();
	if (!b)
		return 0;
	e = (struct shrike_file_event *)b->raw;
	nr = lsm_syscall(&h);
	in_syscall = kind_bit_of(h) == SHRIKE_WATCH_OPEN;
	if (in_syscall) {
		open_args_of(h, (struct pt_regs *)bpf_task_pt_regs(task), &a);
	} else {
		a.flags = fflags;
		a.mode = 0;
	}
	open_fill(e, in_syscall ? h : 0, &a);
	if (create)
		e->access |= SHRIKE_ACCESS_CREATE;
	e->info = SHRIKE_FILE_LSM | SHRIKE_FILE_CANONICAL;
	task_root(task, &root);
	len = put_canonical(b, base, 0, fpath, &root, &e->info, SHRIKE_FILE_PATH_TRUNCATED) &
	      LEN_MASK;
	hash = dentry_name_hash(fpath->dentry);
	e->path_len = len;
	b->size = base + len;
	act = file_enforce(b, e, SHRIKE_ENF_OPEN, hash, 0);
	if (!act)
		return 0;
	if (in_syscall)
		lsm_decide(nr, b, true);
	else
		lsm_emit_refused(b, e);
	return lsm_refuse(act);
}

SEC("lsm/file_open")
int BPF_PROG(lsm_file_open, struct file *file)
{
	struct path fpath;

	bpf_core_read(&fpath, sizeof(fpath), &file->f_path);
	return lsm_open(&fpath, BPF_CORE_READ(file, f_flags), false);
}

SEC("lsm/path_mknod")
int BPF_PROG(lsm_path_mknod, const struct path *dir, struct dentry *dentry, umode_t mode,
	     unsigned int dev)
{
	struct path fpath;

	fpath.mnt = BPF_CORE_READ(dir, mnt);
	fpath.dentry = dentry;
	return lsm_open(&fpath, O_CREAT, true);
}

SEC("lsm/path_unlink")
int BPF_PROG(lsm_path_unlink, const struct path *dir, struct dentry *dentry)
{
	return lsm_file_op(SHRIKE_WATCH_UNLINK, BPF_CORE_READ(dir, mnt), dentry, 0, 0, 0, 0,
			   0xffffffff, 0xffffffff);
}

SEC("lsm/path_rmdir")
int BPF_PROG(lsm_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	return lsm_file_op(SHRIKE_WATCH_UNLINK, BPF_CORE_READ(dir, mnt), dentry, 0, 0, 0, 0,
			   0xffffffff, 0xffffffff);
}

SEC("lsm/path_rename")
int BPF_PROG(lsm_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry)
{
	return lsm_file_op(SHRIKE_WATCH_RENAME, BPF_CORE_READ(old_dir, mnt), old_dentry,
			   BPF_CORE_READ(new_dir, mnt), new_dentry, 0, 0, 0xffffffff, 0xffffffff);
}

SEC("lsm/path_chmod")
int BPF_PROG(lsm_path_chmod, const struct path *path, umode_t mode)
{
	return lsm_file_op(SHRIKE_WATCH_CHMOD, BPF_CORE_READ(path, mnt),
			   BPF_CORE_READ(path, dentry), 0, 0, 0, mode & 07777, 0xffffffff,
			   0xffffffff);
}

SEC("lsm/path_chown")
int BPF_PROG(lsm_path_chown, const struct path *path, __u32 uid, __u32 gid)
{
	/* kuid_t and kgid_t are one-member structs, passed as the integer. */
	return lsm_file_op(SHRIKE_WATCH_CHOWN, BPF_CORE_READ(path, mnt),
			   BPF_CORE_READ(path, dentry), 0, 0, 0, 0, uid, gid);
}

SEC("lsm/path_link")
int BPF_PROG(lsm_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	struct vfsmount *mnt = BPF_CORE_READ(new_dir, mnt);

	return lsm_file_op(SHRIKE_WATCH_LINK, mnt, old_dentry, mnt, new_dentry, 0, 0, 0xffffffff,
			   0xffffffff);
}

SEC("lsm/path_symlink")
int BPF_PROG(lsm_path_symlink, const struct path *dir, struct dentry *dentry, const char *old_name)
{
	return lsm_file_op(SHRIKE_WATCH_LINK, 0, 0, BPF_CORE_READ(dir, mnt), dentry, old_name, 0,
			   0xffffffff, 0xffffffff);
}

/* mount and umount2: the whole record, the target canonical. */
static __always_inline int lsm_mount(__u16 kind, const char *dev_name, const struct path *target,
				     const char *type, __u64 flags)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct rec_buf *b;
	struct shrike_mount_event *m;
	__u32 base = sizeof(*m);
	__u32 h, off = 0;
	struct path root;
	__u64 nr = lsm_syscall(&h);

	if (h != SHRIKE_SYS_MOUNT && h != SHRIKE_SYS_UMOUNT2)
		return 0;
	b = scratch();
	if (!b)
		return 0;
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	m = (struct shrike_mount_event *)b->raw;
	__builtin_memset(m, 0, sizeof(*m));
	m->syscall = h;
	m->flags = flags;
	m->info = SHRIKE_FILE_LSM | SHRIKE_FILE_NEW_CANONICAL;
	task_root(task, &root);
	m->source_len = put_str(b, base, 0, dev_name, false, true);
	off = m->source_len & LEN_MASK;
	m->target_len = put_canonical(b, base, off, target, &root, &m->info,
				      SHRIKE_FILE_NEW_PATH_TRUNCATED) &
			LEN_MASK;
	off += m->target_len;
	m->fstype_len = put_str(b, base, off, type, false, false);
	off += m->fstype_len & 0xff;
	m->hdr.kind = kind;
	b->size = base + (off & (DATA_HALF * 2 - 1));
	lsm_decide(nr, b, true);
	return 0;
}

SEC("lsm/sb_mount")
int BPF_PROG(lsm_sb_mount, const char *dev_name, const struct path *path, const char *type,
	     unsigned long flags, void *data)
{
	return lsm_mount(SHRIKE_REC_MOUNT, dev_name, path, type, flags);
}

SEC("lsm/sb_umount")
int BPF_PROG(lsm_sb_umount, struct vfsmount *mnt, int flags)
{
	struct path target;

	target.mnt = mnt;
	target.dentry = BPF_CORE_READ(mnt, mnt_root);
	return lsm_mount(SHRIKE_REC_UMOUNT, 0, &target, 0, flags);
}

/* Credentials before the change (the failure paths return before these hooks: unchanged). */
static __always_inline int lsm_old_creds(const struct cred *old)
{
	struct cred_stash s = {};
	__u32 h, tid = tid_of_current();

	s.nr = lsm_syscall(&h);
	if (!is_cred_op(h))
		return 0;
	s.lsm = 1;
	read_creds(old, &s.old);
	if (bpf_map_update_elem(&old_creds, &tid, &s, BPF_ANY_FLAG))
		counter_inc(SHRIKE_CNT_FILE_PENDING_FAIL);
	return 0;
}

SEC("lsm/task_fix_setuid")
int BPF_PROG(lsm_task_fix_setuid, struct cred *new, const struct cred *old, int flags)
{
	return lsm_old_creds(old);
}

SEC("lsm/task_fix_setgid")
int BPF_PROG(lsm_task_fix_setgid, struct cred *new, const struct cred *old, int flags)
{
	return lsm_old_creds(old);
}

SEC("lsm/capset")
int BPF_PROG(lsm_capset, struct cred *new, const struct cred *old)
{
	return lsm_old_creds(old);
}

/*
 * Module loads, BPF program loads and ptrace attaches a rule refuses: EPERM before the module
 * is read, before the verifier runs, before the tracer is attached. The record is built at the
 * syscall's exit (fexit), which takes the rule from the stash.
 */
static __always_inline int lsm_priv(__u32 kind, __u32 target)
{
	__u16 rule = SHRIKE_NO_RULE;
	__u32 h, act;
	__u64 nr = lsm_syscall(&h);

	act = priv_enforce(kind, target, &rule);
	if (!act)
		return 0;
	/* Kept for the record of the syscall's exit (a kernel path without one has no record). */
	enforced_keep(nr, rule, act);
	return lsm_refuse(act);
}

SEC("lsm/kernel_read_file")
int BPF_PROG(lsm_kernel_read_file, struct file *file, enum kernel_read_file_id id, bool contents)
{
	if (id != bpf_core_enum_value(enum kernel_read_file_id, READING_MODULE))
		return 0;
	return lsm_priv(SHRIKE_ENF_MODULE, 0);
}

SEC("lsm/kernel_load_data")
int BPF_PROG(lsm_kernel_load_data, enum kernel_load_data_id id, bool contents)
{
	if (id != bpf_core_enum_value(enum kernel_load_data_id, LOADING_MODULE))
		return 0;
	return lsm_priv(SHRIKE_ENF_MODULE, 0);
}

SEC("lsm/bpf")
int BPF_PROG(lsm_bpf, int cmd, union bpf_attr *attr, unsigned int size)
{
	if (cmd != BPF_PROG_LOAD_CMD)
		return 0;
	return lsm_priv(SHRIKE_ENF_BPF, 0);
}

/* Attaching (PTRACE_ATTACH, PTRACE_SEIZE) checks PTRACE_MODE_ATTACH; /proc reads and other
 * checks outside the ptrace syscall are not ptrace events and are left alone. */
SEC("lsm/ptrace_access_check")
int BPF_PROG(lsm_ptrace_access_check, struct task_struct *child, unsigned int mode)
{
	__u32 h;

	lsm_syscall(&h);
	if (h != SHRIKE_SYS_PTRACE || !(mode & PTRACE_MODE_ATTACH))
		return 0;
	return lsm_priv(SHRIKE_ENF_PTRACE, BPF_CORE_READ(child, tgid));
}

SEC("lsm/ptrace_traceme")
int BPF_PROG(lsm_ptrace_traceme, struct task_struct *parent)
{
	return lsm_priv(SHRIKE_ENF_PTRACE, BPF_CORE_READ(parent, tgid));
}

/* ------------------------------------------------------------------------------------------ */
/* Signals, on both hook sets. */

SEC("tp_btf/signal_generate")
int BPF_PROG(on_signal, int sig, struct kernel_siginfo *info, struct task_struct *task, int group,
	     int result)
{
	struct task_struct *cur = bpf_get_current_task_btf();
	struct shrike_signal_event e = {};
	__u32 sender = bpf_get_current_pid_tgid() >> 32;
	__u32 target = BPF_CORE_READ(task, tgid);
	int code;

	if (target == sender || (BPF_CORE_READ(cur, flags) & PF_KTHREAD))
		return 0;
	/* SEND_SIG_NOINFO (0) is a kill() by a process; SEND_SIG_PRIV (1) is the kernel. */
	if ((unsigned long)info == 0)
		code = SI_USER;
	else if ((unsigned long)info == 1)
		return 0;
	else
		code = BPF_CORE_READ(info, si_code);
	/* Positive codes and SI_TIMER are the kernel's own signals. */
	if (code > 0 || code == SI_TIMER)
		return 0;
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	e.signal = sig;
	e.target_pid = target;
	e.target_tid = BPF_CORE_READ(task, pid);
	e.si_code = code;
	e.delivery = result;
	{
		/* task->tgid is the global id: the lineage map's key. */
		struct shrike_proc *p = bpf_map_lookup_elem(&procs, &target);

		e.target_exec_id = p ? p->exec_id : 0;
	}
	fill_header(&e.hdr, SHRIKE_REC_SIGNAL, sizeof(e));
	emit_record(&e, sizeof(e));
	return 0;
}
