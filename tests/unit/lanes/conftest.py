"""Fixtures of the lanes unit tests."""

from __future__ import annotations

import asyncio
import inspect

import pytest


@pytest.fixture(autouse=True)
def _no_stray_event_loop(request: pytest.FixtureRequest) -> None:
    """Keep looptime from creating a loop that nobody closes around sync tests.

    looptime's ``pytest_pyfunc_call`` calls ``policy.get_event_loop()`` for every test; for a sync
    test with no loop set that creates a fresh loop which is never closed, and its
    ``ResourceWarning`` later fails an unrelated test (``filterwarnings = error``). Setting the
    loop to None explicitly makes that call raise, which looptime handles by doing nothing.
    """
    if not inspect.iscoroutinefunction(request.function):
        asyncio.set_event_loop(None)
    return
