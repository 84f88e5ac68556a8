#!/bin/sh
# T1055.009: injection through /proc/PID/mem, no ptrace call: open the victim's mem file for
# writing, seek to an address from its maps and overwrite eight bytes (python here; the same
# works with dd conv=notrunc). The bytes land at the low, unused end of its stack mapping.
set -e
sleep 30 &
victim=$!
sleep 0.2
python3 - "$victim" <<'PY'
import os, sys
pid = int(sys.argv[1])
with open('/proc/%d/maps' % pid) as maps:
    low = next(int(l.split('-')[0], 16) for l in maps if '[stack]' in l)
fd = os.open('/proc/%d/mem' % pid, os.O_RDWR)
os.lseek(fd, low, os.SEEK_SET)
print('wrote', os.write(fd, b'\x90' * 8), 'bytes')
os.close(fd)
PY
kill "$victim" 2>/dev/null || true
