"""The servers the harness runs on: Pulsar and PostgreSQL as ``scripts/services.py`` manages them.

The harness never starts its own servers and never takes their addresses from the user: it asks
``scripts/services.py env`` (so ``KEYLANE_SERVICES_DIR`` and the ``KEYLANE_*_PORT`` variables
move everything together), makes sure both run (``pulsar start --keep-data``, ``postgres
start``: a healthy server is reused), restarts them as faults (``pulsar restart --keep-data``,
``postgres restart``: topics, subscriptions, unacked messages and rows survive) and leaves them
running and healthy at the end, whatever happened.

It also reads the broker's ``keepAliveIntervalSeconds`` and a subscription's consumers from the
admin REST API, and the servers' pids from ``status``.

Imports the standard library, httpx and the chaos harness's errors.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx

from keylane.errors import InvalidArgumentError
from keylane.runtime.settings import child_environment
from keylane.service.chaos.procs import ChaosError

__all__ = ["Services"]

#: Seconds a services.py command may take (a Pulsar start on 2 busy cores: up to ~3 minutes).
SCRIPT_TIMEOUT = 240.0
_PID = re.compile(r"\(pid (\d+)")


@dataclass(frozen=True, slots=True)
class Services:
    """Pulsar and PostgreSQL as ``script`` manages them.

    Attributes:
        script: the path of ``scripts/services.py``.
        broker_url, admin_url, store_url: what ``script env`` prints.
    """

    script: Path
    broker_url: str
    admin_url: str
    store_url: str

    @classmethod
    async def locate(cls, script: Path) -> Services:
        """Ask ``script env`` where the servers are.

        Raises:
            InvalidArgumentError: ``script`` is not a file, or its ``env`` output lacks a URL.
        """
        if not await asyncio.to_thread(script.is_file):
            raise InvalidArgumentError(
                f"--services: {script} is not a file; run from the checkout or give the path "
                "of scripts/services.py"
            )
        code, out = await _run(script, "env", timeout=30.0)
        values = dict(
            item.split("=", 1) for item in shlex.split(out.replace("export ", "")) if "=" in item
        )
        try:
            return cls(
                script,
                values["KEYLANE_PULSAR_URL"],
                values["KEYLANE_PULSAR_ADMIN_URL"],
                values["KEYLANE_POSTGRES_URL"],
            )
        except KeyError as missing:
            raise InvalidArgumentError(
                f"--services: `{script} env` printed no {missing.args[0]} (exit {code}): {out!r}"
            ) from None

    async def ensure_up(self) -> None:
        """Start Pulsar (on its data) and PostgreSQL unless they run healthy already.

        Raises:
            ChaosError: one of them did not start.
        """
        await self.run("pulsar", "start", "--keep-data")
        await self.run("postgres", "start")

    async def restart_broker(self) -> float:
        """``pulsar restart --keep-data``; the seconds it took until healthy."""
        started = time.monotonic()
        await self.run("pulsar", "restart", "--keep-data")
        return time.monotonic() - started

    async def restart_store(self) -> float:
        """``postgres restart``; the seconds it took until healthy."""
        started = time.monotonic()
        await self.run("postgres", "restart")
        return time.monotonic() - started

    async def run(self, *args: str) -> str:
        """Run ``script ARGS``; its output.

        Raises:
            ChaosError: it failed (with the end of its output).
        """
        code, out = await _run(self.script, *args, timeout=SCRIPT_TIMEOUT)
        if code != 0:
            tail = " | ".join(out.strip().splitlines()[-8:])
            raise ChaosError(f"`services.py {' '.join(args)}` exited {code}: {tail}")
        return out

    async def pid(self, service: str) -> int | None:
        """The pid ``script <service> status`` reports, if it runs."""
        _, out = await _run(self.script, service, "status", timeout=60.0)
        found = _PID.search(out)
        return int(found.group(1)) if found else None

    async def keepalive(self) -> float:
        """The broker's ``keepAliveIntervalSeconds`` (30, Pulsar's default, if unreadable)."""
        url = f"{self.admin_url}/admin/v2/brokers/configuration/runtime"
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                answer = await client.get(url)
                answer.raise_for_status()
                return float(answer.json().get("keepAliveIntervalSeconds", 30))
        except (httpx.HTTPError, ValueError):
            return 30.0

    async def consumers(self, topic: str, subscription: str) -> list[str] | None:
        """The names of the subscription's connected consumers; None if the broker did not say."""
        domain, _, rest = topic.partition("://")
        path = "/".join(quote(part, safe="") for part in (domain, *rest.split("/", 2)))
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                answer = await client.get(f"{self.admin_url}/admin/v2/{path}/stats")
                answer.raise_for_status()
                stats = answer.json()
        except (httpx.HTTPError, ValueError):
            return None
        sub = stats.get("subscriptions", {}).get(subscription)
        if not isinstance(sub, dict):
            return []
        return [str(c.get("consumerName")) for c in sub.get("consumers", [])]


async def _run(script: Path, *args: str, timeout: float) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=child_environment(),
    )
    try:
        async with asyncio.timeout(timeout):
            out, _ = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise ChaosError(f"`services.py {' '.join(args)}` took more than {timeout:g} s") from None
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")
