"""Issue 7 item 10: duplicates caused by broker redelivery are told apart from the others.

On Pulsar's default entry-level batch acks, a nack, an ack timeout, a close or a redeliver-all
brings back batch-mates that were already handled and acked. The checker counts a duplicate
whose every later success ran on a redelivery (``redelivery_count`` > 0) as a *redelivered
duplicate*: shown, but not an anomaly. ``redelivery_count`` is an optional field of the JSON
line, so older histories read as before.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
from rich.console import Console

from keylane.brokers.base import BatchingType, InitialPosition, Message, SubscriptionType
from keylane.brokers.memory import MemoryBroker
from keylane.check import (
    Attempt,
    HistoryFormatError,
    HistoryRecorder,
    check,
    recorded,
)
from keylane.check.records import encode_record, parse_record
from keylane.cli.render.check import render_report
from tests.unit.check.factories import attempt, history


def redelivered(a: Attempt, count: int | None) -> Attempt:
    return replace(a, redelivery_count=count)


class TestCounting:
    def test_a_later_success_on_a_redelivery_is_a_redelivered_duplicate(self) -> None:
        h = history(
            redelivered(attempt("k", 1, 0, 1), 0),
            redelivered(attempt("k", 1, 2, 3, consumer="c2"), 1),
        )
        report = check(h)
        assert report.duplicate_count == 0
        assert report.redelivered_duplicate_count == 1
        assert report.clean
        assert [(d.key, d.seq, d.completions) for d in report.redelivered_duplicates] == [
            ("k", 1, 2)
        ]
        assert report.counts()["redelivered_duplicates"] == 1
        assert report.to_json()["examples"]["redelivered_duplicates"] == [  # type: ignore[index]
            {"key": "k", "seq": 1, "message_id": "k/1", "completions": 2, "consumers": ["c1", "c2"]}
        ]

    @pytest.mark.parametrize("count", [0, None])
    def test_a_later_success_not_on_a_redelivery_stays_a_duplicate(self, count: int | None) -> None:
        h = history(
            redelivered(attempt("k", 1, 0, 1), 0),
            redelivered(attempt("k", 1, 2, 3), count),
        )
        report = check(h)
        assert report.duplicate_count == 1
        assert report.redelivered_duplicate_count == 0
        assert not report.clean

    def test_one_unexplained_later_success_makes_it_a_duplicate(self) -> None:
        h = history(
            redelivered(attempt("k", 1, 0, 1), 0),
            redelivered(attempt("k", 1, 2, 3), 1),
            redelivered(attempt("k", 1, 4, 5), None),
        )
        assert (check(h).duplicate_count, check(h).redelivered_duplicate_count) == (1, 0)

    def test_a_first_success_on_a_redelivery_needs_the_later_ones_redelivered_too(self) -> None:
        first_redelivered = history(
            redelivered(attempt("k", 1, 0, 1), 1), redelivered(attempt("k", 1, 2, 3), 2)
        )
        assert check(first_redelivered).redelivered_duplicate_count == 1
        later_not = history(
            redelivered(attempt("k", 1, 0, 1), 1), redelivered(attempt("k", 1, 2, 3), 0)
        )
        assert check(later_not).duplicate_count == 1

    def test_the_report_shows_them_apart(self) -> None:
        h = history(
            redelivered(attempt("k", 1, 0, 1), 0),
            redelivered(attempt("k", 1, 2, 3, consumer="c2"), 1),
        )
        console = Console(width=160, record=True)
        console.print(render_report(check(h)))
        text = console.export_text()
        assert "CLEAN" in text
        assert "redelivered duplicates" in text


class TestRecords:
    def test_redelivery_count_round_trips_and_is_optional(self) -> None:
        a = redelivered(attempt("k", 1, 0.5, 1.5), 3)
        line = encode_record(a)
        assert line.endswith(',"redelivery_count":3}')
        assert parse_record(line) == a
        # Without it the line is exactly the old format, and old lines read as None
        plain = attempt("k", 1, 0.5, 1.5)
        assert "redelivery_count" not in encode_record(plain)
        assert parse_record(encode_record(plain)) == plain
        assert plain.redelivery_count is None
        explicit_null = encode_record(plain)[:-1] + ',"redelivery_count":null}'
        assert parse_record(explicit_null) == plain

    @pytest.mark.parametrize("value", ["-1", "1.5", '"2"', "true"])
    def test_a_bad_redelivery_count_is_a_format_error(self, value: str) -> None:
        line = encode_record(attempt("k", 1, 0, 1))[:-1] + f',"redelivery_count":{value}}}'
        with pytest.raises(HistoryFormatError, match="redelivery_count"):
            parse_record(line)


class _Context:
    def __init__(self, key: str, consumer: str) -> None:
        self.key = key
        self.attempt = 1
        self.consumer_name = consumer


@pytest.mark.looptime
async def test_replayed_batch_mates_on_the_memory_broker_are_redelivered_duplicates() -> None:
    # Given a KEY_BASED batch of three events of one key, and a recorded handler
    loop = asyncio.get_running_loop()
    recorder = HistoryRecorder(clock=loop.time)
    fail_once = {"2"}

    async def decide(message: Message, context: _Context) -> None:
        seq = message.properties["seq"]
        if seq in fail_once:
            fail_once.discard(seq)
            raise RuntimeError("transient")

    handler = recorded(decide, recorder)
    async with MemoryBroker() as broker:
        consumer = await broker.subscribe(
            "t",
            "sub",
            subscription_type=SubscriptionType.SHARED,
            negative_ack_redelivery_delay=0.1,
            initial_position=InitialPosition.EARLIEST,
        )
        producer = await broker.create_producer("t", batching=BatchingType.KEY_BASED)
        sends = [producer.send(b"e", key="user-1", properties={"seq": str(s)}) for s in (0, 1, 2)]
        for mid in await asyncio.gather(*sends):
            recorder.published("user-1", int(mid.batch_index), str(mid))
        # When the third event fails once and is nacked (entry-level acks: the default)
        for _ in range(6):
            message = await consumer.receive(2)
            try:
                await handler(message, _Context("user-1", "c1"))
            except RuntimeError:
                await consumer.negative_acknowledge(message)
            else:
                await consumer.acknowledge(message)
    # Then the two acked batch-mates were handled again, on the redelivery
    report = check(recorder.history())
    assert [a.redelivery_count for a in recorder.history().attempts] == [0, 0, 0, 1, 1, 1]
    assert report.redelivered_duplicate_count == 2
    assert report.duplicate_count == 0
    assert report.clean, report.counts()
