"""The fast constructors build objects equal to the regular dataclass constructors."""

from __future__ import annotations

from types import MappingProxyType

from keylane.brokers.base import Message, MessageId
from keylane.brokers.memory.objects import FAST, new_message, new_message_id


def test_fast_paths_are_active() -> None:
    assert FAST


def test_message_id_equal_and_ordered() -> None:
    fast = new_message_id(2, 7, 11, 3)
    assert fast == MessageId(2, 7, 11, 3)
    assert hash(fast) == hash(MessageId(2, 7, 11, 3))
    assert new_message_id(2, 7, 11, -1) < fast
    assert str(fast) == "(7,11,2,3)"


def test_message_equal() -> None:
    mid = MessageId(-1, 1, 2)
    args = (b"x", "k", "o", MappingProxyType({"a": "b"}), mid, "t", 1.5, 2, 3.0, None)
    fast = new_message(*args)
    assert fast == Message(*args)
    assert fast.sticky_key == "o"
    assert fast.redelivery_count == 2
