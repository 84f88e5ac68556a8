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
#include "net_written.h"
#include "path.h"
#include "exec_rules.h"
#include "sock.h"
#include "task.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
SHRIKE_ABI_ANCHOR;

/* Set by user space before load (rodata). */
const volatile __u32 cfg_args_max = SHRIKE_ARGS_MAX; /* <= SHRIKE_ARGS_MAX */
const volatile __u32 cfg_env_max = SHRIKE_ENV_MAX;   /* 0 turns environment capture off */
/* Exec rules are enforced by the LSM program (deny) instead of here (kill). */
const volatile __u32 cfg_exec_enforce_lsm = 0;

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

/* A lineage entry under construction, per CPU (with its ancestry it is too big for the
 * stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shrike_proc);
} proc_scratch SEC(".maps");

static __always_inline struct shrike_proc *proc_scratch_get(void)
{
	__u32 zero = 0;
	struct shrike_proc *p = bpf_map_lookup_elem(&proc_scratch, &zero);

	if (p)
		__builtin_memset(p, 0, sizeof(*p));
	return p;
}

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

/*
 * The rule for a #! script, by the script's absolute path: the filename as given when it is
 * absolute, else the cwd joined with it (a leading "./" dropped). Paths with other relative
 * forms are not matched here (user space still reports them).
 */
static __always_inline struct shrike_exec_rule *script_rule(struct exec_scratch *s,
							   struct shrike_exec *e)
{
	__u32 zero = 0;
	struct path_buf *pb = bpf_map_lookup_elem(&path_scratch, &zero);
	__u32 fstart = e->binary_len & (SHRIKE_PATH_MAX - 1);
	__u32 flen = e->filename_len & (SHRIKE_PATH_MAX - 1);
	__u32 cstart = (e->binary_len + e->filename_len + e->interp_len) & DATA_MASK;
	__u32 clen = e->cwd_len & (SHRIKE_PATH_MAX - 1);
	__u64 path_hash, name_hash;
	char first[2] = {};
	__u32 len;

