"""The load generator on the embedded broker: selection, pacing modes, records, stop, bounds."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from keylane.brokers import connect
from keylane.check import read_history
from keylane.errors import InvalidArgumentError
from keylane.journeys import Event
from keylane.service.publish import (
    PublicationLog,
    PublishConfig,
    Publisher,
    publish_load,
    select_events,
)
from keylane.workload import BlackFridaySpec, generate, write_events_file

SPEC = BlackFridaySpec(subscribers=200, bot_views=0, seed=5)


@pytest.fixture(scope="module")
def day() -> list[Event]:
    return generate(SPEC)


def test_skip_and_count_select_a_slice_in_time_order(day: list[Event]) -> None:
    config = PublishConfig(broker_url="memory://", workload=SPEC, skip=10, count=25)
    assert select_events(config) == day[10:35]


def test_a_file_is_read_instead_of_the_day(tmp_path: Path, day: list[Event]) -> None:
    path = tmp_path / "events.jsonl"
    write_events_file(path, day[:7])
    assert select_events(PublishConfig(broker_url="memory://", events_path=path)) == day[:7]


def test_skipping_everything_is_an_error(day: list[Event]) -> None:
    with pytest.raises(InvalidArgumentError, match=f"skip: 99999 leaves none of the {len(day)}"):
        select_events(PublishConfig(broker_url="memory://", workload=SPEC, skip=99_999))


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"rate": 10.0, "speed": 60.0}, "give one of them"),
        ({"rate": 0.0}, "rate must be > 0"),
        ({"count": 0}, "count must be >= 1"),
        ({"window": 0}, "window must be >= 1"),
        ({"seconds": 0.0}, "seconds"),
    ],
)
def test_bad_config_names_the_field(fields: dict[str, object], says: str) -> None:
    with pytest.raises(InvalidArgumentError, match=says):
        PublishConfig(broker_url="memory://", **fields)  # type: ignore[arg-type]


async def test_every_event_is_published_once_recorded_and_readable_by_the_checker(
    tmp_path: Path, day: list[Event]
) -> None:
    # Given a slice of the day, published unpaced with a small window
    history = tmp_path / "published.jsonl"
    events = day[:300]
    async with connect("memory://") as broker:
        consumer = await broker.subscribe("events", "s")
        producer = await broker.create_producer("events")
        config = PublishConfig(broker_url="memory://", window=16, history_path=None)
        log = PublicationLog(history)
        summary = await Publisher(producer, events, config, log=log).run()
        log.close()
        received = [await consumer.receive() for _ in events]
    # Then every event went out once, in order per subscriber
    assert (summary.published, summary.selected, summary.unconfirmed) == (300, 300, 0)
    assert not summary.stopped_early
    keys = [str(m.key) for m in received]
    assert sorted(keys) == sorted(e.key for e in events)
    for key in set(keys):
        ids = [json.loads(m.data)["event_id"] for m in received if m.key == key]
        assert ids == [e.event_id for e in events if e.key == key]
    # And each publication is a checker record with its send time
    lines = [json.loads(line) for line in history.read_text().splitlines()]
    assert len(lines) == 300
    assert all(set(r) == {"published", "key", "seq", "message_id", "sent"} for r in lines)
    assert len(read_history([history]).published) == 300


async def test_publish_load_paced_by_rate_and_bounded_by_seconds(day: list[Event]) -> None:
    # A rate far below what the broker takes, and a bound that ends the run first
    config = PublishConfig(broker_url="memory://", workload=SPEC, rate=50.0, seconds=0.3)
    summary = await publish_load(config)
    assert 0 < summary.published < summary.selected == len(day)
    assert summary.stopped_early


async def test_stop_ends_the_run_after_the_sends_in_flight(day: list[Event]) -> None:
    config = PublishConfig(broker_url="memory://", workload=SPEC, rate=20.0)
    publishers: list[Publisher] = []
    run = asyncio.create_task(publish_load(config, on_start=publishers.append))
    while not publishers or publishers[0].published < 2:  # noqa: ASYNC110 - a counter
        await asyncio.sleep(0.01)
    publishers[0].stop()
    summary = await asyncio.wait_for(run, 10)
    assert summary.stopped_early
    assert 2 <= summary.published < len(day)


async def test_speed_publishes_at_the_events_own_times(day: list[Event]) -> None:
    # The first events of the day are minutes apart: at speed 1 only the first goes out in 0.2 s
    gap = (day[1].occurred_at - day[0].occurred_at).total_seconds()
    assert gap > 0.5
    config = PublishConfig(broker_url="memory://", workload=SPEC, speed=1.0, seconds=0.2)
    summary = await publish_load(config)
    assert summary.published == 1
    assert summary.first_event_time == day[0].occurred_at.isoformat()
