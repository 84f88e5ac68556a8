// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The process lifecycle sensor: exec, fork and exit of every process on the machine, and the
 * lineage map (procs) that gives every later sensor and in-kernel rule an exec_id and its
 * parent.
 *
 * Hooks: tp_btf/sched_process_exec, tp_btf/sched_process_fork, tp_btf/sched_process_exit
 * (kernel 5.5+ for tp_btf; bpf_loop needs 5.17; tested on 6.1, 6.12, 6.18). These are sched
 * tracepoints, not syscall tracepoints: arming them adds no cost to other system calls, and
 * tp_btf needs no tracefs and no BPF trampoline, so they work where fentry/LSM are refused.
 *
 * sched_process_exec fires after the new image is committed (credentials, comm and mm are the
 * new ones) and before it runs a single instruction, so argv is read from the new mm.
 */
#include "common.h"
#include "maps.h"
#include "emit.h"
#include "lineage.h"
#include "path.h"
#include "task.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
SHRIKE_ABI_ANCHOR;

/* Set by user space before load (rodata). */
const volatile __u32 cfg_args_max = SHRIKE_ARGS_MAX; /* <= SHRIKE_ARGS_MAX */
const volatile __u32 cfg_env_max = SHRIKE_ENV_MAX;   /* 0 turns environment capture off */

/* The data area: pieces are written at offsets below DATA_HALF, each at most DATA_HALF long. */
#define DATA_HALF 65536
#define DATA_MASK (DATA_HALF - 1)

struct exec_scratch {
	struct shrike_exec rec;
	__u8 data[DATA_HALF * 2];
};

/* One exec record under construction per CPU; an ARRAY indexed by CPU because a per-CPU
 * array value is limited to 32 KiB. User space sets max_entries to the number of CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, struct exec_scratch);
} exec_scratch SEC(".maps");

/* Copies a resolved path into the record at *off; returns its length. */
static __always_inline __u16 put_path(struct exec_scratch *s, __u32 *off,
				      const struct path *path, const struct path *root,
				      __u32 *path_flags)
{
	struct path_buf *pb = 0;
	__u32 start = 0;
	__u32 len = path_resolve(path, root, &start, path_flags, &pb);

	if (!pb || !len)
		return 0;
	len &= (SHRIKE_PATH_MAX - 1);
	if (bpf_probe_read_kernel(&s->data[*off & DATA_MASK], len, &pb->buf[start & PATH_POS_MASK]))
		return 0;
	*off += len;
	return len;
}

/* Copies a kernel string (at most SHRIKE_PATH_MAX - 1 bytes) into the record at *off. */
static __always_inline __u16 put_kstr(struct exec_scratch *s, __u32 *off, const char *str,
				      bool *truncated)
{
	long n;

	if (!str)
		return 0;
	n = bpf_probe_read_kernel_str(&s->data[*off & DATA_MASK], SHRIKE_PATH_MAX, str);
	if (n <= 0) {
		counter_inc(SHRIKE_CNT_READ_FAIL);
		return 0;
	}
	n -= 1; /* the NUL is not part of the string; the next piece overwrites it */
	if (n >= SHRIKE_PATH_MAX - 1)
		*truncated = true;
	*off += n & (SHRIKE_PATH_MAX - 1);
	return n & (SHRIKE_PATH_MAX - 1);
}

/* Copies [start, end) of the new image's user memory (argv or environment), at most max. */
static __always_inline __u32 put_user_block(struct exec_scratch *s, __u32 *off,
					    unsigned long start, unsigned long end, __u32 max,
					    __u32 *total, bool *truncated, bool *fault)
{
	__u64 len = end > start ? end - start : 0;

	*total = len > 0xffffffff ? 0xffffffff : len;
	if (len > max) {
		len = max;
		*truncated = true;
	}
	if (len > DATA_HALF - 1)
		len = DATA_HALF - 1;
	if (!len)
		return 0;
	if (bpf_probe_read_user(&s->data[*off & DATA_MASK], len & DATA_MASK, (void *)start)) {
		counter_inc(SHRIKE_CNT_READ_FAIL);
		*fault = true;
		return 0;
	}
	*off += len & DATA_MASK;
	return len & DATA_MASK;
}

