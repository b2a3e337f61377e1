#!/usr/bin/env bash
# `make bench`: every benchmark, in one run, with the machine's size and load printed beside the
# figures (they depend on what else runs here; compare ratios within one run).
#   1. embedded only: the broker per subscription type, its memory soak (fails unless flat),
#      the pure engine (decide) and the state stores' commits (SQLite);
#   2. with the real services of scripts/services.py (started here, stopped on exit): the whole
#      pipeline per state store (SQLite, PostgreSQL), 1/2/4 worker processes on Pulsar and
#      PostgreSQL, and Key_Shared embedded vs keylane over Pulsar vs the bare client vs
#      pulsar-perf, with ratios and the ingest curve.
# Options go to `keylane bench pulsar` (e.g. --messages 50000 --processes 1 --processes 8).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
KEYLANE=.venv/bin/keylane
section() { echo; echo "== $1 (load: $(cut -d' ' -f1-3 /proc/loadavg))"; }
echo "cores: $(nproc); $(uptime)"

section "keylane bench broker"; "$KEYLANE" bench broker
section "keylane bench soak"; "$KEYLANE" bench soak
section "keylane bench decide"; "$KEYLANE" bench decide
section "keylane bench store"; "$KEYLANE" bench store

cleanup() { "$PY" scripts/services.py down || true; }
trap cleanup EXIT
"$PY" scripts/services.py pulsar start
"$PY" scripts/services.py postgres start
eval "$("$PY" scripts/services.py env)"

section "keylane bench engine (SQLite, PostgreSQL)"
"$KEYLANE" bench engine --events 30000 --store sqlite --store "$KEYLANE_POSTGRES_URL"
section "keylane bench scale"; "$KEYLANE" bench scale
section "keylane bench pulsar"; "$KEYLANE" bench pulsar "$@"
echo "after: $(uptime)"
