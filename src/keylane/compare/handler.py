"""The simulated decision handler: read state, call a slow service, write state back.

Each call reads the user's counter, awaits simulated I/O (lognormal latency around a median, like
a decision engine calling a service), then writes counter + 1. Two concurrent calls for one user
both read the same value, so one increment is lost: the lost-update anomaly the checker counts.

Head-of-line scenario: with ``stuck_user`` set, the *first attempt* at that user's first event
hangs for ``stuck_for`` seconds (a dependency call that hangs once); a retry succeeds normally.
Whoever bounds handlers with a timeout recovers after the timeout; whoever does not waits the
whole ``stuck_for``.

Imports no backend.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from keylane._validate import check_number, check_seconds
from keylane.brokers.base import Message
from keylane.lanes import HandlerContext
from keylane.state import Commit, Snapshot, StateStore

__all__ = ["DecisionHandler", "HandlerConfig"]


@dataclass(frozen=True, slots=True)
class HandlerConfig:
    """Shape of the simulated work.

    Args:
        latency_median: median simulated I/O time in seconds (> 0).
        latency_sigma: sigma of the lognormal (>= 0; 0 makes every call take the median).
        stuck_user: the user whose first event hangs once (None disables the scenario).
        stuck_for: how long that first attempt hangs, seconds (> 0).
        seed: seeds the latency draws.
    """

    latency_median: float = 0.005
    latency_sigma: float = 0.5
    stuck_user: str | None = None
    stuck_for: float = 30.0
    seed: int = 1

    def __post_init__(self) -> None:
        check_seconds("latency_median", self.latency_median, allow_zero=False)
        check_number("latency_sigma", self.latency_sigma, minimum=0)
        check_seconds("stuck_for", self.stuck_for, allow_zero=False)


class DecisionHandler:
    """``async (message, context)``: a read-modify-write of the user's counter around slow I/O.

    The counter lives in a :class:`~keylane.state.StateStore` (the run uses the memory one). The
    write is *blind*, as a handler without fencing does it (an ORM's ``save()``): it commits on
    the version it reads right before writing, not the one it read before the slow call, so
    concurrent calls of one user lose updates. keylane's runtime instead commits on the version it
    decided from, and is fenced when someone committed in between.

    Args:
        store: the run's state store (open).
        config: latency and stuck-user settings.
        on_success: called with the message after the counter was written (the run's
            completion tracker).
    """

    def __init__(
        self,
        store: StateStore,
        config: HandlerConfig | None = None,
        *,
        on_success: Callable[[Message], None] | None = None,
    ) -> None:
        self.store = store
        self.config = config if config is not None else HandlerConfig()
        self._on_success = on_success
        self._rng = random.Random(self.config.seed)
        self._mu = math.log(self.config.latency_median)
        self.stuck_fired = False
        """Whether the stuck user's hang has happened."""
        self.keys: set[str] = set()
        """The users whose counter was written."""

    def latency(self) -> float:
        """Draw one simulated I/O time."""
        sigma = self.config.latency_sigma
        if sigma == 0:
            return self.config.latency_median
        return self._rng.lognormvariate(self._mu, sigma)

    def _hangs(self, key: str) -> bool:
        if self.stuck_fired or key != self.config.stuck_user:
            return False
        self.stuck_fired = True
        return True

    async def __call__(self, message: Message, context: HandlerContext) -> None:
        key = context.key
        value = _counter(await self.store.load(key))
        delay = self.config.stuck_for if self._hangs(key) else self.latency()
        await asyncio.sleep(delay)
        latest = await self.store.load(key)  # the blind write's version (see the class doc)
        await self.store.commit(Commit(key, latest.version, str(value + 1).encode()))
        self.keys.add(key)
        if self._on_success is not None:
            self._on_success(message)

    async def counters(self) -> dict[str, int]:
        """Every written user's final counter (for the checker's lost-update count)."""
        return {key: _counter(await self.store.load(key)) for key in sorted(self.keys)}


def _counter(snapshot: Snapshot) -> int:
    return 0 if snapshot.state is None else int(snapshot.state)
