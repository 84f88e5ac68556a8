#!/bin/sh
# Benign: a nightly backup of /etc with tar that leaves out the credential files, then a
# listing of the archive.
set -e
out=$(mktemp /tmp/etc-backup.XXXXXX)
tar -C / -czf "$out" --exclude='etc/shadow*' --exclude='etc/gshadow*' \
    --exclude='etc/ssh/ssh_host_*_key' --exclude=etc/security/opasswd --exclude=etc/ssl/private \
    etc 2>/dev/null || true
tar -tzf "$out" > /dev/null
rm -f "$out"
