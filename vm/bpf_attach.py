#!/usr/bin/env python3
"""Attaches a pinned BPF tracing or LSM program and pins the link, for
vm/selftest.sh only (bpftool 7.1 on Debian 12 can load such programs but not
attach them). Usage: bpf_attach.py PINNED_PROG PINNED_LINK
Removing PINNED_LINK (rm) detaches the program again."""
import ctypes
import os
import sys

SYS_BPF = 321  # x86_64
BPF_OBJ_PIN, BPF_OBJ_GET, BPF_RAW_TRACEPOINT_OPEN = 6, 7, 17

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long


class ObjAttr(ctypes.Structure):
    _fields_ = [("pathname", ctypes.c_uint64), ("bpf_fd", ctypes.c_uint32),
                ("file_flags", ctypes.c_uint32), ("pad", ctypes.c_uint8 * 112)]


class RawTpAttr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_uint64), ("prog_fd", ctypes.c_uint32),
                ("pad", ctypes.c_uint8 * 116)]


def bpf(cmd, attr, what):
    fd = libc.syscall(SYS_BPF, cmd, ctypes.byref(attr), ctypes.sizeof(attr))
    if fd < 0:
        err = ctypes.get_errno()
        sys.exit(f"bpf_attach: {what} failed: {os.strerror(err)} (errno {err})")
    return fd


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    prog_path = ctypes.create_string_buffer(sys.argv[1].encode())
    link_path = ctypes.create_string_buffer(sys.argv[2].encode())
    prog_fd = bpf(BPF_OBJ_GET, ObjAttr(pathname=ctypes.addressof(prog_path)),
                  f"opening {sys.argv[1]}")
    link_fd = bpf(BPF_RAW_TRACEPOINT_OPEN, RawTpAttr(name=0, prog_fd=prog_fd),
                  f"attaching {sys.argv[1]}")
    bpf(BPF_OBJ_PIN, ObjAttr(pathname=ctypes.addressof(link_path), bpf_fd=link_fd),
        f"pinning the link at {sys.argv[2]}")
    print(f"bpf_attach: {sys.argv[1]} attached, link pinned at {sys.argv[2]}")


main()
