"""Event files: JSON Lines, one event per line, for ``keylane run --events FILE.jsonl``.

Format: UTF-8 text; each non-blank line is one JSON object in the event schema (docs/journeys.md,
"Events"), validated with :func:`~keylane.journeys.parse_event`; blank lines are ignored. The
events are returned sorted by ``occurred_at`` (stable: events with the same time keep the file's
order, so a subscriber's same-millisecond events keep theirs).

Every problem raises :class:`WorkloadFileError` naming the file and, for a bad line, its number
and the field: ``day.jsonl:12: occurred_at: must be timezone-aware (e.g. end in Z or +00:00)``.

Imports the journeys' event schema and the runtime's event codec only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from keylane.errors import InvalidArgumentError
from keylane.journeys import Event, EventError, parse_event
from keylane.runtime.codec import encode_event

__all__ = ["WorkloadFileError", "load_events_file", "write_events_file"]


class WorkloadFileError(InvalidArgumentError):
    """An event file cannot be read or written, or one of its lines is not a valid event.

    Attributes:
        path: the file.
        line: the 1-based line number of a bad line, else None.
    """

    def __init__(self, path: str | os.PathLike[str], message: str, line: int | None = None) -> None:
        where = f"{os.fspath(path)}:{line}" if line is not None else os.fspath(path)
        super().__init__(f"{where}: {message}")
        self.path = os.fspath(path)
        self.line = line


def load_events_file(path: str | os.PathLike[str]) -> list[Event]:
    """Read and validate every event of a JSON Lines file, sorted by ``occurred_at``.

    Raises:
        WorkloadFileError: the file is missing, a directory, unreadable, not UTF-8, has a line
            that is not JSON or not a valid event, or has no event at all.
    """
    events: list[Event] = []
    try:
        with open(path, "rb") as file:
            for number, raw in enumerate(file, 1):
                line = _decode(path, number, raw)
                if not line.strip():
                    continue
                try:
                    events.append(parse_event(line))
                except EventError as exc:
                    raise WorkloadFileError(path, str(exc), number) from None
    except FileNotFoundError:
        raise WorkloadFileError(path, "no such file") from None
    except IsADirectoryError:
        raise WorkloadFileError(path, "is a directory, not an event file") from None
    except OSError as exc:
        raise WorkloadFileError(path, f"cannot read: {exc.strerror or exc}") from None
    if not events:
        raise WorkloadFileError(path, "has no events (one JSON event per line expected)")
    events.sort(key=lambda event: event.occurred_at)
    return events


def _decode(path: str | os.PathLike[str], number: int, raw: bytes) -> str:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WorkloadFileError(
            path, f"not UTF-8 (byte {exc.start + 1} of the line: {raw[exc.start]:#04x})", number
        ) from None
    if number == 1 and text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark some editors write
    return text


def write_events_file(path: str | os.PathLike[str], events: Iterable[Event]) -> int:
    """Write ``events`` as JSON Lines (replacing the file); return how many were written.

    The file reads back with :func:`load_events_file` as equal events.

    Raises:
        WorkloadFileError: the file cannot be written.
    """
    target = Path(path)
    count = 0
    try:
        with open(target, "wb") as file:
            for event in events:
                if not isinstance(event, Event):
                    raise InvalidArgumentError(
                        f"events: item {count + 1} is a {type(event).__name__}, not an Event"
                    )
                file.write(encode_event(event))
                file.write(b"\n")
                count += 1
    except IsADirectoryError:
        raise WorkloadFileError(path, "is a directory") from None
    except OSError as exc:
        raise WorkloadFileError(path, f"cannot write: {exc.strerror or exc}") from None
    return count
