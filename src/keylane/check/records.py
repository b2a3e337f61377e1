"""History records: what one handler attempt and one publication look like, in memory and on disk.

A history is a set of JSON Lines files. Each line is one object:

* an attempt: ``{"key", "consumer", "message_id", "seq", "attempt", "start", "end", "outcome"}``
  (``seq`` and ``attempt`` integers, ``start`` and ``end`` float seconds on one monotonic clock),
  optionally ``"redelivery_count"`` (the broker's count of the delivery the attempt ran on) and,
  for a *decision* (keylane's runtime: load state, decide, commit with a compare-and-set),
  ``"event_id"``, ``"read_version"``, ``"version"``, ``"loaded"``, ``"committed"`` and
  ``"commit_started"``;
* a publication: ``{"published": true, "key", "seq", "message_id"}``.

Unknown fields are ignored, so writers may add their own. Lines are strict JSON
(:mod:`keylane.check.strict_json`: no NaN, no repeated field, 64-bit integers, at most
:data:`~keylane.check.strict_json.MAX_LINE_BYTES` per line) and strings valid Unicode.
``docs/checker.md`` is the reference.

This module imports only the standard library and :mod:`keylane.errors`; no backend.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from typing import IO

from keylane.check.strict_json import (
    MAX_LINE_BYTES,
    StrictJSONError,
    loads,
    lone_surrogate,
    read_lines,
    short_repr,
)
from keylane.errors import InvalidArgumentError

__all__ = [
    "CANCELLED",
    "DEDUPE",
    "DROPPED",
    "ERROR",
    "FENCED",
    "OK",
    "SEQ_PROPERTY",
    "TIMEOUT",
    "Attempt",
    "History",
    "HistoryFormatError",
    "Published",
    "encode_record",
    "parse_record",
    "read_counters",
    "read_history",
    "write_history",
    "write_records",
]

#: Message property carrying the per-key sequence number assigned at publish.
SEQ_PROPERTY = "seq"

#: Outcome of an attempt whose handler returned.
OK = "ok"
#: Outcome of an attempt whose handler raised.
ERROR = "error"
#: Outcome of an attempt cancelled by a handler timeout (``TimeoutError`` or ``CancelledError``).
TIMEOUT = "timeout"
#: Outcome a strategy may record for an attempt it cancelled for another reason (shutdown).
CANCELLED = "cancelled"
#: Outcome recorded for a message lanes dropped without running it because its consumer closed
#: (``start == end``: it never ran, so it overlaps nothing; the broker redelivers it).
DROPPED = "dropped"
#: Outcome of a decision that committed nothing because its event was already decided (the
#: event id was marked, or its broker position was at or below the key's high-water mark).
DEDUPE = "dedupe"
#: Outcome of a decision whose compare-and-set failed: someone committed the key since its load.
FENCED = "fenced"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One run of a handler on one message.

    Attributes:
        key: the message's key (the unit of exclusivity and order).
        consumer: name of the consumer that ran the handler.
        message_id: the broker's message id, as a string.
        seq: the per-key sequence number assigned at publish (message property ``seq``).
        attempt: 1 for the first run of this message, 2 for the first retry or redelivery, ...
        start: when the handler was called, seconds on the host's monotonic clock.
        end: when it returned, raised or was cancelled, on the same clock.
        outcome: ``"ok"``, ``"error"``, ``"timeout"``, ``"cancelled"`` or another word; only
            ``"ok"`` counts as a successful completion.
        redelivery_count: the message's ``redelivery_count`` when the attempt ran (> 0: the
            broker redelivered it), or ``None`` when not recorded (optional in the file).
        event_id: the event's id, for decisions (a dedupe must be backed by a commit of it).
        read_version: the state version a decision loaded.
        version: the version a committed decision wrote (``read_version + 1``).
        loaded: when a decision loaded the state (same clock as ``start``).
        committed: when a committed decision's commit returned (same clock).
        commit_started: when a committed decision handed its commit to the store (same clock;
            optional): its write became visible to others somewhere in
            ``[commit_started, committed]``.
    """

    key: str
    consumer: str
    message_id: str
    seq: int
    attempt: int
    start: float
    end: float
    outcome: str
    redelivery_count: int | None = None
    event_id: str | None = None
    read_version: int | None = None
    version: int | None = None
    loaded: float | None = None
    committed: float | None = None
    commit_started: float | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """One message as its producer published it: the history of what should be processed."""

    key: str
    seq: int
    message_id: str


@dataclass
class History:
    """Everything recorded: attempts and publications, in no particular order.

    Attributes:
        attempts: every handler attempt, from every consumer.
        published: every publication; empty when publications were not recorded (then the
            checker cannot find lost messages).
        skipped: malformed lines that :func:`read_history` skipped (``skip_malformed=True``).
        empty: files :func:`read_history` read no record from (empty, blank or every line
            skipped), e.g. the file of a writer that crashed before its first flush.
    """

    attempts: list[Attempt] = field(default_factory=list)
    published: list[Published] = field(default_factory=list)
    skipped: list[HistoryFormatError] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)

    @classmethod
    def merge(cls, *histories: History) -> History:
        """Return one history holding the records of all ``histories`` (e.g. one per consumer)."""
        merged = cls()
        for history in histories:
            merged.attempts.extend(history.attempts)
            merged.published.extend(history.published)
            merged.skipped.extend(history.skipped)
            merged.empty.extend(history.empty)
        return merged


