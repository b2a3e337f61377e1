"""The processes of the scale-out benchmark: ``keylane gateway``, ``worker`` and ``publish``.

Each is a real child process (``python -m keylane ...``), started with asyncio's subprocess
API and stopped by its pid with SIGTERM (then SIGKILL after a timeout). Also: waiting for a
worker's ``/readyz`` or a gateway's URL, a free local port, :class:`DecisionTail` (follows the
workers' history files as they grow and collects the message ids decided so far), a gateway's
stats, and the clean-up of a point's topics (admin REST API) and schema (asyncpg, imported only
for it).

Imports the standard library, httpx and the runtime's settings (the child environment); no CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

from keylane.errors import KeylaneError
from keylane.runtime.settings import child_environment

__all__ = [
    "Child",
    "DecisionTail",
    "ScaleBenchError",
    "check_alive",
    "delete_topics",
    "finish_publisher",
    "free_port",
    "gateway_stats",
    "read_output",
    "read_published",
    "spawn",
    "wait_decided",
    "wait_gateway",
    "wait_ready",
]


class ScaleBenchError(KeylaneError):
    """The benchmark could not run a point (a process failed, a phase did not finish)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Child:
    """One ``keylane`` child process, its log file and its name."""

    name: str
    process: asyncio.subprocess.Process
    log: Path
    stdout: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The child's pid."""
        return self.process.pid

    def tail(self, lines: int = 5) -> str:
        """The last lines of its log, for an error message."""
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    async def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; return the exit code."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout):
                    await self.process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()
                await self.process.wait()
        code = self.process.returncode
        assert code is not None
        return code


async def spawn(name: str, args: Sequence[str], log: Path, *, capture: bool = False) -> Child:
    """Start ``python -m keylane ARGS`` with its standard error (and output) in ``log``.

    With ``capture`` the standard output is a pipe instead (read it with :func:`read_output`).
    """
    handle = open(log, "wb")  # noqa: SIM115, ASYNC230 - a local file; the child keeps it open
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "keylane",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if capture else handle,
            stderr=handle,
            env=child_environment(),
        )
    finally:
        handle.close()
    return Child(name, process, log)


async def read_output(child: Child) -> str:
    """Wait for a captured child to end and return its standard output."""
    out, _ = await child.process.communicate()
    return out.decode(errors="replace")


async def wait_gateway(child: Child, timeout: float = 30.0) -> str:
    """The URL a ``keylane gateway --port 0`` child prints once it listens."""
    assert child.process.stdout is not None
    async with asyncio.timeout(timeout):
        while True:
            line = (await child.process.stdout.readline()).decode(errors="replace")
            if not line:
                raise ScaleBenchError(f"the gateway exited: {child.tail()}")
            child.stdout.append(line)
            if "listening on " in line:
                return line.split("listening on ", 1)[1].split()[0]


async def wait_ready(children: Sequence[tuple[Child, int]], timeout: float = 60.0) -> None:
    """Wait until every worker's ``/readyz`` answers 200.

    Raises:
        ScaleBenchError: a worker exited or was not ready in time.
    """
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        for child, port in children:
            while True:
                if child.process.returncode is not None:
                    raise ScaleBenchError(f"{child.name} exited at start: {child.tail()}")
                with contextlib.suppress(httpx.HTTPError):
                    answer = await client.get(f"http://127.0.0.1:{port}/readyz")
                    if answer.status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise ScaleBenchError(f"{child.name} not ready after {timeout:g} s")
                await asyncio.sleep(0.2)


class DecisionTail:
    """Follows history files and collects the ids of messages decided (``ok`` or ``dedupe``).

    Also keeps the commit time of each message's first ``ok`` (``committed``).
    """

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = list(paths)
        self._offsets = dict.fromkeys(self._paths, 0)
        self.decided: set[str] = set()
        self.committed: dict[str, float] = {}

    def poll(self) -> int:
        """Read what the files gained since the last poll; return how many are decided."""
        for path in self._paths:
            try:
                with open(path, "rb") as file:
                    file.seek(self._offsets[path])
                    data = file.read()
            except FileNotFoundError:
                continue
            end = data.rfind(b"\n") + 1  # a line still being written waits for the next poll
            self._offsets[path] += end
            for raw in data[:end].splitlines():
                self._take(raw)
        return len(self.decided)

    def _take(self, raw: bytes) -> None:
        try:
            record = json.loads(raw)
        except ValueError:
            return
        outcome = record.get("outcome")
        if outcome in ("ok", "dedupe"):
            message_id = record["message_id"]
            self.decided.add(message_id)
            if outcome == "ok" and message_id not in self.committed:
                self.committed[message_id] = float(record.get("committed") or record["end"])


def check_alive(children: Sequence[Child], what: str) -> None:
    """Raise if any of ``children`` has exited.

    Raises:
        ScaleBenchError: naming the child and the end of its log.
    """
    for child in children:
        if child.process.returncode is not None:
            raise ScaleBenchError(f"{child.name} exited during {what}: {child.tail()}")


async def wait_decided(
    tail: DecisionTail, target: int, timeout: float, workers: Sequence[Child], what: str
) -> None:
    """Wait until ``target`` messages are decided in ``tail``'s files.

    Raises:
        ScaleBenchError: a worker exited, or ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    while tail.poll() < target:
        check_alive(workers, what)
        if time.monotonic() > deadline:
            raise ScaleBenchError(
                f"{what}: {len(tail.decided)} of {target} events decided after {timeout:g} s"
            )
        await asyncio.sleep(0.1)


def read_published(path: Path) -> dict[str, float]:
    """``message_id -> sent`` of a ``keylane publish --history`` file."""
    sent = {}
    with open(path, encoding="utf-8") as file:
        for line in file:
            record = json.loads(line)
            sent[record["message_id"]] = float(record["sent"])
    return sent


async def finish_publisher(publisher: Child) -> dict[str, object]:
    """Wait for a ``keylane publish --json -`` child; return its summary.

    Raises:
        ScaleBenchError: it failed.
    """
    output = await read_output(publisher)
    if publisher.process.returncode != 0:
        raise ScaleBenchError(
            f"keylane publish exited {publisher.process.returncode}: {publisher.tail()} {output}"
        )
    summary: dict[str, object] = json.loads(output)
    return summary


async def gateway_stats(url: str) -> dict[str, object]:
    """``GET <url>/v1/stats`` of a gateway."""
    async with httpx.AsyncClient(timeout=10.0) as client:
        answer = await client.get(f"{url}/v1/stats")
        answer.raise_for_status()
        stats: dict[str, object] = answer.json()
        return stats


async def delete_topics(admin_url: str, topics: Sequence[str]) -> None:
    """Delete persistent topics through the admin REST API (best effort)."""
    async with httpx.AsyncClient(timeout=30.0) as client:
        for topic in topics:
            local = topic.removeprefix("persistent://")
            path = "/".join(quote(part, safe="") for part in local.split("/"))
            with contextlib.suppress(httpx.HTTPError):
                await client.delete(f"{admin_url}/admin/v2/persistent/{path}?force=true")
