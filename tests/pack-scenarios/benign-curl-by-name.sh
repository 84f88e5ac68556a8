#!/bin/sh
# Benign: an installer fetched by host name into /tmp, inspected, and run with sh (the way
# vendors document their install scripts), from a web server on this host (its own name).
set -e
d=$(mktemp -d)
printf '#!/bin/sh\necho installing > /dev/null\n' > "$d/install.sh"
port=$((40000 + $$ % 10000))
# The vendor's web server: a python program of its own (not an ad-hoc `-m http.server`).
/usr/bin/python3 - "$d" "$port" > /dev/null 2>&1 <<'PY' &
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), handler).serve_forever()
PY
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
curl -fsS -o /tmp/install-$$.sh "http://$(hostname):$port/install.sh"
head -n 5 /tmp/install-$$.sh > /dev/null
sh /tmp/install-$$.sh
rm -f /tmp/install-$$.sh
kill "$srv"
rm -rf "$d"
