#!/bin/sh
# T1003.007, after Atomic Red Team "Dump individual process memory with sh (Local)": find a
# target's stack in /proc/PID/maps and copy it out of /proc/PID/mem with dd.
set -e
sleep 30 &
victim=$!
out=$(mktemp)
range=$(awk '/\[stack\]/ {print $1; exit}' /proc/$victim/maps)
start=$((0x${range%-*})); end=$((0x${range#*-}))
dd if=/proc/$victim/mem of="$out" bs=4096 iflag=skip_bytes,count_bytes skip=$start \
   count=$((end - start)) 2>/dev/null || true
kill $victim
rm -f "$out"
