"""``keylane run``, the main job, end to end: a small simulated day, its report and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

KEYLANE = [sys.executable, "-m", "keylane"]


def run(*args: str | Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*KEYLANE, "run", *map(str, args)], capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.slow
def test_a_small_day_runs_clean_and_writes_its_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = run(
        "--subscribers", "300", "--speed", "7200", "--data-dir", tmp_path, "--json", out
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "OK: no duplicate" in result.stdout
    report = json.loads(out.read_text())
    assert report["ok"] is True
    assert report["duplicate_deliveries"] == 0
    assert report["compliance"]["total"] == 0
    assert report["checker"]["clean"] is True
    assert report["checker"]["lost_messages"] == 0
    assert report["events"] > 1000
    assert sum(report["deliveries"]["by_channel"].values()) > 0
    assert report["timers_fired"] > 0
    # the run's files: the SQLite state, the gateway's log, the history
    run_dir = next(tmp_path.glob("run-*"))
    assert {p.name for p in run_dir.iterdir()} >= {"state.db", "gateway.jsonl", "history.jsonl"}
    check = subprocess.run(
        [*KEYLANE, "check", str(run_dir / "history.jsonl")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--speed", "0"], "speed"),
        (["--store", "mysql://x"], "unknown state store URL"),
        (["--broker", "kafka://x"], "unknown broker URL"),
        (["--events", "no/such/file.jsonl"], "no/such/file.jsonl"),
        (["--journeys", "no/such/journeys.toml"], "no/such/journeys.toml"),
        (["--json", "no/such/dir/report.json"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = run(*args, "--data-dir", tmp_path, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]


def test_a_malformed_events_file_names_the_line(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"event_id": "e1"}\n')
    result = run("--events", events, "--data-dir", tmp_path, timeout=120)
    assert result.returncode == 2
    assert f"{events}:1:" in result.stderr
    assert "Traceback" not in result.stderr
