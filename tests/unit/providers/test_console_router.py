"""ConsoleProvider prints sends with the recipient masked; ChannelRouter routes by channel."""

from __future__ import annotations

import io

import pytest

from keylane.errors import InvalidArgumentError
from keylane.providers import ChannelRouter, ConsoleProvider, MemoryProvider, Outcome
from tests.unit.providers.deliveries import make_delivery


async def test_console_prints_each_send_masked():
    stream = io.StringIO()
    provider = ConsoleProvider(stream)
    delivery = make_delivery(7)
    receipt = await provider.send(delivery)
    await provider.send(delivery)  # no ledger: prints again
    lines = stream.getvalue().splitlines()
    assert receipt.outcome is Outcome.SENT
    assert len(lines) == 2
    assert delivery.to not in lines[0]
    assert "********0007" in lines[0]
    assert delivery.idempotency_key in lines[0]
    assert delivery.body in lines[0]
    assert lines[0].startswith("2026-11-27T14:30:00Z sms")
    assert provider.sends == 2


async def test_console_can_show_the_recipient():
    stream = io.StringIO()
    await ConsoleProvider(stream, show_recipient=True).send(make_delivery(7))
    assert make_delivery(7).to in stream.getvalue()


async def test_router_routes_by_channel():
    sms, email = MemoryProvider(), MemoryProvider()
    router = ChannelRouter({"sms": sms, "email": email})
    await router.send(make_delivery(1))
    await router.send(make_delivery(2, channel="email", to="b@example.com"))
    assert [d.channel for d in sms.deliveries] == ["sms"]
    assert [d.channel for d in email.deliveries] == ["email"]


async def test_router_without_the_channel_is_permanent():
    router = ChannelRouter({"sms": MemoryProvider()})
    receipt = await router.send(make_delivery(1, channel="email", to="b@example.com"))
    assert receipt.outcome is Outcome.FAILED_PERMANENT
    assert "no provider for channel 'email'" in receipt.detail
    assert "configured: sms" in receipt.detail


class _CountingProvider(MemoryProvider):
    def __init__(self) -> None:
        super().__init__()
        self.closes = 0

    async def close(self) -> None:
        self.closes += 1


async def test_router_closes_a_shared_provider_once():
    shared = _CountingProvider()
    async with ChannelRouter({"sms": shared, "email": shared}):
        pass
    assert shared.closes == 1


@pytest.mark.parametrize(
    ("providers", "message"),
    [
        ({}, "at least one"),
        ({"fax": MemoryProvider()}, "must be one of sms, email"),
        ({"sms": object()}, "must be a Provider"),
    ],
)
def test_router_bad_configuration(providers, message):
    with pytest.raises(InvalidArgumentError, match=message):
        ChannelRouter(providers)
