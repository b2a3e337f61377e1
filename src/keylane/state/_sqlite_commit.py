"""The SQLite group commit: the checks and writes of a batch, on the database thread.

Runs inside the caller's ``BEGIN IMMEDIATE`` transaction (the database's single writer is held),
so reading the batch's rows and marks, classifying each commit
(:func:`keylane.state.base.classify`) and writing the ones that pass is race-free without
savepoints. Reads are batched (``IN`` lists; marks by a join on a ``VALUES`` list, which is a
primary-key lookup per pair), writes are one ``executemany`` per table.

Imports the state contract, :mod:`sqlite3` and the SQL of :mod:`keylane.state._sql_sqlite`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from keylane.state import _sql_sqlite as sql
from keylane.state._rows import position_of, position_values
from keylane.state.base import PRUNE_LIMIT, classify
from keylane.state.errors import StateError
from keylane.state.values import Commit, CommitResult, Outcome

__all__ = ["BATCH", "commit_batch", "prune", "read_batch"]

#: Keys (or key-event pairs) per batched read (SQLite allows 32,766 parameters).
BATCH = 500


def commit_batch(
    conn: sqlite3.Connection,
    commits: list[Commit],
    now: float,
    prune_before: float | None,
    stage: Callable[[str], None],
) -> list[CommitResult | StateError]:
    """The group commit's statements, inside the caller's ``BEGIN IMMEDIATE`` transaction."""
    results: list[CommitResult | StateError] = []
    states: list[tuple[Any, ...]] = []
    marks: list[tuple[Any, ...]] = []
    cancels: list[tuple[Any, ...]] = []
    cancel_all: list[tuple[Any, ...]] = []
    sends: list[tuple[Any, ...]] = []
    arms: list[tuple[Any, ...]] = []
    disarms: list[tuple[Any, ...]] = []
    rows, marked_events = read_batch(conn, commits)
    for commit in commits:
        row = rows.get(commit.key)
        version = 0 if row is None else int(row[0])
        stored = None if row is None else position_of(*row[1:5])
        marked = (commit.key, commit.event_id) in marked_events
        verdict = classify(commit, version, stored, marked)
        if verdict is not None:
            results.append(verdict)
            continue
        results.append(CommitResult(Outcome.COMMITTED, version + 1))
        position = commit.position if commit.position is not None else stored
        states.append((commit.key, version + 1, commit.state, *position_values(position), now))
        if commit.event_id is not None:
            marks.append((commit.key, commit.event_id, now))
        if commit.cancel_all_sends:
            cancel_all.append((now, commit.key))
        cancels.extend((now, commit.key, name) for name in commit.cancel_sends)
        sends.extend(
            (s.idempotency_key, s.key, s.channel, s.payload, s.not_before, s.expires_at, now,
             s.not_before)
            for s in commit.sends
        )  # fmt: skip
        arms.extend((t.key, t.timer_id, t.due_at) for t in commit.arm)
        disarms.extend((commit.key, timer_id) for timer_id in commit.disarm)
    stage("state")
    conn.executemany(sql.UPSERT_STATE, states)
    stage("dedupe")
    conn.executemany(
        "INSERT INTO keylane_dedupe (key, event_id, created_at) VALUES (?, ?, ?)", marks
    )
    stage("cancel")
    conn.executemany(sql.CANCEL_ALL, cancel_all)
    conn.executemany(sql.CANCEL_ONE, cancels)
    stage("outbox")
    conn.executemany(sql.INSERT_SEND, sends)
    stage("timers")
    conn.executemany("DELETE FROM keylane_timers WHERE key = ? AND timer_id = ?", disarms)
    conn.executemany(
        "INSERT INTO keylane_timers (key, timer_id, due_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key, timer_id) DO UPDATE SET due_at = excluded.due_at",
        arms,
    )
    if prune_before is not None:
        prune(conn, prune_before, PRUNE_LIMIT)
    return results


def read_batch(
    conn: sqlite3.Connection, commits: list[Commit]
) -> tuple[dict[str, tuple[Any, ...]], set[tuple[str, str | None]]]:
    """The batch's state rows (version and position) and its already marked events."""
    rows: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(commits), BATCH):
        keys = [c.key for c in commits[start : start + BATCH]]
        marks = ", ".join("?" * len(keys))
        for row in conn.execute(sql.SELECT_VERSIONS.format(marks=marks), keys):
            rows[row[0]] = row[1:]
    events = [(c.key, c.event_id) for c in commits if c.event_id is not None]
    marked: set[tuple[str, str | None]] = set()
    for start in range(0, len(events), BATCH):
        chunk = events[start : start + BATCH]
        values = ", ".join("(?, ?)" for _ in chunk)
        args = [part for event in chunk for part in event]
        marked.update(conn.execute(sql.SELECT_MARKED.format(values=values), args))
    return rows, marked


def prune(conn: sqlite3.Connection, before: float, limit: int) -> int:
    """Delete up to ``limit`` dedupe marks created before ``before``; how many went."""
    cursor = conn.execute(
        "DELETE FROM keylane_dedupe WHERE (key, event_id) IN ("
        " SELECT key, event_id FROM keylane_dedupe WHERE created_at < ?"
        " ORDER BY created_at LIMIT ?)",
        (before, limit),
    )
    return cursor.rowcount
