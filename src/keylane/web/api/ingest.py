"""``POST /v1/events``: one event (a JSON object) or a batch (an array), published, then 202.

The order of checks: the token (401), the content type (415), the body size (413), the JSON
(400), the shape and the batch limit (422, 413), every event against the schema
(:func:`~keylane.journeys.parse_event`; 422 listing each invalid event's index, field and
reason; nothing is published when one is invalid), then the publication, key
``<brand_id>:<subscriber_id>``, waiting for the broker's receipts:

- every event stored: **202** ``{"accepted": n, "results": [{index, event_id, key, status:
  "accepted", message_id}]}``;
- any event not stored (the broker unreachable or too slow): **503** with ``Retry-After`` and the
  same per-event results, ``status`` ``"accepted"`` or ``"not_published"``. Send the batch
  again: a repeated ``event_id`` is accepted and decided once (the engine de-duplicates it).

Imports the API's helpers and state, the journeys' events; starlette.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from opentelemetry.trace import Span
from starlette.requests import Request
from starlette.responses import Response

from keylane.journeys import Event, EventError, parse_event
from keylane.web.api.http import Refused, authorize, error, json_response, read_json_body
from keylane.web.api.state import ApiState

__all__ = ["post_events"]

logger = logging.getLogger("keylane.web.api")

_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
_ROUTE = "/v1/events"


def _items(body: bytes, max_batch: int) -> tuple[list[bytes], bool]:
    """The raw events of a body and whether it was a batch.

    Raises:
        Refused: 400 not JSON; 422 neither an object nor an array, or empty; 413 too many.
    """
    text = body.lstrip()
    first = text[:1]
    try:
        if first == b"[":
            items = [bytes(raw) for raw in _ITEMS.decode(body)]
            batch = True
        elif first == b"{":
            msgspec.json.decode(body)  # the whole body must be one valid JSON value
            items, batch = [body], False
        else:
            if first:
                msgspec.json.decode(body)  # a JSON scalar is 422 below, garbage is 400 here
            raise Refused(
                error(
                    422,
                    "invalid_body",
                    "",
                    "the body must be one event (a JSON object) or a batch (a JSON array)",
                )
            )
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Refused(error(400, "malformed_json", "", f"not valid JSON: {exc}")) from None
    except RecursionError:  # found by tests/integration/web/test_fuzz_api.py
        raise Refused(
            error(400, "malformed_json", "", "not valid JSON: nested too deeply")
        ) from None
    if not items:
        raise Refused(error(422, "invalid_body", "", "the batch is empty"))
    if len(items) > max_batch:
        raise Refused(
            error(
                413,
                "batch_too_large",
                "",
                f"a batch holds at most {max_batch} events, got {len(items)}",
                max_batch=max_batch,
            )
        )
    return items, batch


def _parse_all(items: list[bytes], batch: bool) -> tuple[list[Event], list[dict[str, Any]]]:
    events: list[Event] = []
    problems: list[dict[str, Any]] = []
    for index, raw in enumerate(items):
        try:
            events.append(parse_event(raw))
        except EventError as exc:
            reason = str(exc)
            if exc.field and reason.startswith(f"{exc.field}: "):
                reason = reason[len(exc.field) + 2 :]
            field = exc.field if not batch else f"[{index}].{exc.field}".rstrip(".")
            problems.append({"index": index, "field": field, "reason": reason})
    return events, problems


async def post_events(request: Request) -> Response:
    """Validate, publish and acknowledge a batch of events."""
    state: ApiState = request.app.state.api
    tracing = state.observability.tracing
    if tracing is None:
        return await _handle(request, state, None)
    with tracing.server_span("POST", _ROUTE, request.headers) as span:
        response = await _handle(request, state, span)
        span.set_attribute("http.response.status_code", response.status_code)
        return response


async def _handle(request: Request, state: ApiState, span: Span | None) -> Response:
    metrics = state.observability.metrics
    config = state.config
    try:
        authorize(request, state)
        body = await read_json_body(request, config.max_body_bytes)
        items, batch = _items(body, config.max_batch)
    except Refused as refused:
        return refused.response
    events, problems = _parse_all(items, batch)
    if problems:
        metrics.count_ingested("invalid", len(items))
        first = problems[0]
        logger.info("ingest: %d of %d events invalid", len(problems), len(items))
        return error(422, "invalid_event", first["field"], first["reason"], errors=problems)
    if span is not None:
        span.set_attribute("messaging.batch.message_count", len(events))
    publisher = state.publisher
    if publisher is None:
        metrics.count_ingested("unavailable", len(events))
        return _unavailable(state, "this server has no broker to publish to", [])
    published = await publisher.publish(events)
    results = [
        {
            "index": index,
            "event_id": event.event_id,
            "key": event.key,
            "status": "accepted" if p.ok else "not_published",
            "message_id": None if p.message_id is None else str(p.message_id),
            **({} if p.ok else {"reason": p.error}),
        }
        for index, (event, p) in enumerate(zip(events, published, strict=True))
    ]
    accepted = sum(p.ok for p in published)
    metrics.count_ingested("accepted", accepted)
    if accepted < len(events):
        metrics.count_ingested("unavailable", len(events) - accepted)
        reason = next(p.error for p in published if not p.ok)
        return _unavailable(state, f"the broker did not store every event: {reason}", results)
    return json_response(202, {"accepted": accepted, "results": results})


def _unavailable(state: ApiState, reason: str, results: list[dict[str, Any]]) -> Response:
    return error(
        503,
        "broker_unavailable",
        "",
        reason,
        headers={"Retry-After": str(state.config.retry_after)},
        accepted=sum(r["status"] == "accepted" for r in results),
        results=results,
    )
