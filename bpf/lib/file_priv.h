/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Privilege and kernel-integrity actions a rule can stop: module loads (init_module,
 * finit_module), BPF program loads, ptrace requests and process_vm_readv/writev (another
 * process's memory, behind the same access check as ptrace). Their records are built at the
 * syscall's exit; on the tracepoint hook set a rule acting on one kills at sys_enter
 * (priv_enter), on the LSM hook set the LSM hook refuses it (bpf/lib/file_lsm.h).
 */
#ifndef SHRIKE_FILE_PRIV_H
#define SHRIKE_FILE_PRIV_H

#include "file_filter.h"
#include "file_paths.h"

/* Not in vmlinux.h (#defines in the kernel). */
#define BPF_PROG_LOAD_CMD 5
#define PTRACE_MODE_ATTACH 0x02

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
		f = fd_file(current_task(), m->fd);
		if (f)
			len = put_file(b, base, f, &m->info, &hash);
	}
	m->path_len = len & LEN_MASK;
	b->size = base + (len & LEN_MASK);
	enforced_take(regs->orig_ax, &m->enforced_rule, &m->enforced_action);
	send_rec(b, SHRIKE_REC_MODULE_LOAD);
}

static __always_inline void bpf_exit(struct pt_regs *regs, long ret)
{
	struct shrike_bpf_event e = {};
	__u32 size = sys_arg(regs, 2);
	void *attr = (void *)sys_arg(regs, 1);

	if (sys_arg(regs, 0) != BPF_PROG_LOAD_CMD)
		return;
	if (is_self())
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

/* process_vm_readv/writev come in bursts (a profiler reads a target's stacks thousands of times
 * a second): one record per caller image, target, direction and outcome. Refused and killed
 * calls are always reported. */
struct vm_access_key {
	__u64 exec_id; /* the caller's, from the lineage map (its tgid when it has none) */
	__u32 target_pid;
	__u16 syscall;
	__u16 ok;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vm_access_key);
	__type(value, __u8);
} vm_access_seen SEC(".maps");

static __always_inline bool is_ptrace_op(__u32 h)
{
	return h == SHRIKE_SYS_PTRACE || h == SHRIKE_SYS_PROCESS_VM_READV ||
	       h == SHRIKE_SYS_PROCESS_VM_WRITEV;
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
	struct task_struct *task = current_task();
	struct shrike_proc *p;

	if (BPF_CORE_READ(task, thread_pid, level) != 0)
		return 0;
	p = bpf_map_lookup_elem(&procs, &pid);
	return p ? p->exec_id : 0;
}

/* The pid a ptrace request or process_vm_* call names, as the caller sees it: ptrace's second
 * argument, process_vm_*'s first. */
static __always_inline __u32 pid_named(__u32 h, struct pt_regs *regs)
{
	return (__u32)sys_arg(regs, h == SHRIKE_SYS_PTRACE ? 1 : 0);
}

/* The tgid of a ptrace request's target, for rules on it: the caller's parent for
 * PTRACE_TRACEME, else the pid it named when it sees the initial pid namespace (0 unknown). */
static __always_inline __u32 ptrace_target_of(__u32 h, long req, struct pt_regs *regs)
{
	struct task_struct *task = current_task();

	if (h == SHRIKE_SYS_PTRACE && req == 0)
		return BPF_CORE_READ(task, real_parent, tgid);
	if (BPF_CORE_READ(task, thread_pid, level) != 0)
		return 0;
	return pid_named(h, regs);
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
		target = ptrace_target_of(h, req, regs);
		break;
	case SHRIKE_SYS_PROCESS_VM_READV:
	case SHRIKE_SYS_PROCESS_VM_WRITEV:
		kind = SHRIKE_ENF_PTRACE;
		target = ptrace_target_of(h, 0, regs);
		break;
	default:
		return;
	}
	if (!priv_enforce(kind, target, &rule))
		return;
	bpf_send_signal(SIGKILL);
	enforced_keep(nr, rule, SHRIKE_ACTION_KILL);
}

/* Whether a process_vm_* call names the caller itself (no access check happens; as seen from
 * the initial pid namespace, where its pid argument is a global one). */
static __always_inline bool own_memory(__u32 h, struct pt_regs *regs)
{
	struct task_struct *task = current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 target = pid_named(h, regs);

	if (BPF_CORE_READ(task, thread_pid, level) != 0)
		return false;
	return target == (__u32)(pid_tgid >> 32) || target == (__u32)pid_tgid;
}

/* Whether this process_vm_* call repeats one already reported (and remembers it if not). */
static __always_inline bool vm_access_repeated(struct shrike_ptrace_event *e)
{
	struct vm_access_key key = {};
	__u8 one = 1;

	key.exec_id = e->hdr.exec_id ? e->hdr.exec_id : e->hdr.pid;
	key.target_pid = e->target_pid;
	key.syscall = e->syscall;
	key.ok = e->result >= 0;
	if (bpf_map_lookup_elem(&vm_access_seen, &key))
		return true;
	bpf_map_update_elem(&vm_access_seen, &key, &one, BPF_ANY);
	return false;
}

static __always_inline void ptrace_exit(__u32 h, struct pt_regs *regs, long ret)
{
	struct shrike_ptrace_event e = {};
	long req = 0;

	if (h == SHRIKE_SYS_PTRACE) {
		req = sys_arg(regs, 0);
		if (!ptrace_interesting(req))
			return;
	} else if (own_memory(h, regs)) {
		return;
	}
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	e.result = ret;
	e.request = req;
	e.syscall = h;
	if (h == SHRIKE_SYS_PTRACE && req == 0) {
		struct task_struct *task = current_task();

		e.target_pid = BPF_CORE_READ(task, real_parent, tgid);
	} else {
		e.target_pid = pid_named(h, regs);
	}
	e.target_exec_id = exec_id_of_pid(e.target_pid);
	enforced_take(regs->orig_ax, &e.enforced_rule, &e.enforced_action);
	fill_header(&e.hdr, SHRIKE_REC_PTRACE, sizeof(e));
	if (h != SHRIKE_SYS_PTRACE && e.enforced_action == SHRIKE_ACTION_NONE && vm_access_repeated(&e))
		return;
	emit_record(&e, sizeof(e));
}

#endif /* SHRIKE_FILE_PRIV_H */
