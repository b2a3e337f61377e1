"""The ``keylane demo`` scenario, on virtual time."""

from __future__ import annotations

import pytest

from keylane.compare.demo import PhaseReport, run_demo

pytestmark = pytest.mark.looptime


async def test_demo_phases_and_invariants() -> None:
    seen: list[PhaseReport] = []
    report = await run_demo(seconds=4, users=50, rate=2000, on_phase=seen.append)
    assert seen == report.phases
    assert [sorted(p.events) for p in report.phases] == [
        ["consumer-1", "consumer-2"],
        ["consumer-1", "consumer-2", "consumer-3", "consumer-4"],
        ["consumer-1", "consumer-3", "consumer-4"],
        ["consumer-1", "consumer-3"],
    ]
    assert report.order_violations == 0
    assert report.overlap_violations == 0
    assert report.acknowledged == report.produced
    assert 7000 <= report.produced <= 8100
    # Every user is handled by exactly one consumer within a stable phase.
    assert sum(report.phases[0].users.values()) == 50
    assert all(p.throughput > 0 for p in report.phases)
