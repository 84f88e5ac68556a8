#!/bin/sh
# Benign: a reproducible release tarball: files stamped with SOURCE_DATE_EPOCH (touch -d @N),
# archived with fixed owner and mtime, compressed, checksummed and digested with openssl.
set -e
d=$(mktemp -d)
mkdir "$d/pkg"
echo 'hello' > "$d/pkg/README"
SOURCE_DATE_EPOCH=1700000000
touch -d "@$SOURCE_DATE_EPOCH" "$d/pkg/README"
tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 -C "$d" -cf "$d/pkg.tar" pkg
sha256sum "$d/pkg.tar" > /dev/null
gzip -n -9 "$d/pkg.tar"
openssl dgst -sha256 "$d/pkg.tar.gz" > /dev/null
rm -rf "$d"
