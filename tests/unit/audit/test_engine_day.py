"""End to end without I/O: the engine decides a generated day, a model relay dispatches with
``recheck``, and the audit of the deliveries is clean; without the re-check it is not.

The model relay sends each intent at its ``not_before`` (or when a deferral says), after the
domain's dispatch-time re-check, stamping ``sent_at`` with that same instant: the ideal relay.
Timers fire at their due time. This checks that the generator, the engine and the audit agree
on a realistic day; the real runtime (broker, store, relay, gateway) is ``keylane run``'s job.
"""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pytest

from keylane.audit import ConsentChange, audit
from keylane.journeys import (
    Event,
    EventType,
    ReasonCode,
    SendIntent,
    SubscriberState,
    VerdictAction,
    decide,
    load_default_journeys,
    recheck,
)
from keylane.providers import Delivery
from keylane.runtime.codec import delivery_of
from keylane.workload import BlackFridaySpec, generate, subscriber_phones

JOURNEYS = load_default_journeys()


@dataclass
class Day:
    deliveries: list[Delivery] = field(default_factory=list)
    changes: list[ConsentChange] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


def _play(events: list[Event], *, use_recheck: bool) -> Day:
    day = Day()
    states: dict[str, SubscriberState] = {}
    order = itertools.count()
    queue: list[tuple[datetime, int, Any]] = [(e.occurred_at, next(order), e) for e in events]
    heapq.heapify(queue)
    timers = itertools.count()
    while queue:
        now, _, item = heapq.heappop(queue)
        if isinstance(item, Event):
            decision = decide(states.get(item.key), item, now, JOURNEYS)
            states[item.key] = decision.new_state
            for reason in decision.reasons:
                day.counts[reason.code.value] += 1
                if reason.code in (ReasonCode.OPTED_OUT, ReasonCode.OPTED_IN):
                    opted_in = reason.code is ReasonCode.OPTED_IN
                    day.changes.append(ConsentChange(item.key, now, opted_in))
            for timer in decision.timers_to_arm:
                fired = Event(
                    event_id=f"timer-{next(timers)}",
                    brand_id=timer.brand_id,
                    subscriber_id=timer.subscriber_id,
                    type=EventType.TIMER_FIRED,
                    occurred_at=timer.due_at,
                    properties={"timer_id": timer.timer_id},
                )
                heapq.heappush(queue, (max(timer.due_at, now), next(order), fired))
            for send in decision.sends:
                heapq.heappush(queue, (max(send.not_before, now), next(order), send))
            continue
        intent: SendIntent = item
        if not use_recheck:
            day.deliveries.append(delivery_of(intent, now))
            continue
        verdict = recheck(
            states[f"{intent.brand_id}:{intent.subscriber_id}"], intent, now, JOURNEYS
        )
        if verdict.action is VerdictAction.SEND:
            day.deliveries.append(delivery_of(intent, now))
        elif verdict.action is VerdictAction.DEFER:
            assert verdict.until is not None
            heapq.heappush(queue, (max(verdict.until, now), next(order), intent))
        else:
            day.counts[f"dispatch_{verdict.reason}"] += 1
    return day


@pytest.fixture(scope="module")
def events() -> list[Event]:
    return generate(BlackFridaySpec(subscribers=3_000, bot_views=500, stop_races=30, seed=21))


def test_the_engines_day_passes_the_audit(events: list[Event]) -> None:
    # Given a generated day decided by the engine and dispatched after the re-check
    day = _play(events, use_recheck=True)
    # Then the day exercised what the audit checks
    channels = Counter(d.channel for d in day.deliveries)
    assert channels["sms"] > 0
    assert channels["email"] > 0
    assert day.counts["deferred_quiet_hours"] > 0
    assert day.counts["opted_out"] > 0
    assert day.counts["opted_in"] > 0
    assert day.counts["dispatch_skipped_suppressed"] > 0  # a STOP beat a pending send
    # And the audit of what went out is clean
    report = audit(day.deliveries, JOURNEYS, day.changes, phones=subscriber_phones(events))
    assert report.clean, report.to_json()
    assert report.deliveries == len(day.deliveries)


def test_without_the_dispatch_recheck_the_audit_finds_sends_after_stop(events: list[Event]) -> None:
    # Given the same day, but every send goes out at its time whatever happened since
    day = _play(events, use_recheck=False)
    # Then the audit sees the sends that STOP should have stopped
    report = audit(day.deliveries, JOURNEYS, day.changes, phones=subscriber_phones(events))
    assert report.counts["after_opt_out"] > 0
