"""``keylane demo``: a short visible demonstration on the embedded broker.

Thin: renders the phases of :func:`keylane.compare.demo.run_demo` as they end. Exit code 0 (OK) when
every event produced was processed, each user's in order by one consumer at a time; 1 (FAILED)
otherwise; 2 bad options (reported by :mod:`keylane.cli.errors`).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from keylane.cli.errors import EXIT_VERDICT
from keylane.compare.demo import DemoReport, PhaseReport, run_demo

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


def verdict(report: DemoReport) -> str:
    """The closing line: what was produced and processed, the two invariants, OK or FAILED."""
    processed = (
        "all events processed"
        if report.acknowledged == report.produced
        else f"[red]{report.unprocessed:,} events never processed[/red]"
    )
    line = (
        f"produced {report.produced:,} events, acknowledged {report.acknowledged:,} "
        f"({processed}); order violations {report.order_violations}, "
        f"same user at two consumers {report.overlap_violations}: "
    )
    return line + ("[green]OK[/green]" if report.ok else "[red]FAILED[/red]")


def _held_back(report: DemoReport) -> str | None:
    if report.produced >= report.requested:
        return None
    return (
        f"the rate asked for {report.requested:,} events; the producer held back "
        f"{report.requested - report.produced:,} of them while {report.max_backlog:,} "
        "were unacknowledged (the consumers could not keep up)"
    )


def demo_command(
    seconds: Annotated[float, typer.Option(min=1.0, help="Length of the whole demo.")] = 10.0,
    users: Annotated[int, typer.Option(min=1, help="Distinct users (message keys).")] = 300,
    rate: Annotated[int, typer.Option(min=1, help="Events produced per second.")] = 10_000,
) -> None:
    """Key_Shared consumers joining and leaving under load, on the embedded broker."""
    console = Console()

    async def main() -> DemoReport:
        # The header is printed once the loop runs, so a Ctrl-C after it always reaches a
        # running coroutine (and is reported in one line), never asyncio's start-up.
        console.print(
            f"[bold]keylane demo[/bold]: Key_Shared on the embedded broker, {users} users, "
            f"{rate:,} events/s, 4 phases of {seconds / 4:.1f} s"
        )
        return await run_demo(
            seconds=seconds,
            users=users,
            rate=rate,
            on_phase=lambda p: console.print(_phase_table(p)),
        )

    report = asyncio.run(main())
    held_back = _held_back(report)
    if held_back is not None:
        console.print(held_back, style="yellow", highlight=False)
    console.print(verdict(report))
    if not report.ok:
        raise typer.Exit(EXIT_VERDICT)
