"""``SerialSendWatch``: which sends count as awaited in turn, and the one warning."""

from __future__ import annotations

import logging

import pytest

from keylane.brokers.serial_sends import SerialSendWatch


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "keylane.brokers"]


def in_turn(watch: SerialSendWatch, count: int, start: float = 0.0, step: float = 0.001) -> float:
    """``count`` sends, each starting ``step`` seconds after the previous one completed."""
    now = start
    for _ in range(count):
        watch.idle(now)
        now += step
        watch.awaited_send(0, now)
    return now


def test_warns_once_after_the_threshold(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="keylane.brokers")
    watch = SerialSendWatch("producer 'p' on t", warn_after=5, gap=0.01)
    in_turn(watch, 4)
    assert records(caplog) == []
    in_turn(watch, 1, start=1.0)
    assert len(records(caplog)) == 1
    assert "producer 'p' on t" in records(caplog)[0].getMessage()
    in_turn(watch, 50, start=2.0)
    assert len(records(caplog)) == 1
    assert watch.warned


def test_a_send_with_others_in_flight_breaks_the_run(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="keylane.brokers")
    watch = SerialSendWatch("p", warn_after=5, gap=0.01)
    for round_ in range(10):
        now = in_turn(watch, 4, start=round_)
        watch.awaited_send(3, now)  # pipelined: three others unconfirmed
    assert records(caplog) == []


def test_rare_sends_never_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="keylane.brokers")
    watch = SerialSendWatch("p", warn_after=5, gap=0.01)
    in_turn(watch, 100, step=0.5)  # each send long after the producer went idle
    assert records(caplog) == []


def test_a_send_before_the_producer_was_ever_idle_does_not_count() -> None:
    watch = SerialSendWatch("p", warn_after=1, gap=0.01)
    watch.awaited_send(0, 0.0)
    assert not watch.warned
