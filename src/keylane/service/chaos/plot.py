"""The run as a picture: completions per second over time, each fault marked (a PNG).

Two panels sharing the time axis: on top all workers' commits per second (by commit time) and
the load generator's rate (dashed); below, each worker's (clipped at its usual rate, so a
catch-up spike does not flatten the rest). Each fault is a line where it hit and a shaded span
until it was over, named on top. Drawn with matplotlib's Agg
backend (no display needed); ``matplotlib`` is the ``chaos`` extra.

Imports matplotlib and the harness's values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from keylane.errors import MissingExtraError
from keylane.service.chaos.report import FaultRecord
from keylane.service.chaos.timeline import Completion, per_second

__all__ = ["draw"]


def draw(
    path: Path,
    completions: Sequence[Completion],
    faults: Sequence[FaultRecord],
    origin: float,
    *,
    rate: float,
    title: str,
) -> Path:
    """Write the PNG to ``path``; return it.

    Raises:
        MissingExtraError: matplotlib is not installed (the ``chaos`` extra).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingExtraError("The chaos plot", "chaos", "matplotlib") from exc
    by_worker: dict[str, list[float]] = defaultdict(list)
    for c in completions:
        by_worker[c.consumer.rsplit("-", 1)[0]].append(c.time)
    total = per_second((c.time for c in completions), origin)
    end = max(total, default=0) + 1
    seconds = list(range(end))
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(14, 8), dpi=110, sharex=True, gridspec_kw={"height_ratios": [3, 2]}
    )
    top.plot(seconds, [total.get(s, 0) for s in seconds], color="black", linewidth=1.3,
             label="all workers")  # fmt: skip
    top.axhline(rate, color="grey", linestyle="--", linewidth=0.8, label=f"load {rate:g}/s")
    peak = max([*total.values(), rate])
    per_worker_top = 0.0
    for worker in sorted(by_worker, key=lambda n: (len(n), n)):
        counts = per_second(by_worker[worker], origin)
        values = [counts.get(s, 0) for s in seconds]
        bottom.plot(seconds, values, linewidth=0.9, label=worker)
        ordered = sorted(values)
        per_worker_top = max(per_worker_top, ordered[int(0.98 * (len(ordered) - 1))])
    top_limit = peak * 1.3
    for i, fault in enumerate(faults):
        start, stop = fault.started - origin, fault.ended - origin
        color = f"C{(i + 3) % 10}"
        for axes in (top, bottom):
            if stop - start >= 0.5:
                axes.axvspan(start, stop, color=color, alpha=0.16)
            axes.axvline(start, color=color, linewidth=1.0)
        top.text(start, top_limit * (0.98 - 0.07 * (i % 3)), f" {fault.kind.value}",
                 color=color, fontsize=8, va="top")  # fmt: skip
    top.set_ylim(0, top_limit)
    bottom.set_ylim(0, max(per_worker_top * 1.6, 1.0))
    bottom.set_xlim(0, end)
    bottom.set_xlabel("seconds since the load started")
    top.set_ylabel("commits per second")
    bottom.set_ylabel("per worker (clipped)")
    top.set_title(title)
    top.legend(loc="upper right", fontsize=8)
    bottom.legend(loc="upper right", fontsize=8, ncol=6)
    for axes in (top, bottom):
        axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
