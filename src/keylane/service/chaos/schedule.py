"""The faults the harness injects, and the two schedules (profiles) it runs them on.

A schedule is a tuple of :class:`FaultSpec`: a :class:`FaultKind`, the earliest time it may hit
(seconds after the load started) and, for faults that last, how long. The harness runs them one
after the other: a fault starts at its ``at`` or :data:`SETTLE` seconds after the previous one
ended, whichever is later. ``full`` (``make chaos``) has every kind once; ``quick`` (the
``chaos`` test in ``make test``) has kill -9, a zombie, a broker restart and a poison event.

Imports the standard library and :mod:`keylane.errors` only.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from keylane.errors import InvalidArgumentError

__all__ = [
    "DESCRIPTIONS",
    "PROFILES",
    "SETTLE",
    "TAIL",
    "FaultKind",
    "FaultSpec",
    "plan",
]

#: Seconds between the end of one fault and the start of the next, at least.
SETTLE = 6.0
#: Seconds the load goes on after the last fault ended.
TAIL = 15.0


class FaultKind(enum.StrEnum):
    """One kind of fault (its value is the name ``--faults`` takes)."""

    GATEWAY = "gateway_faults"
    POISON = "poison"
    KILL = "kill9"
    ZOMBIE = "zombie"
    SLOW_SUBSCRIBER = "slow_subscriber"
    SCALE_OUT = "scale_out"
    BROKER_RESTART = "broker_restart"
    STORE_RESTART = "store_restart"
    SCALE_IN = "scale_in"


#: One line per kind: what the harness does.
DESCRIPTIONS: dict[FaultKind, str] = {
    FaultKind.GATEWAY: "the gateway answers 5xx and times out (after delivering) for a while",
    FaultKind.POISON: "events that are not valid JSON, not valid events, or under another key",
    FaultKind.KILL: "kill -9 of a worker mid-load, restarted with the same name",
    FaultKind.ZOMBIE: "SIGSTOP of a worker past the broker's keepalive, SIGCONT mid-decision",
    FaultKind.SLOW_SUBSCRIBER: "a handler that hangs past the handler timeout (30 s)",
    FaultKind.SCALE_OUT: "a worker added under load",
    FaultKind.BROKER_RESTART: "the Pulsar broker restarted mid-load (data kept)",
    FaultKind.STORE_RESTART: "PostgreSQL restarted mid-load (data kept)",
    FaultKind.SCALE_IN: "a worker sent SIGTERM under load (it drains)",
}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One scheduled fault.

    Attributes:
        kind: what to inject.
        at: earliest start, seconds after the load started.
        duration: how long it lasts, for the kinds that last (the gateway's window, a killed
            worker's downtime before its restart); 0 for the others.
    """

    kind: FaultKind
    at: float
    duration: float = 0.0


PROFILES: dict[str, tuple[FaultSpec, ...]] = {
    "full": (
        FaultSpec(FaultKind.GATEWAY, 8.0, duration=20.0),
        FaultSpec(FaultKind.POISON, 12.0),
        FaultSpec(FaultKind.KILL, 30.0, duration=3.0),
        FaultSpec(FaultKind.ZOMBIE, 50.0),
        FaultSpec(FaultKind.SLOW_SUBSCRIBER, 75.0),
        FaultSpec(FaultKind.SCALE_OUT, 85.0),
        FaultSpec(FaultKind.BROKER_RESTART, 100.0),
        FaultSpec(FaultKind.STORE_RESTART, 140.0),
        FaultSpec(FaultKind.SCALE_IN, 160.0),
    ),
    "quick": (
        FaultSpec(FaultKind.POISON, 5.0),
        FaultSpec(FaultKind.KILL, 10.0, duration=3.0),
        FaultSpec(FaultKind.ZOMBIE, 25.0),
        FaultSpec(FaultKind.BROKER_RESTART, 45.0),
    ),
}


def plan(profile: str, only: Sequence[str] | None = None) -> tuple[FaultSpec, ...]:
    """The schedule of ``profile``, restricted to the kinds in ``only`` (in the profile's order).

    Raises:
        InvalidArgumentError: an unknown profile or fault name, or a fault the profile lacks.
    """
    if profile not in PROFILES:
        raise InvalidArgumentError(
            f"--profile: unknown profile {profile!r} (known: {', '.join(sorted(PROFILES))})"
        )
    specs = PROFILES[profile]
    if only is None:
        return specs
    known = {kind.value for kind in FaultKind}
    wanted: set[str] = set()
    for name in only:
        name = name.strip()
        if name not in known:
            raise InvalidArgumentError(
                f"--faults: unknown fault {name!r} (known: {', '.join(k.value for k in FaultKind)})"
            )
        wanted.add(name)
    missing = wanted - {spec.kind.value for spec in specs}
    if missing:
        raise InvalidArgumentError(
            f"--faults: {', '.join(sorted(missing))} not in the {profile!r} profile "
            "(use --profile full)"
        )
    if not wanted:
        raise InvalidArgumentError("--faults: name at least one fault")
    return tuple(spec for spec in specs if spec.kind.value in wanted)
