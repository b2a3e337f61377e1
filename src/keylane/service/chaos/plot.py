"""The run as a picture: completions per second over time, each fault marked (a PNG).

One line per worker (its commits per second, by commit time), the total in black and the load
generator's rate as a dashed line; each fault is a shaded span from when it hit to when it was
over (a line for an instantaneous one) with its name on top. Drawn with matplotlib's Agg
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
    figure, axes = plt.subplots(figsize=(14, 6), dpi=110)
    for worker in sorted(by_worker, key=lambda n: (len(n), n)):
        counts = per_second(by_worker[worker], origin)
        axes.plot(seconds, [counts.get(s, 0) for s in seconds], linewidth=0.9, label=worker)
    axes.plot(seconds, [total.get(s, 0) for s in seconds], color="black", linewidth=1.4,
              label="all workers")  # fmt: skip
    axes.axhline(rate, color="grey", linestyle="--", linewidth=0.8, label=f"load {rate:g}/s")
    top = max([*total.values(), rate]) * 1.25
    for i, fault in enumerate(faults):
        start, stop = fault.started - origin, fault.ended - origin
        color = f"C{(i + 3) % 10}"
        if stop - start >= 0.5:
            axes.axvspan(start, stop, color=color, alpha=0.18)
        axes.axvline(start, color=color, linewidth=1.0)
        axes.text(start, top * (0.97 - 0.06 * (i % 3)), f" {fault.kind.value}", color=color,
                  fontsize=8, va="top")  # fmt: skip
    axes.set_ylim(0, top)
    axes.set_xlim(0, end)
    axes.set_xlabel("seconds since the load started")
    axes.set_ylabel("commits per second")
    axes.set_title(title)
    axes.legend(loc="lower left", fontsize=8, ncol=4)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
