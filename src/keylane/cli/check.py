"""``keylane check FILE...``: check recorded histories for exclusivity and order anomalies.

Thin: parsing options and choosing the exit code; the work is :mod:`keylane.check`.
Exit codes: 0 clean, 1 anomalies found, 2 unreadable or malformed input.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keylane.check import check, read_counters, read_history, render_report
from keylane.errors import InvalidArgumentError

__all__ = ["check_command"]

EXIT_CLEAN = 0
EXIT_ANOMALIES = 1
EXIT_BAD_INPUT = 2

_SHOWN_SKIPPED = 5


def check_command(
    files: Annotated[
        list[Path],
        typer.Argument(help="History files (JSON Lines), e.g. one per consumer process."),
    ],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the report as JSON instead of tables.")
    ] = False,
    counters: Annotated[
        Path | None,
        typer.Option(help="JSON object of final per-key counters, to count lost updates."),
    ] = None,
    strict_order: Annotated[
        bool,
        typer.Option(help="Excuse no reordering, not even after a redelivery (for lanes)."),
    ] = False,
    skip_malformed: Annotated[
        bool, typer.Option(help="Skip malformed lines (with a warning) instead of failing.")
    ] = False,
    max_examples: Annotated[int, typer.Option(min=0, help="Examples shown per anomaly kind.")] = 10,
) -> None:
    """Check recorded histories: exclusivity, order, lost messages, duplicates, lost updates.

    Exit codes: 0 no anomaly, 1 anomalies found, 2 unreadable or malformed input.
    """
    try:
        history = read_history(files, skip_malformed=skip_malformed)
        counter_values = None if counters is None else read_counters(counters)
        report = check(
            history, counters=counter_values, strict_order=strict_order, max_examples=max_examples
        )
    except InvalidArgumentError as exc:  # HistoryFormatError included
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except OSError as exc:
        typer.echo(f"error: cannot read {exc.filename or ''}: {exc.strerror or exc}", err=True)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    for skipped in history.skipped[:_SHOWN_SKIPPED]:
        typer.echo(f"warning: skipped {skipped}", err=True)
    if len(history.skipped) > _SHOWN_SKIPPED:
        typer.echo(f"warning: ... {len(history.skipped) - _SHOWN_SKIPPED} more skipped", err=True)
    if json_output:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        Console().print(render_report(report))
    raise typer.Exit(EXIT_CLEAN if report.clean else EXIT_ANOMALIES)
