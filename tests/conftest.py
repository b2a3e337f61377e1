"""Shared fixtures: where the real services are.

`make test` starts Pulsar, Redis and PostgreSQL and exports their URLs (``scripts/services.py
env``). A test that needs a service it cannot reach is skipped on a developer machine but fails
in CI (``CI=true``), so a missing service never passes silently.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
from urllib.parse import urlparse

import pytest

PULSAR_URL_ENV = "KEYLANE_PULSAR_URL"
PULSAR_ADMIN_URL_ENV = "KEYLANE_PULSAR_ADMIN_URL"
REDIS_URL_ENV = "KEYLANE_REDIS_URL"
POSTGRES_URL_ENV = "KEYLANE_POSTGRES_URL"


def _reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection(
            (parsed.hostname or "127.0.0.1", parsed.port or default_port), 2
        ):
            return True
    except OSError:
        return False


def _service_url(env: str, default_port: int, what: str) -> str:
    url = os.environ.get(env)
    problem = None
    if not url:
        problem = f"{what} is not configured: set {env} (make test does)"
    elif not _reachable(url, default_port):
        problem = f"{what} at {url} is not reachable"
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem)
        pytest.skip(problem)
    assert url is not None
    return url


@pytest.fixture(scope="session")
def pulsar_url() -> str:
    """Service URL of the real Pulsar broker (``pulsar://127.0.0.1:6650``)."""
    return _service_url(PULSAR_URL_ENV, 6650, "Pulsar")


@pytest.fixture(scope="session")
def pulsar_admin_url(pulsar_url: str) -> str:
    """Admin REST URL of the real Pulsar broker (``http://127.0.0.1:8080``)."""
    return _service_url(PULSAR_ADMIN_URL_ENV, 8080, "Pulsar admin")


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the real redis-server (``redis://127.0.0.1:6390/0``)."""
    return _service_url(REDIS_URL_ENV, 6379, "Redis")


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of the real PostgreSQL server (``postgresql://keylane@127.0.0.1:5440/keylane``)."""
    return _service_url(POSTGRES_URL_ENV, 5432, "PostgreSQL")


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
