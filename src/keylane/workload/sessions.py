"""Shopping sessions: a diurnal start time, then a geometric run of views with seconds-to-minutes
gaps, sometimes an add-to-cart, a checkout and an order.

A session is drafted as ``(epoch ms, event type, properties)`` rows for one subscriber; the
generator turns the rows of every subscriber into events. :class:`Diurnal` draws instants with
the day's intensity: quiet at night, a bump at the midnight doorbusters, the peak around noon
Eastern.

Pure: imports the standard library and the journeys' event types only.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from keylane.journeys import EventType
from keylane.workload.catalog import Catalog, Product

__all__ = ["HOURLY_INTENSITY", "Diurnal", "Draft", "SessionShape", "draft_session"]

#: Relative shopping intensity per hour of the day, Eastern time (index 0 = midnight).
HOURLY_INTENSITY: tuple[float, ...] = (
    1.2, 0.7, 0.4, 0.25, 0.2, 0.25, 0.45, 0.8, 1.3, 1.8, 2.3, 2.7,
    3.0, 2.9, 2.7, 2.5, 2.4, 2.3, 2.3, 2.4, 2.3, 2.0, 1.6, 1.2,
)  # fmt: skip
_EASTERN = ZoneInfo("America/New_York")
_MINUTE_MS = 60_000
_LOG_20S = math.log(20_000)

#: One drafted event: (epoch ms, type, properties).
Draft = tuple[int, EventType, dict[str, Any]]


class Diurnal:
    """Draws instants in ``[start_ms + margin_ms, end_ms)`` with the day's intensity.

    The intensity of each minute is :data:`HOURLY_INTENSITY` at its Eastern wall-clock time,
    interpolated between hours.
    """

    def __init__(self, start: datetime, end: datetime, margin: timedelta) -> None:
        self.start_ms = int(start.timestamp() * 1000)
        self.end_ms = int(end.timestamp() * 1000)
        self.first_ms = min(self.start_ms + int(margin.total_seconds() * 1000), self.end_ms - 1)
        self._minutes: list[int] = []
        self._cumulative: list[float] = []
        total = 0.0
        at = self.first_ms
        while at < self.end_ms:
            local = datetime.fromtimestamp(at / 1000, _EASTERN)
            hour = local.hour + local.minute / 60
            low = HOURLY_INTENSITY[int(hour) % 24]
            high = HOURLY_INTENSITY[(int(hour) + 1) % 24]
            total += low + (high - low) * (hour - int(hour))
            self._minutes.append(at)
            self._cumulative.append(total)
            at += _MINUTE_MS
        self._total = total

    def sample(self, rng: random.Random) -> int:
        """An instant (epoch ms) drawn by intensity."""
        index = bisect.bisect_left(self._cumulative, rng.random() * self._total)
        index = min(index, len(self._minutes) - 1)
        at = self._minutes[index] + rng.randrange(_MINUTE_MS)
        return min(at, self.end_ms - 1)

    def sample_after(self, rng: random.Random, after_ms: int) -> int | None:
        """An instant after ``after_ms`` drawn by intensity; None when the day is over."""
        if after_ms >= self.end_ms - 1:
            return None
        floor = bisect.bisect_right(self._minutes, after_ms) - 1
        low = self._cumulative[floor - 1] if floor > 0 else 0.0
        for _ in range(8):
            index = bisect.bisect_left(self._cumulative, low + rng.random() * (self._total - low))
            index = min(index, len(self._minutes) - 1)
            at = self._minutes[index] + rng.randrange(_MINUTE_MS)
            if after_ms < at < self.end_ms:
                return at
        return None


@dataclass(frozen=True, slots=True)
class SessionShape:
    """Per-session probabilities and sizes (from the spec, :meth:`session_probabilities`)."""

    mean_views: float
    cart: float
    checkout: float
    order: float
    click: float
    fast_checkout: float


def _gap(rng: random.Random) -> int:
    """A think time between two events of a session: lognormal, median 20 s, 1 s to 10 min."""
    return int(min(max(math.exp(_LOG_20S + rng.gauss()), 1_000), 600_000))


def _views(rng: random.Random, mean: float) -> int:
    """A geometric count >= 1 with the given mean."""
    if mean <= 1.0:
        return 1
    p = 1.0 / mean
    return 1 + int(math.log(1.0 - rng.random()) / math.log(1.0 - p))


def _product_props(product: Product, session_id: str) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "product_name": product.name,
        "category": product.category,
        "price": product.price,
        "session_id": session_id,
    }


def draft_session(
    rng: random.Random,
    catalog: Catalog,
    shape: SessionShape,
    start_ms: int,
    session_id: str,
) -> tuple[list[Draft], int | None]:
    """One session's events from ``start_ms``, in time order.

    Returns:
        the drafted rows, and the time of the add-to-cart when the session abandons its cart
        (a cart without an order), else None.
    """
    rows: list[Draft] = []
    at = start_ms
    if rng.random() < shape.click:
        rows.append(
            (
                at,
                EventType.MESSAGE_CLICKED,
                {
                    "url": "https://shop.example.com/black-friday",
                    "campaign": "black-friday",
                    "session_id": session_id,
                },
            )
        )
        at += _gap(rng)
    count = _views(rng, shape.mean_views)
    viewed: list[Product] = []
    for _ in range(count):
        product = rng.choice(viewed) if viewed and rng.random() < 0.3 else catalog.pick(rng)
        viewed.append(product)
        rows.append((at, EventType.PRODUCT_VIEWED, _product_props(product, session_id)))
        at += _gap(rng)
    if rng.random() >= shape.cart:
        return rows, None
    # The cart goes in after one of the views; the session may keep browsing afterwards.
    after = rng.randrange(len(viewed))
    product = viewed[after]
    cart_at = rows[-count + after][0] + max(_gap(rng) // 2, 1_000)
    cart_id = f"cart-{session_id}"
    cart = _product_props(product, session_id)
    cart.update(cart_id=cart_id, quantity=1, cart_url=f"https://shop.example.com/cart/{cart_id}")
    rows.append((cart_at, EventType.ADDED_TO_CART, cart))
    if rng.random() >= shape.checkout:
        rows.sort(key=lambda row: row[0])
        return rows, cart_at
    orders = rng.random() < shape.order
    if orders and rng.random() < shape.fast_checkout:
        # Buy now: cart, checkout and order within one second (Novu #2569's double send).
        checkout_at = cart_at + rng.randint(100, 400)
        order_at = checkout_at + rng.randint(100, 500)
    else:
        checkout_at = max(at, cart_at) + _gap(rng)
        order_at = checkout_at + _gap(rng) * 3
    value = {"cart_id": cart_id, "value": product.price, "items": 1, "session_id": session_id}
    rows.append((checkout_at, EventType.CHECKOUT_STARTED, dict(value)))
    if orders:
        value["order_id"] = f"order-{session_id}"
        rows.append((order_at, EventType.ORDER_PLACED, value))
    rows.sort(key=lambda row: row[0])
    return rows, None if orders else cart_at
