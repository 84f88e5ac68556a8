/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * The network family's deny rules in the kernel: the maps user space writes (an LPM trie of
 * CIDRs whose values are the rule slots containing them, the rules by slot, and the config word
 * that names the active generation; see crates/bpf/src/net/rules.rs) and the matching every
 * hook runs — the trie lookup, then each candidate slot checked for direction, port, protocol
 * and scope in a bpf_loop (in the legacy build, a loop of global-function steps). Included by
 * bpf/net.bpf.c only.
 */
#ifndef SHRIKE_NET_RULES_H
#define SHRIKE_NET_RULES_H

#include "maps.h"
#include "lineage.h"
#include "net.h"

/* Deny rules: CIDR -> the rule slots whose CIDR contains it, per generation. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 2 * SHRIKE_NET_RULES_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct shrike_net_lpm_key);
	__type(value, struct shrike_net_match);
} net_lpm SEC(".maps");

/* The rules themselves: slot + gen * SHRIKE_NET_RULES_MAX. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2 * SHRIKE_NET_RULES_MAX);
	__type(key, __u32);
	__type(value, struct shrike_net_rule);
} net_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct shrike_net_cfg);
} net_cfg SEC(".maps");

/* ------------------------------------------------------------------------------------------ */
/* Rule matching */

struct rule_check {
	__u64 slots[SHRIKE_NET_RULES_MAX / 64];
	__u64 bin_hash; /* the process's executable: procs.path_hash */
	__u64 anc[SHRIKE_ANCESTRY]; /* its ancestors' executables, nearest first: procs.anc_path */
	__u32 anc_count;	    /* anc[] filled */
	__u32 gen;
	__u16 port;
	__u8 dir;
	__u8 proto;
	__u8 port_known; /* 0 for a fragment without its transport header */
	__u8 hit;	 /* 1: a deny rule matched; 2: only an audit rule matched */
	__u16 rule_index;
};

/* The index of x's lowest set bit (x != 0): the bits below it, counted without a branch. The
 * binary search this replaces gave the verifier one path per bit, each with the slot a known
 * constant, inside the rule loop: 6.18 took ~0.85 s to verify each connect, sendmsg and bind
 * program (peak 32,000 states); one path takes ~4 ms. */
