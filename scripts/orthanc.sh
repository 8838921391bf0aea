#!/usr/bin/env bash
# A private Orthanc PACS on loopback ports for trying `medimg pacs` (and for the tests):
#   scripts/orthanc.sh start [STATE_DIR]   # config, storage, log and pacs.yaml in STATE_DIR (default .orthanc)
#   scripts/orthanc.sh status [STATE_DIR]
#   scripts/orthanc.sh stop [STATE_DIR]
# Needs the Debian packages orthanc and orthanc-dicomweb. All the logic is in medimg.io.pacs.orthanc;
# PYTHON picks the interpreter (default: the checkout's .venv, else python3).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m medimg.io.pacs.orthanc "$@"
