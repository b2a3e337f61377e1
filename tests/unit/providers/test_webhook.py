"""WebhookProvider's mapping of answers to outcomes, over httpx's in-process MockTransport.

The real round trip against the embedded gateway is in tests/integration/test_gateway.py; these
cover the statuses and errors that gateway never produces (3xx, 429, arbitrary bodies).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import httpx
import pytest

from keylane.errors import AlreadyClosedError, InvalidArgumentError
from keylane.providers import Outcome, WebhookProvider
from tests.unit.providers.deliveries import make_delivery

URL = "http://gateway.test/v1/messages"


def provider_answering(
    handler: Callable[[httpx.Request], httpx.Response], **options
) -> tuple[WebhookProvider, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(record))
    return WebhookProvider(URL, client=client, **options), seen


async def test_posts_the_body_with_the_key_header():
    provider, seen = provider_answering(
        lambda r: httpx.Response(201, json={"id": "msg_1", "status": "delivered"}),
        headers={"Authorization": "Bearer t"},
    )
    delivery = make_delivery(1)
    receipt = await provider.send(delivery)
    assert (receipt.outcome, receipt.status_code) == (Outcome.SENT, 201)
    assert receipt.provider_message_id == "msg_1"
    assert receipt.replayed is False
    request = seen[0]
    assert request.method == "POST"
    assert request.headers["Idempotency-Key"] == delivery.idempotency_key
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer t"
    assert json.loads(request.content) == delivery.to_dict()


async def test_replay_header_is_surfaced():
    provider, _ = provider_answering(
        lambda r: httpx.Response(200, json={"id": "m"}, headers={"Idempotent-Replayed": "true"})
    )
    receipt = await provider.send(make_delivery(1))
    assert (receipt.outcome, receipt.replayed) == (Outcome.SENT, True)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (202, Outcome.SENT),
        (204, Outcome.SENT),
        (301, Outcome.FAILED_PERMANENT),
        (400, Outcome.FAILED_PERMANENT),
        (404, Outcome.FAILED_PERMANENT),
        (408, Outcome.FAILED_RETRYABLE),
        (409, Outcome.FAILED_PERMANENT),
        (422, Outcome.FAILED_PERMANENT),
        (429, Outcome.FAILED_RETRYABLE),
        (500, Outcome.FAILED_RETRYABLE),
        (503, Outcome.FAILED_RETRYABLE),
    ],
)
async def test_status_mapping(status, outcome):
    provider, _ = provider_answering(lambda r: httpx.Response(status, text="nope"))
    receipt = await provider.send(make_delivery(1))
    assert (receipt.outcome, receipt.status_code) == (outcome, status)


async def test_409_is_logged_loudly_without_recipient_or_body(caplog):
    delivery = make_delivery(1)
    # a server that echoes what it got: the log must still not show it
    provider, _ = provider_answering(
        lambda r: httpx.Response(409, json={"reason": f"{delivery.to} said {delivery.body}"})
    )
    with caplog.at_level(logging.WARNING, logger="keylane.providers.webhook"):
        receipt = await provider.send(delivery)
    assert receipt.outcome is Outcome.FAILED_PERMANENT
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    text = errors[0].getMessage()
    assert delivery.idempotency_key in text
    assert "reused with a different body" in text
    assert delivery.to not in text
    assert delivery.body not in text
    assert delivery.to not in receipt.detail
    assert delivery.body not in receipt.detail


@pytest.mark.parametrize(
    ("error", "honours", "outcome"),
    [
        (httpx.ConnectError("refused"), True, Outcome.FAILED_RETRYABLE),
        (httpx.ConnectError("refused"), False, Outcome.FAILED_RETRYABLE),
        (httpx.ReadTimeout("slow"), True, Outcome.FAILED_RETRYABLE),
        (httpx.ReadTimeout("slow"), False, Outcome.UNKNOWN),
        (httpx.RemoteProtocolError("cut"), True, Outcome.FAILED_RETRYABLE),
        (httpx.RemoteProtocolError("cut"), False, Outcome.UNKNOWN),
    ],
)
async def test_transport_errors(error, honours, outcome):
    def fail(request: httpx.Request) -> httpx.Response:
        raise error

    provider, _ = provider_answering(fail, honours_idempotency=honours)
    receipt = await provider.send(make_delivery(1))
    assert (receipt.outcome, receipt.status_code) == (outcome, None)
    assert type(error).__name__ in receipt.detail


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://host/x", "http:// or https://"),
        ("http:///v1/messages", "must name a host"),
        ("http://host:99999/", "malformed"),
        ("localhost:8000", "http:// or https://"),
        (42, "must be a string"),
    ],
)
def test_bad_url(url, message):
    with pytest.raises(InvalidArgumentError, match=message):
        WebhookProvider(url)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timeout": 0}, "positive"),
        ({"timeout": "5"}, "seconds"),
        ({"headers": {"Idempotency-Key": "x"}}, "set by the provider"),
        ({"headers": {"X-N": 1}}, "must be strings"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(InvalidArgumentError, match=message):
        WebhookProvider(URL, **options)


async def test_closed_provider_refuses_and_leaves_a_passed_client_open():
    client = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(201)))
    provider = WebhookProvider(URL, client=client)
    await provider.close()
    await provider.close()
    assert client.is_closed is False
    with pytest.raises(AlreadyClosedError):
        await provider.send(make_delivery(1))
    await client.aclose()


async def test_own_client_is_closed():
    provider = WebhookProvider(URL)
    await provider.close()
    assert provider._client.is_closed is True
