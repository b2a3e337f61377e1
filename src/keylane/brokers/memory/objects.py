"""Fast construction of the contract's frozen value objects on the embedded broker's hot paths.

:class:`~keylane.brokers.base.Message` and :class:`~keylane.brokers.base.MessageId` are frozen,
slotted dataclasses; their generated ``__init__`` goes through ``object.__setattr__`` per field
and costs about twice as much as writing the slots through their member descriptors, which is
what :func:`new_message_id` and :func:`new_message` do (and what the hot loops inline via
:data:`MESSAGE_SETTERS`). If the classes ever stop being slotted, the regular constructors are
used instead. ``tests/unit/memory/test_objects.py`` checks both paths give equal objects.

Imports only :mod:`keylane.brokers.base`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

from keylane.brokers.base import Message, MessageId

__all__ = ["FAST", "MESSAGE_SETTERS", "new_message", "new_message_id"]


def _setters(cls: type) -> list[Callable[[Any, Any], None]] | None:
    out = []
    for f in fields(cls):
        descriptor = cls.__dict__.get(f.name)
        setter = getattr(descriptor, "__set__", None)
        if setter is None or type(descriptor).__name__ != "member_descriptor":
            return None
        out.append(setter)
    return out


_ID_SETTERS = _setters(MessageId)
_MSG_SETTERS = _setters(Message)
#: Whether the fast paths are active (both classes are slotted with the expected fields).
FAST = (
    _ID_SETTERS is not None
    and _MSG_SETTERS is not None
    and [f.name for f in fields(MessageId)] == ["partition", "ledger_id", "entry_id", "batch_index"]
    and [f.name for f in fields(Message)]
    == [
        "data",
        "key",
        "ordering_key",
        "properties",
        "message_id",
        "topic",
        "publish_time",
        "redelivery_count",
        "event_time",
        "handle",
    ]
)


#: Slot setters of Message in field order (only meaningful when :data:`FAST`).
def _not_fast(obj: Any, value: Any) -> None:  # pragma: no cover - only without slots
    raise RuntimeError("fast Message construction is unavailable; check objects.FAST first")


MESSAGE_SETTERS: tuple[Callable[[Any, Any], None], ...] = tuple(
    _MSG_SETTERS if FAST and _MSG_SETTERS else [_not_fast] * 10
)

_new = object.__new__


def new_message_id(partition: int, ledger_id: int, entry_id: int, batch_index: int) -> MessageId:
    """``MessageId(partition, ledger_id, entry_id, batch_index)``, built fast."""
    if not FAST:
        return MessageId(partition, ledger_id, entry_id, batch_index)
    assert _ID_SETTERS is not None
    sp, sl, se, sb = _ID_SETTERS
    mid: MessageId = _new(MessageId)
    sp(mid, partition)
    sl(mid, ledger_id)
    se(mid, entry_id)
    sb(mid, batch_index)
    return mid


def new_message(*args: Any) -> Message:
    """``Message(*args)`` (all ten fields, in order), built fast."""
    if not FAST:
        return Message(*args)
    message: Message = _new(Message)
    for setter, value in zip(MESSAGE_SETTERS, args, strict=True):
        setter(message, value)
    return message
