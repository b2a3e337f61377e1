"""bench/decide.py: a small run decides every event and reports consistent figures."""

from __future__ import annotations

import pytest

from keylane.bench.decide import make_workload, run_decide_bench
from keylane.errors import InvalidArgumentError


def test_a_small_run_decides_the_workload_and_its_timers():
    result = run_decide_bench(events=3_000, subscribers=100, seed=7)
    assert result.decisions > result.events  # timer firings come on top
    assert result.reasons["profile_updated"] == 100  # one subscribed per subscriber
    assert result.reasons["timer_fired"] > 0
    assert result.sends > 0
    assert result.decisions_per_s == result.decisions / result.seconds
    assert result.codec_decisions_per_s == result.decisions / result.codec_seconds
    assert 0 < result.mean_state_bytes <= result.max_state_bytes
    view = result.as_dict()
    assert view["decisions"] == result.decisions
    rates = (result.decisions_per_s, result.codec_decisions_per_s)
    print("{:,.0f} decisions/s ({:,.0f} with the state codec)".format(*rates))


def test_the_workload_is_seeded_and_mostly_product_views():
    first = make_workload(2_000, 20, seed=3)
    assert [e.event_id for e in first] == [e.event_id for e in make_workload(2_000, 20, seed=3)]
    views = sum(e.type.value == "product_viewed" for e in first)
    assert 0.9 < views / len(first) < 0.99
    assert [e.occurred_at for e in first] == sorted(e.occurred_at for e in first)
    with pytest.raises(InvalidArgumentError, match="subscribers"):
        make_workload(10, 20, seed=1)
