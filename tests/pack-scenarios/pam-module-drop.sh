#!/bin/sh
# T1556.003, after Atomic Red Team "Malicious PAM module": a module copied into the PAM module
# directory (a copy of pam_permit, which accepts any password), then removed.
set -e
src=$(ls /usr/lib/*/security/pam_permit.so /lib/*/security/pam_permit.so 2>/dev/null | head -n 1)
dir=$(dirname "$src")
cp "$src" "$dir/pam_scn_$$.so"
rm -f "$dir/pam_scn_$$.so"
