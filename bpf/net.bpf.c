// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
/*
 * The network sensor: socket events in process context (connect, accept, bind, listen,
 * close with flow counters), DNS messages, and the deny rules (connect, UDP send and bind
 * refused with EPERM; inbound packets dropped at tc).
 *
 * Hooks, and why (none of them is a syscall tracepoint, so no system call pays for them):
 *   - cgroup/connect4, connect6, sendmsg4, sendmsg6, bind4, bind6 on the cgroup v2 root: they
 *     run in the caller's context before the action, so they can refuse it (return 0 = EPERM)
 *     and record the calling process on the socket (BPF socket storage);
 *   - cgroup/post_bind4, post_bind6: a bind that succeeded, with the port really bound;
 *   - tp_btf/inet_sock_set_state: every TCP state change. LISTEN runs in the caller's
 *     context; the outcome of a connect (SYN_SENT -> ESTABLISHED or CLOSE), an accepted
 *     connection (SYN_RECV -> ESTABLISHED, usually in softirq) and the close (-> CLOSE, with
 *     the tcp_sock byte and segment counters) are attributed through the socket storage,
 *     which the kernel clones from a listener to the sockets it accepts (BPF_F_CLONE); the
 *     legacy build (5.10, no socket storage in tracing programs) keeps this state in hash
 *     maps instead (lib/net_socks.h);
 *   - cgroup_skb/egress, cgroup_skb/ingress: UDP datagrams to or from port 53 are copied to
 *     user space (DNS is parsed there), attributed through the socket storage;
 *   - tc ingress (tcx or clsact, attached only when ingress rules exist): drops inbound
 *     packets by source CIDR, destination port and protocol.
 *   - iter/task_file, then iter/tcp and iter/udp, run once at start: sockets that predate the
 *     agent get their owner recorded (a listener's accepted connections are then attributed to
 *     it).
 * Kernels: the main build needs 5.17 (bpf_loop), the legacy build 5.10; a program a kernel
 * refuses costs its capability only (crates/bpf/src/capability.rs). Tested on 5.10, 6.1, 6.12,
 * 6.18 and 7.x.
 *
 * Rules live in two generations (see bpf/abi/net.h); a hook reads the active generation once,
 * so it never sees half of a new rule set. The rule maps and matching are in lib/net_rules.h,
 * packet parsing in lib/net_packet.h; this file holds the hooks.
 */
#include "common.h"
#include <bpf/bpf_endian.h>

#include "maps.h"
#include "emit.h"
#include "lineage.h"
#include "sock.h"
#include "net.h"
#include "fault.h"
#include "net_rules.h"
#include "net_packet.h"
#include "net_socks.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
struct shrike_net_anchor shrike_net_anchor SEC(".bss");

/* Test-only fault injection: SHRIKE_NET_FAULT_* bits (see fault.h); 0 in every normal run. */
const volatile __u64 cfg_fault_refuse = 0;

/* net_tcp_state runs here: a TCP connect is reported from it, with its outcome. 0 where the
 * kernel refused it or it could not attach: the connect is reported at the call, without
 * outcome or source port, so it is not lost. Data, not rodata: user space clears it after load
 * when the attach fails (crates/bpf/src/net/load.rs attaches it before the connect hooks). */
volatile __u32 cfg_tcp_state = 1;

#define EPERM 1
#define EEXIST 17
#define TC_ACT_SHOT 2
#define TC_PASS (-1) /* TC_ACT_UNSPEC / TCX_NEXT: let the next program or the stack decide */
#define ETH_HLEN 14
#define DNS_PORT 53
#define NSEC_PER_SEC 1000000000ULL
#define RCV_SHUTDOWN 1

/* tc drops: at most one event per second per (source, port, protocol); the rest counted. */
struct tc_seen_key {
	__u8 addr[16];
	__u16 port;
	__u16 protocol;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct tc_seen_key);
	__type(value, __u64);
} net_tc_seen SEC(".maps");

