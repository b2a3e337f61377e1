"""Subscriptions of the embedded broker: the cursor, the consumers and the dispatcher.

A :class:`Subscription` lives on one partition. The first connected consumer fixes its type (and
Key_Shared policy) and with it the dispatcher; while consumers are connected, a consumer of another
type or policy is rejected (Pulsar ``PersistentSubscription.addConsumer``). A
:class:`BrokerConsumer` is the broker's view of one client consumer on one partition: its flow
permits and, for Shared and Key_Shared, its pending acknowledgements.

Imports the dispatchers; never the client-side consumer (only as a type) and no other backend.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from keylane.brokers.base import KeySharedPolicy, Message, SubscriptionType
from keylane.brokers.memory.config import MemoryBrokerConfig
from keylane.brokers.memory.dispatcher import Dispatcher
from keylane.brokers.memory.key_shared import KeySharedDispatcher
from keylane.brokers.memory.shared import SharedDispatcher
from keylane.brokers.memory.single import SingleActiveDispatcher
from keylane.brokers.memory.storage import Cursor, TopicLog
from keylane.errors import InvalidArgumentError, SubscriptionTypeMismatchError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["BrokerConsumer", "MessageSink", "Subscription"]


class MessageSink(Protocol):
    """The client side of a consumer, as the dispatcher sees it."""

    def _enqueue(self, messages: list[Message]) -> None:
        """Put dispatched messages into the client's receive queue."""


