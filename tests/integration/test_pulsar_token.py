"""A token file on a real Pulsar standalone: the client asks keylane's supplier for the token when
it connects, and the admin client sends it on every request.

The standalone of ``scripts/services.py`` has authentication off, so it accepts any token: this
checks the wiring (the C++ client really calls the Python supplier, and nothing breaks with one
set), not the broker's verdict on a token. Needs ``scripts/services.py up``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from keylane.brokers.pulsar import PulsarBroker
from keylane.brokers.pulsar._security import TokenSource

pytestmark = pytest.mark.pulsar

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0In0.c2ln"


async def test_the_client_calls_the_token_supplier_when_it_connects(
    pulsar_url: str, pulsar_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a broker with a token file, and every read of a token file counted
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
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
    assert set(calls) == {TOKEN}
