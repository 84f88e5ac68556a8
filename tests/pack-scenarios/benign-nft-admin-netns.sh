#!/bin/sh
# Benign: an admin builds and inspects a firewall with nft and iptables (the distribution's
# own tools, by path) in a private network namespace: tables, chains, an allow rule, listings.
set -e
ns=scn-fw-$$
ip netns add "$ns"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip netns exec "$ns" nft add table inet site
ip netns exec "$ns" nft add chain inet site input '{ type filter hook input priority 0; policy accept; }'
ip netns exec "$ns" nft add rule inet site input tcp dport 22 accept
ip netns exec "$ns" nft list ruleset > /dev/null
ip netns exec "$ns" iptables -L -n > /dev/null
