#!/bin/sh
# Benign near misses of timestomping: plain touch of a program (the current time, not a chosen
# one), a release tarball unpacked under /opt by tar (the archive's recorded times restored),
# and files copied with their times kept into /usr/local/lib by cp -p and install -p.
set -e
w=$(mktemp -d)
o=$(mktemp -d /opt/app-XXXXXX)
l=$(mktemp -d /usr/local/lib/app-XXXXXX)
p=$(mktemp /usr/local/bin/tool-XXXXXX)
trap 'rm -rf "$w" "$o" "$l" "$p"' EXIT
mkdir "$w/app-1.0" "$w/app-1.0/bin"
printf '#!/bin/sh\necho app\n' > "$w/app-1.0/bin/app"
echo 'app 1.0' > "$w/app-1.0/README"
chmod 755 "$w/app-1.0/bin/app"
tar -C "$w" --mtime=2023-11-14 -czf "$w/app-1.0.tar.gz" app-1.0
tar -C "$o" -xzf "$w/app-1.0.tar.gz"
cp -p "$w/app-1.0/README" "$l/README"
install -p -m 755 "$w/app-1.0/bin/app" "$l/app"
touch "$p"
touch -c "$p"
