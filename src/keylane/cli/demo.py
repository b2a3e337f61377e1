"""``keylane demo``: a short visible demonstration on the embedded broker.

Thin: renders the phases of :func:`keylane.demo.run_demo` as they end. Exit code 0 when every
user's events were processed in order by one consumer at a time, 1 otherwise.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from keylane.demo import PhaseReport, run_demo

__all__ = ["demo_command"]


def _phase_table(phase: PhaseReport) -> Table:
    table = Table(
        title=f"{phase.title} ({phase.throughput:,.0f} events/s)",
        title_justify="left",
        min_width=48,
    )
    table.add_column("consumer")
    table.add_column("users", justify="right")
    table.add_column("events", justify="right")
    for name in sorted(phase.events):
        table.add_row(name, str(phase.users.get(name, 0)), f"{phase.events[name]:,}")
    return table


def demo_command(
    seconds: Annotated[float, typer.Option(min=1.0, help="Length of the whole demo.")] = 10.0,
    users: Annotated[int, typer.Option(min=1, help="Distinct users (message keys).")] = 300,
    rate: Annotated[int, typer.Option(min=1, help="Events produced per second.")] = 10_000,
) -> None:
    """Key_Shared consumers joining and leaving under load, on the embedded broker."""
    console = Console()
    console.print(
        f"[bold]keylane demo[/bold]: Key_Shared on the embedded broker, {users} users, "
        f"{rate:,} events/s, 4 phases of {seconds / 4:.1f} s"
    )
    report = asyncio.run(
        run_demo(
            seconds=seconds,
            users=users,
            rate=rate,
            on_phase=lambda p: console.print(_phase_table(p)),
        )
    )
    ok = report.order_violations == 0 and report.overlap_violations == 0
    console.print(
        f"produced {report.produced:,} events, acknowledged {report.acknowledged:,}; "
        f"order violations {report.order_violations}, "
        f"same user at two consumers {report.overlap_violations}: "
        + ("[green]OK[/green]" if ok else "[red]FAILED[/red]")
    )
    if not ok:
        raise typer.Exit(1)
