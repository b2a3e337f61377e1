"""The worker's test-only fault hooks (``keylane worker --fault-hooks``): marked events misbehave.

**Test only.** With ``--fault-hooks`` (``KEYLANE_FAULT_HOOKS=1``; off by default) the worker
wraps its handler with :func:`fault_hooks`, which looks for a :data:`MARK` object in an event's
``properties`` and, for the events that carry one, does what it says before (or after) the real
decision:

- ``{"hang": S}``: on the message's first attempt, sleep ``S`` seconds before deciding, so the
  attempt outlives lanes' ``handler_timeout`` and is cancelled (a *slow subscriber*); later
  attempts decide at once.
- ``{"slow": S}`` (and ``"at": "before"``, the default): sleep ``S`` seconds, then decide; with
  ``"at": "after"``: decide (commit), then sleep ``S`` seconds before lanes ack; with ``"only":
  NAME``, only on the consumers of worker ``NAME`` (``NAME-0``, ...). The chaos harness marks
  events of a worker's keys this way right before it SIGSTOPs the worker, so that the worker's
  handlers are mid-decision when it resumes as a *zombie*.

Events without the mark cost one substring test. A mark that is not an object of known fields
with seconds from 0 to :data:`MAX_SECONDS` is ignored (the event is decided as usual). The mark is
an ordinary property of a shopping event, so the engine decides a marked event like any other.

Imports the lanes' handler contract and the standard library only.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass

from keylane.brokers.base import Message
from keylane.lanes import Handler, HandlerContext

__all__ = ["MARK", "MAX_SECONDS", "Directive", "directive_of", "fault_hooks", "mark"]

#: The event property the hooks look for.
MARK = "chaos"
#: The longest sleep a mark may ask for.
MAX_SECONDS = 600.0
_NEEDLE = f'"{MARK}"'.encode()


@dataclass(frozen=True, slots=True)
class Directive:
    """What a mark asks for: ``hang`` on the first attempt, or ``slow`` before/after deciding."""

    hang: float = 0.0
    slow: float = 0.0
    after: bool = False
    only: str | None = None


def mark(
    *, hang: float = 0.0, slow: float = 0.0, after: bool = False, only: str | None = None
) -> dict[str, object]:
    """The property value that asks for ``hang`` or ``slow`` (for :data:`MARK`)."""
    value: dict[str, object] = {}
    if hang:
        value["hang"] = hang
    if slow:
        value["slow"] = slow
        value["at"] = "after" if after else "before"
    if only is not None:
        value["only"] = only
    return value


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_SECONDS:
        return None
    return float(value)


def directive_of(data: bytes) -> Directive | None:
    """The mark in an event's JSON, or None (no mark, not JSON, or a mark not understood)."""
    if _NEEDLE not in data:
        return None
    try:
        event = json.loads(data)
    except ValueError:
        return None
    properties = event.get("properties") if isinstance(event, Mapping) else None
    value = properties.get(MARK) if isinstance(properties, Mapping) else None
    if not isinstance(value, Mapping) or not set(value) <= {"hang", "slow", "at", "only"}:
        return None
    hang = _seconds(value.get("hang", 0))
    slow = _seconds(value.get("slow", 0))
    at = value.get("at", "before")
    only = value.get("only")
    if hang is None or slow is None or at not in ("before", "after"):
        return None
    if only is not None and not isinstance(only, str):
        return None
    return Directive(hang=hang, slow=slow, after=at == "after", only=only)


def fault_hooks(handler: Handler, _config: object = None) -> Handler:
    """``handler`` wrapped with the hooks (a ``Worker(wrap_handler=...)`` function)."""

    async def hooked(message: Message, context: HandlerContext) -> object:
        directive = directive_of(message.data)
        if directive is None or (
            directive.only is not None
            and not context.consumer_name.startswith(f"{directive.only}-")
        ):
            return await handler(message, context)
        if directive.hang and context.attempt == 1:
            await asyncio.sleep(directive.hang)  # lanes' handler_timeout cancels it first
        if directive.slow and not directive.after:
            await asyncio.sleep(directive.slow)
        result = await handler(message, context)
        if directive.slow and directive.after:
            await asyncio.sleep(directive.slow)
        return result

    return hooked
