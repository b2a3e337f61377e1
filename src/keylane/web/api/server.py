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

from collections.abc import Sequence

from starlette.routing import BaseRoute

from keylane.resource import Startable
from keylane.web.api.app import create_app
from keylane.web.api.state import ApiState
from keylane.web.serving import LocalServer

__all__ = ["ApiRoute", "ApiServer"]

#: A route added to the API's app (the dashboard's page), for callers outside ``web/``.
ApiRoute = BaseRoute

#: Seconds a stopping server waits for requests in flight.
_GRACE = 2


class ApiServer(Startable):
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
        self._server = LocalServer("the API", state.config.host, state.config.port, grace=_GRACE)

    @property
    def url(self) -> str:
        """``http://<host>:<port>`` (the bound port once started)."""
        return self._server.url

    @property
    def port(self) -> int:
        """The bound port (the configured one before start)."""
        return self._server.port

    async def start(self) -> str:
        """Listen and return the base URL.

        Raises:
            InvalidArgumentError: the address cannot be bound (taken, not local).
        """
        app = create_app(self.state, self._routes, access_log=self._access_log)
        return await self._server.start(app)

    async def stop(self) -> None:
        """End the streams, stop listening, wait for requests in flight (idempotent)."""
        self.state.stopping.set()
        await self._server.stop()
