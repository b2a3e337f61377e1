"""A consumer closed under its running lanes (issue 7, item 1): memory broker and real Pulsar.

Two Key_Shared consumers, each with :class:`~keylane.lanes.Lanes` (``max_in_flight=4``, a 50 ms
handler), 40 keys x 10 events. After 0.3 s the first consumer is closed while its lanes are busy,
without ``lanes.stop()`` first. The broker hands its keys to the other consumer at once, so the
first lanes must start no handler after the close: every buffered message is dropped (and
recorded as dropped), and the other consumer completes it.

Judged by the history checker: no exclusivity violation between attempts that *started* after the
close, nothing lost. Handlers already running at the close may overlap with the new owner: that is
the zombie window the runtime's fenced commits close (``docs/lanes.md``).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest

from keylane.brokers import connect
from keylane.brokers.base import Broker, InitialPosition, Message, SubscriptionType
from keylane.check import DROPPED, OK, HistoryRecorder, check, recorded, recorded_drops
from keylane.check.records import History
from keylane.lanes import ExhaustedPolicy, HandlerContext, LaneConfig, Lanes

KEYS = 40
PER_KEY = 10


@pytest.fixture(params=["memory", pytest.param("pulsar", marks=pytest.mark.pulsar)])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    if request.param == "memory":
        async with connect("memory://") as memory:
            yield memory
        return
    url = request.getfixturevalue("pulsar_url")
    admin = request.getfixturevalue("pulsar_admin_url")
    async with connect(url, admin_url=admin) as pulsar:
        yield pulsar


async def handler(message: Message, context: HandlerContext) -> None:
    await asyncio.sleep(0.05)


def _completed(history: History) -> set[tuple[str, int]]:
    return {(a.key, a.seq) for a in history.attempts if a.outcome == OK}


async def test_no_handler_starts_after_the_consumer_closes(broker: Broker) -> None:
    # Given two Key_Shared consumers with lanes, every attempt and drop recorded
    topic = f"persistent://public/default/closed-under-lanes-{secrets.token_hex(4)}"
    recorder = HistoryRecorder()
    config = LaneConfig(max_in_flight=4, on_exhausted=ExhaustedPolicy.PARK)
    consumers = [
        await broker.subscribe(
            topic,
            "decisions",
            subscription_type=SubscriptionType.KEY_SHARED,
            consumer_name=f"c{i}",
            initial_position=InitialPosition.EARLIEST,
        )
        for i in range(2)
    ]
    lanes = [
        Lanes(c, recorded(handler, recorder), config, on_dropped=recorded_drops(recorder))
        for c in consumers
    ]
    async with await broker.create_producer(topic) as producer:
        for seq in range(PER_KEY):
            for k in range(KEYS):
                mid = await producer.send(b"x", key=f"user-{k}", properties={"seq": str(seq)})
                recorder.published(f"user-{k}", seq, str(mid))
        await producer.flush()
    for lane in lanes:
        await lane.start()
    # When the first consumer is closed under its busy lanes, without stopping them first
    await asyncio.sleep(0.3)
    assert lanes[0].stats().in_flight > 0
    closed_at = time.monotonic()
    await consumers[0].close()
    # Then everything published completes (at the survivor, or before the close)
    published = {(p.key, p.seq) for p in recorder.history().published}
    async with asyncio.timeout(120):
        while not published <= _completed(recorder.history()):  # noqa: ASYNC110 - polling
            await asyncio.sleep(0.1)
    first = lanes[0].stats()
    for lane in lanes:
        await lane.stop()
    await consumers[1].close()
    history = recorder.history()
    report = check(history)
    # no two attempts that started after the close overlap
    late = History(attempts=[a for a in history.attempts if a.start >= closed_at])
    assert check(late).exclusivity_count == 0
    # the closed consumer started nothing after its close
    assert not [
        a
        for a in history.attempts
        if a.consumer == "c0" and a.outcome != DROPPED and a.start > closed_at + 0.01
    ]
    # it noticed, dropped what it had buffered, and said so in its stats and in the history
    assert first.consumer_closed
    assert first.dropped > 0
    dropped = [a for a in history.attempts if a.outcome == DROPPED]
    assert len(dropped) == first.dropped
    assert {a.consumer for a in dropped} == {"c0"}
    # and nothing was lost
    assert report.lost_count == 0
