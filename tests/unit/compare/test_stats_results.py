"""Percentiles, result JSON, ratios and the rich table."""

from __future__ import annotations

import math

import pytest
from rich.console import Console

from keylane.cli.render.compare import render_compare
from keylane.compare.results import CompareResult, StrategyResult
from keylane.compare.stats import percentile, summarize
from keylane.errors import InvalidArgumentError


def test_nearest_rank_percentile():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile(values, 0) == 1
    assert math.isnan(percentile([], 50))
    with pytest.raises(InvalidArgumentError):
        percentile(values, 101)


def test_summary_in_milliseconds():
    summary = summarize([0.001, 0.002, 0.010])
    assert (summary.count, summary.p50_ms, summary.max_ms) == (3, 2.0, 10.0)
    assert summary.to_json()["p99_ms"] == 10.0
    assert summarize([]).to_json()["p50_ms"] is None


def result(name: str, throughput: float, p99_s: float, **counts: int) -> StrategyResult:
    return StrategyResult(
        name=name,
        summary=name,
        throughput=throughput,
        latency=summarize([p99_s / 2, p99_s]),
        exclusivity_violations=counts.get("exclusivity_violations", 0),
        lost_updates=counts.get("lost_updates", 0),
    )


def make_compare(stuck: bool = False) -> CompareResult:
    rows = [
        result("shared", 9000, 0.05, exclusivity_violations=12, lost_updates=7),
        StrategyResult.skip("shared-lock", "Redis unavailable: cannot reach Redis at redis://x"),
        result("key-shared-serial", 500, 4.0),
        result("key-shared-lanes", 10_000, 0.1),
    ]
    return CompareResult(results=rows, workload={"users": 10, "window": 40}, stuck=stuck)


def test_json_shape_and_skips():
    data = make_compare().to_json()
    strategies = data["strategies"]
    assert isinstance(strategies, dict)
    assert strategies["shared-lock"] == {
        "skipped": "Redis unavailable: cannot reach Redis at redis://x"
    }
    shared = strategies["shared"]
    for field in (
        "throughput",
        "p50_ms",
        "p99_ms",
        "max_ms",
        "exclusivity_violations",
        "lost_updates",
        "order_violations",
        "excused_reorders",
        "lost_messages",
        "duplicates",
    ):
        assert field in shared
    assert shared["exclusivity_violations"] == 12
    assert shared["excused_reorders"] == 0
    assert data["workload"] == {"users": 10, "window": 40}
    assert data["ratios"] == {"lanes_vs_serial_throughput": 20.0}


def test_correct_flag():
    assert not result("shared", 1, 1, lost_updates=1).correct
    assert result("key-shared-lanes", 1, 1).correct
    # Reorderings a redelivery explains are reported, not anomalies; unexcused ones are.
    assert StrategyResult(name="shared-lock", summary="", excused_reorders=5).correct
    assert not StrategyResult(name="shared-lock", summary="", order_violations=1).correct
    assert not StrategyResult.skip("shared-lock", "x").correct


def test_table_shows_rows_skip_reason_and_headline():
    console = Console(record=True, width=200)
    console.print(render_compare(make_compare()))
    text = console.export_text()
    assert "shared-lock skipped: Redis unavailable" in text
    assert "reordered by" in text
    assert "key-shared-lanes: 20.0x key-shared-serial throughput" in text
    assert "p99 others" not in text


def test_table_shows_excused_reorders_apart_from_order_violations():
    row = StrategyResult(
        name="shared-lock",
        summary="",
        throughput=1000,
        latency=summarize([0.01, 0.2]),
        order_violations=3,
        excused_reorders=2238,
    )
    console = Console(record=True, width=200)
    console.print(render_compare(CompareResult([row], {})))
    text = console.export_text()
    assert "reordered by" in text
    [line] = [ln for ln in text.splitlines() if ln.startswith("│ shared-lock")]
    cells = [cell.strip() for cell in line.split("│")]
    order = cells.index("3")
    assert cells[order + 1] == "2,238"  # the column right after "order violations"


def test_stuck_table_has_the_others_column_and_headline():
    rows = [
        StrategyResult(
            name="failover",
            summary="",
            throughput=400,
            latency=summarize([0.01, 5.2]),
            others=summarize([0.01, 5.1]),
        ),
        StrategyResult(
            name="key-shared-lanes",
            summary="",
            throughput=400,
            latency=summarize([0.01, 5.2]),
            others=summarize([0.01, 0.09]),
        ),
    ]
    console = Console(record=True, width=200)
    console.print(render_compare(CompareResult(rows, {"rate": 400.0}, stuck=True)))
    text = console.export_text()
    assert "p99 others" in text
    assert "p99 of the other users: failover 5,100 ms, key-shared-lanes 90.0 ms" in text