	if (!pb || !flen)
		return NULL;
	bpf_probe_read_kernel(first, sizeof(first), &s->data[fstart]);
	if (first[0] == '/') {
		path_hashes(&s->data[fstart], flen, &path_hash, &name_hash);
		return exec_rule_for(&s->data[fstart], flen, name_hash, false);
	}
	if (first[0] == '.' && first[1] == '/') {
		fstart += 2;
		flen -= 2;
	}
	if (clen + 1 + flen >= SHRIKE_RULE_PATH_MAX)
		return NULL;
	barrier_var(clen);
	clen &= SHRIKE_RULE_PATH_MAX - 1;
	bpf_probe_read_kernel(pb->buf, clen, &s->data[cstart]);
	len = clen;
	if (len != 1) /* cwd "/" already ends with the separator */
		pb->buf[len++ & (SHRIKE_PATH_MAX - 1)] = '/';
	barrier_var(flen);
	flen &= SHRIKE_RULE_PATH_MAX - 1;
	bpf_probe_read_kernel(&pb->buf[len & (SHRIKE_RULE_PATH_MAX - 1)], flen,
			      &s->data[fstart & DATA_MASK]);
	len += flen;
	path_hashes(pb->buf, len, &path_hash, &name_hash);
	return exec_rule_for(pb->buf, len, name_hash, false);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(handle_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 cpu = bpf_get_smp_processor_id();
	struct exec_scratch *s = bpf_map_lookup_elem(&exec_scratch, &cpu);
	struct shrike_exec *e;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct shrike_proc *prev, *next = proc_scratch_get();
	struct exec_subject *sub;
	struct shrike_exec_rule *rule;
	struct file *file;
	struct dentry *dentry;
	struct fs_struct *fs;
	struct mm_struct *mm;
	struct path root, pwd;
	__u32 off = 0, path_flags = 0, total = 0;
	bool trunc = false, fault = false, held;
	const char *filename, *interp;
	__u64 size;

	counter_inc(SHRIKE_CNT_EXEC_SEEN);
	if (!s || !next) {
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
	next->exec_id = exec_id_new();
	next->start_boottime_ns = task_start_boottime(task);
	file = BPF_CORE_READ(bprm, file);
	prev = proc_lookup(tgid);
	/* The ancestry lineage rules are decided on, as the user-space tree orders it. */
	ancestry_of_new_image(prev, next->anc_path, next->anc_name, &next->anc_count,
			      &next->flags);
	if (next->flags & SHRIKE_PROC_UNDER_SERVER)
		e->flags |= SHRIKE_EXEC_UNDER_SERVER;
	if (prev) {
		if (prev->flags & SHRIKE_PROC_CLONE) {
			next->parent_exec_id = prev->parent_exec_id;
		} else {
			next->parent_exec_id = prev->exec_id;
			e->flags |= SHRIKE_EXEC_PARENT_IS_PREV;
		}
	} else {
		struct shrike_proc *parent;
		__u32 ppid = BPF_CORE_READ(task, real_parent, tgid);

		counter_inc(SHRIKE_CNT_LINEAGE_MISS);
		e->flags |= SHRIKE_EXEC_LINEAGE_UNKNOWN;
		parent = proc_lookup(ppid);
		next->parent_exec_id = parent ? parent->exec_id : 0;
	}

	e->hdr.exec_id = next->exec_id;
	e->parent_exec_id = next->parent_exec_id;
	e->start_boottime_ns = next->start_boottime_ns;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = BPF_CORE_READ(task, cred, uid.val);
	e->euid = BPF_CORE_READ(task, cred, euid.val);
	e->gid = BPF_CORE_READ(task, cred, gid.val);
	e->egid = BPF_CORE_READ(task, cred, egid.val);
	e->loginuid = task_loginuid(task);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* Which standard fds are sockets (a shell whose stdio is a TCP connection) or pipes
	 * (what feeds a shell's stdin). */
	stdio_sockets(task, e->stdio);

	fs = BPF_CORE_READ(task, fs);
	bpf_core_read(&root, sizeof(root), &fs->root);
	bpf_core_read(&pwd, sizeof(pwd), &fs->pwd);

	/* The executable the kernel really runs: for a script, its interpreter. */
	e->binary_len = put_path(s, &off, &file->f_path, &root, &path_flags);
	if (path_flags & PATH_TRUNCATED)
		e->flags |= SHRIKE_EXEC_BINARY_TRUNCATED;
	/* Its identity for lineage rules of later execs, then the lineage entry itself. */
	path_hashes(s->data, e->binary_len, &next->path_hash, &next->name_hash);
	proc_store(tgid, next);
	dentry = BPF_CORE_READ(file, f_path.dentry);
	if ((path_flags & PATH_DISCONNECTED) && is_memfd_dentry(dentry))
		e->flags |= SHRIKE_EXEC_MEMFD;
	if (BPF_CORE_READ(dentry, d_inode, i_nlink) == 0)
		e->flags |= SHRIKE_EXEC_DELETED;
	/* How fresh the executable is, and whether a networked image wrote it. */
	e->binary_ctime_s = 0;
	if (!inode_ctime_s(BPF_CORE_READ(file, f_inode), &e->binary_ctime_s))
		e->flags |= SHRIKE_EXEC_CTIME_UNKNOWN;
	e->writer_exec_id = net_writer_of(BPF_CORE_READ(file, f_inode));
	if (e->writer_exec_id)
		e->flags |= SHRIKE_EXEC_NET_WRITTEN;

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

	/* Exec rules: without BPF LSM, a matching deny or kill rule kills the new image here,
	 * before it runs a single instruction (the signal is delivered on the way back to user
	 * space). The record says so. A workload-scoped rule that would apply but for a cgroup
	 * user space has not placed yet stops the new image instead, as early (with BPF LSM too:
	 * bprm_check let such an exec through); user space then kills or resumes it. With BPF
	 * LSM, the rules are looked at here only while holding is on, and a rule that applies
	 * here was not in force when bprm_check ran (user space placed the cgroup in between):
	 * killed, as without BPF LSM. */
	e->enforced_rule = SHRIKE_NO_RULE;
	e->enforced_action = SHRIKE_ACTION_NONE;
	if (!cfg_exec_enforce_lsm || holding_on()) {
		rule = NULL;
		sub = exec_subject_of(next);
		if (sub) {
			sub->uid = e->uid;
			sub->euid = e->euid;
			sub->cgroup_id = e->cgroup_id;
			rule = exec_rule_for(s->data, e->binary_len, next->name_hash,
					     e->flags & SHRIKE_EXEC_BINARY_TRUNCATED);
			if (!rule && (e->flags & SHRIKE_EXEC_SCRIPT))
				rule = script_rule(s, e);
		}
		if (rule) {
			bpf_send_signal(9 /* SIGKILL */);
			e->enforced_rule = rule->rule_index;
			e->enforced_action = SHRIKE_ACTION_KILL;
			counter_inc(SHRIKE_CNT_EXEC_KILLED);
		} else if (sub && sub->held_rule != SHRIKE_NO_RULE) {
			/* Stopped before the record goes out, so user space's SIGCONT cannot come
			 * first; a record that cannot go out takes the stop back (below). */
			bpf_send_signal(19 /* SIGSTOP */);
			e->flags |= SHRIKE_EXEC_HELD;
			e->enforced_rule = sub->held_rule;
		}
	}

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
	/* A held exec waits for user space: its record wakes the reader at once. One whose record
	 * is lost (ring buffer full, counted) must not stay stopped: nobody would resume it.
	 * SIGCONT drops the stop still pending. */
	held = e->flags & SHRIKE_EXEC_HELD;
	if ((held ? emit_record_now(s, size) : emit_record(s, size)) == 0) {
		if (held)
			counter_inc(SHRIKE_CNT_EXEC_HELD);
	} else if (held) {
		bpf_send_signal(18 /* SIGCONT */);
	}
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(handle_fork, struct task_struct *parent, struct task_struct *child)
{
	struct shrike_fork f = {};
	struct shrike_proc *proc, *pproc;
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	__u32 anc_flags = 0;

	/* A new thread shares its process's image and lineage entry. */
	if (BPF_CORE_READ(child, pid) != child_tgid)
		return 0;
	counter_inc(SHRIKE_CNT_FORK_SEEN);
	proc = proc_scratch_get();
	if (!proc) {
		counter_inc(SHRIKE_CNT_SCRATCH_FAIL);
		return 0;
	}

	proc->exec_id = exec_id_new();
	proc->start_boottime_ns = BPF_CORE_READ(child, start_boottime);
	pproc = proc_lookup(parent_tgid);
	if (pproc) {
		proc->parent_exec_id = pproc->exec_id;
		/* The clone runs its parent's image until it execs; that image is its parent. */
		proc->path_hash = pproc->path_hash;
		proc->name_hash = pproc->name_hash;
		ancestry_below(pproc, proc->anc_path, proc->anc_name, &proc->anc_count, &anc_flags);
	} else {
		counter_inc(SHRIKE_CNT_LINEAGE_MISS);
		anc_flags = SHRIKE_PROC_ANCESTRY_UNKNOWN;
	}
	proc->flags = SHRIKE_PROC_CLONE | anc_flags;
	proc_store(child_tgid, proc);

	f.hdr.kind = SHRIKE_REC_PROCESS_FORK;
	f.hdr.size = sizeof(f);
	f.hdr.ktime_ns = bpf_ktime_get_boot_ns();
	f.hdr.pid = child_tgid;
	f.hdr.tid = child_tgid;
	f.hdr.exec_id = proc->exec_id;
	f.parent_exec_id = proc->parent_exec_id;
	f.start_boottime_ns = proc->start_boottime_ns;
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

/* An exec refused by a rule, under construction (path and filename follow the record). */
struct denied_scratch {
	struct shrike_exec_denied rec;
	__u8 data[SHRIKE_PATH_MAX * 2];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct denied_scratch);
} denied_scratch SEC(".maps");

/*
 * With BPF LSM active, exec rules refuse the exec with EPERM before the new image replaces the
 * caller's (bprm_check_security runs once per binary handler: for a script, first with the
 * script, then with its interpreter, so rules on either match). A kill rule also kills the
 * caller. Loaded only when the start-up probe saw LSM programs being called (6.1+ with
 * lsm=...,bpf); elsewhere handle_exec enforces by SIGKILL.
 */
SEC("lsm/bprm_check_security")
int BPF_PROG(enforce_exec_lsm, struct linux_binprm *bprm, int ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32, zero = 0, start = 0, flags = 0, len, flen;
	struct task_struct *task = current_task();
	struct denied_scratch *d = bpf_map_lookup_elem(&denied_scratch, &zero);
	struct exec_subject *sub;
	struct shrike_exec_rule *rule;
	struct shrike_proc *cur;
	struct path_buf *pb = 0;
	struct fs_struct *fs;
	struct path root;
	struct file *file;
	__u64 path_hash, name_hash, size;

	if (ret)
		return ret;
	if (!d)
		return 0;
	fs = BPF_CORE_READ(task, fs);
	bpf_core_read(&root, sizeof(root), &fs->root);
	file = BPF_CORE_READ(bprm, file);
	len = path_resolve(&file->f_path, &root, &start, &flags, &pb);
	if (!pb || !len)
		return 0;
	path_hashes(&pb->buf[start & PATH_POS_MASK], len, &path_hash, &name_hash);

	/* The would-be image's ancestry starts from the caller's lineage entry. */
	cur = proc_lookup(tgid);
	sub = exec_subject_get(cur);
	if (!sub)
		return 0;
	sub->uid = BPF_CORE_READ(bprm, cred, uid.val);
	sub->euid = BPF_CORE_READ(bprm, cred, euid.val);
	sub->cgroup_id = bpf_get_current_cgroup_id();
	rule = exec_rule_for(&pb->buf[start & PATH_POS_MASK], len, name_hash,
			     flags & PATH_TRUNCATED);
	if (!rule)
		return 0;

	d->rec.hdr.kind = SHRIKE_REC_EXEC_DENIED;
	d->rec.hdr._pad0 = 0;
	d->rec.hdr.ktime_ns = bpf_ktime_get_boot_ns();
	d->rec.hdr.pid = tgid;
	d->rec.hdr.tid = (__u32)pid_tgid;
	d->rec.hdr.exec_id = cur ? cur->exec_id : 0;
	d->rec.rule_index = rule->rule_index;
	d->rec.action = rule->action;
	d->rec.flags = (flags & PATH_TRUNCATED) ? SHRIKE_DENIED_PATH_CUT : 0;
	len &= SHRIKE_PATH_MAX - 1;
	bpf_probe_read_kernel(d->data, len, &pb->buf[start & PATH_POS_MASK]);
	d->rec.path_len = len;
	flen = 0;
	{
		long n = bpf_probe_read_kernel_str(&d->data[len], SHRIKE_PATH_MAX,
						   BPF_CORE_READ(bprm, filename));
		if (n > 0)
			flen = (n - 1) & (SHRIKE_PATH_MAX - 1);
	}
	d->rec.filename_len = flen;
	size = sizeof(d->rec) + len + flen;
	if (size > sizeof(*d))
		size = sizeof(*d);
	d->rec.hdr.size = size;
	emit_record(d, size);
	counter_inc(SHRIKE_CNT_EXEC_DENIED);
	if (rule->action == SHRIKE_ACTION_KILL)
		bpf_send_signal(9 /* SIGKILL */);
	return -1; /* -EPERM */
}
