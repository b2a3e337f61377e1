"""``keylane compare``: run the five consumption strategies on one workload and compare them.

Thin: parses options into a :class:`~keylane.sim.compare.CompareConfig` and calls
:func:`~keylane.sim.compare.run_compare`. Exit codes: 0 the comparison ran (anomalies of the
``shared`` baseline are results, not failures), 1 every requested strategy was skipped,
2 bad options or a broker/strategy failure.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keylane.errors import InvalidArgumentError, KeylaneError
from keylane.locks.base import DEFAULT_REDIS_URL, REDIS_URL_ENV
from keylane.sim.compare import CompareConfig, run_compare
from keylane.sim.handler import HandlerConfig
from keylane.sim.report import RichObserver, render_compare
from keylane.sim.workload import BurstShape, WorkloadConfig
from keylane.strategies import STRATEGY_NAMES, ContentionPolicy, StrategyConfig
from keylane.strategies.registry import parse_strategy_names

__all__ = ["compare_command"]

#: Offered load of the head-of-line scenario unless --rate says otherwise: well below the
#: serial strategies' capacity (4 consumers / ~6 ms = ~640 events/s).
STUCK_DEFAULT_RATE = 400.0

EXIT_OK = 0
EXIT_ALL_SKIPPED = 1
EXIT_ERROR = 2

_RUN = "Run"
_WORKLOAD = "Workload"
_CONSUMERS = "Consumers"
_SCENARIO = "Head-of-line scenario"


#: Where ``--broker pulsar://...`` sends the Pulsar client's log lines (appended).
PULSAR_CLIENT_LOG = Path(tempfile.gettempdir()) / "keylane-pulsar-client.log"


def _broker_options(broker: str, pulsar_admin_url: str | None) -> dict[str, object]:
    if not broker.startswith("pulsar"):
        return {}
    # The C++ client logs every producer and consumer at INFO: into a file, so that standard
    # output holds the table only.
    options: dict[str, object] = {"log_file": str(PULSAR_CLIENT_LOG)}
    if pulsar_admin_url:
        options["admin_url"] = pulsar_admin_url
    return options


def compare_command(
    strategies: Annotated[
        str | None,
        typer.Option(
            help=f"Comma-separated subset of: {', '.join(STRATEGY_NAMES)}.", rich_help_panel=_RUN
        ),
    ] = None,
    broker: Annotated[
        str, typer.Option(help="memory:// (embedded) or pulsar://host:6650.", rich_help_panel=_RUN)
    ] = "memory://",
    pulsar_admin_url: Annotated[
        str | None,
        typer.Option(
            envvar="KEYLANE_PULSAR_ADMIN_URL",
            help="Pulsar admin REST URL (with --broker pulsar://...).",
            rich_help_panel=_RUN,
        ),
    ] = None,
    redis: Annotated[
        str,
        typer.Option(envvar=REDIS_URL_ENV, help="Redis for shared-lock.", rich_help_panel=_RUN),
    ] = DEFAULT_REDIS_URL,
    duration: Annotated[
        float, typer.Option(help="Measured seconds per strategy.", rich_help_panel=_RUN)
    ] = 6.0,
    warmup: Annotated[
        float,
        typer.Option(help="Unmeasured seconds before each measured phase.", rich_help_panel=_RUN),
    ] = 1.5,
    rate: Annotated[
        float | None,
        typer.Option(
            help="Open loop: offered events/s (default: closed loop, as fast as the window lets).",
            rich_help_panel=_RUN,
        ),
    ] = None,
    window: Annotated[
        int, typer.Option(help="Most events outstanding at once.", rich_help_panel=_RUN)
    ] = 4000,
    publishers: Annotated[
        int,
        typer.Option(
            help="Concurrent publishing tasks (a user always uses one).", rich_help_panel=_RUN
        ),
    ] = 64,
    drain_timeout: Annotated[
        float, typer.Option(help="Longest drain after publishing stops (s).", rich_help_panel=_RUN)
    ] = 60.0,
    json_path: Annotated[
        Path | None,
        typer.Option("--json", help="Also write the results as JSON here.", rich_help_panel=_RUN),
    ] = None,
    users: Annotated[int, typer.Option(help="Distinct users.", rich_help_panel=_WORKLOAD)] = 10_000,
    mean_burst: Annotated[
        float, typer.Option(help="Mean events per session.", rich_help_panel=_WORKLOAD)
    ] = 8.0,
    burst_shape: Annotated[
        BurstShape,
        typer.Option(
            help="Events per session: poisson (about the mean) or geometric (long tail).",
            rich_help_panel=_WORKLOAD,
        ),
    ] = BurstShape.POISSON,
    max_burst: Annotated[
        int, typer.Option(help="Most events per session.", rich_help_panel=_WORKLOAD)
    ] = 32,
    skew: Annotated[
        float,
        typer.Option(
            help="Zipf exponent of user popularity (0 = uniform).", rich_help_panel=_WORKLOAD
        ),
    ] = 0.0,
    hot_users: Annotated[
        int, typer.Option(help="Number of hot users.", rich_help_panel=_WORKLOAD)
    ] = 0,
    hot_share: Annotated[
        float, typer.Option(help="Share of sessions from hot users.", rich_help_panel=_WORKLOAD)
    ] = 0.0,
    seed: Annotated[
        int, typer.Option(help="Workload and latency seed.", rich_help_panel=_WORKLOAD)
    ] = 1,
    latency_ms: Annotated[
        float, typer.Option(help="Median simulated I/O per event (ms).", rich_help_panel=_WORKLOAD)
    ] = 5.0,
    latency_sigma: Annotated[
        float, typer.Option(help="Lognormal sigma of the I/O time.", rich_help_panel=_WORKLOAD)
    ] = 0.5,
    consumers: Annotated[
        int, typer.Option(help="Consumers per strategy.", rich_help_panel=_CONSUMERS)
    ] = 4,
    max_in_flight: Annotated[
        int,
        typer.Option(
            help="Concurrent handlers per consumer (shared, shared-lock, lanes).",
            rich_help_panel=_CONSUMERS,
        ),
    ] = 256,
    handler_timeout: Annotated[
        float,
        typer.Option(
            help="Per-attempt handler timeout, every strategy (s).", rich_help_panel=_CONSUMERS
        ),
    ] = 5.0,
    lock_ttl: Annotated[
        float, typer.Option(help="shared-lock lease TTL (s).", rich_help_panel=_CONSUMERS)
    ] = 30.0,
    contention: Annotated[
        ContentionPolicy,
        typer.Option(
            help="shared-lock on a held lock: nack, or wait (poll).", rich_help_panel=_CONSUMERS
        ),
    ] = ContentionPolicy.NACK,
    nack_delay: Annotated[
        float, typer.Option(help="Negative-ack redelivery delay (s).", rich_help_panel=_CONSUMERS)
    ] = 1.0,
    lock_wait: Annotated[
        float,
        typer.Option(
            help="With --contention wait: poll this long, then nack (s).",
            rich_help_panel=_CONSUMERS,
        ),
    ] = 5.0,
    stuck_key: Annotated[
        bool,
        typer.Option(
            "--stuck-key", help="One user's first handler call hangs.", rich_help_panel=_SCENARIO
        ),
    ] = False,
    stuck_for: Annotated[
        float, typer.Option(help="How long the stuck call hangs (s).", rich_help_panel=_SCENARIO)
    ] = 30.0,
    stuck_at: Annotated[
        float,
        typer.Option(
            help="When the stuck user's session is published (s).", rich_help_panel=_SCENARIO
        ),
    ] = 1.0,
) -> None:
    """Run the consumption strategies on one shopping workload; compare speed and correctness."""
    err = Console(stderr=True)
    if stuck_key and rate is None:
        rate = STUCK_DEFAULT_RATE
    try:
        config = CompareConfig(
            strategies=tuple(parse_strategy_names(strategies)),
            broker_url=broker,
            broker_options=_broker_options(broker, pulsar_admin_url),
            redis_url=redis,
            duration=duration,
            warmup=warmup,
            rate=rate,
            window=window,
            drain_timeout=drain_timeout,
            publishers=publishers,
            stuck=stuck_key,
            stuck_at=stuck_at,
            workload=WorkloadConfig(
                users=users,
                mean_burst=mean_burst,
                burst_shape=burst_shape,
                max_burst=max_burst,
                skew=skew,
                hot_users=hot_users,
                hot_share=hot_share,
                seed=seed,
            ),
            handler=HandlerConfig(
                latency_median=latency_ms / 1000,
                latency_sigma=latency_sigma,
                stuck_for=stuck_for,
                seed=seed,
            ),
            strategy=StrategyConfig(
                consumers=consumers,
                max_in_flight=max_in_flight,
                handler_timeout=handler_timeout,
                lock_ttl=lock_ttl,
                contention=contention,
                nack_delay=nack_delay,
                lock_wait=lock_wait,
            ),
        )
    except InvalidArgumentError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
    try:
        with RichObserver(err) as observer:
            result = asyncio.run(run_compare(config, observer))
    except KeylaneError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        raise typer.Exit(EXIT_ERROR) from None
    out = Console()
    if not out.is_terminal:
        out = Console(width=140)  # a pipe or file still gets the whole table
    out.print(render_compare(result))
    if "log_file" in config.broker_options:
        err.print(f"Pulsar client log: {PULSAR_CLIENT_LOG}", style="dim", highlight=False)
    if json_path is not None:
        json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    if all(row.skipped is not None for row in result.results):
        raise typer.Exit(EXIT_ALL_SKIPPED)
