"""``keylane check FILE...``: exit codes, JSON output and error messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from keylane.check import History, write_history
from keylane.cli.main import app
from tests.unit.check.factories import attempt, published

runner = CliRunner()


def invoke(*args: str | Path):
    """``keylane check ARGS...`` through the real app (and so its error handling)."""
    return runner.invoke(app, ["check", *map(str, args)])


@pytest.fixture
def clean_files(tmp_path: Path) -> list[Path]:
    """Two consumers' files and the producer's file of a clean run."""
    c1 = tmp_path / "c1.jsonl"
    c2 = tmp_path / "c2.jsonl"
    producer = tmp_path / "producer.jsonl"
    write_history(History(attempts=[attempt("u1", 1, 0, 1), attempt("u2", 1, 0, 2)]), c1)
    write_history(History(attempts=[attempt("u1", 2, 1, 2, consumer="c2")]), c2)
    write_history(
        History(published=[published("u1", 1), published("u1", 2), published("u2", 1)]), producer
    )
    return [c1, c2, producer]


@pytest.fixture
def overlapping_file(tmp_path: Path) -> Path:
    """Another consumer ran u1/2 while c1 was still on u1/2's predecessor."""
    path = tmp_path / "c3.jsonl"
    write_history(History(attempts=[attempt("u1", 2, 0.5, 0.7, consumer="c3")]), path)
    return path


def test_clean_history_exits_0(clean_files):
    result = invoke(*clean_files)
    assert result.exit_code == 0, result.output
    assert "CLEAN" in result.output
    assert "3 attempts of 3 messages on 2 keys by 2 consumers; 3 published" in result.output


def test_anomaly_exits_1_and_shows_examples(clean_files, overlapping_file):
    result = invoke(*clean_files, overlapping_file)
    assert result.exit_code == 1, result.output
    assert "ANOMALIES FOUND" in result.output
    assert "exclusivity violations" in result.output
    assert "c3" in result.output


def test_json_output(clean_files, overlapping_file):
    result = invoke("--json", "-", *clean_files, overlapping_file)
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["clean"] is False
    assert data["exclusivity_violations"] == 1
    assert data["order_violations"] == 1  # c3 finished u1/2 (0.7) before c1 finished u1/1 (1)
    assert data["lost_messages"] == 0
    assert data["duplicates"] == 1  # u1/2 completed by c2 and c3
    assert data["excused_order"] == 0
    assert data["lost_updates"] is None
    assert data["examples"]["exclusivity_violations"][0]["second"]["consumer"] == "c3"


def test_clean_json_exits_0(clean_files):
    result = invoke("--json", "-", *clean_files)
    assert result.exit_code == 0
    assert json.loads(result.stdout)["clean"] is True


def test_counters_count_lost_updates(clean_files, tmp_path):
    counters = tmp_path / "counters.json"
    counters.write_text(json.dumps({"u1": 1, "u2": 1}))
    result = invoke("--json", "-", "--counters", counters, *clean_files)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["lost_updates"] == 1
    counters.write_text(json.dumps({"u1": 2, "u2": 1}))
    assert invoke("--counters", counters, *clean_files).exit_code == 0


def test_strict_order_reports_excused_reordering(tmp_path):
    path = tmp_path / "c1.jsonl"
    write_history(
        History(
            attempts=[
                attempt("u1", 1, 0, 1, "error"),
                attempt("u1", 2, 1, 2),
                attempt("u1", 1, 2, 3, number=2),
            ]
        ),
        path,
    )
    relaxed = invoke("--json", "-", path)
    assert relaxed.exit_code == 0
    assert json.loads(relaxed.stdout)["excused_order"] == 1
    strict = invoke("--json", "-", "--strict-order", path)
    assert strict.exit_code == 1
    assert json.loads(strict.stdout)["order_violations"] == 1


def test_max_examples(tmp_path):
    path = tmp_path / "c1.jsonl"
    attempts = [attempt(f"k{i}", s, i, i + 1, consumer=f"c{s}") for i in range(5) for s in (1, 2)]
    write_history(History(attempts=attempts), path)
    data = json.loads(invoke("--json", "-", "--max-examples", "2", path).stdout)
    assert data["exclusivity_violations"] == 5
    assert len(data["examples"]["exclusivity_violations"]) == 2
    text = invoke("--max-examples", "2", path).output
    assert "earliest 2 of 5" in text


def test_malformed_line_exits_2_with_file_and_line(clean_files):
    bad = clean_files[0]
    bad.write_text(bad.read_text() + '{"key": "u1"}\n')
    result = invoke(*clean_files)
    assert result.exit_code == 2
    assert f"{bad}:3: missing field 'attempt'" in result.stderr
    assert result.stdout == ""


def test_skip_malformed_warns_and_checks_the_rest(clean_files):
    bad = clean_files[0]
    bad.write_text(bad.read_text() + '{"key": "u1", "se')  # crashed mid-line
    result = invoke("--skip-malformed", "--json", "-", *clean_files)
    assert result.exit_code == 0
    assert f"warning: skipped {bad}:3: not valid JSON" in result.stderr
    assert json.loads(result.stdout)["totals"]["skipped_lines"] == 1


def test_missing_file_exits_2(tmp_path):
    result = invoke(tmp_path / "nope.jsonl")
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'nope.jsonl'}: No such file or directory\n"


def test_bad_counters_exit_2(clean_files, tmp_path):
    counters = tmp_path / "counters.json"
    counters.write_text('{"u1": "many"}')
    result = invoke("--counters", counters, *clean_files)
    assert result.exit_code == 2
    assert "counter of key 'u1' is not an integer" in result.stderr


def test_no_file_is_a_usage_error():
    assert invoke().exit_code == 2


def test_registered_in_the_keylane_app():
    commands = [c.name for c in app.registered_commands]
    assert "check" in commands


def test_console_script_runs(clean_files, overlapping_file):
    # The real entry point, in a subprocess (single- or multi-command app alike)
    code = (
        "import sys; from keylane.cli.main import app; "
        "names = [c.name for c in app.registered_commands]; "
        "args = sys.argv[1:] if len(names) == 1 else ['check', *sys.argv[1:]]; "
        "app(args, prog_name='keylane')"
    )
    ok = subprocess.run(
        [sys.executable, "-c", code, "--json", "-", *map(str, clean_files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["clean"] is True
    bad = subprocess.run(
        [sys.executable, "-c", code, *map(str, [*clean_files, overlapping_file])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
