"""Broker-side settings of the embedded broker, named after Pulsar's ``broker.conf`` keys.

Every default is the Pulsar 4.0.x default (times in seconds instead of milliseconds). This module
imports nothing from the rest of the memory backend and no other backend.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from keylane.errors import InvalidArgumentError

__all__ = ["MemoryBrokerConfig"]


@dataclass(frozen=True, slots=True)
class MemoryBrokerConfig:
    """Broker knobs of :class:`~keylane.brokers.memory.MemoryBroker`.

    Attributes:
        failover_delay: ``activeConsumerFailoverDelayTimeMillis``: how long a new active Failover
            consumer waits before the cursor is rewound and delivery starts (0 = at once).
        failover_consistent_hashing: ``activeConsumerFailoverConsistentHashing``: pick the
            active consumer of a *partition* with the hash ring too (PIP-392).
        key_shared_use_consistent_hashing: ``subscriptionKeySharedUseConsistentHashing``:
            AUTO_SPLIT uses the consistent-hash ring (else hash-range splitting).
        key_shared_replica_points: ``subscriptionKeySharedConsistentHashingReplicaPoints``.
        key_shared_look_ahead_per_consumer: ``keySharedLookAheadMsgInReplayThresholdPerConsumer``.
        key_shared_look_ahead_per_subscription:
            ``keySharedLookAheadMsgInReplayThresholdPerSubscription``.
        key_shared_unblocking_interval: ``keySharedUnblockingIntervalMs``: delay of the read
            scheduled when a draining key hash is released.
        dispatcher_max_round_robin_batch_size: ``dispatcherMaxRoundRobinBatchSize``: entries per
            Shared round-robin turn.
        dispatcher_max_read_batch_size: ``dispatcherMaxReadBatchSize``: entries per read.
        max_unacked_per_consumer: ``maxUnackedMessagesPerConsumer`` (0 disables).
        max_unacked_per_subscription: ``maxUnackedMessagesPerSubscription`` (0 disables).
        delayed_delivery_tick: ``delayedDeliveryTickTimeMillis``.
        delayed_delivery_strict: ``isDelayedDeliveryDeliverAtTimeStrict``: never deliver a
            delayed message early (else up to one tick early).
        acknowledgment_at_batch_index_level_enabled: ``acknowledgmentAtBatchIndexLevelEnabled``:
            the cursor records acknowledged batch indexes of a batch entry, and a redelivered
            batch leaves them out. Effective only for consumers that subscribed with
            ``batch_index_ack_enabled=True`` (the client switch), as on Pulsar. Off (Pulsar's
            default): an entry is acknowledged once all its messages are, and a redelivery
            brings back the whole batch.
    """

    failover_delay: float = 1.0
    failover_consistent_hashing: bool = False
    key_shared_use_consistent_hashing: bool = True
    key_shared_replica_points: int = 100
    key_shared_look_ahead_per_consumer: int = 2000
    key_shared_look_ahead_per_subscription: int = 20000
    key_shared_unblocking_interval: float = 0.01
    dispatcher_max_round_robin_batch_size: int = 20
    dispatcher_max_read_batch_size: int = 100
    max_unacked_per_consumer: int = 50000
    max_unacked_per_subscription: int = 200000
    delayed_delivery_tick: float = 1.0
    delayed_delivery_strict: bool = False
    acknowledgment_at_batch_index_level_enabled: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool":
                if not isinstance(value, bool):
                    raise InvalidArgumentError(f"{f.name} must be a bool, got {value!r}")
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidArgumentError(f"{f.name} must be a number, got {value!r}")
            if f.type == "int" and not isinstance(value, int):
                raise InvalidArgumentError(f"{f.name} must be an int, got {value!r}")
            if value < 0:
                raise InvalidArgumentError(f"{f.name} must not be negative, got {value!r}")
        for name in (
            "key_shared_replica_points",
            "dispatcher_max_round_robin_batch_size",
            "dispatcher_max_read_batch_size",
        ):
            if getattr(self, name) < 1:
                raise InvalidArgumentError(f"{name} must be at least 1")
        if self.delayed_delivery_tick <= 0:
            raise InvalidArgumentError("delayed_delivery_tick must be positive")
