"""The invariants a chaos run must keep, judged from what the run left behind.

Inputs (:class:`Evidence`, gathered by the runner): the merged histories (the publishers', the
harness's own publications, every worker's attempts), the poison events' message ids, the
dead-letter topic's messages, the gateway's log and stats, the outbox rows the store marks
``SENT``, and the consent changes replayed from the commits. :func:`verify` turns them into
:class:`Invariant` rows, each a count that must be 0:

1. **committed exclusivity violations**: the checker's decision checks (``committed_overlaps``,
   ``version_conflicts``, ``decided_twice``, ``commit_order``, ``unbacked_dedupes``) summed.
   An unbacked dedupe whose event id the store has marked for its key is an *in-doubt commit*
   instead: an attempt whose commit landed while its worker saw the store fail (a PostgreSQL
   restart), so the history holds no record of it, and whose retry found it done. Those are
   counted and shown, not violations (the mark is written in the commit's transaction);
2. **lost events**: published events neither decided (``ok`` or a backed ``dedupe``) nor
   dead-lettered with a reason, plus poison events not dead-lettered with a reason;
3. **duplicate deliveries**: the gateway's count and the log's own (an idempotency key
   delivered twice), the larger;
4. **compliance violations**: :func:`keylane.audit.audit` over the gateway's log with the
   replayed consent changes. Quiet hours and caps are judged on each delivery's ``sent_at``
   (its relay's engine clock, the one its dispatch-time re-check used); sends after an opt-out
   on one clock for everything, the run's shared engine time: each delivery at the time the
   gateway received it and each consent change at the time its commit returned (worker clocks
   differ by their start-up times, so comparing a relay's ``sent_at`` with another worker's
   commit time would report orderings that never happened);
5. **sends lost between store and gateway**: outbox rows ``SENT`` that the gateway never
   delivered (a delivery the store did not record as ``SENT`` is counted, not a violation: its
   retry may still have been under way when the run ended).

Imports the checker, the audit and the chaos harness's values; no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from keylane.audit import ComplianceReport, ViolationKind, audit
from keylane.check import DEDUPE, OK, Attempt, History, Report, check
from keylane.journeys import JourneySet
from keylane.service.chaos.consent import Replay

__all__ = ["Evidence", "Invariant", "Verification", "unbacked_dedupes", "verify"]


@dataclass(frozen=True, slots=True)
class Invariant:
    """One invariant: its name, the violations found (must be 0), what was counted, and a few
    examples of the violations."""

    name: str
    violations: int
    detail: str
    examples: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """No violation."""
        return self.violations == 0


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the run left behind (see the module docstring).

    Attributes:
        history: every history file, merged.
        poison: message ids of the poison events the harness published.
        dead_letters: dead-letter topic: origin message id -> the ``KEYLANE_DLQ_ERROR`` reason.
        deliveries: the gateway log's delivery records (JSON objects).
        received: the same records with ``sent_at`` replaced by the run's shared engine time at
            which the gateway received them (the frame of ``consent``).
        gateway_duplicates: ``duplicate_deliveries`` from the gateway's ``/v1/stats``.
        sent_keys: idempotency keys of the outbox rows marked ``SENT``.
        consent: the replayed consent changes.
        in_doubt: (key, event id) of the unbacked dedupes whose event the store has marked.
        journeys: the journeys the workers ran.
        phones: subscriber key -> phone (the audit's email zones).
    """

    history: History
    poison: tuple[str, ...]
    dead_letters: Mapping[str, str]
    deliveries: Sequence[Mapping[str, object]]
    gateway_duplicates: int
    sent_keys: frozenset[str]
    consent: Replay
    journeys: JourneySet
    phones: Mapping[str, str] = field(default_factory=dict)
    in_doubt: frozenset[tuple[str, str]] = frozenset()
    received: Sequence[Mapping[str, object]] | None = None


@dataclass(frozen=True, slots=True)
class Verification:
    """The verdict: the invariants, and the checker's and the audit's full reports."""

    invariants: tuple[Invariant, ...]
    checker: Report
    compliance: ComplianceReport
    published: int
    decided: int
    dead_lettered: int

    @property
    def ok(self) -> bool:
        """Every invariant holds."""
        return all(invariant.ok for invariant in self.invariants)


def unbacked_dedupes(attempts: Iterable[Attempt]) -> list[Attempt]:
    """The first dedupe of each message decided only by dedupes of an event id no commit of its
    key carries (the checker's ``unbacked_dedupes``, every one of them)."""
    committed: set[tuple[str, str]] = set()
    done: set[tuple[str, int]] = set()
    dedupes: dict[tuple[str, int], Attempt] = {}
    for a in attempts:
        if a.outcome == OK:
            done.add((a.key, a.seq))
            if a.version is not None and a.event_id is not None:
                committed.add((a.key, a.event_id))
        elif a.outcome == DEDUPE:
            first = dedupes.get((a.key, a.seq))
            if first is None or a.start < first.start:
                dedupes[(a.key, a.seq)] = a
    return [
        a
        for kv, a in dedupes.items()
        if kv not in done and (a.key, a.event_id or "") not in committed
    ]


