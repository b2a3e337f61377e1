"""Replay queue and delayed-delivery tracker data structures."""

from __future__ import annotations

from keylane.brokers.memory.replay import DelayedTracker, ReplayQueue


def test_replay_queue_orders_positions_and_counts_slots() -> None:
    queue = ReplayQueue()
    assert queue.add(7, 100)
    assert queue.add(3, 100)
    assert queue.add(5, 0)
    assert not queue.add(3, 100)  # already queued
    assert queue.ordered() == [3, 5, 7]
    assert queue.has_slot(100)
    queue.remove(3)
    assert queue.has_slot(100)  # 7 still holds it
    queue.remove(7)
    assert not queue.has_slot(100)
    assert not queue.has_slot(0)  # positions without a slot block nothing
    assert len(queue) == 1
    queue.clear()
    assert not queue
    assert queue.ordered() == []


def test_strict_tracker_releases_at_the_delivery_time() -> None:
    tracker = DelayedTracker(tick=1.0, strict=True)
    assert not tracker.add(1, deliver_at=10.0, now=10.0)  # due already
    assert tracker.add(2, deliver_at=13.0, now=10.0)
    assert tracker.add(3, deliver_at=12.0, now=10.0)
    assert tracker.next_fire(last_tick=float("-inf")) == 12.0
    assert tracker.pop_due(11.99) == []
    assert tracker.pop_due(12.0) == [3]
    # A timer may not fire again before one tick after the last one.
    assert tracker.next_fire(last_tick=12.5) == 13.5
    assert tracker.pop_due(13.0) == [2]
    assert not tracker


def test_non_strict_tracker_may_release_one_tick_early() -> None:
    tracker = DelayedTracker(tick=1.0, strict=False)
    assert not tracker.add(1, deliver_at=10.9, now=10.0)  # within a tick: deliver now
    assert tracker.add(2, deliver_at=13.0, now=10.0)
    fire = tracker.next_fire(last_tick=float("-inf"))
    assert fire is not None
    # 1000 ms tick -> 512 ms precision: the timer fires at or before 13.0, at most 0.512 early.
    assert 13.0 - 0.512 <= fire <= 13.0
    assert tracker.pop_due(fire) == [2]


def test_tracker_ignores_duplicates() -> None:
    tracker = DelayedTracker(tick=0.1, strict=True)
    assert tracker.add(4, deliver_at=5.0, now=0.0)
    assert tracker.add(4, deliver_at=5.0, now=0.0)
    assert len(tracker) == 1
    assert tracker.pop_due(5.0) == [4]
