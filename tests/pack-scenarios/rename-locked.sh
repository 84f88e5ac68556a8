#!/bin/sh
# T1486: ransomware's last step, every file renamed with an appended extension (.locked),
# done by one python process over a scratch directory.
set -e
d=$(mktemp -d)
python3 - "$d" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(30):
    p = os.path.join(d, f"invoice{i}.pdf")
    with open(p, "w") as f:
        f.write("x")
    os.rename(p, p + ".locked")
PY
rm -rf "$d"
