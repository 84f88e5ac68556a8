#!/bin/sh
# T1105, a python download cradle (no curl or wget): urlretrieve from a loopback server.
set -e
d=$(mktemp -d)
echo data > "$d/tool"
port=$((38000 + $$ % 10000))
(cd "$d" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$port" > /dev/null 2>&1) &
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
python3 -c "import urllib.request; urllib.request.urlretrieve('http://127.0.0.1:$port/tool', '$d/got')"
kill "$srv"
rm -rf "$d"
