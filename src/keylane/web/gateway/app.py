"""The embedded gateway's HTTP face: a Starlette app over a :class:`Ledger` and a fault policy.

Routes (the contract is ``docs/providers.md``):

* ``POST /v1/messages``: deliver (201), replay (201 + ``Idempotent-Replayed: true``), 409 on a
  key reused with a different body; 400/413/415/422 for bad input, with the field and reason.
* ``GET /v1/messages?to=...``: one recipient's deliveries, oldest first (the phone's view).
* ``GET /v1/deliveries?after=N&limit=M``: every delivery, in pages.
* ``GET /v1/stats``: the counts, duplicate deliveries included.
* ``GET/POST/DELETE /v1/faults``: read, set and clear failure injection.

Only the HTTP mapping lives here; idempotency, the log and the stats are the ledger's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from keylane.errors import InvalidArgumentError
from keylane.providers.base import Delivery, DeliveryFieldError
from keylane.web.gateway.faults import Fault, FaultKind, FaultPlan, FaultPolicy
from keylane.web.gateway.ledger import Ledger

__all__ = ["DEFAULT_MAX_BODY_BYTES", "GatewayState", "create_app"]

#: Largest accepted request body.
DEFAULT_MAX_BODY_BYTES = 256 * 1024
#: Largest page of ``GET /v1/deliveries``.
MAX_PAGE = 10_000

_ENCODER = msgspec.json.Encoder()
_REPLAYED = {"Idempotent-Replayed": "true"}


class GatewayState:
    """What the app serves from: the ledger, the fault policy and the stop signal."""

    def __init__(self, ledger: Ledger, faults: FaultPolicy, max_body_bytes: int) -> None:
        self.ledger = ledger
        self.faults = faults
        self.max_body_bytes = max_body_bytes
        self.stopping = asyncio.Event()
        """Set when the server stops: requests held by a timeout fault give up at once."""

    async def hold(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the server is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(_ENCODER.encode(data), status, headers, media_type="application/json")


def _error(status: int, error: str, field: str, reason: str) -> Response:
    return _json(status, {"error": error, "field": field, "reason": reason})


class _Refused(Exception):
    """A request refused before delivery, with its answer."""

    def __init__(self, response: Response) -> None:
        self.response = response


async def _read_body(request: Request, limit: int) -> bytes:
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "application/json":
        shown = content_type or "none"
        raise _Refused(
            _error(
                415,
                "unsupported_media_type",
                "",
                f"Content-Type must be application/json, got {shown}",
            )
        )
    declared = request.headers.get("content-length")
    too_big = f"the body is larger than {limit} bytes"
    if declared is not None:
        if not declared.isdigit():
            raise _Refused(_error(400, "bad_request", "", "Content-Length is not a number"))
        if int(declared) > limit:
            raise _Refused(_error(413, "payload_too_large", "", too_big))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Refused(_error(413, "payload_too_large", "", too_big))
        chunks.append(chunk)
    return b"".join(chunks)


def _parse(request: Request, body: bytes) -> Delivery:
    key = request.headers.get("idempotency-key")
    if not key:
        raise _Refused(
            _error(
                400,
                "missing_idempotency_key",
                "Idempotency-Key",
                "the Idempotency-Key header is required",
            )
        )
    try:
        delivery = Delivery.from_json(body)
    except DeliveryFieldError as exc:
        raise _Refused(_error(422, "invalid_field", exc.field, exc.reason)) from None
    if delivery.idempotency_key != key:
        raise _Refused(
            _error(
                422,
                "idempotency_key_mismatch",
                "idempotency_key",
                "the body's idempotency_key differs from the Idempotency-Key header",
            )
        )
    return delivery


async def _fail(state: GatewayState, fault: Fault, request: Request) -> Response | None:
    """Apply ``fault``; a response ends the request, None lets it deliver (then answer late)."""
    state.ledger.note_fault(fault.kind, request.headers.get("idempotency-key"))
    if fault.kind is FaultKind.DOWN:
        headers = {"Retry-After": str(fault.retry_after)}
        return _json(
            503, {"error": "unavailable", "field": "", "reason": "the gateway is down"}, headers
        )
    if fault.kind is FaultKind.ERROR:
        return _error(fault.status, "injected_failure", "", "an injected failure: retry later")
    if fault.kind is FaultKind.TIMEOUT_BEFORE_DELIVERY:
        await state.hold(fault.delay)
        return _error(504, "injected_timeout", "", "an injected timeout: nothing was delivered")
    return None


async def post_message(request: Request) -> Response:
    """``POST /v1/messages``: deliver once per idempotency key."""
    state: GatewayState = request.app.state.gateway
    fault = state.faults.decide()
    if fault is not None:
        failed = await _fail(state, fault, request)
        if failed is not None:
            return failed
    try:
        delivery = _parse(request, await _read_body(request, state.max_body_bytes))
    except _Refused as refused:
        state.ledger.note_rejected()
        return refused.response
    answer = state.ledger.submit(delivery)
    if fault is not None:  # TIMEOUT_AFTER_DELIVERY: delivered; now answer too late
        await state.hold(fault.delay)
    headers = _REPLAYED if answer.replayed else None
    return Response(answer.body, answer.status, headers, media_type="application/json")


def _recipient(request: Request) -> str:
    to = request.query_params.get("to", "")
    # an unencoded "+" in a query string arrives as a space: "?to=+1555..." means +1555...
    if to.startswith(" ") and to[1:].isdigit():
        to = "+" + to[1:]
    return to


async def get_messages(request: Request) -> Response:
    """``GET /v1/messages?to=...``: what one phone (or inbox) received, oldest first."""
    state: GatewayState = request.app.state.gateway
    to = _recipient(request)
    if not to:
        return _error(400, "bad_request", "to", "give the recipient: ?to=%2B15551234567")
    messages = [record.to_dict() for record in state.ledger.messages_to(to)]
    return _json(200, {"to": to, "messages": messages})


def _int_param(request: Request, name: str, default: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) > high:
        raise _Refused(_error(400, "bad_request", name, f"must be an integer from 0 to {high}"))
    return int(raw)


async def get_deliveries(request: Request) -> Response:
    """``GET /v1/deliveries?after=N&limit=M``: deliveries with seq > N, M at most."""
    state: GatewayState = request.app.state.gateway
    try:
        after = _int_param(request, "after", 0, 2**62)
        limit = _int_param(request, "limit", 1000, MAX_PAGE)
    except _Refused as refused:
        return refused.response
    page = state.ledger.deliveries(after, limit)
    more = page and page[-1].seq < len(state.ledger)
    next_after = page[-1].seq if more else None
    return _json(200, {"deliveries": [r.to_dict() for r in page], "next_after": next_after})


async def get_stats(request: Request) -> Response:
    """``GET /v1/stats``: the ledger's counts."""
    state: GatewayState = request.app.state.gateway
    return _json(200, state.ledger.stats().to_dict())


