"""Key_Shared throughput three ways: embedded broker, keylane over Pulsar, and pulsar-perf.

:func:`compare_key_shared` runs, one after the other on the same machine:

* **embedded, end to end**: :func:`~keylane.bench.broker.bench_broker` on ``memory://``;
* **keylane over Pulsar, end to end**: the same benchmark over ``PulsarBroker``;
* **keylane over Pulsar, by phase**: :func:`keylane_phases_key_shared`, which measures exactly
  what pulsar-perf measures (produce a backlog; then drain it with Key_Shared consumers);
* **pulsar-perf, by phase**: :func:`~keylane.bench.pulsar_perf.pulsar_perf_key_shared`.

All Key_Shared, same payload size, consumer count and prefetch. Differences that remain:
keylane produces ``messages`` messages with KEY_BASED batching over ``keys`` keys (in practice one
message per entry at this key count); pulsar-perf produces for ``perf_duration`` seconds with
random keys and batching off (see :mod:`keylane.bench.pulsar_perf`).

Imports brokers through :func:`keylane.brokers.connect` and the contract only.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from keylane.bench.broker import BrokerBenchResult, bench_broker, drain_consumer
from keylane.bench.pulsar_perf import PerfRate, PulsarPerfResult, pulsar_perf_key_shared
from keylane.brokers import connect
from keylane.brokers.base import BatchingType, Broker, InitialPosition, SubscriptionType
from keylane.errors import InvalidArgumentError

__all__ = ["KeySharedComparison", "compare_key_shared", "keylane_phases_key_shared"]

KEY_SHARED = SubscriptionType.KEY_SHARED


@dataclass(frozen=True, slots=True)
class KeySharedComparison:
    """The figures of :func:`compare_key_shared` and their ratios."""

    embedded: BrokerBenchResult
    pulsar: BrokerBenchResult
    keylane_produce: PerfRate
    keylane_consume: PerfRate
    perf: PulsarPerfResult

    @property
    def ratios(self) -> dict[str, float]:
        """keylane over Pulsar relative to the embedded broker and to pulsar-perf."""
        perf_bound = min(self.perf.produce.msgs_per_second, self.perf.consume.msgs_per_second)
        return {
            "pulsar_e2e / embedded_e2e": self.pulsar.msgs_per_second
            / self.embedded.msgs_per_second,
            "keylane_produce / perf_produce": self.keylane_produce.msgs_per_second
            / self.perf.produce.msgs_per_second,
            "keylane_consume / perf_consume": self.keylane_consume.msgs_per_second
            / self.perf.consume.msgs_per_second,
            "pulsar_e2e / min(perf_produce, perf_consume)": self.pulsar.msgs_per_second
            / perf_bound,
        }

    def rows(self) -> list[tuple[str, str, float]]:
        """``(what, how, msg/s)`` rows for printing."""
        return [
            ("embedded (memory://)", "end to end", self.embedded.msgs_per_second),
            ("keylane over Pulsar", "end to end", self.pulsar.msgs_per_second),
            ("keylane over Pulsar", "produce", self.keylane_produce.msgs_per_second),
            ("keylane over Pulsar", "consume backlog", self.keylane_consume.msgs_per_second),
            ("pulsar-perf (Java)", "produce", self.perf.produce.msgs_per_second),
            ("pulsar-perf (Java)", "consume backlog", self.perf.consume.msgs_per_second),
        ]

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "embedded_e2e": self.embedded.as_dict(),
            "pulsar_e2e": self.pulsar.as_dict(),
            "keylane_produce": self.keylane_produce.as_dict(),
            "keylane_consume": self.keylane_consume.as_dict(),
            "perf_produce": self.perf.produce.as_dict(),
            "perf_consume": self.perf.consume.as_dict(),
            "perf_commands": list(self.perf.commands),
            "ratios": {k: round(v, 3) for k, v in self.ratios.items()},
        }


async def keylane_phases_key_shared(
    broker: Broker,
    *,
    messages: int = 100_000,
    consumers: int = 4,
    keys: int = 1000,
    batching: BatchingType | None = BatchingType.KEY_BASED,
    payload_size: int = 64,
    receiver_queue_size: int = 1000,
    senders: int = 1000,
    timeout: float = 30.0,
) -> tuple[PerfRate, PerfRate]:
    """Produce a backlog, then drain it with Key_Shared consumers: pulsar-perf's two phases.

    The subscription exists (and retains) before the first send. The produce figure runs from
    the first send to the flushed last one; the consume figure from subscribing the consumers
    to the last acknowledgement.

    Raises:
        InvalidArgumentError: a parameter is out of range.
        TimeoutError: a consumer got nothing for ``timeout`` seconds before the end.
    """
    if min(messages, consumers, keys, senders, receiver_queue_size) < 1 or payload_size < 8:
        raise InvalidArgumentError("counts must be >= 1 and payload_size >= 8")
    topic = f"keylane-phases-{uuid.uuid4().hex[:12]}"
    holder = await broker.subscribe(
        topic, "perf", subscription_type=KEY_SHARED, initial_position=InitialPosition.EARLIEST
    )
    await holder.close()  # the durable subscription stays and retains the backlog
    producer = await broker.create_producer(topic, batching=batching)
    key_names = [f"key-{k}" for k in range(keys)]
    pad = b"x" * (payload_size - 8)

    async def sender(start: int) -> None:
        for i in range(start, messages, senders):
            await producer.send(pad + i.to_bytes(8, "big"), key=key_names[i % keys])

    started = time.perf_counter()
    await asyncio.gather(*(sender(s) for s in range(min(senders, messages))))
    await producer.flush()
    produce_seconds = time.perf_counter() - started
    await producer.close()

    seen: set[bytes] = set()
    counts = [0] * consumers
    done = asyncio.Event()

    async def drain(index: int) -> None:
        consumer = await broker.subscribe(
            topic,
            "perf",
            subscription_type=KEY_SHARED,
            consumer_name=f"perf-{index}",
            receiver_queue_size=receiver_queue_size,
        )
        try:
            await drain_consumer(consumer, seen, counts, index, done, messages, timeout)
        finally:
            await consumer.close()

    started = time.perf_counter()
    tasks = [asyncio.ensure_future(drain(i)) for i in range(consumers)]
    waiter = asyncio.ensure_future(done.wait())
    await asyncio.wait([waiter, *tasks], return_when=asyncio.FIRST_COMPLETED)
    consume_seconds = time.perf_counter() - started
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    waiter.cancel()
    if not done.is_set():
        failures = [r for r in results if isinstance(r, BaseException)]
        raise failures[0] if failures else TimeoutError("the Key_Shared drain stopped early")
    return (
        PerfRate("keylane", "produce", messages, messages / produce_seconds),
        PerfRate("keylane", "consume", messages, messages / consume_seconds),
    )


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
) -> KeySharedComparison:
    """Run the four Key_Shared measurements described in the module docstring, in order."""

    async def end_to_end(broker: Broker) -> BrokerBenchResult:
        return await bench_broker(
            broker,
            subscription_type=KEY_SHARED,
            messages=messages,
            consumers=consumers,
            keys=keys,
            batching=BatchingType.KEY_BASED,
            payload_size=payload_size,
            receiver_queue_size=receiver_queue_size,
        )

    async with connect("memory://") as memory:
        embedded = await end_to_end(memory)
    async with connect(service_url, admin_url=admin_url) as pulsar:
        over_pulsar = await end_to_end(pulsar)
        produce, consume = await keylane_phases_key_shared(
            pulsar,
            messages=messages,
            consumers=consumers,
            keys=keys,
            batching=BatchingType.KEY_BASED,
            payload_size=payload_size,
            receiver_queue_size=receiver_queue_size,
        )
    perf = await pulsar_perf_key_shared(
        service_url,
        admin_url,
        duration=perf_duration,
        consumers=consumers,
        payload_size=payload_size,
        receiver_queue_size=receiver_queue_size,
    )
    return KeySharedComparison(embedded, over_pulsar, produce, consume, perf)
