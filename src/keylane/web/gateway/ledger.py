"""The embedded gateway's core: the idempotency ledger, the delivery log and the stats.

Stripe-style idempotency (``docs/providers.md``): the first request with a key is delivered and
its answer (201 and body) saved; a later request with the same key and the same content
(every field but ``sent_at``) gets the saved answer again, marked replayed, and is **not
delivered again**; the same key with different content is refused (409) and not saved. Requests
refused before delivery (bad input, injected faults) are not saved either, so their retries can
still go out.

:meth:`Ledger.submit` never awaits, so on one event loop concurrent requests with one key cannot
both deliver. Every delivery, repeated attempt, conflict and injected fault is appended to the
optional :class:`~keylane.web.gateway.journal.Journal`, from which a restarted gateway rebuilds
the ledger, so it still refuses to deliver a key twice.

Framework-free: imports no web framework.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from keylane.clock import Clock, SystemClock
from keylane.errors import InvalidArgumentError
from keylane.providers.base import CHANNELS, Delivery, DeliveryFieldError
from keylane.web.gateway.faults import FaultKind
from keylane.web.gateway.journal import Journal

__all__ = ["Answer", "ChannelStats", "DeliveryRecord", "GatewayStats", "Ledger"]

_ENCODER = msgspec.json.Encoder()

#: The fields that make two deliveries under different keys "the same message".
SAME_CONTENT_FIELDS = ("brand_id", "subscriber_id", "journey", "step", "channel", "to", "body")


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One delivered message, as the gateway's log holds it.

    Attributes:
        seq: position in the log, from 1.
        id: the gateway's message id (``msg_`` and ``seq``).
        received_at: the gateway's wall clock when it delivered.
        delivery: what was delivered (the first attempt's body, its ``sent_at`` included).
    """

    seq: int
    id: str
    received_at: dt.datetime
    delivery: Delivery

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON values (the body of the phone view and of ``/v1/deliveries``)."""
        return {
            "seq": self.seq,
            "id": self.id,
            "status": "delivered",
            "received_at": _iso(self.received_at),
            **self.delivery.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class Answer:
    """The HTTP answer to one delivery request.

    Attributes:
        status: 201 for a delivery (and its replays), 409 for a conflict.
        body: the JSON body.
        replayed: the answer is a saved one (``Idempotent-Replayed: true``).
    """

    status: int
    body: bytes
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ChannelStats:
    """Counts for one channel (see :class:`GatewayStats`)."""

    deliveries: int = 0
    repeated_attempts: int = 0
    conflicts: int = 0


@dataclass(frozen=True, slots=True)
class GatewayStats:
    """What the gateway has seen, from its log.

    Attributes:
        deliveries: messages delivered.
        repeated_attempts: requests answered from the ledger (same key, same content).
        conflicts: requests refused with 409 (same key, different content).
        rejected: requests refused as bad input (4xx other than 409), since this start.
        injected_failures: requests failed on purpose, by :class:`FaultKind` value.
        by_channel: the first three counts per channel.
        duplicate_deliveries: deliveries beyond the first of their idempotency key, counted over
            the log's delivery records. The gateway's promise is that this is 0.
        same_content_deliveries: deliveries beyond the first with the same
            ``SAME_CONTENT_FIELDS`` (brand, subscriber, journey, step, channel, to, body) under a
            *different* key. 0 unless a journey sends one step to one subscriber twice on
            purpose (a second run) or a sender derived a new key for one intent.
    """

    deliveries: int
    repeated_attempts: int
    conflicts: int
    rejected: int
    injected_failures: Mapping[str, int]
    by_channel: Mapping[str, ChannelStats]
    duplicate_deliveries: int
    same_content_deliveries: int

    def to_dict(self) -> dict[str, Any]:
        """The stats as JSON values (the body of ``GET /v1/stats``)."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


@dataclass(slots=True)
class _Counts:
    deliveries: int = 0
    repeated_attempts: int = 0
    conflicts: int = 0

    def frozen(self) -> ChannelStats:
        return ChannelStats(self.deliveries, self.repeated_attempts, self.conflicts)


@dataclass(slots=True)
class _Entry:
    record: DeliveryRecord
    answer: Answer = field(repr=False)


def _error_body(error: str, field_name: str, reason: str) -> bytes:
    return _ENCODER.encode({"error": error, "field": field_name, "reason": reason})


