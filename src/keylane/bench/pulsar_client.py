"""The bare Pulsar client's send loops: the yardstick for keylane's producer over Pulsar.

Each function publishes ``messages`` messages of ``payload_size`` bytes over ``keys`` keys to a
topic with the client alone (no keylane), the way a user of ``pulsar-client`` would write the
loop, and returns a :class:`ProduceRun`; ``ready`` is called once the producer exists, just
before the timed loop. All use the same producer settings as keylane's
default producer: KEY_BASED batching, 1000 messages or 10 ms per batch, and room for 2000
unconfirmed messages (what keylane gives its producers, so that the next batch fills while one
is in flight; the client's default is 1000).

- :func:`client_send_async`: the synchronous client's ``send_async`` with a callback per message,
  blocking when the producer's queue is full (``block_if_queue_full``); no event loop.
- :func:`client_asyncio_gather`: ``pulsar.asyncio``, ``asyncio.gather`` of 2000 sends at a time.
- :func:`client_asyncio_in_turn`: ``pulsar.asyncio``, each send awaited before the next: every
  message waits for its batch's publish delay.

The issue's table measured these three (Pulsar 4.0.8, 64-byte messages, 1000 keys).

This module is the one exception to "only ``keylane.brokers.pulsar`` imports pulsar": measuring
the client without keylane is its purpose. It imports ``pulsar`` inside the functions, so
importing it needs no extra; from keylane only the Pulsar backend's exit-safe client close.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "GATHER",
    "ProduceRun",
    "client_asyncio_gather",
    "client_asyncio_in_turn",
    "client_send_async",
    "payloads",
]

#: Sends per ``asyncio.gather`` in :func:`client_asyncio_gather`.
GATHER = 2000
#: The producers' room for unconfirmed messages (``max_pending_messages``).
MAX_PENDING = 2000


@dataclass(frozen=True, slots=True)
class ProduceRun:
    """One producer's timed run.

    Attributes:
        messages: messages published (all confirmed by the broker).
        started: wall-clock time of the first send (``time.time()``, comparable across
            processes).
        finished: wall-clock time the last one was confirmed.
        cpu_seconds: CPU time of the process meanwhile (all its threads).
    """

    messages: int
    started: float
    finished: float
    cpu_seconds: float

    @property
    def seconds(self) -> float:
        """Wall-clock seconds of the run."""
        return self.finished - self.started

    @property
    def msgs_per_second(self) -> float:
        """Messages per second."""
        return self.messages / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, float | int]:
        """A JSON-friendly view."""
        return {
            "messages": self.messages,
            "started": self.started,
            "finished": self.finished,
            "cpu_seconds": round(self.cpu_seconds, 4),
        }


def payloads(messages: int, keys: int, payload_size: int) -> tuple[list[str], bytes]:
    """Key names and the payload padding (each payload is ``pad + 8-byte index``)."""
    return [f"key-{k}" for k in range(keys)], b"x" * max(payload_size - 8, 0)


def _producer_options() -> dict[str, object]:
    import pulsar

    return {
        "batching_enabled": True,
        "batching_type": pulsar.BatchingType.KeyBased,
        "batching_max_messages": 1000,
        "batching_max_publish_delay_ms": 10,
        "max_pending_messages": MAX_PENDING,
    }


def client_send_async(
    service_url: str,
    topic: str,
    *,
    messages: int,
    keys: int,
    payload_size: int,
    ready: Callable[[], None] | None = None,
) -> ProduceRun:
    """The synchronous client: ``send_async`` with a callback per message, in a plain loop."""
    import pulsar

    client = pulsar.Client(service_url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        producer = client.create_producer(topic, block_if_queue_full=True, **_producer_options())
        names, pad = payloads(messages, keys, payload_size)
        confirmed = threading.Event()
        counted = [0]

        def callback(result: object, message_id: object) -> None:
            counted[0] += 1
            if counted[0] == messages:
                confirmed.set()

        if ready is not None:
            ready()
        started, cpu = time.time(), time.process_time()
        send_async = producer.send_async
        for i in range(messages):
            send_async(pad + i.to_bytes(8, "big"), callback, partition_key=names[i % keys])
        producer.flush()
        confirmed.wait()
        run = ProduceRun(messages, started, time.time(), time.process_time() - cpu)
        producer.close()
        return run
    finally:
        client.close()


async def client_asyncio_gather(
    service_url: str,
    topic: str,
    *,
    messages: int,
    keys: int,
    payload_size: int,
    ready: Callable[[], None] | None = None,
) -> ProduceRun:
    """``pulsar.asyncio``: ``asyncio.gather`` of :data:`GATHER` sends at a time."""
    import pulsar
    from pulsar.asyncio import Client

    from keylane.brokers.pulsar._client import close_client

    client = Client(service_url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        producer = await client.create_producer(topic, **_producer_options())
        names, pad = payloads(messages, keys, payload_size)
        if ready is not None:
            ready()
        started, cpu = time.time(), time.process_time()
        send = producer.send
        for start in range(0, messages, GATHER):
            await asyncio.gather(
                *(
                    send(pad + i.to_bytes(8, "big"), partition_key=names[i % keys])
                    for i in range(start, min(messages, start + GATHER))
                )
            )
        run = ProduceRun(messages, started, time.time(), time.process_time() - cpu)
        await producer.close()
        return run
    finally:
        await close_client(client)  # the client's asyncio close can abort the process at exit


async def client_asyncio_in_turn(
    service_url: str,
    topic: str,
    *,
    messages: int,
    keys: int,
    payload_size: int,
    ready: Callable[[], None] | None = None,
) -> ProduceRun:
    """``pulsar.asyncio``: each send awaited before the next one starts."""
    import pulsar
    from pulsar.asyncio import Client

    from keylane.brokers.pulsar._client import close_client

    client = Client(service_url, logger=pulsar.ConsoleLogger(pulsar.LoggerLevel.Error))
    try:
        producer = await client.create_producer(topic, **_producer_options())
        names, pad = payloads(messages, keys, payload_size)
        if ready is not None:
            ready()
        started, cpu = time.time(), time.process_time()
        for i in range(messages):
            await producer.send(pad + i.to_bytes(8, "big"), partition_key=names[i % keys])
        run = ProduceRun(messages, started, time.time(), time.process_time() - cpu)
        await producer.close()
        return run
    finally:
        await close_client(client)  # the client's asyncio close can abort the process at exit
