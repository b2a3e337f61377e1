"""Durability, schema versions and concurrent writers on the durable backends (SQLite, PG)."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from keylane.state import (
    SCHEMA_VERSION,
    CommitResult,
    Outcome,
    SchemaVersionError,
    SendStatus,
    Snapshot,
    StateError,
    StateStore,
)
from tests.contract.state.conftest import StoreFactory
from tests.contract.state.support import DURABLE_ONLY, POSTGRES_ONLY, commit, pos, send, timer


@DURABLE_ONLY
async def test_close_and_reopen_reads_everything_back(factory: StoreFactory) -> None:
    # Given a store with state, a mark, a position, sends (one claimed) and a timer
    store = await factory.open()
    await store.commit(
        commit(
            "u",
            0,
            b"state-1",
            event_id="e1",
            position=pos(4),
            sends=(send("u:1", "u"), send("u:2", "u", 50.0)),
            arm=(timer("u", "t", 9.0),),
        )
    )
    (claim,) = await store.claim_sends(now=1.0, limit=5, lease=60.0, owner="relay")
    ledger = await store.sends_for("u")
    await store.close()
    # When a new store (a new connection or pool) opens the same database
    again = await factory.open()
    # Then everything reads back, and the marks still catch duplicates
    assert await again.load("u") == Snapshot("u", 1, b"state-1", pos(4))
    assert await again.sends_for("u") == ledger
    assert [t.timer_id for t in await again.timers_for("u")] == ["t"]
    assert (await again.commit(commit("u", 1, event_id="e1"))).outcome is Outcome.DUPLICATE
    assert (await again.commit(commit("u", 1, position=pos(4)))).outcome is Outcome.DUPLICATE
    assert await again.finish_send(
        claim.idempotency_key, owner="relay", attempt=1, status=SendStatus.SENT, now=2.0
    )


@DURABLE_ONLY
async def test_a_store_of_a_newer_schema_is_refused(factory: StoreFactory) -> None:
    store = await factory.open()
    await store.commit(commit("u", 0))
    await store.close()
    # Given the database was migrated by a newer keylane
    await factory.set_schema_version(SCHEMA_VERSION + 1)
    # When this keylane opens it, it refuses, naming both versions
    with pytest.raises(SchemaVersionError) as raised:
        await factory.open()
    message = str(raised.value)
    assert f"schema version {SCHEMA_VERSION + 1}" in message
    assert f"schema version {SCHEMA_VERSION} at most" in message
    assert (raised.value.found, raised.value.supported) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)


@DURABLE_ONLY
async def test_reopening_the_current_schema_keeps_the_data(factory: StoreFactory) -> None:
    store = await factory.open()
    await store.commit(commit("u", 0, b"kept"))
    await store.close()
    await factory.set_schema_version(SCHEMA_VERSION)
    assert (await (await factory.open()).load("u")).state == b"kept"


@POSTGRES_ONLY
async def test_concurrent_relays_never_share_a_row_or_a_key(factory: StoreFactory) -> None:
    # Given 40 keys with 4 pending sends each, and two stores (two pools) with 3 relays each
    writer = await factory.open()
    await writer.commit_many(
        [
            commit(f"u{k}", 0, sends=tuple(send(f"u{k}:{i}", f"u{k}") for i in range(4)))
            for k in range(40)
        ]
    )
    stores = [await factory.open(max_size=4), await factory.open(max_size=4)]
    dispatching: set[str] = set()  # keys a relay holds right now
    claimed: list[str] = []
    violations: list[str] = []

    async def relay(store: StateStore, owner: str) -> None:
        idle = 0
        while idle < 3:
            claims = await store.claim_sends(now=1.0, limit=5, lease=600.0, owner=owner)
            idle = 0 if claims else idle + 1
            for claim in claims:
                if claim.key in dispatching:
                    violations.append(f"{owner} claimed {claim.idempotency_key} while held")
                dispatching.add(claim.key)
                claimed.append(claim.idempotency_key)
            await asyncio.sleep(0)  # let the other relays claim meanwhile
            for claim in claims:
                dispatching.discard(claim.key)
                done = await store.finish_send(
                    claim.idempotency_key,
                    owner=owner,
                    attempt=claim.attempt,
                    status=SendStatus.SENT,
                    now=2.0,
                )
                assert done

    # When they race until nothing is left
    relays = [relay(s, f"relay-{i}-{j}") for i, s in enumerate(stores) for j in range(3)]
    await asyncio.gather(*relays)
    # Then every row was claimed exactly once, and no key was held by two relays at once
    assert violations == []
    assert sorted(claimed) == sorted(f"u{k}:{i}" for k, i in itertools.product(range(40), range(4)))
    stats = await writer.outbox_stats(3.0)
    assert stats.by_status[SendStatus.SENT] == 160
    assert stats.pending == stats.dispatching == 0


@DURABLE_ONLY
async def test_concurrent_group_commits_of_two_workers(factory: StoreFactory) -> None:
    # Two workers (two pools, or two SQLite connections) commit overlapping keys at once, as
    # after a rebalance: the stores serialise them without deadlock
    options = {"max_size": 2} if factory.kind == "postgres" else {}
    first, second = await factory.open(**options), await factory.open(**options)
    keys = [f"k{i}" for i in range(50)]

    async def worker(store: StateStore, order: list[str]) -> list[CommitResult | StateError]:
        return await store.commit_many([commit(k, 0, event_id=f"e-{k}") for k in order])

    results = await asyncio.gather(worker(first, keys), worker(second, keys[::-1]))
    # Each key committed once: the other worker's commit of it is a duplicate (same event)
    for i in range(50):
        outcomes = {results[0][i], results[1][49 - i]}
        assert {getattr(r, "outcome", None) for r in outcomes} == {
            Outcome.COMMITTED,
            Outcome.DUPLICATE,
        }
    assert [(await first.load(k)).version for k in keys] == [1] * 50
