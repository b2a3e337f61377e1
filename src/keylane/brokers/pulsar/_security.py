"""Token authentication and TLS trust of the Pulsar backend: checked once, used by both clients.

:func:`check_security` turns :class:`~keylane.brokers.pulsar.PulsarBroker`'s security arguments
into a :class:`PulsarSecurity`, which gives the binary client its keyword arguments
(:meth:`PulsarSecurity.client_options`) and the admin REST client its ``Authorization`` header
and TLS context (:meth:`PulsarSecurity.ssl_context`), so that both trust and present the same
things.

- A token is given as text or as a file. A file is read again at each use (the client calls
  :class:`TokenSource` when it connects and when the broker asks for fresh credentials; the admin
  client on each request), so a token rotated in place is picked up without a restart. A read
  that fails then keeps the last good token and logs a warning (never the token).
- The token is never part of a ``repr``, an error message or a log line.
- Without ``tls_trust_certs_file`` both clients trust certifi's bundle (the binary client's own
  default, kept for the admin client so that the two agree).

Part of the Pulsar backend; imports ``certifi`` (a dependency of ``pulsar-client``), neither
``pulsar`` nor another backend.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlparse

import certifi

from keylane._validate import MAX_TOKEN_LENGTH, check_token
from keylane.errors import InvalidArgumentError

__all__ = ["PulsarSecurity", "TokenSource", "check_security"]

_log = logging.getLogger(__name__)


def _token_from_file(path: str, name: str) -> str:
    """The token in ``path``: its text without surrounding whitespace (a final newline)."""
    try:
        with open(path, encoding="ascii", errors="replace") as file:
            text = file.read(MAX_TOKEN_LENGTH + 2)
    except OSError as exc:
        raise InvalidArgumentError(
            f"{name} {path!r} cannot be read: {exc.strerror or type(exc).__name__}"
        ) from None
    return check_token(f"the token in {name} {path!r}", text.strip())


class TokenSource:
    """The bearer token: fixed, or read from a file each time it is asked for.

    Calling it returns the token (the client's token supplier and the admin client both call
    it). ``repr`` shows where the token comes from, never the token.

    Args:
        token: the token itself (checked by :func:`check_token`), or None.
        path: a file holding the token, or None; exactly one of the two is given. The file is
            read (and checked) at once as well.
    """

    __slots__ = ("_last", "_lock", "_path")

    def __init__(self, *, token: str | None = None, path: str | None = None) -> None:
        if (token is None) == (path is None):
            raise InvalidArgumentError("a TokenSource takes exactly one of token and path")
        self._path = path
        self._last = (
            check_token("auth_token", token)
            if path is None
            else _token_from_file(path, "auth_token_file")
        )
        self._lock = threading.Lock()

    @property
    def path(self) -> str | None:
        """The token file, or None for a token given as text."""
        return self._path

    def __call__(self) -> str:
        """The token now: the file's current content (the last good one if it cannot be read)."""
        if self._path is None:
            return self._last
        try:
            token = _token_from_file(self._path, "auth_token_file")
        except Exception as exc:  # raising into the C++ client could abort the process
            # InvalidArgumentError's message never holds the token; other errors are named only.
            reason = exc if isinstance(exc, InvalidArgumentError) else type(exc).__name__
            _log.warning("Pulsar token not refreshed, the last one is used: %s", reason)
            with self._lock:
                return self._last
        with self._lock:
            self._last = token
        return token

    def __repr__(self) -> str:
        return "<TokenSource given>" if self._path is None else f"<TokenSource {self._path!r}>"


