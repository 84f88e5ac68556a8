#!/bin/sh
# T1003.007 without /proc/PID/mem: the way mimipenguin-style dumpers and memory scrapers read a
# running process's secrets — find its stack in /proc/PID/maps, then copy it out with
# process_vm_readv(2) (python's ctypes here), in many small reads.
set -e
sleep 30 &
victim=$!
sleep 0.2
python3 - "$victim" <<'PY'
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
class IoVec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
f = libc.process_vm_readv
f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
f.restype = ctypes.c_ssize_t
pid = int(sys.argv[1])
with open('/proc/%d/maps' % pid) as maps:
    lo, hi = next([int(x, 16) for x in l.split()[0].split('-')] for l in maps if '[stack]' in l)
buf = ctypes.create_string_buffer(4096)
dump = bytearray()
for page in range(lo, hi, 4096):
    local, remote = IoVec(ctypes.addressof(buf), 4096), IoVec(page, 4096)
    if f(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) == 4096:
        dump += buf.raw
print('read', len(dump), 'bytes')
PY
kill "$victim" 2>/dev/null || true
