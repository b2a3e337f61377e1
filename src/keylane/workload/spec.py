"""The knobs of the synthetic Black Friday day: :class:`BlackFridaySpec` and :class:`ShoppingMix`.

Every field is validated when the spec is built; a bad value raises
:class:`~keylane.errors.InvalidArgumentError` whose message starts with the field's name
(``subscribers: must be an int in [1, 5000000], got 0``). The defaults make a day of about
200,000 events (docs/workload.md has the measured mix).

Pure: imports the standard library and :mod:`keylane.errors` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta

from keylane.errors import InvalidArgumentError

__all__ = ["BLACK_FRIDAY_2026", "BlackFridaySpec", "ShoppingMix"]

#: Midnight Eastern on Black Friday 2026 (EST, UTC-5).
BLACK_FRIDAY_2026 = datetime(2026, 11, 27, 5, 0, tzinfo=UTC)


def _number(name: str, value: object, low: float, high: float, *, integer: bool = False) -> None:
    kind = "an int" if integer else "a number"
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or not (low <= value <= high):  # type: ignore[operator]
        raise InvalidArgumentError(f"{name}: must be {kind} in [{low:g}, {high:g}], got {value!r}")
    if not integer and not math.isfinite(value):  # type: ignore[arg-type]
        raise InvalidArgumentError(f"{name}: must be finite, got {value!r}")


@dataclass(frozen=True, slots=True)
class ShoppingMix:
    """The target share of each shopping event type; the shares sum to 1.

    The defaults follow RetailRocket's public clickstream (96.7% views, 2.5% add-to-cart, 0.8%
    transactions; ``../shared/research/journeys.md`` §6), with checkouts between carts and orders
    and a few clicks on messages.
    """

    product_viewed: float = 0.955
    added_to_cart: float = 0.025
    checkout_started: float = 0.010
    order_placed: float = 0.008
    message_clicked: float = 0.002

    def __post_init__(self) -> None:
        for f in fields(self):
            _number(f"mix.{f.name}", getattr(self, f.name), 0.0, 1.0)
        total = sum(getattr(self, f.name) for f in fields(self))
        if abs(total - 1.0) > 1e-6:
            raise InvalidArgumentError(f"mix: the shares must sum to 1, got {total:g}")
        if self.product_viewed <= 0:
            raise InvalidArgumentError("mix.product_viewed: must be > 0 (sessions are views)")
        if self.checkout_started < self.order_placed:
            raise InvalidArgumentError(
                "mix.order_placed: must not exceed mix.checkout_started (an order follows a "
                f"checkout), got {self.order_placed:g} > {self.checkout_started:g}"
            )
        if self.added_to_cart < self.checkout_started:
            raise InvalidArgumentError(
                "mix.checkout_started: must not exceed mix.added_to_cart (a checkout follows a "
                f"cart), got {self.checkout_started:g} > {self.added_to_cart:g}"
            )

    def shares(self) -> dict[str, float]:
        """The shares by event type name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True, slots=True)