/* A memfd's dentry is named "memfd:<name>" and has no parent directory. */
static __always_inline bool is_memfd_dentry(struct dentry *d)
{
	char prefix[6] = {};
	const unsigned char *name = BPF_CORE_READ(d, d_name.name);

	if (bpf_probe_read_kernel(prefix, sizeof(prefix), name))
		return false;
	return prefix[0] == 'm' && prefix[1] == 'e' && prefix[2] == 'm' && prefix[3] == 'f' &&
	       prefix[4] == 'd' && prefix[5] == ':';
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct exec_scratch *s = bpf_map_lookup_elem(&exec_scratch, &cpu);
	struct shrike_exec *e;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct shrike_proc *prev, next = {};
	struct file *file;
	struct dentry *dentry;
	struct fs_struct *fs;
	struct mm_struct *mm;
	struct path root, pwd;
	__u32 off = 0, path_flags = 0, total = 0;
	bool trunc = false, fault = false;
	const char *filename, *interp;
	__u64 size;

	counter_inc(SHRIKE_CNT_EXEC_SEEN);
	if (!s) {
		counter_inc(SHRIKE_CNT_SCRATCH_FAIL);
		return 0;
	}
	e = &s->rec;
	e->hdr.kind = SHRIKE_REC_PROCESS_EXEC;
	e->hdr._pad0 = 0;
	e->hdr.ktime_ns = bpf_ktime_get_boot_ns();
	e->hdr.pid = tgid;
	e->hdr.tid = (__u32)pid_tgid;
	e->flags = 0;

	/* Lineage: a forked clone's parent is the image that forked it; an image replaced by
	 * exec without a fork is the parent of the image that replaces it. */
	next.exec_id = exec_id_new();
	next.start_boottime_ns = task_start_boottime(task);
	prev = proc_lookup(tgid);
	if (prev) {
		if (prev->flags & SHRIKE_PROC_CLONE) {
			next.parent_exec_id = prev->parent_exec_id;
		} else {
			next.parent_exec_id = prev->exec_id;
			e->flags |= SHRIKE_EXEC_PARENT_IS_PREV;
		}
	} else {
		struct shrike_proc *parent;
		__u32 ppid = BPF_CORE_READ(task, real_parent, tgid);

		counter_inc(SHRIKE_CNT_LINEAGE_MISS);
		e->flags |= SHRIKE_EXEC_LINEAGE_UNKNOWN;
		parent = proc_lookup(ppid);
		next.parent_exec_id = parent ? parent->exec_id : 0;
	}
	proc_store(tgid, &next);

	e->hdr.exec_id = next.exec_id;
	e->parent_exec_id = next.parent_exec_id;
	e->start_boottime_ns = next.start_boottime_ns;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = BPF_CORE_READ(task, cred, uid.val);
	e->euid = BPF_CORE_READ(task, cred, euid.val);
	e->gid = BPF_CORE_READ(task, cred, gid.val);
	e->egid = BPF_CORE_READ(task, cred, egid.val);
	e->loginuid = task_loginuid(task);
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	fs = BPF_CORE_READ(task, fs);
	bpf_core_read(&root, sizeof(root), &fs->root);
	bpf_core_read(&pwd, sizeof(pwd), &fs->pwd);

	/* The executable the kernel really runs: for a script, its interpreter. */
	file = BPF_CORE_READ(bprm, file);
	e->binary_len = put_path(s, &off, &file->f_path, &root, &path_flags);
	if (path_flags & PATH_TRUNCATED)
		e->flags |= SHRIKE_EXEC_BINARY_TRUNCATED;
	dentry = BPF_CORE_READ(file, f_path.dentry);
	if ((path_flags & PATH_DISCONNECTED) && is_memfd_dentry(dentry))
		e->flags |= SHRIKE_EXEC_MEMFD;
	if (BPF_CORE_READ(dentry, d_inode, i_nlink) == 0)
		e->flags |= SHRIKE_EXEC_DELETED;

	/* What the caller asked to execute, and the interpreter a #! line named. */
	filename = BPF_CORE_READ(bprm, filename);
	interp = BPF_CORE_READ(bprm, interp);
	e->filename_len = put_kstr(s, &off, filename, &trunc);
	if (interp != filename) {
		e->flags |= SHRIKE_EXEC_SCRIPT;
		e->interp_len = put_kstr(s, &off, interp, &trunc);
	} else {
		e->interp_len = 0;
	}
	if (trunc)
		e->flags |= SHRIKE_EXEC_FILENAME_TRUNCATED;

	path_flags = 0;
	e->cwd_len = put_path(s, &off, &pwd, &root, &path_flags);
	if (path_flags & PATH_TRUNCATED)
		e->flags |= SHRIKE_EXEC_CWD_TRUNCATED;

	/* argv and the environment, from the new image's stack, already in place. */
	mm = BPF_CORE_READ(task, mm);
	trunc = false;
	e->args_len = put_user_block(s, &off, BPF_CORE_READ(mm, arg_start),
				     BPF_CORE_READ(mm, arg_end), cfg_args_max, &total, &trunc,
				     &fault);
	e->args_total = total;
	if (trunc) {
		e->flags |= SHRIKE_EXEC_ARGS_TRUNCATED;
		counter_inc(SHRIKE_CNT_ARGS_TRUNCATED);
	}
	if (fault)
		e->flags |= SHRIKE_EXEC_ARGS_FAULT;
	e->env_len = 0;
	if (cfg_env_max) {
		trunc = false;
		fault = false;
		e->env_len = put_user_block(s, &off, BPF_CORE_READ(mm, env_start),
					    BPF_CORE_READ(mm, env_end), cfg_env_max, &total,
					    &trunc, &fault);
		if (trunc)
			e->flags |= SHRIKE_EXEC_ENV_TRUNCATED;
	}

	size = sizeof(*e) + (off & (DATA_HALF * 2 - 1));
	if (size > sizeof(*s))
		size = sizeof(*s);
	e->hdr.size = size;
	emit_record(s, size);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	struct shrike_fork f = {};
	struct shrike_proc proc = {}, *pproc;
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);

	/* A new thread shares its process's image and lineage entry. */
	if (BPF_CORE_READ(child, pid) != child_tgid)
		return 0;
	counter_inc(SHRIKE_CNT_FORK_SEEN);

	proc.exec_id = exec_id_new();
	proc.start_boottime_ns = BPF_CORE_READ(child, start_boottime);
	proc.flags = SHRIKE_PROC_CLONE;
	pproc = proc_lookup(parent_tgid);
	if (pproc)
		proc.parent_exec_id = pproc->exec_id;
	else
		counter_inc(SHRIKE_CNT_LINEAGE_MISS);
	proc_store(child_tgid, &proc);

	f.hdr.kind = SHRIKE_REC_PROCESS_FORK;
	f.hdr.size = sizeof(f);
	f.hdr.ktime_ns = bpf_ktime_get_boot_ns();
	f.hdr.pid = child_tgid;
	f.hdr.tid = child_tgid;
	f.hdr.exec_id = proc.exec_id;
	f.parent_exec_id = proc.parent_exec_id;
	f.start_boottime_ns = proc.start_boottime_ns;
	f.ppid = parent_tgid;
	emit_record(&f, sizeof(f));
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(handle_exit, struct task_struct *task)
{
	struct shrike_exit x = {};
	struct shrike_proc *proc;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct signal_struct *signal = BPF_CORE_READ(task, signal);
	int live = BPF_CORE_READ(signal, live.counter);

	/* Only the last thread's exit ends the process. do_exit() has already decremented
	 * signal->live when this tracepoint fires. */
	if (live != 0)
		return 0;
	counter_inc(SHRIKE_CNT_EXIT_SEEN);

	x.hdr.kind = SHRIKE_REC_PROCESS_EXIT;
	x.hdr.size = sizeof(x);
	x.hdr.ktime_ns = bpf_ktime_get_boot_ns();
	x.hdr.pid = tgid;
	x.hdr.tid = (__u32)pid_tgid;
	proc = proc_lookup(tgid);
	if (proc)
		x.hdr.exec_id = proc->exec_id;
	else
		counter_inc(SHRIKE_CNT_LINEAGE_MISS);
	x.exit_code = BPF_CORE_READ(task, exit_code);
	emit_record(&x, sizeof(x));
	bpf_map_delete_elem(&procs, &tgid);
	return 0;
}
