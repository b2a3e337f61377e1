"""The issue's bad input: malformed events are dead-lettered with a reason; later events flow.

Between ann's subscription and her HELP, messages that are not valid events are published under
her key. Each is dead-lettered at once (no retry) to ``<topic>-<subscription>-DLQ`` with the
error naming the field in its ``KEYLANE_DLQ_ERROR`` property, and is recorded as ``poison``; her
HELP is still decided and answered, once.
"""

from __future__ import annotations

import json

from keylane.brokers.base import InitialPosition, SubscriptionType
from keylane.check import OK
from keylane.lanes.deadletter import DEAD_LETTER_ATTEMPTS, DEAD_LETTER_ERROR, ORIGIN_MESSAGE_ID
from keylane.runtime import WorkerConfig
from tests.integration.runtime.pipeline import BRAND, Pipeline, eventually


def _event(**overrides: object) -> bytes:
    body: dict[str, object] = {
        "event_id": "bad",
        "brand_id": BRAND,
        "subscriber_id": "ann",
        "type": "sms_received",
        "occurred_at": "2026-11-27T17:00:00Z",
        "properties": {"text": "HELP"},
    }
    body.update(overrides)
    return json.dumps({k: v for k, v in body.items() if v is not None}).encode()


#: (the bytes, what the dead letter's reason must mention)
POISON = [
    (b"\x00not json at all", "not valid JSON"),
    (_event(event_id=None), "event_id: is required"),
    (_event(type="teleported"), "type"),
    (_event(occurred_at="2026-11-27T17:00:00"), "occurred_at: must be timezone-aware"),
    (_event(type="subscribed", properties={"phone": "12"}), "properties.phone"),
    (_event(subscriber_id="bob"), "published under key"),
]


async def test_malformed_events_are_dead_lettered_and_later_events_flow(pipeline: Pipeline) -> None:
    # Given a worker and ann subscribed
    worker = await pipeline.start_worker("w")
    await pipeline.publish(pipeline.subscribed("ann", "ann-sub"))
    await pipeline.wait_committed("ann-sub")
    # When malformed messages arrive under her key, then her HELP
    origins = {}
    for data, reason in POISON:
        origins[str(await pipeline.publish_raw(data, pipeline.key("ann")))] = (data, reason)
    await pipeline.publish(pipeline.sms("ann", "HELP", "ann-help"))
    await pipeline.settle()
    # Then the HELP was decided after them and answered once
    assert pipeline.outcomes("ann-help") == [OK]
    assert pipeline.steps_to("ann") == ["welcome_sms", "help_reply"]
    await eventually(
        lambda: worker.stats().lanes.total.dead_lettered == len(POISON), "the dead letters"
    )
    # And each malformed message is in the dead-letter topic, with its reason, after 1 attempt
    topic = worker.group.dead_letter_topic
    assert topic == f"{WorkerConfig().topic}-{WorkerConfig().subscription}-DLQ"
    consumer = await pipeline.broker.subscribe(
        topic,
        "inspect",
        subscription_type=SubscriptionType.EXCLUSIVE,
        initial_position=InitialPosition.EARLIEST,
    )
    try:
        letters = [await consumer.receive(timeout=5.0) for _ in POISON]
    finally:
        await consumer.close()
    for letter in letters:
        data, reason = origins[letter.properties[ORIGIN_MESSAGE_ID]]
        assert letter.data == data
        assert letter.properties[DEAD_LETTER_ERROR].startswith("PoisonEventError: ")
        assert reason in letter.properties[DEAD_LETTER_ERROR], letter.properties
        assert letter.properties[DEAD_LETTER_ATTEMPTS] == "1"
    assert {letter.properties[ORIGIN_MESSAGE_ID] for letter in letters} == set(origins)
    # And the history records them as poison, never as decisions
    outcomes = worker.stats().decisions
    assert outcomes.get("poison") == len(POISON)
    await pipeline.assert_effectively_once()
