#!/usr/bin/env bash
# Create .venv beside this repository (if missing) and install tangentcore in
# editable mode with its test dependencies and the CPU build of PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "setup: tangentcore needs Python 3.11 or newer; set PYTHON to one" >&2
    exit 2
fi
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements-dev.txt
