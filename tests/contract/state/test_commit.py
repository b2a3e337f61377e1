"""The commit contract: load, compare-and-set, fencing, duplicates, atomicity, group commit."""

from __future__ import annotations

import pytest

from keylane.errors import InvalidArgumentError
from keylane.state import (
    Commit,
    CommitResult,
    FencedError,
    Outcome,
    Snapshot,
    StateStore,
    StoreClosedError,
)
from tests.contract.state.conftest import StoreFactory
from tests.contract.state.support import commit, pos, send, timer


async def everything_of(store: StateStore, key: str) -> tuple[object, ...]:
    """All a key has in the store, to compare before and after a commit that must not write."""
    return (await store.load(key), await store.sends_for(key), await store.timers_for(key))


async def test_load_of_a_new_key(store: StateStore) -> None:
    # Given a fresh store, When a key never committed is loaded
    snapshot = await store.load("user-1")
    # Then it is version 0 with no state and no position
    assert snapshot == Snapshot("user-1", 0, None, None)
    assert await store.sends_for("user-1") == []
    assert await store.timers_for("user-1") == []


async def test_commit_writes_the_next_version(store: StateStore) -> None:
    # When a new key is committed at version 0, then again at 1
    first = await store.commit(commit("u", 0, b"one", event_id="e1", position=pos(1)))
    second = await store.commit(commit("u", 1, b"two", event_id="e2", position=pos(2)))
    # Then each commit returns the new version and the store holds the last state
    assert first == CommitResult(Outcome.COMMITTED, 1)
    assert second == CommitResult(Outcome.COMMITTED, 2)
    assert await store.load("u") == Snapshot("u", 2, b"two", pos(2))


async def test_commit_without_position_keeps_the_high_water_mark(store: StateStore) -> None:
    await store.commit(commit("u", 0, position=pos(5)))
    # When a decision that does not come from the topic (a timer sweep) commits
    await store.commit(commit("u", 1, b"swept"))
    # Then the mark stays, and an older position is still a duplicate
    assert (await store.load("u")).position == pos(5)
    result = await store.commit(commit("u", 2, position=pos(4)))
    assert result == CommitResult(Outcome.DUPLICATE, 2)


async def test_empty_state_bytes_are_a_state(store: StateStore) -> None:
    await store.commit(commit("u", 0, b""))
    assert await store.load("u") == Snapshot("u", 1, b"", None)


async def test_stale_version_is_fenced_and_writes_nothing(store: StateStore) -> None:
    # Given a key at version 2
    await store.commit(commit("u", 0, event_id="e1", position=pos(1)))
    await store.commit(commit("u", 1, event_id="e2", position=pos(2)))
    before = await everything_of(store, "u")
    # When a zombie that read version 1 commits a new event with sends and timers
    stale = commit(
        "u",
        1,
        b"zombie",
        event_id="e3",
        position=pos(3),
        sends=(send("u:j:s1", "u"),),
        arm=(timer("u", "t1", 10.0),),
    )
    with pytest.raises(FencedError) as raised:
        await store.commit(stale)
    # Then the error names the key and both versions, and nothing was written
    assert (raised.value.key, raised.value.expected, raised.value.stored) == ("u", 1, 2)
    assert "'u'" in str(raised.value)
    assert "expected version 1" in str(raised.value)
    assert "stored version 2" in str(raised.value)
    assert await everything_of(store, "u") == before
    # And the event is not marked: the owner's commit of it at the right version succeeds
    fresh = await store.commit(commit("u", 2, event_id="e3", position=pos(3)))
    assert fresh == CommitResult(Outcome.COMMITTED, 3)


async def test_expected_version_ahead_of_the_store_is_fenced(store: StateStore) -> None:
    with pytest.raises(FencedError) as raised:
        await store.commit(commit("never", 4))
    assert raised.value.stored == 0
    assert await store.load("never") == Snapshot("never", 0, None, None)


