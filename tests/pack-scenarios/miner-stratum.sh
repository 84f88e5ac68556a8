#!/bin/sh
# T1496: a miner's command line (stratum URL, xmrig options, under an innocuous name) and its
# pool lookup (sent to 127.0.0.1:53, unanswered).
set -e
d=$(mktemp -d)
cp /bin/sleep "$d/.syslogd"
"$d/.syslogd" 0 --url stratum+tcp://pool.supportxmr.com:3333 --donate-level=1 -a rx/0 2>/dev/null || true
python3 - <<'PY'
import socket, struct
q = struct.pack(">HHHHHH", 7, 0x0100, 1, 0, 0, 0)
q += b"".join(bytes([len(l)]) + l for l in [b"pool", b"supportxmr", b"com"]) + b"\0" + struct.pack(">HH", 1, 1)
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(q, ("127.0.0.1", 53))
PY
rm -rf "$d"
