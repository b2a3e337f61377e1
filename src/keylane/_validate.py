"""Ground-floor argument rules: the checks every keylane config and contract builds on.

Each ``check_*`` function takes the argument's name and value, returns the value in its checked
form, and otherwise raises :class:`~keylane.errors.InvalidArgumentError` with a message that
starts with the argument's name, e.g. ``"ack_timeout must be a finite number of seconds, got
inf"``. They never let a builtin ``TypeError``, ``OverflowError`` or ``UnicodeEncodeError`` out,
whatever the value (a huge int, NaN, a str with a lone surrogate, an object of any type).

The bounds are finite on purpose: a value that passes fits the Pulsar client's integer fields
(:data:`MAX_INT32`, and :data:`MAX_SECONDS` in int64 nanoseconds), so a rule checked here never
turns into a client error later. Rules that belong to one contract (the broker's minimum ack
timeout, Pulsar's event-time rules) live with that contract (:mod:`keylane.brokers.validation`).

Imports :mod:`keylane.errors` and the standard library only, so every layer may use it.
"""

from __future__ import annotations

import math
import reprlib
from datetime import timedelta
from typing import TypeGuard

from keylane.errors import InvalidArgumentError

__all__ = [
    "MAX_INT32",
    "MAX_SECONDS",
    "MAX_TOKEN_LENGTH",
    "check_bool",
    "check_int",
    "check_number",
    "check_seconds",
    "check_text",
    "check_token",
    "is_int",
    "is_number",
    "is_utf8",
    "show",
]

#: Largest signed 32-bit integer: the Pulsar client's ``int`` fields (receiver queue size,
#: redelivery count, ...) take no more.
MAX_INT32 = 2**31 - 1

#: Default upper bound of a duration: 100 years (of 365.25 days), 3,155,760,000 s. Now plus
#: this still fits in the signed 64-bit nanoseconds of the C++ client's and the JVM's clocks
#: (which overflow about 292 years out), and in the client's int64 milliseconds by far.
MAX_SECONDS = 100 * 365.25 * 86_400


#: Largest token accepted (JWTs are usually well under 2 KiB; this bounds a wrong file).
MAX_TOKEN_LENGTH = 16_384


def show(value: object) -> str:
    """``repr(value)`` for a message: shortened (a huge int or str stays short), never raising."""
    try:
        return _REPR.repr(value)
    except Exception:  # a broken __repr__ must not replace the InvalidArgumentError
        return f"<{type(value).__name__} object>"


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60
_REPR.maxlong = 40


