#!/bin/sh
# T1571: netcat connecting to 31337 (a classic backdoor port) on loopback, where a bind shell
# would listen. Nothing listens, so the connection is refused.
set -e
nc -z -w 1 127.0.0.1 31337 2>/dev/null || true
