#!/bin/sh
# T1059.004, after Atomic Red Team "Command-Line Interface" (curl | bash): a script fetched from
# a loopback web server and piped into a shell.
set -e
d=$(mktemp -d)
printf 'echo installed > /dev/null\n' > "$d/install.sh"
port=$((32000 + $$ % 10000))
(cd "$d" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$port" > /dev/null 2>&1) &
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
sh -c "curl -s http://127.0.0.1:$port/install.sh | sh"
kill "$srv"
rm -rf "$d"
