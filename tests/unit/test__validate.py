"""The ground-floor argument rules (``keylane._validate``).

Each check either returns the checked value or raises InvalidArgumentError naming the argument;
whatever it is given, no other exception escapes (the property tests feed it arbitrary values).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keylane._validate import (
    MAX_INT32,
    MAX_SECONDS,
    check_bool,
    check_int,
    check_seconds,
    check_text,
    is_int,
    is_number,
    is_utf8,
    show,
)
from keylane.errors import InvalidArgumentError

T = TypeVar("T")

SURROGATE = json.loads('"\\ud800"')
HUGE_INT = 10**400

#: Values of many kinds, including the ones that broke builtins: NaN, infinities, ints too large
#: for a float, lone surrogates, bools, timedeltas at the extremes, containers.
ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([HUGE_INT, -HUGE_INT, 2**63, 2**31, MAX_INT32]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.timedeltas(),
    st.sampled_from([timedelta.max, timedelta.min]),
    st.text(alphabet=st.characters(codec=None)),
    st.binary(),
    st.lists(st.integers(), max_size=3),
)


def outcome(call: Callable[[], T]) -> tuple[T | None, InvalidArgumentError | None]:
    """The call's result, or the InvalidArgumentError it raised (any other error propagates)."""
    try:
        return call(), None
    except InvalidArgumentError as exc:
        return None, exc


def test_is_int_and_is_number_leave_out_bools() -> None:
    assert is_int(3)
    assert is_int(-(2**80))
    assert not is_int(True)
    assert not is_int(3.0)
    assert not is_int("3")
    assert is_number(2.5)
    assert is_number(math.nan)
    assert is_number(7)
    assert not is_number(False)
    assert not is_number("1")
    assert not is_number(None)


@given(st.text(alphabet=st.characters(codec=None)))
def test_is_utf8_is_whether_the_text_encodes(text: str) -> None:
    try:
        text.encode()
        encodes = True
    except UnicodeEncodeError:
        encodes = False
    assert is_utf8(text) is encodes


def test_is_utf8_examples() -> None:
    assert is_utf8("user-1")
    assert is_utf8("ünïcödé ✓")
    assert is_utf8("")
    assert not is_utf8(SURROGATE)
    assert not is_utf8("a" + SURROGATE + "b")
    assert not is_utf8(json.loads('"\\udfff"'))


def test_show_is_short_and_never_raises() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert show("x") == "'x'"
    assert len(show(HUGE_INT)) < 60
    assert len(show("y" * 10_000)) < 80
    assert show(Broken()).startswith("<Broken ")


# --------------------------------------------------------------------------- check_int


