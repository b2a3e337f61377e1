"""The embedded SMS/email gateway: a real HTTP server implementing the webhook contract.

* :class:`GatewayServer` and :func:`main` (``server``): the uvicorn server, in-process or as
  ``python -m keylane.web.gateway``; they need the ``web`` extra (starlette, uvicorn).
* :class:`Ledger`, :class:`FaultPlan` and :class:`GatewayStats`: the framework-free core
  (``ledger``, ``faults``, ``journal``), importable without the extra;
* :class:`LedgerProvider` (``direct``): a Provider that submits to a ledger in-process, with
  no HTTP in between (benchmarks, the simulator).

The server names are imported on first use, so the core imports without the web framework.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keylane.web.gateway.direct import LedgerProvider
from keylane.web.gateway.faults import FaultKind, FaultPlan
from keylane.web.gateway.ledger import DeliveryRecord, GatewayStats, Ledger

if TYPE_CHECKING:
    from keylane.web.gateway.server import GatewayServer, main

__all__ = [
    "DeliveryRecord",
    "FaultKind",
    "FaultPlan",
    "GatewayServer",
    "GatewayStats",
    "Ledger",
    "LedgerProvider",
    "main",
]


def __getattr__(name: str) -> Any:
    if name in ("GatewayServer", "main"):
        try:
            from keylane.web.gateway import server
        except ImportError as exc:
            if exc.name not in ("starlette", "uvicorn") and not str(exc.name).startswith(
                ("starlette.", "uvicorn.")
            ):
                raise
            from keylane.errors import MissingExtraError

            raise MissingExtraError("The embedded gateway", "web", str(exc.name)) from exc
        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
