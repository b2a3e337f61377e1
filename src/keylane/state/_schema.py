"""The SQL schema of the SQLite and PostgreSQL stores, as numbered migrations.

``MIGRATIONS[n]`` takes a store from schema version ``n - 1`` to ``n``; version 0 is an empty
database. Both backends run the missing migrations in one transaction on open and record the
result in ``keylane_schema``. Add a migration by appending version ``n + 1`` to both dictionaries
and bumping :data:`keylane.state.base.SCHEMA_VERSION`; never edit a released one.

Tables (the same columns on both backends):

* ``keylane_state``: one row per key: ``version``, ``state``, the high-water position
  (``pos_partition``, ``pos_ledger``, ``pos_entry``, ``pos_batch``; NULL when none),
  ``updated_at``.
* ``keylane_dedupe``: ``(key, event_id)`` marks with ``created_at`` (pruned by age).
* ``keylane_outbox``: one row per idempotency key (unique), ``seq`` gives insertion order.
  ``ready_at`` is when an active row becomes claimable: ``not_before`` for PENDING,
  ``max(not_before, retry_at)`` for RETRY, ``lease_until`` for DISPATCHING; the claim index is
  ``(status, ready_at)``.
* ``keylane_timers``: ``(key, timer_id)`` unique, ``due_at`` indexed.

Imports nothing.
"""

from __future__ import annotations

__all__ = ["POSTGRES_MIGRATIONS", "SQLITE_MIGRATIONS", "STATUSES_SQL"]

#: The active statuses as an SQL list (the claim and stats queries use it).
STATUSES_SQL = "('PENDING', 'RETRY', 'DISPATCHING')"

SQLITE_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE keylane_state (
            key TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            state BLOB NOT NULL,
            pos_partition INTEGER,
            pos_ledger INTEGER,
            pos_entry INTEGER,
            pos_batch INTEGER,
            updated_at REAL NOT NULL
        )""",
        """CREATE TABLE keylane_dedupe (
            key TEXT NOT NULL,
            event_id TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (key, event_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX keylane_dedupe_age ON keylane_dedupe (created_at)",
        """CREATE TABLE keylane_outbox (
            seq INTEGER PRIMARY KEY,
            idempotency_key TEXT NOT NULL UNIQUE,
            key TEXT NOT NULL,
            channel TEXT NOT NULL,
            payload BLOB NOT NULL,
            status TEXT NOT NULL,
            not_before REAL NOT NULL,
            expires_at REAL,
            created_at REAL NOT NULL,
            ready_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            owner TEXT,
            lease_until REAL,
            retry_at REAL,
            dispatched_at REAL,
            finished_at REAL,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX keylane_outbox_ready ON keylane_outbox (status, ready_at)",
        "CREATE INDEX keylane_outbox_key ON keylane_outbox (key, status)",
        """CREATE TABLE keylane_timers (
            key TEXT NOT NULL,
            timer_id TEXT NOT NULL,
            due_at REAL NOT NULL,
            PRIMARY KEY (key, timer_id)
        ) WITHOUT ROWID""",
        "CREATE INDEX keylane_timers_due ON keylane_timers (due_at)",
    ),
}

POSTGRES_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE keylane_state (
            key TEXT PRIMARY KEY,
            version BIGINT NOT NULL,
            state BYTEA NOT NULL,
            pos_partition BIGINT,
            pos_ledger BIGINT,
            pos_entry BIGINT,
            pos_batch BIGINT,
            updated_at DOUBLE PRECISION NOT NULL
        )""",
        """CREATE TABLE keylane_dedupe (
            key TEXT NOT NULL,
            event_id TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (key, event_id)
        )""",
        "CREATE INDEX keylane_dedupe_age ON keylane_dedupe (created_at)",
        """CREATE TABLE keylane_outbox (
            seq BIGINT GENERATED ALWAYS AS IDENTITY,
            idempotency_key TEXT PRIMARY KEY,
            key TEXT NOT NULL,
            channel TEXT NOT NULL,
            payload BYTEA NOT NULL,
            status TEXT NOT NULL,
            not_before DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION,
            created_at DOUBLE PRECISION NOT NULL,
            ready_at DOUBLE PRECISION NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            owner TEXT,
            lease_until DOUBLE PRECISION,
            retry_at DOUBLE PRECISION,
            dispatched_at DOUBLE PRECISION,
            finished_at DOUBLE PRECISION,
            detail TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX keylane_outbox_ready ON keylane_outbox (status, ready_at)",
        "CREATE INDEX keylane_outbox_key ON keylane_outbox (key, status)",
        """CREATE TABLE keylane_timers (
            key TEXT NOT NULL,
            timer_id TEXT NOT NULL,
            due_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (key, timer_id)
        )""",
        "CREATE INDEX keylane_timers_due ON keylane_timers (due_at)",
    ),
}
