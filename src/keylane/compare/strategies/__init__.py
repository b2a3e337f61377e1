"""Five ways to consume a keyed topic, side by side (``keylane compare``).

============================ ==========================================================
``shared``                   Shared, concurrent handlers, no lock: the split-brain baseline
``shared-lock``              Shared + per-user Redis lock, nack (or wait) on contention
``failover``                 Failover on a partitioned topic, serial per consumer
``key-shared-serial``        Key_Shared, one message at a time per consumer
``key-shared-lanes``         Key_Shared + :class:`keylane.lanes.Lanes`: the keylane way
============================ ==========================================================

See ``docs/strategies.md``. This package imports no backend.
"""

from __future__ import annotations

from keylane.compare.strategies.base import (
    ContentionPolicy,
    Strategy,
    StrategyConfig,
    StrategyStats,
)
from keylane.compare.strategies.failover import FailoverStrategy
from keylane.compare.strategies.key_shared_lanes import KeySharedLanesStrategy
from keylane.compare.strategies.key_shared_serial import KeySharedSerialStrategy
from keylane.compare.strategies.registry import (
    STRATEGIES,
    STRATEGY_NAMES,
    create_strategy,
    parse_strategy_names,
)
from keylane.compare.strategies.shared import SharedStrategy
from keylane.compare.strategies.shared_lock import SharedLockStrategy

__all__ = [
    "STRATEGIES",
    "STRATEGY_NAMES",
    "ContentionPolicy",
    "FailoverStrategy",
    "KeySharedLanesStrategy",
    "KeySharedSerialStrategy",
    "SharedLockStrategy",
    "SharedStrategy",
    "Strategy",
    "StrategyConfig",
    "StrategyStats",
    "create_strategy",
    "parse_strategy_names",
]
