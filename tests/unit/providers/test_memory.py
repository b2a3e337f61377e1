"""MemoryProvider: one delivery per key, replays, conflicts and scripted failures."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from keylane.errors import InvalidArgumentError
from keylane.providers import MemoryProvider, Outcome, ScriptedFailure
from tests.unit.providers.deliveries import SENT_AT, make_delivery


async def test_first_send_is_delivered():
    provider = MemoryProvider()
    receipt = await provider.send(make_delivery(1))
    assert receipt.outcome is Outcome.SENT
    assert receipt.replayed is False
    assert receipt.provider_message_id is not None
    assert provider.deliveries == (make_delivery(1),)


async def test_same_key_and_content_is_a_replay_not_a_second_delivery():
    provider = MemoryProvider()
    first = await provider.send(make_delivery(1))
    # a retry is stamped with a later engine clock: still the same content
    again = await provider.send(make_delivery(1, sent_at=SENT_AT + dt.timedelta(seconds=30)))
    assert again.outcome is Outcome.SENT
    assert again.replayed is True
    assert again.provider_message_id == first.provider_message_id
    assert len(provider.deliveries) == 1
    assert provider.deliveries[0].sent_at == SENT_AT  # the delivered attempt's
    assert (provider.attempts, provider.replays) == (2, 1)


async def test_same_key_with_different_body_is_permanent():
    provider = MemoryProvider()
    await provider.send(make_delivery(1))
    receipt = await provider.send(make_delivery(1, body="a different text"))
    assert receipt.outcome is Outcome.FAILED_PERMANENT
    assert "body" in receipt.detail
    assert provider.conflicts == 1
    assert [d.body for d in provider.deliveries] == [make_delivery(1).body]


async def test_scripted_failure_before_delivery_then_retry_goes_out_once():
    provider = MemoryProvider()
    provider.fail_next(ScriptedFailure(Outcome.FAILED_RETRYABLE, detail="down"))
    failed = await provider.send(make_delivery(1))
    assert (failed.outcome, failed.detail) == (Outcome.FAILED_RETRYABLE, "down")
    assert list(provider.deliveries) == []
    retried = await provider.send(make_delivery(1))
    assert retried.outcome is Outcome.SENT
    assert retried.replayed is False
    assert len(provider.deliveries) == 1
    assert provider.injected_failures == 1


async def test_scripted_failure_after_delivery_then_retry_is_a_replay():
    # Given an attempt that went out but whose answer was lost
    provider = MemoryProvider()
    provider.fail_next(ScriptedFailure(Outcome.FAILED_RETRYABLE, delivered=True))
    lost = await provider.send(make_delivery(1))
    assert lost.outcome is Outcome.FAILED_RETRYABLE
    assert len(provider.deliveries) == 1
    # When the relay retries under the same key
    retried = await provider.send(make_delivery(1))
    # Then it is answered from the ledger and nothing goes out twice
    assert retried.replayed is True
    assert len(provider.deliveries) == 1


async def test_scripted_failures_apply_in_order_to_any_key():
    provider = MemoryProvider()
    provider.fail_next(ScriptedFailure(Outcome.FAILED_PERMANENT), ScriptedFailure(Outcome.UNKNOWN))
    outcomes = [(await provider.send(make_delivery(n))).outcome for n in (1, 2, 3)]
    assert outcomes == [Outcome.FAILED_PERMANENT, Outcome.UNKNOWN, Outcome.SENT]
    assert [d.subscriber_id for d in provider.deliveries] == ["sub-3"]


async def test_concurrent_sends_of_one_key_deliver_once():
    provider = MemoryProvider()
    receipts = await asyncio.gather(*(provider.send(make_delivery(1)) for _ in range(20)))
    assert all(r.outcome is Outcome.SENT for r in receipts)
    assert sum(not r.replayed for r in receipts) == 1
    assert len(provider.deliveries) == 1


async def test_phone_view():
    provider = MemoryProvider()
    for n in (1, 2, 1):
        key = f"k-{n}-{len(provider.deliveries)}"
        await provider.send(make_delivery(n, idempotency_key=key))
    assert [d.idempotency_key for d in provider.delivered_to(make_delivery(1).to)] == [
        "k-1-0",
        "k-1-2",
    ]


async def test_bad_input_is_a_typed_error():
    provider = MemoryProvider()
    with pytest.raises(InvalidArgumentError, match="must be a Delivery"):
        await provider.send({"to": "+15551234567"})  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="failing Outcome"):
        ScriptedFailure(Outcome.SENT)
    with pytest.raises(InvalidArgumentError, match="ScriptedFailure values"):
        provider.fail_next(Outcome.FAILED_RETRYABLE)  # type: ignore[arg-type]
    assert provider.attempts == 0