async def test_duplicate_event_id_writes_nothing(store: StateStore) -> None:
    # Given event e1 committed
    await store.commit(commit("u", 0, b"first", event_id="e1"))
    before = await everything_of(store, "u")
    # When it is redelivered and decided again on fresh state, with a send
    again = commit("u", 1, b"again", event_id="e1", sends=(send("u:x", "u"),))
    result = await store.commit(again)
    # Then it is a duplicate at the current version, and nothing changed
    assert result == CommitResult(Outcome.DUPLICATE, 1)
    assert await everything_of(store, "u") == before


async def test_event_ids_are_per_key(store: StateStore) -> None:
    await store.commit(commit("a", 0, event_id="e1"))
    assert await store.commit(commit("b", 0, event_id="e1")) == CommitResult(Outcome.COMMITTED, 1)


@pytest.mark.parametrize("entry", [3, 2], ids=["at-the-mark", "below-the-mark"])
async def test_position_at_or_below_the_mark_is_a_duplicate(store: StateStore, entry: int) -> None:
    await store.commit(commit("u", 0, position=pos(3)))
    before = await everything_of(store, "u")
    # When an older (or the same) message of the key commits, with another event id
    result = await store.commit(commit("u", 1, event_id="other", position=pos(entry)))
    # Then it is a duplicate and nothing was written (its event id is not marked either)
    assert result == CommitResult(Outcome.DUPLICATE, 1)
    assert await everything_of(store, "u") == before
    later = await store.commit(commit("u", 1, event_id="other", position=pos(4)))
    assert later == CommitResult(Outcome.COMMITTED, 2)


async def test_positions_order_by_ledger_then_entry_then_batch(store: StateStore) -> None:
    await store.commit(commit("u", 0, position=pos(9, ledger=7, batch=2)))
    assert (await store.commit(commit("u", 1, position=pos(9, ledger=7, batch=1)))).outcome is (
        Outcome.DUPLICATE
    )
    assert (await store.commit(commit("u", 1, position=pos(0, ledger=6)))).outcome is (
        Outcome.DUPLICATE
    )
    assert (await store.commit(commit("u", 1, position=pos(9, ledger=7, batch=3)))).outcome is (
        Outcome.COMMITTED
    )
    assert (await store.commit(commit("u", 2, position=pos(0, ledger=8)))).outcome is (
        Outcome.COMMITTED
    )


async def test_duplicate_is_checked_before_the_version(store: StateStore) -> None:
    # Given e1 then e2 committed by the new owner
    await store.commit(commit("u", 0, event_id="e1", position=pos(1)))
    await store.commit(commit("u", 1, event_id="e2", position=pos(2)))
    # When a zombie that read version 0 commits e1 again
    result = await store.commit(commit("u", 0, event_id="e1", position=pos(1)))
    # Then it is a duplicate (ack it), not fenced
    assert result == CommitResult(Outcome.DUPLICATE, 2)


@pytest.mark.parametrize("stage", ["state", "dedupe", "cancel", "outbox", "timers"])
async def test_a_failure_inside_the_transaction_leaves_nothing(
    factory: StoreFactory, stage: str
) -> None:
    # Given a key with a pending send and an armed timer
    failing: set[str] = set()

    def hook(name: str) -> None:
        if name in failing:
            raise RuntimeError(f"injected failure at {name}")

    store = await factory.open(fault_hook=hook)
    await store.commit(
        commit("u", 0, event_id="e1", sends=(send("u:1", "u"),), arm=(timer("u", "t1", 5.0),))
    )
    before = await everything_of(store, "u")
    # When a commit touching every table fails at one stage of its transaction
    failing.add(stage)
    doomed = commit(
        "u",
        1,
        b"doomed",
        event_id="e2",
        position=pos(1),
        sends=(send("u:2", "u"),),
        cancel_sends=("u:1",),
        arm=(timer("u", "t2", 6.0),),
        disarm=("t1",),
    )
    with pytest.raises(RuntimeError, match="injected failure"):
        await store.commit(doomed)
    # Then nothing of it was written, and the same commit succeeds once the fault is gone
    assert await everything_of(store, "u") == before
    failing.clear()
    assert await store.commit(doomed) == CommitResult(Outcome.COMMITTED, 2)
    assert [t.timer_id for t in await store.timers_for("u")] == ["t2"]


