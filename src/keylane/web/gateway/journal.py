"""The embedded gateway's durable log: one JSON object per line, appended as things happen.

The file is the gateway's memory across restarts: :meth:`Journal.open` returns every record
written so far (the ledger rebuilds itself from them), then appends. One gateway at a time:
the file is locked (``flock``) while open, and a second gateway on it is refused. A last line cut
short by a crash is dropped (and the file truncated to the last whole record); any other bad
line is an error naming the line.

Each record is flushed to the operating system when written, so a gateway process that dies
loses nothing it answered; a machine crash can lose the last records.

Framework-free: imports no web framework.
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import IO, Any

import msgspec

from keylane.errors import InvalidArgumentError

__all__ = ["Journal"]

logger = logging.getLogger(__name__)

_ENCODER = msgspec.json.Encoder()


class Journal:
    """An append-only JSON Lines file of gateway records (``{"type": ..., ...}`` objects)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Args:
        path: the log file; created (with its directory) when missing.
        """
        self._path = Path(path)
        self._file: IO[bytes] | None = None

    @property
    def path(self) -> Path:
        """The log file."""
        return self._path

    def open(self) -> list[dict[str, Any]]:
        """Lock the file, read its records, and get ready to append.

        Returns:
            Every whole record in the file, oldest first.

        Raises:
            InvalidArgumentError: the file is in use by another gateway, cannot be opened, or
                has a malformed record before its last line.
        """
        if self._file is not None:
            raise InvalidArgumentError(f"gateway log {self._path} is already open")
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(self._path, "a+b")  # noqa: SIM115 - kept open until close()
        except OSError as exc:
            raise InvalidArgumentError(f"gateway log {self._path}: {exc.strerror}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise InvalidArgumentError(
                f"gateway log {self._path} is in use by another gateway"
            ) from None
        try:
            records = self._read(handle)
        except BaseException:
            handle.close()
            raise
        self._file = handle
        return records

    def _read(self, handle: IO[bytes]) -> list[dict[str, Any]]:
        handle.seek(0)
        data = handle.read()
        records: list[dict[str, Any]] = []
        start = 0
        lineno = 0
        while start < len(data):
            end = data.find(b"\n", start)
            lineno += 1
            line = data[start:] if end == -1 else data[start:end]
            try:
                record = msgspec.json.decode(line) if line.strip() else None
            except msgspec.DecodeError as exc:
                if end == -1:  # a torn last record: the crash happened mid-write
                    logger.warning(
                        "gateway log %s: dropping a torn last line %d", self._path, lineno
                    )
                    handle.truncate(start)
                    break
                raise InvalidArgumentError(
                    f"gateway log {self._path}, line {lineno}: not JSON ({exc})"
                ) from None
            if record is not None:
                if not isinstance(record, dict) or not isinstance(record.get("type"), str):
                    raise InvalidArgumentError(
                        f"gateway log {self._path}, line {lineno}: not a gateway record"
                    )
                records.append(record)
            if end == -1:  # a whole last record without its newline: add the newline
                handle.write(b"\n")
                handle.flush()
                break
            start = end + 1
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Write one record and flush it to the operating system.

        Raises:
            InvalidArgumentError: the journal is not open.
        """
        if self._file is None:
            raise InvalidArgumentError(f"gateway log {self._path} is not open")
        self._file.write(_ENCODER.encode(record) + b"\n")
        self._file.flush()

    def close(self) -> None:
        """Flush, unlock and close the file. Idempotent."""
        if self._file is not None:
            handle, self._file = self._file, None
            handle.close()  # closing the descriptor releases the flock
