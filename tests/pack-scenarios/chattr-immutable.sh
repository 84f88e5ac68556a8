#!/bin/sh
# T1222.002, after Atomic Red Team "chattr - Remove immutable file attribute" (and setting it,
# as miners do to protect their cron entries), plus a system file made world-writable.
set -e
f=$(mktemp /var/tmp/scn.XXXXXX)
chattr +i "$f" 2>/dev/null || true
chattr -i "$f" 2>/dev/null || true
rm -f "$f"
c=/etc/scn-$$.conf
echo 'x=1' > "$c"
chmod 0666 "$c"
rm -f "$c"
