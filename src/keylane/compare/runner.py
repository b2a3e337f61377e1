"""The comparison: every strategy on the same workload, measured and checked (``keylane compare``).

For each strategy, on a fresh broker connection, topic and subscription:

1. start the strategy's ``consumers`` consumers (all in this process);
2. run the closed-loop producer for ``duration`` seconds, keeping at most ``window`` events
   outstanding (:mod:`keylane.compare.publisher`): the *measured phase*;
3. stop publishing and *drain*: wait (at most ``drain_timeout``) until every published event
   completed, so lost messages are judged exactly;
4. stop the strategy and run the checker over the recorded history and the final counters.

Throughput is successful completions in the measured phase divided by its length; latency is
publish -> first successful completion, over every event of the run. Order uses the checker's
default rule: an event of a user that completed before an earlier-published event of that user
is an order violation unless every event it overtook was redelivered (a nack, a timeout); those
excused reorderings are reported separately (``excused_reorders``).

The sim may import backends: this module connects brokers (``keylane.brokers.connect``) and,
lazily, the Redis lock (``keylane.locks.redis``). It imports no CLI and no rich.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from keylane._validate import check_int, check_number, check_seconds
from keylane.brokers import connect
from keylane.check import HistoryRecorder, check, recorded
from keylane.compare.handler import DecisionHandler, HandlerConfig
from keylane.compare.publisher import ClosedLoopPublisher
from keylane.compare.results import CompareResult, StrategyResult, throughput
from keylane.compare.stats import summarize
from keylane.compare.strategies import STRATEGY_NAMES, StrategyConfig, create_strategy
from keylane.compare.workload import STUCK_USER, Workload, WorkloadConfig
from keylane.errors import InvalidArgumentError, KeylaneError
from keylane.locks.base import DEFAULT_REDIS_URL, LOCK_KEY_PREFIX, KeyLock
from keylane.state import MemoryStateStore

__all__ = ["CompareConfig", "CompareObserver", "run_compare", "run_strategy"]

#: Prefix of the topics and subscriptions a comparison creates.
TOPIC_PREFIX = "keylane-compare"


@dataclass(frozen=True, slots=True)
class CompareConfig:
    """Everything a comparison run needs.

    Args:
        strategies: names to run, in order.
        broker_url: ``memory://`` (embedded broker) or ``pulsar://host:6650``.
        broker_options: keyword arguments for the backend (e.g. ``admin_url`` for Pulsar).
        redis_url: Redis for ``shared-lock``.
        duration: measured phase per strategy, seconds (> 0).
        warmup: seconds of publishing before the measured phase (>= 0): subscriptions settle
            (a Failover partition is not dispatched until ``activeConsumerFailoverDelayTimeMillis``,
            1 s, after its consumers joined) and the window fills. Not measured.
        rate: None for the closed loop (as fast as the window allows); else an open-loop offered
            load in events per second (the window still caps the backlog).
        window: most events outstanding (published, not completed) at once.
        drain_timeout: longest wait for the backlog after publishing stops, seconds.
        publishers: concurrent publishing tasks.
        stuck: run the head-of-line scenario (one user's first attempt hangs).
        stuck_at: seconds into the measured phase the stuck user's session is published.
        workload: users and bursts.
        handler: simulated latency (and the stuck hang's length).
        strategy: consumers, concurrency, timeouts, lock settings.
        history_dir: if set, each strategy's history is also written there as
            ``<strategy>.jsonl`` (JSON Lines for ``keylane check``) with its final per-user
            counters as ``<strategy>.counters.json`` (for ``keylane check --counters``).
    """

    strategies: tuple[str, ...] = STRATEGY_NAMES
    broker_url: str = "memory://"
    broker_options: dict[str, object] = field(default_factory=dict)
    redis_url: str = DEFAULT_REDIS_URL
    duration: float = 6.0
    warmup: float = 1.5
    rate: float | None = None
    window: int = 4000
    drain_timeout: float = 60.0
    publishers: int = 64
    stuck: bool = False
    stuck_at: float = 1.0
    workload: WorkloadConfig = field(default_factory=WorkloadConfig)
    handler: HandlerConfig = field(default_factory=HandlerConfig)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    history_dir: Path | None = None

    def __post_init__(self) -> None:
        unknown = [name for name in self.strategies if name not in STRATEGY_NAMES]
        if unknown or not self.strategies:
            raise InvalidArgumentError(
                f"unknown strategy {unknown[0]!r}; valid strategies: {', '.join(STRATEGY_NAMES)}"
                if unknown
                else "strategies must not be empty"
            )
        check_seconds("duration", self.duration, allow_zero=False)
        check_seconds("drain_timeout", self.drain_timeout)
        check_int("window", self.window)
        if self.window < self.workload.max_burst:
            raise InvalidArgumentError(
                f"window must be >= max_burst ({self.workload.max_burst}), got {self.window}"
            )
        check_int("publishers", self.publishers, 1)
        check_seconds("warmup", self.warmup)
        if self.rate is not None:
            check_number("rate", self.rate, above=0)
        check_seconds("stuck_at", self.stuck_at)

    def describe(self) -> dict[str, object]:
        """The workload and run settings as a JSON-ready dict."""
        cfg = self.strategy
        return {
            **self.workload.describe(),
            "broker": self.broker_url,
            "duration_s": self.duration,
            "warmup_s": self.warmup,
            "rate": self.rate,
            "window": self.window,
            "drain_timeout_s": self.drain_timeout,
            "consumers": cfg.consumers,
            "max_in_flight": cfg.max_in_flight,
            "handler_timeout_s": cfg.handler_timeout,
            "latency_median_ms": self.handler.latency_median * 1000,
            "latency_sigma": self.handler.latency_sigma,
            "lock_ttl_s": cfg.lock_ttl,
            "lock_contention": cfg.contention.value,
            "nack_delay_s": cfg.nack_delay,
            "stuck_key": STUCK_USER if self.stuck else None,
            "stuck_for_s": self.handler.stuck_for if self.stuck else None,
        }


class CompareObserver(Protocol):
    """Progress callbacks of :func:`run_compare` (the CLI renders them with rich)."""

    def started(self, name: str, duration: float) -> None:
        """A strategy's measured phase begins."""

    def tick(self, name: str, phase: str, elapsed: float, completed: int, outstanding: int) -> None:
        """Periodic progress; ``phase`` is ``"measuring"`` or ``"draining"``."""

    def finished(self, result: StrategyResult) -> None:
        """A strategy finished (or was skipped: ``result.skipped``)."""


LockFactory = Callable[[], Awaitable[KeyLock]]


def redis_lock_factory(url: str, prefix: str) -> LockFactory:
    """A factory that connects a :class:`~keylane.locks.redis.RedisKeyLock` (imported lazily)."""

    async def make() -> KeyLock:
        from keylane.locks.redis import RedisKeyLock

        lock = RedisKeyLock(url, prefix=prefix)
        await lock.connect()
        return lock

    return make


async def _ticker(
    name: str, publisher: ClosedLoopPublisher, observer: CompareObserver, phase: list[str]
) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        await asyncio.sleep(0.25)
        observer.tick(
            name, phase[0], loop.time() - start, publisher.completed, publisher.outstanding
        )


async def run_strategy(
    name: str,
    config: CompareConfig,
    *,
    run_id: str,
    lock_factory: LockFactory | None = None,
    observer: CompareObserver | None = None,
    recorder: HistoryRecorder | None = None,
) -> StrategyResult:
    """Run one strategy through the measured phase and the drain, then check its history.

    Args:
        recorder: where to record the history (a fresh in-memory one by default); pass one to
            inspect the attempts afterwards.

    Raises:
        KeylaneError: the broker, the lock or the strategy failed (with the reason).
    """
    lock = await lock_factory() if (name == "shared-lock" and lock_factory) else None
    store = MemoryStateStore()
    await store.open()
    if recorder is None:
        recorder = HistoryRecorder(_history_path(config, name, ".jsonl"))
    workload = Workload(config.workload)
    stuck_user = STUCK_USER if config.stuck else None
    handler_config = replace(config.handler, stuck_user=stuck_user)
    strategy = create_strategy(name, config.strategy, lock=lock)
    topic = f"{TOPIC_PREFIX}-{run_id}-{name}"
    ticker: asyncio.Task[None] | None = None
    started = time.monotonic()
    try:
        async with connect(config.broker_url, **config.broker_options) as broker:
            await broker.create_topic(topic, strategy.partitions())
            producer = await broker.create_producer(topic, batching=None)
            publisher = ClosedLoopPublisher(
                producer,
                workload,
                recorder,
                window=config.window,
                publishers=config.publishers,
                stuck_user=stuck_user,
                stuck_at=config.stuck_at,
            )
            handler = DecisionHandler(store, handler_config, on_success=publisher.on_success)
            strategy.on_error = publisher.abort
            await strategy.start(
                broker, topic, f"{TOPIC_PREFIX}-{name}", recorded(handler, recorder)
            )
            phase = ["measuring"]
            if observer is not None:
                observer.started(name, config.warmup + config.duration)
                ticker = asyncio.create_task(_ticker(name, publisher, observer, phase))
            try:
                await publisher.run(config.duration, warmup=config.warmup, rate=config.rate)
                phase[0] = "draining"
                drained = await publisher.drain(config.drain_timeout)
            except Exception as exc:
                if strategy.error is None:
                    raise
                raise KeylaneError(f"strategy {name!r} failed: {exc}") from exc
            finally:
                await strategy.stop(0.0 if strategy.error else 2.0)
                await producer.close()
    finally:
        if ticker is not None:
            ticker.cancel()
        if lock is not None:
            await lock.close()
        recorder.close()
    counters = await handler.counters()
    await store.close()
    counters_path = _history_path(config, name, ".counters.json")
    if counters_path is not None:
        counters_path.write_text(json.dumps(counters, sort_keys=True) + "\n", encoding="utf-8")
    report = check(recorder.history(), counters=counters)
    counts = report.counts()
    return StrategyResult(
        name=name,
        summary=strategy.summary,
        throughput=throughput(publisher.measured_completions, publisher.measured_seconds),
        latency=summarize(publisher.latencies + publisher.stuck_latencies),
        others=summarize(publisher.latencies) if config.stuck else None,
        stuck=summarize(publisher.stuck_latencies) if config.stuck else None,
        exclusivity_violations=report.exclusivity_count,
        lost_updates=int(counts["lost_updates"] or 0),
        order_violations=report.order_count,
        excused_reorders=report.excused_order_count,
        lost_messages=report.lost_count,
        duplicates=report.duplicate_count,
        published=publisher.published,
        completed=publisher.completed,
        unfinished=publisher.outstanding,
        drained=drained,
        elapsed=time.monotonic() - started,
        stats=strategy.stats.to_json(),
    )


@contextlib.contextmanager
def _harness_gc() -> Iterator[None]:
    """Keep the cyclic GC from rescanning the run's recorded history over and over.

    The harness keeps every attempt and publication in memory for the checker (hundreds of
    thousands of objects). With the default thresholds the collector traverses them again and
    again, a cost that grows with the history and so taxes the fastest strategy most: it measured
    ~20% of a lanes run. Raising the gen-0 threshold for the duration of the comparison removes
    that harness artefact for every strategy alike; the previous thresholds come back after.
    """
    previous = gc.get_threshold()
    gc.set_threshold(50_000, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*previous)


async def _check_redis(config: CompareConfig, prefix: str) -> str | None:
    """None if Redis answers, else the reason ``shared-lock`` cannot run."""
    try:
        lock = await redis_lock_factory(config.redis_url, prefix)()
    except KeylaneError as exc:  # LockError, or MissingExtraError without the redis extra
        return str(exc)
    await lock.close()
    return None


async def run_compare(
    config: CompareConfig, observer: CompareObserver | None = None
) -> CompareResult:
    """Run every configured strategy in turn and collect the results.

    ``shared-lock`` needs Redis: if Redis cannot be reached, that strategy is skipped (its result
    has ``skipped`` set, with the reason) and the others still run.

    Raises:
        InvalidArgumentError: ``history_dir`` cannot be created or written (checked first).
        KeylaneError: a broker or strategy failed.
    """
    _prepare_history_dir(config.history_dir)
    run_id = f"{int(time.time())}-{secrets.token_hex(3)}"
    lock_prefix = f"{LOCK_KEY_PREFIX}{run_id}:"
    lock_problem = None
    if "shared-lock" in config.strategies:
        lock_problem = await _check_redis(config, lock_prefix)
    results: list[StrategyResult] = []
    with _harness_gc():
        for name in config.strategies:
            result = await _run_one(name, config, run_id, lock_prefix, lock_problem, observer)
            results.append(result)
            if observer is not None:
                observer.finished(result)
    return CompareResult(results=results, workload=config.describe(), stuck=config.stuck)


def _prepare_history_dir(path: Path | None) -> None:
    """Create ``history_dir`` before anything runs, so a bad path fails in a second, not later."""
    if path is None:
        return
    if path.exists() and not path.is_dir():
        raise InvalidArgumentError(f"history_dir {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgumentError(
            f"history_dir {path} cannot be created: {exc.strerror or exc}"
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise InvalidArgumentError(f"history_dir {path} is not writable")


def _history_path(config: CompareConfig, name: str, suffix: str) -> Path | None:
    """Where a strategy's history file goes, creating the folder; None without history_dir."""
    if config.history_dir is None:
        return None
    config.history_dir.mkdir(parents=True, exist_ok=True)
    return config.history_dir / f"{name}{suffix}"


async def _run_one(
    name: str,
    config: CompareConfig,
    run_id: str,
    lock_prefix: str,
    lock_problem: str | None,
    observer: CompareObserver | None,
) -> StrategyResult:
    """One strategy's result, or a skip result if it needs Redis and Redis is unavailable."""
    if name == "shared-lock" and lock_problem is not None:
        return StrategyResult.skip(name, f"Redis unavailable: {lock_problem}")
    return await run_strategy(
        name,
        config,
        run_id=run_id,
        lock_factory=redis_lock_factory(config.redis_url, lock_prefix),
        observer=observer,
    )
