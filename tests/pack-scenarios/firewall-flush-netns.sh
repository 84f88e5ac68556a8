#!/bin/sh
# T1562.004, after Atomic Red Team "Stop/Start UFW firewall", "Disable iptables" and "Flush
# nftables": rules flushed and the INPUT policy opened, inside a private network namespace of
# this script's own, so the host's firewall is untouched.
set -e
unshare -n sh -c 'nft flush ruleset; iptables -F; iptables -P INPUT ACCEPT' 2>/dev/null || true
