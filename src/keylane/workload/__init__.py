"""Workloads for ``keylane run``: the synthetic Black Friday day, event files, the publisher.

- :func:`generate` makes a seeded day of shopping events from a :class:`BlackFridaySpec`
  (subscribers over the US zones, sessions, carts and orders, STOP/START/HELP replies and
  adversarial patterns); :func:`summarize` measures its mix; :func:`subscriber_phones` maps
  each subscriber to its phone (for the compliance audit).
- :func:`load_events_file` / :func:`write_events_file` read and write JSON Lines event files
  (``keylane run --events FILE.jsonl``).
- :class:`ScheduledPublisher` publishes events when a (scaled) clock reaches their time.

The model, the numbers and the file format are in docs/workload.md. An application layer:
imports the journeys domain, the clock, the broker contract, the checker's recorder and the
runtime's codec; no backend, no web framework, no rich or typer.
"""

from __future__ import annotations

from keylane.workload.blackfriday import BLACK_FRIDAY_2026, BlackFridaySpec, ShoppingMix, generate
from keylane.workload.files import WorkloadFileError, load_events_file, write_events_file
from keylane.workload.mix import WorkloadSummary, subscriber_phones, summarize
from keylane.workload.publisher import PublisherStats, ScheduledPublisher

__all__ = [
    "BLACK_FRIDAY_2026",
    "BlackFridaySpec",
    "PublisherStats",
    "ScheduledPublisher",
    "ShoppingMix",
    "WorkloadFileError",
    "WorkloadSummary",
    "generate",
    "load_events_file",
    "subscriber_phones",
    "summarize",
    "write_events_file",
]
