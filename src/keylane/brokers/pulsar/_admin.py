"""A minimal client of Pulsar's admin REST API (``/admin/v2``), on the standard library.

The binary protocol cannot create partitioned topics or report a subscription's type, so the
backend asks the broker's web service: create topics, read a topic's partition count, read
subscription stats and delete topics. Requests run in a worker thread (``asyncio.to_thread``) so
the event loop never blocks. With a token, each request carries ``Authorization: Bearer <token>``
(the token asked for again per request, so a rotated token file is followed) and
``X-Pulsar-Auth-Method-Name: token``, without which a broker that allows anonymous access
(``anonymousUserRole``) takes a refused token for no token and answers as to an anonymous client
(Pulsar's ``AuthenticationService.authenticateHttpRequest`` then tries every provider, ignores
their failures and falls back to the anonymous role); with it a bad token gets HTTP 401, raised
as :class:`~keylane.errors.BrokerAuthenticationError`. An ``https://`` URL is checked against
the given TLS context (the binary client's trust).

Imports no backend and not ``pulsar``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from keylane.errors import (
    BrokerAuthenticationError,
    BrokerConnectionError,
    BrokerError,
    InvalidArgumentError,
    OperationTimeoutError,
    TopicNotFoundError,
)

__all__ = ["PulsarAdmin", "topic_path"]


def topic_path(topic: str) -> str:
    """The admin path of a fully qualified topic: ``persistent/tenant/ns/name``."""
    domain, _, rest = topic.partition("://")
    tenant, namespace, local = rest.split("/", 2)
    return "/".join(quote(part, safe="") for part in (domain, tenant, namespace, local))


class _HttpError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body}")
        self.status = status
        self.body = body


class PulsarAdmin:
    """Admin REST calls against ``base_url`` (e.g. ``http://127.0.0.1:8080``).

    Args:
        base_url: the broker's web service URL.
        timeout: seconds per request.
        token: returns the bearer token for each request; None sends no ``Authorization``.
        ssl_context: the TLS context for an ``https://`` URL; None: the standard library's
            default (the system's CAs).
    """

    def __init__(
        self,
        base_url: str,
        timeout: float,
        *,
        token: Callable[[], str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._token = token
        self._ssl_context = ssl_context

    def __repr__(self) -> str:
        return f"<PulsarAdmin {self.base_url} token={'yes' if self._token else 'no'}>"

    def _request(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token()}"
            headers["X-Pulsar-Auth-Method-Name"] = "token"  # no anonymous fallback (see above)
        request = urllib.request.Request(
            f"{self.base_url}/admin/v2/{path}", data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self._ssl_context
            ) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError, AttributeError):
                text = json.loads(text).get("reason", text)
            if exc.code in (401, 403):
                token = "the token" if self._token is not None else "no token (auth_token)"
                reason = exc.reason if text.lstrip().startswith("<") else text  # Jetty's HTML
                raise BrokerAuthenticationError(
                    f"Pulsar admin {method} {path.partition('?')[0]} refused: HTTP {exc.code}: "
                    f"{reason} (sent {token})"
                ) from None
            raise _HttpError(exc.code, text) from None
        except TimeoutError as exc:
            raise OperationTimeoutError(
                f"Pulsar admin {method} {path} timed out after {self.timeout}s"
            ) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise BrokerConnectionError(
                f"cannot reach the Pulsar admin API at {self.base_url}: {exc}"
            ) from exc
        return json.loads(payload) if payload else None

    async def _call(self, method: str, path: str, body: object = None) -> Any:
        return await asyncio.to_thread(self._request, method, path, body)

    async def token_refused(self) -> bool:
        """True if the broker refuses the token (HTTP 401/403 on a read of the cluster list).

        False without a token, and when the admin API cannot tell (unreachable, other errors).
        """
        if self._token is None:
            return False
        try:
            await self._call("GET", "clusters")
        except BrokerAuthenticationError:
            return True
        except (_HttpError, BrokerError):
            return False
        return False

    async def create_topic(self, topic: str, partitions: int) -> None:
        """Create ``topic`` (fully qualified); idempotent for the same partition count.

        Raises:
            InvalidArgumentError: the topic exists with another partition count, or the broker
                rejects the name.
            BrokerConnectionError: the admin API cannot be reached.
            BrokerAuthenticationError: the broker refused the token (HTTP 401/403).
        """
        path = topic_path(topic)
        try:
            if partitions:
                await self._call("PUT", f"{path}/partitions", partitions)
            else:
                await self._call("PUT", path)
            return
        except _HttpError as exc:
            if exc.status == 412 or exc.status == 400:
                raise InvalidArgumentError(f"cannot create topic {topic}: {exc.body}") from None
            if exc.status != 409:
                raise BrokerError(f"cannot create topic {topic}: {exc}") from None
        existing = await self.partitions(topic)
        if existing != partitions:
            kind = f"{existing} partitions" if existing else "non-partitioned"
            raise InvalidArgumentError(f"topic {topic} already exists ({kind})")

    async def partitions(self, topic: str) -> int:
        """The partition count of ``topic`` (0 if it is not partitioned or does not exist)."""
        try:
            reply = await self._call("GET", f"{topic_path(topic)}/partitions")
        except _HttpError as exc:
            if exc.status == 404:
                return 0
            raise BrokerError(f"cannot read the partitions of {topic}: {exc}") from None
        return int(reply.get("partitions", 0)) if isinstance(reply, dict) else 0

    async def subscription_stats(self, topic: str, subscription: str) -> dict[str, Any] | None:
        """Stats of one subscription of a topic (of partition 0 if partitioned), or None."""
        name = topic
        if await self.partitions(topic):
            name = f"{topic}-partition-0"
        try:
            stats = await self._call("GET", f"{topic_path(name)}/stats")
        except BrokerAuthenticationError:
            raise
        except (_HttpError, BrokerError):
            return None
        subscriptions = stats.get("subscriptions", {}) if isinstance(stats, dict) else {}
        found = subscriptions.get(subscription)
        return found if isinstance(found, dict) else None

    async def delete_topic(self, topic: str, *, force: bool = True) -> None:
        """Delete ``topic`` (all partitions); ``force`` also drops its subscriptions.

        Raises:
            TopicNotFoundError: there is no such topic.
        """
        partitioned = await self.partitions(topic)
        suffix = "/partitions" if partitioned else ""
        flag = "true" if force else "false"
        try:
            await self._call("DELETE", f"{topic_path(topic)}{suffix}?force={flag}")
        except _HttpError as exc:
            if exc.status == 404:
                raise TopicNotFoundError(f"topic {topic} does not exist") from None
            raise BrokerError(f"cannot delete topic {topic}: {exc}") from None
