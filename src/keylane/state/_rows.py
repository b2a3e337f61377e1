"""Column lists and row converters shared by the SQL backends.

Rows are SQLite tuples or asyncpg records (both indexable; typed ``Any`` for that reason).

Imports only this package's values.
"""

from __future__ import annotations

from typing import Any

from keylane.state.values import ClaimedSend, Position, SendRecord, SendStatus, Snapshot

__all__ = [
    "CLAIMED_COLUMNS",
    "RECORD_COLUMNS",
    "claimed_of",
    "position_of",
    "position_values",
    "record_of",
    "snapshot_of",
]

#: ``SELECT`` list of a :class:`SendRecord`, in field order.
RECORD_COLUMNS = (
    "idempotency_key, key, channel, payload, status, attempts, created_at, not_before, "
    "expires_at, owner, lease_until, retry_at, dispatched_at, finished_at, detail"
)
#: ``RETURNING`` list of a :class:`ClaimedSend`, in field order.
CLAIMED_COLUMNS = (
    "idempotency_key, key, channel, payload, not_before, expires_at, created_at, attempts, "
    "owner, lease_until"
)


def position_of(partition: Any, ledger: Any, entry: Any, batch: Any) -> Position | None:
    """The position stored in four nullable columns."""
    if partition is None:
        return None
    return Position(int(partition), int(ledger), int(entry), int(batch))


def position_values(position: Position | None) -> tuple[int | None, ...]:
    """The four column values of ``position`` (NULLs for none)."""
    if position is None:
        return (None, None, None, None)
    return (position.partition, position.ledger, position.entry, position.batch)


def snapshot_of(key: str, row: Any) -> Snapshot:
    """A snapshot from ``(version, state, pos_partition, pos_ledger, pos_entry, pos_batch)``."""
    if row is None:
        return Snapshot(key, 0, None, None)
    return Snapshot(key, int(row[0]), bytes(row[1]), position_of(*row[2:6]))


def _time(value: Any) -> float | None:
    # SQLite hands back an integral REAL as int; the contract's times are floats.
    return None if value is None else float(value)


def record_of(row: Any) -> SendRecord:
    """A ledger record from a row selected with :data:`RECORD_COLUMNS`."""
    return SendRecord(
        row[0],
        row[1],
        row[2],
        bytes(row[3]),
        SendStatus(row[4]),
        int(row[5]),
        float(row[6]),
        float(row[7]),
        _time(row[8]),
        row[9],
        _time(row[10]),
        _time(row[11]),
        _time(row[12]),
        _time(row[13]),
        row[14],
    )


def claimed_of(row: Any) -> ClaimedSend:
    """A claimed send from a row returned with :data:`CLAIMED_COLUMNS`."""
    return ClaimedSend(
        row[0],
        row[1],
        row[2],
        bytes(row[3]),
        float(row[4]),
        _time(row[5]),
        float(row[6]),
        int(row[7]),
        row[8],
        float(row[9]),
    )
