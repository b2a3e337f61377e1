"""The system under test while a chaos run goes: gateway, workers, load generator, and the
harness's own publications.

:class:`Cluster` starts and stops the ``keylane`` processes (each in its own process group,
tracked by :class:`~keylane.service.chaos.procs.Children`), follows their history files
(:class:`~keylane.service.chaos.timeline.HistoryTail`), notices a process that exits when it
was not asked to (an *incident*), restarts the load generator where it stopped if it fails
(e.g. a broker restart longer than the client's send timeout), and publishes the harness's own
events (faults' marked events, poison) with a producer of its own, recording them like the load
generator does.

Worker clocks: every worker runs ``--speed S`` from ``--clock-start`` = the first event's time
plus ``S`` times the wall time since the cluster started, so all workers share one engine time
up to ``S`` times the differences of their start-up times (the time from the spawn to the
clock's creation; :class:`~keylane.service.chaos.consent.EngineClock` keeps each
incarnation's, and the report gives the spread).

Imports the broker factory, the runtime's codec, the service's publication log, the harness's
process helpers; no CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from keylane.brokers import connect
from keylane.journeys import Event
from keylane.runtime import encode_event
from keylane.runtime.codec import seq_of_position
from keylane.service.chaos.backends import Services
from keylane.service.chaos.consent import EngineClock
from keylane.service.chaos.procs import (
    ChaosChild,
    ChaosError,
    Children,
    spawn,
    wait_healthy,
    wait_line,
    wait_ready,
)
from keylane.service.chaos.timeline import HistoryTail
from keylane.service.publish import PublicationLog
from keylane.state import Position

__all__ = ["Cluster", "ClusterConfig", "WorkerRun"]

#: Seconds a worker's drain may take before the harness kills it (``2 * grace + 15`` + margin).
DRAIN_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    """What the cluster runs.

    Attributes:
        data_dir: where every file of the run goes.
        rate: events per second of the load generator.
        speed: the workers' engine clock speed (simulated seconds per real one).
        grace: the workers' ``--grace``.
        tag: a unique suffix for the topic and the store schema.
    """

    data_dir: Path
    rate: float
    speed: float = 1.0
    grace: float = 10.0
    tag: str = ""


@dataclass
class WorkerRun:
    """One incarnation of a worker: its process, port and clock."""

    name: str
    child: ChaosChild
    port: int
    clock: EngineClock


class Cluster:
    """The running system (see the module docstring).

    Args:
        services: the servers.
        config: the run's settings.
        children: the registry that cleans up every process.
        events_path: the load generator's events file; ``first_event`` its first event's time.
    """

    def __init__(
        self,
        services: Services,
        config: ClusterConfig,
        children: Children,
        events_path: Path,
        first_event: datetime,
    ) -> None:
        self.services = services
        self.config = config
        self.children = children
        self.dir = config.data_dir
        tag = config.tag or secrets.token_hex(4)
        self.topic = f"persistent://public/default/chaos-{tag}"
        self.subscription = "keylane-decisions"
        self.dlq_topic = f"{self.topic}-{self.subscription}-DLQ"
        self.schema = f"chaos_{tag}"
        self.store_url = f"{services.store_url}?schema={self.schema}"
        self.events_path = events_path
        self.first_event = first_event
        self.base_wall = time.time()
        self.gateway: ChaosChild | None = None
        self.gateway_url = ""
        self.workers: dict[str, WorkerRun] = {}
        self.clocks: list[EngineClock] = []
        self.tail = HistoryTail()
        self.incidents: list[str] = []
        self.expected: set[int] = set()  # pids asked to exit
        self.publishers: list[ChaosChild] = []
        self.publication_paths: list[Path] = []
        self.harness_log = PublicationLog(self.dir / "published-harness.jsonl")
        self.harness_path = self.dir / "published-harness.jsonl"
        self.harness_events: dict[str, Event] = {}
        self.poison: list[str] = []
        self.names_ever: set[str] = set()
        #: The zombie's marked events, and the slow subscriber's (event id, message id, key).
        self.zombie_marks: tuple[str, ...] = ()
        self.hang_event: tuple[str, str, str] | None = None
        self._load_stopped = False
        self._skip = 0
        self._watcher: asyncio.Task[None] | None = None

    # -- time ---------------------------------------------------------------------------------

    def engine_now(self) -> datetime:
        """The engine time a worker started now would have."""
        elapsed = (time.time() - self.base_wall) * self.config.speed
        return self.first_event + timedelta(seconds=elapsed)

    def engine_at(self, monotonic: float) -> datetime:
        """The run's shared engine time at ``monotonic``."""
        return self.engine_at_wall(monotonic + time.time() - time.monotonic())

    def engine_at_wall(self, wall: float) -> datetime:
        """The run's shared engine time at ``wall`` (seconds since the epoch)."""
        return self.first_event + timedelta(seconds=(wall - self.base_wall) * self.config.speed)

    # -- processes ----------------------------------------------------------------------------

    async def start_gateway(self) -> str:
        """``keylane gateway --port 0 --log gateway.jsonl``; its URL."""
        args = ["gateway", "--port", "0", "--log", str(self.dir / "gateway.jsonl")]
        child = await spawn(self.children, "gateway", args, self.dir / "gateway.log", capture=True)
        line = await wait_line(child, "listening on ", 60.0)
        self.gateway = child
        self.gateway_url = line.split("listening on ", 1)[1].split()[0]
        return self.gateway_url

    def history_path(self, name: str) -> Path:
        """A worker's history file."""
        return self.dir / f"{name}.jsonl"

    async def start_worker(self, name: str) -> WorkerRun:
        """Start worker ``name`` (again: its files are appended to) and wait until ready."""
        port = _free_port()
        clock_start = self.engine_now()
        history = self.history_path(name)
        args = [
            "worker",
            *("--broker", self.services.broker_url),
            *("--pulsar-admin-url", self.services.admin_url),
            *("--store", self.store_url, "--gateway", self.gateway_url),
            *("--topic", self.topic, "--subscription", self.subscription, "--name", name),
            *("--history", str(history), "--health-port", str(port)),
            *("--speed", f"{self.config.speed:g}", "--clock-start", clock_start.isoformat()),
            *("--stats-interval", "5", "--grace", str(self.config.grace), "--fault-hooks"),
        ]
        env = {"TMPDIR": str(self.dir)}
        child = await spawn(
            self.children, name, args, self.dir / f"{name}.log", env=env, append=True
        )
        origin = await wait_healthy(child, port)
        await wait_ready(child, port)
        clock = EngineClock(name, origin, clock_start, self.config.speed, child.started)
        run = WorkerRun(name, child, port, clock)
        self.workers[name] = run
        self.names_ever.add(name)
        self.clocks.append(run.clock)
        self.tail.follow(history)
        return run

    async def stop_worker(self, name: str) -> int:
        """SIGTERM worker ``name`` and wait for its drain; its exit code."""
        run = self.workers.pop(name)
        self.expected.add(run.child.pid)
        return await run.child.stop(DRAIN_TIMEOUT)

    async def kill_worker(self, name: str) -> int:
        """``kill -9`` worker ``name``; its exit code (-9)."""
        run = self.workers.pop(name)
        self.expected.add(run.child.pid)
        run.child.signal(signal.SIGKILL)
        return await run.child.process.wait()

    async def start_load(self) -> ChaosChild:
        """Start (or continue, after a failed segment) the load generator."""
        n = len(self.publishers) + 1
        history = self.dir / f"published-{n}.jsonl"
        args = [
            "publish",
            *("--broker", self.services.broker_url),
            *("--pulsar-admin-url", self.services.admin_url, "--topic", self.topic),
            *("--events", str(self.events_path), "--rate", f"{self.config.rate:g}"),
            *("--history", str(history), "--json", "-"),
        ]
        if self._skip:
            args += ["--skip", str(self._skip)]
        env = {"TMPDIR": str(self.dir)}
        child = await spawn(
            self.children, f"publish-{n}", args, self.dir / f"publish-{n}.log", env=env,
            capture=True,
        )  # fmt: skip
        self.publishers.append(child)
        self.publication_paths.append(history)
        return child

    def watch(self) -> None:
        """Start watching the processes (unexpected exits, a failed load segment)."""
        self._watcher = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        noticed: set[int] = set()
        while True:
            await asyncio.sleep(0.5)
            for run in list(self.workers.values()):
                child = run.child
                if not child.running and child.pid not in self.expected | noticed:
                    noticed.add(child.pid)
                    self.incidents.append(
                        f"{child.name} exited {child.process.returncode} on its own: {child.tail()}"
                    )
            publisher = self.publishers[-1] if self.publishers else None
            if publisher is not None and not publisher.running and not self._load_stopped:
                code = publisher.process.returncode
                done = self._lines(self.publication_paths[-1])
                if code == 0:
                    self.incidents.append(f"the load ran out of events after {publisher.name}")
                    self._load_stopped = True
                    continue
                self.incidents.append(
                    f"{publisher.name} exited {code} after {done:,} confirmed sends "
                    f"({publisher.tail(2)}); the load continues in a new segment"
                )
                self._skip += done
                await self.start_load()

    @staticmethod
    def _lines(path: Path) -> int:
        try:
            return sum(1 for line in path.read_text().splitlines() if line.strip())
        except OSError:
            return 0

    async def stop_load(self) -> dict[str, object]:
        """SIGTERM the load generator (it ends after the sends in flight); its summary."""
        self._load_stopped = True
        publisher = self.publishers[-1]
        code = await publisher.stop(90.0)
        for _ in range(20):  # the reader may still be taking the last line
            if publisher.stdout:
                break
            await asyncio.sleep(0.05)
        text = "".join(publisher.stdout).strip()
        if code != 0:
            self.incidents.append(f"{publisher.name} exited {code} when stopped: {text[-200:]}")
        try:
            summary: dict[str, object] = json.loads(text[text.index("{") :]) if text else {}
        except ValueError:
            summary = {}
        return summary

    async def stop_watching(self) -> None:
        """Stop the watcher (it restarts a failed load segment: not while stopping)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, ChaosError):
                await watcher

    async def stop_all(self) -> None:
        """Stop the watcher, drain every worker (each must exit 0), stop the gateway."""
        await self.stop_watching()
        names = list(self.workers)
        codes = await asyncio.gather(*(self.stop_worker(name) for name in names))
        for name, code in zip(names, codes, strict=True):
            if code != 0:
                self.incidents.append(f"{name} exited {code} after SIGTERM (expected 0)")
        if self.gateway is not None:
            self.expected.add(self.gateway.pid)
            code = await self.gateway.stop(30.0)
            if code != 0:
                self.incidents.append(f"the gateway exited {code} after SIGTERM")

    # -- the harness's own publications -----------------------------------------------------

    async def publish(self, events: Sequence[Event]) -> list[str]:
        """Publish ``events`` (recorded for the checker); their message ids."""
        items = [(encode_event(event), event.key) for event in events]
        ids = await self._send(items)
        for event in events:
            self.harness_events[event.event_id] = event
        return ids

    async def publish_poison(self, items: Sequence[tuple[bytes, str]]) -> list[str]:
        """Publish raw payloads under keys (not recorded: they must be dead-lettered)."""
        ids = await self._send(items, record=False)
        self.poison.extend(ids)
        return ids

    async def _send(self, items: Sequence[tuple[bytes, str]], *, record: bool = True) -> list[str]:
        options = {"admin_url": self.services.admin_url, "log_file": str(self.dir / "pulsar.log")}
        ids: list[str] = []
        try:
            async with connect(self.services.broker_url, **options) as broker:
                producer = await broker.create_producer(self.topic, batching=None)
                try:
                    for data, key in items:
                        sent = time.monotonic()
                        message_id = await producer.send(data, key=key)
                        ids.append(str(message_id))
                        if record:
                            seq = seq_of_position(Position.of(message_id))
                            self.harness_log.add(key, seq, str(message_id), sent)
                finally:
                    await producer.close()
        finally:
            self.harness_log.flush()
        return ids

    async def close_log(self) -> None:
        """Close the harness's publication log."""
        self.harness_log.close()

    def expect_alive(self) -> None:
        """Raise if the gateway is gone (nothing could be delivered).

        Raises:
            ChaosError: it exited.
        """
        if self.gateway is not None and not self.gateway.running:
            raise ChaosError(f"the gateway exited: {self.gateway.tail()}")
