#!/bin/sh
# T1014: a BPF rootkit's first step (ebpfkit, TripleCross, boopkit): load a kprobe program with
# bpf(BPF_PROG_LOAD). The program (r0 = 0; exit) is loaded, never attached, and freed on exit.
set -e
python3 - <<'PY'
import ctypes, struct
libc = ctypes.CDLL(None, use_errno=True)
insns = struct.pack("<BBhi", 0xb7, 0, 0, 0) + struct.pack("<BBhi", 0x95, 0, 0, 0)
buf = ctypes.create_string_buffer(insns)
lic = ctypes.create_string_buffer(b"GPL")
log = ctypes.create_string_buffer(4096)
# union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, log_level, log_size,
# log_buf, kern_version, prog_flags, prog_name[16]
attr = struct.pack("<IIQQIIQII16s", 2, 2, ctypes.addressof(buf), ctypes.addressof(lic),
                   1, 4096, ctypes.addressof(log), 0, 0, b"scn_kprobe")
attr += b"\0" * (144 - len(attr))
a = ctypes.create_string_buffer(attr, len(attr))
fd = libc.syscall(321, 5, a, len(attr))  # SYS_bpf, BPF_PROG_LOAD
if fd >= 0:
    import os
    os.close(fd)
PY
