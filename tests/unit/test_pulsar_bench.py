"""The Pulsar benchmark helpers that need no broker: output parsing, discovery, the pipelined
benchmarks on the embedded broker, the ingest aggregation, the comparison's ratios and goals,
and its tables."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from keylane.bench.broker import BrokerBenchResult
from keylane.bench.pipelined import lanes_end_to_end, pipelined_end_to_end, produce_then_drain
from keylane.bench.pulsar_client import ProduceRun
from keylane.bench.pulsar_compare import GOALS, KeySharedComparison
from keylane.bench.pulsar_ingest import IngestResult, IngestSeries, ProducePath, run_producers
from keylane.bench.pulsar_perf import (
    PerfRate,
    PulsarPerfError,
    PulsarPerfResult,
    find_pulsar_home,
    parse_aggregated,
)
from keylane.brokers import connect
from keylane.brokers.base import BatchingType, SubscriptionType
from keylane.cli.render.bench import pulsar_table
from keylane.errors import InvalidArgumentError

PRODUCE_OUT = """\
2026-11-21T21:50:17,227+0000 [exec-1-1] INFO  ProducerStatsRecorderImpl - --- Publish throughput: 1.0 msg/s
2026-11-21T21:50:21,149+0000 [perf-client-shutdown] INFO  org.apache.pulsar.testclient.PerformanceProducer - Aggregated throughput stats --- 1305746 records sent --- 130386.956 msg/s --- 63.666 Mbit/s
"""  # noqa: E501
CONSUME_OUT = (
    "INFO  org.apache.pulsar.testclient.PerformanceConsumer - Aggregated throughput stats --- "
    "64317 records received --- 15356.888 msg/s --- 7.498 Mbit/s --- AckRate: 15356.6  msg/s"
)


def test_parse_aggregated_reads_the_final_line() -> None:
    assert parse_aggregated(PRODUCE_OUT, "produce") == (1305746, 130386.956)
    assert parse_aggregated(CONSUME_OUT, "consume") == (64317, 15356.888)


def test_parse_aggregated_without_a_result_shows_the_output_tail() -> None:
    with pytest.raises(PulsarPerfError, match=r"(?s)no aggregated result.*rate must be positive"):
        parse_aggregated(
            "starting\njava.lang.IllegalArgumentException: rate must be positive\n", "x"
        )


def test_find_pulsar_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "apache-pulsar-4.0.8"
    (home / "bin").mkdir(parents=True)
    with pytest.raises(PulsarPerfError, match="pulsar-perf"):
        find_pulsar_home(home)
    (home / "bin" / "pulsar-perf").write_text("#!/bin/sh\n")
    assert find_pulsar_home(home) == home.resolve()
    monkeypatch.setenv("KEYLANE_PULSAR_HOME", str(home))
    assert find_pulsar_home() == home.resolve()
    monkeypatch.delenv("KEYLANE_PULSAR_HOME")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(PulsarPerfError, match=r"services\.py"):
        find_pulsar_home()
    nested = tmp_path / ".services" / "pulsar"
    nested.mkdir(parents=True)
    home.rename(nested / home.name)
    assert find_pulsar_home() == (nested / home.name).resolve()


def test_perf_rate_view_keeps_the_tool_figure_only_when_given() -> None:
    assert "reported_msgs_per_second" not in PerfRate("keylane", "produce", 5, 2.0).as_dict()
    view = PerfRate("pulsar-perf", "produce", 10, 5.0, 1.5).as_dict()
    assert view["reported_msgs_per_second"] == 1.5


def _e2e(rate: float) -> BrokerBenchResult:
    return BrokerBenchResult(
        subscription_type=SubscriptionType.KEY_SHARED,
        messages=1000,
        keys=10,
        consumers=4,
        batching=BatchingType.KEY_BASED,
        seconds=1000 / rate,
        cpu_seconds=0.5,
        per_consumer=(250, 250, 250, 250),
        duplicates=0,
    )


def _ingest(path: ProducePath, *rates: float) -> IngestResult:
    """``len(rates)`` processes of 1000 messages each, all starting at t=100."""
    runs = tuple(ProduceRun(1000, 100.0, 100.0 + 1000 / rate, 0.5) for rate in rates)
    return IngestResult(path, len(rates), runs)


def _series(path: ProducePath, rate: float) -> IngestSeries:
    """Three runs: the median at ``rate``, one faster, one slower."""
    return IngestSeries(tuple(_ingest(path, r) for r in (rate * 1.5, rate, rate / 2)))


def _comparison() -> KeySharedComparison:
    paths = (
        _series(ProducePath.KEYLANE_ENQUEUE, 18_500),
        _series(ProducePath.KEYLANE_SEND_GATHER, 12_000),
        _series(ProducePath.KEYLANE_SEND_IN_TURN, 500),
        _series(ProducePath.CLIENT_SEND_ASYNC, 20_000),
        _series(ProducePath.CLIENT_ASYNCIO_GATHER, 10_000),
        _series(ProducePath.CLIENT_ASYNCIO_IN_TURN, 85),
    )
    return KeySharedComparison(
        embedded=_e2e(100_000),
        pulsar=_e2e(6_000),
        lanes=_e2e(4_000),
        backlog_produce=PerfRate("keylane", "produce", 1000, 15_000),
        keylane_consume=PerfRate("keylane", "consume", 1000, 9_000),
        produce_paths=paths,
        curve=(paths[0], IngestSeries((_ingest(ProducePath.KEYLANE_ENQUEUE, 15_000, 10_000),))),
        perf=PulsarPerfResult(
            produce=PerfRate("pulsar-perf", "produce", 1000, 100_000),
            consume=PerfRate("pulsar-perf", "consume", 1000, 12_000),
            commands=("produce ...", "consume ..."),
        ),
    )


def test_ingest_result_spans_all_processes() -> None:
    # Two processes of 1000 messages: one from t=100 to 101, one from t=100.5 to 102.5
    runs = (ProduceRun(1000, 100.0, 101.0, 0.8), ProduceRun(1000, 100.5, 102.5, 1.2))
    result = IngestResult(ProducePath.KEYLANE_ENQUEUE, 2, runs)
    assert result.messages == 2000
    assert result.seconds == pytest.approx(2.5)
    assert result.msgs_per_second == pytest.approx(800)
    assert result.msgs_per_cpu_second == pytest.approx(1000)
    assert result.as_dict()["per_process_msgs_per_second"] == [1000.0, 500.0]


def test_ingest_series_takes_the_median_run_and_checks_its_runs() -> None:
    series = _series(ProducePath.KEYLANE_ENQUEUE, 10_000)
    assert series.median.msgs_per_second == pytest.approx(10_000)
    assert (series.low, series.high) == pytest.approx((5_000, 15_000))
    assert series.as_dict()["runs_msgs_per_second"] == [15_000.0, 10_000.0, 5_000.0]
    with pytest.raises(InvalidArgumentError):
        IngestSeries(())
    with pytest.raises(InvalidArgumentError):
        IngestSeries(
            (_ingest(ProducePath.KEYLANE_ENQUEUE, 1), _ingest(ProducePath.CLIENT_SEND_ASYNC, 1))
        )


def test_comparison_ratios_goals_and_rows() -> None:
    result = _comparison()
    assert result.best_client.path is ProducePath.CLIENT_SEND_ASYNC
    assert result.ratios == pytest.approx(
        {
            "keylane produce / best bare-client produce": 0.925,
            "the same, per CPU second of the producer process": 1.0,
            "keylane e2e / min(perf produce, perf consume)": 0.5,
            "keylane lanes e2e / min(perf produce, perf consume)": 4_000 / 12_000,
            "keylane consume / perf consume": 0.75,
            "keylane produce / perf produce": 0.185,
            "keylane e2e over Pulsar / embedded e2e": 0.06,
            "keylane produce x1 processes / perf produce": 0.185,
            # 2000 messages from t=100 to t=100.1
            "keylane produce x2 processes / perf produce": 0.2,
        }
    )
    assert set(GOALS) <= set(result.ratios)
    assert [row[2] for row in result.rows()] == pytest.approx(
        [100_000, 6_000, 4_000, 18_500, 9_000, 100_000, 12_000]
    )
    view = result.as_dict()
    assert view["perf_commands"] == ["produce ...", "consume ..."]
    assert [p["path"] for p in view["produce_paths"]] == [p.value for p in ProducePath]  # type: ignore[attr-defined]
    assert view["load_average_before_after"] == [0.0, 0.0]


def test_pulsar_table_marks_each_goal_met_or_missed() -> None:
    result = _comparison()
    console = Console(record=True, width=200)
    console.print(pulsar_table(result, "t"))
    out = console.export_text()
    assert "keylane enqueue()" in out
    assert "client send_async+callback" in out
    assert out.count(">= 0.90 met") == 1  # 18,500 / 20,000
    assert out.count(">= 0.50 met") == 1
    slower = replace(result, pulsar=_e2e(5_000))
    console = Console(record=True, width=200)
    console.print(pulsar_table(slower, "t"))
    assert ">= 0.50 MISSED" in console.export_text()


async def test_pipelined_end_to_end_on_the_embedded_broker() -> None:
    async with connect("memory://") as broker:
        result = await pipelined_end_to_end(broker, messages=3000, keys=50, consumers=3)
    assert result.messages == 3000
    assert sum(result.per_consumer) == 3000 + result.duplicates
    assert result.duplicates == 0
    assert all(n > 0 for n in result.per_consumer)


async def test_lanes_end_to_end_on_the_embedded_broker() -> None:
    async with connect("memory://") as broker:
        result = await lanes_end_to_end(broker, messages=2000, keys=40, consumers=2)
    assert result.messages == 2000
    assert len(result.per_consumer) == 2
    assert sum(result.per_consumer) == 2000
    assert result.duplicates == 0


async def test_phases_on_the_embedded_broker_handle_every_message() -> None:
    async with connect("memory://") as broker:
        produce, consume = await produce_then_drain(
            broker, messages=2000, consumers=3, keys=50, stall_timeout=5.0
        )
    assert (produce.tool, produce.phase, produce.messages) == ("keylane", "produce", 2000)
    assert (consume.tool, consume.phase, consume.messages) == ("keylane", "consume", 2000)
    assert produce.msgs_per_second > 0
    assert consume.msgs_per_second > 0


@pytest.mark.parametrize("bench", [pipelined_end_to_end, lanes_end_to_end, produce_then_drain])
async def test_pipelined_benchmarks_reject_bad_parameters(bench: Any) -> None:
    async with connect("memory://") as broker:
        with pytest.raises(InvalidArgumentError):
            await bench(broker, messages=0)
        with pytest.raises(InvalidArgumentError):
            await bench(broker, payload_size=4)


async def test_run_producers_rejects_bad_parameters() -> None:
    with pytest.raises(InvalidArgumentError):
        await run_producers(
            ProducePath.KEYLANE_ENQUEUE, 0, service_url="pulsar://x:1", topic="t", messages=1
        )
