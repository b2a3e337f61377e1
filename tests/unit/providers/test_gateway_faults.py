"""The embedded gateway's fault plan and policy: validation, seeded picks, down for a while."""

from __future__ import annotations

import pytest

from keylane.errors import InvalidArgumentError
from keylane.web.gateway import FaultKind, FaultPlan
from keylane.web.gateway.faults import FaultPolicy


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def picks(plan: FaultPlan, n: int) -> list[FaultKind | None]:
    policy = FaultPolicy(FakeMonotonic())
    policy.set(plan)
    kinds: list[FaultKind | None] = []
    for _ in range(n):
        fault = policy.decide()
        kinds.append(None if fault is None else fault.kind)
    return kinds


def test_no_plan_injects_nothing():
    policy = FaultPolicy()
    assert FaultPlan().active is False
    assert [policy.decide() for _ in range(100)] == [None] * 100


def test_shares_are_seeded_and_roughly_right():
    plan = FaultPlan(error_rate=0.2, timeout_rate=0.1, seed=7)
    first = picks(plan, 2000)
    assert first == picks(plan, 2000)  # same seed, same requests fail
    assert first != picks(FaultPlan(error_rate=0.2, timeout_rate=0.1, seed=8), 2000)
    errors = first.count(FaultKind.ERROR)
    timeouts = first.count(FaultKind.TIMEOUT_AFTER_DELIVERY)
    assert 300 < errors < 500
    assert 120 < timeouts < 280
    assert first.count(FaultKind.TIMEOUT_BEFORE_DELIVERY) == 0


def test_fault_details():
    policy = FaultPolicy(FakeMonotonic())
    policy.set(FaultPlan(error_rate=1.0, error_status=502))
    fault = policy.decide()
    assert fault is not None
    assert (fault.kind, fault.status) == (FaultKind.ERROR, 502)
    policy.set(FaultPlan(timeout_rate=1.0, timeout_mode="before_delivery", timeout_delay=3))
    fault = policy.decide()
    assert fault is not None
    assert (fault.kind, fault.status, fault.delay) == (
        FaultKind.TIMEOUT_BEFORE_DELIVERY,
        504,
        3,
    )


def test_down_for_a_while_then_up():
    clock = FakeMonotonic()
    policy = FaultPolicy(clock)
    policy.set(FaultPlan(down_for=5))
    fault = policy.decide()
    assert fault is not None
    assert (fault.kind, fault.status, fault.retry_after) == (FaultKind.DOWN, 503, 5)
    clock.now += 4.5
    fault = policy.decide()
    assert fault is not None
    assert fault.retry_after == 1
    clock.now += 0.5
    assert policy.decide() is None
    assert policy.down_remaining() == 0


def test_clear():
    policy = FaultPolicy(FakeMonotonic())
    policy.set(FaultPlan(error_rate=1.0, down_for=60))
    policy.clear()
    assert policy.decide() is None
    assert policy.plan == FaultPlan()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"error_rate": 1.5}, "error_rate: must be a number from 0 to 1"),
        ({"error_rate": "0.5"}, "error_rate: must be a number"),
        ({"timeout_rate": -0.1}, "timeout_rate: must be a number from 0 to 1"),
        ({"error_rate": 0.6, "timeout_rate": 0.6}, "at most 1"),
        ({"error_status": 404}, "error_status: must be an integer 500..599"),
        ({"error_status": True}, "error_status"),
        ({"timeout_mode": "never"}, "timeout_mode: must be"),
        ({"timeout_delay": -1}, "timeout_delay: must be seconds"),
        ({"down_for": float("inf")}, "down_for: must be seconds"),
        ({"seed": 1.5}, "seed: must be an integer"),
        ({"error_rat": 0.1}, "error_rat: unknown fault field"),
        ([1], "must be a JSON object"),
    ],
)
def test_bad_plans_name_the_field(data, message):
    with pytest.raises(InvalidArgumentError, match=message):
        FaultPlan.from_dict(data)


def test_plan_round_trips_and_policy_refuses_other_values():
    plan = FaultPlan(error_rate=0.25, timeout_mode="before_delivery", down_for=2, seed=3)
    assert FaultPlan.from_dict(plan.to_dict()) == plan
    assert plan.active is True
    with pytest.raises(InvalidArgumentError, match="must be a FaultPlan"):
        FaultPolicy().set({"error_rate": 1})  # type: ignore[arg-type]
