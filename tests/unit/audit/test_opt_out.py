"""Nothing after an opt-out but its one STOP confirmation; START lifts it."""

from __future__ import annotations

from datetime import timedelta

from keylane.audit import ConsentChange, audit
from keylane.journeys import load_default_journeys
from tests.unit.audit.helpers import delivery, local, start, stop

JOURNEYS = load_default_journeys()
T = local("America/New_York", 2026, 11, 27, 12, 0)
S = timedelta(seconds=1)


def _confirmation(at: object, step: str = "stop_confirmation") -> object:
    return delivery(at, message_class="transactional", journey="_system", step=step)  # type: ignore[arg-type]


def _after(deliveries: list[object], changes: list[ConsentChange]) -> int:
    return audit(deliveries, JOURNEYS, changes).counts["after_opt_out"]


def test_marketing_after_stop_is_a_violation_before_it_is_not() -> None:
    assert _after([delivery(T - S)], [stop(T)]) == 0
    assert _after([delivery(T + S)], [stop(T)]) == 1


def test_a_change_at_the_very_instant_counts_as_made() -> None:
    assert _after([delivery(T)], [stop(T)]) == 1


def test_one_stop_confirmation_per_opt_out() -> None:
    assert _after([_confirmation(T + S)], [stop(T)]) == 0
    assert _after([_confirmation(T + S), _confirmation(T + 2 * S)], [stop(T)]) == 1
    # Two opt-outs (STOP, START, STOP): one confirmation each
    changes = [stop(T), start(T + 60 * S), stop(T + 120 * S)]
    confirmations = [_confirmation(T + S), _confirmation(T + 121 * S)]
    assert _after(confirmations, changes) == 0


def test_every_other_message_after_stop_is_a_violation_transactional_included() -> None:
    changes = [stop(T)]
    assert _after([delivery(T + S, message_class="transactional", journey="welcome")], changes) == 1
    assert _after([_confirmation(T + S, "help_reply")], changes) == 1
    assert _after([delivery(T + S, to="a@example.com", channel="email")], changes) == 1


def test_start_lifts_the_opt_out() -> None:
    changes = [stop(T), start(T + 600 * S)]
    assert _after([delivery(T + 601 * S)], changes) == 0
    assert _after([_confirmation(T + 601 * S, "start_confirmation")], changes) == 0
    assert _after([delivery(T + 300 * S)], changes) == 1


def test_changes_apply_to_their_own_key_only() -> None:
    assert _after([delivery(T + S, subscriber="u2")], [stop(T, "acme:u1")]) == 0
    assert _after([delivery(T + S, brand="bluebird")], [stop(T, "acme:u1")]) == 0


def test_the_order_of_changes_and_deliveries_does_not_matter() -> None:
    changes = [start(T + 600 * S), stop(T)]
    log = [delivery(T + 700 * S), _confirmation(T + S), delivery(T + 5 * S)]
    report = audit(log, JOURNEYS, changes)
    assert report.counts["after_opt_out"] == 1
    (example,) = report.examples["after_opt_out"]
    assert example.sent_at == T + 5 * S
    assert "opt-out at" in example.detail
