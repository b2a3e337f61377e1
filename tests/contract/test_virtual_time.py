"""The memory backend really runs on virtual time (looptime), the pulsar backend on real time."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.contract.support import Backend


async def test_memory_backend_runs_on_virtual_time(
    backend: Backend, request: pytest.FixtureRequest
) -> None:
    if request.config.getoption("looptime", default=None) is False:
        pytest.skip("--no-looptime: the memory backend runs on real time")
    # Given the backend's event loop
    loop_start, wall_start = backend.now(), time.monotonic()
    # When the test sleeps 30 s (virtual on memory) -- on pulsar only a short real sleep
    seconds = 30.0 if backend.name == "memory" else 0.2
    await asyncio.sleep(seconds)
    # Then the loop clock advanced by the full amount...
    assert backend.now() - loop_start >= seconds
    wall = time.monotonic() - wall_start
    if backend.name == "memory":
        # ...and on memory no real 30 s went by (virtual time is on)
        assert backend.virtual
        assert wall < seconds, f"memory backend slept {wall:.1f} real seconds"
    else:
        assert not backend.virtual
        assert wall >= seconds * 0.9
