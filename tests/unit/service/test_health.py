"""The health endpoints, served by the real HealthServer on 127.0.0.1 (uvicorn, real HTTP)."""

from __future__ import annotations

import httpx
import pytest

from keylane.errors import InvalidArgumentError
from keylane.web.health import HOST, HealthServer


async def test_healthz_always_and_readyz_from_the_probe() -> None:
    # Given a probe whose answer the test changes
    reason: list[str | None] = ["starting"]
    async with HealthServer(lambda: reason[0]) as server, httpx.AsyncClient() as client:
        assert server.url == f"http://{HOST}:{server.port}"
        assert server.port != 0
        # When it is not ready: /healthz 200, /readyz 503 with the reason
        alive = await client.get(f"{server.url}/healthz")
        assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
        starting = await client.get(f"{server.url}/readyz")
        assert (starting.status_code, starting.json()) == (
            503,
            {"ready": False, "reason": "starting"},
        )
        # When it is ready: 200
        reason[0] = None
        ready = await client.get(f"{server.url}/readyz")
        assert (ready.status_code, ready.json()) == (200, {"ready": True})
        # When it drains: 503 again
        reason[0] = "draining"
        draining = await client.get(f"{server.url}/readyz")
        assert (draining.status_code, draining.json()["reason"]) == (503, "draining")


async def test_a_probe_that_raises_is_not_ready_rather_than_an_error() -> None:
    def broken() -> str | None:
        raise RuntimeError("boom")

    async with HealthServer(broken) as server, httpx.AsyncClient() as client:
        answer = await client.get(f"{server.url}/readyz")
    assert answer.status_code == 503
    assert answer.json()["reason"] == "readiness probe failed: RuntimeError"


async def test_unknown_paths_and_methods_are_refused() -> None:
    async with HealthServer(lambda: None) as server, httpx.AsyncClient() as client:
        assert (await client.get(f"{server.url}/metrics")).status_code == 404
        assert (await client.post(f"{server.url}/readyz")).status_code == 405


async def test_a_port_in_use_is_a_clear_error_and_stop_frees_it() -> None:
    first = HealthServer(lambda: None)
    await first.start()
    try:
        with pytest.raises(InvalidArgumentError, match=f"cannot listen on {HOST}:{first.port}"):
            await HealthServer(lambda: None, first.port).start()
    finally:
        await first.stop()
        await first.stop()  # idempotent
    again = HealthServer(lambda: None, first.port)
    await again.start()
    await again.stop()


@pytest.mark.parametrize("port", [-1, 65536, True, "8080"])
def test_a_bad_port_is_refused(port: object) -> None:
    with pytest.raises(InvalidArgumentError, match=r"health port must be 0\.\.65535"):
        HealthServer(lambda: None, port)  # type: ignore[arg-type]
