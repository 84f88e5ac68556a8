/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Mounts and unmounts, namespace changes (setns, unshare, clone and clone3 with CLONE_NEW*),
 * memfd_create and socket (netfilter's netlink only): records built at the syscall's exit from
 * its arguments.
 */
#ifndef SHRIKE_FILE_SYS_H
#define SHRIKE_FILE_SYS_H

#include "file_paths.h"

/* Not in vmlinux.h (#defines in the kernel). */
#define NSFS_MAGIC 0x6e736673
#define CLONE_NEW_MASK 0x7e020080ULL /* NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME */

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
	send_rec(b, h == SHRIKE_SYS_MOUNT ? SHRIKE_REC_MOUNT : SHRIKE_REC_UMOUNT);
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
	struct file *f = fd_file(current_task(), fd);
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

struct time_namespace___present {
	struct ns_common ns;
} __attribute__((preserve_access_index));

struct nsproxy___time {
	struct time_namespace___present *time_ns;
} __attribute__((preserve_access_index));

/* The caller's namespaces after a setns, and how deep its own pid namespace is: user space
 * tells an entry into the host's namespaces (PID 1's) from a process that is not in them. */
static __always_inline void ns_after_setns(struct shrike_ns_event *e)
{
	struct task_struct *task = current_task();
	struct nsproxy *ns = BPF_CORE_READ(task, nsproxy);
	struct pid *pid = BPF_CORE_READ(task, thread_pid);

	if (pid)
		e->pid_level = BPF_CORE_READ(pid, level);
	e->inum[SHRIKE_NS_USER] = BPF_CORE_READ(task, cred, user_ns, ns.inum);
	if (!ns)
		return;
	e->inum[SHRIKE_NS_MNT] = BPF_CORE_READ(ns, mnt_ns, ns.inum);
	e->inum[SHRIKE_NS_UTS] = BPF_CORE_READ(ns, uts_ns, ns.inum);
	e->inum[SHRIKE_NS_IPC] = BPF_CORE_READ(ns, ipc_ns, ns.inum);
	e->inum[SHRIKE_NS_PID] = BPF_CORE_READ(ns, pid_ns_for_children, ns.inum);
	e->inum[SHRIKE_NS_NET] = BPF_CORE_READ(ns, net_ns, ns.inum);
	e->inum[SHRIKE_NS_CGROUP] = BPF_CORE_READ(ns, cgroup_ns, ns.inum);
	if (bpf_core_field_exists(((struct nsproxy___time *)ns)->time_ns))
		e->inum[SHRIKE_NS_TIME] =
			BPF_CORE_READ((struct nsproxy___time *)ns, time_ns, ns.inum);
}

static __always_inline void ns_exit(__u32 h, struct pt_regs *regs, long ret)
{
	struct shrike_ns_event e = {};

	switch (h) {
	case SHRIKE_SYS_SETNS:
		e.flags = sys_arg(regs, 1);
		e.ns_flags = e.flags ? e.flags : ns_type_of_fd((int)sys_arg(regs, 0));
		if (ret == 0)
			ns_after_setns(&e);
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
	send_rec(b, SHRIKE_REC_MEMFD_CREATE);
}

#define SHRIKE_AF_NETLINK 16
#define SHRIKE_NETLINK_NETFILTER 12
#define SHRIKE_SOCK_TYPE_MASK 0xf

/* socket(2), at its exit: only netfilter's netlink sockets leave the kernel. */
static __always_inline void socket_exit(struct pt_regs *regs, long ret)
{
	struct shrike_socket_event s = {};
	__u64 family = sys_arg(regs, 0);
	__u64 protocol = sys_arg(regs, 2);

	if (family != SHRIKE_AF_NETLINK || protocol != SHRIKE_NETLINK_NETFILTER)
		return;
	counter_inc(SHRIKE_CNT_PRIV_SEEN);
	s.result = ret;
	s.family = family;
	s.type = sys_arg(regs, 1) & SHRIKE_SOCK_TYPE_MASK;
	s.protocol = protocol;
	fill_header(&s.hdr, SHRIKE_REC_SOCKET_CREATE, sizeof(s));
	emit_record(&s, sizeof(s));
}

#endif /* SHRIKE_FILE_SYS_H */
