"""``keylane bench ...``: benchmarks that print measured numbers.

Thin: parses options, builds the broker from its URL and renders the results; the measuring is
:mod:`keylane.bench`.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.console import Console

from keylane.bench.broker import BrokerBenchResult, bench_broker_types
from keylane.bench.decide import run_decide_bench
from keylane.bench.soak import SoakParams, run_soak
from keylane.bench.store import run_store_bench
from keylane.brokers import connect
from keylane.brokers.base import BatchingType
from keylane.cli.options import (
    BrokerOption,
    JsonOption,
    check_json_target,
    json_to_stdout,
    write_json,
)
from keylane.cli.render.bench import broker_table, engine_table, soak_table
from keylane.cli.render.scale import WIDTH, scale_lines, scale_table
from keylane.service.bench import bench_engine
from keylane.service.procstat import find_postmaster, read_pid_file
from keylane.service.scale import ScaleConfig, run_scale

__all__ = ["bench_app"]

bench_app = typer.Typer(no_args_is_help=True, help="Throughput benchmarks (measured numbers).")

_BATCHING = {"key-based": BatchingType.KEY_BASED, "default": BatchingType.DEFAULT, "off": None}


async def _run(
    url: str, messages: int, keys: int, consumers: int, batching: BatchingType | None
) -> list[BrokerBenchResult]:
    async with connect(url) as broker:
        return await bench_broker_types(
            broker, messages=messages, keys=keys, consumers=consumers, batching=batching
        )


@bench_app.command("broker")
def broker_command(
    broker: BrokerOption = "memory://",
    messages: Annotated[int, typer.Option(min=1, help="Messages per subscription type.")] = 100_000,
    keys: Annotated[int, typer.Option(min=1, help="Distinct message keys.")] = 1000,
    consumers: Annotated[
        int, typer.Option(min=1, help="Consumers for Failover, Shared and Key_Shared.")
    ] = 4,
    batching: Annotated[
        str, typer.Option(help="Producer batching: key-based, default or off.")
    ] = "key-based",
    json_path: JsonOption = None,
) -> None:
    """Produce -> receive -> acknowledge throughput for each subscription type."""
    check_json_target(json_path)
    if batching not in _BATCHING:
        raise typer.BadParameter(f"batching must be one of {', '.join(_BATCHING)}")
    results = asyncio.run(_run(broker, messages, keys, consumers, _BATCHING[batching]))
    if not json_to_stdout(json_path):
        Console().print(broker_table(results, f"keylane bench broker ({broker})"))
    write_json(json_path, [r.as_dict() for r in results])


@bench_app.command("soak")
def soak_command(
    seconds: Annotated[
        float,
        typer.Option(min=1, help="Seconds per run (two runs: without, then with a parked key)."),
    ] = 30.0,
    rate: Annotated[
        int, typer.Option(min=1, help="Messages per second the producer aims at.")
    ] = 10_000,
    keys: Annotated[int, typer.Option(min=1, help="Distinct message keys.")] = 2_000,
    consumers: Annotated[
        int, typer.Option(min=1, help="Key_Shared consumers (one Lanes each).")
    ] = 2,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between RSS samples.")] = 3.0,
    warmup: Annotated[
        float | None,
        typer.Option(min=0, help="Seconds left out of the verdict (default: 30% of --seconds)."),
    ] = None,
    tolerance: Annotated[
        float, typer.Option(min=0, help="Largest RSS deviation from the median, as a fraction.")
    ] = 0.10,
    json_path: JsonOption = None,
) -> None:
    """Embedded-broker memory soak: RSS over time without and with a parked key.

    Exits 1 if RSS of either run was not flat within --tolerance after the warm-up.
    """
    check_json_target(json_path)
    quiet = json_to_stdout(json_path)
    params = SoakParams(
        seconds=seconds,
        rate=rate,
        keys=keys,
        consumers=consumers,
        interval=interval,
        warmup=seconds * 0.3 if warmup is None else warmup,
    )
    if not quiet:
        typer.echo(
            f"keylane bench soak: 2 runs x {seconds:g} s, {rate:,} msg/s target, {keys:,} keys, "
            f"{consumers} Key_Shared consumers with lanes; warm-up {params.warmup:g} s"
        )
    results = run_soak(params, quiet=quiet)
    if not quiet:
        Console().print(soak_table(results, tolerance))
    write_json(json_path, [r.as_dict() for r in results])
    if not all(r.flat(tolerance) for r in results):
        raise typer.Exit(1)


@bench_app.command("engine")
def engine_command(
    store: Annotated[
        list[str] | None,
        typer.Option(
            help="State store URL to measure (repeatable); 'sqlite' = a fresh SQLite file "
            "(the embedded default). Default: sqlite."
        ),
    ] = None,
    events: Annotated[int, typer.Option(min=100, help="Events per run.")] = 50_000,
    consumers: Annotated[int, typer.Option(min=1, help="Key_Shared consumers.")] = 4,
    group_commit: Annotated[
        bool, typer.Option(help="Batch concurrent commits into one transaction.")
    ] = True,
    json_path: JsonOption = None,
) -> None:
    """Events/s through broker, lanes, decide, commit, relay and gateway, per state store."""
    check_json_target(json_path)
    urls = store or ["sqlite"]
    results = []
    for url in urls:
        result = asyncio.run(
            bench_engine(
                None if url == "sqlite" else url,
                events=events,
                consumers=consumers,
                group_commit=group_commit,
            )
        )
        results.append(result)
    if not json_to_stdout(json_path):
        Console().print(engine_table(results))
    write_json(json_path, [r.as_dict() for r in results])


@bench_app.command("decide")
def decide_command(
    events: Annotated[int, typer.Option(min=1, help="Workload events to decide.")] = 200_000,
    subscribers: Annotated[int, typer.Option(min=1, help="Distinct subscribers.")] = 2_000,
    seed: Annotated[int, typer.Option(help="Seed of the workload.")] = 1,
    json_path: JsonOption = None,
) -> None:
    """Decisions per second of the pure engine (decide), without and with the state codec."""
    check_json_target(json_path)
    result = run_decide_bench(events=events, subscribers=subscribers, seed=seed)
    if not json_to_stdout(json_path):
        typer.echo(
            f"keylane bench decide: {result.decisions:,} decisions of {result.subscribers:,} "
            f"subscribers: {result.decisions_per_s:,.0f} decisions/s in memory, "
            f"{result.codec_decisions_per_s:,.0f} decisions/s with the state decode/encode "
            f"(per CPU second: {result.decisions / result.cpu_seconds:,.0f} and "
            f"{result.decisions / result.codec_cpu_seconds:,.0f}); goal 50,000 decisions/s"
        )
    write_json(json_path, result.as_dict())


@bench_app.command("store")
def store_command(
    store: Annotated[
        list[str] | None,
        typer.Option(help="State store URL (repeatable); default a fresh SQLite file."),
    ] = None,
    commits: Annotated[int, typer.Option(min=1, help="Commits per run.")] = 20_000,
    concurrency: Annotated[int, typer.Option(min=1, help="Committers at once.")] = 64,
    json_path: JsonOption = None,
) -> None:
    """Commits per second and commit latency of a state store, with and without group commit."""
    check_json_target(json_path)
    urls = store or [f"sqlite://{tempfile.mkdtemp(prefix='keylane-store-')}/bench.db"]
    results = []
    for url in urls:
        for group_commit in (True, False):
            result = asyncio.run(
                run_store_bench(
                    url, commits=commits, concurrency=concurrency, group_commit=group_commit
                )
            )
            results.append(result)
            if not json_to_stdout(json_path):
                typer.echo(result.describe())
    write_json(json_path, [asdict(r) for r in results])


def _worker_counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"must be counts like 1,2,4, got {text!r}") from None
    if not counts or any(n < 1 or n > 16 for n in counts):
        raise typer.BadParameter(f"each count must be 1 to 16, got {text!r}")
    return counts


@bench_app.command("scale")
def scale_command(
    broker: BrokerOption = "pulsar://127.0.0.1:6650",
    pulsar_admin_url: Annotated[
        str, typer.Option(help="Pulsar admin REST URL.")
    ] = "http://127.0.0.1:8080",
    store: Annotated[
        str, typer.Option(help="PostgreSQL URL; each point gets a fresh schema, dropped after.")
    ] = "postgresql://keylane@127.0.0.1:5440/keylane",
    workers: Annotated[str, typer.Option(help="Worker process counts, comma-separated.")] = "1,2,4",
    events: Annotated[int, typer.Option(min=100, help="Events of the saturation phase.")] = 20_000,
    latency_seconds: Annotated[
        float, typer.Option(min=1, help="Seconds of the fixed-rate latency phase.")
    ] = 8.0,
    latency_rate: Annotated[
        float | None,
        typer.Option(min=1, help="Events/s of the latency phase (default: half of 1 worker's)."),
    ] = None,
    subscribers: Annotated[
        int, typer.Option(min=100, help="Subscribers of the synthetic day.")
    ] = 10_000,
    consumers: Annotated[int, typer.Option(min=1, help="Consumers per worker process.")] = 1,
    broker_pid_file: Annotated[
        Path, typer.Option(help="The Pulsar broker's pid file (for its CPU).")
    ] = Path(".services/pulsar.pid"),
    store_pid: Annotated[
        int | None,
        typer.Option(help="The PostgreSQL server's pid (default: the one on the URL's port)."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where histories and logs go (default a temp dir).")
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """N keylane worker processes on real Pulsar and PostgreSQL: events/s, p99 and CPU per N."""
    check_json_target(json_path)
    counts = _worker_counts(workers)
    port = urlsplit(store).port or 5432
    config = ScaleConfig(
        broker_url=broker,
        admin_url=pulsar_admin_url,
        store_url=store,
        data_dir=data_dir or Path(tempfile.mkdtemp(prefix="keylane-scale-")),
        workers=counts,
        events=events,
        latency_seconds=latency_seconds,
        latency_rate=latency_rate,
        subscribers=subscribers,
        consumers=consumers,
        broker_pid=read_pid_file(broker_pid_file),
        store_pid=store_pid if store_pid is not None else find_postmaster(port),
    )
    quiet = json_to_stdout(json_path)
    if not quiet:
        typer.echo(
            f"keylane bench scale: {', '.join(map(str, counts))} worker(s) on {broker}, store "
            f"{store}; broker pid {config.broker_pid or '-'}, store pid {config.store_pid or '-'}; "
            f"files in {config.data_dir}"
        )
    report = asyncio.run(run_scale(config))
    if not quiet:
        console = Console()
        Console(width=max(console.width, WIDTH)).print(scale_table(report))
        for line in scale_lines(report):
            typer.echo(line)
    write_json(json_path, report.as_dict())
