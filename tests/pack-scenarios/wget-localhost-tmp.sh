#!/bin/sh
# T1105, after Atomic Red Team "Linux Download File and Run" with wget: a tool fetched from a
# local staging server into /tmp, made executable and run.
set -e
d=$(mktemp -d)
cp /bin/true "$d/tool"
port=$((42000 + $$ % 10000))
(cd "$d" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$port" > /dev/null 2>&1) &
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
wget -q -O /tmp/tool-$$ "http://localhost:$port/tool"
chmod +x /tmp/tool-$$
/tmp/tool-$$
rm -f /tmp/tool-$$
kill "$srv"
rm -rf "$d"
