"""``SerialSendWatch``: which busy spells count as messages sent one at a time, and the one
warning."""

from __future__ import annotations

import logging

import pytest

from keylane.brokers.serial_sends import SerialSendWatch


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "keylane.brokers"]


def in_turn(
    watch: SerialSendWatch, count: int, start: float = 0.0, step: float = 0.001, size: int = 1
) -> float:
    """``count`` spells of ``size`` messages, each starting ``step`` s after the previous ended."""
    now = start
    watch.idle(now, 0)
    for _ in range(count):
        now += step
        watch.busy(now)
        now += 0.002  # the round trip
        watch.idle(now, size)
    return now


def test_warns_once_after_the_threshold(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="keylane.brokers")
    watch = SerialSendWatch("producer 'p' on t", warn_after=5, gap=0.01)
    now = in_turn(watch, 4)
    assert records(caplog) == []
    watch.busy(now + 0.001)
    watch.idle(now + 0.003, 1)
    assert len(records(caplog)) == 1
    assert "producer 'p' on t" in records(caplog)[0].getMessage()
    assert "enqueue" in records(caplog)[0].getMessage()
    in_turn(watch, 50, start=now + 1)
    assert len(records(caplog)) == 1
    assert watch.warned


def test_a_spell_of_several_messages_breaks_the_run(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="keylane.brokers")
    watch = SerialSendWatch("p", warn_after=5, gap=0.01)
    now = 0.0
    for _ in range(10):
        now = in_turn(watch, 4, start=now)
        now = in_turn(watch, 1, start=now, size=3)  # pipelined: three at once
    assert records(caplog) == []


def test_rare_sends_never_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="keylane.brokers")
    watch = SerialSendWatch("p", warn_after=5, gap=0.01)
    in_turn(watch, 100, step=0.5)  # each send long after the producer went idle
    assert records(caplog) == []


def test_the_first_spell_does_not_count() -> None:
    watch = SerialSendWatch("p", warn_after=1, gap=0.01)
    watch.busy(0.0)
    watch.idle(0.002, 1)
    assert not watch.warned
