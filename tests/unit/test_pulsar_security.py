"""PulsarBroker's token authentication and TLS trust: the checks, what reaches the client's
constructor, and what the admin REST client sends, over a real local HTTP(S) server.

The binary client is replaced by a recorder (no broker is needed); the kwargs it records are
then given to the real ``pulsar.asyncio.Client`` constructor, which builds a client without
connecting, so a misspelt option would fail here. The admin client talks to a real
``http.server`` in a thread, over TLS with throwaway certificates (``trustme``).
"""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pulsar
import pytest
import trustme
from pulsar.asyncio import Client as RealClient

from keylane.brokers import connect
from keylane.brokers.pulsar import PulsarBroker
from keylane.brokers.pulsar import broker as broker_module
from keylane.brokers.pulsar._security import TokenSource
from keylane.errors import (
    BrokerAuthenticationError,
    BrokerConnectionError,
    InvalidArgumentError,
)

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJrZXlsYW5lLXRlc3QifQ.c2VjcmV0LXNpZ25hdHVyZQ"
SSL_URL = "pulsar+ssl://127.0.0.1:6651"
PLAIN_URL = "pulsar://127.0.0.1:6650"


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def rotate(path: Path, token: str) -> None:
    """Replace the token in ``path`` (as a secret manager would)."""
    path.write_text(token + "\n")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


# --------------------------------------------------------------------------- the checks


@pytest.mark.parametrize(
    ("options", "names"),
    [
        ({"auth_token": ""}, ("auth_token", "empty")),
        ({"auth_token": 42}, ("auth_token", "str", "int")),
        ({"auth_token": f"{TOKEN}\n"}, ("auth_token", "whitespace", "index")),
        ({"auth_token": f"{TOKEN[:20]} {TOKEN[20:]}"}, ("auth_token", "whitespace", "index 20")),
        ({"auth_token": f"{TOKEN}é"}, ("auth_token", "visible ASCII")),
        ({"auth_token": TOKEN * 400}, ("auth_token", "characters long")),
        ({"auth_token_file": 7}, ("auth_token_file", "path", "int")),
        ({"auth_token_file": ""}, ("auth_token_file", "path")),
        ({"tls_trust_certs_file": b"/ca.pem"}, ("tls_trust_certs_file", "path", "bytes")),
        ({"tls_allow_insecure_connection": "yes"}, ("tls_allow_insecure_connection", "True")),
        ({"tls_validate_hostname": 0}, ("tls_validate_hostname", "True or False")),
    ],
)
def test_a_bad_security_argument_is_named_and_the_token_never_shown(
    options: dict[str, object], names: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        PulsarBroker(SSL_URL, **options)  # type: ignore[arg-type]
    message = str(caught.value)
    for part in names:
        assert part in message
    assert TOKEN[:20] not in message
    assert TOKEN[20:] not in message


def test_a_token_and_a_token_file_together_are_refused(token_file: Path) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        PulsarBroker(SSL_URL, auth_token=TOKEN, auth_token_file=token_file)
    assert "auth_token and auth_token_file" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_a_missing_token_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^auth_token_file '.*nowhere' is not a file"):
        PulsarBroker(SSL_URL, auth_token_file=tmp_path / "nowhere")
    with pytest.raises(InvalidArgumentError, match=r"auth_token_file .* is not a file"):
        PulsarBroker(SSL_URL, auth_token_file=tmp_path)  # a directory


@pytest.mark.parametrize(
    ("content", "says"),
    [("", "must not be empty"), ("  \n", "must not be empty"), ("abc def\n", "whitespace")],
)
def test_a_bad_token_file_is_named_without_its_content(
    tmp_path: Path, content: str, says: str
) -> None:
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(InvalidArgumentError) as caught:
        PulsarBroker(SSL_URL, auth_token_file=path)
    message = str(caught.value)
    assert message.startswith(f"the token in auth_token_file {str(path)!r}")
    assert says in message
    assert "abc" not in message


def test_a_missing_or_bad_trust_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match=r"^tls_trust_certs_file '.*ca.pem' is not a"):
        PulsarBroker(SSL_URL, tls_trust_certs_file=tmp_path / "ca.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(InvalidArgumentError, match=r"tls_trust_certs_file .* holds no PEM"):
        PulsarBroker(SSL_URL, tls_trust_certs_file=junk)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"tls_allow_insecure_connection": True}, "tls_allow_insecure_connection"),
        ({"tls_validate_hostname": False}, "tls_validate_hostname=False"),
        ({"tls_trust_certs_file": "CA"}, "tls_trust_certs_file"),
    ],
)
def test_tls_options_without_tls_are_refused(
    options: dict[str, object], named: str, ca_file: Path
) -> None:
    options = {k: ca_file if v == "CA" else v for k, v in options.items()}
    with pytest.raises(InvalidArgumentError) as caught:
        PulsarBroker(PLAIN_URL, admin_url="http://127.0.0.1:8080", **options)  # type: ignore[arg-type]
    assert str(caught.value).startswith(named)
    assert "without TLS" in str(caught.value)
    # An https:// admin URL is TLS too: the same options are then accepted.
    PulsarBroker(PLAIN_URL, admin_url="https://127.0.0.1:8443", **options)  # type: ignore[arg-type]


