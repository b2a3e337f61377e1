"""The fault-injection harness (``keylane chaos``, ``make chaos``): real faults on real processes.

It starts the gateway, N ``keylane worker`` processes and the load generator on the Pulsar and
PostgreSQL that ``scripts/services.py`` manages, injects faults on a schedule (``schedule``:
kill -9, a SIGSTOP zombie, scale-out and scale-in, broker and store restarts, a slow
subscriber, poison events, gateway 5xx and timeouts; ``faults``), and then verifies, from the
merged histories, the store, the DLQ and the gateway's log, that nothing was committed twice or
concurrently, nothing was lost, nothing was delivered twice and nothing broke the compliance
rules (``verify``). ``docs/chaos.md`` is the reference.

Modules: ``schedule`` (the faults and profiles), ``procs`` (child processes, cleaned up on any
exit), ``backends`` (scripts/services.py, the broker's admin API), ``faults`` (the injectors),
``timeline`` (recovery times), ``consent`` (consent changes replayed from the commits),
``verify`` (the invariants), ``report`` (values), ``plot`` (the PNG), ``runner`` (the run).
``hooks`` is the worker's test-only ``--fault-hooks`` wrapper, and the only module the worker
imports; nothing here is imported by the rest of keylane otherwise.

This package imports nothing from it on purpose: import the modules you need.
"""
