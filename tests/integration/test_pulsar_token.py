"""Token authentication against a real Pulsar standalone that checks tokens.

The standalone of ``scripts/services.py`` has token authentication on with anonymous access kept
(``anonymousUserRole=anonymous``): a client without a token is let in, one with a token must
present a valid one. ``scripts/services.py env`` exports such a token (role ``keylane-test``,
signed with the standalone's key) as ``KEYLANE_PULSAR_TEST_TOKEN``; the forged tokens here have the
same claims but are signed with another key. Each refused call is bounded by a 3 s operation
timeout (the client retries a refused connection until then). Needs ``scripts/services.py up``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from keylane.brokers.base import InitialPosition
from keylane.brokers.pulsar import PulsarBroker
from keylane.brokers.pulsar._security import TokenSource
from keylane.errors import BrokerAuthenticationError, TopicNotFoundError

pytestmark = pytest.mark.pulsar

TOKEN_ENV = "KEYLANE_PULSAR_TEST_TOKEN"
#: Seconds a refused call may retry before it fails (well under the 10 s bound of each test).
REFUSED_TIMEOUT = 3


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def forged_token(role: str = "keylane-test") -> str:
    """An HS256 JWT of the right shape and claims, signed with a key the broker does not have."""
    header = _b64url(json.dumps({"alg": "HS256"}).encode())
    payload = _b64url(json.dumps({"sub": role}).encode())
    signature = hmac.new(
        secrets.token_bytes(32), f"{header}.{payload}".encode(), hashlib.sha256
    ).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


@pytest.fixture(scope="session")
def pulsar_token(pulsar_url: str) -> str:
    """The valid token ``scripts/services.py env`` exports (skipped without it, failed in CI)."""
    token = os.environ.get(TOKEN_ENV)
    if not token:
        problem = f'{TOKEN_ENV} is not set: eval "$(scripts/services.py env)" (make test does)'
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    return token


@pytest.fixture
def topic_name() -> str:
    return f"persistent://public/default/kl-token-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def anonymous(pulsar_url: str, pulsar_admin_url: str) -> AsyncIterator[PulsarBroker]:
    """A broker without a token (the anonymous role), to check and to clean up."""
    async with PulsarBroker(pulsar_url, admin_url=pulsar_admin_url) as broker:
        yield broker


async def _delete(broker: PulsarBroker, topic: str) -> None:
    with contextlib.suppress(TopicNotFoundError):
        await broker.admin.delete_topic(topic)


# --------------------------------------------------------------------------- a valid token


async def test_a_valid_token_round_trips_and_passes_the_admin_api(
    pulsar_url: str, pulsar_admin_url: str, pulsar_token: str, topic_name: str
) -> None:
    # Given a broker presenting the valid token
    async with PulsarBroker(
        pulsar_url, admin_url=pulsar_admin_url, auth_token=pulsar_token
    ) as broker:
        try:
            # When it creates a partitioned topic (admin), sends and receives (binary protocol)
            await broker.create_topic(topic_name, partitions=2)
            consumer = await broker.subscribe(
                topic_name, "sub", initial_position=InitialPosition.EARLIEST
            )
            producer = await broker.create_producer(topic_name)
            await producer.send(b"hello", key="k")
            message = await consumer.receive(timeout=10)
            await consumer.acknowledge(message)
            # Then the message arrives, and the admin API answers with the topic's facts
            assert (message.data, message.key) == (b"hello", "k")
            assert await broker.admin.partitions(topic_name) == 2
            assert await broker.admin.subscription_stats(topic_name, "sub") is not None
            await producer.close()
            await consumer.close()
        finally:
            await _delete(broker, topic_name)


async def test_the_client_calls_the_token_supplier_when_it_connects(
    pulsar_url: str,
    pulsar_admin_url: str,
    pulsar_token: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a broker with a token file, and every read of a token file counted
    path = tmp_path / "token"
    path.write_text(pulsar_token + "\n")
    calls: list[str] = []
    read = TokenSource.__call__

    def counted(self: TokenSource) -> str:
        calls.append(read(self))
        return calls[-1]

    monkeypatch.setattr(TokenSource, "__call__", counted)
    topic = f"persistent://public/default/kl-token-{uuid.uuid4().hex[:12]}"
    # When it creates a topic (admin) and a producer (the binary protocol), and sends
    async with PulsarBroker(pulsar_url, admin_url=pulsar_admin_url, auth_token_file=path) as broker:
        await broker.create_topic(topic)
        after_admin = len(calls)
        producer = await broker.create_producer(topic)
        await producer.send(b"x", key="k")
        after_client = len(calls)
        await producer.close()
        await broker.admin.delete_topic(topic)
    # Then the admin client asked for the token, and so did the client when it connected
    assert after_admin >= 1
    assert after_client > after_admin
    assert set(calls) == {pulsar_token}


# --------------------------------------------------------------------------- a forged token


async def test_a_forged_token_is_refused_on_the_binary_protocol(
    pulsar_url: str, pulsar_admin_url: str, anonymous: PulsarBroker, topic_name: str
) -> None:
    # Given a broker presenting a token signed with another key
    forged = forged_token()
    broker = PulsarBroker(
        pulsar_url,
        admin_url=pulsar_admin_url,
        auth_token=forged,
        operation_timeout=REFUSED_TIMEOUT,
    )
    try:
        # When it creates a producer, Then the broker refuses it, said without the token
        with pytest.raises(BrokerAuthenticationError) as caught:
            await broker.create_producer(topic_name)
        with pytest.raises(BrokerAuthenticationError):
            await broker.subscribe(topic_name, "sub")
    finally:
        await broker.close()
    assert "refuses the token" in str(caught.value)
    assert forged not in str(caught.value)
    # And a client with no token at all is still let in (anonymous access kept)
    producer = await anonymous.create_producer(topic_name)
    await producer.send(b"anonymous", key="k")
    await producer.close()
    await _delete(anonymous, topic_name)


async def test_a_forged_token_gets_401_from_the_admin_api(
    pulsar_url: str, pulsar_admin_url: str, anonymous: PulsarBroker, topic_name: str
) -> None:
    # Given a broker presenting a forged token to the admin API
    forged = forged_token()
    broker = PulsarBroker(pulsar_url, admin_url=pulsar_admin_url, auth_token=forged)
    # When it creates a topic and reads one, Then both are refused with the 401, without the token
    with pytest.raises(BrokerAuthenticationError) as caught:
        await broker.admin.create_topic(topic_name, 2)
    with pytest.raises(BrokerAuthenticationError) as read:
        await broker.admin.partitions(topic_name)
    for refused in (caught.value, read.value):
        assert "HTTP 401" in str(refused)
        assert "sent the token" in str(refused)
        assert forged not in str(refused)
    # And the topic was not created (the refused request did not pass as anonymous)
    assert await anonymous.admin.partitions(topic_name) == 0
    await broker.close()


# --------------------------------------------------------------------------- rotation


async def test_a_token_file_rotated_to_a_valid_token_is_used_on_the_next_connection(
    pulsar_url: str,
    pulsar_admin_url: str,
    pulsar_token: str,
    anonymous: PulsarBroker,
    topic_name: str,
    tmp_path: Path,
) -> None:
    # Given a broker whose token file holds a forged token, refused by the broker
    path = tmp_path / "token"
    path.write_text(forged_token() + "\n")
    broker = PulsarBroker(
        pulsar_url,
        admin_url=pulsar_admin_url,
        auth_token_file=path,
        operation_timeout=REFUSED_TIMEOUT,
    )
    try:
        with pytest.raises(BrokerAuthenticationError):
            await broker.create_producer(topic_name)
        # When the file is rotated in place to the valid token
        path.write_text(pulsar_token + "\n")
        # Then the same broker's next connection presents it: producing and the admin API work
        producer = await broker.create_producer(topic_name)
        await producer.send(b"after rotation", key="k")
        await producer.close()
        assert await broker.admin.partitions(topic_name) == 0
        assert await broker.admin.subscription_stats(topic_name, "none") is None
    finally:
        await broker.close()
        await _delete(anonymous, topic_name)
