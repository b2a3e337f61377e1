"""Terminal rendering of a comparison with rich: live progress, the results table, the verdict.

Imports no backend. Rendering only: the numbers come from :mod:`keylane.compare.results`.
"""

from __future__ import annotations

import math
from types import TracebackType
from typing import Self

from rich.console import Console, Group, RenderableType
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from keylane.compare.results import CompareResult, StrategyResult

__all__ = ["RichObserver", "render_compare"]


def _ms(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _count(value: int) -> Text:
    return Text(f"{value:,}", style="bold red" if value else "green")


def render_compare(result: CompareResult) -> RenderableType:
    """The results table, skip notices and the headline ratios."""
    table = Table(title="keylane compare", title_style="bold", header_style="bold")
    table.add_column("strategy", no_wrap=True)
    table.add_column("throughput\n(msg/s)", justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p99 ms", justify="right")
    table.add_column("max ms", justify="right")
    if result.stuck:
        table.add_column("p99 others\nms", justify="right", style="bold")
    table.add_column("exclusivity\nviolations", justify="right")
    table.add_column("lost\nupdates", justify="right")
    table.add_column("order\nviolations", justify="right")
    table.add_column("reordered by\nredelivery", justify="right")
    table.add_column("lost\nmessages", justify="right")
    table.add_column("dupli-\ncates", justify="right")
    notes: list[RenderableType] = []
    for row in result.results:
        if row.skipped is not None:
            table.add_row(row.name, Text("skipped", style="yellow"))
            notes.append(Text(f"{row.name} skipped: {row.skipped}", style="yellow"))
            continue
        cells: list[RenderableType] = [
            row.name,
            "-" if math.isnan(row.throughput) else f"{row.throughput:,.0f}",
            _ms(row.latency.p50_ms),
            _ms(row.latency.p99_ms),
            _ms(row.latency.max_ms),
        ]
        if result.stuck:
            cells.append(_ms(row.others.p99_ms) if row.others is not None else "-")
        cells += [
            _count(row.exclusivity_violations),
            _count(row.lost_updates),
            _count(row.order_violations),
            f"{row.excused_reorders:,}",
            _count(row.lost_messages),
            _count(row.duplicates),
        ]
        table.add_row(*cells)
        if not row.drained:
            notes.append(
                Text(
                    f"{row.name}: drain timed out with {row.unfinished:,} event(s) unfinished; "
                    "they count as lost messages",
                    style="yellow",
                )
            )
    return Group(table, *notes, _headline(result), _workload(result))


def _headline(result: CompareResult) -> Text:
    lanes = result.get("key-shared-lanes")
    if lanes is None:
        return Text("")
    if result.stuck:
        # Head-of-line scenario: what matters is how the stuck user delays everybody else.
        parts = [
            f"{row.name} {_ms(row.others.p99_ms)} ms"
            for row in result.results
            if row.skipped is None and row.others is not None
        ]
        return Text("p99 of the other users: " + ", ".join(parts), style="bold")
    if result.workload.get("rate"):
        return Text("")  # open loop: every strategy's throughput is the offered rate
    ratios = result.ratios()
    parts = []
    if "lanes_vs_serial_throughput" in ratios:
        parts.append(f"{ratios['lanes_vs_serial_throughput']:.1f}x key-shared-serial throughput")
    if "lanes_vs_lock_throughput" in ratios:
        parts.append(f"{ratios['lanes_vs_lock_throughput']:.1f}x shared-lock throughput")
    if "lanes_vs_lock_p99" in ratios and ratios["lanes_vs_lock_p99"] > 0:
        parts.append(f"1/{1 / ratios['lanes_vs_lock_p99']:.1f} of shared-lock p99")
    if not parts:
        return Text("")
    return Text("key-shared-lanes: " + ", ".join(parts), style="bold")


def _workload(result: CompareResult) -> Text:
    w = result.workload
    text = (
        f"workload: {w.get('users')} users, bursts of ~{w.get('mean_burst')} events, "
        f"{w.get('consumers')} consumers, handler median {w.get('latency_median_ms')} ms, "
        f"window {w.get('window')}, "
        + (f"open loop at {w.get('rate')} events/s, " if w.get("rate") else "closed loop, ")
        + f"{w.get('duration_s')} s measured (+{w.get('warmup_s')} s warm-up) per strategy "
        f"on {w.get('broker')}"
    )
    if result.stuck:
        text += (
            f"; stuck key {w.get('stuck_key')} hangs {w.get('stuck_for_s')} s once, "
            f"handler timeout {w.get('handler_timeout_s')} s"
        )
    return Text(text, style="dim")


class RichObserver:
    """One progress bar per strategy while :func:`~keylane.compare.runner.run_compare` runs."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.fields[name]:<18}"),
            BarColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._shown = False

    def __enter__(self) -> Self:
        return self  # the display starts with the first strategy: an early error prints alone

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._shown:
            self._progress.stop()

    def started(self, name: str, duration: float) -> None:
        if not self._shown:
            self._shown = True
            self._progress.start()
        self._tasks[name] = self._progress.add_task(
            name, total=duration, name=name, status="starting"
        )

    def tick(self, name: str, phase: str, elapsed: float, completed: int, outstanding: int) -> None:
        task = self._tasks.get(name)
        if task is None:
            return
        status = f"{phase}: {completed:,} done, {outstanding:,} outstanding"
        self._progress.update(task, completed=elapsed, status=status)

    def finished(self, result: StrategyResult) -> None:
        task = self._tasks.get(result.name)
        if result.skipped is not None:
            self.console.print(Text(f"{result.name}: skipped ({result.skipped})", style="yellow"))
            return
        if task is None:
            return
        rate = "-" if math.isnan(result.throughput) else f"{result.throughput:,.0f}"
        status = f"{rate} msg/s, p99 {_ms(result.latency.p99_ms)} ms" + (
            "" if result.correct else " - anomalies"
        )
        total = self._progress.tasks[task].total or 0.0
        self._progress.update(task, completed=total, status=status)