class BlackFridaySpec:
    """What :func:`~keylane.workload.generate` makes.

    Attributes:
        brands: how many brands (the first are the largest).
        subscribers: how many subscribers, over all brands.
        start: the first instant of the day (default midnight Eastern, 2026-11-27T05:00Z).
        duration: the length of the day.
        seed: the random seed; the same spec always gives the same events.
        sessions_per_subscriber: the mean number of shopping sessions per subscriber (drawn by
            a heavy-tailed activity, so many subscribers do not shop at all).
        mean_views_per_session: the mean of the geometric number of views in a session.
        mix: the target share of each shopping event type.
        new_subscriber_share: the share of subscribers who subscribe during the day.
        stop_share: the share of SMS subscribers who reply STOP (in one of its variants).
        restart_share: the share of those who send START later the same day.
        help_share: the share of SMS subscribers who text HELP.
        chatter_share: the share of SMS subscribers who reply something that is no keyword.
        timezone_share: the share of subscribers whose profile gives a ``timezone``.
        email_only_share: the share with an email address and no phone.
        sms_only_share: the share with a phone and no email address.
        sms_consent_share: the share of subscribers with a phone who consent to marketing SMS.
        email_consent_share: the share with an address who consent to marketing email.
        fast_checkout_share: the share of orders placed within 1 s of the add-to-cart.
        bot_views: product views of one scraping bot (a hot key); 0 for none.
        stop_races: STOP replies placed seconds after a cart abandonment's SMS falls due.
    """

    brands: int = 5
    subscribers: int = 20_000
    start: datetime = BLACK_FRIDAY_2026
    duration: timedelta = timedelta(hours=24)
    seed: int = 2026
    sessions_per_subscriber: float = 1.4
    mean_views_per_session: float = 6.0
    mix: ShoppingMix = field(default_factory=ShoppingMix)
    new_subscriber_share: float = 0.05
    stop_share: float = 0.02
    restart_share: float = 0.25
    help_share: float = 0.005
    chatter_share: float = 0.002
    timezone_share: float = 0.4
    email_only_share: float = 0.05
    sms_only_share: float = 0.05
    sms_consent_share: float = 0.92
    email_consent_share: float = 0.85
    fast_checkout_share: float = 0.1
    bot_views: int = 3_000
    stop_races: int = 50

    def __post_init__(self) -> None:
        _number("brands", self.brands, 1, 1000, integer=True)
        _number("subscribers", self.subscribers, 1, 5_000_000, integer=True)
        if not isinstance(self.start, datetime) or self.start.utcoffset() is None:
            raise InvalidArgumentError(
                f"start: must be a timezone-aware datetime, got {self.start!r}"
            )
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        if not isinstance(self.duration, timedelta) or not (
            timedelta(minutes=10) <= self.duration <= timedelta(days=7)
        ):
            raise InvalidArgumentError(
                f"duration: must be a timedelta from 10 minutes to 7 days, got {self.duration!r}"
            )
        _number("seed", self.seed, -(2**63), 2**63 - 1, integer=True)
        _number("sessions_per_subscriber", self.sessions_per_subscriber, 0.0, 100.0)
        _number("mean_views_per_session", self.mean_views_per_session, 1.0, 1000.0)
        if not isinstance(self.mix, ShoppingMix):
            raise InvalidArgumentError(f"mix: must be a ShoppingMix, got {self.mix!r}")
        for name in (
            "new_subscriber_share", "stop_share", "restart_share", "help_share", "chatter_share",
            "timezone_share", "email_only_share", "sms_only_share", "sms_consent_share",
            "email_consent_share", "fast_checkout_share",
        ):  # fmt: skip
            _number(name, getattr(self, name), 0.0, 1.0)
        if self.email_only_share + self.sms_only_share > 1.0:
            raise InvalidArgumentError(
                "sms_only_share: email_only_share + sms_only_share must be at most 1, got "
                f"{self.email_only_share + self.sms_only_share:g}"
            )
        _number("bot_views", self.bot_views, 0, 10_000_000, integer=True)
        _number("stop_races", self.stop_races, 0, 10_000_000, integer=True)
        for name, value in self.session_probabilities().items():
            if value > 1.0:
                raise InvalidArgumentError(
                    f"mix: with mean_views_per_session={self.mean_views_per_session:g} the "
                    f"{name} probability per session would be {value:.3g} > 1; lower the share "
                    "or the views per session"
                )

    @property
    def end(self) -> datetime:
        """The first instant after the day."""
        return self.start + self.duration

    def session_probabilities(self) -> dict[str, float]:
        """The per-session probabilities that give :attr:`mix`.

        ``cart``: the session adds to the cart; ``checkout``: given a cart, it checks out;
        ``order``: given a checkout, it orders; ``click``: the session opens from a message click.
        """
        mix = self.mix
        views = self.mean_views_per_session
        per_view = 1.0 / mix.product_viewed
        return {
            "cart": mix.added_to_cart * per_view * views,
            "checkout": mix.checkout_started / mix.added_to_cart if mix.added_to_cart else 0.0,
            "order": mix.order_placed / mix.checkout_started if mix.checkout_started else 0.0,
            "click": mix.message_clicked * per_view * views,
        }
