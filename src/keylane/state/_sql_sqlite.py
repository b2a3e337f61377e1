"""The SQL statements of :mod:`keylane.state.sqlite` (``?`` and ``:name`` placeholders).

Imports only the shared schema constants.
"""

from __future__ import annotations

from keylane.state._rows import CLAIMED_COLUMNS
from keylane.state._schema import STATUSES_SQL

__all__ = [
    "CANCEL_ALL",
    "CANCEL_ONE",
    "CLAIM_CANDIDATES",
    "CLAIM_ONE",
    "FINISH",
    "INSERT_SEND",
    "SELECT_MARKED",
    "SELECT_VERSIONS",
    "UPSERT_STATE",
]

UPSERT_STATE = """
INSERT INTO keylane_state
    (key, version, state, pos_partition, pos_ledger, pos_entry, pos_batch, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (key) DO UPDATE SET
    version = excluded.version, state = excluded.state,
    pos_partition = excluded.pos_partition, pos_ledger = excluded.pos_ledger,
    pos_entry = excluded.pos_entry, pos_batch = excluded.pos_batch,
    updated_at = excluded.updated_at
"""
INSERT_SEND = """
INSERT INTO keylane_outbox
    (idempotency_key, key, channel, payload, status, not_before, expires_at, created_at, ready_at)
VALUES (?, ?, ?, ?, 'PENDING', ?, ?, ?, ?)
ON CONFLICT (idempotency_key) DO NOTHING
"""
CANCEL_ALL = """
UPDATE keylane_outbox SET status = 'CANCELLED', finished_at = ?, detail = 'cancelled by a commit'
WHERE key = ? AND status IN ('PENDING', 'RETRY')
"""
CANCEL_ONE = """
UPDATE keylane_outbox SET status = 'CANCELLED', finished_at = ?, detail = 'cancelled by a commit'
WHERE key = ? AND idempotency_key = ? AND status IN ('PENDING', 'RETRY')
"""
CLAIM_CANDIDATES = f"""
SELECT o.idempotency_key, o.key FROM keylane_outbox o
WHERE o.status IN {STATUSES_SQL} AND o.ready_at <= ?
  AND NOT EXISTS (
      SELECT 1 FROM keylane_outbox d
      WHERE d.key = o.key AND d.status = 'DISPATCHING' AND d.idempotency_key <> o.idempotency_key
  )
ORDER BY o.ready_at, o.seq
"""
CLAIM_ONE = f"""
UPDATE keylane_outbox
SET status = 'DISPATCHING', owner = ?, lease_until = ?, ready_at = ?, attempts = attempts + 1,
    retry_at = NULL, dispatched_at = ?
WHERE idempotency_key = ?
RETURNING {CLAIMED_COLUMNS}
"""
FINISH = """
UPDATE keylane_outbox
SET status = :status, not_before = coalesce(:not_before, not_before), retry_at = :retry_at,
    ready_at = CASE WHEN :retry_at IS NOT NULL THEN max(not_before, :retry_at)
                    ELSE coalesce(:not_before, not_before) END,
    finished_at = :finished_at, detail = :detail, lease_until = NULL
WHERE idempotency_key = :name AND status = 'DISPATCHING' AND owner = :owner
  AND attempts = :attempt
"""

#: The batch's state rows; ``{marks}`` is one ``?`` per key.
SELECT_VERSIONS = """
SELECT key, version, pos_partition, pos_ledger, pos_entry, pos_batch
FROM keylane_state WHERE key IN ({marks})
"""
#: The batch's already marked events; ``{values}`` is one ``(?, ?)`` per (key, event id).
#: A join on a VALUES list, so each pair is a primary-key lookup (``IN (VALUES ...)`` scans).
SELECT_MARKED = """
WITH batch(key, event_id) AS (VALUES {values})
SELECT d.key, d.event_id FROM batch CROSS JOIN keylane_dedupe d
ON d.key = batch.key AND d.event_id = batch.event_id
"""
