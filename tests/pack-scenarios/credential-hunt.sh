#!/bin/sh
# T1552.001, after Atomic Red Team "Find and Access Github Credentials" and "Extract passwords
# with grep": search the disk for credential files and for passwords in configuration.
set -e
find /home /root /etc /opt -xdev \( -name '.netrc' -o -name '*.pem' -o -name 'credentials' \
     -o -name '.git-credentials' \) 2>/dev/null > /dev/null || true
grep -r -i -l 'password' /etc 2>/dev/null > /dev/null || true
