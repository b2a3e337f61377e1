"""keylane: per-key serial, cross-key concurrent event consumption on Apache Pulsar."""

from __future__ import annotations

from keylane.brokers import (
    BatchingType,
    Broker,
    Consumer,
    DeadLetterPolicy,
    InitialPosition,
    KeySharedMode,
    KeySharedPolicy,
    Message,
    MessageId,
    Producer,
    SubscriptionType,
    connect,
)
from keylane.errors import (
    ConsumerBusyError,
    CumulativeAckNotAllowedError,
    InvalidArgumentError,
    KeylaneError,
    StickyRangeConflictError,
    SubscriptionTypeMismatchError,
)

__version__ = "0.1.0"

__all__ = [
    # Brokers
    "BatchingType",
    "Broker",
    "Consumer",
    # Errors
    "ConsumerBusyError",
    "CumulativeAckNotAllowedError",
    "DeadLetterPolicy",
    "InitialPosition",
    "InvalidArgumentError",
    "KeySharedMode",
    "KeySharedPolicy",
    "KeylaneError",
    "Message",
    "MessageId",
    "Producer",
    "StickyRangeConflictError",
    "SubscriptionType",
    "SubscriptionTypeMismatchError",
    "__version__",
    "connect",
]