def _exclusivity(report: Report, in_doubt: int) -> Invariant:
    decisions = report.decisions
    if decisions is None:
        return Invariant("committed exclusivity violations", 1, "no decision was recorded")
    counts = decisions.counts()
    kinds = (
        "committed_overlaps",
        "version_conflicts",
        "decided_twice",
        "commit_order",
        "unbacked_dedupes",
    )
    counts["unbacked_dedupes"] = max(0, counts["unbacked_dedupes"] - in_doubt)
    detail = ", ".join(f"{kind} {counts[kind]}" for kind in kinds)
    if in_doubt:
        detail += f" (+{in_doubt} in-doubt commits confirmed by the store's dedupe marks)"
    detail += (
        f" (commits {decisions.committed:,}, fenced {decisions.fenced:,}, dedupes "
        f"{decisions.dedupes:,}; overlapping attempts {report.exclusivity_count:,}, not an anomaly)"
    )
    examples = tuple(
        f"{e.kind} {e.key}: {e.detail} "
        + "; ".join(f"{a.consumer} {a.outcome} {a.event_id} v{a.read_version}->{a.version}"
                    for a in e.attempts)
        for e in decisions.examples
    )  # fmt: skip
    return Invariant(
        "committed exclusivity violations", sum(counts[kind] for kind in kinds), detail, examples
    )


def _lost(evidence: Evidence) -> tuple[Invariant, int, int, int]:
    history = evidence.history
    done = {(a.key, a.seq) for a in history.attempts if a.outcome in (OK, DEDUPE)}
    published = {(p.key, p.seq): p.message_id for p in history.published}
    dead = {mid for mid, reason in evidence.dead_letters.items() if reason}
    undecided = {kv: mid for kv, mid in published.items() if kv not in done}
    lost = [mid for mid in undecided.values() if mid not in dead]
    poison_lost = [mid for mid in evidence.poison if mid not in dead]
    dead_valid = len(undecided) - len(lost)
    reasons = Counter(evidence.dead_letters[mid].split(":", 1)[0] for mid in evidence.poison
                      if mid in dead)  # fmt: skip
    detail = (
        f"published {len(published):,} events: {len(published) - len(undecided):,} decided, "
        f"{dead_valid:,} dead-lettered; {len(evidence.poison)} poison: "
        f"{len(evidence.poison) - len(poison_lost)} dead-lettered with a reason"
        + (f" ({', '.join(f'{k} {n}' for k, n in sorted(reasons.items()))})" if reasons else "")
    )
    examples = tuple(f"{mid} never decided" for mid in lost[:5])
    examples += tuple(f"poison {mid} not dead-lettered" for mid in poison_lost[:5])
    invariant = Invariant("lost events", len(lost) + len(poison_lost), detail, examples)
    dead_total = dead_valid + len(evidence.poison) - len(poison_lost)
    return invariant, len(published), len(published) - len(undecided), dead_total


def _duplicates(evidence: Evidence) -> Invariant:
    keys = Counter(str(d.get("idempotency_key")) for d in evidence.deliveries)
    in_log = sum(n - 1 for n in keys.values())
    count = max(in_log, evidence.gateway_duplicates)
    detail = (
        f"{len(evidence.deliveries):,} deliveries of {len(keys):,} idempotency keys; "
        f"gateway stats {evidence.gateway_duplicates}, log {in_log}"
    )
    twice = tuple(f"{key} delivered {n} times" for key, n in keys.items() if n > 1)
    return Invariant("duplicate deliveries", count, detail, twice[:5])


def _store(evidence: Evidence) -> Invariant:
    delivered = {str(d.get("idempotency_key")) for d in evidence.deliveries}
    missing = evidence.sent_keys - delivered
    extra = delivered - evidence.sent_keys
    detail = (
        f"{len(evidence.sent_keys):,} outbox rows SENT, all but {len(missing)} delivered; "
        f"{len(extra)} delivered without a SENT row (a retry under way at the end)"
    )
    examples = tuple(f"{key} SENT, not delivered" for key in sorted(missing)[:5])
    return Invariant("SENT rows never delivered", len(missing), detail, examples)


def verify(evidence: Evidence) -> Verification:
    """Judge the run (see the module docstring)."""
    report = check(evidence.history)
    lost, published, decided, dead = _lost(evidence)
    by_sender = audit(evidence.deliveries, evidence.journeys, (), phones=evidence.phones,
                      max_examples=5)  # fmt: skip
    shared = audit(
        evidence.deliveries if evidence.received is None else evidence.received,
        evidence.journeys,
        evidence.consent.changes,
        phones=evidence.phones,
        max_examples=5,
    )
    opt_out = ViolationKind.AFTER_OPT_OUT.value
    compliance = ComplianceReport(
        deliveries=by_sender.deliveries,
        marketing=by_sender.marketing,
        counts={**by_sender.counts, opt_out: shared.counts[opt_out]},
        examples={**by_sender.examples, opt_out: shared.examples.get(opt_out, ())},
    )
    counts = ", ".join(f"{kind} {n}" for kind, n in compliance.counts.items())
    replay = evidence.consent
    compliance_row = Invariant(
        "compliance violations",
        compliance.total,
        f"{counts}; {compliance.deliveries:,} deliveries ({compliance.marketing:,} marketing), "
        f"{len(replay.changes)} consent changes replayed from {replay.decisions:,} commits",
        tuple(
            f"{v.kind.value} {v.key} {v.channel} {v.journey}/{v.step} at "
            f"{v.sent_at.isoformat()}: {v.detail}"
            for found in compliance.examples.values()
            for v in found
        ),
    )
    in_doubt = {(a.key, a.event_id or "") for a in unbacked_dedupes(evidence.history.attempts)}
    invariants = (
        _exclusivity(report, len(in_doubt & evidence.in_doubt)),
        lost,
        _duplicates(evidence),
        compliance_row,
        _store(evidence),
    )
    return Verification(invariants, report, compliance, published, decided, dead)
