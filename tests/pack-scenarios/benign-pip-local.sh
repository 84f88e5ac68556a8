#!/bin/sh
# Benign: a local python package installed with pip into a fresh virtual environment (no index,
# no network), imported, and the environment removed.
set -e
d=$(mktemp -d)
mkdir -p "$d/src/scnpkg"
echo 'VALUE = 42' > "$d/src/scnpkg/__init__.py"
printf 'from setuptools import setup\nsetup(name="scnpkg", version="1.0", packages=["scnpkg"])\n' > "$d/src/setup.py"
/usr/bin/python3 -m venv "$d/venv"
"$d/venv/bin/pip" install -q --no-index --no-build-isolation "$d/src" > /dev/null 2>&1
"$d/venv/bin/python" -c 'import scnpkg; assert scnpkg.VALUE == 42'
rm -rf "$d"
