"""ConsoleProvider: prints each send to a text stream and reports it SENT.

For trying journeys out by hand. It keeps no ledger: a retried key prints again. The recipient
is masked unless asked otherwise (the body is printed: showing it is the point).

This module imports no backend.
"""

from __future__ import annotations

import sys
from typing import TextIO

from keylane.providers.base import Delivery, Outcome, Provider, Receipt, mask_recipient

__all__ = ["ConsoleProvider"]


class ConsoleProvider(Provider):
    """Writes one line per send: time, channel, recipient, brand/journey/step, key and body."""

    def __init__(self, stream: TextIO | None = None, *, show_recipient: bool = False) -> None:
        """Args:
        stream: where to write; ``sys.stdout`` (looked up at each send) when None.
        show_recipient: print the recipient in clear instead of masked.
        """
        self._stream = stream
        self._show_recipient = show_recipient
        self.sends = 0
        """How many sends were printed."""

    async def _send(self, delivery: Delivery) -> Receipt:
        stream = self._stream if self._stream is not None else sys.stdout
        to = delivery.to if self._show_recipient else mask_recipient(delivery.to)
        stamp = delivery.sent_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        stream.write(
            f"{stamp} {delivery.channel} to {to} [{delivery.brand_id}/{delivery.journey}/"
            f"{delivery.step}] ({delivery.message_class}, key {delivery.idempotency_key}): "
            f"{delivery.body!r}\n"
        )
        stream.flush()
        self.sends += 1
        return Receipt(Outcome.SENT, None, None, "printed")

    async def close(self) -> None:
        """Nothing to release (the stream is the caller's)."""
