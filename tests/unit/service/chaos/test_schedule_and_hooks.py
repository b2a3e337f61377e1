"""The chaos schedule (profiles, --faults) and the worker's test-only fault hooks."""

from __future__ import annotations

import asyncio
import json

import pytest

from keylane.brokers.base import Message, MessageId
from keylane.errors import InvalidArgumentError
from keylane.lanes import HandlerContext
from keylane.service.chaos.hooks import MARK, Directive, directive_of, fault_hooks, mark
from keylane.service.chaos.schedule import PROFILES, FaultKind, plan


def test_full_has_every_fault_once_and_quick_the_bounded_ones() -> None:
    full = [spec.kind for spec in plan("full")]
    assert sorted(full) == sorted(FaultKind)
    quick = {spec.kind for spec in plan("quick")}
    assert {FaultKind.KILL, FaultKind.ZOMBIE, FaultKind.BROKER_RESTART} <= quick
    for specs in PROFILES.values():  # in time order
        assert [s.at for s in specs] == sorted(s.at for s in specs)


def test_faults_selects_in_the_profiles_order() -> None:
    chosen = plan("full", ["zombie", " kill9"])
    assert [s.kind for s in chosen] == [FaultKind.KILL, FaultKind.ZOMBIE]


@pytest.mark.parametrize(
    ("profile", "faults", "says"),
    [
        ("slow", None, "--profile: unknown profile 'slow'"),
        ("full", ["kill-9"], "--faults: unknown fault 'kill-9'"),
        ("quick", ["scale_in"], "--faults: scale_in not in the 'quick' profile"),
        ("full", [], "--faults: name at least one fault"),
    ],
)
def test_bad_schedules_name_the_option(profile: str, faults: list[str] | None, says: str) -> None:
    with pytest.raises(InvalidArgumentError, match=says.replace("(", r"\(")):
        plan(profile, faults)


def _event(chaos: object) -> bytes:
    return json.dumps({"event_id": "e1", "properties": {"product_id": "p", MARK: chaos}}).encode()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_event(mark(hang=35)), Directive(hang=35.0)),
        (_event(mark(slow=2)), Directive(slow=2.0)),
        (_event(mark(slow=2, after=True)), Directive(slow=2.0, after=True)),
        (_event(mark(slow=2, only="w2")), Directive(slow=2.0, only="w2")),
        (_event({"slow": 1, "only": 2}), None),
        (b'{"event_id": "e1", "properties": {}}', None),
        (b'{"chaos": not json', None),
        (_event({"hang": -1}), None),
        (_event({"hang": True}), None),
        (_event({"slow": 1, "at": "during"}), None),
        (_event({"explode": 1}), None),
        (_event("hang"), None),
    ],
)
def test_directive_of_reads_only_a_well_formed_mark(
    data: bytes, expected: Directive | None
) -> None:
    assert directive_of(data) == expected


def _message(data: bytes) -> Message:
    return Message(
        data=data,
        key="acme:u1",
        ordering_key=None,
        properties={},
        message_id=MessageId(0, 1, 0),
        topic="t",
        publish_time=0.0,
    )


async def test_a_hang_outlives_the_first_attempt_only() -> None:
    calls: list[int] = []

    async def handler(message: Message, context: HandlerContext) -> None:
        calls.append(context.attempt)

    hooked = fault_hooks(handler)
    message = _message(_event(mark(hang=30)))
    # The first attempt hangs: a short timeout (lanes' handler_timeout) cancels it first
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await hooked(message, HandlerContext("acme:u1", 1, "c"))
    assert calls == []
    # The retry decides at once
    await hooked(message, HandlerContext("acme:u1", 2, "c"))
    assert calls == [2]


async def test_slow_sleeps_before_or_after_the_decision() -> None:
    order: list[str] = []

    async def handler(message: Message, context: HandlerContext) -> None:
        order.append(f"decided {context.key}")

    hooked = fault_hooks(handler)
    ctx = HandlerContext

    async def run(key: str, data: bytes) -> None:
        await hooked(_message(data), ctx(key, 1, "c"))
        order.append(f"returned {key}")

    # "before" and "after" marks run concurrently with an unmarked event
    await asyncio.gather(
        run("before", _event(mark(slow=0.05))),
        run("after", _event(mark(slow=0.05, after=True))),
        run("plain", b'{"event_id": "plain"}'),
    )
    # The unmarked one and the "after" decision happen at once; "after" returns only later,
    # and "before" decides only after its sleep
    assert set(order[:3]) == {"decided plain", "returned plain", "decided after"}
    assert set(order[3:]) == {"decided before", "returned before", "returned after"}
    assert order.index("decided before") < order.index("returned before")


async def test_only_slows_the_named_workers_consumers() -> None:
    seen: list[str] = []

    async def handler(message: Message, context: HandlerContext) -> None:
        seen.append(context.consumer_name)

    hooked = fault_hooks(handler)
    data = _event(mark(slow=30, only="w2"))
    # Another worker's consumer (w20 is not w2) decides at once
    await hooked(_message(data), HandlerContext("k", 1, "w20-0"))
    await hooked(_message(data), HandlerContext("k", 1, "w1-0"))
    assert seen == ["w20-0", "w1-0"]
    # w2's consumer sleeps first
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await hooked(_message(data), HandlerContext("k", 1, "w2-0"))
    assert seen == ["w20-0", "w1-0"]
