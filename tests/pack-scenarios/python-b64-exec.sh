#!/bin/sh
# T1140, after Atomic Red Team "Base64 decoding with Python": a payload decoded and executed
# inside a python one-liner.
set -e
python3 -c "import base64; exec(base64.b64decode('aW1wb3J0IG9zOyBvcy5nZXRwaWQoKQ=='))"
