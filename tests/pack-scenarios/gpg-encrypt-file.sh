#!/bin/sh
# T1486, after Atomic Red Team "Encrypt files using gpg (FreeBSD/macOS/Linux)": a file
# encrypted non-interactively with the passphrase piped in, in a scratch directory.
set -e
d=$(mktemp -d)
echo 'quarterly figures' > "$d/report.txt"
echo 'passwd' | gpg --homedir "$d/.gnupg" --batch --yes --passphrase-fd 0 --cipher-algo AES-256 \
  -o "$d/report.txt.gpg" -c "$d/report.txt" 2>/dev/null
rm -rf "$d"
