"""Fixtures of the checker tests."""

from __future__ import annotations

import asyncio
import inspect

import pytest


@pytest.fixture(autouse=True)
def _no_implicit_event_loop(request: pytest.FixtureRequest) -> None:
    """Stop a sync test from leaking an unclosed event loop.

    looptime 0.9's ``pytest_pyfunc_call`` asks the policy for the event loop even in sync tests,
    which makes asyncio create one that nobody closes; its ``ResourceWarning`` then fails a later
    test under ``filterwarnings = error``. Marking the loop as explicitly unset makes that call
    raise (looptime handles it) instead.
    """
    if not inspect.iscoroutinefunction(request.function):
        asyncio.set_event_loop(None)
