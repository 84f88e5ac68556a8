/* SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0) */
/*
 * Packet parsing for the network family's cgroup_skb (DNS) and tc (ingress deny) programs:
 * IPv4 and IPv6 headers, a bounded walk over IPv6 extension headers, and the TCP/UDP ports
 * when the packet carries them. Included by bpf/net.bpf.c only.
 */
#ifndef SHRIKE_NET_PACKET_H
#define SHRIKE_NET_PACKET_H

#include <bpf/bpf_endian.h>

#include "net.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IP_MF 0x2000
#define IP_OFFSET 0x1FFF

/* ------------------------------------------------------------------------------------------ */
/* Packet parsing (cgroup_skb and tc) */

struct pkt {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 family;
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 ports_known;
	__u32 l4_off;
	__u32 l4_len; /* bytes from l4_off to the end of the IP payload */
};

struct ip6_ext {
	__u8 nexthdr;
	__u8 hdrlen;
};

/* Parses the IP header at `off` and, when present in this packet, the TCP/UDP ports.
 * Returns 0 when the packet is IPv4/IPv6 (ports_known says whether ports were found). */
static __always_inline int parse_ip(struct __sk_buff *skb, __u32 off, __u16 eth_proto,
				    struct pkt *p)
{
	__u8 proto;
	__u32 ip_end;

	if (eth_proto == ETH_P_IP) {
		struct iphdr ip;
		__u16 frag;

		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
			return -1;
		p->family = SHRIKE_AF_INET;
		__builtin_memcpy(p->saddr, &ip.saddr, 4);
		__builtin_memcpy(p->daddr, &ip.daddr, 4);
		proto = ip.protocol;
		frag = bpf_ntohs(ip.frag_off);
		ip_end = off + bpf_ntohs(ip.tot_len);
		off += ip.ihl * 4;
		if (frag & IP_OFFSET) {
			/* A later fragment: no transport header here. */
			counter_inc(SHRIKE_CNT_NET_PARSE_SKIPPED);
			p->proto = proto;
			return 0;
		}
	} else if (eth_proto == ETH_P_IPV6) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)))
			return -1;
		p->family = SHRIKE_AF_INET6;
		__builtin_memcpy(p->saddr, &ip6.saddr, 16);
		__builtin_memcpy(p->daddr, &ip6.daddr, 16);
		proto = ip6.nexthdr;
		ip_end = off + sizeof(ip6) + bpf_ntohs(ip6.payload_len);
		off += sizeof(ip6);
		/* Extension headers: walk a bounded number of them. */
		for (int i = 0; i < SHRIKE_NET_IP6_EXT_MAX; i++) {
			struct ip6_ext ext;

			if (proto != 0 && proto != 43 && proto != 60 && proto != 44 && proto != 51)
				break;
			if (bpf_skb_load_bytes(skb, off, &ext, sizeof(ext)))
				return -1;
			if (proto == 44) {
				__u16 frag_off;

				if (bpf_skb_load_bytes(skb, off + 2, &frag_off, sizeof(frag_off)))
					return -1;
				proto = ext.nexthdr;
				off += 8;
				if (bpf_ntohs(frag_off) & 0xfff8) {
					counter_inc(SHRIKE_CNT_NET_PARSE_SKIPPED);
					p->proto = proto;
					return 0;
				}
				continue;
			}
			off += proto == 51 ? (ext.hdrlen + 2) * 4 : (ext.hdrlen + 1) * 8;
			proto = ext.nexthdr;
		}
		if (proto == 0 || proto == 43 || proto == 60 || proto == 44 || proto == 51) {
			/* More extension headers than we walk: counted, ports unknown. */
			counter_inc(SHRIKE_CNT_NET_PARSE_SKIPPED);
			p->proto = proto;
			return 0;
		}
	} else {
		return -1;
	}
	p->proto = proto;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		__u16 ports[2];

		if (bpf_skb_load_bytes(skb, off, ports, sizeof(ports)))
			return 0;
		p->sport = bpf_ntohs(ports[0]);
		p->dport = bpf_ntohs(ports[1]);
		p->ports_known = 1;
		p->l4_off = off;
		p->l4_len = ip_end > off ? ip_end - off : 0;
	}
	return 0;
}

#endif /* SHRIKE_NET_PACKET_H */
