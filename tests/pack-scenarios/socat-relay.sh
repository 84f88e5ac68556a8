#!/bin/sh
# T1090, a port forwarder built with socat (TCP-LISTEN to TCP): traffic relayed through this host.
set -e
port=$((36000 + $$ % 10000))
socat "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" TCP:127.0.0.1:22 &
relay=$!
sleep 0.5
kill "$relay" 2>/dev/null || true
