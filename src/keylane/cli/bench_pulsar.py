"""``keylane bench pulsar``: Key_Shared throughput of the embedded broker, keylane over Pulsar and
pulsar-perf, with ratios.

Thin: parses options and prints; the measuring is :mod:`keylane.bench.pulsar_compare`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from keylane.bench.pulsar_compare import KeySharedComparison, compare_key_shared

__all__ = ["pulsar_bench_command"]


def _table(result: KeySharedComparison, title: str) -> Table:
    table = Table(title=title)
    table.add_column("backend")
    table.add_column("measured")
    table.add_column("msg/s", justify="right")
    for backend, how, rate in result.rows():
        table.add_row(backend, how, f"{rate:,.0f}")
    for name, ratio in result.ratios.items():
        table.add_row("ratio", name, f"{ratio:.3f}")
    return table


def pulsar_bench_command(
    url: Annotated[
        str, typer.Option("--url", envvar="KEYLANE_PULSAR_URL", help="Pulsar service URL.")
    ] = "pulsar://127.0.0.1:6650",
    admin_url: Annotated[
        str,
        typer.Option("--admin-url", envvar="KEYLANE_PULSAR_ADMIN_URL", help="Admin REST URL."),
    ] = "http://127.0.0.1:8080",
    messages: Annotated[int, typer.Option(min=1, help="Messages for keylane's runs.")] = 50_000,
    consumers: Annotated[int, typer.Option(min=1, help="Key_Shared consumers.")] = 4,
    keys: Annotated[int, typer.Option(min=1, help="Distinct keys for keylane's runs.")] = 1000,
    perf_duration: Annotated[int, typer.Option(min=1, help="Seconds pulsar-perf produces.")] = 10,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Key_Shared: embedded vs keylane over Pulsar vs pulsar-perf (needs services.py up)."""
    result = asyncio.run(
        compare_key_shared(
            url,
            admin_url,
            messages=messages,
            consumers=consumers,
            keys=keys,
            perf_duration=perf_duration,
        )
    )
    if json_output:
        typer.echo(json.dumps(result.as_dict(), indent=2))
        return
    console = Console()
    console.print(_table(result, f"Key_Shared, {consumers} consumers ({url})"))
    for command in result.perf.commands:
        console.print(f"[dim]{command}[/dim]", soft_wrap=True)
