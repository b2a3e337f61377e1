"""Rich tables of the benchmarks' results (rendering belongs to the CLI).

Imports rich and the benchmarks' result types only.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Group
from rich.table import Table

from keylane.bench.broker import BrokerBenchResult
from keylane.bench.pulsar_compare import GOALS, KeySharedComparison
from keylane.bench.soak import SoakResult
from keylane.service.bench import EngineBenchResult

__all__ = ["broker_table", "engine_table", "pulsar_table", "soak_table"]


def broker_table(results: Sequence[BrokerBenchResult], title: str) -> Table:
    """A rich table of measured throughput, one row per run.

    The message count, keys and batching of the first run go into the caption.
    """
    table = Table(title=title)
    if results:
        first = results[0]
        batching = first.batching.value if first.batching else "off"
        table.caption = (
            f"{first.messages:,} messages, {first.keys:,} keys, batching {batching}; "
            "msgs/cpu-s = messages per CPU second of this process"
        )
    table.add_column("type")
    table.add_column("consumers", justify="right")
    table.add_column("wall s", justify="right")
    table.add_column("msgs/s", justify="right")
    table.add_column("msgs/cpu-s", justify="right")
    table.add_column("per consumer")
    for r in results:
        table.add_row(
            r.subscription_type.value,
            str(r.consumers),
            f"{r.seconds:.2f}",
            f"{r.msgs_per_second:,.0f}",
            f"{r.msgs_per_cpu_second:,.0f}",
            "/".join(str(n) for n in r.per_consumer),
        )
    return table


def soak_table(results: Sequence[SoakResult], tolerance: float) -> Table:
    """The soak's verdict per run, as a rich table."""
    table = Table(title=f"keylane bench soak: RSS after warm-up, flat = within +/-{tolerance:.0%}")
    for column in ("run", "RSS median", "max dev.", "growth", "msg/s", "verdict"):
        table.add_column(column, justify="left" if column in ("run", "verdict") else "right")
    for r in results:
        run = "no parked key"
        if r.parked:
            run = f"parked: {len(r.parked_keys)} key"
        table.add_row(
            run,
            f"{r.rss_median:.1f} MiB",
            f"{r.rss_deviation:.1%}",
            f"{r.rss_growth:+.1f} MiB",
            f"{r.throughput:,.0f}",
            "flat" if r.flat(tolerance) else "NOT FLAT",
        )
    return table


def pulsar_table(result: KeySharedComparison, title: str) -> Group:
    """``keylane bench pulsar``: the Key_Shared figures with ratios and goals, the one-process
    produce paths, and the ingest curve against pulsar-perf's produce."""
    main = Table(title=title)
    main.add_column("backend")
    main.add_column("measured")
    main.add_column("msg/s", justify="right")
    for backend, how, rate in result.rows():
        main.add_row(backend, how, f"{rate:,.0f}")
    goals = Table(title="ratios (goal: the issue's target, where it set one)")
    goals.add_column("ratio")
    goals.add_column("value", justify="right")
    goals.add_column("goal", justify="right")
    for name, ratio in result.ratios.items():
        goal = GOALS.get(name)
        mark = "" if goal is None else f">= {goal:.2f} {'met' if ratio >= goal else 'MISSED'}"
        goals.add_row(name, f"{ratio:.3f}", mark)
    best = result.best_client.msgs_per_second
    paths = Table(title="produce paths, one process each (KEY_BASED, 1000 keys): median run")
    for column in ("path", "messages", "msg/s", "range", "msg/cpu-s", "/ best client"):
        paths.add_column(column, justify="left" if column == "path" else "right")
    for series in result.produce_paths:
        run = series.median
        paths.add_row(
            run.path.label,
            f"{run.messages:,}",
            f"{run.msgs_per_second:,.0f}",
            f"{series.low:,.0f}-{series.high:,.0f}",
            f"{run.msgs_per_cpu_second:,.0f}",
            f"{run.msgs_per_second / best:.3f}",
        )
    perf = result.perf.produce.msgs_per_second
    curve = Table(title=f"ingest curve: keylane enqueue() in N processes (pulsar-perf {perf:,.0f})")
    for column in ("procs", "msg/s", "range", "per process", "/ perf produce"):
        curve.add_column(column, justify="right")
    for series in result.curve:
        run = series.median
        curve.add_row(
            str(run.processes),
            f"{run.msgs_per_second:,.0f}",
            f"{series.low:,.0f}-{series.high:,.0f}",
            " ".join(f"{r.msgs_per_second:,.0f}" for r in run.runs),
            f"{run.msgs_per_second / perf:.3f}",
        )
    before, after = result.load
    curve.caption = f"load average (1 min) before the run {before:.2f}, after {after:.2f}"
    return Group(main, goals, paths, curve)


def engine_table(results: Sequence[EngineBenchResult]) -> Table:
    """``keylane bench engine``: one row per state store."""
    table = Table(
        title="keylane bench engine: broker -> lanes -> decide -> commit -> relay -> gateway"
    )
    for column in ("store", "group commit", "events", "s", "events/s", "commit p50 ms",
                   "commit p99 ms", "mean batch", "delivered", "cpu s"):  # fmt: skip
        table.add_column(column, justify="left" if column == "store" else "right")
    for r in results:
        table.add_row(
            r.store,
            "on" if r.group_commit else "off",
            f"{r.events:,}",
            f"{r.seconds:.1f}",
            f"{r.events_per_second:,.0f}",
            f"{r.commit_p50_ms:.2f}",
            f"{r.commit_p99_ms:.2f}",
            f"{r.mean_batch:.1f}",
            f"{r.delivered:,}",
            f"{r.cpu_seconds:.1f}",
        )
    table.caption = "goal: 7,200 events/s on the embedded defaults (memory broker + SQLite)"
    return table
