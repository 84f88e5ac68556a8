#!/bin/sh
# Benign: a reproducible release tarball: files stamped with SOURCE_DATE_EPOCH (touch -d @N),
# archived with fixed owner and mtime, checksummed, one file encrypted for the release bucket.
set -e
d=$(mktemp -d)
mkdir "$d/pkg"
echo 'hello' > "$d/pkg/README"
SOURCE_DATE_EPOCH=1700000000
touch -d "@$SOURCE_DATE_EPOCH" "$d/pkg/README"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 -C "$d" -cf "$d/pkg.tar" pkg
sha256sum "$d/pkg.tar" > /dev/null
openssl enc -aes-256-cbc -pbkdf2 -pass pass:release -in "$d/pkg.tar" -out "$d/pkg.tar.enc"
rm -rf "$d"
