"""``keylane compare``: bad paths fail before the run, odd phases still give a table.

Regression tests of issue 7, item 7, through the real command on the embedded broker.
"""

from __future__ import annotations

import json

import pytest

from tests.unit.cli.support import error_line, run

#: A comparison of one strategy that takes well under a second on the embedded broker.
TINY = ["--strategies", "key-shared-lanes", "--duration", "0.3", "--warmup", "0"]
TINY += ["--users", "20", "--drain-timeout", "60"]


def test_json_into_a_missing_directory_fails_before_the_run(tmp_path):
    target = tmp_path / "no" / "such" / "x.json"
    result = run("compare", *TINY, "--json", target)
    # One line, and nothing else: no progress bar, no table (nothing ran)
    line = error_line(result)
    assert line == f"error: --json {target}: directory {target.parent} does not exist"
    assert result.stdout == ""


def test_json_onto_a_directory_fails_before_the_run(tmp_path):
    line = error_line(run("compare", *TINY, "--json", tmp_path))
    assert line == f"error: --json {tmp_path} is a directory, not a file"


def test_history_onto_an_existing_file_fails_before_the_run(tmp_path):
    existing = tmp_path / "history"
    existing.write_text("")
    line = error_line(run("compare", *TINY, "--history", existing))
    assert line == f"error: history_dir {existing} exists and is not a directory"


def test_history_under_a_file_fails_before_the_run(tmp_path):
    existing = tmp_path / "file"
    existing.write_text("")
    line = error_line(run("compare", *TINY, "--history", existing / "sub"))
    assert line.startswith(f"error: history_dir {existing / 'sub'} cannot be created: ")


def test_a_pulsar_url_with_a_bad_port_is_one_line():
    line = error_line(run("compare", *TINY, "--broker", "pulsar://127.0.0.1:notaport"))
    assert line == (
        "error: service_url must look like 'pulsar://host:6650', got 'pulsar://127.0.0.1:notaport'"
    )


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(["--rate", "1"], id="rate-1"),
        pytest.param(["--window", "1000000000"], id="window-never-fills"),
    ],
)
def test_a_phase_that_publishes_little_still_gives_the_table(tmp_path, extra):
    out = tmp_path / "result.json"
    result = run("compare", *TINY, *extra, "--json", out)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert "key-shared-lanes" in result.stdout
    lanes = json.loads(out.read_text())["strategies"]["key-shared-lanes"]
    assert lanes["published"] > 0
    assert lanes["lost_messages"] == 0