def _plan_response(state: GatewayState) -> Response:
    plan = state.faults.plan
    return _json(200, {**plan.to_dict(), "down_remaining": state.faults.down_remaining()})


async def faults(request: Request) -> Response:
    """``GET`` the fault plan, ``POST`` a new one (JSON; absent fields off), ``DELETE`` it."""
    state: GatewayState = request.app.state.gateway
    if request.method == "DELETE":
        state.faults.clear()
    elif request.method == "POST":
        try:
            plan = FaultPlan.from_dict(json.loads(await request.body() or b"{}"))
        except ValueError as exc:  # JSON errors and InvalidArgumentError
            field, _, reason = str(exc).partition(": ")
            if not isinstance(exc, InvalidArgumentError):
                field, reason = "", f"malformed JSON: {exc}"
            elif not reason:
                field, reason = "", str(exc)
            return _error(422, "invalid_field", field, reason)
        state.faults.set(plan)
    return _plan_response(state)


def create_app(state: GatewayState) -> Starlette:
    """The gateway's ASGI app, serving ``state``."""
    app = Starlette(
        routes=[
            Route("/v1/messages", post_message, methods=["POST"]),
            Route("/v1/messages", get_messages, methods=["GET"]),
            Route("/v1/deliveries", get_deliveries, methods=["GET"]),
            Route("/v1/stats", get_stats, methods=["GET"]),
            Route("/v1/faults", faults, methods=["GET", "POST", "DELETE"]),
        ]
    )
    app.state.gateway = state
    return app
