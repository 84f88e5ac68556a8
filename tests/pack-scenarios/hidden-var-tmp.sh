#!/bin/sh
# T1564.001, after Atomic Red Team "Create a hidden file in a hidden directory".
set -e
d=/var/tmp/.hidden-directory-$$
mkdir "$d"
echo 'T1564.001' > "$d/.hidden-file"
rm -rf "$d"