/* DNS records under construction, one per CPU. */
struct dns_scratch {
	struct shrike_net_dns rec;
	__u8 data[SHRIKE_NET_DNS_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct dns_scratch);
} net_dns_scratch SEC(".maps");

/* ------------------------------------------------------------------------------------------ */
/* Records */

static __always_inline void owner_current(struct shrike_net *r, struct shrike_proc **proc)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;

	r->hdr.pid = tgid;
	r->hdr.tid = (__u32)pid_tgid;
	*proc = proc_lookup(tgid);
	r->hdr.exec_id = *proc ? (*proc)->exec_id : 0;
}

static __always_inline void owner_from(struct shrike_net *r, struct shrike_net_sock *s)
{
	if (s && (s->flags & SHRIKE_SOCK_OWNED)) {
		r->hdr.pid = s->pid;
		r->hdr.tid = s->tid;
		r->hdr.exec_id = s->exec_id;
	} else {
		r->flags |= SHRIKE_NET_OWNER_UNKNOWN;
		counter_inc(SHRIKE_CNT_NET_NO_OWNER);
	}
}

static __always_inline void sock_set_owner(struct shrike_net_sock *s, struct shrike_net *r)
{
	s->pid = r->hdr.pid;
	s->tid = r->hdr.tid;
	s->exec_id = r->hdr.exec_id;
	s->flags |= SHRIKE_SOCK_OWNED;
}

static __always_inline void net_emit(struct shrike_net *r, __u16 kind)
{
	r->hdr.kind = kind;
	r->hdr.size = sizeof(*r);
	r->hdr.ktime_ns = bpf_ktime_get_boot_ns();
	emit_record(r, sizeof(*r));
}

/* ------------------------------------------------------------------------------------------ */
/* cgroup sock_addr: connect, UDP send, bind */

/* The peer a sock_addr hook is asked about, into r->daddr / r->dport; the socket's own bound
 * address into r->saddr / r->sport. */
static __always_inline void sockaddr_endpoints(struct bpf_sock_addr *ctx, struct shrike_net *r,
					       bool v6)
{
	struct bpf_sock *sk = ctx->sk;

	r->protocol = ctx->protocol;
	if (v6) {
		__u32 d[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2],
			      ctx->user_ip6[3]};

		r->family = SHRIKE_AF_INET6;
		__builtin_memcpy(r->daddr, d, 16);
	} else {
		__u32 d = ctx->user_ip4;

		r->family = SHRIKE_AF_INET;
		__builtin_memcpy(r->daddr, &d, 4);
	}
	r->dport = bpf_ntohs(ctx->user_port);
	if (sk) {
		r->sport = sk->src_port;
		if (v6) {
			__u32 s[4] = {sk->src_ip6[0], sk->src_ip6[1], sk->src_ip6[2], sk->src_ip6[3]};

			__builtin_memcpy(r->saddr, s, 16);
		} else {
			__u32 s = sk->src_ip4;

			__builtin_memcpy(r->saddr, &s, 4);
		}
	}
}

/* Checks the egress or bind rules for a sock_addr hook against the address and port in
 * user_ip* / user_port (r->daddr / r->dport): the peer for connect and send, the local
 * address for bind. Fills c; returns c->hit. */
static __always_inline int sockaddr_rules(struct rule_check *c, struct shrike_net *r,
					  struct shrike_proc *proc, __u8 dir)
{
	__u8 key[16];

	c->dir = dir;
	c->proto = r->protocol;
	c->port_known = 1;
	c->port = r->dport;
	if (proc) {
		c->bin_hash = proc->path_hash;
		/* An ancestor found within the entry's ancestry stands, cut or not; one not found
		 * there matches no rule, and user space, which has the whole tree, decides. */
		c->anc_count = proc->anc_count < SHRIKE_ANCESTRY ? proc->anc_count : SHRIKE_ANCESTRY;
		__builtin_memcpy(c->anc, proc->anc_path, sizeof(c->anc));
	}
	rule_addr(key, r->family, r->daddr);
	return rules_check(c, key, true);
}

