#!/bin/sh
# T1505.003 / T1190: command injection into a service no list of server names knows. A copy of
# python called inventory-api listens on a loopback port and, for a request, runs the
# "host" parameter through a shell (the classic `ping -c1 $host` injection); the client sends
# `127.0.0.1; id; uname -a`.
set -e
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cp "$(readlink -f /usr/bin/python3)" "$dir/inventory-api"
"$dir/inventory-api" - "$dir/port" <<'PY' &
import socket, subprocess, sys
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen()
open(sys.argv[1] + '.tmp', 'w').write(str(s.getsockname()[1]))
__import__('os').rename(sys.argv[1] + '.tmp', sys.argv[1])
conn, _ = s.accept()
host = conn.recv(1024).decode().strip()
out = subprocess.run('echo checking ' + host, shell=True, capture_output=True).stdout
conn.sendall(out)
conn.close()
PY
server=$!
for _ in $(seq 50); do [ -s "$dir/port" ] && break; sleep 0.1; done
python3 - "$(cat "$dir/port")" <<'PY'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"127.0.0.1; id; uname -a\n")
print(c.recv(4096).decode())
PY
wait "$server"
