"""Rich rendering of ``keylane run``: the live progress, then the report and its verdicts."""

from __future__ import annotations

import math
from typing import Any

from rich.console import Group, RenderableType
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from keylane.cli.render.check import render_report
from keylane.service import RunProgress, RunReport

__all__ = ["RunDisplay", "render_run"]


class RunDisplay:
    """The progress bar of the simulated day (use as a context manager; call it with progress)."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None

    @classmethod
    def create(cls) -> RunDisplay:
        return cls(
            Progress(
                TextColumn("[bold]{task.fields[simulated]}"),
                BarColumn(),
                TextColumn("{task.fields[phase]}"),
                TextColumn("published {task.fields[published]:,}/{task.fields[total]:,}"),
                TextColumn("decided {task.fields[decided]:,}"),
                TextColumn("delivered {task.fields[delivered]:,}"),
                TimeElapsedColumn(),
                transient=False,
            )
        )

    def __enter__(self) -> RunDisplay:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def __call__(self, p: RunProgress) -> None:
        fields: dict[str, Any] = {
            "simulated": p.simulated,
            "phase": p.phase,
            "published": p.published,
            "total": p.total,
            "decided": p.decided,
            "delivered": p.delivered,
        }
        if self._task is None:
            self._task = self._progress.add_task("day", total=1.0, **fields)
        self._progress.update(self._task, completed=p.fraction, **fields)


def _counts(title: str, values: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for name, n in values.items():
        table.add_row(name, f"{n:,}")
    if not values:
        table.add_row(Text("none", style="dim"), "")
    return table


def _seconds(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.1f} s"


def _verdict(name: str, count: int, meaning: str) -> tuple[str, Text, str]:
    style = "bold green" if count == 0 else "bold red"
    return name, Text(f"{count:,}", style=style), meaning


def render_run(report: RunReport) -> RenderableType:
    """The report: what happened, then the verdicts (each must be 0)."""
    head = Text(
        f"{report.events:,} events over {report.simulated_hours:.1f} simulated hours in "
        f"{report.wall_seconds:.1f} s; data in {report.data_dir}; store {report.store_url}"
        + (f"; gateway {report.gateway_url}" if report.gateway_url else ""),
        style="dim",
    )
    timers = Table(title="timers", title_justify="left", show_edge=False)
    for column in ("fired", "lateness p50", "p99", "max", "armed at the end"):
        timers.add_column(column, justify="right")
    timers.add_row(
        f"{report.timers_fired:,}",
        _seconds(report.timer_lateness_p50),
        _seconds(report.timer_lateness_p99),
        _seconds(report.timer_lateness_max),
        f"{report.timers_armed_at_end:,}",
    )
    verdicts = Table(title="verdicts", title_justify="left", show_edge=False)
    verdicts.add_column("check")
    verdicts.add_column("count", justify="right")
    verdicts.add_column("meaning", style="dim")
    verdicts.add_row(
        *_verdict("duplicate deliveries", report.duplicate_deliveries, "the gateway's own log")
    )
    for kind, n in report.compliance.counts.items():
        verdicts.add_row(*_verdict(f"compliance: {kind}", n, "re-checked from the gateway log"))
    if report.checker is not None:
        checker = report.checker
        decisions = checker.decisions
        bad = 0 if decisions is None else sum(
            v for k, v in decisions.counts().items() if k not in ("committed", "dedupes", "fenced")
        )  # fmt: skip
        verdicts.add_row(*_verdict("checker: lost events", checker.lost_count, "history"))
        verdicts.add_row(*_verdict("checker: order violations", checker.order_count, "history"))
        verdicts.add_row(*_verdict("checker: decided twice", checker.duplicate_count, "history"))
        verdicts.add_row(
            *_verdict("checker: overlapping attempts", checker.exclusivity_count, "history")
        )
        verdicts.add_row(*_verdict("checker: commit anomalies", bad, "history (committed)"))
    ok = Text(
        "OK: no duplicate, no compliance violation, checker clean"
        if report.ok
        else "FAILED: see the verdicts",
        style="bold green" if report.ok else "bold red",
    )
    parts: list[RenderableType] = [
        head,
        _counts("decisions (attempts by outcome)", report.decisions),
        _counts("events decided, by type", report.events_by_type),
        _counts("messages delivered, by channel", report.deliveries.get("by_channel", {})),
        _counts("messages delivered, by journey", report.deliveries.get("by_journey", {})),
        _counts("not sent (or not at once), by reason", report.skips),
        timers,
        verdicts,
    ]
    if report.checker is not None and not report.checker.clean:
        parts.append(render_report(report.checker))
    parts.append(ok)
    return Group(*parts)
