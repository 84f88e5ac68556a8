#!/bin/sh
# T1571, after Atomic Red Team "Testing usage of uncommonly used port": a shell connecting to
# port 31337 of this host's own address (the traffic stays on the machine).
set -e
ip=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1 | head -n 1)
[ -n "$ip" ] || { echo "no global IPv4 address on this host" >&2; exit 1; }
bash -c "echo > /dev/tcp/$ip/31337" 2>/dev/null || true