class HistoryFormatError(InvalidArgumentError):
    """A history line is not a valid record.

    Attributes:
        path: the file, or ``"<memory>"`` for a line parsed from a string.
        line_no: 1-based line number.
        reason: what is wrong with the line.
    """

    def __init__(self, path: str | Path, line_no: int, reason: str) -> None:
        super().__init__(f"{path}:{line_no}: {reason}")
        self.path = str(path)
        self.line_no = line_no
        self.reason = reason

    def __reduce__(self) -> tuple[type[HistoryFormatError], tuple[str, int, str]]:
        return (type(self), (self.path, self.line_no, self.reason))


def encode_record(record: Attempt | Published) -> str:
    """Return the JSON line (without newline) for one record.

    Hand-formatted instead of ``json.dumps`` because it is about three times faster and the
    recorder writes tens of thousands of records per second in simulations.

    Raises:
        InvalidArgumentError: a time is not finite (JSON cannot carry it).
    """
    if isinstance(record, Attempt):
        start, end = record.start, record.end
        if not (math.isfinite(start) and math.isfinite(end)):
            raise InvalidArgumentError(f"attempt times must be finite, got {start!r}..{end!r}")
        return (
            f'{{"key":{_quote(record.key)},"consumer":{_quote(record.consumer)},'
            f'"message_id":{_quote(record.message_id)},"seq":{int(record.seq)},'
            f'"attempt":{int(record.attempt)},"start":{float(start)!r},"end":{float(end)!r},'
            f'"outcome":{_quote(record.outcome)}'
            + (
                ""
                if record.redelivery_count is None
                else f',"redelivery_count":{int(record.redelivery_count)}'
            )
            + _decision_fields(record)
            + "}"
        )
    return (
        f'{{"published":true,"key":{_quote(record.key)},"seq":{int(record.seq)},'
        f'"message_id":{_quote(record.message_id)}}}'
    )


def _decision_fields(record: Attempt) -> str:
    parts = []
    if record.event_id is not None:
        parts.append(f',"event_id":{_quote(record.event_id)}')
    for name in ("read_version", "version"):
        value = getattr(record, name)
        if value is not None:
            parts.append(f',"{name}":{int(value)}')
    for name in ("loaded", "committed", "commit_started"):
        value = getattr(record, name)
        if value is not None:
            if not math.isfinite(value):
                raise InvalidArgumentError(f"attempt {name} must be finite, got {value!r}")
            parts.append(f',"{name}":{float(value)!r}')
    return "".join(parts)


def _optional_int(obj: dict[str, object], name: str) -> int | None:
    if obj.get(name) is None:
        return None
    value = _int(obj, name)
    if value < 0:
        raise ValueError(f"field {name!r} must be >= 0, got {value}")
    return value


def _optional_seconds(obj: dict[str, object], name: str) -> float | None:
    return None if obj.get(name) is None else _seconds(obj, name)


def _str(obj: dict[str, object], name: str, escaped: bool) -> str:
    value = obj.get(name)
    if not isinstance(value, str):
        raise ValueError(_bad(obj, name, "a string"))
    # A lone surrogate can only come from a \u escape (the bytes were decoded as strict UTF-8).
    if escaped and (surrogate := lone_surrogate(value)) is not None:
        raise ValueError(f"field {name!r} is not valid Unicode (lone surrogate {surrogate})")
    return value


def _int(obj: dict[str, object], name: str) -> int:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(_bad(obj, name, "an integer"))
    return value


def _seconds(obj: dict[str, object], name: str) -> float:
    value = obj.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(_bad(obj, name, "a finite number of seconds"))
    return float(value)


def _bad(obj: dict[str, object], name: str, expected: str) -> str:
    if name not in obj:
        return f"missing field {name!r}"
    return f"field {name!r} must be {expected}, got {short_repr(obj[name])}"


