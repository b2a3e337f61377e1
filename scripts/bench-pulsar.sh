#!/usr/bin/env bash
# `make bench`, Pulsar part: start a Pulsar standalone, compare embedded / keylane over Pulsar /
# pulsar-perf on Key_Shared, and stop the services again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
cleanup() { "$PY" scripts/services.py down || true; }
trap cleanup EXIT
"$PY" scripts/services.py pulsar start
eval "$("$PY" scripts/services.py env)"
.venv/bin/keylane bench pulsar "$@"
