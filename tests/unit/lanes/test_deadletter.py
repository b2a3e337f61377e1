"""producer_dead_letter_sink: what the dead-letter copy carries."""

from __future__ import annotations

import pytest

from keylane.errors import InvalidArgumentError
from keylane.lanes import (
    DEAD_LETTER_ATTEMPTS,
    DEAD_LETTER_ERROR,
    ORIGIN_MESSAGE_ID,
    REAL_TOPIC,
    producer_dead_letter_sink,
)
from tests.unit.lanes.fakes import TOPIC, FakeProducer, make_message


async def test_the_copy_keeps_data_keys_and_properties_and_adds_origin_and_error() -> None:
    producer = FakeProducer()
    sink = producer_dead_letter_sink(producer)
    message = make_message("user-1", 7, ordering_key="ok-1", properties={"trace": "t-9"})
    await sink(message, ValueError("bad payload"), 3)
    assert len(producer.sent) == 1
    data, sent = producer.sent[0]
    assert data == b"user-1:7"
    assert sent["key"] == "user-1"
    assert sent["ordering_key"] == "ok-1"
    assert sent["properties"] == {
        "seq": "7",
        "trace": "t-9",
        ORIGIN_MESSAGE_ID: "(1,7,-1,-1)",
        REAL_TOPIC: TOPIC,
        DEAD_LETTER_ERROR: "ValueError: bad payload",
        DEAD_LETTER_ATTEMPTS: "3",
    }


async def test_an_existing_origin_is_kept_as_pulsar_does() -> None:
    producer = FakeProducer()
    sink = producer_dead_letter_sink(producer)
    message = make_message(
        "k", 1, properties={ORIGIN_MESSAGE_ID: "(5,5,-1,-1)", REAL_TOPIC: "persistent://a/b/c"}
    )
    await sink(message, TimeoutError(), 1)
    props = producer.sent[0][1]["properties"]
    assert isinstance(props, dict)
    assert props[ORIGIN_MESSAGE_ID] == "(5,5,-1,-1)"
    assert props[REAL_TOPIC] == "persistent://a/b/c"
    assert props[DEAD_LETTER_ERROR] == "TimeoutError"


async def test_long_error_texts_are_cut() -> None:
    producer = FakeProducer()
    await producer_dead_letter_sink(producer)(make_message("k", 1), RuntimeError("x" * 10_000), 2)
    text = producer.sent[0][1]["properties"][DEAD_LETTER_ERROR]  # type: ignore[index]
    assert len(text) == 2000
    assert text.startswith("RuntimeError: xxx")
    assert text.endswith("...")


async def test_a_failed_send_propagates_so_lanes_keep_the_message() -> None:
    producer = FakeProducer()
    producer.fail = ConnectionError("DLQ unreachable")
    sink = producer_dead_letter_sink(producer)
    with pytest.raises(ConnectionError, match="DLQ unreachable"):
        await sink(make_message("k", 1), RuntimeError("x"), 2)


def test_the_producer_must_be_a_keylane_producer() -> None:
    with pytest.raises(InvalidArgumentError, match="producer must be a keylane Producer, not str"):
        producer_dead_letter_sink("dlq-topic")  # type: ignore[arg-type]
