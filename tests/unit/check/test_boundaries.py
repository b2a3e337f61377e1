"""keylane.check imports no backend and exports what the agreed API names."""

from __future__ import annotations

import subprocess
import sys

import keylane.check


def test_importing_check_loads_no_backend():
    code = (
        "import sys, keylane.check, keylane.cli.check; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pulsar', '_pulsar', 'redis') "
        "or m.startswith(('keylane.brokers.memory', 'keylane.brokers.pulsar'))]; "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_exports():
    assert set(keylane.check.__all__) == {
        "CANCELLED",
        "DEDUPE",
        "DROPPED",
        "ERROR",
        "FENCED",
        "OK",
        "SEQ_PROPERTY",
        "TIMEOUT",
        "Attempt",
        "AttemptContext",
        "DecisionAnomaly",
        "DecisionReport",
        "Duplicate",
        "ExclusivityViolation",
        "History",
        "HistoryFormatError",
        "HistoryRecorder",
        "LostMessage",
        "LostUpdate",
        "OrderViolation",
        "Published",
        "Report",
        "Totals",
        "check",
        "property_seq",
        "read_counters",
        "read_history",
        "recorded",
        "recorded_drops",
        "write_history",
    }
    assert keylane.check.SEQ_PROPERTY == "seq"
    for name in keylane.check.__all__:
        assert hasattr(keylane.check, name)
