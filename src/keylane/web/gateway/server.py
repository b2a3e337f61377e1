"""GatewayServer: the embedded gateway as a real HTTP server on 127.0.0.1 (uvicorn), and main().

Usable in-process from asyncio (``async with GatewayServer() as gateway: ... gateway.url``) and
as a program (``python -m keylane.web.gateway``; :func:`main` is what a CLI command calls).
uvicorn runs without its signal handlers, so an embedding program keeps its own.

``stop()`` then ``start()`` brings the listener down and up again on the same port: the "down
for a while" that refuses connections. With a log file, every start rebuilds the ledger from it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from keylane.errors import InvalidArgumentError, KeylaneError
from keylane.resource import Startable
from keylane.web.gateway.app import DEFAULT_MAX_BODY_BYTES, GatewayState, create_app
from keylane.web.gateway.faults import FaultPlan, FaultPolicy
from keylane.web.gateway.journal import Journal
from keylane.web.gateway.ledger import GatewayStats, Ledger
from keylane.web.serving import LocalServer

__all__ = ["DEFAULT_PORT", "GatewayServer", "main"]

#: The port of ``python -m keylane.web.gateway`` unless told otherwise.
DEFAULT_PORT = 8787
#: Seconds a stopping server waits for requests in flight before cancelling them.
_GRACE = 2


class GatewayServer(Startable):
    """The embedded SMS/email gateway, serving the webhook contract at ``{url}/v1/messages``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: str | os.PathLike[str] | None = None,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        """Args:
            host: the interface to listen on.
            port: the port; 0 picks a free one (then kept across stop/start).
            log_path: the durable JSON Lines log; None keeps everything in memory.
            max_body_bytes: the largest accepted request body (413 above it).

        Raises:
            InvalidArgumentError: a bad port or body limit.
        """
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise InvalidArgumentError(f"gateway port must be 0..65535, got {port!r}")
        if isinstance(max_body_bytes, bool) or not isinstance(max_body_bytes, int):
            raise InvalidArgumentError(f"max_body_bytes must be an integer, got {max_body_bytes!r}")
        if max_body_bytes < 1024:
            raise InvalidArgumentError(
                f"max_body_bytes must be at least 1024, got {max_body_bytes}"
            )
        # Idle connections are kept longer than clients keep them (httpx: 5 s).
        self._server = LocalServer("gateway", host, port, keep_alive=75, grace=_GRACE)
        self._journal = Journal(log_path) if log_path is not None else None
        self._state = GatewayState(Ledger(self._journal), FaultPolicy(), max_body_bytes)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> str:
        """Listen (rebuilding the ledger from the log, if any) and return the base URL.

        Raises:
            InvalidArgumentError: the port is taken, or the log is in use or unreadable.
        """
        if self._server.running:
            return self.url
        if self._journal is not None:
            records = self._journal.open()
            ledger = self._state.ledger
            ledger.clear()  # the file is the truth: rebuild from it at every start
            try:
                ledger.load(records)
            except InvalidArgumentError:
                self._journal.close()
                raise
        self._state.stopping = asyncio.Event()
        try:
            return await self._server.start(create_app(self._state))
        except InvalidArgumentError:
            if self._journal is not None:
                self._journal.close()
            raise

    async def stop(self) -> None:
        """Stop listening (requests held by a timeout fault end now) and close the log.

        The ledger stays readable; :meth:`start` serves again on the same port. Idempotent.
        """
        if not self._server.running:
            return
        self._state.stopping.set()
        await self._server.stop()
        if self._journal is not None:
            self._journal.close()

    # -- what it serves ----------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, ``http://127.0.0.1:<port>`` (the bound port once started)."""
        return self._server.url

    @property
    def messages_url(self) -> str:
        """The webhook endpoint: ``{url}/v1/messages``."""
        return f"{self.url}/v1/messages"

    @property
    def port(self) -> int:
        """The port (0 until first started when asked for a free one)."""
        return self._server.port

    @property
    def running(self) -> bool:
        """Whether the listener is up."""
        return self._server.running

    @property
    def ledger(self) -> Ledger:
        """The deliveries, the phone views and the stats (read them in-process).

        Always the same object; with a log it is rebuilt from the file at each start.
        """
        return self._state.ledger

    def stats(self) -> GatewayStats:
        """The same counts as ``GET /v1/stats``."""
        return self._state.ledger.stats()

    def set_faults(self, plan: FaultPlan) -> None:
        """Put a failure plan in force now (as ``POST /v1/faults``)."""
        self._state.faults.set(plan)

    def clear_faults(self) -> None:
        """Stop injecting failures (as ``DELETE /v1/faults``)."""
        self._state.faults.clear()

    @property
    def faults(self) -> FaultPlan:
        """The failure plan in force."""
        return self._state.faults.plan


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keylane.web.gateway",
        description="The embedded SMS/email gateway: the webhook contract over HTTP.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port, 0 for any (default {DEFAULT_PORT})"
    )
    parser.add_argument("--log", type=Path, default=None, help="durable JSON Lines log file")
    return parser


async def _serve(server: GatewayServer) -> None:
    url = await server.start()
    print(f"keylane gateway listening on {url} (POST {server.messages_url})", flush=True)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    try:
        await done.wait()
    finally:
        await server.stop()
    stats = server.stats()
    print(
        f"stopped: {stats.deliveries} deliveries, {stats.repeated_attempts} repeated attempts, "
        f"{stats.duplicate_deliveries} duplicate deliveries",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gateway until SIGINT or SIGTERM. Returns the exit code (2 on bad options)."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else 2
    try:
        server = GatewayServer(args.host, args.port, args.log)
        asyncio.run(_serve(server))
    except KeylaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
