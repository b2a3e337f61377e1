"""The PostgreSQL group commit: one transaction of a few statements for any batch size.

Lock the batch's existing state rows in key order, read their dedupe marks, classify each
commit (:func:`keylane.state.base.classify`), insert new keys (a key created meanwhile by another
process is re-read and classified), then one statement (:data:`sql.WRITE`, data-modifying CTEs
over ``unnest``-ed arrays) updates the other states and writes the marks, cancels, sends and
timers. With the caller's BEGIN and COMMIT that is five round trips for any batch size (six
when it creates keys).

Imports the state contract and the SQL of :mod:`keylane.state._sql_postgres`; the caller
(:mod:`keylane.state.postgres`) owns the connection, the transaction and the errors.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from keylane.state import _sql_postgres as sql
from keylane.state._rows import position_of, position_values
from keylane.state.base import PRUNE_LIMIT, classify
from keylane.state.errors import StateError
from keylane.state.values import Commit, CommitResult, Outcome, Position

if TYPE_CHECKING:
    import asyncpg
    from asyncpg.pool import PoolConnectionProxy

__all__ = ["Conn", "commit_batch", "effect_columns", "read_rows", "state_columns"]

Conn: TypeAlias = "PoolConnectionProxy[asyncpg.Record]"


async def read_rows(
    conn: Conn, commits: Sequence[Commit]
) -> tuple[dict[str, tuple[int, Position | None]], set[tuple[str, str]]]:
    """Lock the commits' existing state rows (key order) and read their dedupe marks."""
    rows = await conn.fetch(sql.LOCK_STATES, [c.key for c in commits])
    stored = {r[0]: (int(r[1]), position_of(*r[2:6])) for r in rows}
    events = [(c.key, c.event_id) for c in commits if c.event_id is not None]
    marked: set[tuple[str, str]] = set()
    if events:
        found = await conn.fetch(sql.MARKED, [k for k, _ in events], [e for _, e in events])
        marked = {(r[0], r[1]) for r in found}
    return stored, marked


async def commit_batch(
    conn: Conn,
    commits: list[Commit],
    now: float,
    prune_before: float | None,
    stage: Callable[[str], None],
) -> list[CommitResult | StateError]:
    """The group commit's statements, inside the caller's transaction; results in input order."""
    ordered = sorted(commits, key=lambda c: c.key)
    stored, marked = await read_rows(conn, ordered)
    verdicts: dict[str, CommitResult | StateError] = {}
    writes: list[tuple[Commit, int, Position | None]] = []
    for commit in ordered:
        version, position = stored.get(commit.key, (0, None))
        verdict = classify(commit, version, position, (commit.key, commit.event_id) in marked)
        if verdict is None:
            writes.append((commit, version, position))
        else:
            verdicts[commit.key] = verdict
    new = [w for w in writes if w[0].key not in stored]
    if new:
        columns = state_columns(new, with_version=False)
        inserted = {r[0] for r in await conn.fetch(sql.INSERT_STATES, *columns, now)}
        raced = [w[0] for w in new if w[0].key not in inserted]
        if raced:  # created by another process since the lock read: re-read, classify
            again, again_marked = await read_rows(conn, raced)
            for commit in raced:
                version, position = again[commit.key]
                mark = (commit.key, commit.event_id) in again_marked
                verdict = classify(commit, version, position, mark)
                assert verdict is not None  # stored version >= 1 != expected 0
                verdicts[commit.key] = verdict
            writes = [w for w in writes if w[0].key not in verdicts]
    old = [w for w in writes if w[0].key in stored]
    for commit, version, _ in writes:
        verdicts[commit.key] = CommitResult(Outcome.COMMITTED, version + 1)
    done = [w[0] for w in writes]
    if done:
        updated = await conn.fetchval(
            sql.WRITE, *state_columns(old, with_version=True), now, *effect_columns(done)
        )
        if updated != len(old):  # the rows are locked: cannot happen
            raise StateError(f"PostgreSQL state store: updated {updated} of {len(old)} locked rows")
    # Every write of the batch is done (and undone by the caller's rollback if this raises).
    for name in ("state", "dedupe", "cancel", "outbox", "timers"):
        stage(name)
    if prune_before is not None:
        await conn.execute(sql.PRUNE, prune_before, PRUNE_LIMIT)
    return [verdicts[c.key] for c in commits]


def effect_columns(done: list[Commit]) -> list[list[Any]]:
    """The ``unnest`` arrays of :data:`sql.WRITE` after the state columns and ``now``."""
    marks = [(c.key, c.event_id) for c in done if c.event_id is not None]
    some = [(c.key, name) for c in done for name in c.cancel_sends]
    sends = [s for c in done for s in c.sends]
    disarms = [(c.key, t) for c in done for t in c.disarm]
    arms = [t for c in done for t in c.arm]
    return [
        [k for k, _ in marks],
        [e for _, e in marks],
        [c.key for c in done if c.cancel_all_sends],
        [k for k, _ in some],
        [n for _, n in some],
        [s.idempotency_key for s in sends],
        [s.key for s in sends],
        [s.channel for s in sends],
        [s.payload for s in sends],
        [s.not_before for s in sends],
        [s.expires_at for s in sends],
        [k for k, _ in disarms],
        [t for _, t in disarms],
        [t.key for t in arms],
        [t.timer_id for t in arms],
        [t.due_at for t in arms],
    ]


def state_columns(
    writes: list[tuple[Commit, int, Position | None]], *, with_version: bool
) -> list[list[Any]]:
    """The ``unnest`` arrays of state rows: key, [version,] state, the position's four parts."""
    positions = [
        position_values(c.position if c.position is not None else stored) for c, _, stored in writes
    ]
    columns: list[list[Any]] = [[c.key for c, _, _ in writes]]
    if with_version:
        columns.append([version + 1 for _, version, _ in writes])
    columns.append([c.state for c, _, _ in writes])
    columns.extend([p[i] for p in positions] for i in range(4))
    return columns
