#!/bin/sh
# Benign: an installer fetched by host name into /tmp, inspected, and run with sh (the way
# vendors document their install scripts), from a loopback web server.
set -e
d=$(mktemp -d)
printf '#!/bin/sh\necho installing > /dev/null\n' > "$d/install.sh"
port=$((40000 + $$ % 10000))
(cd "$d" && exec python3 -m http.server --bind 127.0.0.1 "$port" > /dev/null 2>&1) &
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
curl -fsS -o /tmp/install-$$.sh "http://localhost:$port/install.sh"
head -n 5 /tmp/install-$$.sh > /dev/null
sh /tmp/install-$$.sh
rm -f /tmp/install-$$.sh
kill "$srv"
rm -rf "$d"
