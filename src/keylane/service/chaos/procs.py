"""The harness's child processes: started in their own process group, always cleaned up.

:func:`spawn` starts ``python -m keylane ARGS`` (a worker, the gateway, the load generator) with
``start_new_session=True``, its standard error (and output, unless captured) in a log file, and
registers it with :class:`Children`. :meth:`Children.close` ends whatever is still running (a
SIGCONT first, in case it was stopped, then SIGTERM, then SIGKILL of its process group) and
runs in the harness's ``finally``; an ``atexit`` hook does the same synchronously for a harness
that dies some other way. Nothing is ever signalled by name: only the process groups started
here.

Imports the standard library, httpx and the runtime's settings (the child environment).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from keylane.errors import KeylaneError
from keylane.runtime.settings import child_environment

__all__ = [
    "ChaosChild",
    "ChaosError",
    "Children",
    "spawn",
    "wait_healthy",
    "wait_line",
    "wait_ready",
]


class ChaosError(KeylaneError):
    """The harness could not run (a process or a service did not start, a phase timed out)."""


@dataclass
class ChaosChild:
    """One child process of the harness.

    Attributes:
        name: e.g. ``w1``, ``gateway``, ``publish-1``.
        process: the asyncio process.
        log: where its standard error (and output) goes.
        started: ``time.monotonic()`` when it was spawned.
        stdout: lines of a captured standard output, read so far.
    """

    name: str
    process: asyncio.subprocess.Process
    log: Path
    started: float
    stdout: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        """The child's pid (also its process group id)."""
        return self.process.pid

    @property
    def running(self) -> bool:
        """Not exited yet (a stopped process is running)."""
        return self.process.returncode is None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the child's process group (nothing if it already exited)."""
        if self.running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, sig)

    def tail(self, lines: int = 5) -> str:
        """The last lines of its log, for an error message."""
        try:
            text = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    async def wait(self, timeout: float) -> int | None:
        """Its exit code, or None if it is still running after ``timeout`` seconds."""
        try:
            async with asyncio.timeout(timeout):
                return await self.process.wait()
        except TimeoutError:
            return None

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGCONT and SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; the exit code."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        code = await self.wait(timeout)
        if code is None:
            self.signal(signal.SIGKILL)
            code = await self.process.wait()
        return code


class Children:
    """Every child the harness started; ends the running ones on :meth:`close` or at exit."""

    def __init__(self) -> None:
        self._children: list[ChaosChild] = []
        self.closing = False
        atexit.register(self._kill_now)

    def add(self, child: ChaosChild) -> None:
        """Track ``child``; one started once closing began is stopped at once.

        Raises:
            ChaosError: the registry is closing (nothing may start any more).
        """
        self._children.append(child)
        if self.closing:
            child.signal(signal.SIGKILL)
            raise ChaosError(f"{child.name} started while the harness was stopping")

    @property
    def all(self) -> tuple[ChaosChild, ...]:
        """Every child started so far."""
        return tuple(self._children)

    async def close(self, timeout: float = 30.0) -> None:
        """Stop every child still running (in parallel), then forget the exit hook."""
        self.closing = True
        while running := [child for child in self._children if child.running]:
            await asyncio.gather(
                *(child.stop(timeout) for child in running), return_exceptions=True
            )
        atexit.unregister(self._kill_now)

    def _kill_now(self) -> None:
        for child in self._children:
            if child.process.returncode is None:
                for sig in (signal.SIGCONT, signal.SIGKILL):
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.pid, sig)


async def _read_stdout(child: ChaosChild, stream: asyncio.StreamReader) -> None:
    while line := await stream.readline():
        child.stdout.append(line.decode(errors="replace"))


async def spawn(
    children: Children,
    name: str,
    args: Sequence[str],
    log: Path,
    *,
    env: Mapping[str, str] | None = None,
    capture: bool = False,
    append: bool = False,
) -> ChaosChild:
    """Start ``python -m keylane ARGS`` in a new session and track it.

    Args:
        children: the registry that will clean it up.
        name: its name in the report.
        args: the ``keylane`` arguments.
        log: its standard error (and output, unless ``capture``).
        env: more environment variables for it.
        capture: keep its standard output in :attr:`ChaosChild.stdout` instead.
        append: append to ``log`` (a restarted worker) instead of replacing it.
    """
    handle = open(log, "ab" if append else "wb")  # noqa: SIM115, ASYNC230 - the child keeps it
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "keylane",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if capture else handle,
            stderr=handle,
            env=child_environment(**dict(env or {})),
            start_new_session=True,
        )
    finally:
        handle.close()
    child = ChaosChild(name, process, log, time.monotonic())
    children.add(child)
    if capture:
        assert process.stdout is not None
        reader = asyncio.create_task(_read_stdout(child, process.stdout))
        _READERS.add(reader)
        reader.add_done_callback(_READERS.discard)
    return child


_READERS: set[asyncio.Task[None]] = set()


async def wait_line(child: ChaosChild, text: str, timeout: float) -> str:
    """The first captured output line holding ``text``.

    Raises:
        ChaosError: the child exited first, or ``timeout`` passed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in child.stdout:
            if text in line:
                return line
        if not child.running:
            raise ChaosError(f"{child.name} exited {child.process.returncode}: {child.tail()}")
        await asyncio.sleep(0.05)
    raise ChaosError(f"{child.name}: no {text!r} after {timeout:g} s: {child.tail()}")


async def wait_healthy(child: ChaosChild, port: int, timeout: float = 60.0) -> float:
    """Poll ``/healthz`` until it answers; ``time.monotonic()`` of the first answer.

    Raises:
        ChaosError: the child exited or did not answer in time.
    """
    return await _poll(child, port, "/healthz", timeout)


async def wait_ready(child: ChaosChild, port: int, timeout: float = 90.0) -> float:
    """Poll ``/readyz`` until 200; ``time.monotonic()`` of that answer.

    Raises:
        ChaosError: the child exited or was not ready in time.
    """
    return await _poll(child, port, "/readyz", timeout)


async def _poll(child: ChaosChild, port: int, path: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if not child.running:
                raise ChaosError(f"{child.name} exited at start: {child.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                answer = await client.get(f"http://127.0.0.1:{port}{path}")
                if answer.status_code == 200:
                    return time.monotonic()
            if time.monotonic() > deadline:
                raise ChaosError(f"{child.name}: {path} not 200 after {timeout:g} s")
            await asyncio.sleep(0.05)
