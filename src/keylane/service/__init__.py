"""The processes: the runtime and the web apps put together (``keylane run``, later the worker
and the service).

- :class:`Pipeline`: broker, state store, provider (the embedded gateway by default) and worker.
- :func:`run_day`: ``keylane run``, a simulated shopping day and its verdicts
  (:class:`RunReport`).
"""

from __future__ import annotations

from keylane.service.pipeline import Pipeline, PipelineConfig
from keylane.service.report import RunReport
from keylane.service.run import RunConfig, RunProgress, run_day

__all__ = ["Pipeline", "PipelineConfig", "RunConfig", "RunProgress", "RunReport", "run_day"]