class Ledger:
    """The idempotency ledger and delivery log of one gateway (not thread-safe: one loop)."""

    def __init__(self, journal: Journal | None = None, clock: Clock | None = None) -> None:
        """Args:
        journal: the durable log to append to, already opened; None keeps it all in memory.
        clock: the wall clock for ``received_at``.
        """
        self._journal = journal
        self._clock = clock if clock is not None else SystemClock()
        self.clear()

    def clear(self) -> None:
        """Forget everything (before :meth:`load` rebuilds from a log); the journal stays."""
        self._records: list[DeliveryRecord] = []
        self._by_key: dict[str, _Entry] = {}
        self._by_to: dict[str, list[DeliveryRecord]] = collections.defaultdict(list)
        self._channels = {channel: _Counts() for channel in CHANNELS}
        self._faults: dict[str, int] = {kind.value: 0 for kind in FaultKind}
        self._rejected = 0

    # -- requests ------------------------------------------------------------------------------

    def submit(self, delivery: Delivery) -> Answer:
        """Deliver ``delivery`` once per key; answer a repeat from the ledger, a reuse with 409."""
        now = self._clock.now()
        entry = self._by_key.get(delivery.idempotency_key)
        if entry is None:
            seq = len(self._records) + 1
            record = DeliveryRecord(seq, f"msg_{seq:08d}", now, delivery)
            if self._journal is not None:  # written before it counts as delivered
                self._journal.append({"type": "delivery", **record.to_dict()})
            return self._add(record).answer
        differing = entry.record.delivery.differing_fields(delivery)
        channel = self._channels[delivery.channel]
        key = delivery.idempotency_key
        if differing:
            channel.conflicts += 1
            self._journal_append(
                {
                    "type": "conflict",
                    "idempotency_key": key,
                    "channel": delivery.channel,
                    "received_at": _iso(now),
                    "fields": list(differing),
                }
            )
            reason = (
                f"idempotency key {key!r} was first used with a different body "
                f"(differs in: {', '.join(differing)}); it is not delivered again"
            )
            return Answer(409, _error_body("idempotency_key_reused", "idempotency_key", reason))
        channel.repeated_attempts += 1
        self._journal_append(
            {
                "type": "replay",
                "idempotency_key": key,
                "channel": delivery.channel,
                "received_at": _iso(now),
                "sent_at": _iso(delivery.sent_at),
            }
        )
        return Answer(entry.answer.status, entry.answer.body, replayed=True)

    def note_fault(self, kind: FaultKind, idempotency_key: str | None) -> None:
        """Count (and log) a request that was failed on purpose."""
        self._faults[kind.value] += 1
        self._journal_append(
            {
                "type": "fault",
                "kind": kind.value,
                "idempotency_key": idempotency_key,
                "received_at": _iso(self._clock.now()),
            }
        )

    def note_rejected(self) -> None:
        """Count a request refused as bad input (not logged: it delivered nothing)."""
        self._rejected += 1

    # -- reading -------------------------------------------------------------------------------

    def deliveries(self, after: int = 0, limit: int | None = None) -> list[DeliveryRecord]:
        """Delivery records with ``seq > after``, oldest first, at most ``limit`` of them."""
        start = max(after, 0)
        end = None if limit is None else start + max(limit, 0)
        return self._records[start:end]

    def messages_to(self, to: str) -> list[DeliveryRecord]:
        """The deliveries to one recipient (number or address), oldest first."""
        return list(self._by_to.get(to, ()))

    def __len__(self) -> int:
        return len(self._records)

    def stats(self) -> GatewayStats:
        """Counts over the whole log (a restarted gateway's included)."""
        by_channel = {name: counts.frozen() for name, counts in self._channels.items()}
        return GatewayStats(
            deliveries=len(self._records),
            repeated_attempts=sum(c.repeated_attempts for c in by_channel.values()),
            conflicts=sum(c.conflicts for c in by_channel.values()),
            rejected=self._rejected,
            injected_failures=dict(self._faults),
            by_channel=by_channel,
            duplicate_deliveries=_repeats(r.delivery.idempotency_key for r in self._records),
            same_content_deliveries=self._same_content(),
        )

    def _same_content(self) -> int:
        keys_by_content: dict[tuple[object, ...], set[str]] = collections.defaultdict(set)
        for record in self._records:
            content = tuple(getattr(record.delivery, name) for name in SAME_CONTENT_FIELDS)
            keys_by_content[content].add(record.delivery.idempotency_key)
        return sum(len(keys) - 1 for keys in keys_by_content.values())

    # -- rebuilding ----------------------------------------------------------------------------

    def load(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Rebuild from a log's records (before serving any request).

        Every delivery record is kept, so a log with a key delivered twice shows it in
        ``duplicate_deliveries``; the first delivery of a key is the one replays answer with.

        Raises:
            InvalidArgumentError: a record of an unknown type or with bad fields (numbered).
        """
        for number, data in enumerate(records, 1):
            try:
                self._load_one(data)
            except (DeliveryFieldError, KeyError, TypeError, ValueError) as exc:
                raise InvalidArgumentError(f"gateway log record {number}: {exc}") from None

    def _load_one(self, data: Mapping[str, Any]) -> None:
        kind = data["type"]
        if kind == "delivery":
            body = {name: data[name] for name in Delivery.__struct_fields__}
            received = dt.datetime.fromisoformat(data["received_at"])
            self._add(
                DeliveryRecord(int(data["seq"]), data["id"], received, Delivery.from_dict(body))
            )
        elif kind in ("replay", "conflict"):
            counts = self._channels[data["channel"]]
            if kind == "replay":
                counts.repeated_attempts += 1
            else:
                counts.conflicts += 1
        elif kind == "fault":
            self._faults[FaultKind(data["kind"]).value] += 1
        else:
            raise ValueError(f"unknown record type {kind!r}")

    def _add(self, record: DeliveryRecord) -> _Entry:
        delivery = record.delivery
        self._records.append(record)
        self._by_to[delivery.to].append(record)
        self._channels[delivery.channel].deliveries += 1
        entry = self._by_key.get(delivery.idempotency_key)
        if entry is None:
            body = {
                "id": record.id,
                "status": "delivered",
                "idempotency_key": delivery.idempotency_key,
                "channel": delivery.channel,
                "received_at": _iso(record.received_at),
            }
            entry = _Entry(record, Answer(201, _ENCODER.encode(body)))
            self._by_key[delivery.idempotency_key] = entry
        return entry

    def _journal_append(self, record: dict[str, Any]) -> None:
        if self._journal is not None:
            self._journal.append(record)


def _repeats(values: Iterable[str]) -> int:
    counts = collections.Counter(values)
    return sum(n - 1 for n in counts.values())
