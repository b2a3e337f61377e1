# keylane developer commands. Every target installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run compare test test-fast check bench chaos services-up services-down clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,dev]'
	touch $(STAMP)

## make run: the main job: a simulated Black Friday through keylane on the embedded defaults
## (the memory broker, a SQLite file under .keylane/, the embedded SMS/email gateway, the
## shipped journeys), then the report: sends, skips by reason, timers, and the verdicts
## (duplicate deliveries, compliance violations re-checked from the gateway's log, the checker).
run: $(STAMP)
	$(VENV)/bin/keylane run

## make compare: the talk's five consumption strategies side by side on the embedded broker.
## Starts a local redis-server (port 6390, left running; `make services-down` stops it) for the
## shared-lock baseline; if Redis cannot start, that row is skipped with a visible notice.
compare: $(STAMP)
	$(PY) scripts/services.py redis start || echo "warning: no local Redis; shared-lock will be skipped"
	$(VENV)/bin/keylane compare

## make test: the whole suite, with real Pulsar, PostgreSQL and Redis started (and stopped) for it
test: $(STAMP)
	bash scripts/test-all.sh

## make test-fast: the part that needs no service (no Pulsar, PostgreSQL or Redis)
test-fast: $(STAMP)
	$(PY) -m pytest -m "not pulsar and not redis and not postgres and not bench"

## make check: lint and strict typing
check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

## make bench: every benchmark, printing measured numbers (scripts/bench-all.sh, 20-25 minutes):
## the embedded broker per subscription type and its memory soak (failing unless flat), the pure
## engine, the state stores' commits; then, on a real Pulsar and PostgreSQL started for it, the
## whole pipeline per store, 1/2/4 worker processes, and Key_Shared embedded vs keylane over
## Pulsar vs the bare client vs pulsar-perf, with ratios and goals
bench: $(STAMP)
	bash scripts/bench-all.sh

## make chaos: the fault-injection harness, full schedule (about 4-5 minutes on 2 cores): the
## gateway, 3 workers and the load on the Pulsar and PostgreSQL of scripts/services.py (started
## with their data kept if down), then kill -9, a zombie, scale-out/in, broker and store
## restarts, a slow subscriber, poison and gateway 5xx; the table, .keylane/chaos-*/chaos.png;
## exit 1 on any violation. It restarts those servers and leaves them running (docs/chaos.md).
chaos: $(STAMP)
	$(VENV)/bin/keylane chaos --profile full

services-up: $(STAMP)
	$(PY) scripts/services.py up

services-down: $(STAMP)
	$(PY) scripts/services.py down

clean:
	rm -rf $(VENV) .services .pytest_cache .mypy_cache .ruff_cache