def test_the_token_is_in_no_repr(token_file: Path) -> None:
    for broker in (
        PulsarBroker(SSL_URL, auth_token=TOKEN),
        PulsarBroker(SSL_URL, auth_token_file=token_file),
    ):
        shown = " ".join(
            repr(part) for part in (broker, broker.admin, broker._security, broker._security.token)
        )
        assert TOKEN not in shown
        assert TOKEN[:20] not in shown
    assert str(token_file) in repr(TokenSource(path=str(token_file)))


def test_connect_passes_the_security_options_on(token_file: Path, ca_file: Path) -> None:
    broker = connect(
        SSL_URL,
        auth_token_file=token_file,
        tls_trust_certs_file=ca_file,
        tls_validate_hostname=False,
    )
    assert isinstance(broker, PulsarBroker)
    security = broker._security
    assert security.trust_certs_file == str(ca_file)
    assert security.validate_hostname is False
    assert security.token is not None
    assert security.token() == TOKEN


# --------------------------------------------------------------------------- the client's kwargs


@dataclass
class Recorder:
    """Stands for ``pulsar.asyncio.Client`` and ``pulsar.AuthenticationToken``."""

    clients: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    tokens: list[object] = field(default_factory=list)

    def client(self, url: str, **kwargs: Any) -> Any:
        self.clients.append((url, kwargs))
        return _FakeClient()

    def authentication(self, token: object) -> Any:
        self.tokens.append(token)
        return ("authentication", len(self.tokens))


class _FakeNative:
    def close(self) -> None:
        pass


class _FakeClient:
    _client = _FakeNative()

    def shutdown(self) -> None:
        pass


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    record = Recorder()

    async def no_probe(self: PulsarBroker) -> None:
        return None

    monkeypatch.setattr(broker_module, "Client", record.client)
    monkeypatch.setattr(pulsar, "AuthenticationToken", record.authentication)
    monkeypatch.setattr(PulsarBroker, "_probe", no_probe)
    return record


async def test_a_token_reaches_the_client_as_its_authentication(recorder: Recorder) -> None:
    async with PulsarBroker(SSL_URL, auth_token=TOKEN):
        pass
    ((url, kwargs),) = recorder.clients
    assert url == SSL_URL
    assert recorder.tokens == [TOKEN]  # a fixed token goes as text
    assert kwargs["authentication"] == ("authentication", 1)
    assert kwargs["tls_validate_hostname"] is True
    assert kwargs["tls_allow_insecure_connection"] is False
    assert "tls_trust_certs_file_path" not in kwargs  # the client's default: certifi


async def test_a_token_file_reaches_the_client_as_a_supplier_that_rereads_it(
    recorder: Recorder, token_file: Path, ca_file: Path
) -> None:
    async with PulsarBroker(
        SSL_URL,
        auth_token_file=token_file,
        tls_trust_certs_file=ca_file,
        tls_allow_insecure_connection=True,
        tls_validate_hostname=False,
    ):
        pass
    ((_, kwargs),) = recorder.clients
    assert kwargs["tls_trust_certs_file_path"] == str(ca_file)
    assert kwargs["tls_allow_insecure_connection"] is True
    assert kwargs["tls_validate_hostname"] is False
    (supplier,) = recorder.tokens
    assert callable(supplier)
    assert supplier() == TOKEN
    # When the file is rotated in place, the next call gives the new token
    rotate(token_file, "rotated.token.value")
    assert supplier() == "rotated.token.value"


async def test_no_token_means_no_authentication(recorder: Recorder) -> None:
    async with PulsarBroker(PLAIN_URL):
        pass
    ((_, kwargs),) = recorder.clients
    assert kwargs["authentication"] is None
    assert recorder.tokens == []


