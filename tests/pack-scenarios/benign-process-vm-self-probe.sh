#!/bin/sh
# Benign near-miss: a program probing its own memory with process_vm_readv(2) (a safe read that
# fails with EFAULT instead of crashing, as crash reporters and sanitizers do). No other process
# is read, so it is no access to another process's memory.
set -e
python3 - <<'PY'
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
class IoVec(ctypes.Structure):
    _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
f = libc.process_vm_readv
f.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
f.restype = ctypes.c_ssize_t
data = ctypes.create_string_buffer(b'probe me', 64)
buf = ctypes.create_string_buffer(64)
for address in (ctypes.addressof(data), 8):
    n = f(os.getpid(), ctypes.byref(IoVec(ctypes.addressof(buf), 64)), 1,
          ctypes.byref(IoVec(address, 64)), 1, 0)
    print(hex(address), 'readable' if n == 64 else 'not readable')
PY
