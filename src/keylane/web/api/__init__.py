"""The service's HTTP API: ingest, admin views, the SSE stream, health and Prometheus metrics.

- :class:`ApiServer` (``server``): uvicorn in the caller's event loop, 127.0.0.1 by default.
- :func:`create_app` (``app``): the Starlette app over an :class:`ApiState`.
- :class:`ApiConfig`, :class:`ApiState` (``state``), :class:`IngestPublisher` (``publisher``).

The routes, the security rules and the metrics are documented in ``docs/service.md``. Needs the
``web`` extra.
"""

from __future__ import annotations

from keylane.web.api.app import create_app
from keylane.web.api.publisher import IngestPublisher, Published
from keylane.web.api.server import ApiRoute, ApiServer
from keylane.web.api.state import ApiConfig, ApiState, new_token

__all__ = [
    "ApiConfig",
    "ApiRoute",
    "ApiServer",
    "ApiState",
    "IngestPublisher",
    "Published",
    "create_app",
    "new_token",
]
