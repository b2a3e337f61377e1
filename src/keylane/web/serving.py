"""Serving one ASGI app with uvicorn inside this event loop: the one way keylane's servers listen.

The embedded gateway, the service's API and the worker's health endpoints each own a
:class:`LocalServer`: it binds the socket itself (so port 0 picks a free port and the bound one is
known before serving, and ``IPPROTO_TCP`` makes asyncio set ``TCP_NODELAY`` on accepted
connections — without it every answer waits ~40 ms for a delayed ACK), runs uvicorn without its
signal handlers (the embedding program owns the signals) and without touching the program's
logging, and stops idempotently.

Imports uvicorn (the ``web`` extra); only web/ may.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

from keylane.errors import InvalidArgumentError

__all__ = ["LocalServer"]


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its signal handlers: the embedding program owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class LocalServer:
    """Serves one app on ``host:port`` in the running loop.

    Args:
        name: what it is, for messages ("gateway", "the API", "health endpoints").
        host: the address to bind (127.0.0.1 by default everywhere in keylane).
        port: the port; 0 picks a free one (see :attr:`port` once started).
        keep_alive: seconds an idle client connection is kept open.
        grace: seconds requests in flight get at stop.
    """

    def __init__(
        self, name: str, host: str, port: int, *, keep_alive: float = 5.0, grace: float = 2.0
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._keep_alive = keep_alive
        self._grace = grace
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (the bound port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether it is serving."""
        return self._task is not None

    def bind(self) -> socket.socket:
        """Bind the listening socket (and learn the port, when it was 0).

        Raises:
            InvalidArgumentError: the address cannot be bound (taken, not local).
        """
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise InvalidArgumentError(
                f"{self.name} cannot listen on {self.host}:{self.port}: {exc.strerror}"
            ) from None
        sock.set_inheritable(True)
        self.port = sock.getsockname()[1]
        return sock

    async def start(self, app: Any, sock: socket.socket | None = None) -> str:
        """Serve ``app`` (on ``sock`` if already bound) and return the URL once it listens.

        Raises:
            InvalidArgumentError: the address cannot be bound, or uvicorn did not start.
        """
        if self._task is not None:
            return self.url
        sock = sock if sock is not None else self.bind()
        config = uvicorn.Config(
            app,
            log_config=None,  # leave the embedding program's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=int(self._keep_alive),
            timeout_graceful_shutdown=int(self._grace),
        )
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"keylane {self.name}")
        while not server.started:
            if self._task.done():
                await self.stop()
                raise InvalidArgumentError(f"{self.name} on {self.url} did not start")
            await asyncio.sleep(0.005)
        return self.url

    async def stop(self) -> None:
        """Stop listening and wait for requests in flight (up to the grace). Idempotent."""
        task, server = self._task, self._server
        self._task = self._server = None
        if server is not None:
            server.should_exit = True
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, SystemExit):
                await task
