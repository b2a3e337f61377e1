"""Health endpoints of a keylane process: ``/healthz`` and ``/readyz`` on 127.0.0.1.

- ``GET /healthz``: 200 ``{"status": "alive"}`` while the process serves at all.
- ``GET /readyz``: 200 ``{"ready": true}`` when the probe says ready, else 503
  ``{"ready": false, "reason": "..."}`` (e.g. ``"draining"``, ``"state store unreachable: ..."``).

:class:`HealthServer` runs the tiny Starlette app on uvicorn inside the caller's event loop,
without uvicorn's signal handlers (the process owns its signals), bound to the loopback only.
The probe is a plain function returning None (ready) or the reason; it must not block.

Imports starlette and uvicorn (the ``web`` extra) and the error hierarchy only; the service's
full API lives elsewhere in ``web/``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keylane.errors import InvalidArgumentError
from keylane.resource import AsyncClosable
from keylane.web.serving import LocalServer

__all__ = ["HOST", "HealthServer", "ReadinessProbe", "create_health_app"]

#: The only interface the endpoints listen on.
HOST = "127.0.0.1"

#: ``() -> None`` when ready, else the reason (one line).
ReadinessProbe = Callable[[], str | None]


def create_health_app(probe: ReadinessProbe) -> Starlette:
    """The ASGI app serving ``/healthz`` and ``/readyz`` from ``probe``."""

    async def healthz(request: Request) -> JSONResponse:
        return JSONResponse({"status": "alive"})

    async def readyz(request: Request) -> JSONResponse:
        try:
            reason = probe()
        except Exception as exc:  # a broken probe is "not ready", never a 500
            reason = f"readiness probe failed: {type(exc).__name__}"
        if reason is None:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "reason": reason}, status_code=503)

    return Starlette(
        routes=[
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
        ]
    )


class HealthServer(AsyncClosable):
    """Serve :func:`create_health_app` on ``127.0.0.1:port`` (``async with`` starts and stops).

    Args:
        probe: the readiness probe.
        port: the port; 0 picks a free one (see :attr:`port` once started).

    Raises:
        InvalidArgumentError: a bad port.
    """

    def __init__(self, probe: ReadinessProbe, port: int = 0) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidArgumentError(f"health port must be 0..65535, got {port!r}")
        self._probe = probe
        self._server = LocalServer("health endpoints", HOST, port, grace=1.0)

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        return self._server.port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return self._server.url

    async def start(self) -> str:
        """Listen and return the base URL.

        Raises:
            InvalidArgumentError: the port is taken.
        """
        return await self._server.start(create_health_app(self._probe))

    async def stop(self) -> None:
        """Stop listening. Idempotent."""
        await self._server.stop()

    async def close(self) -> None:
        """The same as :meth:`stop`."""
        await self.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self
