"""``keylane chaos``: the fault-injection harness on real processes, then its table.

Thin: options to a :class:`keylane.service.chaos.runner.ChaosConfig`, the run
(:func:`~keylane.service.chaos.runner.run_chaos`), then two tables (each fault with when it
hit, how long it lasted, the recovery time and what happened; each invariant with its count)
and the plot's path, or ``--json``. Progress lines go to standard error. Exit codes: 0 every
invariant held and every fault took effect; 1 a violation (or a fault without effect, or a
worker that did not exit 0); 2 bad options or a harness that could not run.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from keylane.cli.errors import EXIT_VERDICT, say
from keylane.cli.options import JsonOption, check_json_target, json_to_stdout, write_json
from keylane.service.chaos.report import ChaosReport
from keylane.service.chaos.runner import ChaosConfig, run_chaos
from keylane.service.chaos.schedule import PROFILES

__all__ = ["chaos_command", "render_chaos"]


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def render_chaos(console: Console, report: ChaosReport) -> None:
    """The faults table, the invariants table, the files."""
    faults = Table(title=f"keylane chaos ({report.profile}): faults", title_justify="left")
    for name, justify in (
        ("#", "right"), ("fault", "left"), ("target", "left"), ("at s", "right"),
        ("lasted s", "right"), ("recovery s", "right"), ("effective", "left"),
        ("what happened", "left"),
    ):  # fmt: skip
        faults.add_column(name, justify=justify)  # type: ignore[arg-type]
    for i, f in enumerate(report.faults, 1):
        faults.add_row(
            str(i),
            f.kind.value,
            f.target,
            f"{f.started - report.origin:.1f}",
            f"{f.ended - f.started:.1f}",
            _seconds(f.recovery),
            "yes" if f.effective else "[red]NO[/red]",
            f"{f.detail}; recovery: {f.measured}",
        )
    console.print(faults)
    table = Table(title="invariants (each must be 0)", title_justify="left")
    table.add_column("invariant")
    table.add_column("count", justify="right")
    table.add_column("", justify="left")
    table.add_column("what was counted")
    for inv in report.invariants:
        mark = "ok" if inv.ok else "[red]VIOLATED[/red]"
        table.add_row(inv.name, str(inv.violations), mark, inv.detail)
    console.print(table)
    for inv in report.invariants:
        for example in inv.examples if not inv.ok else ():
            console.print(f"[red]{inv.name}:[/red] {example}", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}")
    for incident in report.incidents:
        console.print(f"[yellow]incident:[/yellow] {incident}")
    console.print(
        f"{report.published:,} events published at {report.rate:g}/s over "
        f"{report.load_seconds:.0f} s, {report.workers} workers; run {report.seconds:.0f} s; "
        f"files in {report.data_dir}; plot {report.plot or '(none)'}"
    )
    verdict = "[green]PASSED[/green]" if report.ok else "[red]FAILED[/red]"
    console.print(f"chaos {verdict}")


async def _run(config: ChaosConfig) -> ChaosReport:
    """The run, with SIGTERM cancelling it like SIGINT does (so its clean-up runs)."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run_chaos(config, progress=say)
    except asyncio.CancelledError:
        if task.cancelling():
            raise KeyboardInterrupt from None  # exit 130, after the clean-up
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def chaos_command(
    profile: Annotated[
        str,
        typer.Option(help=f"The schedule: {', '.join(sorted(PROFILES))} (full: every fault)."),
    ] = "full",
    faults: Annotated[
        str | None,
        typer.Option(help="Only these faults of the profile, comma-separated (kill9,zombie,...)."),
    ] = None,
    workers: Annotated[int, typer.Option(help="Worker processes at the start (2 to 8).")] = 3,
    rate: Annotated[float, typer.Option(help="Events per second of the load.")] = 200.0,
    speed: Annotated[
        float, typer.Option(help="The workers' engine clock speed (journeys' waits end sooner).")
    ] = 30.0,
    out: Annotated[
        Path | None,
        typer.Option(help="Directory for the run's files (default .keylane/chaos-<time>)."),
    ] = None,
    services: Annotated[
        Path, typer.Option(help="scripts/services.py: the servers and their restarts.")
    ] = Path("scripts/services.py"),
    plot: Annotated[
        Path | None, typer.Option(help="Where the PNG goes (default <out>/chaos.png).")
    ] = None,
    json_path: JsonOption = None,
) -> None:
    """Inject real faults into real worker processes and verify the four invariants.

    Restarts the Pulsar broker and PostgreSQL that scripts/services.py manages (and leaves
    them running). Exit codes: 0 all held, 1 a violation, 2 bad options or no harness.
    """
    check_json_target(json_path)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    config = ChaosConfig(
        data_dir=out or Path(".keylane") / f"chaos-{stamp}",
        services_script=services,
        profile=profile,
        faults=None if faults is None else tuple(f for f in faults.split(",") if f.strip()),
        workers=workers,
        rate=rate,
        speed=speed,
        plot_path=plot,
    )
    report = asyncio.run(_run(config))
    if not json_to_stdout(json_path):
        render_chaos(Console(width=200), report)
    write_json(json_path, report.to_json())
    if not report.ok:
        raise typer.Exit(EXIT_VERDICT)