/* connect() and UDP sendmsg with an address. Returns 1 to allow, 0 to refuse with EPERM. */
static __always_inline int on_egress(struct bpf_sock_addr *ctx, bool v6, bool send)
{
	struct shrike_net r = {};
	struct rule_check c = {};
	struct shrike_proc *proc = 0;
	struct shrike_net_sock *s;
	int hit;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 1;
	owner_current(&r, &proc);
	sockaddr_endpoints(ctx, &r, v6);
	/* The image talks to the network from now on: what it writes is remembered (see
	 * net_written.h). A name lookup (UDP to port 53, glibc connects that socket) is not
	 * talking to the network in this sense, and a datagram sent without connect is not
	 * either (a resolver's, a syslog client's). */
	if (proc && !send && (r.protocol == IPPROTO_TCP || r.dport != 53))
		proc->flags |= SHRIKE_PROC_CONNECTED;
	r.cookie = bpf_get_socket_cookie(ctx);
	hit = sockaddr_rules(&c, &r, proc, SHRIKE_NET_DIR_EGRESS);
	if (hit == 1) {
		r.result = -EPERM;
		r.flags |= SHRIKE_NET_DENIED;
		r.rule_index = c.rule_index;
		counter_inc(SHRIKE_CNT_NET_DENIED);
		net_emit(&r, SHRIKE_REC_NET_CONNECT);
		return 0;
	}
	if (hit == 2) {
		r.flags |= SHRIKE_NET_AUDIT;
		r.rule_index = c.rule_index;
	}

	s = bpf_sk_storage_get(&net_socks, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!s) {
		counter_inc(SHRIKE_CNT_NET_STORAGE_FAIL);
		if (r.protocol == IPPROTO_UDP || hit)
			net_emit(&r, SHRIKE_REC_NET_CONNECT);
		return 1;
	}
	sock_set_owner(s, &r);
	if (r.protocol == IPPROTO_TCP && cfg_tcp_state) {
		/* The outcome is reported from inet_sock_set_state, with the source port. */
		s->flags |= SHRIKE_SOCK_CONNECTING;
		s->audit_rule = hit == 2 ? c.rule_index + 1 : 0;
		tcp_connect_started(s, r.cookie);
		return 1;
	}
	/* UDP: report each new destination of the socket once (a DNS client's resolver, a
	 * connected socket's peer), not every datagram. */
	if (send && s->last_port == r.dport && !__builtin_memcmp(s->last_addr, r.daddr, 16) &&
	    !hit)
		return 1;
	s->last_port = r.dport;
	__builtin_memcpy(s->last_addr, r.daddr, 16);
	net_emit(&r, SHRIKE_REC_NET_CONNECT);
	return 1;
}

