#!/bin/sh
# T1046, after Atomic Red Team "Port Scan" (bash /dev/tcp loop): probe 25 loopback ports
# without any scanner binary.
set -e
bash -c 'for p in $(seq 39900 39924); do (echo > /dev/tcp/127.0.0.1/$p) 2>/dev/null || true; done'