def _parse(line: str) -> Attempt | Published:
    obj = loads(line)  # StrictJSONError is a ValueError
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    escaped = "\\u" in line
    if "published" in obj:
        if obj["published"] is not True:
            raise ValueError(f"field 'published' must be true, got {short_repr(obj['published'])}")
        return Published(
            key=_str(obj, "key", escaped),
            seq=_int(obj, "seq"),
            message_id=_str(obj, "message_id", escaped),
        )
    attempt = _int(obj, "attempt")
    if attempt < 1:
        raise ValueError(f"field 'attempt' must be >= 1, got {attempt}")
    start = _seconds(obj, "start")
    end = _seconds(obj, "end")
    if end < start:
        raise ValueError(f"'end' ({end!r}) is before 'start' ({start!r})")
    outcome = _str(obj, "outcome", escaped)
    if not outcome:
        raise ValueError("field 'outcome' must not be empty")
    redelivery_count = None
    if obj.get("redelivery_count") is not None:
        redelivery_count = _int(obj, "redelivery_count")
        if redelivery_count < 0:
            raise ValueError(f"field 'redelivery_count' must be >= 0, got {redelivery_count}")
    return Attempt(
        key=_str(obj, "key", escaped),
        consumer=_str(obj, "consumer", escaped),
        message_id=_str(obj, "message_id", escaped),
        seq=_int(obj, "seq"),
        attempt=attempt,
        start=start,
        end=end,
        outcome=outcome,
        redelivery_count=redelivery_count,
        event_id=None if obj.get("event_id") is None else _str(obj, "event_id", escaped),
        read_version=_optional_int(obj, "read_version"),
        version=_optional_int(obj, "version"),
        loaded=_optional_seconds(obj, "loaded"),
        committed=_optional_seconds(obj, "committed"),
        commit_started=_optional_seconds(obj, "commit_started"),
    )


def parse_record(
    line: str, *, path: str | Path = "<memory>", line_no: int = 1
) -> Attempt | Published:
    """Parse one history line.

    Raises:
        HistoryFormatError: the line is not a JSON object with the fields of an attempt or a
            publication, of the right types (``end`` must not precede ``start``).
    """
    try:
        return _parse(line)
    except ValueError as exc:
        raise HistoryFormatError(path, line_no, str(exc)) from None


def read_history(
    paths: Iterable[str | Path] | str | Path, *, skip_malformed: bool = False
) -> History:
    """Read and merge history files (one per consumer process, typically).

    Blank lines are ignored. A path given twice is read once, so a shell glob that overlaps an
    explicit name does not double every record. Files that hold no record are listed in
    :attr:`History.empty`.

    Args:
        paths: the files; a single path is accepted too.
        skip_malformed: collect malformed lines in :attr:`History.skipped` instead of raising.
            Useful for a file whose writer crashed in the middle of its last line.

    Raises:
        HistoryFormatError: a line is malformed (unless ``skip_malformed``); it names the file
            and the 1-based line number.
        OSError: a file cannot be opened or read (``FileNotFoundError``, ...).
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    history = History()
    seen: set[Path] = set()
    for path in paths:
        resolved = Path(path).resolve()
        if resolved not in seen:
            seen.add(resolved)
            _read_file(path, history, skip_malformed)
    return history


def _read_file(path: str | Path, history: History, skip_malformed: bool) -> None:
    records = 0
    with open(path, "rb") as stream:
        for line_no, raw in read_lines(stream, MAX_LINE_BYTES):
            try:
                if raw is None:
                    raise ValueError(f"line longer than {MAX_LINE_BYTES:,} bytes")
                line = raw.decode("utf-8")
                if not line.strip():
                    continue
                record = _parse(line)
            except UnicodeDecodeError as exc:
                error = HistoryFormatError(path, line_no, f"not UTF-8 text ({exc.reason})")
            except ValueError as exc:
                error = HistoryFormatError(path, line_no, str(exc))
            else:
                records += 1
                if isinstance(record, Attempt):
                    history.attempts.append(record)
                else:
                    history.published.append(record)
                continue
            if not skip_malformed:
                raise error
            history.skipped.append(error)
    if not records:
        history.empty.append(str(path))


def read_counters(path: str | Path) -> dict[str, int]:
    """Read final per-key counters: a JSON object mapping each key to an integer.

    The file is strict JSON, as history lines are (no NaN, no key given twice, integers of
    64 bits), with keys that are valid Unicode.

    Raises:
        HistoryFormatError: the file is not such an object (line number 1 when the problem
            has no position, e.g. a bad value).
        OSError: the file cannot be read.
    """
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = data.count(b"\n", 0, exc.start) + 1
        raise HistoryFormatError(path, line_no, f"not UTF-8 text ({exc.reason})") from None
    try:
        obj = loads(text)
    except StrictJSONError as exc:
        raise HistoryFormatError(path, exc.line, exc.reason) from None
    if not isinstance(obj, dict):
        raise HistoryFormatError(path, 1, "expected a JSON object mapping keys to counters")
    for key, value in obj.items():
        if isinstance(value, bool) or not isinstance(value, int):
            raise HistoryFormatError(
                path, 1, f"counter of key {short_repr(key)} is not an integer: {short_repr(value)}"
            )
        if (surrogate := lone_surrogate(key)) is not None:
            raise HistoryFormatError(
                path,
                1,
                f"key {short_repr(key)} is not valid Unicode (lone surrogate {surrogate})",
            )
    return obj


def write_history(history: History, path: str | Path) -> None:
    """Write ``history`` to ``path`` as JSON Lines (publications first), replacing the file."""
    with open(path, "w", encoding="utf-8") as stream:
        write_records(stream, history.published)
        write_records(stream, history.attempts)


def write_records(stream: IO[str], records: Iterable[Attempt | Published]) -> None:
    """Append ``records`` to a text stream, one JSON line each."""
    stream.write("".join(f"{encode_record(record)}\n" for record in records))
