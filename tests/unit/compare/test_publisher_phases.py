"""The publisher's measured phase lasts ``duration`` whatever the rate and the window.

Regression tests of issue 7, item 7: ``keylane compare --rate 1`` and a ``--window`` that never
fills left ``measured_seconds`` at 0, and the throughput division raised ZeroDivisionError.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from keylane.check import HistoryRecorder
from keylane.compare.publisher import ClosedLoopPublisher
from keylane.compare.results import throughput
from keylane.compare.workload import Workload, WorkloadConfig
from tests.unit.compare.strategies.fakes import FakeProducer


@pytest.mark.looptime
async def test_an_open_loop_slower_than_one_session_still_measures_the_whole_phase():
    # Given an offered load of 1 event/s: the second session is due after the phase ends
    producer = FakeProducer("t")
    loop = asyncio.get_running_loop()
    publisher = ClosedLoopPublisher(
        producer, Workload(WorkloadConfig(users=5)), HistoryRecorder(), window=64, clock=loop.time
    )
    # When it runs 0.2 s of warm-up and 0.5 s measured
    started = loop.time()
    await publisher.run(0.5, warmup=0.2, rate=1)
    # Then it published one session, and the measured phase lasted its 0.5 s
    assert publisher.published == len(producer.sent) > 0
    assert publisher.measured_seconds == pytest.approx(0.5)
    assert loop.time() - started == pytest.approx(0.7)


async def test_a_window_that_never_fills_still_measures_the_phase():
    # Given a window far larger than anything published in 0.2 s, and instant sends
    # (real time: the publisher must yield to the loop even when the window has room)
    producer = FakeProducer("t")
    publisher = ClosedLoopPublisher(
        producer, Workload(WorkloadConfig(users=50)), HistoryRecorder(), window=10**9
    )
    # When it runs
    await publisher.run(0.2)
    # Then the measured phase began and ended, so a throughput can be computed
    assert 0 < publisher.measured_seconds <= 0.2
    assert publisher.published > 0


def test_throughput_of_an_empty_phase_is_nan_not_an_error():
    assert throughput(10, 2.0) == 5.0
    assert math.isnan(throughput(10, 0.0))
