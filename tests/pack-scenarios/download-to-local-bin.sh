#!/bin/sh
# T1105, a tool planted where admins keep their own programs: wget fetches a binary from a
# loopback web server by host name into /usr/local/sbin, it is made executable and run, then
# removed. Nothing about the place or the URL is unusual; only who wrote the file is.
set -e
d=$(mktemp -d)
cp /bin/true "$d/netmon"
port=$((34000 + $$ % 10000))
(cd "$d" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$port" > /dev/null 2>&1) &
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
target=/usr/local/sbin/netmon-$$
wget -q -O "$target" "http://localhost:$port/netmon"
chmod 755 "$target"
"$target" --version
rm -f "$target"
kill "$srv"
rm -rf "$d"
