"""Scenario 8 of the design note: a timer's wake-up arrives twice, early or late.

Ann adds to her cart at noon: the cart journey arms a 30-minute timer (3 s of real time). Besides
the worker's own wake-up hint and sweeper, the test publishes ``timer_fired`` events by hand: one
right away (early), one twice under the same event id, and two more after the timer fired
(late). The timer must fire exactly once, at or after its due time: one cart SMS. And a timer
whose wake-up was never published is fired by the sweeper.
"""

from __future__ import annotations

from datetime import UTC, datetime

from keylane.journeys import Event, ReasonCode
from keylane.runtime import DecisionOutcome, DecisionRecord
from keylane.runtime.codec import encode_event
from keylane.runtime.timers import timer_event
from tests.integration.runtime.pipeline import BRAND, Pipeline, eventually


def _codes(record: DecisionRecord) -> set[ReasonCode]:
    return set() if record.decision is None else {r.code for r in record.decision.reasons}


async def _hint(pipeline: Pipeline, event: Event) -> None:
    # Timer events are internal (not in the history), so they are published unrecorded
    await pipeline.publish_raw(encode_event(event), event.key)


async def test_timer_wakeups_early_twice_and_late_fire_once(pipeline: Pipeline) -> None:
    # Given ann's cart timer, armed by her add-to-cart
    worker = await pipeline.start_worker("w")
    timer_decisions: list[DecisionRecord] = []
    worker.handler.add_observer(
        lambda r: (
            timer_decisions.append(r) if r.event_id and r.event_id.startswith("timer:") else None
        )
    )
    await pipeline.publish(
        pipeline.subscribed("ann"), pipeline.event("ann", "added_to_cart", "cart")
    )
    await pipeline.wait_committed("cart")
    key = pipeline.key("ann")
    [timer] = await pipeline.store.timers_for(key)
    due = datetime.fromtimestamp(timer.due_at, UTC)
    assert pipeline.clock.now() < due
    # When a wake-up arrives early, and another one twice under one event id
    early = timer_event(BRAND, "ann", timer.timer_id, due, "early")
    await _hint(pipeline, early)
    await eventually(lambda: any(r.event_id == early.event_id for r in timer_decisions), "early")
    twice = timer_event(BRAND, "ann", timer.timer_id, due, "twice")
    await _hint(pipeline, twice)
    await _hint(pipeline, twice)
    # Then the early one did not fire it
    [seen_early] = [r for r in timer_decisions if r.event_id == early.event_id]
    assert seen_early.now is not None
    assert seen_early.now < due
    assert ReasonCode.TIMER_NOT_DUE in _codes(seen_early)
    # When the timer is due, it fires (the worker's hint, its sweeper or "twice")
    await eventually(lambda: worker.stats().timers_fired >= 1, "the timer to fire")
    await eventually(lambda: "cart_sms" in pipeline.steps_to("ann"), "the cart SMS")
    # And two late wake-ups arrive after it fired
    for tag in ("late-1", "late-2"):
        await _hint(pipeline, timer_event(BRAND, "ann", timer.timer_id, due, tag))
    await eventually(
        lambda: sum(1 for r in timer_decisions if r.event_id and "late" in r.event_id) >= 2,
        "the late wake-ups",
    )
    await pipeline.settle()

    # Then it fired exactly once, at or after its due time
    fired = [
        r
        for r in timer_decisions
        if r.outcome is DecisionOutcome.COMMITTED and ReasonCode.TIMER_FIRED in _codes(r)
    ]
    assert len(fired) == 1
    assert worker.stats().timers_fired == 1
    assert fired[0].now is not None
    assert fired[0].now >= due
    # And every other arrival was harmless: not due, not armed any more, or a dedupe
    for record in timer_decisions:
        if record is fired[0]:
            continue
        assert record.outcome is DecisionOutcome.DEDUPE or _codes(record) & {
            ReasonCode.TIMER_NOT_DUE,
            ReasonCode.TIMER_NOT_ARMED,
        }, record
    late = [r for r in timer_decisions if r.event_id and "late" in r.event_id]
    assert all(ReasonCode.TIMER_NOT_ARMED in _codes(r) for r in late)
    twice_outcomes = sorted(
        r.outcome.value for r in timer_decisions if r.event_id == twice.event_id
    )
    assert twice_outcomes == ["dedupe", "ok"]  # the repeated event id is a no-op
    # And the timer is disarmed; one cart SMS went out, once
    assert timer.timer_id not in {t.timer_id for t in await pipeline.store.timers_for(key)}
    assert pipeline.steps_to("ann") == ["welcome_sms", "cart_sms"]
    await pipeline.assert_effectively_once()


async def test_a_lost_wakeup_is_swept(pipeline: Pipeline) -> None:
    # Given ann's cart timer armed by a worker that published no wake-up (it died first)
    first = await pipeline.start_worker("w1", timers=False)
    await pipeline.publish(
        pipeline.subscribed("ann"), pipeline.event("ann", "added_to_cart", "cart")
    )
    await pipeline.wait_committed("cart")
    await first.stop()
    [timer] = await pipeline.store.timers_for(pipeline.key("ann"))
    due = datetime.fromtimestamp(timer.due_at, UTC)
    # When another worker runs, with its sweeper
    second = await pipeline.start_worker("w2")
    fired: list[DecisionRecord] = []
    second.handler.add_observer(
        lambda r: (
            fired.append(r)
            if r.outcome is DecisionOutcome.COMMITTED and ReasonCode.TIMER_FIRED in _codes(r)
            else None
        )
    )
    await eventually(lambda: "cart_sms" in pipeline.steps_to("ann"), "the cart SMS")
    await pipeline.settle()
    # Then its sweeper published the overdue timer, which fired once, at least the sweeper's
    # grace after its due time
    assert second.stats().swept >= 1
    [record] = fired
    assert record.event_id is not None
    assert record.event_id.rsplit(":", 1)[1].startswith("s")  # the sweeper's publication
    grace = second.config.sweep_grace
    assert record.now is not None
    assert (record.now - due).total_seconds() >= grace
    assert pipeline.steps_to("ann") == ["welcome_sms", "cart_sms"]
    await pipeline.assert_effectively_once()
