"""``keylane demo``: OK only when every event was processed; the producer bounds its backlog
and stops at the deadline.

Regression tests of issue 7, item 6.
"""

from __future__ import annotations

import asyncio

import pytest

from keylane.cli.demo import verdict
from keylane.compare.demo import DemoReport, run_demo
from keylane.errors import InvalidArgumentError
from tests.unit.cli.support import error_line, run


@pytest.mark.looptime
async def test_slow_consumers_hold_the_producer_back_and_everything_is_processed():
    # Given consumers that need 2 ms per event (at most ~2,000 events/s for the four of them)
    # and a producer asked for 100,000 events/s with at most 500 unacknowledged
    loop = asyncio.get_running_loop()
    started = loop.time()
    report = await run_demo(seconds=2, users=40, rate=100_000, max_backlog=500, handler_time=0.002)
    # Then the backlog never passed the bound, and every produced event was acknowledged
    assert 0 < report.peak_backlog <= 500
    assert report.acknowledged == report.produced
    assert report.ok
    # And the producer held back rather than queueing what the rate asked for
    assert report.produced < report.requested <= 200_000
    # And the run ended at the deadline plus a drain of at most 500 events, not later
    assert loop.time() - started < 2 + 500 * 0.002 + 1


@pytest.mark.looptime
async def test_the_producer_stops_at_the_deadline():
    report = await run_demo(seconds=2, users=10, rate=1_000)
    assert report.requested <= 2_000
    assert report.produced <= report.requested
    assert report.ok


def test_a_report_with_unprocessed_events_is_failed():
    # Given a run whose last events were never acknowledged
    report = DemoReport(produced=401_990, acknowledged=270_317)
    # Then it is not OK, and the verdict says how many were left
    assert not report.ok
    assert report.unprocessed == 131_673
    line = verdict(report)
    assert "131,673 events never processed" in line
    assert line.endswith("FAILED[/red]")


def test_a_complete_report_says_all_events_processed():
    line = verdict(DemoReport(produced=10, acknowledged=10))
    assert "(all events processed)" in line
    assert line.endswith("OK[/green]")


@pytest.mark.parametrize(
    "kwargs",
    [{"seconds": 0}, {"users": 0}, {"rate": 0}, {"max_backlog": 0}, {"handler_time": -1}],
)
async def test_bad_arguments(kwargs):
    with pytest.raises(InvalidArgumentError, match=next(iter(kwargs))):
        await run_demo(**kwargs)


def test_the_command_reports_all_events_processed_even_at_a_rate_it_cannot_reach():
    # The real command, on a real clock, asked for far more than the consumers can take
    result = run("demo", "--seconds", "1", "--users", "20", "--rate", "1000000")
    assert result.exit_code == 0, result.output
    assert "all events processed" in result.stdout
    assert "OK" in result.stdout
    assert "the producer held back" in result.stdout


def test_a_bad_rate_is_one_line():
    line = error_line(run("demo", "--rate", "0"))
    assert line.startswith("error: Invalid value for '--rate'")
