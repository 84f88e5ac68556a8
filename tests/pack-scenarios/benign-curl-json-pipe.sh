#!/bin/sh
# Benign: an API answer fetched with curl and piped into a JSON formatter and jq, and a local
# script piped into a shell with cat (what admins do every day); nothing downloaded is run.
set -e
d=$(mktemp -d)
printf '{"status": "ok", "items": [1, 2, 3]}\n' > "$d/health.json"
printf 'echo local > /dev/null\n' > "$d/local.sh"
port=$((36000 + $$ % 10000))
/usr/bin/python3 - "$d" "$port" > /dev/null 2>&1 <<'PY' &
import functools, http.server, sys
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), handler).serve_forever()
PY
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
curl -fsS "http://$(hostname):$port/health.json" | /usr/bin/python3 -m json.tool > /dev/null
curl -fsS "http://$(hostname):$port/health.json" | jq .status > /dev/null
cat "$d/local.sh" | sh
kill "$srv"
rm -rf "$d"
