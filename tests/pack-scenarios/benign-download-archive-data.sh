#!/bin/sh
# Benign: a release tarball of data fetched with curl by host name, checked and unpacked with
# tar, and the system's own programs run on it; nothing the download wrote is executed.
set -e
d=$(mktemp -d)
mkdir -p "$d/src/share" && echo "config" > "$d/src/share/app.conf"
tar -C "$d/src" -czf "$d/release.tar.gz" share
port=$((37500 + $$ % 2000))
/usr/bin/python3 - "$d" "$port" > /dev/null 2>&1 <<'PY' &
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), handler).serve_forever()
PY
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
w=$(mktemp -d)
curl -fsS -o "$w/release.tar.gz" "http://$(hostname):$port/release.tar.gz"
sha256sum "$w/release.tar.gz" > /dev/null
tar -C "$w" -xzf "$w/release.tar.gz"
grep -q config "$w/share/app.conf"
kill "$srv"
rm -rf "$d" "$w"
