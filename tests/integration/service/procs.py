"""Real ``keylane`` processes for the service tests: start, wait for, signal and read them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

KEYLANE = Path(sys.executable).with_name("keylane")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any ``KEYLANE_*`` variable (the tests set their own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLANE_")}
    return {**env, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Proc:
    """A child process whose standard error (and output, unless piped) goes to ``log``."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def events(self) -> list[dict[str, object]]:
        """The JSON log lines (every line must be one)."""
        return [json.loads(line) for line in self.lines() if line.strip()]

    def wait_event(self, event: str, timeout: float = 60.0) -> dict[str, object]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines():
                if f'"event":"{event}"' in line:
                    found: dict[str, object] = json.loads(line)
                    return found
            if self.popen.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.popen.returncode}: {self.lines()}")
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: no {event!r} line after {timeout} s: {self.lines()}")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.popen.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        return self.popen.wait(timeout)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


def start(name: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> Proc:
    with open(log, "wb") as handle:
        popen = subprocess.Popen(
            [str(KEYLANE), *args],
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=handle,
            env=env if env is not None else clean_env(),
        )
    return Proc(name, popen, log)


def start_gateway(directory: Path) -> tuple[Proc, str]:
    """``keylane gateway --port 0``; returns it and its URL."""
    proc = start(
        "gateway",
        ["gateway", "--port", "0", "--log", str(directory / "gateway.jsonl")],
        directory / "gateway.log",
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in proc.lines():
            if "listening on " in line:
                return proc, line.split("listening on ", 1)[1].split()[0]
        if proc.popen.poll() is not None:
            raise AssertionError(f"the gateway exited: {proc.lines()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the gateway did not start")


def wait_ready(port: int, timeout: float = 60.0) -> httpx.Response:
    """Poll ``/readyz`` until 200; return that answer."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if last.status_code == 200:
                return last
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"worker on {port} not ready: {last and last.text}")


def decided(paths: list[Path]) -> set[str]:
    """Message ids with an ``ok`` or ``dedupe`` attempt in any of the history files."""
    ids: set[str] = set()
    for path in paths:
        for record in _records(path):
            if record.get("outcome") in ("ok", "dedupe"):
                ids.add(str(record["message_id"]))
    return ids


def attempts_by_consumer(paths: list[Path]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in paths:
        for record in _records(path):
            if record.get("outcome") == "ok":
                consumer = str(record["consumer"])
                counts[consumer] = counts.get(consumer, 0) + 1
    return counts


def _records(path: Path) -> Iterator[dict[str, object]]:
    if not path.exists():
        return
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)


def wait_decided(paths: list[Path], expected: set[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        missing = expected - decided(paths)
        if not missing:
            return
        time.sleep(0.2)
    raise AssertionError(f"{len(missing)} of {len(expected)} events not decided after {timeout} s")
