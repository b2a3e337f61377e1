"""Translation of the client's errors into keylane's errors.

``pulsar.asyncio.PulsarException`` carries a ``pulsar.Result``; the client's synchronous calls
raise ``_pulsar.<ResultName>`` exceptions; callbacks get a bare ``pulsar.Result``.

The class choice lives in :func:`keylane.brokers.pulsar._convert.error_for_result` (pure, unit
tested); this module only reads the exception. Part of the Pulsar backend; imports ``pulsar``.
"""

from __future__ import annotations

import _pulsar
from pulsar.asyncio import PulsarException

from keylane.brokers.pulsar._convert import error_for_result

__all__ = ["result_name", "translate", "translate_native", "translate_result"]


def result_name(exc: PulsarException) -> str:
    """The ``pulsar.Result`` member name of a client error, e.g. ``"ConsumerBusy"``."""
    return str(exc.error().name)


def translate(exc: PulsarException, action: str) -> Exception:
    """keylane's exception for a failed client call (raise it ``from exc``)."""
    return error_for_result(result_name(exc), str(exc), action)


def translate_native(exc: _pulsar.PulsarException, action: str) -> Exception:
    """keylane's exception for a failed synchronous client call (``_pulsar.<ResultName>``)."""
    return error_for_result(type(exc).__name__, str(exc), action)


def translate_result(result: _pulsar.Result, action: str) -> Exception:
    """keylane's exception for a failed result handed to a callback."""
    return error_for_result(str(result.name), str(result.name), action)
