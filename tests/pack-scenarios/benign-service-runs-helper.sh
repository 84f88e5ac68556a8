#!/bin/sh
# Benign near-miss: a service listening on a loopback port runs a helper program directly (no
# shell, fixed arguments) for each request, as status endpoints and exporters do.
set -e
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/port" <<'PY' &
import socket, subprocess, sys
s = socket.socket()
s.bind(('127.0.0.1', 0))
s.listen()
open(sys.argv[1] + '.tmp', 'w').write(str(s.getsockname()[1]))
__import__('os').rename(sys.argv[1] + '.tmp', sys.argv[1])
conn, _ = s.accept()
conn.recv(1024)
conn.sendall(subprocess.run(['/usr/bin/date', '-u'], capture_output=True).stdout)
conn.close()
PY
server=$!
for _ in $(seq 50); do [ -s "$dir/port" ] && break; sleep 0.1; done
python3 - "$(cat "$dir/port")" <<'PY'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"status\n")
print(c.recv(4096).decode())
PY
wait "$server"
