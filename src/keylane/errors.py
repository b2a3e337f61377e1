"""keylane's error hierarchy.

Every error keylane raises on purpose derives from :class:`KeylaneError`. Broker errors mirror the
exceptions of the official ``pulsar-client`` (``ConsumerBusy``,
``CumulativeAcknowledgementNotAllowedError``, ...) so that both backends fail the same way.

This module imports nothing from keylane and no backend.
"""

from __future__ import annotations

__all__ = [
    "AlreadyClosedError",
    "BrokerAuthenticationError",
    "BrokerConnectionError",
    "BrokerError",
    "ConsumerBusyError",
    "CumulativeAckNotAllowedError",
    "InvalidArgumentError",
    "KeylaneError",
    "LockError",
    "MissingExtraError",
    "OperationTimeoutError",
    "StickyRangeConflictError",
    "SubscriptionTypeMismatchError",
    "TopicNotFoundError",
]


class KeylaneError(Exception):
    """Base class of every error keylane raises on purpose."""


class InvalidArgumentError(KeylaneError, ValueError):
    """An argument is out of range, of the wrong type or inconsistent with another one."""


class MissingExtraError(KeylaneError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, feature: str, extra: str, package: str) -> None:
        super().__init__(
            f"{feature} needs the '{package}' package. "
            f"Install it with: pip install 'keylane[{extra}]'"
        )
        self.extra = extra


class BrokerError(KeylaneError):
    """Base class of errors reported by a broker backend."""


class ConsumerBusyError(BrokerError):
    """The subscription cannot take this consumer (Pulsar ``ConsumerBusy``).

    Raised for a second consumer on an Exclusive subscription and, through the subclass
    :class:`SubscriptionTypeMismatchError`, for a consumer whose type or Key_Shared policy differs
    from the subscription's connected consumers.
    """


class SubscriptionTypeMismatchError(ConsumerBusyError):
    """The subscription is of a different type or Key_Shared policy than the connecting consumer."""


class StickyRangeConflictError(ConsumerBusyError):
    """A STICKY Key_Shared consumer asked for hash ranges that overlap another consumer's."""


class CumulativeAckNotAllowedError(BrokerError):
    """Cumulative acknowledgement was used on a Shared or Key_Shared subscription."""


class AlreadyClosedError(BrokerError):
    """The broker, producer or consumer is already closed."""


class TopicNotFoundError(BrokerError):
    """The topic does not exist and cannot be created implicitly."""


class BrokerConnectionError(BrokerError):
    """The broker cannot be reached."""


class BrokerAuthenticationError(BrokerError):
    """The broker refused the credentials presented (a forged, expired or malformed token) or
    the role they name (Pulsar ``AuthenticationError``/``AuthorizationError``, HTTP 401/403).

    The message never holds the credentials.
    """


class OperationTimeoutError(BrokerError, TimeoutError):
    """A broker operation (not ``receive``) did not complete in time."""


class LockError(KeylaneError):
    """A distributed key lock backend (the Redis-lock baseline) failed or cannot be reached.

    The message names the backend URL, so an unreachable Redis reads as one clear line.
    """
