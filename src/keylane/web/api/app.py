"""The service API's ASGI app: ingest, the admin views, the stream, health and metrics.

| route | auth | what |
|---|---|---|
| ``POST /v1/events`` | token | ingest one event or a batch (:mod:`.ingest`) |
| ``GET /v1/subscribers/{brand}/{id}`` | token | a subscriber's state, timers, decisions, ledger |
| ``GET /v1/keys/{key}`` | token | who holds a key, what is queued, its slot and range owner |
| ``GET /v1/overview``, ``/v1/consumers``, ``/v1/lanes``, ``/v1/decisions`` | token | dashboard |
| ``GET /v1/timeline?key=``, ``/v1/search?q=`` | token | a subscriber's timeline, key search |
| ``GET /v1/stream`` | token (or ``?token=``) | Server-Sent Events (:mod:`.stream`) |
| ``GET /healthz`` | open | 200 while the process serves |
| ``GET /readyz`` | open | 200 when the worker runs and the broker takes events, else 503 |
| ``GET /metrics`` | open | Prometheus text format |
| ``GET /``, ``/dashboard`` | open | the live dashboard's page (:mod:`keylane.web.dashboard`) |

:func:`create_app` mounts the dashboard unless told not to, and takes more routes so they share
the app and its state.

Imports starlette, prometheus-client and the API's modules.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keylane.errors import BrokerError
from keylane.web.api.http import error
from keylane.web.api.ingest import post_events
from keylane.web.api.state import ApiState
from keylane.web.api.stream import get_stream
from keylane.web.api.timeline import get_search, get_timeline
from keylane.web.api.views import (
    get_consumers,
    get_decisions,
    get_key,
    get_lanes,
    get_overview,
    get_subscriber,
)
from keylane.web.dashboard import dashboard_routes

__all__ = ["AccessLog", "create_app", "readiness"]

access_logger = logging.getLogger("keylane.web.api.access")


class AccessLog:
    """ASGI middleware: one ``METHOD path?query status seconds`` line per HTTP request.

    The line goes through the process's handlers, whose redacting filter masks tokens in the
    query and phone numbers in the path.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            query = scope.get("query_string", b"").decode("latin-1")
            target = scope.get("path", "") + (f"?{query}" if query else "")
            access_logger.info(
                "%s %s %d %.3fs", scope.get("method", ""), target, status,
                time.perf_counter() - began,
            )  # fmt: skip


async def healthz(request: Request) -> Response:
    """``GET /healthz``: the process serves."""
    return JSONResponse({"status": "alive"})


async def readiness(state: ApiState) -> str | None:
    """None when ready, else why not (one line)."""
    if state.stopping.is_set():
        return "stopping"
    attached = state.observability.attached
    if attached is None:
        return "no worker runs in this process"
    lanes = attached.worker.stats().lanes.total
    if lanes.state != "running":
        return f"the worker is {lanes.state}"
    publisher = state.publisher
    if publisher is None:
        return "no broker to publish to"
    if not publisher.connected:
        try:
            async with asyncio.timeout(1.0):
                await publisher.connect()
        except (BrokerError, TimeoutError, OSError) as exc:
            return f"broker unavailable: {str(exc) or type(exc).__name__}"
    return None


async def readyz(request: Request) -> Response:
    """``GET /readyz``."""
    reason = await readiness(request.app.state.api)
    if reason is None:
        return JSONResponse({"ready": True})
    return JSONResponse({"ready": False, "reason": reason}, status_code=503)


async def metrics(request: Request) -> Response:
    """``GET /metrics``: every metric of this process, read now."""
    state: ApiState = request.app.state.api
    body = generate_latest(state.observability.metrics.registry)
    return Response(body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 answers in the API's error shape."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error(404, "not_found", "path", f"no route {request.url.path[:200]}")
    if status == 405:
        return error(405, "method_not_allowed", "method", f"{request.method} is not allowed here")
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    return error(status, "http_error", "", str(detail)[:200])


def create_app(
    state: ApiState,
    routes: Sequence[BaseRoute] = (),
    *,
    access_log: bool = False,
    dashboard: bool = True,
) -> Starlette:
    """The API's ASGI app over ``state``, with ``routes`` added, and the dashboard's page."""
    app = Starlette(
        middleware=[Middleware(AccessLog)] if access_log else [],
        exception_handlers={HTTPException: _http_error},
        routes=[
            Route("/v1/events", post_events, methods=["POST"]),
            Route("/v1/subscribers/{brand}/{subscriber:path}", get_subscriber, methods=["GET"]),
            Route("/v1/keys/{key:path}", get_key, methods=["GET"]),
            Route("/v1/overview", get_overview, methods=["GET"]),
            Route("/v1/consumers", get_consumers, methods=["GET"]),
            Route("/v1/lanes", get_lanes, methods=["GET"]),
            Route("/v1/decisions", get_decisions, methods=["GET"]),
            Route("/v1/timeline", get_timeline, methods=["GET"]),
            Route("/v1/search", get_search, methods=["GET"]),
            Route("/v1/stream", get_stream, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *(dashboard_routes() if dashboard else ()),
            *routes,
        ],
    )
    app.state.api = state
    return app
