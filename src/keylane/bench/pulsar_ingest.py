"""Produce throughput over Pulsar: keylane's send paths and the bare client's, in 1..N processes.

:func:`run_producers` starts ``processes`` fresh Python processes (``python -m
keylane.bench.pulsar_ingest``), each with one producer on the same topic. Each child connects and
creates its producer, says it is ready, waits for the parent's go, publishes ``messages``
messages with one :class:`ProducePath`, and reports its :class:`ProduceRun`. The rate of the
group is all messages over the span from the first child's first send to the last child's last
receipt, so process start-up and connecting are not measured.

Paths (same producer settings everywhere: KEY_BASED batching, 1000 messages or 10 ms per batch):

- ``keylane-enqueue``: ``future = await producer.enqueue(...)`` per message, futures awaited at
  the end (the pipelined path);
- ``keylane-send-gather``: 1000 tasks, each awaiting ``producer.send`` in turn (the old way to
  pipeline: a task and a wake-up per message);
- ``keylane-send-in-turn``: one ``await producer.send(...)`` after another (the slow path);
- ``client-send-async``, ``client-asyncio-gather``, ``client-asyncio-in-turn``: the bare client
  (:mod:`keylane.bench.pulsar_client`).

The child protocol is lines on standard output that start with :data:`MARKER` (the C++ client
may print its own lines there too): ``ready``, then the run as JSON. The parent writes ``go`` on
the child's standard input.

Imports brokers through :func:`keylane.brokers.connect` and the contract only, and the bare
client's paths.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import json
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from keylane.bench.pulsar_client import (
    ProduceRun,
    client_asyncio_gather,
    client_asyncio_in_turn,
    client_send_async,
    payloads,
)
from keylane.brokers import connect
from keylane.errors import InvalidArgumentError, KeylaneError
from keylane.runtime import settings

__all__ = [
    "MARKER",
    "IngestError",
    "IngestResult",
    "IngestSeries",
    "ProducePath",
    "keylane_enqueue",
    "keylane_send_gather",
    "keylane_send_in_turn",
    "main",
    "run_producers",
]

#: Prefix of the child's protocol lines on its standard output.
MARKER = "@@keylane-bench "
#: Concurrent senders of ``keylane-send-gather``.
SENDERS = 1000


class IngestError(KeylaneError):
    """A producer process failed or did not report in time."""


class ProducePath(enum.Enum):
    """How a producer process publishes (see the module docstring)."""

    KEYLANE_ENQUEUE = "keylane-enqueue"
    KEYLANE_SEND_GATHER = "keylane-send-gather"
    KEYLANE_SEND_IN_TURN = "keylane-send-in-turn"
    CLIENT_SEND_ASYNC = "client-send-async"
    CLIENT_ASYNCIO_GATHER = "client-asyncio-gather"
    CLIENT_ASYNCIO_IN_TURN = "client-asyncio-in-turn"

    @property
    def label(self) -> str:
        """A human description for tables."""
        return _LABELS[self]


_LABELS = {
    ProducePath.KEYLANE_ENQUEUE: "keylane enqueue()",
    ProducePath.KEYLANE_SEND_GATHER: f"keylane send(), {SENDERS} tasks",
    ProducePath.KEYLANE_SEND_IN_TURN: "keylane send() in turn",
    ProducePath.CLIENT_SEND_ASYNC: "client send_async+callback",
    ProducePath.CLIENT_ASYNCIO_GATHER: "client asyncio, gather 2000",
    ProducePath.CLIENT_ASYNCIO_IN_TURN: "client asyncio, in turn",
}

Ready = Callable[[], None]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """``processes`` producer processes of one path, run together."""

    path: ProducePath
    processes: int
    runs: tuple[ProduceRun, ...]

    @property
    def messages(self) -> int:
        """Messages published by all processes."""
        return sum(r.messages for r in self.runs)

    @property
    def seconds(self) -> float:
        """From the first process's first send to the last process's last receipt."""
        return max(r.finished for r in self.runs) - min(r.started for r in self.runs)

    @property
    def msgs_per_second(self) -> float:
        """The group's throughput."""
        return self.messages / self.seconds if self.seconds > 0 else float("inf")

    @property
    def msgs_per_cpu_second(self) -> float:
        """Messages per CPU second of the producer processes (all their threads)."""
        cpu = sum(r.cpu_seconds for r in self.runs)
        return self.messages / cpu if cpu > 0 else float("inf")

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "path": self.path.value,
            "processes": self.processes,
            "messages": self.messages,
            "seconds": round(self.seconds, 4),
            "msgs_per_second": round(self.msgs_per_second, 1),
            "msgs_per_cpu_second": round(self.msgs_per_cpu_second, 1),
            "per_process_msgs_per_second": [round(r.msgs_per_second, 1) for r in self.runs],
        }


