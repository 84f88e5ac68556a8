/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The network sensor's per-socket state: who owns a socket and what has been reported about it.
 *
 * The main build keeps it in BPF socket storage (net_socks), which every hook reaches: the
 * cgroup hooks, the TCP state tracepoint and the seeding iterators. The kernel clones a
 * listener's storage to the connections it accepts (BPF_F_CLONE): that is how an accepted
 * connection, seen in softirq, finds its owner.
 *
 * The legacy build runs on 5.10, where only the cgroup hooks have socket storage (tracing and
 * iterator programs get it in 5.11, the socket cookie in 5.12). There the TCP state tracepoint
 * and the iterators keep what they need in hash maps:
 *   - net_tcp_connects: a connect in flight, under the socket's cookie. The connect hook asks
 *     the kernel for the cookie, which assigns it to the socket, so the tracepoint reads it;
 *   - net_tcp_socks: a listening or established socket, under its address, until it reaches
 *     CLOSE;
 *   - net_ports: a listener's owner, under (network namespace, TCP, local port), which the
 *     connections it accepts look up, since they inherit no storage; and the owners of the UDP
 *     sockets found at start, under (0, UDP, local port), for the DNS hooks, which cannot read
 *     a socket's namespace.
 * Limits of the legacy way, all about attribution: a listener whose port listen() chose itself
 * (the port is assigned after the state change) names no owner for what it accepts; when
 * processes share a port with SO_REUSEPORT, the last to listen is named; an accepted connection
 * has no cookie (the kernel assigns one only when asked, and tracing programs cannot ask).
 *
 * The maps are declared in both builds (one skeleton serves both); the loader gives them one
 * entry in the main build. They are LRU maps, so an entry whose removal was missed (a connect
 * that failed before its SYN was sent) ages out.
 */
#ifndef SHRIKE_NET_SOCKS_H
#define SHRIKE_NET_SOCKS_H

#include "maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC | BPF_F_CLONE);
	__type(key, int);
	__type(value, struct shrike_net_sock);
} net_socks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64); /* the socket cookie */
	__type(value, struct shrike_net_sock);
} net_tcp_connects SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64); /* the struct sock's address */
	__type(value, struct shrike_net_sock);
} net_tcp_socks SEC(".maps");

struct net_port_key {
	__u64 netns; /* the namespace's struct net address; 0 for the UDP sockets found at start */
	__u16 port;  /* host order */
	__u16 protocol;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct net_port_key);
	__type(value, struct shrike_net_sock);
} net_ports SEC(".maps");

#ifdef SHRIKE_LEGACY
/* The address of the TCP state tracepoint's socket (its first argument) as a number: read from
 * the argument array, so that no verifier has to let a pointer become a map key. */
static __always_inline __u64 arg_sock_key(unsigned long long *ctx)
{
	__u64 key = 0;

	bpf_probe_read_kernel(&key, sizeof(key), &ctx[0]);
	return key;
}

static __always_inline struct net_port_key tcp_port_key(struct sock *sk)
{
	struct net_port_key k = {};

	k.netns = (__u64)BPF_CORE_READ(sk, __sk_common.skc_net.net);
	k.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	k.protocol = IPPROTO_TCP;
	return k;
}

/* net_tcp_socks[key], created empty when missing and `create`. */
static __always_inline struct shrike_net_sock *sock_entry(__u64 key, bool create)
{
	struct shrike_net_sock *s = bpf_map_lookup_elem(&net_tcp_socks, &key);
	struct shrike_net_sock fresh = {};

	if (s || !create)
		return s;
	bpf_map_update_elem(&net_tcp_socks, &key, &fresh, BPF_NOEXIST_FLAG);
	return bpf_map_lookup_elem(&net_tcp_socks, &key);
}
#endif

/* The cookie of the tracepoint's socket. The main build asks the kernel, which assigns one if
 * needed; the legacy build reads the one assigned, 0 when none has been. */
static __always_inline __u64 tcp_cookie(struct sock *sk)
{
#ifdef SHRIKE_LEGACY
	return BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
#else
	return bpf_get_socket_cookie(sk);
#endif
}

/* The state of the tracepoint's socket `sk` (ctx is the tracepoint's), created when `create`;
 * NULL when there is none or no room. */
static __always_inline struct shrike_net_sock *tcp_state(unsigned long long *ctx,
							 struct sock *sk, bool create)
{
#ifdef SHRIKE_LEGACY
	return sock_entry(arg_sock_key(ctx), create);
#else
	return bpf_sk_storage_get(&net_socks, sk, 0, create ? BPF_SK_STORAGE_GET_F_CREATE : 0);
#endif
}

/* The connect hook starts a TCP connect on the socket whose storage is `s`, whose outcome the
 * tracepoint reports: the legacy build files it under the cookie. */
static __always_inline void tcp_connect_started(struct shrike_net_sock *s, __u64 cookie)
{
#ifdef SHRIKE_LEGACY
	bpf_map_update_elem(&net_tcp_connects, &cookie, s, BPF_ANY_FLAG);
#endif
}

/* The state of a connect in flight on the tracepoint's socket; NULL when none was seen. */
static __always_inline struct shrike_net_sock *tcp_connecting(struct sock *sk, __u64 cookie)
{
#ifdef SHRIKE_LEGACY
	return bpf_map_lookup_elem(&net_tcp_connects, &cookie);
#else
	return bpf_sk_storage_get(&net_socks, sk, 0, 0);
#endif
}

/* The connect's outcome has been recorded in `s`: the legacy build moves an established
 * socket's state to its address and forgets the connect. `s` is not to be used after. */