def is_int(value: object) -> TypeGuard[int]:
    """Whether ``value`` is an ``int`` and not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """Whether ``value`` is an ``int`` or a ``float`` (NaN and infinities included), not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_utf8(text: str) -> bool:
    """Whether ``text`` encodes to UTF-8, i.e. holds no lone surrogate such as ``"\\ud800"``.

    ``json.loads('"\\\\ud800"')`` and ``os.fsdecode`` of undecodable bytes make such strings;
    they cannot be hashed as UTF-8 bytes nor sent on the wire.
    """
    if text.isascii():  # the common case, and much cheaper than encoding
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def check_int(
    name: str, value: object, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Check an integer argument (a ``bool`` is not one) within ``minimum..maximum``.

    Returns:
        ``value``.

    Raises:
        InvalidArgumentError: not an int, or outside the bounds (each bound is inclusive).
    """
    if not is_int(value):
        raise InvalidArgumentError(f"{name} must be an int, not {show(value)}")
    if minimum is not None and value < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum}, got {show(value)}")
    if maximum is not None and value > maximum:
        raise InvalidArgumentError(f"{name} must be <= {maximum}, got {show(value)}")
    return value


def check_seconds(
    name: str,
    value: object,
    *,
    allow_zero: bool = True,
    minimum: float = 0.0,
    maximum: float = MAX_SECONDS,
    allow_timedelta: bool = False,
) -> float:
    """Check a duration: a finite, non-negative number of seconds, at most ``maximum``.

    Args:
        name: the argument's name, for the message.
        value: an int or float (a ``bool`` is not one); also a :class:`~datetime.timedelta`
            when ``allow_timedelta``.
        allow_zero: False rejects 0 as well (a timeout that must be positive).
        minimum: the smallest accepted value (inclusive), seconds.
        maximum: the largest accepted value (inclusive), seconds; :data:`MAX_SECONDS` by default.
        allow_timedelta: accept a timedelta too.

    Returns:
        The duration in seconds, as a float.

    Raises:
        InvalidArgumentError: the wrong type, NaN, infinite, negative, zero when not allowed,
            below ``minimum`` or above ``maximum``.
    """
    if allow_timedelta and isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif not is_number(value):
        kinds = "a number of seconds or a timedelta" if allow_timedelta else "a number of seconds"
        raise InvalidArgumentError(f"{name} must be {kinds}, not {show(value)}")
    elif isinstance(value, int):  # bounds first: float() of a huge int would overflow
        if value < 0:
            raise InvalidArgumentError(f"{name} must not be negative, got {show(value)}")
        if value > maximum:
            raise InvalidArgumentError(_too_long(name, value, maximum))
        seconds = float(value)
    else:
        seconds = value
    if not math.isfinite(seconds):
        raise InvalidArgumentError(f"{name} must be a finite number of seconds, got {seconds}")
    if seconds < 0:
        raise InvalidArgumentError(f"{name} must not be negative, got {seconds}")
    if seconds == 0 and not allow_zero:
        raise InvalidArgumentError(f"{name} must be > 0, got {seconds}")
    if seconds < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum:g} s, got {seconds}")
    if seconds > maximum:
        raise InvalidArgumentError(_too_long(name, seconds, maximum))
    return float(seconds)


def _too_long(name: str, value: float, maximum: float) -> str:
    limit = f"{int(maximum):,}" if float(maximum).is_integer() else f"{maximum:g}"
    return f"{name} must be at most {limit} s ({_human(maximum)}), got {show(value)}"


def _human(seconds: float) -> str:
    """``3155760000`` as ``"100 years"``, ``3600`` as ``"1 hour"``: for the messages."""
    for unit, size in (("year", 365.25 * 86_400), ("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds / size
            return f"{count:g} {unit}{'' if count == 1 else 's'}"
    return f"{seconds:g} s"


def check_number(
    name: str,
    value: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    below: float | None = None,
) -> float:
    """Check a finite real number (a rate, a ratio, a shape): ``minimum <= value <= maximum``,
    ``above < value < below`` for the exclusive bounds.

    Returns:
        ``value`` as a float.

    Raises:
        InvalidArgumentError: not an int or float (a ``bool`` is not one), NaN, infinite, or
            outside a bound.
    """
    if not is_number(value):
        raise InvalidArgumentError(f"{name} must be a number, not {show(value)}")
    if isinstance(value, int) and abs(value) > 2**53:
        raise InvalidArgumentError(f"{name} is too large: {show(value)}")
    number = float(value)
    if not math.isfinite(number):
        raise InvalidArgumentError(f"{name} must be a finite number, got {number}")
    if minimum is not None and number < minimum:
        raise InvalidArgumentError(f"{name} must be >= {minimum:g}, got {show(value)}")
    if maximum is not None and number > maximum:
        raise InvalidArgumentError(f"{name} must be <= {maximum:g}, got {show(value)}")
    if above is not None and not number > above:
        raise InvalidArgumentError(f"{name} must be > {above:g}, got {show(value)}")
    if below is not None and not number < below:
        raise InvalidArgumentError(f"{name} must be < {below:g}, got {show(value)}")
    return number


def check_text(name: str, value: object, *, allow_empty: bool = True) -> str:
    """Check a text argument that goes on the wire: a ``str`` that encodes to UTF-8.

    Args:
        name: the argument's name, for the message.
        value: the argument.
        allow_empty: False rejects ``""`` as well.

    Returns:
        ``value``.

    Raises:
        InvalidArgumentError: not a str, empty when not allowed, or holding a lone surrogate
            (the message gives its index).
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(f"{name} must be a str, not {type(value).__name__}")
    if not value and not allow_empty:
        raise InvalidArgumentError(f"{name} must not be empty")
    if not is_utf8(value):
        index, char = next((i, c) for i, c in enumerate(value) if 0xD800 <= ord(c) <= 0xDFFF)
        raise InvalidArgumentError(
            f"{name} must be valid UTF-8 text, but it holds the lone surrogate {char!r} at "
            f"index {index}"
        )
    return value


def check_bool(name: str, value: object) -> bool:
    """Check a flag: ``True`` or ``False`` only (not 0, 1 or ``"yes"``).

    Raises:
        InvalidArgumentError: anything but a bool.
    """
    if not isinstance(value, bool):
        raise InvalidArgumentError(f"{name} must be a bool, not {show(value)}")
    return value


def check_token(name: str, token: object) -> str:
    """Check a bearer token: a non-empty str of visible ASCII, no whitespace, at most 16 KiB.

    The message names ``name`` and never holds the token (only its length or an index). Used
    by the Pulsar backend's ``auth_token`` and by the ``KEYLANE_PULSAR_TOKEN`` setting.

    Raises:
        InvalidArgumentError: anything else.
    """
    if not isinstance(token, str):
        raise InvalidArgumentError(f"{name} must be a str, not {type(token).__name__}")
    if not token:
        raise InvalidArgumentError(f"{name} must not be empty: a token is non-empty visible ASCII")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidArgumentError(
            f"{name} is {len(token)} characters long, more than {MAX_TOKEN_LENGTH}"
        )
    bad = next((i for i, char in enumerate(token) if not "!" <= char <= "~"), None)
    if bad is not None:
        what = "whitespace" if token[bad].isspace() else "a character that is not visible ASCII"
        raise InvalidArgumentError(
            f"{name} must be one line of visible ASCII (a JWT such as eyJ...), but character "
            f"{bad} of {len(token)} (index {bad}) is {what}"
        )
    return token
