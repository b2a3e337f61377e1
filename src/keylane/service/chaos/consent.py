"""The consent changes the workers committed, for the compliance audit, replayed from the commits.

The audit needs every opt-out (STOP) and opt-in (START, a new subscription after a STOP) with
the engine time it took effect. Worker processes do not write decisions' reasons to their
history files, so the harness replays them: for each key, its committed decisions (the
histories' ``ok`` records) in version order, each event (by ``event_id``, from the events the
harness published) through the engine's own :func:`~keylane.journeys.decide`, and keeps the
``opted_out``/``opted_in`` reasons. Consent depends only on a key's events, in order, and on
their own ``occurred_at`` (a STOP opts out unless already out, a START opts in only after consent
was given once, a new subscription lifts a STOP only if it occurred after it), never on the
decision time or on timers, which the histories do not hold; so the replay's consent matches
the workers'. Each change is dated on the run's shared engine clock (``dating``: monotonic time to
engine time), the clock the audit's opt-out rule then reads the gateway's receive times on. A
commit becomes visible to other workers at some moment between its decision's load and its
return, so each change gets the benefit of that window: an opt-out counts from when its commit
returned (a send the relay re-checked while it was in flight is the runtime's documented
exception), an opt-in from when its decision loaded the state (its START confirmation can go out
before the commit's answer reaches the worker). :class:`EngineClock` records one worker
incarnation's own clock (the report's spread of clocks).

Imports the journeys domain, the audit's values and the checker's records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from keylane.audit import ConsentChange
from keylane.check import OK, Attempt
from keylane.journeys import Event, JourneySet, ReasonCode, SubscriberState, decide

__all__ = ["EngineClock", "Replay", "replay_consent"]

_CONSENT = {ReasonCode.OPTED_OUT: False, ReasonCode.OPTED_IN: True}


@dataclass(frozen=True, slots=True)
class EngineClock:
    """One worker incarnation's engine clock: ``start`` at monotonic ``origin``, ``speed``.

    ``origin`` is when the worker first answered ``/healthz``, right before it builds its clock;
    ``spawned`` when the harness started the process (``origin - spawned``: its start-up time).
    """

    worker: str
    origin: float
    start: datetime
    speed: float = 1.0
    spawned: float = 0.0

    def at(self, monotonic: float) -> datetime:
        """The engine time at ``monotonic``."""
        return self.start + timedelta(seconds=(monotonic - self.origin) * self.speed)


@dataclass(frozen=True, slots=True)
class Replay:
    """What the replay found.

    Attributes:
        changes: every opt-out and opt-in, dated at its commit.
        keys: keys replayed; ``decisions`` committed decisions replayed.
        unknown_events: commits of an event id the harness did not publish (not replayed).
    """

    changes: tuple[ConsentChange, ...]
    keys: int
    decisions: int
    unknown_events: int


def replay_consent(
    attempts: Iterable[Attempt],
    events: Mapping[str, Event],
    journeys: JourneySet,
    dating: Callable[[float], datetime],
) -> Replay:
    """Replay every key's commits through the engine; collect the consent changes.

    Args:
        attempts: the merged histories' attempts (only commits are used).
        events: event id -> event, for everything the harness published.
        journeys: the journeys the workers ran.
        dating: monotonic time -> the run's shared engine time.
    """
    commits: dict[str, list[Attempt]] = defaultdict(list)
    for a in attempts:
        if a.outcome == OK and a.version is not None and a.event_id is not None:
            commits[a.key].append(a)
    changes: list[ConsentChange] = []
    unknown = decisions = 0
    for key, chain in commits.items():
        state: SubscriberState | None = None
        for a in sorted(chain, key=lambda a: a.version or 0):
            event = events.get(a.event_id or "")
            if event is None:
                unknown += 1
                continue
            committed = a.committed if a.committed is not None else a.end
            loaded = a.loaded if a.loaded is not None else a.start
            at, now = dating(committed), dating(loaded)
            decision = decide(state, event, now, journeys)
            decisions += 1
            state = decision.new_state
            for reason in decision.reasons:
                opted_in = _CONSENT.get(reason.code)
                if opted_in is not None:
                    changes.append(ConsentChange(key, now if opted_in else at, opted_in))
    return Replay(tuple(changes), len(commits), decisions, unknown)
