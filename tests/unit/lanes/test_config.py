"""LaneConfig validation and the retry backoff schedule."""

from __future__ import annotations

import math

import pytest

from keylane.errors import InvalidArgumentError
from keylane.lanes import ExhaustedPolicy, LaneConfig


def test_defaults_match_the_agreed_api() -> None:
    config = LaneConfig()
    assert config.max_in_flight == 256
    assert config.handler_timeout == 30.0
    assert config.max_attempts == 3
    assert config.retry_backoff == 0.1
    assert config.retry_backoff_max == 10.0
    assert config.on_exhausted is ExhaustedPolicy.DEAD_LETTER
    assert config.max_buffered_per_key == 100
    assert config.max_buffered_total == 10_000
    assert config.stall_threshold == 30.0
    assert config.shutdown_grace == 10.0
    assert config.redeliver_on_stop is True


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_in_flight": 0}, "max_in_flight must be >= 1, got 0"),
        ({"max_in_flight": -3}, "max_in_flight must be >= 1, got -3"),
        ({"max_in_flight": 2.5}, "max_in_flight must be an int"),
        ({"max_in_flight": True}, "max_in_flight must be an int"),
        ({"handler_timeout": -1.0}, "handler_timeout must not be negative, got -1.0"),
        ({"handler_timeout": 0}, "handler_timeout must be > 0, got 0"),
        ({"handler_timeout": math.nan}, "handler_timeout must be a finite number of seconds"),
        ({"handler_timeout": math.inf}, "handler_timeout must be a finite number of seconds"),
        ({"handler_timeout": "5"}, "handler_timeout must be a number of seconds"),
        ({"max_attempts": 0}, "max_attempts must be >= 1, got 0"),
        ({"retry_backoff": -0.1}, "retry_backoff must not be negative, got -0.1"),
        ({"retry_backoff_max": -1}, "retry_backoff_max must not be negative, got -1"),
        ({"retry_backoff": 5.0, "retry_backoff_max": 1.0}, "retry_backoff_max (1.0) must be >="),
        ({"on_exhausted": "park"}, "on_exhausted must be an ExhaustedPolicy"),
        ({"max_buffered_per_key": 0}, "max_buffered_per_key must be >= 1, got 0"),
        ({"max_buffered_total": 0}, "max_buffered_total must be >= 1, got 0"),
        ({"stall_threshold": -1}, "stall_threshold must not be negative, got -1"),
        ({"shutdown_grace": -0.5}, "shutdown_grace must not be negative, got -0.5"),
        ({"redeliver_on_stop": 1}, "redeliver_on_stop must be a bool"),
    ],
)
def test_bad_values_are_rejected_with_a_clear_message(kwargs: dict[str, object], message: str):
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LaneConfig(**kwargs)  # type: ignore[arg-type]


def test_invalid_argument_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        LaneConfig(max_attempts=0)


def test_no_timeout_and_zero_backoff_are_allowed() -> None:
    config = LaneConfig(handler_timeout=None, retry_backoff=0, retry_backoff_max=0)
    assert config.handler_timeout is None
    assert config.backoff(1) == 0.0
    assert config.backoff(50) == 0.0


def test_backoff_doubles_from_the_first_delay_up_to_the_maximum() -> None:
    config = LaneConfig(retry_backoff=0.1, retry_backoff_max=1.0)
    assert [config.backoff(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert config.backoff(10_000) == 1.0


def test_config_is_frozen() -> None:
    config = LaneConfig()
    with pytest.raises(AttributeError):
        config.max_in_flight = 3  # type: ignore[misc]
