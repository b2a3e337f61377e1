"""The SQL statements of :mod:`keylane.state.postgres` (asyncpg ``$n`` placeholders).

Batches pass one array per column to ``unnest``, so a group commit costs the same few
statements whatever its size. Imports only the shared schema constants.
"""

from __future__ import annotations

from keylane.state._rows import CLAIMED_COLUMNS
from keylane.state._schema import STATUSES_SQL

__all__ = [
    "CLAIM",
    "CLAIM_CANDIDATES",
    "FINISH",
    "INSERT_STATES",
    "LOCK_KEYS",
    "LOCK_STATES",
    "MARKED",
    "NO_OTHER_DISPATCHING",
    "PRUNE",
    "UPDATE_STATES",
    "WRITE",
]

LOCK_STATES = """
SELECT key, version, pos_partition, pos_ledger, pos_entry, pos_batch
FROM keylane_state WHERE key = ANY($1::text[]) ORDER BY key FOR UPDATE
"""
MARKED = """
SELECT d.key, d.event_id FROM keylane_dedupe d
JOIN unnest($1::text[], $2::text[]) AS i(key, event_id) USING (key, event_id)
"""
INSERT_STATES = """
INSERT INTO keylane_state
    (key, version, state, pos_partition, pos_ledger, pos_entry, pos_batch, updated_at)
SELECT k, 1, s, pp, pl, pe, pb, $7
FROM unnest($1::text[], $2::bytea[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[])
    AS i(k, s, pp, pl, pe, pb)
ON CONFLICT (key) DO NOTHING
RETURNING key
"""
UPDATE_STATES = """
UPDATE keylane_state AS t
SET version = i.v, state = i.s, pos_partition = i.pp, pos_ledger = i.pl, pos_entry = i.pe,
    pos_batch = i.pb, updated_at = $8
FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::bigint[], $5::bigint[], $6::bigint[],
            $7::bigint[]) AS i(k, v, s, pp, pl, pe, pb)
WHERE t.key = i.k AND t.version = i.v - 1
"""
PRUNE = """
DELETE FROM keylane_dedupe WHERE ctid = ANY(ARRAY(
    SELECT ctid FROM keylane_dedupe WHERE created_at < $1 ORDER BY created_at LIMIT $2))
"""
NO_OTHER_DISPATCHING = """NOT EXISTS (
    SELECT 1 FROM keylane_outbox d
    WHERE d.key = o.key AND d.status = 'DISPATCHING' AND d.idempotency_key <> o.idempotency_key)"""
CLAIM_CANDIDATES = f"""
SELECT o.idempotency_key, o.key FROM keylane_outbox o
WHERE o.status IN {STATUSES_SQL} AND o.ready_at <= $1 AND {NO_OTHER_DISPATCHING}
ORDER BY o.ready_at, o.seq LIMIT $2
FOR UPDATE OF o SKIP LOCKED
"""
LOCK_KEYS = """
SELECT k FROM unnest($1::text[]) AS k WHERE pg_try_advisory_xact_lock($2::int, hashtext(k))
"""
CLAIM = f"""
UPDATE keylane_outbox AS o
SET status = 'DISPATCHING', owner = $2, lease_until = $3, ready_at = $3,
    attempts = o.attempts + 1, retry_at = NULL, dispatched_at = $4
WHERE o.idempotency_key = ANY($1::text[]) AND o.status IN {STATUSES_SQL} AND o.ready_at <= $4
  AND {NO_OTHER_DISPATCHING}
RETURNING {CLAIMED_COLUMNS}
"""
FINISH = """
UPDATE keylane_outbox
SET status = $1, not_before = COALESCE($2::float8, not_before), retry_at = $3::float8,
    ready_at = CASE WHEN $3::float8 IS NOT NULL THEN GREATEST(not_before, $3::float8)
                    ELSE COALESCE($2::float8, not_before) END,
    finished_at = $4::float8, detail = $5, lease_until = NULL
WHERE idempotency_key = $6 AND status = 'DISPATCHING' AND owner = $7 AND attempts = $8
"""

#: Every write of a group commit but new keys, in one statement: $1-$7 the existing states
#: (key, new version, state, position), $8 now, then the marks, cancels, sends and timers.
#: All parts see the statement's snapshot, so a cancel never touches a send this statement
#: inserts (cancels apply before inserts, as the contract says). Returns the updated count.
WRITE = f"""
WITH updated AS (
    {UPDATE_STATES.strip()}
    RETURNING 1
), marks AS (
    INSERT INTO keylane_dedupe (key, event_id, created_at)
    SELECT k, e, $8 FROM unnest($9::text[], $10::text[]) AS m(k, e)
), cancel_all AS (
    UPDATE keylane_outbox
    SET status = 'CANCELLED', finished_at = $8, detail = 'cancelled by a commit'
    WHERE key = ANY($11::text[]) AND status IN ('PENDING', 'RETRY')
), cancel_some AS (
    UPDATE keylane_outbox AS o
    SET status = 'CANCELLED', finished_at = $8, detail = 'cancelled by a commit'
    FROM unnest($12::text[], $13::text[]) AS c(k, name)
    WHERE o.idempotency_key = c.name AND o.key = c.k AND o.status IN ('PENDING', 'RETRY')
      AND NOT o.key = ANY($11::text[])
), sends AS (
    INSERT INTO keylane_outbox
        (idempotency_key, key, channel, payload, status, not_before, expires_at, created_at,
         ready_at)
    SELECT name, k, ch, p, 'PENDING', nb, ex, $8, nb
    FROM unnest($14::text[], $15::text[], $16::text[], $17::bytea[], $18::float8[],
                $19::float8[]) AS s(name, k, ch, p, nb, ex)
    ON CONFLICT (idempotency_key) DO NOTHING
), disarmed AS (
    DELETE FROM keylane_timers AS t USING unnest($20::text[], $21::text[]) AS d(k, id)
    WHERE t.key = d.k AND t.timer_id = d.id
), armed AS (
    INSERT INTO keylane_timers (key, timer_id, due_at)
    SELECT * FROM unnest($22::text[], $23::text[], $24::float8[])
    ON CONFLICT (key, timer_id) DO UPDATE SET due_at = excluded.due_at
)
SELECT count(*) FROM updated
"""
