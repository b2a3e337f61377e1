"""ApiServer: the service API on uvicorn inside the caller's event loop (127.0.0.1 by default).

uvicorn runs without its signal handlers (the embedding process owns its signals) and without a
log configuration of its own: its records go to the process's handlers, where
:func:`keylane.observability.redact.install` masks tokens and phone numbers. The access log is
the app's own (logger ``keylane.web.api.access``, one line per request), because uvicorn's
``uvicorn.access`` logger is process-wide and every uvicorn server in the process (the embedded
gateway's too) reconfigures it. ``stop()`` ends the open SSE streams first, so shutdown does
not wait for them.

Imports uvicorn and the API's app.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator, Sequence
from types import TracebackType
from typing import Self

import uvicorn
from starlette.routing import BaseRoute

from keylane.errors import InvalidArgumentError
from keylane.web.api.app import create_app
from keylane.web.api.state import ApiState

__all__ = ["ApiRoute", "ApiServer"]

#: A route added to the API's app (the dashboard's page), for callers outside ``web/``.
ApiRoute = BaseRoute

#: Seconds a stopping server waits for requests in flight.
_GRACE = 2


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ApiServer:
    """Serve ``state`` over HTTP (``async with`` or ``start``/``stop``).

    Args:
        state: what the app serves (its ``config`` gives host and port).
        routes: more routes for the same app (the dashboard).
        access_log: log one line per request (``uvicorn.access``, masked by the filter).
    """

    def __init__(
        self, state: ApiState, *, routes: Sequence[BaseRoute] = (), access_log: bool = False
    ) -> None:
        self.state = state
        self._routes = tuple(routes)
        self._access_log = access_log
        self._host = state.config.host
        self._port = state.config.port
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """``http://<host>:<port>`` (the bound port once started)."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._port}"

    @property
    def port(self) -> int:
        """The bound port (the configured one before start)."""
        return self._port

    async def start(self) -> str:
        """Listen and return the base URL.

        Raises:
            InvalidArgumentError: the address cannot be bound (taken, not local).
        """
        if self._task is not None:
            return self.url
        sock = self._bind()
        config = uvicorn.Config(
            create_app(self.state, self._routes, access_log=self._access_log),
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=_GRACE,
        )
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name="keylane-api")
        while not server.started:
            if self._task.done():
                await self._cleanup()
                raise InvalidArgumentError(f"the API on {self._host}:{self._port} did not start")
            await asyncio.sleep(0.005)
        return self.url

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError as exc:
            sock.close()
            raise InvalidArgumentError(
                f"the API cannot listen on {self._host}:{self._port}: {exc.strerror}"
            ) from None
        sock.set_inheritable(True)
        self._port = sock.getsockname()[1]
        return sock

    async def stop(self) -> None:
        """End the streams, stop listening, wait for requests in flight (idempotent)."""
        self.state.stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        await self._cleanup()

    async def _cleanup(self) -> None:
        task, self._task, self._server = self._task, None, None
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