static __always_inline __u32 ctz64(__u64 x)
{
	__u64 v = (x & -x) - 1;

	v = v - ((v >> 1) & 0x5555555555555555ULL);
	v = (v & 0x3333333333333333ULL) + ((v >> 2) & 0x3333333333333333ULL);
	v = (v + (v >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (v * 0x0101010101010101ULL) >> 56;
}

/* Takes the lowest set slot out of c->slots; returns it, or -1 when none is left. */
static __always_inline int next_slot(struct rule_check *c)
{
	__u64 bits;

	if (c->slots[0]) {
		bits = c->slots[0];
		c->slots[0] = bits & (bits - 1);
		return ctz64(bits);
	}
	if (c->slots[1]) {
		bits = c->slots[1];
		c->slots[1] = bits & (bits - 1);
		return 64 + ctz64(bits);
	}
	if (c->slots[2]) {
		bits = c->slots[2];
		c->slots[2] = bits & (bits - 1);
		return 128 + ctz64(bits);
	}
	if (c->slots[3]) {
		bits = c->slots[3];
		c->slots[3] = bits & (bits - 1);
		return 192 + ctz64(bits);
	}
	return -1;
}

/* One rule slot; returns 1 to stop the loop. `in_task`: the hook runs in a process's context
 * (false at tc, where cgroup and binary scopes cannot be decided and never match). */
static __always_inline long rule_step(struct rule_check *c, bool in_task)
{
	int slot = next_slot(c);
	__u32 key;
	struct shrike_net_rule *r;

	if (slot < 0)
		return 1;
	key = (__u32)slot + (c->gen ? SHRIKE_NET_RULES_MAX : 0);
	r = bpf_map_lookup_elem(&net_rules, &key);
	if (!r) {
		counter_inc(SHRIKE_CNT_NET_RULE_MISS);
		return 0;
	}
	if (!(r->direction & c->dir))
		return 0;
	if (r->protocol && r->protocol != c->proto)
		return 0;
	if (c->port_known) {
		if (c->port < r->port_lo || c->port > r->port_hi)
			return 0;
	} else if (r->port_lo != 0 || r->port_hi != 0xffff) {
		return 0;
	}
	switch (r->scope) {
	case SHRIKE_NET_SCOPE_HOST:
		break;
	case SHRIKE_NET_SCOPE_BINARY:
		if (!in_task || !c->bin_hash || c->bin_hash != r->scope_id)
			return 0;
		break;
	case SHRIKE_NET_SCOPE_ANCESTOR: {
		bool found = false;

		if (!in_task)
			return 0;
		for (int i = 0; i < SHRIKE_ANCESTRY; i++) {
			if (i >= c->anc_count)
				break;
			if (c->anc[i] == r->scope_id) {
				found = true;
				break;
			}
		}
		if (!found)
			return 0;
		break;
	}
	case SHRIKE_NET_SCOPE_CGROUP:
		/* scope_dev holds the cgroup's level in the hierarchy (the rule covers the
		 * cgroup and everything below it), or ~0: the process's own cgroup only. */
		if (!in_task)
			return 0;
		if (r->scope_dev == 0xffffffff) {
			if (bpf_get_current_cgroup_id() != r->scope_id)
				return 0;
		} else if (bpf_get_current_ancestor_cgroup_id(r->scope_dev) != r->scope_id) {
			return 0;
		}
		break;
	default:
		return 0;
	}
	if (r->flags & SHRIKE_NET_RULE_AUDIT) {
		if (!c->hit) {
			c->hit = 2;
			c->rule_index = r->index;
		}
		return 0; /* a deny rule further on wins over an audit rule */
	}
	c->hit = 1;
	c->rule_index = r->index;
	return 1;
}

/* The legacy build's copy of the check (see rules_check); unused by the main build. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rule_check);
} rule_check_scratch SEC(".maps");

#ifndef SHRIKE_LEGACY
static long rule_step_task(__u32 i, void *ctx)
{
	return rule_step(ctx, true);
}

static long rule_step_tc(__u32 i, void *ctx)
{
	return rule_step(ctx, false);
}
#else
/* No bpf_loop: a global function (checked once) takes each step; on 5.10 it may take scalars
 * only, so the check it works on is this CPU's rule_check_scratch. One per context, as in the
 * main build: tc programs may not call the cgroup helpers the task scopes use. */
static __always_inline int rule_step_scratch(bool in_task)
{
	__u32 zero = 0;
	struct rule_check *c = bpf_map_lookup_elem(&rule_check_scratch, &zero);

	if (!c)
		return 1;
	return rule_step(c, in_task) != 0;
}

__noinline int rule_step_task_global(__u32 unused)
{
	return rule_step_scratch(true);
}

__noinline int rule_step_tc_global(__u32 unused)
{
	return rule_step_scratch(false);
}
#endif

/* Runs the active rules of direction c->dir against addr (IPv6 or v4-mapped). Returns c->hit. */
static __always_inline int rules_check(struct rule_check *c, const __u8 *addr, bool in_task)
{
	__u32 zero = 0;
	struct shrike_net_cfg *cfg = bpf_map_lookup_elem(&net_cfg, &zero);
	struct shrike_net_lpm_key key = {};
	struct shrike_net_match *m;

	if (!cfg || !(cfg->directions & c->dir))
		return 0;
	key.prefixlen = 8 + 128;
	key.gen = cfg->gen;
	__builtin_memcpy(key.addr, addr, 16);
	m = bpf_map_lookup_elem(&net_lpm, &key);
	if (!m)
		return 0;
	__builtin_memcpy(c->slots, m->slots, sizeof(c->slots));
	c->gen = key.gen;
#ifdef SHRIKE_LEGACY
	{
		struct rule_check *s = bpf_map_lookup_elem(&rule_check_scratch, &zero);

		if (!s)
			return 0;
		*s = *c;
		for (__u32 i = 0; i < SHRIKE_NET_RULES_MAX; i++)
			if (in_task ? rule_step_task_global(i) : rule_step_tc_global(i))
				break;
		*c = *s;
	}
#else
	if (in_task)
		bpf_loop(SHRIKE_NET_RULES_MAX, rule_step_task, c, 0);
	else
		bpf_loop(SHRIKE_NET_RULES_MAX, rule_step_tc, c, 0);
#endif
	return c->hit;
}

/* ------------------------------------------------------------------------------------------ */
/* Addresses */

static __always_inline void v4_mapped(__u8 out[16], __u32 addr_be)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(&out[12], &addr_be, 4);
}

/* An address as the rule trie keys it: IPv6, or IPv4 mapped. */
static __always_inline void rule_addr(__u8 out[16], __u16 family, const __u8 addr[16])
{
	if (family == SHRIKE_AF_INET) {
		__u32 a;

		__builtin_memcpy(&a, addr, 4);
		v4_mapped(out, a);
	} else {
		__builtin_memcpy(out, addr, 16);
	}
}

#endif /* SHRIKE_NET_RULES_H */
