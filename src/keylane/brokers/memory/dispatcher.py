"""The dispatcher contract of the embedded broker: what a subscription asks of its dispatcher.

One dispatcher per subscription and partition, chosen by the subscription type of the first
connected consumer (Pulsar ``Dispatcher``). Dispatching never runs inside the caller: it is
scheduled once per event-loop iteration with ``loop.call_soon``, however many triggers arrive.

A dispatch pass that raises never stops dispatching silently: the error is logged with its
traceback on the ``keylane.brokers.memory`` logger, counted in :attr:`Dispatcher.errors`, and
another pass is scheduled after :data:`RETRY_DELAY` (subclasses put back whatever the failed pass
had taken, so nothing is lost).

Imports only storage and config; no client-side code and no other backend.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from keylane.brokers.base import SubscriptionType
from keylane.brokers.memory.config import MemoryBrokerConfig
from keylane.brokers.memory.storage import Entry

if TYPE_CHECKING:
    from keylane.brokers.memory.subscription import BrokerConsumer, Subscription

__all__ = ["RETRY_DELAY", "RUN_BUDGET", "Dispatcher", "logger"]

#: Entries one dispatch run may handle before yielding to the event loop.
RUN_BUDGET = 2000

#: Seconds after a failed dispatch pass before the next one (loop time).
RETRY_DELAY = 0.5

#: Where the embedded broker reports errors it contained.
logger = logging.getLogger("keylane.brokers.memory")


class Dispatcher(abc.ABC):
    """Delivers a subscription's entries to its consumers."""

    sub_type: SubscriptionType

    def __init__(
        self, sub: Subscription, loop: asyncio.AbstractEventLoop, config: MemoryBrokerConfig
    ) -> None:
        self.sub = sub
        self.loop = loop
        self.config = config
        #: A dispatch pass is already scheduled.
        self.scheduled = False
        #: Dispatch passes that raised (each was logged and retried).
        self.errors = 0
        self._closed = False
        self._retry_timer: asyncio.TimerHandle | None = None

    def schedule(self) -> None:
        """Run a dispatch pass soon (once, however often this is called meanwhile)."""
        if not self.scheduled and not self._closed:
            self.scheduled = True
            self.loop.call_soon(self._run_scheduled)

    def wake(self) -> None:
        """Something changed that may let more be dispatched: run a pass soon."""
        self.schedule()

    def _run_scheduled(self) -> None:
        self.scheduled = False
        if self._closed:
            return
        try:
            self.run()
        except Exception:
            self.errors += 1
            logger.exception(
                "memory broker: a %s dispatch pass on %s / %s failed; retrying in %.1f s",
                self.sub_type.value,
                self.sub.log.name,
                self.sub.name,
                RETRY_DELAY,
            )
            if self._retry_timer is None:
                self._retry_timer = self.loop.call_later(RETRY_DELAY, self._retry)

    def _retry(self) -> None:
        self._retry_timer = None
        if not self._closed:
            self.wake()

    @abc.abstractmethod
    def run(self) -> None:
        """One dispatch pass: deliver what the consumers' permits allow."""

    def check_add(self, consumer: BrokerConsumer) -> None:  # noqa: B027 - optional hook
        """Raise if ``consumer`` cannot join (same type and policy already checked)."""

    @abc.abstractmethod
    def add_consumer(self, consumer: BrokerConsumer) -> None:
        """A consumer connected."""

    @abc.abstractmethod
    def remove_consumer(self, consumer: BrokerConsumer) -> None:
        """A consumer left; its unacknowledged messages follow the type's rules."""

    def on_flow(self, consumer: BrokerConsumer) -> None:
        """``consumer`` got more permits."""
        self.schedule()

    def on_new_entries(self) -> None:
        """New entries were appended to the log."""
        self.schedule()

    def on_ack(self, consumer: BrokerConsumer | None, entry: Entry, complete: bool) -> None:  # noqa: B027
        """One message of ``entry`` was acknowledged (``complete``: the whole entry now)."""

    @abc.abstractmethod
    def redeliver(self, consumer: BrokerConsumer, entry_ids: Iterable[int] | None) -> None:
        """Redeliver ``consumer``'s unacknowledged entries (all if ``entry_ids`` is None)."""

    def close(self) -> None:
        """Stop dispatching and cancel timers."""
        self._closed = True
        if self._retry_timer is not None:
            self._retry_timer.cancel()
            self._retry_timer = None
