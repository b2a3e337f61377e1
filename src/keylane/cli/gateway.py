"""``keylane gateway``: the embedded SMS/email gateway as its own process.

Thin: the options, then :func:`keylane.web.gateway.main` (uvicorn on 127.0.0.1 by default,
serving the webhook contract at ``<url>/v1/messages``). It prints ``keylane gateway listening on
<url> ...`` once it listens, runs until SIGTERM or SIGINT, stops cleanly and prints the counts.
Exit codes: 0 stopped by a signal; 2 bad options, a port in use or an unusable log file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["gateway_command"]

#: ``keylane.web.gateway.server.DEFAULT_PORT`` (not imported here: that imports uvicorn).
DEFAULT_PORT = 8787


def gateway_command(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port; 0 picks a free one (printed).")
    ] = DEFAULT_PORT,
    log: Annotated[
        Path | None,
        typer.Option(help="Durable JSON Lines log of every delivery (rebuilt at each start)."),
    ] = None,
) -> None:
    """Run the embedded SMS/email gateway until SIGTERM or SIGINT."""
    from keylane.web.gateway import main  # the web extra; a MissingExtraError names it

    argv = ["--host", host, "--port", str(port)]
    if log is not None:
        argv += ["--log", str(log)]
    raise typer.Exit(main(argv))
