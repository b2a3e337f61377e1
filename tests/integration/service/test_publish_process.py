"""``keylane publish`` as a real process: bad options, and SIGTERM mid-run on real Pulsar."""

from __future__ import annotations

import json
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from keylane.check import read_history
from keylane.workload import BlackFridaySpec, generate, write_events_file
from tests.integration.service.procs import KEYLANE, clean_env, start


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEYLANE), "publish", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env=clean_env(),
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--broker", "memory://"], "--broker: memory:// is refused"),
        (["--rate", "5", "--speed", "5"], "rate and speed: give one of them"),
        (["--events", "/nonexistent/day.jsonl"], "/nonexistent/day.jsonl: no such file"),
        (["--history", "/nonexistent/dir/p.jsonl"], "directory /nonexistent/dir does not exist"),
        (["--count", "0"], "--count"),
    ],
)
def test_bad_options_exit_2_with_one_line(args: list[str], says: str) -> None:
    done = run(*args)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    assert says in lines[0]


@pytest.mark.pulsar
def test_sigterm_stops_the_run_after_the_sends_in_flight(tmp_path: Path, pulsar_url: str) -> None:
    # Given a slow run of 1,000 events at 200/s
    events = generate(BlackFridaySpec(subscribers=200, bot_views=0, seed=3))[:1000]
    path = tmp_path / "events.jsonl"
    write_events_file(path, events)
    history = tmp_path / "published.jsonl"
    topic = f"persistent://public/default/it-publish-{secrets.token_hex(4)}"
    proc = start(
        "publish",
        [
            "publish",
            *("--broker", pulsar_url, "--topic", topic, "--events", str(path)),
            *("--rate", "200", "--history", str(history), "--json", "-"),
        ],
        tmp_path / "publish.log",
    )
    # When it gets SIGTERM once it has recorded its first publications (written every 256)
    deadline = time.monotonic() + 60
    while not (history.exists() and history.stat().st_size > 0):
        assert proc.popen.poll() is None, proc.lines()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.signal(signal.SIGTERM)
    # Then it exits 0 with a summary of what it published, every one recorded
    assert proc.wait(60) == 0
    summary = json.loads(proc.log.read_text())
    assert summary["stopped_early"] is True
    assert 0 < summary["published"] < 1000
    assert summary["unconfirmed"] == 0
    assert len(read_history([history]).published) == summary["published"]
