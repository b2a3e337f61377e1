"""The talk's comparison: five ways to consume a keyed topic, side by side (``keylane compare``).

An application of the library, not its top floor: ``strategies`` (shared, shared-lock, failover,
key-shared-serial, key-shared-lanes), ``workload`` (seeded shopping sessions), ``handler`` (the
read-modify-write handler around a slow call, on the state contract), ``publisher`` (the
closed- or open-loop producer), ``runner`` (runs the strategies and judges them with the checker),
``results``/``stats`` (numbers) and ``demo`` (``keylane demo``). Rendering lives in
:mod:`keylane.cli.render.compare`. May import backends; never imports ``keylane.cli``.
"""

from __future__ import annotations
