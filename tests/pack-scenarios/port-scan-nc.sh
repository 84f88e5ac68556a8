#!/bin/sh
# T1046, after Atomic Red Team "Port Scan using nc": one `nc -z` per port.
set -e
for p in $(seq 39800 39819); do nc -z -w 1 127.0.0.1 "$p" 2>/dev/null || true; done
