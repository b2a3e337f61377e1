"""``keylane bench engine`` on a real PostgreSQL: each run decides its events in a fresh schema.

Before, every run shared the database's default schema, so a second run found the first run's
state and dedupe marks: all its events were duplicates, nothing was committed or delivered, and
the benchmark printed a meaningless rate.
"""

from __future__ import annotations

import asyncpg
import pytest

from keylane.service.bench import bench_engine

pytestmark = pytest.mark.postgres


async def _bench_schemas(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT schema_name FROM information_schema.schemata "
            "WHERE schema_name LIKE 'keylane_bench_%'"
        )
    finally:
        await connection.close()
    return {row["schema_name"] for row in rows}


async def test_two_runs_on_postgres_both_commit_and_deliver(postgres_url: str) -> None:
    # Given the schemas a benchmark may have left
    before = await _bench_schemas(postgres_url)
    # When the benchmark runs twice on the same database with the same events
    first = await bench_engine(postgres_url, events=600, subscribers=300, consumers=2)
    second = await bench_engine(postgres_url, events=600, subscribers=300, consumers=2)
    # Then both runs committed (commit latencies exist) and delivered messages
    for run in (first, second):
        assert run.store == "postgresql"
        assert run.events == 600
        assert run.delivered > 0
        assert run.mean_batch > 0
        assert run.commit_p50_ms == run.commit_p50_ms  # not NaN: commits were measured
    # And no schema of theirs is left behind
    assert await _bench_schemas(postgres_url) == before
