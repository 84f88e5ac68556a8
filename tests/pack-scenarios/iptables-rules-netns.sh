#!/bin/sh
# T1562.004, after Atomic Red Team "Modify/delete iptables firewall rules" and "Open a local
# port through the firewall": a port opened and a rule deleted, in a private network
# namespace of this script's own.
set -e
unshare -n sh -c 'iptables -A OUTPUT -p tcp --dport 21 -j DROP; iptables -A INPUT -p tcp --dport 4444 -j ACCEPT; iptables -D OUTPUT -p tcp --dport 21 -j DROP' 2>/dev/null || true
