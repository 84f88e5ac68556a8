#!/bin/sh
# T1486, after Atomic Red Team "Encrypt files using openssl (Linux)" run over a directory:
# every file encrypted with a key on the command line and the original removed.
set -e
d=$(mktemp -d)
i=0; while [ $i -lt 8 ]; do echo "document $i" > "$d/doc$i.txt"; i=$((i + 1)); done
for f in "$d"/*.txt; do
  openssl enc -aes-256-cbc -pbkdf2 -pass pass:ransom -in "$f" -out "$f.enc" && rm -f "$f"
done
rm -rf "$d"
