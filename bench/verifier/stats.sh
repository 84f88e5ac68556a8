#!/bin/bash
# The verifier's statistics for every program of the agent's BPF objects on this kernel: the
# time it took, the instructions it processed (the limit is 1,000,000) and its peak states, one
# program at a time (stats.c). Run as root after a release build (`cargo build --release`):
#
#   bench/verifier/stats.sh                     every program of every object (main build)
#   bench/verifier/stats.sh net                 one object
#   bench/verifier/stats.sh file sys_enter      chosen programs of one object
#   SHRIKE_BPF_BUILD=legacy bench/verifier/stats.sh ...   the legacy build's objects
#
# Programs this kernel cannot load (LSM or fentry where trampolines are refused) say why.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The newest build's directories (by their files: a directory's own time does not change when
# a rebuild rewrites them).
out=$(ls -t target/release/build/shrike-bpf-*/out/net.o 2>/dev/null | head -1 | xargs -r dirname)
libbpf=$(ls -t target/release/build/libbpf-sys-*/out/libbpf.a 2>/dev/null | head -1 | xargs -r dirname)
[ -n "$out" ] && [ -n "$libbpf" ] || { echo "no release build: run 'cargo build --release' first" >&2; exit 1; }
[ "${SHRIKE_BPF_BUILD:-main}" = legacy ] && out=$out/legacy
tool=target/verifier-stats
if [ ! -x "$tool" ] || [ bench/verifier/stats.c -nt "$tool" ]; then
  gcc -O1 -Wall -o "$tool" bench/verifier/stats.c -I"$libbpf/include" "$libbpf/libbpf.a" -lelf -lz
fi
objects=("$@")
programs=()
if [ ${#objects[@]} -eq 0 ]; then
  objects=(process net file protect)
elif [ ${#objects[@]} -gt 1 ]; then
  programs=("${objects[@]:1}")
  objects=("${objects[0]}")
fi
for o in "${objects[@]}"; do
  echo "== $o ($out/$o.o)"
  "$tool" "$out/$o.o" "${programs[@]}"
done