class BrokerConsumer:
    """One consumer on one partition's subscription, as the broker tracks it.

    Attributes:
        permits: flow permits left (messages); the client adds to it in :meth:`flow`.
        pending: Shared/Key_Shared only: entry id -> delivered messages not acknowledged.
        unacked: sum of ``pending`` counts.
        blocked: stopped by ``max_unacked_per_consumer`` until ``unacked`` halves.
    """

    __slots__ = (
        "blocked",
        "connected",
        "freed",
        "ks_policy",
        "name",
        "owner",
        "partition",
        "pending",
        "permits",
        "priority",
        "refill",
        "sticky_ranges",
        "sub",
        "sub_type",
        "unacked",
    )

    def __init__(
        self,
        owner: MessageSink,
        sub: Subscription,
        name: str,
        sub_type: SubscriptionType,
        queue_size: int,
        priority: int,
        ks_policy: KeySharedPolicy | None,
    ) -> None:
        self.owner = owner
        self.sub = sub
        self.name = name
        self.sub_type = sub_type
        self.priority = priority
        self.ks_policy = ks_policy
        self.sticky_ranges: Sequence[tuple[int, int]] = ks_policy.sticky_ranges if ks_policy else ()
        self.partition = sub.log.partition
        #: The client sends a flow when this many permits were freed (C++: queue size / 2).
        self.refill = max(queue_size // 2, 1)
        self.permits = queue_size
        self.freed = 0
        self.pending: dict[int, int] = {}
        self.unacked = 0
        self.blocked = False
        self.connected = False

    def __repr__(self) -> str:
        return f"<BrokerConsumer {self.name!r} on {self.sub.log.name} / {self.sub.name}>"

    def flow(self) -> None:
        """Return the freed permits to the broker (Pulsar ``CommandFlow``)."""
        if self.freed:
            self.permits += self.freed
            self.freed = 0
            if self.connected:
                dispatcher = self.sub.dispatcher
                if dispatcher is not None:
                    dispatcher.on_flow(self)


def _describe(policy: KeySharedPolicy) -> tuple[str, bool]:
    return policy.mode.name, policy.allow_out_of_order_delivery


class Subscription:
    """A durable subscription on one partition."""

    __slots__ = ("config", "consumers", "cursor", "dispatcher", "log", "loop", "name")

    def __init__(
        self,
        log: TopicLog,
        name: str,
        cursor: Cursor,
        loop: asyncio.AbstractEventLoop,
        config: MemoryBrokerConfig,
    ) -> None:
        self.log = log
        self.name = name
        self.cursor = cursor
        self.loop = loop
        self.config = config
        self.consumers: list[BrokerConsumer] = []
        self.dispatcher: Dispatcher | None = None

    # ------------------------------------------------------------------ consumers

    def check(self, consumer: BrokerConsumer) -> None:
        """Raise the error Pulsar would give ``consumer``; changes nothing."""
        dispatcher = self.dispatcher
        if not self.consumers or dispatcher is None:
            return  # the first consumer fixes the type; KeySharedPolicy checked its own ranges
        if dispatcher.sub_type is not consumer.sub_type:
            raise SubscriptionTypeMismatchError(
                "Subscription is of different type. Active subscription type of "
                f"'{dispatcher.sub_type.value}' is different than the connecting consumer's "
                f"type '{consumer.sub_type.value}'."
            )
        if isinstance(dispatcher, KeySharedDispatcher):
            mode, ooo = _describe(dispatcher.policy)
            new_mode, new_ooo = _describe(consumer.ks_policy or KeySharedPolicy())
            if mode != new_mode:
                raise SubscriptionTypeMismatchError(
                    "Subscription is of different type. Active subscription key_shared mode of "
                    f"'{mode}' is different than the connecting consumer's key_shared mode "
                    f"'{new_mode}'."
                )
            if ooo != new_ooo:
                detail = (
                    "does not allow out of order delivery while the connecting consumer allows it"
                    if new_ooo
                    else "allows out of order delivery while the connecting consumer does not "
                    "allow it"
                )
                raise SubscriptionTypeMismatchError(
                    f"Subscription is of different type. Active subscription {detail}."
                )
        dispatcher.check_add(consumer)

    def add(self, consumer: BrokerConsumer) -> None:
        """Connect ``consumer`` (call :meth:`check` first)."""
        if not self.consumers or self.dispatcher is None:
            if self.dispatcher is not None:
                self.dispatcher.close()
            self.dispatcher = self._new_dispatcher(consumer)
        self.consumers.append(consumer)
        consumer.connected = True
        self.dispatcher.add_consumer(consumer)

    def remove(self, consumer: BrokerConsumer) -> None:
        """Disconnect ``consumer``; its unacknowledged messages follow the type's rules."""
        if not consumer.connected:
            return
        consumer.connected = False
        self.consumers.remove(consumer)
        if self.dispatcher is not None:
            self.dispatcher.remove_consumer(consumer)

    def _new_dispatcher(self, consumer: BrokerConsumer) -> Dispatcher:
        sub_type = consumer.sub_type
        if sub_type is SubscriptionType.SHARED:
            return SharedDispatcher(self, self.loop, self.config)
        if sub_type is SubscriptionType.KEY_SHARED:
            return KeySharedDispatcher(
                self, self.loop, self.config, consumer.ks_policy or KeySharedPolicy()
            )
        return SingleActiveDispatcher(self, self.loop, self.config, sub_type)

    def delete(self) -> None:
        """Drop the subscription and its cursor (no consumer may be connected)."""
        if self.dispatcher is not None:
            self.dispatcher.close()
            self.dispatcher = None
        self.log.subscriptions.pop(self.name, None)

    # ------------------------------------------------------------------ entries and acks

    def ack(self, consumer: BrokerConsumer | None, entry_id: int, batch_index: int) -> None:
        """Acknowledge a whole entry (``batch_index`` < 0) or one message of a batch entry.

        A batch-index acknowledgement counts only when the broker acknowledges at batch-index
        level (``acknowledgment_at_batch_index_level_enabled``); otherwise it is ignored, as
        Pulsar's cursor ignores an ack set then: the entry stays unacknowledged until it is
        acknowledged as a whole.

        Raises:
            InvalidArgumentError: no such message was ever stored on this partition.
        """
        log = self.log
        index = entry_id - log.base
        if index >= 0:
            entries = log.entries
            entry = entries[index] if index < len(entries) else None
        else:
            entry = log.islands.get(entry_id) if log.islands else None
        if entry is None:
            if entry_id >= log.end or entry_id < 0:
                raise InvalidArgumentError(
                    f"message ({entry_id},{batch_index}) does not exist on {log.name}"
                )
            return  # freed, so acknowledged by every subscription
        if batch_index >= entry.size and batch_index > 0:
            raise InvalidArgumentError(
                f"batch index {batch_index} out of range for entry {entry_id} on {log.name}"
            )
        cursor = self.cursor
        if batch_index < 0 or entry.size == 1:
            if entry_id <= cursor.mark_delete or (
                cursor.deleted.starts and entry_id in cursor.deleted
            ):
                return
            if cursor.batch_acks:
                cursor.batch_acks.pop(entry_id, None)
            cursor.delete(entry_id)
            complete = True
        else:
            if not self.config.acknowledgment_at_batch_index_level_enabled:
                return
            result = cursor.ack(entry, batch_index)
            if not result:
                return
            complete = result == 2
        dispatcher = self.dispatcher
        if dispatcher is not None:
            dispatcher.on_ack(consumer, entry, complete)

    def ack_cumulative(self, entry_id: int, batch_index: int, batch_index_ack: bool) -> None:
        """Acknowledge everything up to and including this message (single-active types).

        ``batch_index`` < 0 means the whole entry. Stopping inside a batch acknowledges that
        batch's prefix only when both the client (``batch_index_ack``) and the broker acknowledge
        at batch-index level; otherwise everything before the entry is acknowledged.
        """
        log = self.log
        entry = log.get(entry_id)
        if entry is None:
            if entry_id >= log.end or entry_id < 0:
                raise InvalidArgumentError(
                    f"message ({entry_id},{batch_index}) does not exist on {log.name}"
                )
            return
        batch_level = batch_index_ack and self.config.acknowledgment_at_batch_index_level_enabled
        self.cursor.ack_cumulative(entry, batch_index, batch_level)
