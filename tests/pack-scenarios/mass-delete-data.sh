#!/bin/sh
# T1485: a wiper deleting a data directory (150 files under /srv, made here first), and a file
# overwritten with zeros in place with dd (Atomic Red Team "Overwrite file with DD").
set -e
d=/srv/scn-$$
mkdir -p "$d"
i=0; while [ $i -lt 150 ]; do echo "row $i" > "$d/record-$i.db"; i=$((i + 1)); done
head -c 65536 /dev/urandom > "$d/archive.tar"
dd if=/dev/zero of="$d/archive.tar" bs=4096 count=16 conv=notrunc 2>/dev/null
rm -rf "$d"
