"""Noticing the slow way to publish: each message sent only after the previous one was stored.

An awaited :meth:`~keylane.brokers.base.Producer.send` costs a round trip to the broker, so a
loop that awaits every send in turn publishes one message per round trip (on Pulsar a few
hundred per second, against tens of thousands pipelined); awaiting each ``enqueue`` future in
turn is the same loop, and also waits for the publish delay. Both backends feed a
:class:`SerialSendWatch` from their batching producers; after :data:`SERIAL_SEND_WARN_AFTER`
such messages in a row it logs one warning on the ``keylane.brokers`` logger that names the fix.

The producer reports when it gets busy (a message is handed over while nothing is in flight) and
when it is idle again (everything handed over is stored), with the messages of that busy spell.
A spell counts as "in turn" when it carried exactly one message and began less than
:data:`SERIAL_SEND_GAP` seconds after the previous spell ended: the caller waited for the
previous receipt and went straight on. A producer that sends rarely, or keeps several messages
in flight, never counts. The producers pay one attribute test per message for this; the calls
happen once per spell.

Imports only the standard library.
"""

from __future__ import annotations

import logging

__all__ = ["SERIAL_SEND_GAP", "SERIAL_SEND_WARN_AFTER", "SerialSendWatch"]

logger = logging.getLogger("keylane.brokers")

#: Messages sent one at a time, in a row, before the warning.
SERIAL_SEND_WARN_AFTER = 1000
#: Seconds between the end of one busy spell and the start of the next for it to count.
SERIAL_SEND_GAP = 0.01


class SerialSendWatch:
    """Counts a producer's messages sent one at a time and warns once.

    Args:
        describe: the producer, for the message (e.g. ``"producer 'p1' on persistent://..."``).
        warn_after: in-turn messages in a row before the warning.
        gap: see the module docstring.
    """

    __slots__ = ("_busy_since", "_describe", "_gap", "_idle_since", "_run", "_warn_after", "warned")

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
        self._busy_since = 0.0
        self._run = 0
        #: True once the warning was logged (it is logged once per producer).
        self.warned = False

    def busy(self, now: float) -> None:
        """The producer took a message while nothing was in flight."""
        self._busy_since = now

    def idle(self, now: float, messages: int) -> None:
        """Everything handed over is stored; ``messages`` were taken since :meth:`busy`."""
        idle_since, self._idle_since = self._idle_since, now
        if messages != 1 or idle_since is None or self._busy_since - idle_since > self._gap:
            self._run = 0
            return
        self._run += 1
        if self._run >= self._warn_after and not self.warned:
            self.warned = True
            logger.warning(
                "%s: %d messages in a row were each sent only after the previous one was "
                "stored, so every message waits a round trip to the broker. Pipeline them: "
                "`future = await producer.enqueue(...)` returns at once and the futures "
                "complete in order (await them later), or start several sends together "
                "(asyncio.gather). See docs/backends.md, 'Pipelined sends'.",
                self._describe,
                self._run,
            )
