"""Message providers behind one contract (:mod:`keylane.providers.base`).

* :class:`WebhookProvider`: an HTTP POST per delivery to any gateway that implements the webhook
  contract (``docs/providers.md``), the embedded gateway included;
* :class:`MemoryProvider`: records deliveries in-process (tests, the simulator);
* :class:`ConsoleProvider`: prints them;
* :class:`ChannelRouter`: one provider per channel.

httpx (a core dependency) is imported only when :class:`WebhookProvider` is first used, so that
importing this package stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keylane.providers.base import (
    ChannelRouter,
    Delivery,
    DeliveryFieldError,
    Outcome,
    Provider,
    Receipt,
    mask_recipient,
)
from keylane.providers.console import ConsoleProvider
from keylane.providers.memory import MemoryProvider, ScriptedFailure

if TYPE_CHECKING:
    from keylane.providers.webhook import WebhookProvider

__all__ = [
    "ChannelRouter",
    "ConsoleProvider",
    "Delivery",
    "DeliveryFieldError",
    "MemoryProvider",
    "Outcome",
    "Provider",
    "Receipt",
    "ScriptedFailure",
    "WebhookProvider",
    "mask_recipient",
]


def __getattr__(name: str) -> Any:
    if name == "WebhookProvider":
        from keylane.providers.webhook import WebhookProvider

        return WebhookProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
