/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The network family's part of the kernel <-> user contract: socket and DNS records, the
 * per-socket state the sensor keeps, and the deny-rule maps user space fills.
 *
 * Record kinds 300-399 and counters 32-47 (enum shrike_record_kind / enum shrike_counter in
 * shrike_abi.h). Decoded in crates/bpf/src/decode/net.rs; the rule maps are written by
 * crates/bpf/src/net/ (must match this file).
 */
#ifndef SHRIKE_NET_H
#define SHRIKE_NET_H

enum shrike_net_limits {
	SHRIKE_NET_RULES_MAX = 256,   /* deny rules per generation */
	SHRIKE_NET_DNS_MAX = 512,     /* DNS message bytes carried per record */
	SHRIKE_NET_IP6_EXT_MAX = 6,   /* IPv6 extension headers walked before giving up */
};

/* shrike_net.flags */
enum shrike_net_flags {
	SHRIKE_NET_DENIED = 1 << 0,	   /* a deny rule refused the action (result -EPERM) */
	SHRIKE_NET_AUDIT = 1 << 1,	   /* an audit rule matched: reported, not refused */
	SHRIKE_NET_OWNER_UNKNOWN = 1 << 2, /* no process was recorded for the socket */
	SHRIKE_NET_INGRESS = 1 << 3,	   /* the peer initiated (accept, inbound drop) */
	SHRIKE_NET_TC = 1 << 4,		   /* an inbound packet dropped at tc: no socket */
};

/* shrike_net_rule.direction: which hooks a rule applies to (a bit set). */
enum shrike_net_direction {
	SHRIKE_NET_DIR_EGRESS = 1 << 0,	 /* connect and UDP send: CIDR/port of the peer */
	SHRIKE_NET_DIR_BIND = 1 << 1,	 /* bind: CIDR/port of the local address */
	SHRIKE_NET_DIR_INGRESS = 1 << 2, /* tc ingress: CIDR of the source, port of the dest */
};

/* shrike_net_rule.scope */
enum shrike_net_scope {
	SHRIKE_NET_SCOPE_HOST = 0,   /* every process */
	SHRIKE_NET_SCOPE_BINARY = 1, /* processes running the executable whose path hash is scope_id */
	SHRIKE_NET_SCOPE_CGROUP = 2, /* processes in cgroup scope_id or below it */
	SHRIKE_NET_SCOPE_ANCESTOR = 3, /* processes one of whose SHRIKE_ANCESTRY nearest ancestor
					* images ran the executable whose path hash is scope_id */
};

/* shrike_net_rule.flags */
enum shrike_net_rule_flags {
	SHRIKE_NET_RULE_AUDIT = 1 << 0, /* report would_deny, do not refuse */
};

/*
 * Records SHRIKE_REC_NET_CONNECT / ACCEPT / BIND / LISTEN / CLOSE. Addresses are the
 * process's own end (saddr, sport) and the peer (daddr, dport), ports in host order; an IPv4
 * address is in the first 4 bytes (network order). hdr.pid/tid/exec_id name the process the
 * socket belongs to (for accept and close: the owner recorded for the socket).
 */
struct shrike_net {
	struct shrike_header hdr;
	__u64 cookie;		/* socket cookie: links the events of one socket */
	__u64 bytes_sent;	/* CLOSE: TCP payload bytes sent (retransmissions included) */
	__u64 bytes_received;	/* CLOSE: TCP payload bytes received */
	__u64 packets_sent;	/* CLOSE: TCP segments sent */
	__u64 packets_received; /* CLOSE: TCP segments received */
	__s32 result;		/* 0 or a negative errno (-EPERM when denied) */
	__u32 flags;		/* SHRIKE_NET_* */
	__u16 family;		/* AF_INET, AF_INET6 */
	__u16 protocol;		/* IPPROTO_TCP, IPPROTO_UDP */
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 rule_index;	/* the rule that denied or audited (DENIED / AUDIT) */
	__u16 _pad0;
	__u32 _pad1;
};

/* shrike_net_dns.flags */
enum shrike_net_dns_flags {
	SHRIKE_NET_DNS_INGRESS = 1 << 0,   /* received (a response), else sent (a query) */
	SHRIKE_NET_DNS_TRUNCATED = 1 << 1, /* the message was longer than SHRIKE_NET_DNS_MAX */
};

