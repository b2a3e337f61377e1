"""The embedded in-process broker (``memory://``) with Apache Pulsar 4.0.x consumer semantics.

Use :class:`MemoryBroker` directly or through ``keylane.brokers.connect("memory://")``. It models
entries and cursors, the four subscription types with their dispatchers (including Key_Shared's
draining hashes), acknowledgements, negative acks, ack timeouts, dead letter topics, delayed
delivery, batching and partitioned topics. See ``docs/backends.md``.

This package imports no other backend.
"""

from __future__ import annotations

from keylane.brokers.memory.broker import MemoryBroker
from keylane.brokers.memory.config import MemoryBrokerConfig
from keylane.brokers.memory.consumer import MemoryConsumer
from keylane.brokers.memory.producer import MemoryProducer

__all__ = ["MemoryBroker", "MemoryBrokerConfig", "MemoryConsumer", "MemoryProducer"]
