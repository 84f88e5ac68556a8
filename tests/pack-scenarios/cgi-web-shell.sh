#!/bin/sh
# T1505.003: a CGI web shell. python's http.server with --cgi serves a shell script that runs
# whatever the request asks (here: id), on loopback.
set -e
d=$(mktemp -d)
# http.server runs CGI scripts as nobody when started as root: they must be reachable.
chmod 755 "$d"
mkdir "$d/cgi-bin"
printf '#!/bin/sh\necho "Content-Type: text/plain"\necho\nid\nuname -a\n' > "$d/cgi-bin/cmd.sh"
chmod +x "$d/cgi-bin/cmd.sh"
port=$((39000 + $$ % 10000))
(cd "$d" && exec /usr/bin/python3 -m http.server --cgi --bind 127.0.0.1 "$port" > /dev/null 2>&1) &
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
curl -s -m 5 "http://127.0.0.1:$port/cgi-bin/cmd.sh?c=id" > /dev/null || true
sleep 0.5
kill "$srv"
rm -rf "$d"
