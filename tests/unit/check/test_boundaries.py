"""keylane.check imports no backend and exports what the agreed API names."""

from __future__ import annotations

import keylane.check


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
