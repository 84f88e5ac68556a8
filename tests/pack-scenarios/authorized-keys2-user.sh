#!/bin/sh
# T1098.004, after Atomic Red Team "Modify SSH Authorized Keys": a key planted in a user's
# authorized_keys2 with sed -i (a rename into place), in a scratch home.
set -e
h=$(mktemp -d /home/scn.XXXXXX)
mkdir -p "$h/.ssh"
echo '# keys' > "$h/.ssh/authorized_keys2"
sed -i '$ a ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHNjZW5hcmlvb25seXNjZW5hcmlvb25seXNjZW5hcmlv scn' \
  "$h/.ssh/authorized_keys2"
rm -rf "$h"
