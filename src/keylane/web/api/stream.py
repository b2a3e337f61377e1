"""``GET /v1/stream``: Server-Sent Events for the dashboard (``text/event-stream``).

Events (each ``data`` is one JSON object):

- ``hello`` once: ``{"time", "interval", "key"}``;
- ``stats`` every ``stream_interval`` seconds: the same object as ``GET /v1/overview`` but
  with only the latest point of the series (``point``) instead of the whole ``series``;
- ``decision`` and ``delivery``: each decision attempt / relay outcome of this process as it
  happens (:class:`~keylane.observability.DecisionEntry` / ``DeliveryEntry`` as JSON). Without
  ``?key=`` at most ``stream_entries`` of them per interval are sent, and ``dropped`` tells how
  many were left out; with ``?key=<brand>:<subscriber>`` only that subscriber's, all of them;
- ``dropped``: ``{"count": n}`` entries left out since the previous one.

``?stats=0`` leaves out ``stats`` (a subscriber timeline only). The token may come as
``?token=`` because browsers' ``EventSource`` cannot send headers. The stream ends when the
client goes away or the server stops.

Imports the API's helpers, the views and the observability; starlette.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from keylane.observability.decisions import Entry, Feed
from keylane.web.api.http import Refused, authorize
from keylane.web.api.state import ApiState
from keylane.web.api.views import overview

__all__ = ["get_stream", "sse"]

_ENCODER = msgspec.json.Encoder()


def sse(event: str, data: Any) -> bytes:
    """One Server-Sent Event."""
    return b"event: " + event.encode() + b"\ndata: " + _ENCODER.encode(data) + b"\n\n"


def _stats(state: ApiState) -> dict[str, Any]:
    data = overview(state.observability)
    series = data.pop("series", [])
    data["point"] = series[-1] if series else None
    return data


async def _events(
    request: Request, state: ApiState, feed: Feed, stats: bool
) -> AsyncIterator[bytes]:
    config = state.config
    log = state.observability.decisions
    try:
        yield sse(
            "hello",
            {"time": time.time(), "interval": config.stream_interval, "key": feed.key},
        )
        if stats:
            yield sse("stats", _stats(state))
        limit = None if feed.key is not None else config.stream_entries
        while not state.stopping.is_set():
            deadline = time.monotonic() + config.stream_interval
            sent = dropped = 0
            while (left := deadline - time.monotonic()) > 0 and not state.stopping.is_set():
                entry = await _next(feed, left, state.stopping)
                if entry is None:
                    continue
                if limit is not None and sent >= limit:
                    dropped += 1
                    continue
                sent += 1
                item = entry.to_dict()
                yield sse(item["kind"], item)
            dropped += feed.lost
            feed.lost = 0
            if dropped:
                yield sse("dropped", {"count": dropped})
            if await request.is_disconnected():
                return
            yield sse("stats", _stats(state)) if stats else b": keep-alive\n\n"
    finally:
        log.unsubscribe(feed)


async def _next(feed: Feed, timeout: float, stopping: asyncio.Event) -> Entry | None:
    getter = asyncio.ensure_future(feed.queue.get())
    stopper = asyncio.ensure_future(stopping.wait())
    try:
        done, _ = await asyncio.wait(
            {getter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        stopper.cancel()
    if getter in done:
        return getter.result()
    getter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await getter
    return None


async def get_stream(request: Request) -> Response:
    """``GET /v1/stream``."""
    state: ApiState = request.app.state.api
    try:
        authorize(request, state)
    except Refused as refused:
        return refused.response
    key = request.query_params.get("key") or None
    stats = request.query_params.get("stats", "1") != "0"
    feed = state.observability.decisions.subscribe(key)
    return StreamingResponse(
        _events(request, state, feed, stats),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