static __always_inline int on_bind(struct bpf_sock_addr *ctx, bool v6)
{
	struct shrike_net r = {};
	struct rule_check c = {};
	struct shrike_proc *proc = 0;
	int hit;

	if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
		return 1;
	owner_current(&r, &proc);
	sockaddr_endpoints(ctx, &r, v6);
	hit = sockaddr_rules(&c, &r, proc, SHRIKE_NET_DIR_BIND);
	if (!hit)
		return 1;
	/* The address being bound is this process's own end. */
	__builtin_memcpy(r.saddr, r.daddr, 16);
	r.sport = r.dport;
	__builtin_memset(r.daddr, 0, 16);
	r.dport = 0;
	r.cookie = bpf_get_socket_cookie(ctx);
	r.rule_index = c.rule_index;
	if (hit == 2) {
		/* Reported by post_bind when the bind succeeds; an audit hit is remembered. */
		struct shrike_net_sock *s =
			bpf_sk_storage_get(&net_socks, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

		if (s)
			s->audit_rule = c.rule_index + 1;
		return 1;
	}
	r.result = -EPERM;
	r.flags |= SHRIKE_NET_DENIED;
	counter_inc(SHRIKE_CNT_NET_DENIED);
	net_emit(&r, SHRIKE_REC_NET_BIND);
	return 0;
}

SEC("cgroup/connect4")
int net_connect4(struct bpf_sock_addr *ctx)
{
	return on_egress(ctx, false, false);
}

SEC("cgroup/connect6")
int net_connect6(struct bpf_sock_addr *ctx)
{
	return on_egress(ctx, true, false);
}

SEC("cgroup/sendmsg4")
int net_sendmsg4(struct bpf_sock_addr *ctx)
{
	return on_egress(ctx, false, true);
}

SEC("cgroup/sendmsg6")
int net_sendmsg6(struct bpf_sock_addr *ctx)
{
	return on_egress(ctx, true, true);
}

SEC("cgroup/bind4")
int net_bind4(struct bpf_sock_addr *ctx)
{
	return on_bind(ctx, false);
}

SEC("cgroup/bind6")
int net_bind6(struct bpf_sock_addr *ctx)
{
	return on_bind(ctx, true);
}

/* A bind that succeeded: the port really bound (also when the caller asked for port 0). */
static __always_inline int on_post_bind(struct bpf_sock *sk, bool v6)
{
	struct shrike_net r = {};
	struct shrike_proc *proc = 0;
	struct shrike_net_sock *s;

	if (sk->protocol != IPPROTO_TCP && sk->protocol != IPPROTO_UDP)
		return 1;
	owner_current(&r, &proc);
	r.protocol = sk->protocol;
	r.sport = sk->src_port;
	if (v6) {
		__u32 a[4] = {sk->src_ip6[0], sk->src_ip6[1], sk->src_ip6[2], sk->src_ip6[3]};

		r.family = SHRIKE_AF_INET6;
		__builtin_memcpy(r.saddr, a, 16);
	} else {
		__u32 a = sk->src_ip4;

		r.family = SHRIKE_AF_INET;
		__builtin_memcpy(r.saddr, &a, 4);
	}
	r.cookie = bpf_get_socket_cookie(sk);
	s = bpf_sk_storage_get(&net_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (s) {
		sock_set_owner(s, &r);
		if (s->audit_rule) {
			r.flags |= SHRIKE_NET_AUDIT;
			r.rule_index = s->audit_rule - 1;
			s->audit_rule = 0;
		}
	} else {
		counter_inc(SHRIKE_CNT_NET_STORAGE_FAIL);
	}
	net_emit(&r, SHRIKE_REC_NET_BIND);
	return 1;
}

SEC("cgroup/post_bind4")
int net_post_bind4(struct bpf_sock *sk)
{
	return on_post_bind(sk, false);
}

SEC("cgroup/post_bind6")
int net_post_bind6(struct bpf_sock *sk)
{
	return on_post_bind(sk, true);
}

/* ------------------------------------------------------------------------------------------ */
/* TCP state changes */

/* The socket's two ends: local into saddr/sport, peer into daddr/dport. `sk` is the
 * tracepoint's BTF-typed argument, so these are plain loads, not probe reads (a probe read costs
 * a helper call each, and a connection's four reports made ~40 of them). */
static __always_inline void sk_endpoints(const struct sock *sk, struct shrike_net *r)
{
	__u16 family = sk->__sk_common.skc_family;

	r->family = family;
	r->protocol = IPPROTO_TCP;
	r->sport = sk->__sk_common.skc_num;
	r->dport = bpf_ntohs(sk->__sk_common.skc_dport);
	if (family == SHRIKE_AF_INET6) {
		__builtin_memcpy(r->saddr, sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8, 16);
		__builtin_memcpy(r->daddr, sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8, 16);
	} else {
		__u32 s = sk->__sk_common.skc_rcv_saddr;
		__u32 d = sk->__sk_common.skc_daddr;

		__builtin_memcpy(r->saddr, &s, 4);
		__builtin_memcpy(r->daddr, &d, 4);
	}
}

/* The state changes this sensor reports: listen, a connect's outcome, an accepted connection,
 * a close. The others (a connect's SYN_SENT, an accepted child's SYN_RECV, the FIN states) are
 * half of a short connection's changes; they return before any other work. */
static __always_inline bool tcp_state_reported(int oldstate, int newstate)
{
	return newstate == TCP_LISTEN || newstate == TCP_CLOSE ||
	       (newstate == TCP_ESTABLISHED &&
		(oldstate == TCP_SYN_SENT || oldstate == TCP_SYN_RECV));
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(net_tcp_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (!tcp_state_reported(oldstate, newstate))
		return 0;

	struct sock *s_k = (struct sock *)sk;
	struct shrike_net r = {};
	struct shrike_net_sock *s;
	struct shrike_proc *proc = 0;
	__u16 family;

	if (sk->sk_protocol != IPPROTO_TCP)
		return 0;
	family = sk->__sk_common.skc_family;
	if (family != SHRIKE_AF_INET && family != SHRIKE_AF_INET6)
		return 0;

	if (newstate == TCP_LISTEN) {
		/* listen() itself: the caller's context. The listener's storage names the owner
		 * of every connection it accepts (cloned to them). */
		owner_current(&r, &proc);
		/* The image is a server from now on: what it starts is under a server. */
		if (proc && r.hdr.pid != 1)
			proc->flags |= SHRIKE_PROC_LISTENED;
		sk_endpoints(sk, &r);
		r.flags |= SHRIKE_NET_INGRESS;
		r.cookie = tcp_cookie(s_k);
		s = tcp_state(ctx, s_k, true);
		if (s) {
			sock_set_owner(s, &r);
			tcp_listening(s_k, s);
		} else {
			counter_inc(SHRIKE_CNT_NET_STORAGE_FAIL);
		}
		net_emit(&r, SHRIKE_REC_NET_LISTEN);
		return 0;
	}

	if (oldstate == TCP_SYN_SENT && (newstate == TCP_ESTABLISHED || newstate == TCP_CLOSE)) {
		/* The outcome of a connect. */
		r.cookie = tcp_cookie(s_k);
		s = tcp_connecting(s_k, r.cookie);
		if (!s || !(s->flags & SHRIKE_SOCK_CONNECTING))
			return 0;
		s->flags &= ~SHRIKE_SOCK_CONNECTING;
		owner_from(&r, s);
		sk_endpoints(sk, &r);
		if (s->audit_rule) {
			r.flags |= SHRIKE_NET_AUDIT;
			r.rule_index = s->audit_rule - 1;
		}
		if (newstate == TCP_ESTABLISHED) {
			s->flags |= SHRIKE_SOCK_ESTABLISHED;
			s->local_port = r.sport;
		} else {
			int err = sk->sk_err;

			r.result = err ? -err : -111; /* ECONNREFUSED when the kernel left none */
		}
		tcp_connect_done(ctx, s, r.cookie);
		net_emit(&r, SHRIKE_REC_NET_CONNECT);
		return 0;
	}

	if (oldstate == TCP_SYN_RECV && newstate == TCP_ESTABLISHED) {
		/* An accepted connection (the child socket), usually in softirq: the owner is
		 * the listener's, whose storage the child inherited. */
		s = tcp_accepted(ctx, s_k);
		owner_from(&r, s);
		sk_endpoints(sk, &r);
		r.flags |= SHRIKE_NET_INGRESS;
		r.cookie = tcp_cookie(s_k);
		if (s) {
			s->flags = (s->flags & SHRIKE_SOCK_OWNED) | SHRIKE_SOCK_ESTABLISHED |
				   SHRIKE_SOCK_ACCEPTED;
			s->audit_rule = 0;
			s->local_port = r.sport;
		} else {
			counter_inc(SHRIKE_CNT_NET_STORAGE_FAIL);
		}
		net_emit(&r, SHRIKE_REC_NET_ACCEPT);
		return 0;
	}

	if (newstate == TCP_CLOSE) {
		/* The end of a connection this sensor reported: the flow's counters. */
		struct tcp_sock *tp;

		s = tcp_state(ctx, s_k, false);
		if (!s || !(s->flags & SHRIKE_SOCK_ESTABLISHED)) {
			tcp_closed(ctx, s_k, s, oldstate);
			return 0;
		}
		s->flags &= ~SHRIKE_SOCK_ESTABLISHED;
		owner_from(&r, s);
		sk_endpoints(sk, &r);
		if (s->flags & SHRIKE_SOCK_ACCEPTED)
			r.flags |= SHRIKE_NET_INGRESS;
		r.cookie = tcp_cookie(s_k);
		/* tcp_set_state() releases the port before this tracepoint fires. */
		if (!r.sport)
			r.sport = s->local_port;
		/* The TCP socket behind the tracepoint's struct sock, as a pointer the verifier lets
		 * these loads through (a cast would not be: its type is struct sock). */
		tp = bpf_skc_to_tcp_sock(s_k);
		if (tp) {
			/* Data bytes put on the wire, retransmissions included: each byte once. */
			r.bytes_sent = tp->bytes_sent - tp->bytes_retrans;
			r.bytes_received = tp->bytes_received;
			/* A received FIN takes one sequence number, which bytes_received counts. */
			if (r.bytes_received && (BPF_CORE_READ_BITFIELD(sk, sk_shutdown) & RCV_SHUTDOWN))
				r.bytes_received -= 1;
			r.packets_sent = tp->segs_out;
			r.packets_received = tp->segs_in;
		}
		tcp_closed(ctx, s_k, s, oldstate);
		net_emit(&r, SHRIKE_REC_NET_CLOSE);
		return 0;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Sockets older than the agent */

/* Two passes, run once at start, after the hooks are attached:
 *
 *   1. iter/task_file: every open file of every task; a socket file records its struct sock's
 *      address -> the task holding it in net_seed (the first holder wins when several share
 *      it). Only scalars are read here (the address comes from a probe read), so no verifier
 *      needs to trust the pointer: kernels differ on whether `socket->sk` is a trusted field
 *      (one build of 6.18.44 refused bpf_sk_storage_get on it as an untrusted pointer).
 *   2. iter/tcp and iter/udp: every TCP and UDP socket in the kernel's tables, as a pointer the
 *      verifier accepts for socket storage on every kernel that has these iterators; a socket
 *      found in net_seed and not yet owned gets its owner recorded, and an established TCP
 *      socket is marked so that its close is reported.
 *
 * Each pass is its own program: one refused by a kernel costs this capability only. */
struct seed_owner {
	__u64 exec_id;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, __u64); /* the struct sock's address */
	__type(value, struct seed_owner);
} net_seed SEC(".maps");

SEC("iter/task_file")
int net_seed_tasks(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct seed_owner owner = {};
	struct shrike_proc *proc;
	struct socket *sock;
	struct sock *sk;
	__u64 key;
	__u16 family;
	umode_t mode;
	long err;

	fault_point(cfg_fault_refuse, SHRIKE_NET_FAULT_OLDER_SOCKETS);
	if (!task || !file)
		return 0;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & SHRIKE_S_IFMT) != SHRIKE_S_IFSOCK)
		return 0;
	sock = BPF_CORE_READ(file, private_data);
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != SHRIKE_AF_INET && family != SHRIKE_AF_INET6)
		return 0;
	owner.tgid = BPF_CORE_READ(task, tgid);
	proc = proc_lookup(owner.tgid);
	owner.exec_id = proc ? proc->exec_id : 0;
	key = (__u64)sk;
	err = bpf_map_update_elem(&net_seed, &key, &owner, BPF_NOEXIST);
	if (err && err != -EEXIST)
		counter_inc(SHRIKE_CNT_NET_SEED_FULL);
	return 0;
}

/* Records the seeded owner of one socket. `sk` is a pointer the verifier accepts for socket
 * storage; `key` its address. */
static __always_inline void seed_socket(struct sock *sk, __u64 key, __u8 protocol)
{
	struct seed_owner *owner;

	owner = bpf_map_lookup_elem(&net_seed, &key);
	if (owner)
		sock_seeded(sk, key, protocol, owner->tgid, owner->exec_id);
}

SEC("iter/tcp")
int net_seed_tcp(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;
	__u64 key = 0;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc); /* NULL for request and time-wait sockets */
	if (!tp)
		return 0;
	bpf_probe_read_kernel(&key, sizeof(key), &ctx->sk_common);
	seed_socket((struct sock *)tp, key, IPPROTO_TCP);
	return 0;
}

