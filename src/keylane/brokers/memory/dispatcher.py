"""The dispatcher contract of the embedded broker: what a subscription asks of its dispatcher.

One dispatcher per subscription and partition, chosen by the subscription type of the first
connected consumer (Pulsar ``Dispatcher``). Dispatching never runs inside the caller: it is
scheduled once per event-loop iteration with ``loop.call_soon``, however many triggers arrive.

Imports only storage and config; no client-side code and no other backend.
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING

from keylane.brokers.base import SubscriptionType
from keylane.brokers.memory.config import MemoryBrokerConfig
from keylane.brokers.memory.storage import Entry

if TYPE_CHECKING:
    from keylane.brokers.memory.subscription import BrokerConsumer, Subscription

__all__ = ["RUN_BUDGET", "Dispatcher"]

#: Entries one dispatch run may handle before yielding to the event loop.
RUN_BUDGET = 2000


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
        self._closed = False

    def schedule(self) -> None:
        """Run a dispatch pass soon (once, however often this is called meanwhile)."""
        if not self.scheduled and not self._closed:
            self.scheduled = True
            self.loop.call_soon(self._run_scheduled)

    def _run_scheduled(self) -> None:
        self.scheduled = False
        if not self._closed:
            self.run()

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
