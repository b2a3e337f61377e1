"""The Pulsar benchmark helpers that need no broker: output parsing, discovery, the phase
benchmark on the embedded broker, and the comparison's ratios."""

from __future__ import annotations

from pathlib import Path

import pytest

from keylane.bench.broker import BrokerBenchResult
from keylane.bench.pulsar_compare import KeySharedComparison, keylane_phases_key_shared
from keylane.bench.pulsar_perf import (
    PerfRate,
    PulsarPerfError,
    PulsarPerfResult,
    find_pulsar_home,
    parse_aggregated,
)
from keylane.brokers import connect
from keylane.brokers.base import BatchingType, SubscriptionType
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


def test_comparison_ratios() -> None:
    result = KeySharedComparison(
        embedded=_e2e(100_000),
        pulsar=_e2e(5_000),
        keylane_produce=PerfRate("keylane", "produce", 1000, 8_000),
        keylane_consume=PerfRate("keylane", "consume", 1000, 6_000),
        perf=PulsarPerfResult(
            produce=PerfRate("pulsar-perf", "produce", 1000, 10_000),
            consume=PerfRate("pulsar-perf", "consume", 1000, 12_000),
            commands=("produce ...", "consume ..."),
        ),
    )
    assert result.ratios == pytest.approx(
        {
            "pulsar_e2e / embedded_e2e": 0.05,
            "keylane_produce / perf_produce": 0.8,
            "keylane_consume / perf_consume": 0.5,
            "pulsar_e2e / min(perf_produce, perf_consume)": 0.5,
        }
    )
    assert [row[2] for row in result.rows()] == pytest.approx(
        [100_000, 5_000, 8_000, 6_000, 10_000, 12_000]
    )
    assert result.as_dict()["perf_commands"] == ["produce ...", "consume ..."]


async def test_phases_on_the_embedded_broker_handle_every_message() -> None:
    async with connect("memory://") as broker:
        produce, consume = await keylane_phases_key_shared(
            broker, messages=2000, consumers=3, keys=50, senders=100, timeout=5.0
        )
    assert (produce.tool, produce.phase, produce.messages) == ("keylane", "produce", 2000)
    assert (consume.tool, consume.phase, consume.messages) == ("keylane", "consume", 2000)
    assert produce.msgs_per_second > 0
    assert consume.msgs_per_second > 0


async def test_phases_reject_bad_parameters() -> None:
    async with connect("memory://") as broker:
        with pytest.raises(InvalidArgumentError):
            await keylane_phases_key_shared(broker, messages=0)
        with pytest.raises(InvalidArgumentError):
            await keylane_phases_key_shared(broker, payload_size=4)