static __always_inline void tcp_connect_done(unsigned long long *ctx, struct shrike_net_sock *s,
					     __u64 cookie)
{
#ifdef SHRIKE_LEGACY
	if (s->flags & SHRIKE_SOCK_ESTABLISHED) {
		__u64 key = arg_sock_key(ctx);

		bpf_map_update_elem(&net_tcp_socks, &key, s, BPF_ANY_FLAG);
	}
	bpf_map_delete_elem(&net_tcp_connects, &cookie);
#endif
}

/* The tracepoint's socket now listens, owned as `s` says: in the legacy build its port names
 * the owner of the connections it accepts. */
static __always_inline void tcp_listening(struct sock *sk, struct shrike_net_sock *s)
{
#ifdef SHRIKE_LEGACY
	struct net_port_key port = tcp_port_key(sk);

	if (port.port)
		bpf_map_update_elem(&net_ports, &port, s, BPF_ANY_FLAG);
#endif
}

/* The state of a connection a listener accepted (the tracepoint's socket), created: the main
 * build's is the listener's storage, which the kernel cloned; the legacy build's is new, owned
 * by the listener of its namespace and local port. */
static __always_inline struct shrike_net_sock *tcp_accepted(unsigned long long *ctx,
							    struct sock *sk)
{
#ifdef SHRIKE_LEGACY
	struct net_port_key port = tcp_port_key(sk);
	struct shrike_net_sock *listener = bpf_map_lookup_elem(&net_ports, &port);
	struct shrike_net_sock fresh = {};
	__u64 key = arg_sock_key(ctx);

	if (listener && (listener->flags & SHRIKE_SOCK_OWNED)) {
		fresh.pid = listener->pid;
		fresh.tid = listener->tid;
		fresh.exec_id = listener->exec_id;
		fresh.flags = SHRIKE_SOCK_OWNED;
	}
	bpf_map_update_elem(&net_tcp_socks, &key, &fresh, BPF_ANY_FLAG);
	return bpf_map_lookup_elem(&net_tcp_socks, &key);
#else
	return bpf_sk_storage_get(&net_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
#endif
}

/* The tracepoint's socket reached CLOSE from `oldstate`; `s` is its state (NULL if none). The
 * legacy build forgets it, and a listener's port when this listener is the one named there. */
static __always_inline void tcp_closed(unsigned long long *ctx, struct sock *sk,
				       struct shrike_net_sock *s, int oldstate)
{
#ifdef SHRIKE_LEGACY
	__u64 key = arg_sock_key(ctx);

	if (s && oldstate == TCP_LISTEN) {
		struct net_port_key port = tcp_port_key(sk);
		struct shrike_net_sock *named = bpf_map_lookup_elem(&net_ports, &port);

		if (named && named->pid == s->pid && named->exec_id == s->exec_id)
			bpf_map_delete_elem(&net_ports, &port);
	}
	bpf_map_delete_elem(&net_tcp_socks, &key);
#endif
}

/* A socket found at start (`sk` from the TCP or UDP iterator, `key` its address) is owned by
 * `owner`, unless a hook has named its owner since; an established TCP socket is marked so that
 * its close is reported. */
static __always_inline void sock_seeded(struct sock *sk, __u64 key, __u8 protocol, __u32 tgid,
					__u64 exec_id)
{
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);
#ifdef SHRIKE_LEGACY
	struct shrike_net_sock seeded = {};
	struct net_port_key port = {};

	seeded.pid = tgid;
	seeded.tid = tgid;
	seeded.exec_id = exec_id;
	seeded.flags = SHRIKE_SOCK_OWNED;
	if (protocol == IPPROTO_UDP) {
		port.port = BPF_CORE_READ(sk, __sk_common.skc_num);
		port.protocol = IPPROTO_UDP;
		bpf_map_update_elem(&net_ports, &port, &seeded, BPF_NOEXIST_FLAG);
		return;
	}
	if (state == TCP_LISTEN) {
		port = tcp_port_key(sk);
		bpf_map_update_elem(&net_ports, &port, &seeded, BPF_NOEXIST_FLAG);
	} else if (state == TCP_ESTABLISHED) {
		seeded.flags |= SHRIKE_SOCK_ESTABLISHED;
		seeded.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	} else {
		return;
	}
	bpf_map_update_elem(&net_tcp_socks, &key, &seeded, BPF_NOEXIST_FLAG);
#else
	struct shrike_net_sock *s =
		bpf_sk_storage_get(&net_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!s) {
		counter_inc(SHRIKE_CNT_NET_STORAGE_FAIL);
		return;
	}
	if (s->flags & SHRIKE_SOCK_OWNED)
		return;
	s->pid = tgid;
	s->tid = tgid;
	s->exec_id = exec_id;
	s->flags |= SHRIKE_SOCK_OWNED;
	if (protocol == IPPROTO_TCP && state == TCP_ESTABLISHED) {
		s->flags |= SHRIKE_SOCK_ESTABLISHED;
		s->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	}
#endif
}

/* The owner of a DNS datagram's socket: `s`, its socket storage, when that names one; else, in
 * the legacy build, the UDP socket found at start on the datagram's local port. */
static __always_inline struct shrike_net_sock *dns_owner(struct shrike_net_sock *s,
							 __u16 local_port)
{
#ifdef SHRIKE_LEGACY
	if (!s || !(s->flags & SHRIKE_SOCK_OWNED)) {
		struct net_port_key port = {};

		port.port = local_port;
		port.protocol = IPPROTO_UDP;
		return bpf_map_lookup_elem(&net_ports, &port);
	}
#endif
	return s;
}

#endif /* SHRIKE_NET_SOCKS_H */
