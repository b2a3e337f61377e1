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

import asyncio
import contextlib
import socket
from collections.abc import Callable, Generator
from types import TracebackType
from typing import Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keylane.errors import InvalidArgumentError

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


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class HealthServer:
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
        self._port = port
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (the requested one until started)."""
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{HOST}:{self._port}"

    async def start(self) -> str:
        """Listen and return the base URL.

        Raises:
            InvalidArgumentError: the port is taken.
        """
        if self._task is not None:
            return self.url
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, self._port))
        except OSError as exc:
            sock.close()
            raise InvalidArgumentError(
                f"health endpoints cannot listen on {HOST}:{self._port}: {exc.strerror}"
            ) from None
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_health_app(self._probe),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="keylane-health")
        while not self._server.started:
            if self._task.done():
                await self.stop()
                raise InvalidArgumentError(f"health endpoints on {self.url} did not start")
            await asyncio.sleep(0.005)
        return self.url

    async def stop(self) -> None:
        """Stop listening. Idempotent."""
        task, server = self._task, self._server
        self._task = self._server = None
        if server is not None:
            server.should_exit = True
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, SystemExit):
                await task

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
