/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The file family's record under construction and the syscall it belongs to (bpf/file.bpf.c):
 * the per-CPU scratch record, the records waiting for their syscall's exit (`pending`), the
 * dispatch table user space fills (`syscall_handlers`, crates/bpf/src/file/load.rs), and the
 * small helpers every hook uses: syscall arguments, the record header, the fd table.
 */
#ifndef SHRIKE_FILE_RECORD_H
#define SHRIKE_FILE_RECORD_H

#include "common.h"
#include "maps.h"
#include "emit.h"
#include "file.h"

/* Set by user space before load (rodata). */
const volatile __u32 cfg_self_tgid = 0; /* the agent: its own BPF loads are not reported */
/* LSM hook set: the SHRIKE_WATCH_* kinds whose LSM hook the kernel refused (5.10 takes no struct
 * argument, kuid_t in path_chown). Their calls are seen at fexit, where a rule acting on them
 * kills, as the fentry and tracepoint sets do. */
const volatile __u32 cfg_lsm_unhooked = 0;

/* Not in vmlinux.h (#defines in the kernel). */
#define AT_FDCWD -100
#define SIGKILL 9
#define EPERM 1

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

/* The legacy build's copy of the registers (see syscall_regs); unused by the main build. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pt_regs);
} regs_scratch SEC(".maps");

static __always_inline struct pt_regs *syscall_regs(void)
{
#ifdef SHRIKE_LEGACY
	/* No bpf_task_pt_regs before 5.15: a copy, in this CPU's regs_scratch, of the saved user
	 * registers at the top of the task's kernel stack (task_user_regs). */
	__u32 zero = 0;
	struct pt_regs *copy = bpf_map_lookup_elem(&regs_scratch, &zero);

	if (copy && bpf_probe_read_kernel(copy, sizeof(*copy), task_user_regs(current_task())))
		copy = NULL;
	return copy;
#else
	return (struct pt_regs *)bpf_task_pt_regs(current_task());
#endif
}

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

/* The start of every record of the family but the signal's: its header, then the result. */
struct rec_head {
	struct shrike_header hdr;
	__s64 result;
};

_Static_assert(__builtin_offsetof(struct shrike_file_event, result) ==
		       __builtin_offsetof(struct rec_head, result) &&
		       __builtin_offsetof(struct shrike_module_event, result) ==
			       __builtin_offsetof(struct rec_head, result) &&
		       __builtin_offsetof(struct shrike_mount_event, result) ==
			       __builtin_offsetof(struct rec_head, result),
	       "records kept in `pending` start with struct rec_head");

/* Sends the record in `b` (b->size bytes, its header at raw[0]) as a record of `kind`. */
static __always_inline void send_rec(struct rec_buf *b, __u16 kind)
{
	fill_header((struct shrike_header *)b->raw, kind, b->size);
	emit_raw(b->raw, b->size);
}

/* Completes the record in `b` with its syscall's result and sends it as the kind it has. */
static __always_inline void send_result(struct rec_buf *b, long ret)
{
	struct rec_head *r = (struct rec_head *)b->raw;

	r->result = ret;
	send_rec(b, r->hdr.kind);
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

/* The agent itself: its own operations are neither enforced nor (BPF loads) reported. */
static __always_inline bool is_self(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == cfg_self_tgid;
}

static __always_inline void keep_pending(struct rec_buf *b, __u64 nr)
{
	__u32 tid = tid_of_current();

	b->nr = nr;
	if (bpf_map_update_elem(&pending, &tid, b, BPF_ANY_FLAG))
		counter_inc(SHRIKE_CNT_FILE_PENDING_FAIL);
}

#endif /* SHRIKE_FILE_RECORD_H */
