#!/bin/sh
# Benign: a build tree of 400 files under /tmp removed with rm -rf, and a batch of renames in it
# (a build moving objects into place), as CI runners do between jobs.
set -e
d=$(mktemp -d)
i=0; while [ $i -lt 400 ]; do echo "$i" > "$d/obj$i.o"; i=$((i + 1)); done
i=0; while [ $i -lt 40 ]; do mv "$d/obj$i.o" "$d/obj$i.o.bak"; i=$((i + 1)); done
rm -rf "$d"
