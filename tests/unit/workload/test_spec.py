"""BlackFridaySpec and ShoppingMix: defaults, derived probabilities and field-named errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keylane.errors import InvalidArgumentError
from keylane.workload import BLACK_FRIDAY_2026, BlackFridaySpec, ShoppingMix


def test_defaults_are_black_friday_midnight_eastern_for_a_day() -> None:
    spec = BlackFridaySpec()
    assert spec.start == datetime(2026, 11, 27, 5, 0, tzinfo=UTC) == BLACK_FRIDAY_2026
    assert spec.end - spec.start == timedelta(hours=24)
    assert (spec.brands, spec.subscribers) == (5, 20_000)


def test_start_is_converted_to_utc() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 11, 27, 0, 0, tzinfo=ZoneInfo("America/New_York"))
    assert BlackFridaySpec(start=local).start == BLACK_FRIDAY_2026
    assert BlackFridaySpec(start=local).start.tzinfo is UTC


def test_session_probabilities_reproduce_the_mix() -> None:
    # Given the default mix and 6 views per session
    spec = BlackFridaySpec()
    p = spec.session_probabilities()
    mix = spec.mix
    # Then expected carts per view, orders per cart, ... are the mix's ratios
    views = spec.mean_views_per_session
    assert p["cart"] / views == pytest.approx(mix.added_to_cart / mix.product_viewed)
    assert p["cart"] * p["checkout"] * p["order"] / views == pytest.approx(
        mix.order_placed / mix.product_viewed
    )
    assert p["click"] / views == pytest.approx(mix.message_clicked / mix.product_viewed)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("brands", 0),
        ("brands", 2.5),
        ("brands", True),
        ("subscribers", 0),
        ("subscribers", "many"),
        ("start", datetime(2026, 11, 27)),
        ("start", "2026-11-27"),
        ("duration", timedelta(minutes=1)),
        ("duration", 3600),
        ("seed", 1.5),
        ("sessions_per_subscriber", -1.0),
        ("sessions_per_subscriber", float("nan")),
        ("mean_views_per_session", 0.5),
        ("stop_share", 1.5),
        ("restart_share", -0.1),
        ("help_share", "x"),
        ("timezone_share", 2),
        ("fast_checkout_share", float("inf")),
        ("bot_views", -1),
        ("stop_races", 0.5),
        ("mix", {"product_viewed": 1.0}),
    ],
)
def test_bad_fields_name_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidArgumentError, match=rf"^{field}: "):
        BlackFridaySpec(**{field: value})


def test_email_only_plus_sms_only_cannot_exceed_everyone() -> None:
    with pytest.raises(InvalidArgumentError, match=r"^sms_only_share: "):
        BlackFridaySpec(email_only_share=0.6, sms_only_share=0.5)


def test_a_mix_that_needs_more_than_one_cart_per_session_is_refused() -> None:
    mix = ShoppingMix(
        product_viewed=0.5, added_to_cart=0.3, checkout_started=0.1, order_placed=0.1,
        message_clicked=0.0,
    )  # fmt: skip
    with pytest.raises(InvalidArgumentError, match=r"^mix: .*cart probability"):
        BlackFridaySpec(mix=mix, mean_views_per_session=6)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"product_viewed": 0.9}, r"^mix: the shares must sum to 1"),
        ({"product_viewed": 1.2, "added_to_cart": -0.2}, r"^mix\.product_viewed: "),
        (
            {"order_placed": 0.02, "product_viewed": 0.943},
            r"^mix\.order_placed: must not exceed mix\.checkout_started",
        ),
        (
            {"checkout_started": 0.03, "product_viewed": 0.935},
            r"^mix\.checkout_started: must not exceed mix\.added_to_cart",
        ),
    ],
)
def test_bad_mixes_name_the_field(values: dict[str, float], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        ShoppingMix(**values)


def test_mix_shares_sum_to_one() -> None:
    assert sum(ShoppingMix().shares().values()) == pytest.approx(1.0)
