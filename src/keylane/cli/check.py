"""``keylane check FILE...``: check recorded histories for exclusivity and order anomalies.

Thin: parsing options and choosing the exit code; the work is :mod:`keylane.check`.
Exit codes: 0 clean, 1 anomalies found, 2 unreadable, malformed or empty input (raised here,
reported by :mod:`keylane.cli.errors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from keylane.check import check, read_counters, read_history
from keylane.cli.errors import EXIT_OK, EXIT_VERDICT, say
from keylane.cli.options import JsonOption, check_json_target, json_to_stdout, write_json
from keylane.cli.render.check import render_report
from keylane.errors import InvalidArgumentError

__all__ = ["check_command"]

_SHOWN_SKIPPED = 5


def check_command(
    files: Annotated[
        list[Path],
        typer.Argument(help="History files (JSON Lines), e.g. one per consumer process."),
    ],
    json_path: JsonOption = None,
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

    Exit codes: 0 no anomaly, 1 anomalies found, 2 unreadable, malformed or empty input.
    """
    # Bad input raises (HistoryFormatError, OSError): keylane.cli.errors makes it exit 2.
    check_json_target(json_path)
    history = read_history(files, skip_malformed=skip_malformed)
    for skipped in history.skipped[:_SHOWN_SKIPPED]:
        say(f"warning: skipped {skipped}")
    if len(history.skipped) > _SHOWN_SKIPPED:
        say(f"warning: ... {len(history.skipped) - _SHOWN_SKIPPED} more skipped")
    for path in history.empty:
        say(f"warning: {path} holds no records")
    if not (history.attempts or history.published):
        named = ", ".join(map(str, files)) if len(files) <= 3 else f"{len(files)} files"
        raise InvalidArgumentError(f"no records in {named}: nothing to check")
    counter_values = None if counters is None else read_counters(counters)
    report = check(
        history, counters=counter_values, strict_order=strict_order, max_examples=max_examples
    )
    if not json_to_stdout(json_path):
        Console().print(render_report(report))
    write_json(json_path, report.to_json())
    raise typer.Exit(EXIT_OK if report.clean else EXIT_VERDICT)
