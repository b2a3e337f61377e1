"""The state values check their fields; positions order like broker message ids."""

from __future__ import annotations

import pytest

from keylane.brokers.base import MessageId
from keylane.errors import InvalidArgumentError
from keylane.state import Commit, Position, SendIntent, Timer
from keylane.state.base import classify
from keylane.state.errors import FencedError
from keylane.state.values import CommitResult, Outcome


def test_position_of_a_message_id_orders_like_it() -> None:
    ids = [
        MessageId(0, 5, 1, -1),
        MessageId(0, 5, 1, 0),
        MessageId(0, 5, 2, -1),
        MessageId(0, 6, 0),
    ]
    positions = [Position.of(m) for m in ids]
    assert positions == sorted(positions)
    assert positions[0] == Position(0, 5, 1, -1)
    assert sorted(ids) == ids  # the broker's own order agrees


def test_position_of_something_else() -> None:
    with pytest.raises(InvalidArgumentError, match="ledger_id"):
        Position.of(object())  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"position\.entry"):
        Position(0, 1, -2)
    with pytest.raises(InvalidArgumentError, match=r"position\.ledger"):
        Position(0, True, 1)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"key": ""}, "commit.key must not be empty"),
        ({"key": "a\x00b"}, "NUL"),
        ({"key": "\ud800"}, "UTF-8"),
        ({"key": "k" * 2000}, "at most"),
        ({"expected_version": 2**63}, "expected_version"),
        ({"expected_version": 1.0}, "expected_version must be an int"),
        ({"state": bytearray(b"x")}, "commit.state must be bytes"),
        ({"event_id": ""}, "commit.event_id"),
        ({"position": (0, 1, 2, 3)}, "commit.position must be a Position"),
        ({"sends": "abc"}, "commit.sends must be a sequence"),
        ({"sends": [object()]}, "SendIntent values"),
        ({"cancel_sends": [""]}, r"commit\.cancel_sends\[\]"),
        ({"cancel_all_sends": 1}, "cancel_all_sends must be a bool"),
        ({"arm": [Timer("other", "t", 1.0)]}, "not the commit's key"),
        ({"arm": [Timer("k", "t", 1.0), Timer("k", "t", 2.0)]}, "appears twice"),
        ({"arm": [Timer("k", "t", 1.0)], "disarm": ["t"]}, "both armed and disarmed"),
        ({"sends": [SendIntent("s", "k", "sms", b"", 0.0)], "cancel_sends": ["s"]}, "inserts"),
    ],
)
def test_bad_commits(fields: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"key": "k", "expected_version": 0, "state": b"", **fields}
    with pytest.raises(InvalidArgumentError, match=message):
        Commit(**arguments)  # type: ignore[arg-type]


def test_commit_sequences_become_tuples() -> None:
    commit = Commit("k", 0, b"", cancel_sends=["a"], disarm=iter(["t"]))  # type: ignore[arg-type]
    assert commit.cancel_sends == ("a",)
    assert commit.disarm == ("t",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"not_before": float("nan")}, "not_before must be finite"),
        ({"not_before": True}, "not_before"),
        ({"expires_at": -1.0}, "must not be before"),
        ({"channel": ""}, "send.channel"),
        ({"payload": "text"}, "send.payload must be bytes"),
    ],
)
def test_bad_sends(fields: dict[str, object], message: str) -> None:
    arguments = {"idempotency_key": "s", "key": "k", "channel": "sms", "payload": b"",
                 "not_before": 0.0, **fields}  # fmt: skip
    with pytest.raises(InvalidArgumentError, match=message):
        SendIntent(**arguments)  # type: ignore[arg-type]


def test_timer_times_are_floats() -> None:
    assert Timer("k", "t", 5).due_at == 5.0
    assert isinstance(Timer("k", "t", 5).due_at, float)
    with pytest.raises(InvalidArgumentError, match=r"timer\.due_at"):
        Timer("k", "t", float("inf"))


def test_classify_checks_duplicates_before_the_version() -> None:
    c = Commit("k", 1, b"", event_id="e", position=Position(0, 1, 5))
    assert classify(c, 3, None, True) == CommitResult(Outcome.DUPLICATE, 3)
    assert classify(c, 3, Position(0, 1, 5), False) == CommitResult(Outcome.DUPLICATE, 3)
    fenced = classify(c, 3, Position(0, 1, 4), False)
    assert isinstance(fenced, FencedError)
    assert (fenced.expected, fenced.stored) == (1, 3)
    assert classify(c, 1, Position(0, 1, 4), False) is None
    assert classify(Commit("k", 0, b""), 0, Position(9, 9, 9), False) is None
