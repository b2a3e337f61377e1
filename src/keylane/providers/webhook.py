"""WebhookProvider: the webhook contract's client, an HTTP POST per delivery (httpx).

``POST <url>`` with the delivery's JSON body, ``Content-Type: application/json`` and
``Idempotency-Key: <key>``. The answer maps to an outcome (``docs/providers.md``):

* 2xx: SENT (``Idempotent-Replayed: true`` marks a replay of an earlier delivery);
* 409: FAILED_PERMANENT, logged at ERROR: the key was reused with a different body, a bug;
* 408, 429 and 5xx: FAILED_RETRYABLE;
* other 3xx and 4xx: FAILED_PERMANENT;
* timeouts and connection errors: FAILED_RETRYABLE, because the key makes a retry safe; for an
  endpoint that does not honour the key (``honours_idempotency=False``), an error after the
  request may have reached it is UNKNOWN instead.

Logs never show the recipient or body in clear. This is the only providers module that imports
httpx; it imports no web framework.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpx

from keylane.errors import AlreadyClosedError, InvalidArgumentError
from keylane.providers.base import Delivery, Outcome, Provider, Receipt, mask_recipient

__all__ = ["DEFAULT_TIMEOUT", "REPLAYED_HEADER", "WebhookProvider"]

logger = logging.getLogger(__name__)

#: Seconds a request may take (connect, write, read and pool wait each) unless told otherwise.
DEFAULT_TIMEOUT = 10.0
#: Response header by which a gateway says it answered from its idempotency ledger.
REPLAYED_HEADER = "Idempotent-Replayed"
#: 4xx statuses that mean "try again later", not "never".
_RETRYABLE_4XX = frozenset({408, 429})
_RESERVED_HEADERS = frozenset({"idempotency-key", "content-type", "content-length"})
_MAX_DETAIL = 200


def _check_url(url: object) -> str:
    if not isinstance(url, str):
        raise InvalidArgumentError(f"webhook url must be a string, not {type(url).__name__}")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        raise InvalidArgumentError(f"webhook url {url!r} is malformed: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidArgumentError(f"webhook url must be http:// or https://, got {url!r}")
    if not parts.hostname:
        raise InvalidArgumentError(f"webhook url must name a host, got {url!r}")
    del port
    return url


def _check_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    if headers is None:
        return {}
    result: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidArgumentError(f"webhook header {name!r} and its value must be strings")
        if name.lower() in _RESERVED_HEADERS:
            raise InvalidArgumentError(f"webhook header {name!r} is set by the provider itself")
        result[name] = value
    return result


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidArgumentError(f"webhook timeout must be seconds (float), not {timeout!r}")
    if not (timeout > 0 and math.isfinite(timeout)):
        raise InvalidArgumentError(f"webhook timeout must be positive seconds, got {timeout}")
    return float(timeout)


def _reason(response: httpx.Response, delivery: Delivery) -> str:
    """The server's short reason (``reason`` of a JSON error body, else the start of the text),
    with the recipient masked and the body left out, should the server have echoed them."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("reason"), str):
        text: str = data["reason"]
    else:
        text = response.text
    text = text.replace(delivery.body, "<body>").replace(delivery.to, mask_recipient(delivery.to))
    text = " ".join(text.split())
    return text[:_MAX_DETAIL] if text else response.reason_phrase


def _message_id(response: httpx.Response) -> str | None:
    try:
        data = response.json()
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


class WebhookProvider(Provider):
    """POSTs each delivery to one URL, over a pooled ``httpx.AsyncClient``.

    Concurrent sends share the client's connection pool.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        honours_idempotency: bool = True,
    ) -> None:
        """Args:
            url: the endpoint (``http://`` or ``https://``, with a host).
            timeout: seconds for each of connect, write, read and pool wait.
            headers: extra headers for every request (say ``Authorization``); not the
                idempotency or content headers, which the provider sets.
            client: an httpx client to use; it stays the caller's to close. When None, the
                provider makes its own and closes it in :meth:`close`.
            honours_idempotency: the endpoint de-duplicates by ``Idempotency-Key``. When False,
                a failure after the request may have reached it is UNKNOWN, not retryable.

        Raises:
            InvalidArgumentError: a bad url, timeout or header.
        """
        self._url = _check_url(url)
        self._timeout = _check_timeout(timeout)
        self._headers = _check_headers(headers)
        self._honours_idempotency = bool(honours_idempotency)
        self._owns_client = client is None
        self._client = (
            client
            if client is not None
            else httpx.AsyncClient(
                timeout=httpx.Timeout(self._timeout),
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
            )
        )
        self._closed = False

    @property
    def url(self) -> str:
        """The endpoint this provider posts to."""
        return self._url

    async def _send(self, delivery: Delivery) -> Receipt:
        if self._closed:
            raise AlreadyClosedError("WebhookProvider is closed")
        headers = {
            **self._headers,
            "Content-Type": "application/json",
            "Idempotency-Key": delivery.idempotency_key,
        }
        try:
            response = await self._client.post(
                self._url, content=delivery.to_json(), headers=headers, timeout=self._timeout
            )
        except httpx.HTTPError as exc:
            return self._transport_failure(delivery, exc)
        return self._receipt(delivery, response)

    def _transport_failure(self, delivery: Delivery, exc: httpx.HTTPError) -> Receipt:
        # A request that never left (no connection, or no pooled connection in time) is always
        # safe to retry; one that may have arrived is safe only if the key is honoured.
        never_sent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
        retryable = never_sent or self._honours_idempotency
        outcome = Outcome.FAILED_RETRYABLE if retryable else Outcome.UNKNOWN
        kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "transport error"
        detail = f"{kind} ({type(exc).__name__}) posting to {self._url}"
        logger.warning(
            "webhook %s for key %s to %s: %s",
            outcome.value,
            delivery.idempotency_key,
            mask_recipient(delivery.to),
            detail,
        )
        return Receipt(outcome, None, None, detail)

    def _receipt(self, delivery: Delivery, response: httpx.Response) -> Receipt:
        status = response.status_code
        if 200 <= status < 300:
            replayed = response.headers.get(REPLAYED_HEADER, "").strip().lower() == "true"
            detail = "replayed" if replayed else "delivered"
            return Receipt(Outcome.SENT, status, _message_id(response), detail, replayed)
        reason = _reason(response, delivery)
        key, to = delivery.idempotency_key, mask_recipient(delivery.to)
        if status == 409:
            logger.error(
                "webhook 409 for key %s to %s: the idempotency key was reused with a different "
                "body; this send is dropped (a bug in the key derivation?): %s",
                key,
                to,
                reason,
            )
            return Receipt(Outcome.FAILED_PERMANENT, status, None, f"409 key reused: {reason}")
        if status >= 500 or status in _RETRYABLE_4XX:
            logger.warning("webhook %d for key %s to %s (will retry): %s", status, key, to, reason)
            return Receipt(Outcome.FAILED_RETRYABLE, status, None, f"{status}: {reason}")
        if 300 <= status < 400:
            where = response.headers.get("Location", "?")
            reason = f"redirect to {where}; configure the final URL"
        logger.warning("webhook %d for key %s to %s (permanent): %s", status, key, to, reason)
        return Receipt(Outcome.FAILED_PERMANENT, status, None, f"{status}: {reason}")

    async def close(self) -> None:
        """Close the provider's own client (not one passed in). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._owns_client:
            await self._client.aclose()
