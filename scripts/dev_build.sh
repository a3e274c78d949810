#!/usr/bin/env bash
# Rebuild the native extension into the editable install (incremental; serialised by a lock so that several
# shells can call it at once). Usage: scripts/dev_build.sh   (TOOLBOX_CUDA=OFF to skip the CUDA sources)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec flock /tmp/toolbox-build.lock "$PY" -m pip install --no-build-isolation --no-deps -Cbuild-dir=build -e . -q
