"""Runs moving through their steps: triggers, goals, wait-for arrivals, timers and advancement.

A run only ever rests at a ``wait`` or ``wait_for`` step, with exactly one armed timer. Every
other step runs at once (the loader rejects loops among them), so one event moves a run through
a bounded number of steps.

Imports the domain only.
"""

from __future__ import annotations

from typing import Any

from keylane.journeys.decision import ReasonCode
from keylane.journeys.model import (
    EXIT,
    Branch,
    Journey,
    Send,
    Trigger,
    Wait,
    WaitFor,
    all_match,
)
from keylane.journeys.policies import quiet_hours
from keylane.journeys.policies.zones import candidate_zones
from keylane.journeys.sending import plan_send
from keylane.journeys.state import Run
from keylane.journeys.work import Work, from_ms

__all__ = ["drop_invalid_runs", "end_goals", "fire_timer", "start_runs", "wait_arrivals"]

#: Trigger properties kept per run are scalars; strings are cut to this length.
MAX_KEPT_STRING = 256


def advance(w: Work, journey: Journey, run: Run, target: str, intended_ms: int) -> None:
    """Move ``run`` to ``target`` and through every immediate step until it waits or ends.

    ``intended_ms`` is when the plan meant this to happen (a timer's due time), which waits
    count from and which a send's staleness is measured against.
    """
    for _ in range(len(journey.steps) + 1):
        if target == EXIT:
            w.end_run(run, ReasonCode.EXITED_COMPLETED, cancel=False)
            return
        step = journey.steps[target]
        run = Run(run.journey, run.run_id, step.id, run.seq + 1, run.started_ms, run.trigger)
        if isinstance(step, Trigger):
            target = step.next
        elif isinstance(step, Branch):
            matched = all_match(step.condition, w.scopes(run))
            target = step.then if matched else step.otherwise
        elif isinstance(step, Send):
            plan_send(w, journey, run, step, intended_ms)
            target = step.next
        elif isinstance(step, Wait):
            w.put_run(run)
            w.arm_timer(run, _wait_due(w, step, intended_ms))
            return
        elif isinstance(step, WaitFor):
            w.put_run(run)
            w.arm_timer(run, intended_ms + step.timeout_ms)
            return
        else:
            w.put_run(run)
            w.end_run(run, ReasonCode.EXITED_COMPLETED, cancel=False)
            return
    raise AssertionError(f"journey {journey.name} loops without a wait")  # the loader prevents it


def _wait_due(w: Work, step: Wait, intended_ms: int) -> int:
    if step.duration_ms is not None:
        return intended_ms + step.duration_ms
    assert step.until_minute is not None
    zones = candidate_zones(w.timezone, w.phone_zones, w.brand.timezones)
    due = quiet_hours.local_time_after(zones, step.until_minute, from_ms(intended_ms))
    return int(due.timestamp() * 1000)


def drop_invalid_runs(w: Work) -> None:
    """End runs whose journey or step is no longer in the journeys file."""
    for run in list(w.runs):
        journey = w.journeys.journeys.get(run.journey)
        if journey is None or run.step not in journey.steps:
            what = "journey" if journey is None else f"step {run.step!r}"
            w.end_run(
                run,
                ReasonCode.EXITED_INVALID,
                f"{what} no longer in the journeys file",
                cancel=True,
            )


def fire_timer(w: Work, timer_id: str) -> None:
    """Handle ``timer_fired``: fire and disarm if still armed, due and the run is at its step."""
    timer = next((t for t in w.timers if t.timer_id == timer_id), None)
    if timer is None:
        w.reason(ReasonCode.TIMER_NOT_ARMED, detail=timer_id)
        return
    if w.now_ms < timer.due_ms:
        w.reason(
            ReasonCode.TIMER_NOT_DUE,
            timer.journey,
            timer.step,
            f"due at {from_ms(timer.due_ms).isoformat()}",
        )
        return
    w.drop_timer(timer_id)
    run = w.run_of(timer.journey)
    journey = w.journeys.journeys.get(timer.journey)
    if run is None or journey is None or run.run_id != timer.run_id or run.step != timer.step:
        w.reason(ReasonCode.TIMER_NOT_ARMED, timer.journey, timer.step, "run moved on")
        return
    step = journey.steps[timer.step]
    w.reason(ReasonCode.TIMER_FIRED, journey.name, step.id)
    if isinstance(step, Wait):
        advance(w, journey, run, step.next, timer.due_ms)
    elif isinstance(step, WaitFor):
        advance(w, journey, run, step.on_timeout, timer.due_ms)


def end_goals(w: Work) -> None:
    """End the active runs whose journey has this event as a goal (cancelling their sends)."""
    for journey in w.journeys.by_goal.get(w.event.type, ()):
        run = w.run_of(journey.name)
        if run is not None:
            w.end_run(run, ReasonCode.EXITED_GOAL, w.event.type.value, cancel=True)


def wait_arrivals(w: Work) -> None:
    """Move runs waiting for this event on to their ``on_arrived`` step."""
    event = w.event
    props = {"props": event.properties}
    for run in list(w.runs):
        journey = w.journeys.journeys[run.journey]
        step = journey.steps[run.step]
        if not isinstance(step, WaitFor) or step.event is not event.type:
            continue
        if not all_match(step.where, props):
            continue
        if not all(
            k in run.trigger and event.properties.get(k) == run.trigger[k] for k in step.match
        ):
            continue
        for timer in [t for t in w.timers if t.run_id == run.run_id and t.journey == run.journey]:
            w.drop_timer(timer.timer_id)
        w.reason(ReasonCode.WAIT_ARRIVED, journey.name, step.id, event.type.value)
        advance(w, journey, run, step.on_arrived, w.now_ms)


def _kept(journey: Journey, properties: dict[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for key in journey.trigger_keys:
        value = properties.get(key)
        if isinstance(value, str):
            kept[key] = value[:MAX_KEPT_STRING]
        elif isinstance(value, int | float | bool):
            kept[key] = value
    return kept


def start_runs(w: Work) -> None:
    """Start (or restart) the runs of the journeys this event triggers, per re-entry rules."""
    event = w.event
    for journey in w.journeys.by_trigger.get(event.type, ()):
        trigger = journey.trigger
        if trigger.where and not all_match(trigger.where, {"props": event.properties}):
            continue
        if w.opted_out:
            w.reason(
                ReasonCode.SKIPPED_SUPPRESSED,
                journey.name,
                trigger.id,
                "opted out: run not started",
            )
            continue
        active = w.run_of(journey.name)
        if active is not None and not journey.restart:
            w.reason(ReasonCode.REENTRY_BLOCKED, journey.name, trigger.id, "a run is active")
            continue
        last = w.last_started.get(journey.name)
        if last is not None and w.now_ms - last < journey.min_interval_ms:
            w.reason(
                ReasonCode.REENTRY_BLOCKED, journey.name, trigger.id, "within reentry.min_interval"
            )
            continue
        if active is not None:
            w.end_run(active, ReasonCode.RESTARTED, event.type.value, cancel=True)
        w.last_started = {
            **{k: v for k, v in w.last_started.items() if k in w.journeys.journeys},
            journey.name: w.now_ms,
        }
        run = Run(journey.name, w.run_id, trigger.id, 0, w.now_ms, _kept(journey, event.properties))
        w.reason(ReasonCode.ENTERED, journey.name, trigger.id)
        advance(w, journey, run, trigger.id, w.now_ms)
