"""Key_Shared over Pulsar: keylane beside the bare client and pulsar-perf, in one run, with ratios.

:func:`compare_key_shared` measures, one after the other on the same machine and broker:

* **embedded, end to end**: :func:`~keylane.bench.pipelined.pipelined_end_to_end` on
  ``memory://``;
* **keylane over Pulsar, end to end**: the same over ``PulsarBroker`` (``enqueue`` ->
  ``receive_many`` -> ``acknowledge``, 4 Key_Shared consumers, one process);
* **keylane over Pulsar, lanes end to end**: :func:`~keylane.bench.pipelined.lanes_end_to_end`
  (a :class:`~keylane.lanes.LaneGroup` of 4 consumers);
* **keylane over Pulsar, by phase**: :func:`~keylane.bench.pipelined.produce_then_drain`, what
  pulsar-perf measures (produce a backlog; then drain it with Key_Shared consumers);
* **produce paths**: one fresh process each (:mod:`keylane.bench.pulsar_ingest`): keylane's
  ``enqueue``, ``send`` from 1000 tasks, ``send`` awaited in turn, and the bare client's
  ``send_async``, ``pulsar.asyncio`` gather and ``pulsar.asyncio`` awaited in turn;
* **the ingest curve**: keylane's ``enqueue`` path in 1, 2 and 4 processes at once, the
  ``messages`` split evenly over them;
* **pulsar-perf, by phase**: :func:`~keylane.bench.pulsar_perf.pulsar_perf_key_shared`.

The produce paths and the curve are measured ``rounds`` times, in turn (each round starts with
another one), because the machine's load changes from second to second; the figures are the
median runs, with the range beside them. The load average before and after is kept with them.

The paths awaited in turn publish :data:`IN_TURN_MESSAGES` (keylane) and
:data:`CLIENT_IN_TURN_MESSAGES` (the bare client, about 85 msg/s) messages, the others
``messages``. All use 64-byte payloads over 1000 keys with KEY_BASED batching, except
pulsar-perf, which produces for ``perf_duration`` seconds with random keys and batching off (see
:mod:`keylane.bench.pulsar_perf`).

Imports brokers through :func:`keylane.brokers.connect` and the contract only.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from keylane.bench.broker import BrokerBenchResult
from keylane.bench.pipelined import lanes_end_to_end, pipelined_end_to_end, produce_then_drain
from keylane.bench.pulsar_ingest import IngestResult, IngestSeries, ProducePath, run_producers
from keylane.bench.pulsar_perf import PerfRate, PulsarPerfResult, pulsar_perf_key_shared
from keylane.brokers import connect
from keylane.errors import InvalidArgumentError

__all__ = [
    "CLIENT_IN_TURN_MESSAGES",
    "CLIENT_PATHS",
    "GOALS",
    "IN_TURN_MESSAGES",
    "KeySharedComparison",
    "compare_key_shared",
]

#: Messages of keylane's ``send`` awaited in turn (a round trip each).
IN_TURN_MESSAGES = 2000
#: Messages of ``pulsar.asyncio`` awaited in turn (each waits for the publish delay).
CLIENT_IN_TURN_MESSAGES = 300
#: The bare client's paths; the best of them is the produce goal's yardstick.
CLIENT_PATHS = (
    ProducePath.CLIENT_SEND_ASYNC,
    ProducePath.CLIENT_ASYNCIO_GATHER,
    ProducePath.CLIENT_ASYNCIO_IN_TURN,
)
#: The order of the one-process produce paths.
PRODUCE_PATHS = (
    ProducePath.KEYLANE_ENQUEUE,
    ProducePath.KEYLANE_SEND_GATHER,
    ProducePath.KEYLANE_SEND_IN_TURN,
    *CLIENT_PATHS,
)
#: The issue's goals: ratio name -> the least it should reach.
GOALS = {
    "keylane produce / best bare-client produce": 0.90,
    "keylane e2e / min(perf produce, perf consume)": 0.50,
}


@dataclass(frozen=True, slots=True)
class KeySharedComparison:
    """The figures of :func:`compare_key_shared` and their ratios."""

    embedded: BrokerBenchResult
    pulsar: BrokerBenchResult
    lanes: BrokerBenchResult
    backlog_produce: PerfRate
    keylane_consume: PerfRate
    produce_paths: tuple[IngestSeries, ...]
    curve: tuple[IngestSeries, ...]
    perf: PulsarPerfResult
    #: The machine's 1-minute load average before and after the run.
    load: tuple[float, float] = (0.0, 0.0)

    def path(self, path: ProducePath) -> IngestResult:
        """The median one-process run of ``path``."""
        for series in self.produce_paths:
            if series.path is path:
                return series.median
        raise KeyError(path)

    @property
    def keylane_produce(self) -> IngestResult:
        """keylane's pipelined produce in one process (``enqueue``)."""
        return self.path(ProducePath.KEYLANE_ENQUEUE)

    @property
    def best_client(self) -> IngestResult:
        """The fastest bare-client path in one process."""
        return max((self.path(p) for p in CLIENT_PATHS), key=lambda r: r.msgs_per_second)

    @property
    def perf_bound(self) -> float:
        """pulsar-perf's slower phase, msg/s."""
        return min(self.perf.produce.msgs_per_second, self.perf.consume.msgs_per_second)

    @property
    def ratios(self) -> dict[str, float]:
        """keylane over Pulsar relative to the bare client, pulsar-perf and the embedded broker."""
        perf_produce = self.perf.produce.msgs_per_second
        ratios = {
            "keylane produce / best bare-client produce": self.keylane_produce.msgs_per_second
            / self.best_client.msgs_per_second,
            "the same, per CPU second of the producer process": (
                self.keylane_produce.msgs_per_cpu_second / self.best_client.msgs_per_cpu_second
            ),
            "keylane e2e / min(perf produce, perf consume)": self.pulsar.msgs_per_second
            / self.perf_bound,
            "keylane lanes e2e / min(perf produce, perf consume)": self.lanes.msgs_per_second
            / self.perf_bound,
            "keylane consume / perf consume": self.keylane_consume.msgs_per_second
            / self.perf.consume.msgs_per_second,
            "keylane produce / perf produce": self.keylane_produce.msgs_per_second / perf_produce,
            "keylane e2e over Pulsar / embedded e2e": self.pulsar.msgs_per_second
            / self.embedded.msgs_per_second,
        }
        for series in self.curve:
            ratios[f"keylane produce x{series.processes} processes / perf produce"] = (
                series.median.msgs_per_second / perf_produce
            )
        return ratios

    def rows(self) -> list[tuple[str, str, float]]:
        """``(what, how, msg/s)`` rows of the main table."""
        return [
            ("embedded (memory://)", "end to end", self.embedded.msgs_per_second),
            ("keylane over Pulsar", "end to end", self.pulsar.msgs_per_second),
            ("keylane over Pulsar", "lanes end to end", self.lanes.msgs_per_second),
            ("keylane over Pulsar", "produce (1 process)", self.keylane_produce.msgs_per_second),
            ("keylane over Pulsar", "consume backlog", self.keylane_consume.msgs_per_second),
            ("pulsar-perf (Java)", "produce", self.perf.produce.msgs_per_second),
            ("pulsar-perf (Java)", "consume backlog", self.perf.consume.msgs_per_second),
        ]

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "embedded_e2e": self.embedded.as_dict(),
            "pulsar_e2e": self.pulsar.as_dict(),
            "pulsar_lanes_e2e": self.lanes.as_dict(),
            "keylane_backlog_produce": self.backlog_produce.as_dict(),
            "keylane_consume": self.keylane_consume.as_dict(),
            "produce_paths": [r.as_dict() for r in self.produce_paths],
            "produce_curve": [r.as_dict() for r in self.curve],
            "perf_produce": self.perf.produce.as_dict(),
            "perf_consume": self.perf.consume.as_dict(),
            "perf_commands": list(self.perf.commands),
            "ratios": {k: round(v, 3) for k, v in self.ratios.items()},
            "goals": dict(GOALS),
            "load_average_before_after": list(self.load),
        }


