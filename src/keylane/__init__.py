"""keylane: each shopper's events decided one at a time, many shoppers at once, messages sent once.

The library's front door. Consume a keyed topic with lanes (per-key serial, cross-key concurrent,
continuous acks, timeouts, retries in order, dead letters), on the embedded broker (``memory://``,
Pulsar 4.x semantics) or on real Apache Pulsar::

    async with connect("memory://") as broker:
        async with LaneGroup(broker, "events", "decisions", handler, consumers=2):
            ...

Everything else lives in its package: ``keylane.brokers`` (the broker contract and its
backends), ``keylane.lanes`` (the full lanes API), ``keylane.check`` (histories and the
checker), ``keylane.state`` (per-user state and the outbox), ``keylane.journeys`` (the decision
engine), ``keylane.runtime`` (the worker), ``keylane.providers`` (SMS/email providers).
"""

from __future__ import annotations

from keylane.brokers import Broker, Consumer, Message, Producer, SubscriptionType, connect
from keylane.errors import BrokerError, InvalidArgumentError, KeylaneError
from keylane.lanes import ExhaustedPolicy, HandlerContext, LaneConfig, LaneGroup, Lanes

__version__ = "0.1.0"

#: Connecting (``connect`` and the broker contract's core types), consuming (``Lanes``,
#: ``LaneGroup``, their config and context), the errors; sorted as ruff wants them.
__all__ = [
    "Broker",
    "BrokerError",
    "Consumer",
    "ExhaustedPolicy",
    "HandlerContext",
    "InvalidArgumentError",
    "KeylaneError",
    "LaneConfig",
    "LaneGroup",
    "Lanes",
    "Message",
    "Producer",
    "SubscriptionType",
    "__version__",
    "connect",
]