def test_check_int_returns_values_within_the_bounds() -> None:
    assert check_int("n", 5) == 5
    assert check_int("n", 1, 1, 1) == 1
    assert check_int("n", MAX_INT32, 0, MAX_INT32) == MAX_INT32
    assert check_int("n", -(2**70)) == -(2**70)  # no bounds given, none applied


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (True, "n must be an int, not True"),
        (2.0, "n must be an int, not 2.0"),
        ("3", "n must be an int, not '3'"),
        (None, "n must be an int, not None"),
        (0, "n must be >= 1, got 0"),
        (11, "n must be <= 10, got 11"),
    ],
)
def test_check_int_messages(value: object, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_int("n", value, 1, 10)
    assert str(info.value) == message


def test_check_int_message_stays_short_for_a_huge_int() -> None:
    with pytest.raises(InvalidArgumentError, match="n must be <= 10, got") as info:
        check_int("n", HUGE_INT, 1, 10)
    assert len(str(info.value)) < 100


@given(ANYTHING)
def test_check_int_raises_nothing_but_invalid_argument(value: object) -> None:
    result, error = outcome(lambda: check_int("n", value, 0, MAX_INT32))
    if error is not None:
        assert str(error).startswith("n ")
    else:
        assert is_int(result)
        assert 0 <= result <= MAX_INT32


# --------------------------------------------------------------------------- check_seconds


def test_check_seconds_returns_floats() -> None:
    assert check_seconds("t", 3) == 3.0
    assert isinstance(check_seconds("t", 3), float)
    assert check_seconds("t", 0) == 0.0
    assert check_seconds("t", MAX_SECONDS) == MAX_SECONDS
    assert check_seconds("t", timedelta(milliseconds=250), allow_timedelta=True) == 0.25
    assert check_seconds("t", 0.1, minimum=0.1) == 0.1
    assert check_seconds("t", 5, maximum=5) == 5.0


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        ("1", {}, "t must be a number of seconds, not '1'"),
        (True, {}, "t must be a number of seconds, not True"),
        (
            timedelta(seconds=1),
            {},
            "t must be a number of seconds, not datetime.timedelta(seconds=1)",
        ),
        (None, {"allow_timedelta": True}, "t must be a number of seconds or a timedelta, not"),
        (math.nan, {}, "t must be a finite number of seconds, got nan"),
        (math.inf, {}, "t must be a finite number of seconds, got inf"),
        (-math.inf, {}, "t must be a finite number of seconds, got -inf"),
        (-0.5, {}, "t must not be negative, got -0.5"),
        (timedelta(seconds=-1), {"allow_timedelta": True}, "t must not be negative, got -1.0"),
        (0, {"allow_zero": False}, "t must be > 0, got 0.0"),
        (0.05, {"minimum": 0.1}, "t must be at least 0.1 s, got 0.05"),
        (3601, {"maximum": 3600}, "t must be at most 3,600 s (1 hour), got 3601"),
        (1e300, {}, "t must be at most 3,155,760,000 s (100 years), got 1e+300"),
        (HUGE_INT, {}, "t must be at most 3,155,760,000 s (100 years), got 1000"),
        (timedelta.max, {"allow_timedelta": True}, "t must be at most 3,155,760,000 s"),
    ],
)
def test_check_seconds_messages(value: object, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_seconds("t", value, **options)
    assert str(info.value).startswith(message)


@given(ANYTHING)
def test_check_seconds_raises_nothing_but_invalid_argument(value: object) -> None:
    seconds, error = outcome(lambda: check_seconds("t", value, allow_timedelta=True))
    if error is not None:
        assert str(error).startswith("t ")
    else:
        assert isinstance(seconds, float)
        assert 0 <= seconds <= MAX_SECONDS
        # Fits where the Pulsar client puts it: int64 milliseconds, and "now" plus the
        # duration in int64 nanoseconds.
        assert round(seconds * 1000) < 2**63
        assert (2_000_000_000 + seconds) * 1e9 < 2**63


# --------------------------------------------------------------------------- check_text


def test_check_text_accepts_any_text_that_encodes() -> None:
    assert check_text("name", "user-1") == "user-1"
    assert check_text("name", "ünïcödé ✓") == "ünïcödé ✓"
    assert check_text("name", "") == ""


@pytest.mark.parametrize(
    ("value", "options", "message"),
    [
        (3, {}, "name must be a str, not int"),
        (b"x", {}, "name must be a str, not bytes"),
        ("", {"allow_empty": False}, "name must not be empty"),
        (
            SURROGATE,
            {},
            "name must be valid UTF-8 text, but it holds the lone surrogate '\\ud800' at index 0",
        ),
        (
            "ab" + json.loads('"\\udc80"'),
            {},
            "name must be valid UTF-8 text, but it holds the lone surrogate '\\udc80' at index 2",
        ),
    ],
)
def test_check_text_messages(value: object, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as info:
        check_text("name", value, **options)
    assert str(info.value) == message


@given(ANYTHING)
def test_check_text_raises_nothing_but_invalid_argument(value: object) -> None:
    text, error = outcome(lambda: check_text("name", value))
    if error is not None:
        assert str(error).startswith("name ")
    else:
        assert isinstance(text, str)
        text.encode()  # what the check promises


# --------------------------------------------------------------------------- check_bool


def test_check_bool() -> None:
    assert check_bool("flag", True) is True
    assert check_bool("flag", False) is False
    for value in (0, 1, "yes", None):
        with pytest.raises(InvalidArgumentError, match="flag must be a bool"):
            check_bool("flag", value)
