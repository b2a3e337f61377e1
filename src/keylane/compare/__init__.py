"""Simulation harness: the shopping workload, the simulated handler and ``keylane compare``.

Modules: ``workload`` (seeded sessions), ``state`` (per-user counters), ``handler`` (the
read-modify-write decision handler), ``publisher`` (closed-loop producer), ``compare`` (runs the
strategies), ``results``/``stats`` (numbers), ``report`` (rich rendering). The sim may import
backends; it never imports ``keylane.cli``.
"""

from __future__ import annotations
