"""``keylane bench pulsar``: Key_Shared throughput of the embedded broker, keylane over Pulsar, the
bare Pulsar client and pulsar-perf, with ratios, and keylane's produce in 1, 2 and 4 processes.

Thin: parses options and prints; the measuring is :mod:`keylane.bench.pulsar_compare`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console

from keylane.bench.pulsar_compare import compare_key_shared
from keylane.cli.options import JsonOption, check_json_target, json_to_stdout, write_json
from keylane.cli.render.bench import pulsar_table

__all__ = ["pulsar_bench_command"]


def pulsar_bench_command(
    url: Annotated[
        str, typer.Option("--url", envvar="KEYLANE_PULSAR_URL", help="Pulsar service URL.")
    ] = "pulsar://127.0.0.1:6650",
    admin_url: Annotated[
        str,
        typer.Option("--admin-url", envvar="KEYLANE_PULSAR_ADMIN_URL", help="Admin REST URL."),
    ] = "http://127.0.0.1:8080",
    messages: Annotated[
        int,
        typer.Option(min=1, help="Messages of each end-to-end run and of each producer process."),
    ] = 100_000,
    consumers: Annotated[int, typer.Option(min=1, help="Key_Shared consumers.")] = 4,
    keys: Annotated[int, typer.Option(min=1, help="Distinct keys for keylane's runs.")] = 1000,
    perf_duration: Annotated[int, typer.Option(min=1, help="Seconds pulsar-perf produces.")] = 10,
    processes: Annotated[
        list[int] | None,
        typer.Option(
            "--processes", min=1, help="Producer processes of the ingest curve (repeatable)."
        ),
    ] = None,
    rounds: Annotated[
        int, typer.Option(min=1, help="Runs of each produce path and curve point (median).")
    ] = 3,
    json_path: JsonOption = None,
) -> None:
    """Key_Shared: embedded vs keylane over Pulsar vs the bare client vs pulsar-perf (needs
    services.py up)."""
    check_json_target(json_path)
    result = asyncio.run(
        compare_key_shared(
            url,
            admin_url,
            messages=messages,
            consumers=consumers,
            keys=keys,
            perf_duration=perf_duration,
            processes=tuple(processes or (1, 2, 4)),
            rounds=rounds,
        )
    )
    write_json(json_path, result.as_dict())
    if json_to_stdout(json_path):
        return
    console = Console()
    console.width = max(console.width, 110)  # the tables' rows stay on one line in a log too
    console.print(pulsar_table(result, f"Key_Shared, {consumers} consumers ({url})"))
    for command in result.perf.commands:
        console.print(f"[dim]{command}[/dim]", soft_wrap=True)
