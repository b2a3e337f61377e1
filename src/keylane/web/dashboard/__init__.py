"""The live dashboard: one page (plain HTML, CSS and JavaScript, no build step) served by the
service API's app, updated over its Server-Sent Events.

- ``GET /`` redirects to ``/dashboard``; ``GET /dashboard`` is the page; ``GET
  /dashboard/static/<name>`` its script and style sheet. They are package data
  (``keylane/web/dashboard/static/``), read with :mod:`importlib.resources`.
- The page holds no data: it is open. It reads the API token from its URL
  (``/dashboard#token=...``, a fragment the browser never sends) and calls the token routes
  with it: ``GET /v1/overview``, ``GET /v1/stream?token=`` (``EventSource`` cannot send
  headers), ``GET /v1/timeline``, ``GET /v1/search``.
- Answers carry a strict Content-Security-Policy (only this origin, no inline script),
  ``Referrer-Policy: no-referrer`` and ``X-Content-Type-Options: nosniff``.

:func:`dashboard_routes` gives the routes (:func:`keylane.web.api.create_app` mounts them);
:func:`dashboard_url` the URL an operator opens. Imports starlette; nothing of keylane's.
"""

from __future__ import annotations

import functools
from importlib import resources

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

__all__ = ["ASSETS", "dashboard_routes", "dashboard_url"]

#: The page's files and their media types (nothing else is served).
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
        "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


@functools.cache
def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("static", name).read_bytes()


def dashboard_url(base_url: str, token: str) -> str:
    """The page's URL with the token in its fragment (never sent to the server)."""
    return f"{base_url.rstrip('/')}/dashboard#token={token}"


async def _root(request: Request) -> Response:
    return RedirectResponse("/dashboard", status_code=307)


async def _page(request: Request) -> Response:
    return Response(_asset("index.html"), headers=_HEADERS, media_type=ASSETS["index.html"])


async def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in ASSETS or name == "index.html":
        return Response(
            b'{"error":"not_found","field":"path","reason":"no such dashboard file"}',
            404,
            media_type="application/json",
        )
    return Response(_asset(name), headers=_HEADERS, media_type=ASSETS[name])


def dashboard_routes() -> list[BaseRoute]:
    """``/``, ``/dashboard`` and ``/dashboard/static/{name}`` (GET)."""
    return [
        Route("/", _root, methods=["GET"]),
        Route("/dashboard", _page, methods=["GET"]),
        Route("/dashboard/static/{name}", _static, methods=["GET"]),
    ]
