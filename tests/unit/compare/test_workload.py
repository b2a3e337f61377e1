"""The seeded shopping workload."""

from __future__ import annotations

import collections
import statistics

import pytest

from keylane.compare.workload import (
    EVENT_TYPES,
    STUCK_USER,
    BurstShape,
    Workload,
    WorkloadConfig,
    user_id,
)
from keylane.errors import InvalidArgumentError


def take(config: WorkloadConfig, n: int):
    workload = Workload(config)
    return [workload.next_session() for _ in range(n)]


def test_same_seed_same_sessions_other_seed_other_sessions():
    assert take(WorkloadConfig(seed=3), 200) == take(WorkloadConfig(seed=3), 200)
    assert take(WorkloadConfig(seed=3), 200) != take(WorkloadConfig(seed=4), 200)


def test_seq_numbers_continue_per_user_across_sessions():
    sessions = take(WorkloadConfig(users=5, seed=1), 100)
    last: dict[str, int] = {}
    for session in sessions:
        for event in session.events:
            assert event.user == session.user
            assert event.seq == last.get(event.user, 0) + 1
            last[event.user] = event.seq
    assert set(last) <= {user_id(i) for i in range(5)}


def test_poisson_bursts_cluster_around_the_mean():
    sizes = [len(s.events) for s in take(WorkloadConfig(seed=2), 20_000)]
    assert min(sizes) >= 1
    assert statistics.mean(sizes) == pytest.approx(8.0, abs=0.1)
    # 1 + Poisson(7): sd sqrt(7) ~ 2.65, practically never a single event or more than 25
    assert statistics.pstdev(sizes) == pytest.approx(7**0.5, abs=0.1)
    assert sum(size == 1 for size in sizes) < 40
    assert max(sizes) <= 25


def test_geometric_bursts_have_a_long_tail_cut_at_max_burst():
    config = WorkloadConfig(seed=2, burst_shape=BurstShape.GEOMETRIC, max_burst=32)
    sizes = [len(s.events) for s in take(config, 20_000)]
    assert min(sizes) == 1
    assert max(sizes) == 32
    # Geometric with mean 8, cut at 32: the expected mean is 8 * (1 - (7/8)**32) ~ 7.86
    assert statistics.mean(sizes) == pytest.approx(7.86, abs=0.15)
    assert sum(size == 1 for size in sizes) / len(sizes) == pytest.approx(1 / 8, abs=0.01)


def test_event_types_follow_the_funnel():
    session = Workload(WorkloadConfig(seed=1)).session_for("u", 10)
    assert [e.event_type for e in session.events[:8]] == list(EVENT_TYPES)
    assert session.events[8].event_type == EVENT_TYPES[0]


def test_uniform_by_default_no_user_dominates():
    counts = collections.Counter(s.user for s in take(WorkloadConfig(users=10_000), 20_000))
    assert counts.most_common(1)[0][1] < 15  # expected 2 per user; the top one is a handful


def test_skew_makes_the_first_users_popular():
    counts = collections.Counter(s.user for s in take(WorkloadConfig(users=1000, skew=1.2), 5000))
    top = [user for user, _ in counts.most_common(3)]
    assert top[0] == user_id(0)
    assert counts[user_id(0)] > 10 * counts.get(user_id(500), 1)


def test_hot_users_take_their_share():
    config = WorkloadConfig(users=10_000, hot_users=2, hot_share=0.5)
    counts = collections.Counter(s.user for s in take(config, 4000))
    hot = counts[user_id(0)] + counts[user_id(1)]
    assert hot / 4000 == pytest.approx(0.5, abs=0.05)


def test_stuck_user_is_not_a_normal_user():
    assert STUCK_USER not in {user_id(i) for i in range(10_000)}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"users": 0}, "users must be >= 1"),
        ({"mean_burst": 0.5}, "mean_burst"),
        ({"mean_burst": 40}, "mean_burst"),
        ({"skew": -1}, "skew"),
        ({"burst_shape": "poisson"}, "burst_shape must be a BurstShape"),
        ({"hot_users": 20_000}, "hot_users"),
        ({"hot_share": 1.0, "hot_users": 1}, "hot_share"),
        ({"hot_share": 0.5}, "hot_share needs hot_users"),
    ],
)
def test_bad_config(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        WorkloadConfig(**kwargs)