@dataclass(frozen=True, slots=True)
class PulsarSecurity:
    """What a :class:`~keylane.brokers.pulsar.PulsarBroker` presents and trusts.

    Attributes:
        token: the bearer token's source, or None (no authentication).
        trust_certs_file: a PEM file of the CAs to trust, or None (certifi's bundle).
        allow_insecure: accept any certificate (tests only).
        validate_hostname: check that the certificate names the host connected to.
    """

    token: TokenSource | None = None
    trust_certs_file: str | None = None
    allow_insecure: bool = False
    validate_hostname: bool = True

    def client_options(self) -> dict[str, object]:
        """Keyword arguments of ``pulsar.Client`` (and ``pulsar.asyncio.Client``), but for the
        authentication object, which the caller builds from :attr:`token`."""
        options: dict[str, object] = {
            "tls_allow_insecure_connection": self.allow_insecure,
            "tls_validate_hostname": self.validate_hostname,
        }
        if self.trust_certs_file is not None:
            options["tls_trust_certs_file_path"] = self.trust_certs_file
        return options

    def ssl_context(self) -> ssl.SSLContext:
        """The admin client's TLS context for ``https://`` (the same trust as the client's)."""
        context = ssl.create_default_context(cafile=self.trust_certs_file or certifi.where())
        if self.allow_insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif not self.validate_hostname:
            context.check_hostname = False
        return context


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be True or False, not {type(value).__name__}")
    return value


def _file(name: str, value: object) -> str:
    """``value`` as the str path of an existing, readable file."""
    path = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not isinstance(path, str) or not path:
        raise InvalidArgumentError(f"{name} must be a non-empty path, not {type(value).__name__}")
    if not os.path.isfile(path):
        raise InvalidArgumentError(f"{name} {path!r} is not a file")
    if not os.access(path, os.R_OK):
        raise InvalidArgumentError(f"{name} {path!r} cannot be read")
    return path


def check_security(
    service_url: str,
    admin_url: str,
    *,
    auth_token: object = None,
    auth_token_file: object = None,
    tls_trust_certs_file: object = None,
    tls_allow_insecure_connection: object = False,
    tls_validate_hostname: object = True,
) -> PulsarSecurity:
    """Check :class:`~keylane.brokers.pulsar.PulsarBroker`'s security arguments.

    Args:
        service_url: the checked service URL (``pulsar://`` or ``pulsar+ssl://``).
        admin_url: the checked admin URL (``http://`` or ``https://``).
        auth_token: a token, or None.
        auth_token_file: a file holding the token (read now, and again at each use), or None.
        tls_trust_certs_file: a PEM file of trusted CAs, or None.
        tls_allow_insecure_connection: accept any certificate.
        tls_validate_hostname: check the certificate's host name.

    Raises:
        InvalidArgumentError: a bad value, both a token and a token file, a missing or
            unreadable file, or a TLS option while neither URL uses TLS (messages name the
            argument and never hold the token).
    """
    allow_insecure = _flag("tls_allow_insecure_connection", tls_allow_insecure_connection)
    validate_hostname = _flag("tls_validate_hostname", tls_validate_hostname)
    if auth_token is not None and auth_token_file is not None:
        raise InvalidArgumentError(
            "auth_token and auth_token_file are both given: pass one (the file is better: it "
            "stays out of the process list and can be rotated)"
        )
    trust = None
    if tls_trust_certs_file is not None:
        trust = _file("tls_trust_certs_file", tls_trust_certs_file)
        try:
            ssl.create_default_context(cafile=trust)
        except (ssl.SSLError, ValueError):
            raise InvalidArgumentError(
                f"tls_trust_certs_file {trust!r} holds no PEM certificate"
            ) from None
    tls_options = [
        name
        for name, given in (
            ("tls_trust_certs_file", trust is not None),
            ("tls_allow_insecure_connection", allow_insecure),
            ("tls_validate_hostname=False", not validate_hostname),
        )
        if given
    ]
    uses_tls = urlparse(service_url).scheme == "pulsar+ssl" or admin_url.startswith("https:")
    if tls_options and not uses_tls:
        raise InvalidArgumentError(
            f"{', '.join(tls_options)} given without TLS: the service URL is pulsar:// and the "
            "admin URL http://; use pulsar+ssl://host:6651 (or an https:// admin URL)"
        )
    source = None
    if auth_token is not None:
        source = TokenSource(token=check_token("auth_token", auth_token))
    elif auth_token_file is not None:
        source = TokenSource(path=_file("auth_token_file", auth_token_file))
    return PulsarSecurity(
        token=source,
        trust_certs_file=trust,
        allow_insecure=allow_insecure,
        validate_hostname=validate_hostname,
    )
