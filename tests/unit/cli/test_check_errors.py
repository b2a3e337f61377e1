"""``keylane check`` on bad input: exit 2 and one ``error: file:line: reason`` line, always.

Regression tests of issue 7, item 5, through the real command.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.unit.cli.support import error_line, run, run_script, script_error_line

GOOD = (
    '{"key":"u1","consumer":"c1","message_id":"m1","seq":1,"attempt":1,'
    '"start":1.0,"end":2.0,"outcome":"ok"}'
)
DEEP = "[" * 100_000 + "]" * 100_000


def history_file(tmp_path: Path, *lines: str | bytes, name: str = "c1.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


BAD_HISTORIES = [
    pytest.param([GOOD, DEEP], 2, "nested too deeply", id="deep-nesting"),
    pytest.param([GOOD, b"\xff\xfe\xfd"], 2, "not UTF-8 text", id="not-utf8"),
    pytest.param(
        [GOOD.replace('"seq":1', '"seq":' + "7" * 5000)], 1, "does not fit", id="huge-int"
    ),
    pytest.param([GOOD.replace("1.0", "NaN")], 1, "NaN is not valid JSON", id="nan"),
    pytest.param([GOOD.replace("2.0", "Infinity")], 1, "Infinity is not valid", id="infinity"),
    pytest.param([GOOD.replace('"seq":1', '"seq":1,"seq":2')], 1, "appears twice", id="dup"),
    pytest.param(
        [GOOD, GOOD.replace('"u1"', '"\\ud800"')], 2, "lone surrogate U+D800", id="surrogate"
    ),
    pytest.param(
        [GOOD, '{"key":"' + "k" * (2 << 20) + '"}', GOOD], 2, "line longer than", id="huge-line"
    ),
]


@pytest.mark.parametrize(("lines", "line_no", "reason"), BAD_HISTORIES)
def test_bad_history_line_exits_2_with_file_line_and_reason(tmp_path, lines, line_no, reason):
    # Given a history with one bad line
    path = history_file(tmp_path, *lines)
    # When it is checked, one line names the file, the line and the reason
    result = run("check", path)
    line = error_line(result)
    assert line.startswith(f"error: {path}:{line_no}: ")
    assert reason in line
    assert len(line) < 300 + len(str(path))
    assert result.stdout == ""


def test_skip_malformed_skips_a_deeply_nested_line(tmp_path):
    path = history_file(tmp_path, GOOD, DEEP)
    result = run("check", "--skip-malformed", "--json", "-", path)
    assert result.exit_code == 0, result.output
    assert f"warning: skipped {path}:2: not valid JSON (nested too deeply)" in result.stderr
    assert json.loads(result.stdout)["totals"]["skipped_lines"] == 1


BAD_COUNTERS = [
    pytest.param(b"\xff\xfe{}", "not UTF-8 text", id="not-utf8"),
    pytest.param(b'{"u1": ' + b"9" * 5000 + b"}", "does not fit in 64 bits", id="huge-int"),
    pytest.param(b'{"u1": ' + DEEP.encode() + b"}", "nested too deeply", id="deep-nesting"),
    pytest.param(b'{"u1": NaN}', "NaN is not valid JSON", id="nan"),
    pytest.param(b'{"u1": 1, "u1": 1}', "field 'u1' appears twice", id="dup"),
]


@pytest.mark.parametrize(("data", "reason"), BAD_COUNTERS)
def test_bad_counters_exit_2_with_file_and_reason(tmp_path, data, reason):
    history = history_file(tmp_path, GOOD)
    counters = tmp_path / "counters.json"
    counters.write_bytes(data)
    line = error_line(run("check", "--counters", counters, history))
    assert line.startswith(f"error: {counters}:1: ")
    assert reason in line


def test_a_directory_exits_2(tmp_path):
    line = error_line(run("check", tmp_path))
    assert line == f"error: {tmp_path}: Is a directory"


def test_a_missing_file_exits_2(tmp_path):
    missing = tmp_path / "nope.jsonl"
    assert error_line(run("check", missing)) == f"error: {missing}: No such file or directory"


def test_a_path_through_a_file_exits_2(tmp_path):
    history = history_file(tmp_path, GOOD)
    line = error_line(run("check", history / "x.jsonl"))
    assert line == f"error: {history / 'x.jsonl'}: Not a directory"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_file_exits_2(tmp_path):
    history = history_file(tmp_path, GOOD)
    history.chmod(0)
    assert error_line(run("check", history)) == f"error: {history}: Permission denied"


def test_a_missing_counters_file_exits_2(tmp_path):
    history = history_file(tmp_path, GOOD)
    missing = tmp_path / "counters.json"
    line = error_line(run("check", "--counters", missing, history))
    assert line == f"error: {missing}: No such file or directory"


def test_only_empty_files_is_an_error_not_clean(tmp_path):
    # Given the file of a writer that crashed before writing anything
    empty = tmp_path / "c1.jsonl"
    empty.write_bytes(b"")
    # Then there is nothing to check: exit 2, not CLEAN
    result = run("check", empty)
    assert result.exit_code == 2, result.output
    assert "CLEAN" not in result.output
    assert result.stderr.splitlines() == [
        f"warning: {empty} holds no records",
        f"error: no records in {empty}: nothing to check",
    ]


def test_an_empty_file_among_others_is_a_warning(tmp_path):
    good = history_file(tmp_path, GOOD)
    empty = tmp_path / "c2.jsonl"
    empty.write_bytes(b"\n\n")
    result = run("check", "--json", "-", good, empty)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [f"warning: {empty} holds no records"]
    assert json.loads(result.stdout)["clean"] is True


def test_keys_that_look_like_markup_are_printed_as_they_are(tmp_path):
    # Given two consumers overlapping on a key that looks like rich markup
    first = GOOD.replace('"u1"', '"[/bold]"')
    second = first.replace('"c1"', '"[red]c2"').replace('"start":1.0', '"start":1.5')
    path = history_file(tmp_path, first, second)
    # Then the report shows the anomaly with the key and consumer verbatim
    result = run("check", path)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert "[/bold]" in result.stdout
    assert "[red]c2" in result.stdout


def test_the_console_script_prints_one_line_for_a_deep_line(tmp_path):
    # The installed `keylane` script, in a subprocess: what a user sees
    path = history_file(tmp_path, GOOD, DEEP)
    line = script_error_line(run_script("check", path))
    assert line == f"error: {path}:2: not valid JSON (nested too deeply)"
