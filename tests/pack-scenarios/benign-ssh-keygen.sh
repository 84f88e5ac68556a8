#!/bin/sh
# Benign: an admin making a deploy key with ssh-keygen, printing its public half and
# fingerprint, and removing it.
set -e
d=$(mktemp -d)
ssh-keygen -q -t ed25519 -N '' -C deploy@build -f "$d/deploy_key"
ssh-keygen -y -f "$d/deploy_key" > /dev/null
ssh-keygen -l -f "$d/deploy_key.pub" > /dev/null
rm -rf "$d"
