#!/usr/bin/env bash
# `make test`: start real Pulsar and Redis on 127.0.0.1, run the whole suite, always stop them.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
cleanup() { "$PY" scripts/services.py down || true; }
trap cleanup EXIT
"$PY" scripts/services.py up
eval "$("$PY" scripts/services.py env)"
"$PY" -m pytest -m "not bench" "$@"