async def test_a_failed_batch_leaves_nothing_for_any_key(factory: StoreFactory) -> None:
    def hook(name: str) -> None:
        if name == "outbox":
            raise RuntimeError("injected")

    store = await factory.open(fault_hook=hook)
    batch = [commit(k, 0, sends=(send(f"{k}:s", k),)) for k in ("a", "b", "c")]
    with pytest.raises(RuntimeError):
        await store.commit_many(batch)
    for key in ("a", "b", "c"):
        assert await everything_of(store, key) == (Snapshot(key, 0, None, None), [], [])


async def test_commit_many_mixes_committed_fenced_and_duplicate(store: StateStore) -> None:
    # Given keys b and c already committed (c with event e1)
    await store.commit(commit("b", 0))
    await store.commit(commit("c", 0, event_id="e1"))
    # When one batch holds a new key, a stale commit of b, a duplicate of c and a good one of c'
    results = await store.commit_many(
        [
            commit("a", 0, sends=(send("a:1", "a"),)),
            commit("b", 0, b"stale", sends=(send("b:1", "b"),)),
            commit("c", 1, b"dup", event_id="e1"),
            commit("d", 0, event_id="e1"),
        ]
    )
    # Then each slot has its own outcome, in input order
    assert results[0] == CommitResult(Outcome.COMMITTED, 1)
    assert isinstance(results[1], FencedError)
    assert (results[1].expected, results[1].stored) == (0, 1)
    assert results[2] == CommitResult(Outcome.DUPLICATE, 1)
    assert results[3] == CommitResult(Outcome.COMMITTED, 1)
    # And only the committed ones wrote
    assert [r.idempotency_key for r in await store.sends_for("a")] == ["a:1"]
    assert await store.sends_for("b") == []
    assert (await store.load("b")).state == b"b@1"
    assert (await store.load("c")).state == b"c@1"


async def test_commit_many_rejects_two_commits_of_one_key(store: StateStore) -> None:
    with pytest.raises(InvalidArgumentError, match="repeated"):
        await store.commit_many([commit("a", 0), commit("a", 1)])
    assert (await store.load("a")).version == 0


async def test_commit_many_of_nothing(store: StateStore) -> None:
    assert await store.commit_many([]) == []


async def test_commit_many_of_many_keys(store: StateStore) -> None:
    batch = [commit(f"k{i}", 0, event_id=f"e{i}", position=pos(i)) for i in range(300)]
    results = await store.commit_many(batch)
    assert results == [CommitResult(Outcome.COMMITTED, 1)] * 300
    assert await store.load("k299") == Snapshot("k299", 1, b"k299@1", pos(299))


async def test_bad_arguments_are_typed_errors(store: StateStore) -> None:
    with pytest.raises(InvalidArgumentError, match="key"):
        await store.load("")
    with pytest.raises(InvalidArgumentError, match="commits"):
        await store.commit_many([object()])  # type: ignore[list-item]
    with pytest.raises(InvalidArgumentError, match="expected_version"):
        Commit("u", -1, b"")
    with pytest.raises(InvalidArgumentError, match=r"commit\.state"):
        Commit("u", 0, "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="appears twice"):
        commit("u", 0, sends=(send("s", "u"), send("s", "u")))
    with pytest.raises(InvalidArgumentError, match="not the commit's key"):
        commit("u", 0, sends=(send("s", "other"),))


async def test_a_closed_store_refuses(factory: StoreFactory) -> None:
    store = await factory.open(dedupe_retention=60.0)  # its own store, even on memory
    await store.close()
    with pytest.raises(StoreClosedError, match="closed"):
        await store.load("u")
    with pytest.raises(StoreClosedError):
        await store.open()
    await store.close()  # idempotent
