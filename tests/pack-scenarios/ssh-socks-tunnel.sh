#!/bin/sh
# T1090 / T1572, after Atomic Red Team "Connection Proxy" via ssh: a dynamic SOCKS proxy and a
# remote forward. Nothing listens on loopback's ssh port, so neither comes up.
set -e
ssh -o BatchMode=yes -o ConnectTimeout=2 -o StrictHostKeyChecking=no -N -D 1080 \
    nobody@127.0.0.1 2>/dev/null || true
ssh -o BatchMode=yes -o ConnectTimeout=2 -o StrictHostKeyChecking=no -fNR 8022:127.0.0.1:22 \
    nobody@127.0.0.1 2>/dev/null || true
