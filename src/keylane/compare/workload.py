"""Seeded shopping-session workload: users emitting bursts of events close together.

A *session* is one user's burst (view, add to cart, checkout...), published back to back, so the
same user's events are often in flight at the same moment: the situation where per-user
exclusivity matters. Users are drawn uniformly by default (no user dominates); ``skew`` draws them
Zipf-like and ``hot_users``/``hot_share`` send a share of sessions to a few hot users.

The sequence of sessions is a pure function of the config (seed included). Per-user sequence
numbers (``seq``, starting at 1) are assigned here, in generation order, and travel as the
message property :data:`SEQ_PROPERTY`.

Imports no backend and nothing from the broker layer.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import math
import random
from dataclasses import dataclass, field

from keylane._validate import check_int, check_number
from keylane.check.records import SEQ_PROPERTY
from keylane.errors import InvalidArgumentError

__all__ = [
    "EVENT_TYPES",
    "EVENT_TYPE_PROPERTY",
    "PUBLISHED_AT_PROPERTY",
    "SEQ_PROPERTY",
    "STUCK_USER",
    "BurstShape",
    "Event",
    "Session",
    "Workload",
    "WorkloadConfig",
    "user_id",
]

#: Message property: wall-clock publish time (seconds since the epoch, as text).
PUBLISHED_AT_PROPERTY = "published_at"
#: Message property: the shopping event type.
EVENT_TYPE_PROPERTY = "event_type"
#: The user whose first event hangs in the head-of-line scenario (not one of the normal users).
STUCK_USER = "u-stuck"

#: A session's events follow this funnel, cycling when a burst is longer.
EVENT_TYPES: tuple[str, ...] = (
    "session_start",
    "page_view",
    "product_view",
    "add_to_cart",
    "product_view",
    "cart_view",
    "checkout_started",
    "purchase",
)


def user_id(index: int) -> str:
    """Name of the ``index``-th user (``u00042``)."""
    return f"u{index:05d}"


class BurstShape(enum.Enum):
    """Distribution of events per session (both have mean ``mean_burst`` and minimum 1)."""

    #: ``1 + Poisson(mean - 1)``: sessions of about ``mean`` events (default; short tail).
    POISSON = "poisson"
    #: Geometric on {1, 2, ...}: many short sessions and a long tail, cut at ``max_burst``.
    GEOMETRIC = "geometric"


@dataclass(frozen=True, slots=True)
class WorkloadConfig:
    """Shape of the workload.

    Args:
        users: number of distinct users.
        mean_burst: mean events per session (at least 1).
        burst_shape: distribution of events per session.
        max_burst: cap on events per session (a long tail is cut here).
        skew: Zipf exponent of user popularity; 0 means uniform.
        hot_users: number of hot users (the first ones); 0 disables.
        hot_share: share of sessions that go to the hot users, in [0, 1).
        seed: makes the session sequence reproducible.
    """

    users: int = 10_000
    mean_burst: float = 8.0
    burst_shape: BurstShape = BurstShape.POISSON
    max_burst: int = 32
    skew: float = 0.0
    hot_users: int = 0
    hot_share: float = 0.0
    seed: int = 1

    def __post_init__(self) -> None:
        check_int("users", self.users, 1)
        check_int("max_burst", self.max_burst, 1)
        check_number("mean_burst", self.mean_burst)
        if not 1.0 <= self.mean_burst <= self.max_burst:
            raise InvalidArgumentError(
                f"mean_burst must be in [1, max_burst={self.max_burst}], got {self.mean_burst}"
            )
        if not isinstance(self.burst_shape, BurstShape):
            raise InvalidArgumentError(
                f"burst_shape must be a BurstShape, not {self.burst_shape!r}"
            )
        check_number("skew", self.skew, minimum=0)
        check_int("hot_users", self.hot_users, 0, self.users)
        check_number("hot_share", self.hot_share, minimum=0, below=1)
        if self.hot_share > 0 and self.hot_users == 0:
            raise InvalidArgumentError("hot_share needs hot_users >= 1")

    def describe(self) -> dict[str, object]:
        """The config as a JSON-ready dict."""
        return {
            "users": self.users,
            "mean_burst": self.mean_burst,
            "burst_shape": self.burst_shape.value,
            "max_burst": self.max_burst,
            "skew": self.skew,
            "hot_users": self.hot_users,
            "hot_share": self.hot_share,
            "seed": self.seed,
        }


@dataclass(frozen=True, slots=True)
class Event:
    """One shopping event: the user (message key), its per-user seq and its type."""

    user: str
    seq: int
    event_type: str


@dataclass(frozen=True, slots=True)
class Session:
    """One user's burst of events, in publish order."""

    user: str
    events: tuple[Event, ...]


@dataclass
class Workload:
    """An endless, reproducible stream of sessions.

    Example:
        >>> w = Workload(WorkloadConfig(users=10, seed=7))
        >>> s = w.next_session()
        >>> [e.seq for e in s.events][:2]
        [1, 2]
    """

    config: WorkloadConfig = field(default_factory=WorkloadConfig)
    _rng: random.Random = field(init=False, repr=False)
    _seqs: dict[str, int] = field(init=False, repr=False, default_factory=dict)
    _cumulative: list[float] | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.config.seed)
        if self.config.skew > 0:
            weights = (1.0 / (rank**self.config.skew) for rank in range(1, self.config.users + 1))
            self._cumulative = list(itertools.accumulate(weights))

    def _pick_user(self) -> str:
        cfg, rng = self.config, self._rng
        if cfg.hot_users and rng.random() < cfg.hot_share:
            return user_id(rng.randrange(cfg.hot_users))
        if self._cumulative is not None:
            point = rng.random() * self._cumulative[-1]
            return user_id(bisect.bisect_left(self._cumulative, point))
        return user_id(rng.randrange(cfg.users))

    def _burst_size(self) -> int:
        mean = self.config.mean_burst
        if mean <= 1.0:
            return 1
        rng = self._rng
        if self.config.burst_shape is BurstShape.POISSON:
            # 1 + Poisson(mean - 1), by Knuth's multiplication method (mean is small).
            limit = math.exp(-(mean - 1.0))
            size, product = 1, rng.random()
            while product > limit:
                size += 1
                product *= rng.random()
        else:
            # Geometric on {1, 2, ...} with mean m: P(k) = (1-p)^(k-1) p, p = 1/m.
            p = 1.0 / mean
            u = 1.0 - rng.random()  # (0, 1]
            size = 1 + int(math.log(u) / math.log(1.0 - p))
        return min(size, self.config.max_burst)

    def session_for(self, user: str, size: int) -> Session:
        """A session of ``size`` events for ``user``, continuing its seq numbers."""
        first = self._seqs.get(user, 0) + 1
        self._seqs[user] = first + size - 1
        events = tuple(
            Event(user, first + i, EVENT_TYPES[i % len(EVENT_TYPES)]) for i in range(size)
        )
        return Session(user, events)

    def next_session(self) -> Session:
        """The next session of the stream."""
        user = self._pick_user()
        return self.session_for(user, self._burst_size())
