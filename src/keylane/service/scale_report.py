"""The scale-out benchmark's results and the verdicts computed from them.

- :class:`Cpu`, :class:`ScalePoint`, :class:`ScaleReport`: what a run measured.
- :func:`flattening`: where the throughput stops growing by at least :data:`FLAT_GAIN` a step.
- :func:`saturation`: what limits a point: the machine's cores (and who uses most of them), a
  worker's event loop at a full core, or neither.
- :func:`cpu_per_event` and :func:`ceiling`: the CPU each component spends per event, and the
  events/s that cost allows on the machine's cores.

Computed from the figures, never asserted. Imports the standard library only.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

__all__ = [
    "BUSY_SHARE",
    "FLAT_GAIN",
    "LOOP_BOUND",
    "Cpu",
    "ScalePoint",
    "ScaleReport",
    "ceiling",
    "cpu_per_event",
    "flattening",
    "saturation",
]

#: A point's throughput must beat the previous one by this factor, else the curve flattened.
FLAT_GAIN = 1.15
#: A share of the machine's cores above which the machine counts as saturated.
BUSY_SHARE = 0.9
#: A worker using this much of one core is bound by its (single-threaded) event loop.
LOOP_BOUND = 0.85


@dataclass(frozen=True, slots=True)
class Cpu:
    """Cores used on average over the saturation window (CPU seconds / wall ``seconds``)."""

    seconds: float
    broker: float | None
    store: float | None
    workers: float
    worker_max: float
    gateway: float
    publisher: float
    machine: float
    other: float


@dataclass(frozen=True, slots=True)
class ScalePoint:
    """One worker count, measured."""

    workers: int
    events: int
    seconds: float
    events_per_second: float
    saturation_p50_ms: float
    saturation_p99_ms: float
    latency_rate: float
    latency_events: int
    latency_p50_ms: float
    latency_p99_ms: float
    cpu: Cpu
    checker_clean: bool
    duplicate_deliveries: int
    deliveries: int
    exit_codes: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ScaleReport:
    """Every point, where the curve flattens and what saturates at each point."""

    points: tuple[ScalePoint, ...]
    cores: int
    flattens: str
    saturates: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        """The report as a JSON-ready dict."""
        return asdict(self)


def flattening(points: tuple[ScalePoint, ...]) -> str:
    """Where the throughput stops growing by at least ``FLAT_GAIN`` per step, in words."""
    for before, after in itertools.pairwise(points):
        gain = after.events_per_second / before.events_per_second
        if gain < FLAT_GAIN:
            return (
                f"flattens at {before.workers} worker(s): {after.workers} give x{gain:.2f} of "
                f"{before.workers}'s events/s"
            )
    if len(points) < 2:
        return "one point: no curve"
    return f"does not flatten up to {points[-1].workers} workers"


def cpu_per_event(point: ScalePoint) -> dict[str, float]:
    """Milliseconds of CPU per decided event, by component, over the saturation window."""
    cpu = point.cpu
    per = cpu.seconds / point.events * 1000 if point.events else 0.0
    return {
        "workers": cpu.workers * per,
        "broker": (cpu.broker or 0.0) * per,
        "store": (cpu.store or 0.0) * per,
        "gateway+publisher": (cpu.gateway + cpu.publisher) * per,
    }


def ceiling(point: ScalePoint, cores: int) -> float:
    """Events/s the machine's ``cores`` would allow at this point's CPU cost per event.

    What the measured components would reach with every core to themselves (no other
    program, no idle time): ``cores / (CPU seconds per event)``.
    """
    total = sum(cpu_per_event(point).values()) / 1000
    return cores / total if total > 0 else float("inf")


def saturation(point: ScalePoint, cores: int) -> str:
    """What limits ``point``, from its CPU figures (see the module docstring)."""
    cpu = point.cpu
    parts = {
        "workers": cpu.workers,
        "broker": cpu.broker or 0.0,
        "store": cpu.store or 0.0,
        "other programs": cpu.other,
    }
    top = max(parts, key=lambda k: parts[k])
    spent = ", ".join(f"{k} {v:.2f}" for k, v in parts.items())
    if cpu.machine >= BUSY_SHARE * cores:
        verdict = (
            f"the machine's {cores} cores ({cpu.machine:.2f} busy: {spent}); {top} use the most"
        )
        if top == "other programs":
            verdict += " (the run was contended)"
        return verdict
    if cpu.worker_max >= LOOP_BOUND:
        return f"the workers' event loops (the busiest at {cpu.worker_max:.2f} of a core)"
    return f"no CPU ({cpu.machine:.2f} of {cores} cores busy: {spent}): waiting, not computing"
