"""Translation of ``pulsar.asyncio.PulsarException`` into keylane's errors.

The class choice lives in :func:`keylane.brokers.pulsar._convert.error_for_result` (pure, unit
tested); this module only reads the exception. Part of the Pulsar backend; imports ``pulsar``.
"""

from __future__ import annotations

from pulsar.asyncio import PulsarException

from keylane.brokers.pulsar._convert import error_for_result

__all__ = ["result_name", "translate"]


def result_name(exc: PulsarException) -> str:
    """The ``pulsar.Result`` member name of a client error, e.g. ``"ConsumerBusy"``."""
    return str(exc.error().name)


def translate(exc: PulsarException, action: str) -> Exception:
    """keylane's exception for a failed client call (raise it ``from exc``)."""
    return error_for_result(result_name(exc), str(exc), action)
