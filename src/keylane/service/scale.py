"""``keylane bench scale``: 1, 2 and 4 worker processes on one subscription, measured.

Per point (a fresh topic, PostgreSQL schema and ``keylane gateway`` process with its own log, so
every point starts equal and its sends are new deliveries, not replays of the last point's):

1. start N ``keylane worker`` processes (one Key_Shared subscription, each with its own history
   file and ``/readyz``), wait until all are ready;
2. **saturation**: ``keylane publish`` sends ``events`` events of the synthetic day (no bot) as
   fast as it can; the workers decide them. Throughput is the events over the time from the
   first send to the last commit (from the histories); p99 there is mostly queueing;
3. **latency**: ``keylane publish`` sends the next events at a fixed ``latency_rate`` for
   ``latency_seconds`` (default half the first point's throughput, the same for every point);
   p50/p99 of publish (the send started) to commit (the commit returned), from the histories;
4. SIGTERM the workers (each must drain and exit 0), check the merged histories (the checker
   must be clean) and the gateway's duplicate count.

CPU during the saturation window (from the first decision to the last), in cores: the Pulsar
broker's java process, the PostgreSQL server and its backends, each worker, the gateway and the
publisher (``/proc/<pid>/stat``), and the whole machine (``/proc/stat``; "other" is what none of
these used: other programs on the machine). From them, :func:`saturation` says what saturates
and :func:`flattening` where the curve flattens: computed, not asserted.

Imports the service's process helpers, the checker and the stdlib; asyncpg only to drop the
schemas afterwards; no CLI.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from keylane.check import check, read_history
from keylane.service.procstat import machine_cpu, process_cpu, tree_cpu
from keylane.service.report import percentile
from keylane.service.scale_procs import (
    Child,
    DecisionTail,
    ScaleBenchError,
    check_alive,
    delete_topics,
    finish_publisher,
    free_port,
    gateway_stats,
    read_published,
    spawn,
    wait_decided,
    wait_gateway,
    wait_ready,
)
from keylane.service.scale_report import (
    Cpu,
    ScalePoint,
    ScaleReport,
    ceiling,
    cpu_per_event,
    flattening,
    saturation,
)
from keylane.service.schemas import drop_schema, with_schema

__all__ = [
    "Cpu",
    "ScaleConfig",
    "ScalePoint",
    "ScaleReport",
    "ceiling",
    "cpu_per_event",
    "flattening",
    "run_scale",
    "saturation",
]


@dataclass(frozen=True, slots=True)
class ScaleConfig:
    """What the scale-out benchmark runs.

    Args:
        broker_url, admin_url: the Pulsar broker and its admin REST URL.
        store_url: a PostgreSQL URL; each point uses a fresh ``?schema=``, dropped afterwards.
        workers: the worker counts to measure.
        events: events of the saturation phase.
        latency_seconds: length of the latency phase.
        latency_rate: events/s of the latency phase (None: half the first point's throughput).
        subscribers: subscribers of the synthetic day.
        consumers: Key_Shared consumers per worker process.
        broker_pid, store_pid: the broker's and the store's server pids (None: not measured).
        data_dir: where the histories and logs go.
        phase_timeout: seconds a phase may take before the point fails.
    """

    broker_url: str
    admin_url: str
    store_url: str
    data_dir: Path
    workers: tuple[int, ...] = (1, 2, 4)
    events: int = 20_000
    latency_seconds: float = 8.0
    latency_rate: float | None = None
    subscribers: int = 10_000
    consumers: int = 1
    broker_pid: int | None = None
    store_pid: int | None = None
    phase_timeout: float = 180.0


class _CpuWindow:
    """CPU readings of every measured process at the start and the end of a window."""

    def __init__(self, config: ScaleConfig, workers: list[Child], gateway: Child) -> None:
        self._config = config
        self._workers = workers
        self._gateway = gateway
        self._start = self._read()
        self._started = time.monotonic()

    def _read(self) -> dict[str, float | None]:
        config = self._config
        values: dict[str, float | None] = {
            "broker": None if config.broker_pid is None else process_cpu(config.broker_pid),
            "store": None if config.store_pid is None else tree_cpu(config.store_pid),
            "gateway": process_cpu(self._gateway.pid),
            "machine": machine_cpu().busy,
        }
        for child in self._workers:
            values[child.name] = process_cpu(child.pid)
        return values

    def finish(self, publisher_seconds: float) -> Cpu:
        """The cores used since the start; ``publisher_seconds`` of CPU the publisher used."""
        end, wall = self._read(), max(time.monotonic() - self._started, 1e-6)

        def used(key: str) -> float | None:
            a, b = self._start.get(key), end.get(key)
            return None if a is None or b is None else (b - a) / wall

        publisher = publisher_seconds / wall
        each = [used(child.name) or 0.0 for child in self._workers]
        broker, store, gateway = used("broker"), used("store"), used("gateway") or 0.0
        machine = used("machine") or 0.0
        known = sum(each) + (broker or 0.0) + (store or 0.0) + gateway + publisher
        return Cpu(
            seconds=wall,
            broker=broker,
            store=store,
            workers=sum(each),
            worker_max=max(each, default=0.0),
            gateway=gateway,
            publisher=publisher,
            machine=machine,
            other=max(0.0, machine - known),
        )


def _latencies(sent: dict[str, float], committed: dict[str, float]) -> list[float]:
    return [committed[m] - t for m, t in sent.items() if m in committed]


def _int(stats: dict[str, object], name: str) -> int:
    value = stats.get(name, 0)
    return value if isinstance(value, int) else 0


class _Point:
    """The processes and files of one worker count."""

    def __init__(self, config: ScaleConfig, n: int, run_id: str) -> None:
        self.config = config
        self.n = n
        self.directory = config.data_dir / f"{n}-workers"
        self.topic = f"persistent://public/default/keylane-scale-{run_id}-{n}"
        self.schema = f"keylane_scale_{run_id}_{n}"
        self.gateway: Child | None = None
        self.gateway_url = ""
        self.workers: list[Child] = []
        self.publishers: list[Child] = []
        self.tail = DecisionTail([self.directory / f"worker-{i}.jsonl" for i in range(n)])

    async def start_gateway(self) -> None:
        log = self.directory / "gateway.jsonl"
        args = ["gateway", "--port", "0", "--log", str(log)]
        self.gateway = await spawn("gateway", args, self.directory / "gateway.log", capture=True)
        self.gateway_url = await wait_gateway(self.gateway)

    async def start_workers(self) -> None:
        config = self.config
        store = with_schema(config.store_url, self.schema)
        ports = []
        for i in range(self.n):
            port = free_port()
            args = [
                *("worker", "--broker", config.broker_url, "--pulsar-admin-url", config.admin_url),
                *("--store", store, "--gateway", self.gateway_url, "--topic", self.topic),
                *("--name", f"scale-{self.n}-{i}", "--consumers", str(config.consumers)),
                *("--history", str(self.directory / f"worker-{i}.jsonl")),
                *("--health-port", str(port)),
            ]
            log = self.directory / f"worker-{i}.log"
            self.workers.append(await spawn(f"worker-{i}", args, log))
            ports.append(port)
        await wait_ready(list(zip(self.workers, ports, strict=True)))

    async def publish(self, phase: str, extra: list[str]) -> tuple[Child, Path]:
        config = self.config
        history = self.directory / f"publish-{phase}.jsonl"
        args = [
            *("publish", "--broker", config.broker_url, "--pulsar-admin-url", config.admin_url),
            *("--topic", self.topic, "--subscribers", str(config.subscribers), "--bot-views", "0"),
            *("--history", str(history), "--json", "-", *extra),
        ]
        log = self.directory / f"publish-{phase}.log"
        child = await spawn(f"publish-{phase}", args, log, capture=True)
        self.publishers.append(child)
        return child, history

    async def saturation(self) -> tuple[dict[str, float], Cpu]:
        """Publish ``events`` unpaced; the CPU from the first decision to the last."""
        config, what = self.config, "the saturation phase"
        publisher, history = await self.publish("saturation", ["--count", str(config.events)])
        await wait_decided(self.tail, 1, config.phase_timeout, self.workers, what)
        assert self.gateway is not None
        window = _CpuWindow(config, self.workers, self.gateway)
        first = last = process_cpu(publisher.pid) or 0.0
        deadline = time.monotonic() + config.phase_timeout
        while self.tail.poll() < config.events:
            check_alive(self.workers, what)
            if time.monotonic() > deadline:
                raise ScaleBenchError(f"{what}: {len(self.tail.decided)} of {config.events}")
            last = process_cpu(publisher.pid) or last
            await asyncio.sleep(0.1)
        cpu = window.finish(publisher_seconds=last - first)
        await finish_publisher(publisher)
        return read_published(history), cpu

    async def latency(self, rate: float) -> dict[str, float]:
        """Publish the next events at ``rate`` for ``latency_seconds``; wait until decided."""
        config = self.config
        count = max(1, round(rate * config.latency_seconds))
        extra = ["--skip", str(config.events), "--count", str(count), "--rate", f"{rate:.3f}"]
        publisher, history = await self.publish("latency", extra)
        await finish_publisher(publisher)
        sent = read_published(history)
        target = config.events + len(sent)
        await wait_decided(self.tail, target, config.phase_timeout, self.workers, "latency")
        return sent

    async def stop(self) -> tuple[int, ...]:
        for child in self.publishers:
            await child.stop(timeout=10)
        return tuple([await child.stop() for child in self.workers])

    async def stop_gateway(self) -> dict[str, object]:
        """The gateway's stats, then stop it (empty stats if it never started)."""
        if self.gateway is None:
            return {}
        try:
            return await gateway_stats(self.gateway_url) if self.gateway_url else {}
        finally:
            await self.gateway.stop()

    async def clean_up(self) -> None:
        dead_letters = f"{self.topic}-keylane-decisions-DLQ"
        await delete_topics(self.config.admin_url, [self.topic, dead_letters])
        await drop_schema(self.config.store_url, self.schema)


async def _point(config: ScaleConfig, n: int, rate: float | None, run_id: str) -> ScalePoint:
    point = _Point(config, n, run_id)
    point.directory.mkdir(parents=True, exist_ok=True)
    try:
        await point.start_gateway()
        await point.start_workers()
        sent, cpu = await point.saturation()
        committed = [point.tail.committed[m] for m in sent if m in point.tail.committed]
        seconds = max(committed) - min(sent.values())
        throughput = len(sent) / seconds
        latency_rate = rate if rate is not None else throughput / 2
        paced = await point.latency(latency_rate)
    finally:
        codes = await point.stop()
        stats = await point.stop_gateway()
    files = [
        point.directory / f"{name}.jsonl" for name in ("publish-saturation", "publish-latency")
    ]
    files += [point.directory / f"worker-{i}.jsonl" for i in range(n)]
    report = await asyncio.to_thread(lambda: check(read_history(files)))
    await point.clean_up()
    saturated = _latencies(sent, point.tail.committed)
    latencies = _latencies(paced, point.tail.committed)
    return ScalePoint(
        workers=n,
        events=len(sent),
        seconds=seconds,
        events_per_second=throughput,
        saturation_p50_ms=percentile(saturated, 0.5) * 1000,
        saturation_p99_ms=percentile(saturated, 0.99) * 1000,
        latency_rate=latency_rate,
        latency_events=len(paced),
        latency_p50_ms=percentile(latencies, 0.5) * 1000,
        latency_p99_ms=percentile(latencies, 0.99) * 1000,
        cpu=cpu,
        checker_clean=report.clean,
        duplicate_deliveries=_int(stats, "duplicate_deliveries"),
        deliveries=_int(stats, "deliveries"),
        exit_codes=codes,
    )


async def run_scale(config: ScaleConfig) -> ScaleReport:
    """Measure every worker count of ``config`` in turn; return the report.

    Raises:
        ScaleBenchError: a process failed or a phase did not finish in time.
        KeylaneError: a gateway could not start.
    """
    config.data_dir.mkdir(parents=True, exist_ok=True)
    run_id = secrets.token_hex(3)
    points: list[ScalePoint] = []
    rate = config.latency_rate
    for n in config.workers:
        point = await _point(config, n, rate, run_id)
        points.append(point)
        rate = point.latency_rate
    cores = os.cpu_count() or 1
    measured = tuple(points)
    return ScaleReport(
        points=measured,
        cores=cores,
        flattens=flattening(measured),
        saturates=tuple(saturation(p, cores) for p in measured),
    )
