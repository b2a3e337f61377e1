"""The embedded gateway's failure injection: what to do to the next ``POST /v1/messages``.

A :class:`FaultPlan` says how often to fail and how; a :class:`FaultPolicy` applies it with a
seeded random generator, so a test run fails the same requests every time. Faults act *before*
the request is looked at (like a load balancer in front of a gateway), except the
``after_delivery`` timeout, which delivers first and then answers too late: the "did it go
out?" case.

Framework-free: this module imports no web framework (nothing from starlette or uvicorn).
"""

from __future__ import annotations

import enum
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from keylane.errors import InvalidArgumentError

__all__ = ["Fault", "FaultKind", "FaultPlan", "FaultPolicy"]


class FaultKind(enum.StrEnum):
    """The injected failures, as counted in the gateway's stats."""

    #: Answered with ``error_status`` (a 5xx) before delivering.
    ERROR = "error"
    #: Delivered, then held for ``timeout_delay`` seconds before the (normal) answer.
    TIMEOUT_AFTER_DELIVERY = "timeout_after_delivery"
    #: Held for ``timeout_delay`` seconds, then answered 504 without delivering.
    TIMEOUT_BEFORE_DELIVERY = "timeout_before_delivery"
    #: Answered 503 while the gateway is "down" (``down_for`` seconds from when it was set).
    DOWN = "down"


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """How the gateway misbehaves (JSON body of ``POST /v1/faults``; the defaults: not at all).

    Attributes:
        error_rate: share of requests (0..1) answered ``error_status`` without delivering.
        error_status: the status of those answers, 500..599.
        timeout_rate: share of requests (0..1, with ``error_rate`` at most 1 in all) that time
            out: held ``timeout_delay`` seconds, longer than the client waits.
        timeout_mode: ``"after_delivery"`` (delivered, the answer comes late) or
            ``"before_delivery"`` (not delivered; a late 504).
        timeout_delay: seconds a timed-out request is held; set it above the client's timeout.
        down_for: seconds, from when the plan is set, during which every request gets 503.
        seed: seed of the generator that picks the failing requests.
    """

    error_rate: float = 0.0
    error_status: int = 503
    timeout_rate: float = 0.0
    timeout_mode: str = "after_delivery"
    timeout_delay: float = 15.0
    down_for: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("error_rate", "timeout_rate"):
            _share(name, getattr(self, name))
        if self.error_rate + self.timeout_rate > 1:
            raise InvalidArgumentError("error_rate + timeout_rate must be at most 1")
        if not _is_int(self.error_status) or not 500 <= self.error_status <= 599:
            raise InvalidArgumentError(
                f"error_status: must be an integer 500..599, got {self.error_status!r}"
            )
        if self.timeout_mode not in _TIMEOUT_KINDS:
            raise InvalidArgumentError(
                "timeout_mode: must be 'after_delivery' or 'before_delivery', "
                f"got {self.timeout_mode!r}"
            )
        _seconds("timeout_delay", self.timeout_delay, 3600.0)
        _seconds("down_for", self.down_for, 86_400.0)
        if not _is_int(self.seed):
            raise InvalidArgumentError(f"seed: must be an integer, got {self.seed!r}")

    @classmethod
    def from_dict(cls, data: object) -> FaultPlan:
        """A plan from JSON values; absent fields keep their defaults.

        Raises:
            InvalidArgumentError: not an object, an unknown field, or a bad value (named).
        """
        if not isinstance(data, Mapping):
            raise InvalidArgumentError("fault plan: must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidArgumentError(
                f"{unknown[0]}: unknown fault field (known: {', '.join(sorted(known))})"
            )
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON values."""
        return asdict(self)

    @property
    def active(self) -> bool:
        """Whether the plan injects anything at all."""
        return self.error_rate > 0 or self.timeout_rate > 0 or self.down_for > 0


_TIMEOUT_KINDS = {
    "after_delivery": FaultKind.TIMEOUT_AFTER_DELIVERY,
    "before_delivery": FaultKind.TIMEOUT_BEFORE_DELIVERY,
}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _share(name: str, value: object) -> None:
    if not _is_number(value) or not 0 <= value <= 1:  # type: ignore[operator]
        raise InvalidArgumentError(f"{name}: must be a number from 0 to 1, got {value!r}")


def _seconds(name: str, value: object, limit: float) -> None:
    if not _is_number(value) or not 0 <= value <= limit:  # type: ignore[operator]
        raise InvalidArgumentError(f"{name}: must be seconds from 0 to {limit:g}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Fault:
    """What to do to one request.

    Attributes:
        kind: which failure.
        status: the status to answer with (for the timeouts: the late answer's, 504 before
            delivery; 0 after delivery, which answers normally).
        delay: seconds to hold the request first.
        retry_after: for DOWN, whole seconds until the gateway is back.
    """

    kind: FaultKind
    status: int
    delay: float = 0.0
    retry_after: int = 0


class FaultPolicy:
    """Applies the current :class:`FaultPlan`, one decision per request."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._plan = FaultPlan()
        self._rng = random.Random(0)
        self._down_until = 0.0

    @property
    def plan(self) -> FaultPlan:
        """The plan in force."""
        return self._plan

    def set(self, plan: FaultPlan) -> None:
        """Put ``plan`` in force now (its ``down_for`` counts from now; its seed restarts).

        Raises:
            InvalidArgumentError: ``plan`` is not a FaultPlan.
        """
        if not isinstance(plan, FaultPlan):
            raise InvalidArgumentError(f"faults must be a FaultPlan, not {type(plan).__name__}")
        self._plan = plan
        self._rng = random.Random(plan.seed)
        self._down_until = self._monotonic() + plan.down_for if plan.down_for else 0.0

    def clear(self) -> None:
        """No more faults."""
        self.set(FaultPlan())

    def down_remaining(self) -> float:
        """Seconds until the gateway is back up (0 when up)."""
        return max(0.0, self._down_until - self._monotonic())

    def decide(self) -> Fault | None:
        """The fault for the request arriving now, or None to serve it normally."""
        plan = self._plan
        remaining = self.down_remaining()
        if remaining > 0:
            return Fault(FaultKind.DOWN, 503, retry_after=max(1, math.ceil(remaining)))
        if plan.error_rate == 0 and plan.timeout_rate == 0:
            return None
        draw = self._rng.random()
        if draw < plan.error_rate:
            return Fault(FaultKind.ERROR, plan.error_status)
        if draw < plan.error_rate + plan.timeout_rate:
            kind = _TIMEOUT_KINDS[plan.timeout_mode]
            status = 504 if kind is FaultKind.TIMEOUT_BEFORE_DELIVERY else 0
            return Fault(kind, status, delay=plan.timeout_delay)
        return None
