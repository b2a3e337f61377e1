"""Audits of what keylane delivered, re-derived from the gateway's own log.

:func:`audit` re-checks every delivered message (quiet hours in the recipient's zones,
frequency caps over rolling windows, sends after an opt-out, duplicate deliveries) and returns a
:class:`ComplianceReport`. The rules are in docs/workload.md, "The compliance audit".

An application layer: imports the journeys' data tables and config and the provider contract;
it never calls the engine's decision functions. No backend, no web framework.
"""

from __future__ import annotations

from keylane.audit.compliance import DeliveredRecord, audit
from keylane.audit.report import ComplianceReport, ConsentChange, Violation, ViolationKind

__all__ = [
    "ComplianceReport",
    "ConsentChange",
    "DeliveredRecord",
    "Violation",
    "ViolationKind",
    "audit",
]
