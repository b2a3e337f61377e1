"""Decision-engine benchmark: ``decide`` over a realistic event mix (``keylane bench decide``).

:func:`run_decide_bench` generates a seeded shopping workload over one simulated day for
``subscribers`` subscribers (each starts with ``subscribed``; then about 96% ``product_viewed``,
2.5% ``added_to_cart``, 0.8% ``order_placed``, and a few ``checkout_started``,
``message_clicked`` and ``sms_received`` replies), validates it with ``parse_event`` (not timed),
then decides it twice with the packaged default journeys:

- in memory: states kept as objects between decisions;
- with the codec: each decision decodes the subscriber's stored bytes and encodes the new state,
  as the runtime does around its compare-and-set.

Timers the decisions arm are delivered as ``timer_fired`` events when the simulated clock
reaches them, and count as decisions. The figure is wall-clock decisions per second of the
decision loop alone (event generation excluded), on one core.

Imports the journeys domain only.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from keylane.errors import InvalidArgumentError
from keylane.journeys import (
    Event,
    EventType,
    JourneySet,
    SubscriberState,
    decide,
    decode_state,
    encode_state,
    load_default_journeys,
    parse_event,
)

__all__ = ["DecideBenchResult", "make_workload", "run_decide_bench"]

#: The share of each shopping event type after a subscriber's ``subscribed``.
MIX: tuple[tuple[str, float], ...] = (
    ("product_viewed", 0.960),
    ("added_to_cart", 0.025),
    ("order_placed", 0.008),
    ("checkout_started", 0.003),
    ("message_clicked", 0.002),
    ("sms_received", 0.002),
)
_AREA_CODES = (305, 813, 407, 415, 213, 212, 646, 512, 405, 918, 907, 208, 617, 702, 303)
_REPLIES = ("STOP", "help", "Thanks!", "yes", "stop all", "when is the sale?")
START = datetime(2026, 6, 10, 4, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DecideBenchResult:
    """One run of the benchmark.

    Attributes:
        events: workload events (timer firings not included).
        subscribers: distinct subscribers.
        decisions: decisions made per pass (workload events + timer firings).
        seconds: wall-clock seconds of the in-memory pass.
        codec_seconds: wall-clock seconds of the pass with state decode/encode per decision.
        cpu_seconds: CPU seconds of the in-memory pass (steadier on a shared machine).
        codec_cpu_seconds: CPU seconds of the codec pass.
        sends: send intents produced (per pass; both passes agree).
        reasons: reason codes counted over the in-memory pass.
        mean_state_bytes: mean encoded state size at the end.
        max_state_bytes: largest encoded state at the end.
    """

    events: int
    subscribers: int
    decisions: int
    seconds: float
    codec_seconds: float
    cpu_seconds: float
    codec_cpu_seconds: float
    sends: int
    reasons: dict[str, int]
    mean_state_bytes: float
    max_state_bytes: int

    @property
    def decisions_per_s(self) -> float:
        """Decisions per second, states in memory."""
        return self.decisions / self.seconds if self.seconds > 0 else float("inf")

    @property
    def codec_decisions_per_s(self) -> float:
        """Decisions per second including the state decode and encode of each decision."""
        return self.decisions / self.codec_seconds if self.codec_seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, object]:
        """A JSON-friendly view."""
        return {
            "events": self.events,
            "subscribers": self.subscribers,
            "decisions": self.decisions,
            "seconds": round(self.seconds, 4),
            "decisions_per_s": round(self.decisions_per_s),
            "codec_seconds": round(self.codec_seconds, 4),
            "codec_decisions_per_s": round(self.codec_decisions_per_s),
            "decisions_per_cpu_s": round(self.decisions / self.cpu_seconds),
            "codec_decisions_per_cpu_s": round(self.decisions / self.codec_cpu_seconds),
            "sends": self.sends,
            "mean_state_bytes": round(self.mean_state_bytes, 1),
            "max_state_bytes": self.max_state_bytes,
            "reasons": dict(sorted(self.reasons.items())),
        }


def _profile(rng: random.Random, index: int) -> dict[str, Any]:
    phone = f"+1{rng.choice(_AREA_CODES)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}"
    props: dict[str, Any] = {
        "phone": phone,
        "email": f"shopper{index}@example.com",
        "consent": {"sms": rng.random() < 0.9, "email": rng.random() < 0.8},
        "attributes": {"first_name": f"S{index}"},
    }
    if rng.random() < 0.3:
        props["timezone"] = rng.choice(("America/New_York", "America/Chicago", "America/Denver"))
    return props


def make_workload(events: int, subscribers: int, seed: int) -> list[Event]:
    """The validated workload, ordered by time: each subscriber subscribes, then shops."""
    if events < subscribers or subscribers < 1:
        raise InvalidArgumentError(f"events ({events}) must be >= subscribers ({subscribers}) >= 1")
    rng = random.Random(seed)
    day_ms = 86_400_000
    raw: list[tuple[int, int, dict[str, Any]]] = []
    first: dict[int, int] = {}
    for index in range(subscribers):
        at = rng.randrange(0, day_ms // 4)
        first[index] = at
        raw.append((at, index, {"type": "subscribed", "properties": _profile(rng, index)}))
    types = [name for name, _ in MIX]
    weights = [share for _, share in MIX]
    for kind in rng.choices(types, weights, k=events - subscribers):
        index = rng.randrange(subscribers)
        at = rng.randrange(first[index] + 1, day_ms)
        props: dict[str, Any] = {}
        if kind in ("product_viewed", "added_to_cart"):
            props = {"product_id": f"p{rng.randrange(500)}", "product_name": "Trail shoes"}
        elif kind == "order_placed":
            props = {"order_id": f"o{rng.randrange(10**9)}", "total": 59.0}
        elif kind == "sms_received":
            props = {"text": rng.choice(_REPLIES)}
        raw.append((at, index, {"type": kind, "properties": props}))
    raw.sort(key=lambda item: item[0])
    workload = []
    for number, (at, index, body) in enumerate(raw):
        body.update(
            event_id=f"ev-{seed}-{number}",
            brand_id="acme",
            subscriber_id=f"sub-{index}",
            occurred_at=START + timedelta(milliseconds=at),
        )
        workload.append(parse_event(body))
    return workload


def _timer_event(number: int, brand: str, subscriber: str, timer_id: str, at: datetime) -> Event:
    return Event(
        event_id=f"timer-{number}",
        brand_id=brand,
        subscriber_id=subscriber,
        type=EventType.TIMER_FIRED,
        occurred_at=at,
        properties={"timer_id": timer_id},
    )


def _run(
    workload: list[Event], journeys: JourneySet, codec: bool
) -> tuple[float, int, int, Counter[str], dict[str, Any]]:
    states: dict[str, Any] = {}
    timers: list[tuple[datetime, int, str, str, str]] = []
    reasons: Counter[str] = Counter()
    decisions = sends = fired = 0
    started = time.perf_counter()
    for event in workload:
        now = event.occurred_at
        due: list[Event] = []
        while timers and timers[0][0] <= now:
            at, _, brand, subscriber, timer_id = heapq.heappop(timers)
            fired += 1
            due.append(_timer_event(fired, brand, subscriber, timer_id, at))
        due.append(event)
        for item in due:
            key = item.key
            stored = states.get(key)
            state: SubscriberState | None
            state = decode_state(stored) if codec and stored is not None else stored
            decision = decide(state, item, item.occurred_at, journeys)
            states[key] = encode_state(decision.new_state) if codec else decision.new_state
            decisions += 1
            sends += len(decision.sends)
            for reason in decision.reasons:
                reasons[reason.code] += 1
            for spec in decision.timers_to_arm:
                heapq.heappush(
                    timers,
                    (spec.due_at, decisions, spec.brand_id, spec.subscriber_id, spec.timer_id),
                )
    return time.perf_counter() - started, decisions, sends, reasons, states


def run_decide_bench(
    events: int = 200_000, subscribers: int = 2_000, seed: int = 1
) -> DecideBenchResult:
    """Generate the workload and time ``decide`` over it, without and with the state codec.

    Args:
        events: workload events (timer firings come on top).
        subscribers: distinct subscribers (each has a ``subscribed`` event first).
        seed: the workload's random seed.
    """
    journeys = load_default_journeys()
    workload = make_workload(events, subscribers, seed)
    cpu = time.process_time()
    seconds, decisions, sends, reasons, states = _run(workload, journeys, codec=False)
    cpu, cpu_seconds = time.process_time(), time.process_time() - cpu
    codec_seconds, codec_decisions, codec_sends, _, _ = _run(workload, journeys, codec=True)
    codec_cpu_seconds = time.process_time() - cpu
    if (codec_decisions, codec_sends) != (decisions, sends):  # pragma: no cover - determinism
        raise AssertionError("the codec pass decided differently from the in-memory pass")
    sizes = [len(encode_state(state)) for state in states.values()]
    return DecideBenchResult(
        events=events,
        subscribers=subscribers,
        decisions=decisions,
        seconds=seconds,
        codec_seconds=codec_seconds,
        cpu_seconds=max(cpu_seconds, 1e-9),
        codec_cpu_seconds=max(codec_cpu_seconds, 1e-9),
        sends=sends,
        reasons={str(code): count for code, count in reasons.items()},
        mean_state_bytes=sum(sizes) / len(sizes),
        max_state_bytes=max(sizes),
    )
