"""The strategy registry: every consumption strategy by name.

Imports no backend. ``shared-lock`` needs a :class:`~keylane.locks.base.KeyLock`; the caller
brings one (``keylane compare`` connects a ``RedisKeyLock``).
"""

from __future__ import annotations

from collections.abc import Iterable

from keylane.compare.strategies.base import Strategy, StrategyConfig
from keylane.compare.strategies.failover import FailoverStrategy
from keylane.compare.strategies.key_shared_lanes import KeySharedLanesStrategy
from keylane.compare.strategies.key_shared_serial import KeySharedSerialStrategy
from keylane.compare.strategies.shared import SharedStrategy
from keylane.compare.strategies.shared_lock import SharedLockStrategy
from keylane.errors import InvalidArgumentError
from keylane.locks.base import KeyLock

__all__ = ["STRATEGIES", "STRATEGY_NAMES", "create_strategy", "parse_strategy_names"]

#: Every strategy class by name, in the order ``keylane compare`` runs and shows them.
STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        SharedStrategy,
        SharedLockStrategy,
        FailoverStrategy,
        KeySharedSerialStrategy,
        KeySharedLanesStrategy,
    )
}

#: The valid strategy names, in display order.
STRATEGY_NAMES: tuple[str, ...] = tuple(STRATEGIES)


def _unknown(name: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"unknown strategy {name!r}; valid strategies: {', '.join(STRATEGY_NAMES)}"
    )


def create_strategy(
    name: str, config: StrategyConfig | None = None, *, lock: KeyLock | None = None
) -> Strategy:
    """Create the strategy called ``name``.

    Args:
        name: one of :data:`STRATEGY_NAMES`.
        config: shared knobs; defaults to ``StrategyConfig()``.
        lock: the lock store, required by ``shared-lock`` (ignored by the others).

    Raises:
        InvalidArgumentError: unknown name (the message lists the valid ones), or ``shared-lock``
            without a lock.
    """
    cls = STRATEGIES.get(name)
    if cls is None:
        raise _unknown(name)
    if cls is SharedLockStrategy:
        if lock is None:
            raise InvalidArgumentError(
                "strategy 'shared-lock' needs a KeyLock (e.g. a connected RedisKeyLock)"
            )
        return SharedLockStrategy(config, lock=lock)
    return cls(config)


def parse_strategy_names(spec: str | Iterable[str] | None) -> list[str]:
    """Turn ``"a,b"`` (or a list of names) into a checked list; None or empty means all.

    Duplicates are dropped; the order given is kept.

    Raises:
        InvalidArgumentError: an unknown name (the message lists the valid ones).
    """
    if spec is None:
        return list(STRATEGY_NAMES)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        name = item.strip()
        if not name:
            continue
        if name not in STRATEGIES:
            raise _unknown(name)
        if name not in names:
            names.append(name)
    return names or list(STRATEGY_NAMES)
