"""The JourneyHandler's answers to the lanes: commit and return, retry later, or poison.

On the memory store (subclassed to hang or fail on demand), with hand-made messages: a commit
returns (lanes ack), an unreachable or silent store is ``RetryLater`` (no ack, no attempt used;
regression: a store that hangs past ``attempt_timeout`` is retried later instead of running
into lanes' handler timeout and the dead-letter topic), and a bad message is poison.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import msgspec
import pytest

from keylane.brokers.base import Message, MessageId
from keylane.clock import ManualClock
from keylane.errors import InvalidArgumentError
from keylane.journeys import (
    JourneySet,
    encode_state,
    load_default_journeys,
    new_state,
    parse_event,
)
from keylane.journeys.state import MAX_PENDING, Pending
from keylane.lanes import HandlerContext, RetryLater
from keylane.runtime import DecisionOutcome, DecisionRecord, JourneyHandler, PoisonEventError
from keylane.runtime.codec import encode_event
from keylane.state import (
    Commit,
    MemoryStateStore,
    SendIntent,
    SendStatus,
    Snapshot,
    StoreUnavailableError,
)

NOW = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)
_entries = itertools.count()


class Unreliable(MemoryStateStore):
    """The memory store, whose loads hang (``hang``) or fail as unavailable (``fail``)."""

    hang = False
    fail = False

    async def _load(self, key: str) -> Snapshot:
        if self.fail:
            raise StoreUnavailableError("down")
        if self.hang:
            await asyncio.Event().wait()
        return await super()._load(key)


@pytest.fixture(scope="module")
def journeys() -> JourneySet:
    return load_default_journeys()


@pytest.fixture
async def store() -> Unreliable:
    store = Unreliable()
    await store.open()
    return store


def _message(data: bytes, key: str = "acme:ann") -> Message:
    return Message(data, key, None, {}, MessageId(-1, 1, next(_entries)), "events", 0.0)


def _subscribed(event_id: str = "e1", subscriber: str = "ann") -> bytes:
    event = parse_event(
        {
            "event_id": event_id,
            "brand_id": "acme",
            "subscriber_id": subscriber,
            "type": "subscribed",
            "occurred_at": NOW.isoformat(),
            "properties": {"phone": "+14155551000", "consent": {"sms": True}},
        }
    )
    return encode_event(event)


def _handler(
    store: Unreliable,
    journeys: JourneySet,
    records: list[DecisionRecord],
    attempt_timeout: float | None = None,
) -> JourneyHandler:
    return JourneyHandler(
        store,
        journeys,
        ManualClock(NOW),
        observers=(records.append,),
        attempt_timeout=attempt_timeout,
    )


CONTEXT = HandlerContext("acme:ann", 1, "c1")


async def test_a_decision_commits_and_returns(store: Unreliable, journeys: JourneySet) -> None:
    records: list[DecisionRecord] = []
    await _handler(store, journeys, records)(_message(_subscribed()), CONTEXT)
    assert [r.outcome for r in records] == [DecisionOutcome.COMMITTED]
    assert (await store.load("acme:ann")).version == 1
    assert len(await store.sends_for("acme:ann")) == 1
    # The same message again is a dedupe no-op (lanes ack it)
    await _handler(store, journeys, records)(_message(_subscribed()), CONTEXT)
    assert records[-1].outcome is DecisionOutcome.DEDUPE
    assert (await store.load("acme:ann")).version == 1


async def test_an_unavailable_store_is_retried_later(
    store: Unreliable, journeys: JourneySet
) -> None:
    records: list[DecisionRecord] = []
    store.fail = True
    with pytest.raises(RetryLater, match="unavailable"):
        await _handler(store, journeys, records)(_message(_subscribed()), CONTEXT)
    assert [r.outcome for r in records] == [DecisionOutcome.UNAVAILABLE]
    store.fail = False
    assert (await store.load("acme:ann")).version == 0  # nothing was committed


async def test_a_store_that_does_not_answer_is_retried_later(
    store: Unreliable, journeys: JourneySet
) -> None:
    # Given a store that hangs, and a handler that waits for it at most 50 ms
    records: list[DecisionRecord] = []
    store.hang = True
    handler = _handler(store, journeys, records, attempt_timeout=0.05)
    # Then the attempt ends as "unavailable", retried later: not a failure, not a timeout
    async with asyncio.timeout(10):
        with pytest.raises(RetryLater, match="did not answer"):
            await handler(_message(_subscribed()), CONTEXT)
    assert [r.outcome for r in records] == [DecisionOutcome.UNAVAILABLE]
    # And once it answers, the retry commits
    store.hang = False
    await handler(_message(_subscribed()), CONTEXT)
    assert records[-1].outcome is DecisionOutcome.COMMITTED


@pytest.mark.parametrize("bad", [0, -1, float("nan"), "1"])
def test_attempt_timeout_is_checked(journeys: JourneySet, bad: object) -> None:
    with pytest.raises(InvalidArgumentError, match="attempt_timeout"):
        JourneyHandler(MemoryStateStore(), journeys, ManualClock(NOW), attempt_timeout=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("data", "key", "match"),
    [
        (b"{not json", "acme:ann", "not a valid event"),
        (_subscribed(subscriber="bob"), "acme:ann", "published under key"),
    ],
)
async def test_a_bad_message_is_poison(
    store: Unreliable, journeys: JourneySet, data: bytes, key: str, match: str
) -> None:
    records: list[DecisionRecord] = []
    with pytest.raises(PoisonEventError, match=match):
        await _handler(store, journeys, records)(_message(data, key), CONTEXT)
    assert [r.outcome for r in records] == [DecisionOutcome.POISON]


async def test_a_send_dropped_at_the_pending_bound_is_cancelled_in_the_outbox(
    store: Unreliable, journeys: JourneySet
) -> None:
    # Given a subscriber whose state lists MAX_PENDING sends, each with its outbox row,
    # all expiring before the welcome that the next event adds
    soon = NOW.timestamp() + 300
    pending = tuple(
        Pending(f"k{i:02d}", "cart_abandonment", f"r{i}", "sms", int((soon + i) * 1000))
        for i in range(MAX_PENDING)
    )
    state = msgspec.structs.replace(new_state("acme", "ann"), pending=pending)
    rows = tuple(
        SendIntent(p.idempotency_key, "acme:ann", "sms", b"x", NOW.timestamp() + 3600)
        for p in pending
    )
    await store.commit(Commit("acme:ann", 0, encode_state(state), sends=rows))
    records: list[DecisionRecord] = []
    # When the next decision commits
    await _handler(store, journeys, records)(_message(_subscribed()), CONTEXT)
    assert [r.outcome for r in records] == [DecisionOutcome.COMMITTED]
    # Then the dropped one's row is cancelled by that commit, the others still wait
    status = {r.idempotency_key: r.status for r in await store.sends_for("acme:ann")}
    assert status["k00"] is SendStatus.CANCELLED
    assert {status[f"k{i:02d}"] for i in range(1, MAX_PENDING)} == {SendStatus.PENDING}
