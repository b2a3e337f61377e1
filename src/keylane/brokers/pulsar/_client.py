"""The Pulsar client's logger, and a close of ``pulsar.asyncio.Client`` that is safe at exit.

Closing: ``pulsar.asyncio.Client.close`` passes a Python callback to the C++ ``closeAsync``, whose
``ClientImpl::handleClose`` runs the shutdown on a detached thread and calls the callback there.
When that thread ends it destroys the callback, which takes the GIL; if the interpreter has begun
to finalize by then (a script that closes the broker and exits at once), the thread is torn down
inside a destructor and the process aborts ("terminate called without an active exception"):
2 to 4 of 130 short runs crashed, whatever the logger (default, console or file; pulsar-client
3.13; upstream apache/pulsar-client-python#256). :func:`close_client` calls the client's blocking
``close`` instead, whose callback is C++ only, in a worker thread (it releases the GIL while it
waits): none of 560 runs crashed (``scripts/pulsar_exit_check.py``).

Part of the Pulsar backend; imports ``pulsar`` and no other backend.
"""

from __future__ import annotations

import asyncio
import contextlib

import _pulsar
import pulsar
from pulsar.asyncio import Client, PulsarException

__all__ = ["LOG_LEVELS", "client_logger", "close_client"]

#: keylane's log level names and the client's levels.
LOG_LEVELS = {
    "debug": pulsar.LoggerLevel.Debug,
    "info": pulsar.LoggerLevel.Info,
    "warn": pulsar.LoggerLevel.Warn,
    "error": pulsar.LoggerLevel.Error,
}


def client_logger(
    log_level: str | None, log_file: str | None
) -> pulsar.ConsoleLogger | pulsar.FileLogger | None:
    """The ``logger`` argument of the client.

    Args:
        log_level: a key of :data:`LOG_LEVELS`, or None.
        log_file: a path for the client's file logger, or None.

    Returns:
        A file logger at ``log_level`` (default "info") when ``log_file`` is given, else a
        console logger at ``log_level`` when it is given, else None (the client's default
        logger: INFO and above on standard output).
    """
    if log_file is not None:
        return pulsar.FileLogger(LOG_LEVELS[log_level or "info"], log_file)
    if log_level is not None:
        return pulsar.ConsoleLogger(LOG_LEVELS[log_level])
    return None


async def close_client(client: Client) -> None:
    """Close ``client`` and stop its threads, ignoring close errors (see the module docstring).

    Falls back to ``Client.close`` when the client has no blocking ``close`` to call.
    """
    native_close = getattr(getattr(client, "_client", None), "close", None)
    if callable(native_close):
        with contextlib.suppress(_pulsar.PulsarException):
            await asyncio.to_thread(native_close)
    else:  # pragma: no cover - another pulsar-client layout
        with contextlib.suppress(PulsarException):
            await client.close()
    # Stops the client's threads now rather than at interpreter exit.
    client.shutdown()