def _path_messages(path: ProducePath, messages: int) -> int:
    if path is ProducePath.KEYLANE_SEND_IN_TURN:
        return min(messages, IN_TURN_MESSAGES)
    if path is ProducePath.CLIENT_ASYNCIO_IN_TURN:
        return min(messages, CLIENT_IN_TURN_MESSAGES)
    return messages


async def compare_key_shared(
    service_url: str,
    admin_url: str,
    *,
    messages: int = 100_000,
    consumers: int = 4,
    keys: int = 1000,
    payload_size: int = 64,
    receiver_queue_size: int = 1000,
    perf_duration: int = 10,
    processes: Sequence[int] = (1, 2, 4),
    rounds: int = 3,
) -> KeySharedComparison:
    """Run the measurements described in the module docstring, in order.

    Args:
        messages: messages of each end-to-end run, of each one-process produce run, and of
            each point of the ingest curve (split evenly over its processes).
        processes: the ingest curve's process counts (1 is always measured).
        rounds: how often each produce path and curve point is measured (in turn, each round
            starting with another path); the tables show the median run and the range.

    Raises:
        InvalidArgumentError: a parameter is out of range.
        KeylaneError: a measurement failed (a broker error, a producer process, pulsar-perf).
    """
    if min(messages, consumers, keys, receiver_queue_size, perf_duration, rounds) < 1:
        raise InvalidArgumentError("counts, durations and rounds must be >= 1")
    if not processes or min(processes) < 1:
        raise InvalidArgumentError("processes must be counts >= 1")
    load_before = os.getloadavg()[0]
    shape = {
        "messages": messages,
        "consumers": consumers,
        "keys": keys,
        "payload_size": payload_size,
        "receiver_queue_size": receiver_queue_size,
    }
    async with connect("memory://") as memory:
        embedded = await pipelined_end_to_end(memory, **shape)
    async with connect(service_url, admin_url=admin_url, log_level="error") as pulsar:
        over_pulsar = await pipelined_end_to_end(pulsar, **shape)
        lanes = await lanes_end_to_end(pulsar, **shape)
        backlog, consume = await produce_then_drain(pulsar, **shape)

    async def produce(path: ProducePath, count: int) -> IngestResult:
        total = _path_messages(path, messages)
        return await run_producers(
            path,
            count,
            service_url=service_url,
            topic=f"keylane-ingest-{uuid.uuid4().hex[:12]}",
            messages=max(1, total // count),
            keys=keys,
            payload_size=payload_size,
        )

    runs: dict[tuple[ProducePath, int], list[IngestResult]] = {}
    order = [(path, 1) for path in PRODUCE_PATHS]
    order += [(ProducePath.KEYLANE_ENQUEUE, n) for n in sorted(set(processes) - {1})]
    for round_ in range(rounds):
        shift = round_ % len(order)
        for path, count in order[shift:] + order[:shift]:
            runs.setdefault((path, count), []).append(await produce(path, count))
    perf = await pulsar_perf_key_shared(
        service_url,
        admin_url,
        duration=perf_duration,
        consumers=consumers,
        payload_size=payload_size,
        receiver_queue_size=receiver_queue_size,
    )
    counts = sorted(set(processes) | {1})
    return KeySharedComparison(
        embedded=embedded,
        pulsar=over_pulsar,
        lanes=lanes,
        backlog_produce=backlog,
        keylane_consume=consume,
        produce_paths=tuple(IngestSeries(tuple(runs[(p, 1)])) for p in PRODUCE_PATHS),
        curve=tuple(IngestSeries(tuple(runs[(ProducePath.KEYLANE_ENQUEUE, n)])) for n in counts),
        perf=perf,
        load=(load_before, os.getloadavg()[0]),
    )
