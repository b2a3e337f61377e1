"""Strategy registry and StrategyConfig validation."""

from __future__ import annotations

import pytest

from keylane.brokers.base import SubscriptionType
from keylane.compare.strategies import (
    STRATEGY_NAMES,
    ContentionPolicy,
    FailoverStrategy,
    KeySharedLanesStrategy,
    KeySharedSerialStrategy,
    SharedLockStrategy,
    SharedStrategy,
    StrategyConfig,
    create_strategy,
    parse_strategy_names,
)
from keylane.errors import InvalidArgumentError
from keylane.locks import MemoryKeyLock


def test_names_in_display_order():
    assert STRATEGY_NAMES == (
        "shared",
        "shared-lock",
        "failover",
        "key-shared-serial",
        "key-shared-lanes",
    )


@pytest.mark.parametrize(
    ("name", "cls", "sub_type"),
    [
        ("shared", SharedStrategy, SubscriptionType.SHARED),
        ("failover", FailoverStrategy, SubscriptionType.FAILOVER),
        ("key-shared-serial", KeySharedSerialStrategy, SubscriptionType.KEY_SHARED),
        ("key-shared-lanes", KeySharedLanesStrategy, SubscriptionType.KEY_SHARED),
    ],
)
def test_create_by_name(name, cls, sub_type):
    strategy = create_strategy(name)
    assert type(strategy) is cls
    assert strategy.name == name
    assert strategy.subscription_type is sub_type


def test_shared_lock_needs_a_lock():
    with pytest.raises(InvalidArgumentError, match="needs a KeyLock"):
        create_strategy("shared-lock")
    strategy = create_strategy("shared-lock", lock=MemoryKeyLock())
    assert isinstance(strategy, SharedLockStrategy)
    assert strategy.subscription_type is SubscriptionType.SHARED


def test_unknown_name_lists_valid_names():
    with pytest.raises(InvalidArgumentError) as info:
        create_strategy("exclusive")
    message = str(info.value)
    assert "'exclusive'" in message
    for name in STRATEGY_NAMES:
        assert name in message


def test_parse_names():
    assert parse_strategy_names(None) == list(STRATEGY_NAMES)
    assert parse_strategy_names("") == list(STRATEGY_NAMES)
    assert parse_strategy_names(" failover , shared,failover") == ["failover", "shared"]
    assert parse_strategy_names(["key-shared-lanes"]) == ["key-shared-lanes"]
    with pytest.raises(InvalidArgumentError, match="valid strategies: shared, shared-lock"):
        parse_strategy_names("shared,lanes")


def test_failover_partitions_default_to_consumers():
    assert FailoverStrategy(StrategyConfig(consumers=3)).partitions() == 3
    assert FailoverStrategy(StrategyConfig(consumers=3, partitions=8)).partitions() == 8
    assert SharedStrategy().partitions() == 0
    assert KeySharedLanesStrategy().partitions() == 0


def test_lanes_config_follows_strategy_config():
    strategy = KeySharedLanesStrategy(
        StrategyConfig(max_in_flight=7, handler_timeout=2.5, max_attempts=4, retry_backoff=0.2)
    )
    lanes = strategy.lane_config
    assert (lanes.max_in_flight, lanes.handler_timeout, lanes.max_attempts) == (7, 2.5, 4)
    assert lanes.retry_backoff == 0.2


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"consumers": 0}, "consumers must be >= 1"),
        ({"consumers": 1.5}, "consumers must be an int"),
        ({"max_in_flight": 0}, "max_in_flight must be >= 1"),
        ({"handler_timeout": 0}, "handler_timeout must be > 0"),
        ({"handler_timeout": -1.0}, "handler_timeout"),
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"retry_backoff": -0.1}, "retry_backoff"),
        ({"receiver_queue_size": 0}, "receiver_queue_size"),
        ({"partitions": 0}, "partitions must be >= 1"),
        ({"nack_delay": 0.05}, "nack_delay must be at least 0.1 s"),
        ({"lock_ttl": 0}, "lock_ttl"),
        ({"lock_ttl": float("nan")}, "lock_ttl"),
        ({"lock_wait": -1}, "lock_wait"),
        ({"lock_poll_initial": 0}, "lock_poll_initial"),
        ({"lock_poll_initial": 0.5, "lock_poll_max": 0.1}, "lock_poll_max"),
        ({"contention": "nack"}, "contention must be a ContentionPolicy"),
        ({"shutdown_grace": -1}, "shutdown_grace"),
    ],
)
def test_impossible_settings_are_rejected(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        StrategyConfig(**kwargs)


def test_handler_timeout_none_is_allowed():
    assert StrategyConfig(handler_timeout=None).handler_timeout is None
    assert StrategyConfig(contention=ContentionPolicy.WAIT).contention is ContentionPolicy.WAIT


def test_backoff_doubles():
    cfg = StrategyConfig(retry_backoff=0.1)
    assert [cfg.backoff(n) for n in (1, 2, 3)] == pytest.approx([0.1, 0.2, 0.4])
