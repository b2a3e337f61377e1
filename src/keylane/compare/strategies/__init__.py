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

from keylane.strategies.base import ContentionPolicy, Strategy, StrategyConfig, StrategyStats
from keylane.strategies.failover import FailoverStrategy
from keylane.strategies.key_shared_lanes import KeySharedLanesStrategy
from keylane.strategies.key_shared_serial import KeySharedSerialStrategy
from keylane.strategies.registry import (
    STRATEGIES,
    STRATEGY_NAMES,
    create_strategy,
    parse_strategy_names,
)
from keylane.strategies.shared import SharedStrategy
from keylane.strategies.shared_lock import SharedLockStrategy

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
