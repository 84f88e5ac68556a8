/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Reading sockets out of kernel structures: the endpoints of a struct sock, and whether a
 * task's standard fds are sockets or pipes. All reads are CO-RE, so they work from any program type
 * that may read kernel memory (tracing programs; socket programs use their own context).
 */
#ifndef SHRIKE_SOCK_H
#define SHRIKE_SOCK_H

#include <bpf/bpf_endian.h>

#include "maps.h"

#define SHRIKE_AF_UNIX 1
#define SHRIKE_AF_INET 2
#define SHRIKE_AF_INET6 10
#define SHRIKE_S_IFMT 00170000
#define SHRIKE_S_IFSOCK 0140000
#define SHRIKE_S_IFIFO 0010000

/* The peer of a connected socket: family, type, protocol, address and port (host order). */
static __always_inline void sock_peer(struct sock *sk, struct shrike_stdio_sock *out)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	out->family = family;
	out->type = BPF_CORE_READ(sk, sk_type);
	out->protocol = family == SHRIKE_AF_UNIX ? 0 : BPF_CORE_READ(sk, sk_protocol);
	if (family == SHRIKE_AF_INET) {
		__u32 daddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(out->peer_addr, &daddr, 4);
		out->peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	} else if (family == SHRIKE_AF_INET6) {
		BPF_CORE_READ_INTO(&out->peer_addr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
		out->peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	}
}

/* One fd of a task's table: its socket's peer when it is a socket, its inode number when it is
 * a pipe or FIFO. A subprogram, not inlined: the exec handler is large enough already. */
static __noinline int stdio_socket(struct file **fds, __u32 fd, __u32 max,
				   struct shrike_stdio_sock *out)
{
	struct file *file = 0;
	struct socket *sock;
	struct sock *sk;
	umode_t mode;

	if (!out)
		return 0;
	out->family = 0;
	out->type = 0;
	out->protocol = 0;
	out->peer_port = 0;
	out->pipe_ino = 0;
	__builtin_memset(out->peer_addr, 0, sizeof(out->peer_addr));
	if (fd >= max || bpf_probe_read_kernel(&file, sizeof(file), &fds[fd & 3]) || !file)
		return 0;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & SHRIKE_S_IFMT) == SHRIKE_S_IFIFO) {
		out->pipe_ino = BPF_CORE_READ(file, f_inode, i_ino);
		return 0;
	}
	if ((mode & SHRIKE_S_IFMT) != SHRIKE_S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (sk)
		sock_peer(sk, out);
	return 0;
}

/* Fills out[0..2] for fds 0, 1, 2 of `task`; family stays 0 for an fd that is not a socket,
 * pipe_ino for one that is not a pipe. */
static __always_inline void stdio_sockets(struct task_struct *task, struct shrike_stdio_sock *out)
{
	struct files_struct *files = BPF_CORE_READ(task, files);
	struct fdtable *fdt = BPF_CORE_READ(files, fdt);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	__u32 max = files ? BPF_CORE_READ(fdt, max_fds) : 0;

	stdio_socket(fds, 0, max, &out[0]);
	stdio_socket(fds, 1, max, &out[1]);
	stdio_socket(fds, 2, max, &out[2]);
}

#endif /* SHRIKE_SOCK_H */
