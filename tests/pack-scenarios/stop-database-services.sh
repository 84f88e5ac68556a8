#!/bin/sh
# T1489: the services a ransomware operator stops first (databases), disabled and masked
# under an empty alternate root so no real service changes, and a kill by name that finds
# nothing.
set -e
r=$(mktemp -d)
systemctl --root="$r" disable mysql.service > /dev/null 2>&1 || true
systemctl --root="$r" mask postgresql.service > /dev/null 2>&1 || true
killall -q -9 mongod 2>/dev/null || true
rm -rf "$r"
