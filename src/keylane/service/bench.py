"""``keylane bench engine``: events per second through the whole pipeline.

broker -> lanes -> decide -> commit -> relay -> gateway: a :class:`Pipeline` (the embedded
gateway over HTTP, a real SQLite file or PostgreSQL server), fed as fast as it takes events (not
on a simulated clock): the first ``events`` events of a generated Black Friday day, without the
scraping bot (one hot key decided serially would measure one key's latency, not the engine).
Prints measured numbers; asserts nothing.

Measured: events decided per second from the first publish to the last decision; the commit
latency (hand-over to the store until the commit returned, group commit included) at p50 and
p99; the group commit's mean batch; the messages delivered by the end.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from keylane.clock import ScaledClock
from keylane.journeys import Event, load_default_journeys
from keylane.runtime import DecisionOutcome, DecisionRecord, encode_event
from keylane.service.pipeline import Pipeline, PipelineConfig
from keylane.service.report import percentile
from keylane.service.schemas import drop_schema, with_schema
from keylane.workload import BlackFridaySpec, generate

__all__ = ["EngineBenchResult", "bench_engine"]


@dataclass(frozen=True, slots=True)
class EngineBenchResult:
    """One run of :func:`bench_engine`."""

    store: str
    events: int
    seconds: float
    events_per_second: float
    commit_p50_ms: float
    commit_p99_ms: float
    mean_batch: float
    delivered: int
    group_commit: bool
    cpu_seconds: float

    def as_dict(self) -> dict[str, object]:
        """The result as a JSON-ready dict."""
        return asdict(self)


async def bench_engine(
    store_url: str | None = None,
    *,
    events: int = 50_000,
    subscribers: int = 20_000,
    consumers: int = 4,
    group_commit: bool = True,
    data_dir: Path | None = None,
) -> EngineBenchResult:
    """Run ``events`` events through a fresh pipeline on ``store_url`` (a SQLite file if None).

    A PostgreSQL store gets a schema of its own (``?schema=keylane_bench_<random>``), dropped
    afterwards, so a run never finds an earlier run's state (its events would all be duplicates).

    Raises:
        KeylaneError: a backend failed.
    """
    day = await asyncio.to_thread(generate, BlackFridaySpec(subscribers=subscribers, bot_views=0))
    batch = day[:events]
    workdir = data_dir or Path(tempfile.mkdtemp(prefix="keylane-bench-"))
    schema = None
    if store_url is not None and store_url.startswith(("postgresql://", "postgres://")):
        schema = f"keylane_bench_{secrets.token_hex(4)}"
        store_url = with_schema(store_url, schema)
    try:
        return await _run(batch, workdir, store_url, consumers, group_commit)
    finally:
        if schema is not None and store_url is not None:
            await drop_schema(store_url, schema)


async def _run(
    batch: list[Event], workdir: Path, store_url: str | None, consumers: int, group_commit: bool
) -> EngineBenchResult:
    clock = ScaledClock(batch[0].occurred_at, 1.0)
    latencies: list[float] = []

    def observe(record: DecisionRecord) -> None:
        if record.outcome is DecisionOutcome.COMMITTED and record.commit_started is not None:
            assert record.committed is not None
            latencies.append(record.committed - record.commit_started)

    config = PipelineConfig(
        data_dir=workdir,
        store_url=store_url,
        consumers=consumers,
        history=False,
        group_commit=group_commit,
    )
    async with Pipeline(config, load_default_journeys(), clock) as pipeline:
        worker, producer = pipeline.worker, pipeline.producer
        assert worker is not None
        assert producer is not None
        worker.handler.add_observer(observe)
        cpu, started = time.process_time(), time.monotonic()
        for start in range(0, len(batch), 1000):
            await asyncio.gather(
                *(producer.send(encode_event(e), key=e.key) for e in batch[start : start + 1000])
            )
        while worker.stats().lanes.total.acked < len(batch):  # noqa: ASYNC110 - a snapshot
            await asyncio.sleep(0.02)
        seconds = time.monotonic() - started
        cpu = time.process_time() - cpu
        stats = worker.stats()
        delivered = 0 if pipeline.gateway is None else len(pipeline.gateway.ledger)
        url = pipeline.store_url
    group = stats.group_commit
    return EngineBenchResult(
        store=url.split("://")[0],
        events=len(batch),
        seconds=seconds,
        events_per_second=len(batch) / seconds,
        commit_p50_ms=percentile(latencies, 0.5) * 1000,
        commit_p99_ms=percentile(latencies, 0.99) * 1000,
        mean_batch=0.0 if group is None else group.mean_batch,
        delivered=delivered,
        group_commit=group_commit,
        cpu_seconds=cpu,
    )
