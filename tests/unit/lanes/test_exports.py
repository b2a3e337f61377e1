"""The public surface of keylane.lanes and its import boundary."""

from __future__ import annotations

import subprocess
import sys

import keylane.lanes


def test_public_names() -> None:
    assert sorted(keylane.lanes.__all__) == sorted(
        [
            "DEAD_LETTER_ATTEMPTS",
            "DEAD_LETTER_ERROR",
            "ORIGIN_MESSAGE_ID",
            "REAL_TOPIC",
            "DeadLetterSink",
            "DropCallback",
            "ExhaustedPolicy",
            "GroupStats",
            "Handler",
            "HandlerContext",
            "HandlerResultError",
            "HandlerTimeoutError",
            "LaneConfig",
            "LaneGroup",
            "LaneStats",
            "Lanes",
            "NoRetryError",
            "RetryLater",
            "merge_stats",
            "producer_dead_letter_sink",
        ]
    )
    for name in keylane.lanes.__all__:
        assert getattr(keylane.lanes, name) is not None


def test_lanes_import_no_backend() -> None:
    # Given a fresh interpreter, when keylane.lanes is imported, then no backend module is loaded
    code = (
        "import sys, keylane.lanes\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('pulsar', '_pulsar', 'redis')"
        " or m.startswith(('keylane.brokers.memory', 'keylane.brokers.pulsar')))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""