async def test_the_recorded_kwargs_build_a_real_client(
    token_file: Path, ca_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the kwargs the broker builds, with the real AuthenticationToken
    record = Recorder()

    async def no_probe(self: PulsarBroker) -> None:
        return None

    monkeypatch.setattr(broker_module, "Client", record.client)
    monkeypatch.setattr(PulsarBroker, "_probe", no_probe)
    async with PulsarBroker(SSL_URL, auth_token_file=token_file, tls_trust_certs_file=ca_file):
        pass
    ((url, kwargs),) = record.clients
    assert isinstance(kwargs["authentication"], pulsar.AuthenticationToken)
    # When the real client is built with them (it connects only when used), it accepts them all
    client = RealClient(url, **kwargs)
    client._client.close()
    client.shutdown()


def test_a_token_file_that_goes_away_keeps_the_last_token(
    token_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = TokenSource(path=str(token_file))
    token_file.unlink()
    with caplog.at_level(logging.WARNING, logger="keylane.brokers.pulsar._security"):
        assert source() == TOKEN
    assert "not refreshed" in caplog.text
    assert TOKEN not in caplog.text
    # A file rotated to something that is not a token: the last good one, never the bad text
    token_file.write_text("two words\n")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="keylane.brokers.pulsar._security"):
        assert source() == TOKEN
    assert "whitespace" in caplog.text
    assert "two words" not in caplog.text


# --------------------------------------------------------------------------- the admin client


@dataclass
class Seen:
    """What the admin server received."""

    headers: list[dict[str, str]] = field(default_factory=list)
    status: int = 200


def _handler(seen: Seen) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.headers.append(dict(self.headers.items()))
            body = json.dumps(
                {"partitions": 3} if seen.status == 200 else {"reason": "Authentication required"}
            ).encode()
            self.send_response(seen.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


Serve = Callable[..., tuple[str, Seen]]


@pytest.fixture
def admin_server() -> Iterator[Serve]:
    """``serve(context=None, host="127.0.0.1")``: a local admin API; returns (URL, Seen)."""
    servers: list[ThreadingHTTPServer] = []

    def serve(context: ssl.SSLContext | None = None, host: str = "127.0.0.1") -> tuple[str, Seen]:
        seen = Seen()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(seen))
        if context is not None:
            server.socket = context.wrap_socket(server.socket, server_side=True)
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        scheme = "https" if context is not None else "http"
        return f"{scheme}://{host}:{server.server_address[1]}", seen

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def _server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


TOPIC = "persistent://public/default/t"


async def test_the_admin_client_sends_the_bearer_token(
    admin_server: Serve, token_file: Path
) -> None:
    url, seen = admin_server()
    broker = PulsarBroker(PLAIN_URL, admin_url=url, auth_token_file=token_file)
    assert await broker.admin.partitions(TOPIC) == 3
    rotate(token_file, "rotated.token")
    assert await broker.admin.partitions(TOPIC) == 3
    assert [h.get("Authorization") for h in seen.headers] == [
        f"Bearer {TOKEN}",
        "Bearer rotated.token",
    ]


async def test_the_admin_client_sends_no_authorization_without_a_token(
    admin_server: Serve,
) -> None:
    url, seen = admin_server()
    assert await PulsarBroker(PLAIN_URL, admin_url=url).admin.partitions(TOPIC) == 3
    assert "Authorization" not in seen.headers[0]


async def test_a_refused_token_is_said_without_the_token(admin_server: Serve) -> None:
    url, seen = admin_server()
    seen.status = 401
    broker = PulsarBroker(PLAIN_URL, admin_url=url, auth_token=TOKEN)
    with pytest.raises(BrokerAuthenticationError) as caught:
        await broker.admin.partitions(TOPIC)
    assert "401" in str(caught.value)
    assert "sent the token" in str(caught.value)
    assert TOKEN not in str(caught.value)


async def test_the_admin_client_names_its_auth_method_with_a_token(admin_server: Serve) -> None:
    # Without the method name, a broker with anonymousUserRole takes a bad token for none
    url, seen = admin_server()
    await PulsarBroker(PLAIN_URL, admin_url=url, auth_token=TOKEN).admin.partitions(TOPIC)
    await PulsarBroker(PLAIN_URL, admin_url=url).admin.partitions(TOPIC)
    assert seen.headers[0]["X-Pulsar-Auth-Method-Name"] == "token"
    assert "X-Pulsar-Auth-Method-Name" not in seen.headers[1]


async def test_https_admin_trusts_the_given_ca(
    admin_server: Serve, ca: trustme.CA, ca_file: Path
) -> None:
    url, seen = admin_server(_server_context(ca, "localhost"), host="localhost")
    broker = PulsarBroker(SSL_URL, admin_url=url, auth_token=TOKEN, tls_trust_certs_file=ca_file)
    assert await broker.admin.partitions(TOPIC) == 3
    assert seen.headers[0]["Authorization"] == f"Bearer {TOKEN}"


async def test_https_admin_refuses_a_ca_it_was_not_given(
    admin_server: Serve, ca: trustme.CA
) -> None:
    url, seen = admin_server(_server_context(ca, "localhost"), host="localhost")
    with pytest.raises(BrokerConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await PulsarBroker(SSL_URL, admin_url=url).admin.partitions(TOPIC)  # certifi's CAs
    assert seen.headers == []  # the request never got through


async def test_https_admin_checks_the_host_name_unless_told_not_to(
    admin_server: Serve, ca: trustme.CA, ca_file: Path
) -> None:
    # Given a certificate for another name than the one connected to
    url, _ = admin_server(_server_context(ca, "pulsar.example.org"))
    strict = PulsarBroker(SSL_URL, admin_url=url, tls_trust_certs_file=ca_file)
    with pytest.raises(BrokerConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        await strict.admin.partitions(TOPIC)
    lenient = PulsarBroker(
        SSL_URL, admin_url=url, tls_trust_certs_file=ca_file, tls_validate_hostname=False
    )
    assert await lenient.admin.partitions(TOPIC) == 3
    insecure = PulsarBroker(SSL_URL, admin_url=url, tls_allow_insecure_connection=True)
    assert await insecure.admin.partitions(TOPIC) == 3
