"""Strict JSON for history and counter files: input that is not plain JSON is an error, not a crash.

:func:`loads` is :func:`json.loads` with the rules a file from an unknown writer needs:

* ``NaN``, ``Infinity`` and ``-Infinity`` are rejected (they are not JSON);
* an object naming the same field twice is rejected (which value counts would be a guess);
* integers must fit in 64 bits (a 5,000-digit literal would otherwise raise Python's own
  integer-conversion error, and parsing huge literals is slow);
* nesting deeper than the interpreter's recursion limit is an error, not a ``RecursionError``.

Every failure is a :class:`StrictJSONError` (a ``ValueError``) whose reason says what is wrong,
for the caller to put after ``file:line:``. :func:`read_lines` reads a binary stream line by
line with a bound on the line length, so one enormous line cannot exhaust memory.

This module imports only the standard library.
"""

from __future__ import annotations

import json
import reprlib
from collections.abc import Iterator
from typing import IO

__all__ = [
    "MAX_LINE_BYTES",
    "StrictJSONError",
    "loads",
    "lone_surrogate",
    "read_lines",
    "short_repr",
]

#: Longest accepted line of a history file, newline included (a record is ~150 bytes).
MAX_LINE_BYTES = 1 << 20

_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1
_MAX_INT_CHARS = 20  # "-9223372036854775808"
_SKIP_CHUNK = 1 << 16

_repr = reprlib.Repr()
_repr.maxstring = 60
_repr.maxother = 60
_repr.maxlevel = 2
_repr.maxlist = _repr.maxdict = 4


def short_repr(value: object) -> str:
    """``repr(value)``, shortened for an error message (long strings, deep or long lists)."""
    return _repr.repr(value)


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON (JSON has no NaN or Infinity)")


def _int(literal: str) -> int:
    if len(literal) <= _MAX_INT_CHARS:
        value = int(literal)
        if _INT_MIN <= value <= _INT_MAX:
            return value
    shown = literal if len(literal) <= 24 else f"{literal[:20]}... ({len(literal)} digits)"
    raise ValueError(f"integer {shown} does not fit in 64 bits")


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise ValueError(f"field {short_repr(name)} appears twice")
            seen.add(name)
    return obj


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object, parse_constant=_reject_constant, parse_int=_int
)


class StrictJSONError(ValueError):
    """The text is not strict JSON.

    Attributes:
        reason: what is wrong, e.g. ``not valid JSON (Expecting value at column 5)``.
        line: 1-based line of the problem within the text (1 when the parser cannot tell).
    """

    def __init__(self, reason: str, line: int = 1) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


def loads(text: str) -> object:
    """Parse one JSON document strictly (see the module docstring).

    Raises:
        StrictJSONError: the text is not such a document; its reason says why (``not valid
            JSON (...)``, ``nested too deeply``, ``integer ... does not fit in 64 bits``, ...).
    """
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise StrictJSONError(
            f"not valid JSON ({exc.msg} at column {exc.colno})", exc.lineno
        ) from None
    except RecursionError:
        raise StrictJSONError("not valid JSON (nested too deeply)") from None
    except ValueError as exc:  # from the hooks above
        raise StrictJSONError(str(exc)) from None


def lone_surrogate(text: str) -> str | None:
    """The first lone surrogate in ``text`` as ``U+XXXX`` (not valid Unicode), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"U+{ord(text[exc.start]):04X}"
    return None


def read_lines(
    stream: IO[bytes], max_bytes: int = MAX_LINE_BYTES
) -> Iterator[tuple[int, bytes | None]]:
    """Yield ``(line_no, line)`` for each line of a binary stream, 1-based.

    A line longer than ``max_bytes`` (newline included) is yielded as ``None`` and the rest of
    it is skipped without being held in memory.
    """
    line_no = 0
    while True:
        raw = stream.readline(max_bytes + 1)
        if not raw:
            return
        line_no += 1
        if len(raw) <= max_bytes:
            yield line_no, raw
            continue
        while raw and not raw.endswith(b"\n"):
            raw = stream.readline(_SKIP_CHUNK)
        yield line_no, None
