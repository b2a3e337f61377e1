"""Noticing the slow way to publish: each ``send`` awaited before the next one starts.

An awaited :meth:`~keylane.brokers.base.Producer.send` costs a round trip to the broker, so a
loop that awaits every send in turn publishes one message per round trip (on Pulsar a few
thousand per second at best, against tens of thousands pipelined). Both backends feed a
:class:`SerialSendWatch` from their batching producers; after :data:`SERIAL_SEND_WARN_AFTER`
such sends in a row it logs one warning on the ``keylane.brokers`` logger that names the fix.

A send counts as "in turn" when nothing else of the producer is in flight as it starts, and the
producer went idle (its last send completed) less than :data:`SERIAL_SEND_GAP` seconds before:
the caller waited for the previous receipt and went straight on. A producer that sends rarely,
or keeps several sends in flight, never counts.

Imports only the standard library.
"""

from __future__ import annotations

import logging

__all__ = ["SERIAL_SEND_GAP", "SERIAL_SEND_WARN_AFTER", "SerialSendWatch"]

logger = logging.getLogger("keylane.brokers")

#: Sends awaited one at a time, in a row, before the warning.
SERIAL_SEND_WARN_AFTER = 1000
#: Seconds between the producer going idle and the next send for that send to count.
SERIAL_SEND_GAP = 0.01


class SerialSendWatch:
    """Counts sends awaited in turn on one producer and warns once.

    Args:
        describe: the producer, for the message (e.g. ``"producer 'p1' on persistent://..."``).
        warn_after: in-turn sends in a row before the warning.
        gap: see the module docstring.
    """

    __slots__ = ("_describe", "_gap", "_idle_since", "_run", "_warn_after", "warned")

    def __init__(
        self,
        describe: str,
        *,
        warn_after: int = SERIAL_SEND_WARN_AFTER,
        gap: float = SERIAL_SEND_GAP,
    ) -> None:
        self._describe = describe
        self._warn_after = warn_after
        self._gap = gap
        self._idle_since: float | None = None
        self._run = 0
        #: True once the warning was logged (it is logged once per producer).
        self.warned = False

    def idle(self, now: float) -> None:
        """The producer has nothing in flight any more (its last send completed at ``now``)."""
        self._idle_since = now

    def awaited_send(self, in_flight: int, now: float) -> None:
        """An awaited ``send`` starts at ``now`` with ``in_flight`` other sends unconfirmed."""
        idle_since = self._idle_since
        if in_flight or idle_since is None or now - idle_since > self._gap:
            self._run = 0
            return
        self._run += 1
        if self._run >= self._warn_after and not self.warned:
            self.warned = True
            logger.warning(
                "%s: %d sends in a row were each awaited before the next one started, so "
                "every message waits a round trip to the broker. Pipeline them: "
                "`future = await producer.enqueue(...)` returns at once and the futures "
                "complete in order (await them later), or start several sends together "
                "(asyncio.gather). See docs/backends.md, 'Pipelined sends'.",
                self._describe,
                self._run,
            )
