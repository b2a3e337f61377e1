"""State store benchmark: commits per second and commit latency, with or without group commit.

:func:`run_store_bench` opens the store at ``url`` and runs ``concurrency`` handler-like tasks.
Each one loops over keys of its own (so commits are never fenced): it loads the key (as
``JourneyHandler`` does; ``load=False`` skips it), then commits about 300 bytes of state with an
event id and a broker position, one outbox row on 3% of the commits and one timer arm on 10%.
With ``group_commit`` the commits go through one :class:`~keylane.state.GroupCommitter`, else
each is its own transaction. Keys carry a fresh run id, so runs never collide in one database.

The figures are wall-clock on the running event loop: commits/s over the timed part (after a
short warm-up), and each commit call's latency (p50/p99, from the call to its result, queueing
in the group committer included).

Imports only the state contract (:mod:`keylane.state`) and the standard library.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

from keylane.errors import InvalidArgumentError
from keylane.state import (
    Commit,
    GroupCommitter,
    Position,
    SendIntent,
    StateStore,
    Timer,
    open_store,
)

__all__ = ["StoreBenchResult", "run_store_bench"]


@dataclass(frozen=True, slots=True)
class StoreBenchResult:
    """One measured run.

    Attributes:
        url: the store URL.
        group_commit: whether commits went through a GroupCommitter.
        commits: timed commits.
        concurrency: handler tasks committing at once.
        seconds: wall-clock seconds of the timed part.
        cpu_seconds: CPU time of this process meanwhile (all threads).
        p50_ms, p99_ms: commit latency percentiles, milliseconds.
        transactions: database transactions of the timed part (= commits without group commit).
        sends, timers: outbox rows and timer arms written.
    """

    url: str
    group_commit: bool
    commits: int
    concurrency: int
    seconds: float
    cpu_seconds: float
    p50_ms: float
    p99_ms: float
    transactions: int
    sends: int
    timers: int

    @property
    def commits_per_second(self) -> float:
        return self.commits / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """One line for a terminal."""
        mode = "group commit" if self.group_commit else "one transaction per commit"
        per_tx = self.commits / self.transactions if self.transactions else 0.0
        return (
            f"{self.url} ({mode}, concurrency {self.concurrency}): "
            f"{self.commits_per_second:,.0f} commits/s; commit latency p50 {self.p50_ms:.2f} ms, "
            f"p99 {self.p99_ms:.2f} ms; {per_tx:.1f} commits per transaction; "
            f"{self.commits} commits ({self.sends} sends, {self.timers} timers) in "
            f"{self.seconds:.2f} s, CPU {self.cpu_seconds:.2f} s"
        )


def _percentile(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(share * len(sorted_values)) - 1))
    return sorted_values[index]


class _Run:
    """The shared state of one benchmark run."""

    def __init__(self, store: StateStore, committer: GroupCommitter | None, seed: int) -> None:
        self.store = store
        self.committer = committer
        self.rng = random.Random(seed)
        self.run_id = uuid.uuid4().hex[:8]
        self.body = self.rng.randbytes(300)
        self.latencies: list[float] = []
        self.sends = 0
        self.timers = 0
        self.entry = 0

    async def commit(self, key: str, version: int, timed: bool) -> None:
        self.entry += 1
        roll = self.rng.random()
        sends: tuple[SendIntent, ...] = ()
        arm: tuple[Timer, ...] = ()
        if roll < 0.03:
            name = f"{key}:step:{version}"
            sends = (SendIntent(name, key, "sms", self.body[:120], time.time()),)
            self.sends += timed
        elif roll < 0.13:
            arm = (Timer(key, "wait", time.time() + 3600),)
            self.timers += timed
        commit = Commit(
            key,
            version,
            self.body,
            event_id=f"{self.run_id}-{self.entry}",
            position=Position(0, 1, self.entry),
            sends=sends,
            arm=arm,
        )
        started = time.perf_counter()
        if self.committer is not None:
            await self.committer.commit(commit)
        else:
            await self.store.commit(commit)
        if timed:
            self.latencies.append(time.perf_counter() - started)


async def _worker(run: _Run, versions: dict[str, int], count: int, load: bool, timed: bool) -> None:
    keys = list(versions)
    for i in range(count):
        key = keys[i % len(keys)]
        version = (await run.store.load(key)).version if load else versions[key]
        await run.commit(key, version, timed)
        versions[key] = version + 1


async def run_store_bench(
    url: str,
    *,
    commits: int = 20_000,
    concurrency: int = 64,
    group_commit: bool = True,
    keys: int = 2_000,
    load: bool = True,
    seed: int = 1,
    **store_options: Any,
) -> StoreBenchResult:
    """Measure commits/s and commit latency on the store at ``url``.

    Args:
        url: any :func:`keylane.state.open_store` URL (use a fresh SQLite file for SQLite).
        commits: timed commits (a warm-up of a tenth more, at most 1,000, is not timed).
        concurrency: handler tasks committing at once.
        group_commit: batch concurrent commits with a GroupCommitter.
        keys: distinct keys (spread over the tasks).
        load: load each key before committing it, as a handler does.
        seed: the workload's random seed.
        store_options: passed to ``open_store``.
    """
    for name, value in (("commits", commits), ("concurrency", concurrency), ("keys", keys)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidArgumentError(f"{name} must be an int >= 1, got {value!r}")
    concurrency = min(concurrency, keys)
    async with open_store(url, **store_options) as store:
        committer = GroupCommitter(store) if group_commit else None
        run = _Run(store, committer, seed)
        all_keys = [f"bench-{run.run_id}-{i}" for i in range(keys)]
        shares = [dict.fromkeys(all_keys[w::concurrency], 0) for w in range(concurrency)]
        warmup = -(-min(1_000, max(1, commits // 10)) // concurrency)
        await asyncio.gather(*(_worker(run, s, warmup, load, False) for s in shares))
        before = committer.stats().batches if committer else 0
        counts = [commits // concurrency + (w < commits % concurrency) for w in range(concurrency)]
        cpu, started = time.process_time(), time.perf_counter()
        await asyncio.gather(
            *(_worker(run, s, n, load, True) for s, n in zip(shares, counts, strict=True))
        )
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        transactions = committer.stats().batches - before if committer else commits
        if committer is not None:
            await committer.close()
    latencies = sorted(run.latencies)
    return StoreBenchResult(
        url=url,
        group_commit=group_commit,
        commits=commits,
        concurrency=concurrency,
        seconds=seconds,
        cpu_seconds=cpu,
        p50_ms=_percentile(latencies, 0.50) * 1000,
        p99_ms=_percentile(latencies, 0.99) * 1000,
        transactions=transactions,
        sends=run.sends,
        timers=run.timers,
    )
