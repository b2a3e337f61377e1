"""The synthetic Black Friday day: :func:`generate` turns a :class:`BlackFridaySpec` into events.

The model (numbers in docs/workload.md):

- **Subscribers** (:mod:`.population`): spread over brands and over the US zones by real area
  codes (Florida and Oklahoma among them), some with a profile ``timezone``, a few email-only or
  SMS-only, consent per channel.
- **Known before they shop**: a subscriber who exists before the day gets a ``profile_updated``
  (phone, email, zone, consent; ``source = "crm_sync"``) seconds to minutes before their first
  event, so the engine knows the number and the consent without sending a welcome text
  (``subscribed`` would start the welcome journey). Subscribers with no event that day get none.
- **New subscriptions**: a share subscribes during the day (``subscribed``, from a pop-up a
  little before they browse, or at a diurnal time), which sends the welcome message.
- **Sessions** (:mod:`.sessions`): a heavy-tailed number per subscriber, started with the day's
  intensity (peak around noon Eastern), geometric views, and carts, checkouts and orders in
  the ratios of :class:`ShoppingMix`.
- **Replies**: STOP in its variants (some followed by START), HELP, and texts that are no
  keyword.
- **Adversarial patterns**: cart + order within 1 s; one scraping bot with thousands of views
  (a hot key); STOP replies seconds after a cart abandonment's SMS falls due (30 min after the
  cart), so the STOP races a pending send.

The result is sorted by ``occurred_at`` (each subscriber's events in their own order), every
event id is unique, and the same spec always gives the same list.

Imports the journeys' event model and the standard library only.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from keylane.journeys import Event, EventType
from keylane.workload.catalog import Catalog
from keylane.workload.population import Subscriber, brand_ids, make_subscribers
from keylane.workload.sessions import Diurnal, Draft, SessionShape, draft_session
from keylane.workload.spec import BLACK_FRIDAY_2026, BlackFridaySpec, ShoppingMix

__all__ = [
    "BLACK_FRIDAY_2026",
    "CHATTER_TEXTS",
    "HELP_TEXTS",
    "START_TEXTS",
    "STOP_TEXTS",
    "BlackFridaySpec",
    "ShoppingMix",
    "generate",
]

#: STOP replies as shoppers type them, with weights; each is an opt-out keyword after the
#: engine's normalisation (case, punctuation, emoji and hyphens).
STOP_TEXTS: tuple[tuple[str, float], ...] = (
    ("STOP", 50), ("stop", 15), ("Stop.", 10), ("UNSUBSCRIBE", 5), ("opt out", 5),
    ("Opt-Out", 3), ("STOP ALL", 3), ("cancel", 3), ("quit", 2), ("End", 2), ("stop 🛑", 2),
)  # fmt: skip
#: Opt-in replies after a STOP.
START_TEXTS: tuple[tuple[str, float], ...] = (("START", 60), ("start", 20), ("Unstop", 10),
                                              ("YES", 10))  # fmt: skip
#: Help requests.
HELP_TEXTS: tuple[tuple[str, float], ...] = (("HELP", 60), ("help", 20), ("Help?", 10),
                                             ("INFO", 10))  # fmt: skip
#: Replies that are no keyword.
CHATTER_TEXTS: tuple[tuple[str, float], ...] = (
    ("Thanks!", 40), ("Is the sale still on?", 30), ("👍", 20), ("when does it end", 10),
)  # fmt: skip

#: The cart abandonment SMS falls due this long after the cart (the default journeys).
CART_SMS_DELAY_MS = 30 * 60_000
#: Earliest event after the day starts (so each subscriber's profile can precede it).
_MARGIN = timedelta(minutes=1)
_BOT_ID = "bot-0001"


class _Rows:
    """The drafted rows of every subscriber, turned into sorted, numbered events at the end."""

    def __init__(self) -> None:
        self.by_subscriber: dict[Subscriber, list[Draft]] = defaultdict(list)

    def add(self, who: Subscriber, at: int, kind: EventType, props: dict[str, Any]) -> None:
        self.by_subscriber[who].append((at, kind, props))

    def extend(self, who: Subscriber, rows: list[Draft]) -> None:
        self.by_subscriber[who].extend(rows)

    def events(self, prefix: str) -> list[Event]:
        # (time, draft order) is unique, so the sort never compares further and ties keep
        # the order the rows were drafted in (a session's rows in session order).
        flat: list[tuple[int, int, Subscriber, EventType, dict[str, Any]]] = []
        order = 0
        for who, rows in self.by_subscriber.items():
            for at, kind, props in rows:
                flat.append((at, order, who, kind, props))
                order += 1
        flat.sort()
        width = max(7, len(str(len(flat))))
        return [
            Event(
                event_id=f"{prefix}-{number:0{width}d}",
                brand_id=who.brand_id,
                subscriber_id=who.subscriber_id,
                type=kind,
                occurred_at=datetime.fromtimestamp(at / 1000, UTC),
                properties=props,
            )
            for number, (at, _, who, kind, props) in enumerate(flat, 1)
        ]


def _profile(who: Subscriber, source: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    consent: dict[str, bool] = {}
    if who.phone is not None:
        props["phone"] = who.phone
        consent["sms"] = who.sms_consent
    if who.email is not None:
        props["email"] = who.email
        consent["email"] = who.email_consent
    if who.timezone is not None:
        props["timezone"] = who.timezone
    props["consent"] = consent
    props["source"] = source
    props["attributes"] = {"first_name": who.first_name, "tier": who.tier}
    return props


def _text(rng: random.Random, choices: tuple[tuple[str, float], ...]) -> str:
    texts = [text for text, _ in choices]
    return rng.choices(texts, weights=[weight for _, weight in choices])[0]


def _shape(spec: BlackFridaySpec) -> SessionShape:
    p = spec.session_probabilities()
    return SessionShape(
        mean_views=spec.mean_views_per_session,
        cart=p["cart"],
        checkout=p["checkout"],
        order=p["order"],
        click=p["click"],
        fast_checkout=spec.fast_checkout_share,
    )


def generate(spec: BlackFridaySpec | None = None) -> list[Event]:
    """The day's events for ``spec`` (the defaults when None), sorted by ``occurred_at``.

    Deterministic: the same spec (seed included) gives equal lists. Event ids are
    ``bf<seed>-<n>``, unique within the list.
    """
    spec = BlackFridaySpec() if spec is None else spec
    rng = random.Random(spec.seed)
    brands = brand_ids(spec.brands)
    people = make_subscribers(
        rng,
        brands=brands,
        count=spec.subscribers,
        new_share=spec.new_subscriber_share,
        timezone_share=spec.timezone_share,
        email_only_share=spec.email_only_share,
        sms_only_share=spec.sms_only_share,
        sms_consent_share=spec.sms_consent_share,
        email_consent_share=spec.email_consent_share,
    )
    catalog = Catalog(rng)
    day = Diurnal(spec.start, spec.end, _MARGIN)
    rows = _Rows()
    first_view: dict[Subscriber, int] = {}
    abandoned = _sessions(spec, rng, people, catalog, day, rows, first_view)
    _replies(spec, rng, people, day, rows, first_view, abandoned)
    if spec.bot_views:
        _bot(spec, rng, brands[0], catalog, day, rows)
    _introductions(rng, people, day, rows)
    return rows.events(f"bf{spec.seed}")


def _sessions(
    spec: BlackFridaySpec,
    rng: random.Random,
    people: list[Subscriber],
    catalog: Catalog,
    day: Diurnal,
    rows: _Rows,
    first_view: dict[Subscriber, int],
) -> list[tuple[Subscriber, int]]:
    """Draft every session; return the abandoned carts (subscriber, cart time)."""
    total = round(spec.subscribers * spec.sessions_per_subscriber)
    if total == 0:
        return []
    weights = []
    running = 0.0
    for who in people:
        running += who.activity
        weights.append(running)
    shape = _shape(spec)
    abandoned = []
    # A new subscriber's sessions start after a pop-up sign-up; the first session's start is
    # where their ``subscribed`` goes (see _introductions).
    numbers: dict[Subscriber, int] = defaultdict(int)
    for who in rng.choices(people, cum_weights=weights, k=total):
        numbers[who] += 1
        start = day.sample(rng)
        drafted, cart_at = draft_session(
            rng, catalog, shape, start, f"{who.subscriber_id}-{numbers[who]}"
        )
        drafted = [row for row in drafted if row[0] < day.end_ms]
        if not drafted:
            continue
        rows.extend(who, drafted)
        first_view[who] = min(first_view.get(who, drafted[0][0]), drafted[0][0])
        if cart_at is not None and cart_at < day.end_ms:
            abandoned.append((who, cart_at))
    return abandoned


def _replies(
    spec: BlackFridaySpec,
    rng: random.Random,
    people: list[Subscriber],
    day: Diurnal,
    rows: _Rows,
    first_view: dict[Subscriber, int],
    abandoned: list[tuple[Subscriber, int]],
) -> None:
    """STOP (some then START), HELP and chatter from subscribers with a phone."""
    texting = [who for who in people if who.phone is not None]
    stopping = [who for who in texting if who.sms_consent]
    stopped: set[Subscriber] = set()
    # Races: a STOP 0.5-5 s after the cart abandonment SMS falls due.
    candidates = [(who, at) for who, at in abandoned if who.sms_consent]
    for who, cart_at in rng.sample(candidates, min(spec.stop_races, len(candidates))):
        at = cart_at + CART_SMS_DELAY_MS + rng.randint(500, 5_000)
        if at < day.end_ms and who not in stopped:
            stopped.add(who)
            _stop(spec, rng, who, at, day, rows)
    for who in rng.sample(stopping, round(len(stopping) * spec.stop_share)):
        if who in stopped:
            continue
        if who in first_view:  # a reply to the browse abandonment text an hour after browsing
            at = first_view[who] + 3_600_000 + int(rng.lognormvariate(math.log(300_000), 1.0))
        else:
            at = day.sample(rng)
        if at < day.end_ms:
            stopped.add(who)
            _stop(spec, rng, who, at, day, rows)
    for who in rng.sample(texting, round(len(texting) * spec.help_share)):
        rows.add(who, day.sample(rng), EventType.SMS_RECEIVED, {"text": _text(rng, HELP_TEXTS)})
    for who in rng.sample(texting, round(len(texting) * spec.chatter_share)):
        text = _text(rng, CHATTER_TEXTS)
        rows.add(who, day.sample(rng), EventType.SMS_RECEIVED, {"text": text})


def _stop(
    spec: BlackFridaySpec,
    rng: random.Random,
    who: Subscriber,
    at: int,
    day: Diurnal,
    rows: _Rows,
) -> None:
    rows.add(who, at, EventType.SMS_RECEIVED, {"text": _text(rng, STOP_TEXTS)})
    if rng.random() < spec.restart_share:
        again = at + rng.randint(10 * 60_000, 6 * 3_600_000)
        if again < day.end_ms:
            rows.add(who, again, EventType.SMS_RECEIVED, {"text": _text(rng, START_TEXTS)})


def _bot(
    spec: BlackFridaySpec,
    rng: random.Random,
    brand: str,
    catalog: Catalog,
    day: Diurnal,
    rows: _Rows,
) -> None:
    """A scraper: thousands of views on one key, about 2 s apart, from late morning Eastern."""
    bot = Subscriber(
        brand_id=brand,
        subscriber_id=_BOT_ID,
        phone=None,
        email=f"{_BOT_ID}@example.com",
        timezone=None,
        sms_consent=False,
        email_consent=False,
        first_name="Bot",
        tier="bronze",
        activity=0.0,
        new=False,
    )
    at = day.first_ms + min(11 * 3_600_000, (day.end_ms - day.first_ms) // 2)
    for number in range(spec.bot_views):
        if at >= day.end_ms:
            break
        product = catalog.pick(rng)
        props = {
            "sku": product.sku,
            "product_name": product.name,
            "category": product.category,
            "price": product.price,
            "session_id": f"{_BOT_ID}-{number // 500 + 1}",
            "user_agent": "scraper/1.0",
        }
        rows.add(bot, at, EventType.PRODUCT_VIEWED, props)
        at += max(1, int(rng.expovariate(1 / 2_000)))


def _introductions(rng: random.Random, people: list[Subscriber], day: Diurnal, rows: _Rows) -> None:
    """How the engine learns each subscriber: ``subscribed`` for new ones, else a CRM sync.

    A new subscriber who does nothing else that day still subscribes, at a diurnal time.
    """
    for who, drafted in list(rows.by_subscriber.items()):
        first = min(row[0] for row in drafted)
        if who.new:
            at = max(day.start_ms, first - rng.randint(5_000, 120_000))
            rows.add(who, at, EventType.SUBSCRIBED, _profile(who, "popup"))
        else:
            at = max(day.start_ms, first - rng.randint(1_000, 600_000))
            rows.add(who, at, EventType.PROFILE_UPDATED, _profile(who, "crm_sync"))
    for who in people:
        if who.new and who not in rows.by_subscriber:
            rows.add(who, day.sample(rng), EventType.SUBSCRIBED, _profile(who, "popup"))
