#!/bin/sh
# T1048.003, after Atomic Red Team "Python3 http.server": a directory with loot exposed with
# `python3 -m http.server` and pulled with curl, on loopback.
set -e
d=$(mktemp -d)
cp /etc/hostname /etc/os-release "$d/"
port=$((41000 + $$ % 10000))
(cd "$d" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$port" > /dev/null 2>&1) &
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
curl -s "http://127.0.0.1:$port/os-release" > /dev/null || true
kill "$srv"
rm -rf "$d"
