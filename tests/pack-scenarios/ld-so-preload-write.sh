#!/bin/sh
# T1014 / T1574.006, after Atomic Red Team "dynamic-linker based rootkit (libprocesshider)":
# register a library in /etc/ld.so.preload. Only a comment is written, and the file is restored.
set -e
f=/etc/ld.so.preload
if [ -e "$f" ]; then cp -p "$f" "/root/.scn-preload.$$"; fi
echo '# /usr/local/lib/libprocesshider.so' >> "$f"
if [ -e "/root/.scn-preload.$$" ]; then mv "/root/.scn-preload.$$" "$f"; else rm -f "$f"; fi
