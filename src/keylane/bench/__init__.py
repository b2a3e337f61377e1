"""Benchmarks that print measured numbers (``keylane bench ...``, ``make bench``).

Imports brokers only through the :mod:`keylane.brokers.base` contract, so every benchmark runs
against any backend.
"""

from __future__ import annotations

from keylane.bench.broker import (
    BrokerBenchResult,
    bench_broker,
    bench_broker_types,
)

__all__ = ["BrokerBenchResult", "bench_broker", "bench_broker_types"]
