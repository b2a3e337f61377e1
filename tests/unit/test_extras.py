"""The core imports without the optional extras; using a missing extra gives an install hint."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Importing a module that maps to None in sys.modules raises ModuleNotFoundError, exactly as if
# the package were not installed.
BLOCK_EXTRAS = """
import sys
for name in ("pulsar", "_pulsar", "redis", "starlette", "uvicorn", "prometheus_client"):
    sys.modules[name] = None
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    script = BLOCK_EXTRAS + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )


def test_core_imports_and_runs_without_extras() -> None:
    # Given no pulsar-client, redis, starlette, uvicorn or prometheus-client
    result = run(
        """
        import asyncio
        import keylane, keylane.lanes, keylane.check, keylane.hashing, keylane.compare.strategies
        from keylane.brokers import InitialPosition, connect

        async def main():
            async with connect("memory://") as broker:
                producer = await broker.create_producer("t", batching=None)
                earliest = InitialPosition.EARLIEST
                consumer = await broker.subscribe("t", "s", initial_position=earliest)
                await producer.send(b"x", key="k")
                print((await consumer.receive(1)).data)

        asyncio.run(main())
        """
    )
    # Then the core, lanes, checker and the embedded broker work
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "b'x'"


def test_missing_pulsar_extra_names_the_install_command() -> None:
    result = run(
        """
        from keylane.brokers import connect
        from keylane.errors import MissingExtraError
        try:
            connect("pulsar://127.0.0.1:6650")
        except MissingExtraError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'keylane[pulsar]'" in result.stdout


def test_missing_redis_extra_names_the_install_command() -> None:
    result = run(
        """
        from keylane.errors import MissingExtraError
        try:
            import keylane.locks.redis
        except MissingExtraError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'keylane[redis]'" in result.stdout
