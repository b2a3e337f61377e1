"""The scale-out benchmark's table and verdict lines (rendering belongs to the CLI).

Imports rich and :mod:`keylane.service.scale`'s result types only.
"""

from __future__ import annotations

from rich.table import Table

from keylane.service.scale import ScaleReport, ceiling, cpu_per_event

__all__ = ["WIDTH", "scale_lines", "scale_table"]

#: Columns the table needs to print unbroken (a console narrower than this wraps the cells).
WIDTH = 160


def _cores(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def scale_table(report: ScaleReport) -> Table:
    """One row per worker count: throughput, latency, CPU in cores, the judges."""
    table = Table(title="keylane bench scale: N worker processes, one Key_Shared subscription")
    first = report.points[0] if report.points else None
    if first is not None:
        table.caption = (
            f"{first.events:,} events unpaced (saturation), then {first.latency_rate:,.0f} "
            f"events/s (latency); latency = publish -> commit; CPU in cores of {report.cores}, "
            "over the saturation window; sent/dup = the gateway's deliveries and duplicates"
        )
    for name, justify in (
        ("workers", "right"),
        ("events/s", "right"),
        ("vs 1", "right"),
        ("p99 sat. ms", "right"),
        ("p50/p99 @rate ms", "right"),
        ("broker cpu", "right"),
        ("store cpu", "right"),
        ("workers cpu (max)", "right"),
        ("gw+pub cpu", "right"),
        ("machine (other)", "right"),
        ("checker", "left"),
        ("sent", "right"),
        ("dup", "right"),
        ("exit", "left"),
    ):
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    base = first.events_per_second if first is not None else 1.0
    for p in report.points:
        cpu = p.cpu
        table.add_row(
            str(p.workers),
            f"{p.events_per_second:,.0f}",
            f"{p.events_per_second / base:.2f}",
            f"{p.saturation_p99_ms:,.0f}",
            f"{p.latency_p50_ms:,.0f}/{p.latency_p99_ms:,.0f}",
            _cores(cpu.broker),
            _cores(cpu.store),
            f"{cpu.workers:.2f} ({cpu.worker_max:.2f})",
            f"{cpu.gateway + cpu.publisher:.2f}",
            f"{cpu.machine:.2f} ({cpu.other:.2f})",
            "clean" if p.checker_clean else "ANOMALIES",
            f"{p.deliveries:,}",
            str(p.duplicate_deliveries),
            ",".join(map(str, p.exit_codes)),
        )
    return table


def scale_lines(report: ScaleReport) -> list[str]:
    """Where the curve flattens, and what saturates at each point."""
    lines = [f"curve: {report.flattens}"]
    for point, what in zip(report.points, report.saturates, strict=True):
        lines.append(f"{point.workers} worker(s): saturates {what}")
    for point in report.points:
        costs = ", ".join(f"{k} {v:.3f}" for k, v in cpu_per_event(point).items())
        lines.append(
            f"{point.workers} worker(s): CPU ms per event: {costs}; {report.cores} cores to "
            f"themselves would cap this at {ceiling(point, report.cores):,.0f} events/s"
        )
    return lines
