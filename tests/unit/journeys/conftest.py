"""Fixtures for the journeys tests."""

from __future__ import annotations

import pytest

from keylane.journeys import JourneySet, load_default_journeys


@pytest.fixture(scope="session")
def journeys() -> JourneySet:
    """The packaged default journeys."""
    return load_default_journeys()
