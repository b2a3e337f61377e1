"""The issue's store faults: the state store is unavailable for a while.

Three ways, each while events keep arriving: every store call failing as unavailable (a proxy,
on all three backends); a real SQLite file locked by another process (``BEGIN EXCLUSIVE``); a
real PostgreSQL server (a private one, never the shared server) stopped and started again.

Expected: the handler records ``unavailable`` and backs off; nothing is acked that was not
committed (lanes' ack count does not move during the outage); once the store is back every event
is committed once, in order, and every send goes out once.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import pytest

from keylane.check import OK
from keylane.runtime import Worker
from keylane.state import (
    ClaimedSend,
    Commit,
    CommitResult,
    Snapshot,
    StateError,
    StoreUnavailableError,
)
from tests.contract.state.test_unavailable import PrivatePostgres, locked_by_another_process
from tests.integration.runtime.conftest import MakePipeline
from tests.integration.runtime.pipeline import Pipeline, eventually
from tests.integration.runtime.wrappers import StoreProxy

USERS = ("ann", "bob")
UNAVAILABLE = "unavailable"


class Outage(StoreProxy):
    """Every load, commit and claim raises :class:`StoreUnavailableError` while :attr:`down`."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailableError("the store is down (injected)")

    async def _load(self, key: str) -> Snapshot:
        self._check()
        return await super()._load(key)

    async def _commit_batch(
        self, commits: list[Commit], prune_before: float | None
    ) -> list[CommitResult | StateError]:
        self._check()
        return await super()._commit_batch(commits, prune_before)

    async def _claim(self, now: float, limit: int, lease: float, owner: str) -> list[ClaimedSend]:
        self._check()
        return await super()._claim(now, limit, lease, owner)


async def _through_an_outage(
    pipeline: Pipeline, worker: Worker, outage: AbstractAsyncContextManager[None]
) -> None:
    """Subscribe everyone, then publish HELPs during ``outage``; check nothing is acked."""
    await pipeline.publish(*(pipeline.subscribed(u, f"{u}-sub") for u in USERS))
    await pipeline.settle()
    acked = worker.stats().lanes.total.acked
    versions = [(await pipeline.store.load(pipeline.key(u))).version for u in USERS]
    async with outage:
        await pipeline.publish(*(pipeline.sms(u, "HELP", f"{u}-help") for u in USERS))
        # Then each HELP is tried, fails as unavailable and is tried again later, never acked
        await eventually(
            lambda: all(pipeline.outcomes(f"{u}-help").count(UNAVAILABLE) >= 2 for u in USERS),
            "the HELPs to be retried during the outage",
        )
        for u in USERS:
            assert set(pipeline.outcomes(f"{u}-help")) == {UNAVAILABLE}
        assert worker.stats().lanes.total.acked == acked
        assert worker.stats().lanes.total.dead_lettered == 0
    # When the store is back, then every HELP is committed once and answered once
    await pipeline.settle()
    assert [(await pipeline.store.load(pipeline.key(u))).version for u in USERS] == [
        v + 1 for v in versions
    ]
    for u in USERS:
        assert pipeline.outcomes(f"{u}-help")[-1] == OK
        assert pipeline.steps_to(u) == ["welcome_sms", "help_reply"]
    assert worker.stats().lanes.total.acked == acked + len(USERS)
    await pipeline.assert_effectively_once()


async def test_store_unavailable_for_a_while(pipeline: Pipeline) -> None:
    # Given a worker whose store fails every call while it is down
    proxy = Outage(pipeline.store)
    worker = await pipeline.start_worker("w", store=proxy)

    @asynccontextmanager
    async def down() -> AsyncIterator[None]:
        proxy.down = True
        try:
            yield
        finally:
            proxy.down = False

    await _through_an_outage(pipeline, worker, down())


@pytest.mark.parametrize("store_kind", ["sqlite"], indirect=True)
async def test_sqlite_locked_by_another_process(
    make_pipeline: MakePipeline, store_url: str
) -> None:
    # Given a SQLite store that waits at most 0.2 s for the write lock
    pipeline = await make_pipeline(url=f"{store_url}?busy_timeout=0.2")
    worker = await pipeline.start_worker("w")
    # When another process holds BEGIN EXCLUSIVE on the file
    outage = locked_by_another_process(store_url.removeprefix("sqlite://"))
    await _through_an_outage(pipeline, worker, outage)


@pytest.fixture
async def private_postgres(postgres_url: str) -> AsyncIterator[PrivatePostgres]:
    """A PostgreSQL server of this test's own (the shared one on 5440 is never restarted)."""
    server = PrivatePostgres()
    try:
        await server.run("start")
        yield server
    finally:
        await server.run("stop")
        shutil.rmtree(server.home, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "store_kind", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_postgres_stopped_and_restarted(
    make_pipeline: MakePipeline, private_postgres: PrivatePostgres
) -> None:
    # Given a pipeline on a private PostgreSQL server
    pipeline = await make_pipeline(url=private_postgres.url, max_size=3, connect_timeout=2.0)
    worker = await pipeline.start_worker("w")

    @asynccontextmanager
    async def stopped() -> AsyncIterator[None]:
        await private_postgres.run("stop")
        try:
            yield
        finally:
            await private_postgres.run("start")

    # When the server is stopped while HELPs arrive, and started again
    await _through_an_outage(pipeline, worker, stopped())
