"""The timers index and dedupe-mark retention."""

from __future__ import annotations

from keylane.state import CommitResult, Outcome, StateStore, Timer
from tests.contract.state.conftest import StoreFactory
from tests.contract.state.support import commit, timer


async def test_arm_upsert_disarm_and_due(store: StateStore) -> None:
    # Given timers armed on two keys
    await store.commit(commit("a", 0, arm=(timer("a", "remind", 30.0), timer("a", "expire", 10.0))))
    await store.commit(commit("b", 0, arm=(timer("b", "remind", 20.0),)))
    assert await store.armed_timers_count() == 3
    assert await store.timers_for("a") == [Timer("a", "expire", 10.0), Timer("a", "remind", 30.0)]
    # When due timers are listed at 25, with and without a limit
    assert await store.due_timers(now=25.0, limit=10) == [
        Timer("a", "expire", 10.0),
        Timer("b", "remind", 20.0),
    ]
    assert await store.due_timers(now=25.0, limit=1) == [Timer("a", "expire", 10.0)]
    assert await store.due_timers(now=5.0, limit=10) == []
    # When a's timer is re-armed later (upsert) and the other disarmed
    await store.commit(commit("a", 1, arm=(timer("a", "remind", 40.0),), disarm=("expire", "gone")))
    # Then the index follows, and a timer stays listed until a commit disarms it
    assert await store.timers_for("a") == [Timer("a", "remind", 40.0)]
    assert await store.due_timers(now=25.0, limit=10) == [Timer("b", "remind", 20.0)]
    assert await store.due_timers(now=25.0, limit=10) == [Timer("b", "remind", 20.0)]
    await store.commit(commit("b", 1, disarm=("remind",)))
    assert await store.armed_timers_count() == 1


async def test_a_duplicate_timer_firing_is_a_no_op(store: StateStore) -> None:
    await store.commit(commit("u", 0, arm=(timer("u", "t", 5.0),)))
    # The first wake-up fires the timer: one commit disarms it, marked with the firing's id
    fire = commit("u", 1, event_id="timer:t:5.0", disarm=("t",))
    assert await store.commit(fire) == CommitResult(Outcome.COMMITTED, 2)
    # A second wake-up for the same firing is a duplicate
    again = commit("u", 2, event_id="timer:t:5.0", disarm=("t",))
    assert await store.commit(again) == CommitResult(Outcome.DUPLICATE, 2)
    assert await store.timers_for("u") == []


async def test_dedupe_marks_expire_after_the_retention(factory: StoreFactory) -> None:
    # Given a store whose clock we drive, keeping marks 100 s
    now = [1_000.0]
    store = await factory.open(clock=lambda: now[0], dedupe_retention=100.0)
    await store.commit(commit("u", 0, event_id="old"))
    # Within the retention the mark holds
    now[0] += 99.0
    assert (await store.commit(commit("u", 1, event_id="old"))).outcome is Outcome.DUPLICATE
    await store.commit(commit("u", 1, event_id="recent"))
    # When the retention has passed, pruning removes the old mark only
    now[0] += 2.0
    assert await store.prune_dedupe() == 1
    assert await store.prune_dedupe() == 0
    assert (await store.commit(commit("u", 2, event_id="recent"))).outcome is Outcome.DUPLICATE
    assert (await store.commit(commit("u", 2, event_id="old"))).outcome is Outcome.COMMITTED


async def test_commits_prune_marks_incrementally(factory: StoreFactory) -> None:
    now = [1_000.0]
    store = await factory.open(clock=lambda: now[0], dedupe_retention=10.0)
    for i in range(10):
        await store.commit(commit(f"k{i}", 0, event_id="e"))
    now[0] += 20.0
    # When enough later commits run (a prune every 64 commits), the expired marks go
    await store.commit_many([commit(f"n{i}", 0) for i in range(64)])
    assert await store.prune_dedupe() == 0
    assert (await store.commit(commit("k3", 1, event_id="e"))).outcome is Outcome.COMMITTED
