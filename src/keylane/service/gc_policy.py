"""The cyclic garbage collector's thresholds while an engine runs in this process.

Responsible only for :func:`engine_gc`, which ``Pipeline`` (``keylane run``, ``keylane bench
engine``) and ``keylane worker`` enter for as long as their engine runs. Imports nothing of
keylane.

Why: the engine allocates a few dozen short-lived container objects per event (messages, tasks,
futures, the decision's values). With CPython's default gen-0 threshold (700) that is a young
collection every few dozen events, and every tenth of those also rescans generation 1; a
measured ~35% of the event loop's time went to the collector in ``keylane bench engine``
(docs/runtime.md, "Throughput"). Collecting every 50,000 net allocations instead keeps the
same three generations and the same ratios between them (so garbage cycles are still freed,
full collections still happen), at the cost of at most 50,000 more young objects alive between
collections (a few megabytes). (10,000 recovered most of it; 50,000 measured 6-24% more.)
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

__all__ = ["ENGINE_GC_THRESHOLD", "engine_gc"]

#: ``gc.set_threshold`` arguments while an engine runs: gen-0 raised, gen-1 and gen-2 as default.
ENGINE_GC_THRESHOLD = (50_000, 10, 10)


@contextlib.contextmanager
def engine_gc() -> Iterator[None]:
    """Raise the collector's gen-0 threshold for the block; the previous thresholds come back.

    Never lowers a threshold the process has already raised (an embedding application's own
    tuning wins), and leaves a disabled collector disabled.
    """
    previous = gc.get_threshold()
    wanted = tuple(max(a, b) for a, b in zip(previous, ENGINE_GC_THRESHOLD, strict=False))
    gc.set_threshold(*wanted)
    try:
        yield
    finally:
        if gc.get_threshold() == wanted:  # nobody changed them meanwhile
            gc.set_threshold(*previous)
