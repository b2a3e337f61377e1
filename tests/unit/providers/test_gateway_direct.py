"""LedgerProvider: the gateway's idempotency without HTTP."""

from __future__ import annotations

import logging

from keylane.providers import Outcome
from keylane.web.gateway import Ledger, LedgerProvider
from keylane.web.gateway.journal import Journal
from tests.unit.providers.deliveries import make_delivery


async def test_delivers_once_replays_and_refuses_reuse(caplog):
    ledger = Ledger()
    provider = LedgerProvider(ledger)
    first = await provider.send(make_delivery(1))
    again = await provider.send(make_delivery(1))
    with caplog.at_level(logging.ERROR, logger="keylane.web.gateway.direct"):
        reused = await provider.send(make_delivery(1, body="changed"))
    assert (first.outcome, first.status_code, first.replayed) == (Outcome.SENT, 201, False)
    assert (again.outcome, again.replayed) == (Outcome.SENT, True)
    assert again.provider_message_id == first.provider_message_id == "msg_00000001"
    assert (reused.outcome, reused.status_code) == (Outcome.FAILED_PERMANENT, 409)
    assert "differs in: body" in reused.detail
    assert len(caplog.records) == 1
    assert make_delivery(1).to not in caplog.records[0].getMessage()
    assert len(ledger) == 1
    assert ledger.stats().repeated_attempts == 1


async def test_closed_log_is_retryable(tmp_path):
    journal = Journal(tmp_path / "gateway.jsonl")
    ledger = Ledger(journal)
    provider = LedgerProvider(ledger)
    receipt = await provider.send(make_delivery(1))  # the journal was never opened
    assert receipt.outcome is Outcome.FAILED_RETRYABLE
    assert "gateway unavailable" in receipt.detail
    assert len(ledger) == 0
