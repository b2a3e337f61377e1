"""The public surface of keylane.lanes and its import boundary."""

from __future__ import annotations

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
