"""What the service API serves from: its limits, its token, the publisher and the observability.

:class:`ApiConfig` holds the knobs (listen address, token, limits); :class:`ApiState` is the
live side the routes read (no module-level state: each app gets its own). :func:`new_token`
makes a token when none is configured; :func:`token_matches` compares in constant time.

Imports the observability hub and the publisher; no web framework.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from dataclasses import dataclass, field

from keylane._validate import check_int, check_seconds
from keylane.errors import InvalidArgumentError
from keylane.observability import Observability
from keylane.web.api.publisher import IngestPublisher

__all__ = ["ApiConfig", "ApiState", "new_token", "token_matches"]

#: The shortest token accepted from the configuration.
MIN_TOKEN_LENGTH = 16


def new_token() -> str:
    """A fresh random bearer token (32 URL-safe characters)."""
    return secrets.token_urlsafe(24)


def token_matches(given: str | None, expected: str) -> bool:
    """Whether ``given`` is ``expected``, compared in constant time."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


@dataclass(frozen=True, slots=True)
class ApiConfig:
    """The service API's knobs.

    Args:
        host: the interface to listen on (127.0.0.1 by default: not reachable from outside).
        port: the port; 0 picks a free one.
        token: the bearer token of the ingest and admin endpoints (at least 16 characters);
            None: one is generated at start (printed by ``keylane serve``).
        max_batch: the most events one ``POST /v1/events`` may carry.
        max_body_bytes: the largest request body (413 above it).
        publish_timeout: real seconds to wait for the broker's receipts before answering 503.
        retry_after: seconds the 503 answer's ``Retry-After`` asks clients to wait.
        stream_interval: seconds between the SSE stream's ``stats`` events.
        stream_entries: decision/delivery entries per second on an unfiltered stream (the
            rest are counted as dropped; a stream for one subscriber gets all of its own).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_batch: int = 500
    max_body_bytes: int = 1024 * 1024
    publish_timeout: float = 5.0
    retry_after: int = 2
    stream_interval: float = 1.0
    stream_entries: int = 50

    def __post_init__(self) -> None:
        check_int("port", self.port, 0, 65535)
        check_int("max_batch", self.max_batch, 1, 100_000)
        check_int("max_body_bytes", self.max_body_bytes, 1024, 64 * 1024 * 1024)
        check_int("retry_after", self.retry_after, 1, 3600)
        check_int("stream_entries", self.stream_entries, 1, 10_000)
        check_seconds("publish_timeout", self.publish_timeout, allow_zero=False)
        check_seconds("stream_interval", self.stream_interval, allow_zero=False)
        if not isinstance(self.host, str) or not self.host:
            raise InvalidArgumentError(f"host must be a non-empty string, got {self.host!r}")
        if self.token is not None and (
            not isinstance(self.token, str)
            or len(self.token) < MIN_TOKEN_LENGTH
            or any(c.isspace() for c in self.token)
        ):
            raise InvalidArgumentError(
                f"the API token must be at least {MIN_TOKEN_LENGTH} characters without spaces"
            )


@dataclass(eq=False)
class ApiState:
    """The live objects the routes use.

    Attributes:
        config: the knobs.
        token: the bearer token in force (configured or generated).
        publisher: publishes ingested events (None: ingest answers 503).
        observability: metrics, recent decisions and the sampler of the worker.
        stopping: set when the server stops, so open streams end.
    """

    config: ApiConfig
    token: str
    publisher: IngestPublisher | None
    observability: Observability
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
