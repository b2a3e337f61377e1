"""``keylane compare``: run the five consumption strategies on one workload and compare them.

Thin: parses options into a :class:`~keylane.compare.runner.CompareConfig` and calls
:func:`~keylane.compare.runner.run_compare`. Exit codes: 0 the comparison ran (anomalies of the
``shared`` baseline are results, not failures), 1 every requested strategy was skipped,
2 bad options or a broker/strategy failure (raised here, reported by :mod:`keylane.cli.errors`).
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keylane.cli.errors import EXIT_VERDICT
from keylane.cli.options import (
    PULSAR_CLIENT_LOG,
    PulsarAllowInsecureOption,
    PulsarTokenFileOption,
    PulsarTokenOption,
    PulsarTrustCertsOption,
    PulsarValidateHostnameOption,
    broker_options,
    check_json_target,
    json_to_stdout,
    write_json,
)
from keylane.cli.render.compare import RichObserver, render_compare
from keylane.compare.handler import HandlerConfig
from keylane.compare.runner import CompareConfig, run_compare
from keylane.compare.strategies import STRATEGY_NAMES, ContentionPolicy, StrategyConfig
from keylane.compare.strategies.registry import parse_strategy_names
from keylane.compare.workload import BurstShape, WorkloadConfig
from keylane.locks.base import DEFAULT_LOCK_TTL, DEFAULT_REDIS_URL, REDIS_URL_ENV

__all__ = ["compare_command"]

#: Offered load of the head-of-line scenario unless --rate says otherwise: well below the
#: serial strategies' capacity (4 consumers / ~6 ms = ~640 events/s).
STUCK_DEFAULT_RATE = 400.0

#: ``typer.Option`` in each help panel.
_run = functools.partial(typer.Option, rich_help_panel="Run")
_workload = functools.partial(typer.Option, rich_help_panel="Workload")
_consumers = functools.partial(typer.Option, rich_help_panel="Consumers")
_scenario = functools.partial(typer.Option, rich_help_panel="Head-of-line scenario")


def compare_command(
    strategies: Annotated[
        str | None, _run(help=f"Comma-separated subset of: {', '.join(STRATEGY_NAMES)}.")
    ] = None,
    broker: Annotated[str, _run(help="memory:// (embedded) or pulsar://host:6650.")] = "memory://",
    pulsar_admin_url: Annotated[
        str | None,
        _run(
            envvar="KEYLANE_PULSAR_ADMIN_URL",
            help="Pulsar admin REST URL (with --broker pulsar://...).",
        ),
    ] = None,
    pulsar_token: PulsarTokenOption = None,
    pulsar_token_file: PulsarTokenFileOption = None,
    pulsar_tls_trust_certs: PulsarTrustCertsOption = None,
    pulsar_tls_allow_insecure: PulsarAllowInsecureOption = None,
    pulsar_tls_validate_hostname: PulsarValidateHostnameOption = None,
    redis: Annotated[
        str, _run(envvar=REDIS_URL_ENV, help="Redis for shared-lock.")
    ] = DEFAULT_REDIS_URL,
    duration: Annotated[float, _run(help="Measured seconds per strategy.")] = 6.0,
    warmup: Annotated[float, _run(help="Unmeasured seconds before each measured phase.")] = 1.5,
    rate: Annotated[
        float | None,
        _run(
            help="Open loop: offered events/s (default: closed loop, as fast as the window lets)."
        ),
    ] = None,
    window: Annotated[int, _run(help="Most events outstanding at once.")] = 4000,
    publishers: Annotated[
        int, _run(help="Concurrent publishing tasks (a user always uses one).")
    ] = 64,
    drain_timeout: Annotated[float, _run(help="Longest drain after publishing stops (s).")] = 60.0,
    json_path: Annotated[
        Path | None,
        _run(
            "--json",
            metavar="PATH",
            help="Write the results as JSON to PATH ('-': to standard output, instead of tables).",
        ),
    ] = None,
    history: Annotated[
        Path | None,
        _run(
            help="Also write each strategy's history here (<strategy>.jsonl and "
            "<strategy>.counters.json) for `keylane check`."
        ),
    ] = None,
    users: Annotated[int, _workload(help="Distinct users.")] = 10_000,
    mean_burst: Annotated[float, _workload(help="Mean events per session.")] = 8.0,
    burst_shape: Annotated[
        BurstShape,
        _workload(help="Events per session: poisson (about the mean) or geometric (long tail)."),
    ] = BurstShape.POISSON,
    max_burst: Annotated[int, _workload(help="Most events per session.")] = 32,
    skew: Annotated[float, _workload(help="Zipf exponent of user popularity (0 = uniform).")] = 0.0,
    hot_users: Annotated[int, _workload(help="Number of hot users.")] = 0,
    hot_share: Annotated[float, _workload(help="Share of sessions from hot users.")] = 0.0,
    seed: Annotated[int, _workload(help="Workload and latency seed.")] = 1,
    latency_ms: Annotated[float, _workload(help="Median simulated I/O per event (ms).")] = 5.0,
    latency_sigma: Annotated[float, _workload(help="Lognormal sigma of the I/O time.")] = 0.5,
    consumers: Annotated[int, _consumers(help="Consumers per strategy.")] = 4,
    max_in_flight: Annotated[
        int, _consumers(help="Concurrent handlers per consumer (shared, shared-lock, lanes).")
    ] = 256,
    handler_timeout: Annotated[
        float, _consumers(help="Per-attempt handler timeout, every strategy (s).")
    ] = 5.0,
    lock_ttl: Annotated[float, _consumers(help="shared-lock lease TTL (s).")] = DEFAULT_LOCK_TTL,
    contention: Annotated[
        ContentionPolicy, _consumers(help="shared-lock on a held lock: nack, or wait (poll).")
    ] = ContentionPolicy.NACK,
    nack_delay: Annotated[float, _consumers(help="Negative-ack redelivery delay (s).")] = 1.0,
    lock_wait: Annotated[
        float, _consumers(help="With --contention wait: poll this long, then nack (s).")
    ] = 5.0,
    stuck_key: Annotated[
        bool, _scenario("--stuck-key", help="One user's first handler call hangs.")
    ] = False,
    stuck_for: Annotated[float, _scenario(help="How long the stuck call hangs (s).")] = 30.0,
    stuck_at: Annotated[
        float, _scenario(help="When the stuck user's session is published (s).")
    ] = 1.0,
) -> None:
    """Run the consumption strategies on one shopping workload; compare speed and correctness."""
    err = Console(stderr=True)
    if stuck_key and rate is None:
        rate = STUCK_DEFAULT_RATE
    check_json_target(json_path)
    # Bad options raise InvalidArgumentError, a failed run KeylaneError: keylane.cli.errors
    # prints them in one line and exits 2.
    config = CompareConfig(
        strategies=tuple(parse_strategy_names(strategies)),
        broker_url=broker,
        broker_options=broker_options(
            broker,
            pulsar_admin_url,
            pulsar_token=pulsar_token,
            pulsar_token_file=pulsar_token_file,
            pulsar_tls_trust_certs=pulsar_tls_trust_certs,
            pulsar_tls_allow_insecure=pulsar_tls_allow_insecure,
            pulsar_tls_validate_hostname=pulsar_tls_validate_hostname,
        ),
        redis_url=redis,
        duration=duration,
        warmup=warmup,
        rate=rate,
        window=window,
        drain_timeout=drain_timeout,
        publishers=publishers,
        stuck=stuck_key,
        stuck_at=stuck_at,
        history_dir=history,
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
    with RichObserver(err) as observer:
        result = asyncio.run(run_compare(config, observer))
    if not json_to_stdout(json_path):
        out = Console()
        if not out.is_terminal:
            out = Console(width=140)  # a pipe or file still gets the whole table
        out.print(render_compare(result))
    if "log_file" in config.broker_options:
        err.print(f"Pulsar client log: {PULSAR_CLIENT_LOG}", style="dim", highlight=False)
    write_json(json_path, result.to_json())
    if all(row.skipped is not None for row in result.results):
        raise typer.Exit(EXIT_VERDICT)
