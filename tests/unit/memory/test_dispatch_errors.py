"""Issue 7 item 2: an exception inside the embedded broker's dispatch never stops it silently.

Each test injects a failure (a sticky key whose hash raises, a dispatch pass or a client enqueue
that raises once, a batch that cannot be stored) and checks that the error is logged on the
``keylane.brokers.memory`` logger, that only the affected operation fails, and that every other
message is still delivered, exactly once.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from keylane.brokers.base import BatchingType, SubscriptionType
from keylane.brokers.memory import MemoryBroker, MemoryConsumer, storage
from keylane.brokers.memory.key_shared import KeySharedDispatcher
from keylane.brokers.memory.storage import TopicLog
from keylane.errors import BrokerError
from tests.unit.memory.conftest import drain, subscribe, texts

pytestmark = pytest.mark.looptime

LOGGER = "keylane.brokers.memory"


def _errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER and r.levelno >= logging.ERROR]


def _dispatcher(broker: MemoryBroker, topic: str) -> Any:
    log = broker._logs[f"persistent://public/default/{topic}"]
    return log.subscriptions["sub"].dispatcher


async def test_an_unhashable_key_is_left_out_and_other_keys_keep_flowing(
    broker: MemoryBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a hash function that raises for one key (as UTF-8 encoding a lone surrogate did)
    real = storage.slot_consistent  # type: ignore[attr-defined]
    poisoned = "poisoned-key-item-2"

    def slot_consistent(key: str) -> int:
        if key == poisoned:
            raise UnicodeEncodeError("utf-8", key, 0, 1, "injected")
        return real(key)

    monkeypatch.setattr(storage, "slot_consistent", slot_consistent)
    consumer = await subscribe(broker, "ks", SubscriptionType.KEY_SHARED, "c1")
    producer = await broker.create_producer("ks", batching=None)
    # When the poisoned key is sent first, then 100 messages of other keys
    await producer.send(b"bad", key=poisoned)
    for i in range(100):
        await producer.send(f"m{i}".encode(), key=f"k{i}")
    # Then every other message arrives, exactly once
    got = texts(await drain(consumer))
    assert sorted(got) == sorted(f"m{i}" for i in range(100))
    # And the failure was logged loudly, naming the entry and the key
    errors = _errors(caplog)
    assert len(errors) == 1
    assert "cannot be hashed" in errors[0].getMessage()
    assert poisoned in errors[0].getMessage()
    assert errors[0].exc_info is not None
    # And the dispatcher is not left waiting for a pass that never comes
    dispatcher = _dispatcher(broker, "ks")
    assert dispatcher.quarantined == 1
    assert not dispatcher.scheduled
    # And later messages still flow
    await producer.send(b"late", key="k-late")
    assert texts(await drain(consumer)) == ["late"]


async def test_a_failing_dispatch_pass_is_logged_retried_and_loses_nothing(
    broker: MemoryBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a Key_Shared dispatch that raises once, in the middle of a normal read
    real = KeySharedDispatcher.dispatch
    failures: list[int] = []

    def dispatch(
        self: KeySharedDispatcher, entries: list[Any], normal: bool, limit: int = 0
    ) -> int:
        if normal and not failures:
            failures.append(len(entries))
            raise RuntimeError("injected dispatch failure")
        return real(self, entries, normal, limit)

    monkeypatch.setattr(KeySharedDispatcher, "dispatch", dispatch)
    consumers = [await subscribe(broker, "ks", SubscriptionType.KEY_SHARED, n) for n in "ab"]
    producer = await broker.create_producer("ks", batching=None)
    # When 200 messages of 20 keys are sent
    for i in range(200):
        await producer.send(f"m{i}".encode(), key=f"k{i % 20}")
    # Then all 200 arrive exactly once, after the failed pass was retried
    got = texts(await drain(consumers[0], quiet=2.0)) + texts(await drain(consumers[1], quiet=2.0))
    assert failures, "the injected failure never ran"
    assert sorted(got) == sorted(f"m{i}" for i in range(200))
    errors = _errors(caplog)
    assert len(errors) == 1
    assert "dispatch pass" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    dispatcher = _dispatcher(broker, "ks")
    assert dispatcher.errors == 1
    assert not dispatcher.scheduled


async def test_a_failing_client_enqueue_on_exclusive_is_retried(
    broker: MemoryBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given an Exclusive consumer whose receive queue refuses one hand-over
    real = MemoryConsumer._enqueue
    failures: list[int] = []

    def enqueue(self: MemoryConsumer, messages: list[Any]) -> None:
        if not failures:
            failures.append(len(messages))
            raise RuntimeError("injected enqueue failure")
        real(self, messages)

    monkeypatch.setattr(MemoryConsumer, "_enqueue", enqueue)
    consumer = await subscribe(broker, "ex", SubscriptionType.EXCLUSIVE, "c1")
    producer = await broker.create_producer("ex", batching=None)
    for i in range(50):
        await producer.send(f"m{i}".encode())
    # Then every message arrives once, in order
    assert texts(await drain(consumer, quiet=2.0)) == [f"m{i}" for i in range(50)]
    assert failures
    assert len(_errors(caplog)) == 1
    assert _dispatcher(broker, "ex").errors == 1


async def test_a_batch_that_cannot_be_stored_fails_its_sends_only(
    broker: MemoryBroker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Given storage that refuses the first batch
    real = TopicLog.append_batch
    failures: list[int] = []

    def append_batch(self: TopicLog, messages: Any, fallback_key: str = "") -> Any:
        if not failures:
            failures.append(len(messages))
            raise MemoryError("injected store failure")
        return real(self, messages, fallback_key)

    monkeypatch.setattr(TopicLog, "append_batch", append_batch)
    consumer = await subscribe(broker, "pb", SubscriptionType.SHARED, "c1")
    producer = await broker.create_producer(
        "pb", batching=BatchingType.DEFAULT, producer_name="p-item-2"
    )
    # When the first send's batch cannot be stored
    with pytest.raises(BrokerError, match="could not store its batch"):
        await producer.send(b"lost")
    # Then later sends are stored and delivered
    await producer.send(b"kept")
    assert texts(await drain(consumer)) == ["kept"]
    assert [r.getMessage() for r in _errors(caplog)] == [
        "memory broker: producer 'p-item-2' could not store a batch of 1 "
        "message(s) on persistent://public/default/pb"
    ]
