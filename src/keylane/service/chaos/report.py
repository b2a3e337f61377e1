"""The values of a chaos run: each fault as it happened, and the whole run's report.

Values only; the table is rendered by the CLI and the plot by :mod:`~keylane.service.chaos.plot`.
Imports the harness's schedule and verification values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from keylane.service.chaos.schedule import FaultKind
from keylane.service.chaos.verify import Invariant

__all__ = ["ChaosReport", "FaultRecord"]


@dataclass(frozen=True, slots=True)
class FaultRecord:
    """One injected fault.

    Attributes:
        kind: what it was.
        target: whom it hit (``w2``, ``broker``, ``postgres``, ``gateway``, a key, ...).
        started, ended: when it hit and when it was over (``time.monotonic()``; equal for an
            instantaneous fault).
        effective: it did what it is meant to do (the process died, the consumer was dropped
            and its keys moved, the broker came back as a new process, ...).
        detail: what happened, in a few words.
        recovery: seconds of the longest gap in the affected completions around the fault
            (see ``recovery_of``); None if they did not resume in the window.
        measured: what ``recovery`` measured.
    """

    kind: FaultKind
    target: str
    started: float
    ended: float
    effective: bool
    detail: str
    recovery: float | None = None
    measured: str = ""

    def with_recovery(self, seconds: float | None, measured: str) -> FaultRecord:
        """A copy with its recovery time."""
        return replace(self, recovery=seconds, measured=measured)

    def to_dict(self, origin: float) -> dict[str, Any]:
        """JSON values, with times in seconds after ``origin`` (the load's start)."""
        return {
            "kind": self.kind.value,
            "target": self.target,
            "at": round(self.started - origin, 3),
            "duration": round(self.ended - self.started, 3),
            "effective": self.effective,
            "recovery": None if self.recovery is None else round(self.recovery, 3),
            "measured": self.measured,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class ChaosReport:
    """Everything a chaos run measured and judged.

    Attributes:
        profile: the schedule's name.
        origin: ``time.monotonic()`` when the load started (the table's time 0).
        seconds: the whole run, wall time; ``load_seconds`` the load's.
        published: events the load generator published; ``rate`` the asked rate.
        workers: worker processes at the start.
        faults: what was injected, in order.
        invariants: the verdict's rows; each must be 0.
        incidents: what else went wrong (a worker that died on its own, a drain that failed).
        data_dir: the run's files; ``plot`` the PNG (None if it could not be drawn).
    """

    profile: str
    origin: float
    seconds: float
    load_seconds: float
    published: int
    rate: float
    workers: int
    faults: tuple[FaultRecord, ...]
    invariants: tuple[Invariant, ...]
    incidents: tuple[str, ...] = ()
    data_dir: str = ""
    plot: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """Every invariant holds, every fault took effect, and nothing else went wrong."""
        return (
            all(i.ok for i in self.invariants)
            and all(f.effective for f in self.faults)
            and not self.incidents
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the report."""
        return {
            "ok": self.ok,
            "profile": self.profile,
            "seconds": round(self.seconds, 3),
            "load_seconds": round(self.load_seconds, 3),
            "published": self.published,
            "rate": self.rate,
            "workers": self.workers,
            "faults": [f.to_dict(self.origin) for f in self.faults],
            "invariants": [
                {
                    "name": i.name,
                    "violations": i.violations,
                    "ok": i.ok,
                    "detail": i.detail,
                    "examples": list(i.examples),
                }
                for i in self.invariants
            ],
            "incidents": list(self.incidents),
            "notes": list(self.notes),
            "data_dir": self.data_dir,
            "plot": self.plot,
        }