/* SHRIKE_REC_NET_DNS: a UDP datagram to or from port 53, followed by len bytes of it. */
struct shrike_net_dns {
	struct shrike_header hdr;
	__u64 cookie;
	__u32 flags;	/* SHRIKE_NET_DNS_* and SHRIKE_NET_OWNER_UNKNOWN */
	__u16 family;
	__u16 protocol;
	__u16 sport;	/* the process's end */
	__u16 dport;	/* the resolver's end */
	__u16 len;	/* bytes of DNS message that follow */
	__u16 total;	/* bytes of DNS message in the datagram */
	__u8 saddr[16];
	__u8 daddr[16];
};

/* What the sensor remembers about one socket (BPF socket storage, cloned to accepted
 * sockets). Not a record; in the contract because user space sizes nothing from it. */
enum shrike_net_sock_flags {
	SHRIKE_SOCK_OWNED = 1 << 0,	  /* pid/exec_id are set */
	SHRIKE_SOCK_CONNECTING = 1 << 1,  /* connect() seen: report the outcome */
	SHRIKE_SOCK_ESTABLISHED = 1 << 2, /* report the close */
	SHRIKE_SOCK_ACCEPTED = 1 << 3,
};

struct shrike_net_sock {
	__u64 exec_id;
	__u32 pid;
	__u32 tid;
	__u32 flags;	  /* SHRIKE_SOCK_* */
	__u16 last_port;  /* UDP: the last destination reported, to report each new one once */
	__u16 audit_rule; /* 1 + the index of an audit rule that matched, reported later; 0 none */
	__u8 last_addr[16];
	__u16 local_port; /* the local port while connected (the kernel clears it before CLOSE) */
	__u16 _pad0;
	__u32 _pad1;
};

/* Deny rules. Two generations: user space writes the inactive one completely, then switches
 * shrike_net_cfg.gen, so a new rule set takes effect all at once. */
struct shrike_net_lpm_key {
	__u32 prefixlen; /* 8 (the generation byte) + the CIDR's prefix over addr */
	__u8 gen;
	__u8 addr[16];	 /* IPv6, or IPv4 as ::ffff:a.b.c.d */
	__u8 _pad0[3];
};

/* The rules (slot numbers) whose CIDR contains the prefix: a bit per slot. */
struct shrike_net_match {
	__u64 slots[SHRIKE_NET_RULES_MAX / 64];
};

struct shrike_net_rule {
	__u64 scope_id;	  /* cgroup id, or FNV-1a 64 of the executable's path (procs.path_hash) */
	__u32 scope_dev;  /* cgroup: its level, or ~0 for the process's own cgroup only */
	__u32 scope;	  /* SHRIKE_NET_SCOPE_* */
	__u32 flags;	  /* SHRIKE_NET_RULE_* */
	__u16 index;	  /* the rule's number, carried in records */
	__u16 port_lo;	  /* inclusive range, host order; 0-65535 for any port */
	__u16 port_hi;
	__u8 direction;	  /* SHRIKE_NET_DIR_* */
	__u8 protocol;	  /* 0 any, IPPROTO_TCP, IPPROTO_UDP */
	__u32 _pad0;
};

/* The one entry of the net_cfg array. */
struct shrike_net_cfg {
	__u32 gen;	  /* the active generation, 0 or 1 */
	__u32 directions; /* SHRIKE_NET_DIR_* that have rules in the active generation */
};

/* Contract types of this family, for the skeleton (see SHRIKE_ABI_ANCHOR). */
/* Fault injection (bpf/lib/fault.h): the capability whose programs the verifier is made to
 * refuse, a bit each in the net object's cfg_fault_refuse. Test use only. */
enum shrike_net_fault {
	SHRIKE_NET_FAULT_DNS = 1 << 0,	      /* net_skb_egress, net_skb_ingress */
	SHRIKE_NET_FAULT_OLDER_SOCKETS = 1 << 1, /* net_seed_tasks */
};

struct shrike_net_anchor {
	struct shrike_net net;
	struct shrike_net_dns dns;
	struct shrike_net_sock sock;
	struct shrike_net_lpm_key lpm_key;
	struct shrike_net_match match;
	struct shrike_net_rule rule;
	struct shrike_net_cfg cfg;
	enum shrike_net_limits limits;
	enum shrike_net_flags flags;
	enum shrike_net_direction direction;
	enum shrike_net_scope scope;
	enum shrike_net_rule_flags rule_flags;
	enum shrike_net_dns_flags dns_flags;
	enum shrike_net_sock_flags sock_flags;
	enum shrike_net_fault fault;
};

#endif /* SHRIKE_NET_H */