@dataclass(frozen=True, slots=True)
class IngestSeries:
    """The same :class:`IngestResult` measured several times (the machine's load varies)."""

    runs: tuple[IngestResult, ...]

    def __post_init__(self) -> None:
        if not self.runs or len({(r.path, r.processes) for r in self.runs}) != 1:
            raise InvalidArgumentError("an IngestSeries holds runs of one path and count")

    @property
    def path(self) -> ProducePath:
        """The path measured."""
        return self.runs[0].path

    @property
    def processes(self) -> int:
        """The producer processes of each run."""
        return self.runs[0].processes

    @property
    def median(self) -> IngestResult:
        """The run with the median rate (the lower of the two middle ones)."""
        ordered = sorted(self.runs, key=lambda r: r.msgs_per_second)
        return ordered[(len(ordered) - 1) // 2]

    @property
    def low(self) -> float:
        """The slowest run's msg/s."""
        return min(r.msgs_per_second for r in self.runs)

    @property
    def high(self) -> float:
        """The fastest run's msg/s."""
        return max(r.msgs_per_second for r in self.runs)

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view: the median run, and every run's rate."""
        return {
            **self.median.as_dict(),
            "runs_msgs_per_second": [round(r.msgs_per_second, 1) for r in self.runs],
        }


# --------------------------------------------------------------------------- keylane's paths


async def keylane_enqueue(
    service_url: str,
    topic: str,
    *,
    messages: int,
    keys: int,
    payload_size: int,
    ready: Ready | None = None,
) -> ProduceRun:
    """``await producer.enqueue(...)`` per message; the futures are awaited at the end."""
    async with connect(service_url, log_level="error") as broker:
        producer = await broker.create_producer(topic)
        names, pad = payloads(messages, keys, payload_size)
        if ready is not None:
            ready()
        started, cpu = time.time(), time.process_time()
        enqueue = producer.enqueue
        futures = [
            await enqueue(pad + i.to_bytes(8, "big"), key=names[i % keys]) for i in range(messages)
        ]
        await producer.flush()
        for future in futures:
            await future
        return ProduceRun(messages, started, time.time(), time.process_time() - cpu)


async def keylane_send_gather(
    service_url: str,
    topic: str,
    *,
    messages: int,
    keys: int,
    payload_size: int,
    ready: Ready | None = None,
) -> ProduceRun:
    """:data:`SENDERS` tasks, each awaiting ``producer.send`` for every message in turn."""
    async with connect(service_url, log_level="error") as broker:
        producer = await broker.create_producer(topic)
        names, pad = payloads(messages, keys, payload_size)

        async def sender(start: int) -> None:
            for i in range(start, messages, SENDERS):
                await producer.send(pad + i.to_bytes(8, "big"), key=names[i % keys])

        if ready is not None:
            ready()
        started, cpu = time.time(), time.process_time()
        await asyncio.gather(*(sender(s) for s in range(min(SENDERS, messages))))
        return ProduceRun(messages, started, time.time(), time.process_time() - cpu)


async def keylane_send_in_turn(
    service_url: str,
    topic: str,
    *,
    messages: int,
    keys: int,
    payload_size: int,
    ready: Ready | None = None,
) -> ProduceRun:
    """One ``await producer.send(...)`` after another."""
    async with connect(service_url, log_level="error") as broker:
        producer = await broker.create_producer(topic)
        names, pad = payloads(messages, keys, payload_size)
        if ready is not None:
            ready()
        started, cpu = time.time(), time.process_time()
        for i in range(messages):
            await producer.send(pad + i.to_bytes(8, "big"), key=names[i % keys])
        return ProduceRun(messages, started, time.time(), time.process_time() - cpu)


_ASYNC_PATHS: dict[ProducePath, Callable[..., Coroutine[Any, Any, ProduceRun]]] = {
    ProducePath.KEYLANE_ENQUEUE: keylane_enqueue,
    ProducePath.KEYLANE_SEND_GATHER: keylane_send_gather,
    ProducePath.KEYLANE_SEND_IN_TURN: keylane_send_in_turn,
    ProducePath.CLIENT_ASYNCIO_GATHER: client_asyncio_gather,
    ProducePath.CLIENT_ASYNCIO_IN_TURN: client_asyncio_in_turn,
}


# --------------------------------------------------------------------------- the child


def _child_ready() -> None:
    """Tell the parent the producer is ready; block until it says go."""
    print(f"{MARKER}ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        raise SystemExit("keylane.bench.pulsar_ingest: the parent did not say go")


def main(argv: Sequence[str] | None = None) -> int:
    """The producer process: ``python -m keylane.bench.pulsar_ingest PATH URL TOPIC ...``."""
    parser = argparse.ArgumentParser(prog="python -m keylane.bench.pulsar_ingest")
    parser.add_argument("path", choices=[p.value for p in ProducePath])
    parser.add_argument("service_url")
    parser.add_argument("topic")
    parser.add_argument("--messages", type=int, required=True)
    parser.add_argument("--keys", type=int, required=True)
    parser.add_argument("--payload-size", type=int, required=True)
    args = parser.parse_args(argv)
    path = ProducePath(args.path)
    options = {
        "messages": args.messages,
        "keys": args.keys,
        "payload_size": args.payload_size,
    }
    if path is ProducePath.CLIENT_SEND_ASYNC:
        _child_ready()
        run = client_send_async(args.service_url, args.topic, **options)
    else:
        run = asyncio.run(
            _ASYNC_PATHS[path](args.service_url, args.topic, ready=_child_ready, **options)
        )
    print(f"{MARKER}{json.dumps(run.as_dict())}", flush=True)
    return 0


# --------------------------------------------------------------------------- the parent


async def _next_marker(proc: asyncio.subprocess.Process, what: str) -> str:
    assert proc.stdout is not None
    while True:
        line = await proc.stdout.readline()
        if not line:
            assert proc.stderr is not None
            tail = (await proc.stderr.read()).decode(errors="replace").strip()[-2000:]
            raise IngestError(f"a producer process exited before {what}: {tail}")
        text = line.decode(errors="replace").rstrip("\n")
        if text.startswith(MARKER):
            return text[len(MARKER) :]


async def run_producers(
    path: ProducePath,
    processes: int,
    *,
    service_url: str,
    topic: str,
    messages: int,
    keys: int = 1000,
    payload_size: int = 64,
    timeout: float = 300.0,
) -> IngestResult:
    """Publish ``messages`` messages from each of ``processes`` producer processes at once.

    Raises:
        InvalidArgumentError: a count below 1 or ``payload_size`` below 8.
        IngestError: a process failed or took longer than ``timeout`` seconds.
    """
    if min(processes, messages, keys) < 1 or payload_size < 8:
        raise InvalidArgumentError("processes, messages and keys must be >= 1, payload_size >= 8")
    command = [
        sys.executable, "-m", "keylane.bench.pulsar_ingest", path.value, service_url, topic,
        "--messages", str(messages), "--keys", str(keys), "--payload-size", str(payload_size),
    ]  # fmt: skip
    procs = [
        await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=settings.child_environment(PYTHONUNBUFFERED="1"),
        )
        for _ in range(processes)
    ]
    try:
        async with asyncio.timeout(timeout):
            for proc in procs:
                await _next_marker(proc, "it was ready")
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            reports = [await _next_marker(proc, "it reported") for proc in procs]
            for proc in procs:
                await proc.wait()
    except TimeoutError:
        raise IngestError(f"{processes} x {path.value} took longer than {timeout}s") from None
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    runs = []
    for report in reports:
        data = json.loads(report)
        runs.append(
            ProduceRun(
                int(data["messages"]),
                float(data["started"]),
                float(data["finished"]),
                float(data["cpu_seconds"]),
            )
        )
    return IngestResult(path, processes, tuple(runs))


if __name__ == "__main__":  # pragma: no cover - the child process
    raise SystemExit(main())