SEC("iter/udp")
int net_seed_udp(struct bpf_iter__udp *ctx)
{
	struct udp_sock *udp = ctx->udp_sk;
	__u64 key = 0;

	if (!udp)
		return 0;
	bpf_probe_read_kernel(&key, sizeof(key), &ctx->udp_sk);
	seed_socket((struct sock *)udp, key, IPPROTO_UDP);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* DNS over UDP: copy the message to user space */

static __always_inline void dns_skb(struct __sk_buff *skb, bool ingress)
{
	struct pkt p = {};
	__u32 zero = 0;
	__u64 len, total; /* 64-bit, so the bounds checked are the bounds passed */
	struct dns_scratch *d;
	struct bpf_sock *sk;
	struct shrike_net_sock *s = 0;
	__u16 proto = bpf_ntohs(skb->protocol);

	/* DNS is read from UDP only: a packet of a TCP socket (or of a request or time-wait
	 * socket, TCP's too) returns before a byte of it is read. Only TCP's: a raw socket's
	 * packet may carry UDP to port 53 and is still parsed. */
	sk = skb->sk;
	if (sk) {
		sk = bpf_sk_fullsock(sk);
		if (!sk || sk->protocol == IPPROTO_TCP)
			return;
	}
	if (parse_ip(skb, 0, proto, &p) || !p.ports_known || p.proto != IPPROTO_UDP)
		return;
	if (ingress ? p.sport != DNS_PORT : p.dport != DNS_PORT)
		return;
	if (p.l4_len < 8 + 12) /* UDP header + DNS header */
		return;
	d = bpf_map_lookup_elem(&net_dns_scratch, &zero);
	if (!d) {
		counter_inc(SHRIKE_CNT_SCRATCH_FAIL);
		return;
	}
	__builtin_memset(&d->rec, 0, sizeof(d->rec));
	total = p.l4_len - 8;
	len = total;
	if (len > SHRIKE_NET_DNS_MAX) {
		len = SHRIKE_NET_DNS_MAX;
		d->rec.flags |= SHRIKE_NET_DNS_TRUNCATED;
		counter_inc(SHRIKE_CNT_NET_DNS_TRUNCATED);
	}
	/* Give the verifier a length it can prove is 1..SHRIKE_NET_DNS_MAX (older verifiers do
	 * not narrow a range on "!= 0"; a mask and an add they do follow). */
	if (len < 1)
		return;
	asm volatile("" : "+r"(len));
	len = ((len - 1) & (SHRIKE_NET_DNS_MAX - 1)) + 1;
	if (bpf_skb_load_bytes(skb, p.l4_off + 8, d->data, len))
		return;

	if (sk)
		s = bpf_sk_storage_get(&net_socks, sk, 0, 0);
	s = dns_owner(s, ingress ? p.dport : p.sport);
	if (s && (s->flags & SHRIKE_SOCK_OWNED)) {
		d->rec.hdr.pid = s->pid;
		d->rec.hdr.tid = s->tid;
		d->rec.hdr.exec_id = s->exec_id;
	} else {
		d->rec.flags |= SHRIKE_NET_OWNER_UNKNOWN;
		counter_inc(SHRIKE_CNT_NET_NO_OWNER);
	}
	d->rec.cookie = bpf_get_socket_cookie(skb);
	d->rec.family = p.family;
	d->rec.protocol = IPPROTO_UDP;
	if (ingress) {
		d->rec.flags |= SHRIKE_NET_DNS_INGRESS;
		__builtin_memcpy(d->rec.saddr, p.daddr, 16);
		__builtin_memcpy(d->rec.daddr, p.saddr, 16);
		d->rec.sport = p.dport;
		d->rec.dport = p.sport;
	} else {
		__builtin_memcpy(d->rec.saddr, p.saddr, 16);
		__builtin_memcpy(d->rec.daddr, p.daddr, 16);
		d->rec.sport = p.sport;
		d->rec.dport = p.dport;
	}
	d->rec.len = len;
	d->rec.total = total > 0xffff ? 0xffff : total;
	d->rec.hdr.kind = SHRIKE_REC_NET_DNS;
	d->rec.hdr.size = sizeof(d->rec) + len;
	d->rec.hdr.ktime_ns = bpf_ktime_get_boot_ns();
	if (d->rec.hdr.size > sizeof(*d))
		return;
	emit_record(d, d->rec.hdr.size);
}

SEC("cgroup_skb/egress")
int net_skb_egress(struct __sk_buff *skb)
{
	fault_point(cfg_fault_refuse, SHRIKE_NET_FAULT_DNS);
	dns_skb(skb, false);
	return 1;
}

SEC("cgroup_skb/ingress")
int net_skb_ingress(struct __sk_buff *skb)
{
	fault_point(cfg_fault_refuse, SHRIKE_NET_FAULT_DNS);
	dns_skb(skb, true);
	return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* tc ingress: drop by source CIDR, destination port, protocol */

SEC("tc")
int net_tc_ingress(struct __sk_buff *skb)
{
	struct pkt p = {};
	struct rule_check c = {};
	__u8 key[16];
	struct tc_seen_key seen = {};
	__u64 now, *last;
	__u16 proto = bpf_ntohs(skb->protocol);

	if (parse_ip(skb, ETH_HLEN, proto, &p))
		return TC_PASS;
	c.dir = SHRIKE_NET_DIR_INGRESS;
	c.proto = p.proto;
	c.port = p.dport;
	c.port_known = p.ports_known;
	rule_addr(key, p.family, p.saddr);
	if (rules_check(&c, key, false) != 1)
		return TC_PASS;
	counter_inc(SHRIKE_CNT_NET_TC_DROPPED);

	/* One event per second per source, port and protocol; the rest are counted. */
	__builtin_memcpy(seen.addr, p.saddr, 16);
	seen.port = p.dport;
	seen.protocol = p.proto;
	now = bpf_ktime_get_boot_ns();
	last = bpf_map_lookup_elem(&net_tc_seen, &seen);
	if (last && now - *last < NSEC_PER_SEC) {
		counter_inc(SHRIKE_CNT_NET_TC_NOT_REPORTED);
		return TC_ACT_SHOT;
	}
	bpf_map_update_elem(&net_tc_seen, &seen, &now, BPF_ANY_FLAG);
	{
		struct shrike_net r = {};

		r.family = p.family;
		r.protocol = p.proto;
		__builtin_memcpy(r.saddr, p.daddr, 16);
		__builtin_memcpy(r.daddr, p.saddr, 16);
		r.sport = p.dport;
		r.dport = p.sport;
		r.result = -EPERM;
		r.flags = SHRIKE_NET_DENIED | SHRIKE_NET_INGRESS | SHRIKE_NET_TC |
			  SHRIKE_NET_OWNER_UNKNOWN;
		r.rule_index = c.rule_index;
		net_emit(&r, SHRIKE_REC_NET_ACCEPT);
	}
	return TC_ACT_SHOT;
}
