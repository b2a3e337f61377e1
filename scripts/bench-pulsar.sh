#!/usr/bin/env bash
# `make bench`, Pulsar part: start a Pulsar standalone, then `keylane bench pulsar` (Key_Shared:
# embedded / keylane over Pulsar / the bare Pulsar client / pulsar-perf in one run, with ratios
# and goals, and keylane's produce in 1, 2 and 4 processes), and stop the services again.
# Options go to `keylane bench pulsar` (e.g. --messages 50000, --processes 1 --processes 8).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
cleanup() { "$PY" scripts/services.py down || true; }
trap cleanup EXIT
"$PY" scripts/services.py pulsar start
eval "$("$PY" scripts/services.py env)"
# The figures depend on what else runs on the machine: show its size and load with them.
echo "cores: $(nproc); before: $(uptime)"
.venv/bin/keylane bench pulsar "$@"
echo "after: $(uptime)"
