"""The issue's store faults: the state store is unavailable for a while.

Three ways, each while events keep arriving: every store call failing as unavailable (a proxy,
on all three backends); a real SQLite file locked by another process (``BEGIN EXCLUSIVE``); a
real PostgreSQL server (a private one, never the shared server) stopped and started again.

Expected: the handler records ``unavailable`` and backs off; nothing is acked that was not
committed (lanes' ack count does not move during the outage); once the store is back every event
is committed once, in order, and every send goes out once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest

from keylane.check import OK
from keylane.runtime import Worker
from keylane.state import (
    ClaimedSend,
    Commit,
    CommitResult,
    Snapshot,
    StateError,
    StateStore,
    StoreUnavailableError,
)
from tests.contract.state.test_unavailable import PrivatePostgres, locked_by_another_process
from tests.integration.runtime.conftest import MakePipeline
from tests.integration.runtime.pipeline import Pipeline, eventually
from tests.integration.runtime.wrappers import StoreProxy

USERS = ("ann", "bob")
UNAVAILABLE = "unavailable"
#: The stalled store's statement timeout and the worker's handler timeout, real seconds.
STALL_TIMEOUT = 0.5


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
    acked = len(USERS)
    await eventually(lambda: worker.stats().lanes.total.acked == acked, "the subscriptions' acks")
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
    await eventually(lambda: worker.stats().lanes.total.acked >= acked + len(USERS), "the acks")
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


class Stall(StoreProxy):
    """While :attr:`stalled`, every load and commit hangs, failing as unavailable after
    ``timeout`` (a store whose own statement timeout is ``timeout``), or going on once the
    stall ends."""

    def __init__(self, inner: StateStore, timeout: float) -> None:
        super().__init__(inner)
        self.timeout = timeout
        self.stalled = False
        self._over = asyncio.Event()

    def stall(self) -> None:
        self.stalled = True
        self._over.clear()

    def resume(self) -> None:
        self.stalled = False
        self._over.set()

    async def _wait(self) -> None:
        if self.stalled:
            try:
                await asyncio.wait_for(self._over.wait(), self.timeout)
            except TimeoutError:
                raise StoreUnavailableError("statement timeout (injected stall)") from None

    async def _load(self, key: str) -> Snapshot:
        await self._wait()
        return await super()._load(key)

    async def _commit_batch(
        self, commits: list[Commit], prune_before: float | None
    ) -> list[CommitResult | StateError]:
        await self._wait()
        return await super()._commit_batch(commits, prune_before)


async def test_store_stalled_longer_than_the_handler_timeout(pipeline: Pipeline) -> None:
    # Given a worker whose handler timeout equals the store's statement timeout (the defaults:
    # 30 s each for the worker's lanes and PostgreSQL's command_timeout), here 0.5 s
    proxy = Stall(pipeline.store, timeout=STALL_TIMEOUT)
    lanes = replace(pipeline.worker_config("w").lanes, handler_timeout=STALL_TIMEOUT)
    worker = await pipeline.start_worker("w", store=proxy, lanes=lanes)
    await pipeline.publish(*(pipeline.subscribed(u, f"{u}-sub") for u in USERS))
    await pipeline.settle()
    # When the store stalls (every call hangs) for longer than three handler timeouts
    proxy.stall()
    try:
        await pipeline.publish(*(pipeline.sms(u, "HELP", f"{u}-help") for u in USERS))
        await eventually(
            lambda: (
                worker.stats().lanes.total.dead_lettered > 0
                or all(pipeline.outcomes(f"{u}-help").count(UNAVAILABLE) >= 4 for u in USERS)
            ),
            "the HELPs to be retried through the stall",
        )
        # Then no HELP was given up on: the stall is an outage, not a failure of the event
        assert worker.stats().lanes.total.dead_lettered == 0
        assert worker.stats().lanes.total.failed == 0
    finally:
        proxy.resume()
    # And once the store answers again every HELP is decided once and answered once
    await pipeline.settle()
    for u in USERS:
        assert pipeline.steps_to(u) == ["welcome_sms", "help_reply"]
    await pipeline.assert_effectively_once()


def _signal_server(server: PrivatePostgres, sig: signal.Signals) -> None:
    """Send ``sig`` to the private server's postmaster and every backend it forked."""
    [pidfile] = server.home.glob("**/postmaster.pid")
    postmaster = int(pidfile.read_text().split()[0])
    children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    for pid in (postmaster, *map(int, children)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


@pytest.mark.slow
@pytest.mark.parametrize(
    "store_kind", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
async def test_postgres_stalled_longer_than_the_handler_timeout(
    make_pipeline: MakePipeline, private_postgres: PrivatePostgres
) -> None:
    # Given a private PostgreSQL whose command timeout equals the worker's handler timeout, as
    # the defaults do (30 s each), here 0.5 s
    pipeline = await make_pipeline(
        url=private_postgres.url, max_size=3, connect_timeout=0.5, command_timeout=STALL_TIMEOUT
    )
    lanes = replace(pipeline.worker_config("w").lanes, handler_timeout=STALL_TIMEOUT)
    worker = await pipeline.start_worker("w", lanes=lanes)
    await pipeline.publish(*(pipeline.subscribed(u, f"{u}-sub") for u in USERS))
    await pipeline.settle()
    # When the server freezes (SIGSTOP: connections stay open, statements hang)
    _signal_server(private_postgres, signal.SIGSTOP)
    try:
        await pipeline.publish(*(pipeline.sms(u, "HELP", f"{u}-help") for u in USERS))
        await eventually(
            lambda: (
                worker.stats().lanes.total.dead_lettered > 0
                or all(pipeline.outcomes(f"{u}-help").count(UNAVAILABLE) >= 3 for u in USERS)
            ),
            "the HELPs to be retried through the freeze",
        )
        # Then nothing was given up on: more attempts than lanes' max_attempts, none a failure
        assert worker.stats().lanes.total.dead_lettered == 0
        assert worker.stats().lanes.total.failed == 0
    finally:
        _signal_server(private_postgres, signal.SIGCONT)
    # And once it runs again every HELP is decided once and answered once
    await pipeline.settle()
    for u in USERS:
        assert pipeline.steps_to(u) == ["welcome_sms", "help_reply"]
    await pipeline.assert_effectively_once()
