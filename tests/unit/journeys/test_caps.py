"""caps: rolling windows at their boundaries, sends planned in the future, the legal rule."""

from __future__ import annotations

import pytest

from keylane.journeys.policies.caps import (
    DAY_MS,
    LEGAL_RULE,
    MAX_KEPT,
    CapRule,
    allows,
    prune,
    reserve,
)

T = 1_780_000_000_000
TWO_PER_DAY = (CapRule(2, DAY_MS),)


def test_a_rolling_24h_window_frees_a_slot_exactly_24h_after_a_send():
    sent = (T, T + 1000)
    assert not allows(sent, T + DAY_MS - 1, TWO_PER_DAY)  # the first still counts
    assert allows(sent, T + DAY_MS, TWO_PER_DAY)  # [T, T + 24 h) is half-open
    assert not allows(sent, T + DAY_MS + 999, ((CapRule(1, DAY_MS)),))


def test_a_send_planned_between_others_is_checked_on_both_sides():
    # Planned sends at T and T + 20 h; a third at T + 10 h would make 2 within any day either way.
    sent = (T, T + 20 * 3_600_000)
    assert not allows(sent, T + 10 * 3_600_000, TWO_PER_DAY)
    # ...and one before T counts against the window that holds T.
    assert not allows((T + 5 * 3_600_000, T + 6 * 3_600_000), T, TWO_PER_DAY)
    assert allows((T + DAY_MS, T + DAY_MS + 1), T, TWO_PER_DAY)


def test_every_rule_must_hold():
    rules = (CapRule(2, DAY_MS), CapRule(5, 7 * DAY_MS))
    five_days = tuple(T + i * DAY_MS for i in range(5))
    assert not allows(five_days, T + 5 * DAY_MS, rules)  # 6 in a week
    assert allows(five_days, T + 7 * DAY_MS, rules)  # the first left the week
    assert allows((), T, rules)
    assert allows((T,), T, ())


def test_the_legal_rule_is_three_per_rolling_day():
    assert CapRule(3, DAY_MS) == LEGAL_RULE
    sent = (T, T + 1, T + 2)
    assert not allows(sent, T + DAY_MS - 1, (LEGAL_RULE,))
    assert allows(sent, T + DAY_MS, (LEGAL_RULE,))


def test_prune_drops_what_no_window_can_see_and_keeps_future_reservations():
    sent = (T - 8 * DAY_MS, T - DAY_MS, T, T + DAY_MS)
    assert prune(sent, T, 7 * DAY_MS) == (T - DAY_MS, T, T + DAY_MS)
    assert reserve((T, T + 10), T + 5) == (T, T + 5, T + 10)
    many = tuple(range(T, T + 2 * MAX_KEPT))
    assert len(prune(many, T, DAY_MS)) == MAX_KEPT


@pytest.mark.parametrize("limit", [1, 2, 3])
def test_a_greedy_sender_never_exceeds_the_limit_in_any_window(limit):
    # Offer a send every hour for 3 days; accept when allowed; check every 24 h window.
    rules = (CapRule(limit, DAY_MS),)
    sent: tuple[int, ...] = ()
    for hour in range(72):
        t = T + hour * 3_600_000
        if allows(sent, t, rules):
            sent = reserve(sent, t)
    for start in sent:
        assert sum(start <= s < start + DAY_MS for s in sent) <= limit
    assert len(sent) == 3 * limit
