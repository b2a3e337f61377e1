"""Fixtures for the workload tests: a small generated day and the default one."""

from __future__ import annotations

import pytest

from keylane.journeys import Event
from keylane.workload import BlackFridaySpec, generate

#: A small day that still has every pattern of the default one.
SMALL = BlackFridaySpec(subscribers=3_000, bot_views=800, stop_races=20, seed=11)


@pytest.fixture(scope="session")
def small_day() -> list[Event]:
    """The events of :data:`SMALL`."""
    return generate(SMALL)


@pytest.fixture(scope="session")
def default_day() -> list[Event]:
    """The events of the default spec (about 190,000)."""
    return generate(BlackFridaySpec())
