"""The compliance audit of a gateway's delivery log: :func:`audit` -> :class:`ComplianceReport`.

``keylane run`` re-checks every message the embedded gateway delivered, from the gateway's own
records, against the rules the engine is meant to keep (the rules and their exact semantics are
in :mod:`keylane.audit.rules` and docs/workload.md):

- quiet hours in the recipient's zone(s), for marketing SMS and email;
- frequency caps over rolling windows (the brand's and the FL/OK legal cap), marketing only;
- nothing after an opt-out but its one STOP confirmation;
- no idempotency key delivered twice.

The audit is independent of the engine: it reads the journeys file for data (the brands'
windows, zones and caps) but re-derives each check from the log, so a bug in the engine's
decision functions cannot hide a violation here.

An application layer: imports the journeys' data, the provider contract and phonenumbers; no
backend, no web framework.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol, runtime_checkable

from keylane.audit.report import ComplianceReport, ConsentChange, Violation, ViolationKind
from keylane.audit.rules import (
    Finding,
    Row,
    after_opt_out,
    duplicates,
    frequency_caps,
    quiet_hours,
)
from keylane.clock import as_utc
from keylane.errors import InvalidArgumentError
from keylane.journeys import JourneySet
from keylane.providers.base import Delivery, DeliveryFieldError, mask_recipient

__all__ = ["DeliveredRecord", "audit"]

_FIELDS = Delivery.__struct_fields__


@runtime_checkable
class DeliveredRecord(Protocol):
    """A gateway log record (:class:`keylane.web.gateway.ledger.DeliveryRecord`)."""

    @property
    def delivery(self) -> Delivery:
        """What was delivered."""
        ...


def _row(index: int, item: object) -> Row:
    if isinstance(item, Delivery):
        return Row(index, item)
    if isinstance(item, DeliveredRecord) and isinstance(item.delivery, Delivery):
        return Row(index, item.delivery)
    if isinstance(item, Mapping):
        try:
            return Row(index, Delivery.from_dict({k: item[k] for k in _FIELDS if k in item}))
        except DeliveryFieldError as exc:
            raise InvalidArgumentError(f"deliveries[{index}]: {exc}") from None
    raise InvalidArgumentError(
        f"deliveries[{index}]: must be a Delivery, a DeliveryRecord or a mapping of its fields, "
        f"got {type(item).__name__}"
    )


def _phones(rows: Iterable[Row], given: Mapping[str, str] | None) -> dict[str, str]:
    """Each subscriber key's phone: the given map, else the number its SMS went to."""
    phones: dict[str, str] = {}
    for row in rows:
        if row.delivery.channel == "sms":
            phones[row.key] = row.delivery.to
    if given is not None:
        for key, phone in given.items():
            if not isinstance(key, str) or not isinstance(phone, str) or not phone.startswith("+"):
                raise InvalidArgumentError(
                    f"phones: must map subscriber keys to E.164 numbers, got {key!r}: {phone!r}"
                )
        phones.update(given)
    return phones


def audit(
    deliveries: Iterable[object],
    journeys: JourneySet,
    consent_changes: Iterable[ConsentChange] = (),
    *,
    now: datetime | None = None,
    phones: Mapping[str, str] | None = None,
    max_examples: int = 10,
) -> ComplianceReport:
    """Re-check every delivered message of a gateway's log.

    Args:
        deliveries: the log: :class:`~keylane.providers.Delivery` values, gateway
            ``DeliveryRecord`` objects, or their JSON dicts (``DeliveryRecord.to_dict()``, the
            gateway's ``/v1/deliveries`` items or its log's ``delivery`` records).
        journeys: the journeys file the engine ran with (brands' windows, zones and caps).
        consent_changes: the engine's opt-out and opt-in decisions, with their times.
        now: when the audit runs; recorded in the report.
        phones: subscriber key -> phone, for email quiet hours when the delivery has no
            ``subscriber_timezone`` (the engine resolves such a recipient by the phone's zones).
            Without it, the number of the subscriber's SMS in the log is used, else the brand's
            default zones.
        max_examples: the most example violations kept per kind.

    Returns:
        the counts per kind, examples, and the number of deliveries checked.

    Raises:
        InvalidArgumentError: a delivery that is not one of the accepted forms or has a bad
            field (``deliveries[3]: sent_at: ...``), a bad consent change, journeys, ``now``,
            ``phones`` or ``max_examples``.
    """
    if not isinstance(journeys, JourneySet):
        raise InvalidArgumentError(f"journeys: must be a JourneySet, got {journeys!r}")
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 0:
        raise InvalidArgumentError(f"max_examples: must be an int >= 0, got {max_examples!r}")
    audited_at = None if now is None else as_utc(now, "now")
    rows = [_row(index, item) for index, item in enumerate(deliveries)]
    changes = list(consent_changes)
    for index, change in enumerate(changes):
        if not isinstance(change, ConsentChange):
            raise InvalidArgumentError(
                f"consent_changes[{index}]: must be a ConsentChange, got {type(change).__name__}"
            )
    findings: dict[ViolationKind, list[Finding]] = {
        ViolationKind.QUIET_HOURS: quiet_hours(rows, journeys, _phones(rows, phones)),
        ViolationKind.FREQUENCY_CAP: frequency_caps(rows, journeys),
        ViolationKind.AFTER_OPT_OUT: after_opt_out(rows, changes),
        ViolationKind.DUPLICATE: duplicates(rows),
    }
    return ComplianceReport(
        deliveries=len(rows),
        marketing=sum(row.marketing for row in rows),
        counts={kind.value: len(found) for kind, found in findings.items()},
        examples={
            kind.value: tuple(
                _violation(kind, finding) for finding in _earliest(found, max_examples)
            )
            for kind, found in findings.items()
        },
        audited_at=audited_at,
    )


def _earliest(found: list[Finding], limit: int) -> list[Finding]:
    return sorted(found, key=lambda f: (f[0].delivery.sent_at, f[0].index))[:limit]


def _violation(kind: ViolationKind, finding: Finding) -> Violation:
    row, detail = finding
    d = row.delivery
    return Violation(
        kind=kind,
        idempotency_key=d.idempotency_key,
        key=row.key,
        to=mask_recipient(d.to),
        channel=d.channel,
        journey=d.journey,
        step=d.step,
        sent_at=d.sent_at,
        detail=detail,
    )
