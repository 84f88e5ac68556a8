#!/bin/sh
# T1059.004, after Atomic Red Team "Command-Line Interface" (curl | bash) written as a step of a
# script rather than a `sh -c` line: the fetched commands go straight into bash's stdin.
set -e
d=$(mktemp -d)
printf 'echo stage two > /dev/null\n' > "$d/setup"
port=$((35000 + $$ % 10000))
(cd "$d" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$port" > /dev/null 2>&1) &
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
curl -fsS "http://127.0.0.1:$port/setup" | bash
kill "$srv"
rm -rf "$d"
