"""LedgerProvider: a Provider that hands deliveries straight to a gateway's ledger, without HTTP.

The same idempotency, log and stats as ``POST /v1/messages`` (a replay is SENT and marked
replayed, a key reused with a different body is FAILED_PERMANENT), but no socket, no HTTP and
no failure injection: for benchmarks that want the gateway as the judge of duplicates without
measuring an HTTP stack, and for the simulator. Deliveries sent this way show up in the
server's phone view and stats like any other.

Framework-free: imports no web framework.
"""

from __future__ import annotations

import json
import logging

from keylane.errors import InvalidArgumentError
from keylane.providers.base import Delivery, Outcome, Provider, Receipt, mask_recipient
from keylane.web.gateway.ledger import Ledger

__all__ = ["LedgerProvider"]

logger = logging.getLogger(__name__)


class LedgerProvider(Provider):
    """Submits each delivery to ``ledger`` in-process (a send never awaits)."""

    def __init__(self, ledger: Ledger) -> None:
        """Args:
        ledger: the gateway's ledger, say ``GatewayServer.ledger``. With a log file, sends
            while the server is stopped are FAILED_RETRYABLE (the log is closed).
        """
        self._ledger = ledger

    async def _send(self, delivery: Delivery) -> Receipt:
        try:
            answer = self._ledger.submit(delivery)
        except InvalidArgumentError as exc:  # the log is closed: the gateway is stopped
            return Receipt(Outcome.FAILED_RETRYABLE, None, None, f"gateway unavailable: {exc}")
        data = json.loads(answer.body)
        if answer.status == 201:
            detail = "replayed" if answer.replayed else "delivered"
            return Receipt(Outcome.SENT, 201, data["id"], detail, answer.replayed)
        logger.error(
            "gateway 409 for key %s to %s: the idempotency key was reused with a different "
            "body; this send is dropped: %s",
            delivery.idempotency_key,
            mask_recipient(delivery.to),
            data["reason"],
        )
        return Receipt(
            Outcome.FAILED_PERMANENT, answer.status, None, f"409 key reused: {data['reason']}"
        )

    async def close(self) -> None:
        """Nothing to release: the ledger is the gateway's."""
