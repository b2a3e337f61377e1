"""Hostile and damaged history and counter files: each one is a ``file:line: reason`` error.

Regression tests of issue 7, item 5: none of these may escape as a ``RecursionError``,
``UnicodeDecodeError``, ``ValueError`` from int conversion, or anything but a
:class:`HistoryFormatError`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from keylane.check import HistoryFormatError, read_counters, read_history
from keylane.check.strict_json import MAX_LINE_BYTES

GOOD_ATTEMPT = (
    '{"key":"u1","consumer":"c1","message_id":"(1,2,-1,-1)","seq":3,"attempt":1,'
    '"start":1.5,"end":2.0,"outcome":"ok"}'
)
DEEP = "[" * 100_000 + "]" * 100_000


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


HOSTILE_LINES = [
    (DEEP, "nested too deeply"),
    (GOOD_ATTEMPT.replace('"seq":3', f'"seq":{DEEP}'), "nested too deeply"),
    (GOOD_ATTEMPT.replace('"seq":3', '"seq":' + "9" * 5000), "does not fit in 64 bits"),
    (GOOD_ATTEMPT.replace('"seq":3', '"seq":9223372036854775808'), "does not fit in 64 bits"),
    (GOOD_ATTEMPT.replace('"start":1.5', '"start":NaN'), "NaN is not valid JSON"),
    (GOOD_ATTEMPT.replace('"end":2.0', '"end":Infinity'), "Infinity is not valid JSON"),
    (GOOD_ATTEMPT.replace('"start":1.5', '"start":-Infinity'), "-Infinity is not valid JSON"),
    (GOOD_ATTEMPT.replace('"start":1.5', '"start":1e999'), "field 'start' must be a finite"),
    (GOOD_ATTEMPT.replace('"seq":3', '"seq":3,"seq":4'), "field 'seq' appears twice"),
    (GOOD_ATTEMPT.replace('"key":"u1"', '"key":"\\ud800"'), "field 'key' is not valid Unicode"),
    (
        GOOD_ATTEMPT.replace('"consumer":"c1"', '"consumer":"c\\udfff"'),
        "field 'consumer' is not valid Unicode (lone surrogate U+DFFF)",
    ),
    (
        '{"published":true,"key":"k","seq":1,"message_id":"\\ud83d"}',
        "field 'message_id' is not valid Unicode",
    ),
]


@pytest.mark.parametrize(("line", "reason"), HOSTILE_LINES, ids=[r for _, r in HOSTILE_LINES])
def test_hostile_line_is_a_format_error_with_file_and_line(tmp_path, line, reason):
    # Given the hostile line as line 2 of a file
    f = write_lines(tmp_path / "c1.jsonl", GOOD_ATTEMPT, line, GOOD_ATTEMPT)
    # When it is read, the error names the file, the line and the reason
    with pytest.raises(HistoryFormatError) as caught:
        read_history([f])
    assert caught.value.line_no == 2
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"{f}:2: ")
    # And with skip_malformed the line is skipped and the others are read
    history = read_history([f], skip_malformed=True)
    assert [e.line_no for e in history.skipped] == [2]
    assert len(history.attempts) == 2


def test_a_huge_bad_value_gives_a_short_reason(tmp_path):
    f = write_lines(tmp_path / "c1.jsonl", GOOD_ATTEMPT.replace('"u1"', f'["{"x" * 100_000}"]'))
    with pytest.raises(HistoryFormatError, match="field 'key' must be a string") as caught:
        read_history([f])
    assert len(caught.value.reason) < 200


def test_an_overlong_line_is_malformed_and_the_next_line_still_reads(tmp_path):
    # Given a line over the limit between two good lines
    f = tmp_path / "c1.jsonl"
    long_line = '{"key":"' + "k" * MAX_LINE_BYTES + '"}'
    f.write_text(f"{GOOD_ATTEMPT}\n{long_line}\n{GOOD_ATTEMPT}\n", encoding="utf-8")
    # Then it is reported by line number, without its content
    with pytest.raises(HistoryFormatError, match=r"c1\.jsonl:2: line longer than") as caught:
        read_history([f])
    assert len(str(caught.value)) < 200 + len(str(f))
    # And skipping it keeps the line numbering and the records after it
    history = read_history([f], skip_malformed=True)
    assert [e.line_no for e in history.skipped] == [2]
    assert len(history.attempts) == 2


def test_a_line_of_exactly_the_limit_is_read(tmp_path):
    f = tmp_path / "c1.jsonl"
    padding = MAX_LINE_BYTES - len(GOOD_ATTEMPT) - len(',"pad":""') - 1
    line = GOOD_ATTEMPT[:-1] + ',"pad":"' + "p" * padding + '"}'
    f.write_text(line + "\n", encoding="utf-8")
    assert len((line + "\n").encode()) == MAX_LINE_BYTES
    assert len(read_history([f]).attempts) == 1


def test_empty_files_are_listed(tmp_path):
    # Given an empty file, a file of blank lines and a good one
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    blank = write_lines(tmp_path / "blank.jsonl", "", "   ")
    good = write_lines(tmp_path / "good.jsonl", GOOD_ATTEMPT)
    history = read_history([empty, blank, good])
    # Then the files without a record are named, and the good one is read
    assert history.empty == [str(empty), str(blank)]
    assert len(history.attempts) == 1


def test_a_file_of_skipped_lines_only_counts_as_empty(tmp_path):
    crashed = write_lines(tmp_path / "crashed.jsonl", GOOD_ATTEMPT[:40])
    history = read_history([crashed], skip_malformed=True)
    assert history.empty == [str(crashed)]
    assert len(history.skipped) == 1


COUNTER_FILES = [
    (b'\xff\xfe{"u1": 1}', ":1: not UTF-8 text"),
    (b'{"u1": 1,\n"u2": \xe9}', ":2: not UTF-8 text"),
    (b'{"u1": ' + b"9" * 5000 + b"}", "does not fit in 64 bits"),
    (b'{"u1": ' + DEEP.encode() + b"}", "nested too deeply"),
    (b'{"u1": NaN}', "NaN is not valid JSON"),
    (b'{"u1": 1, "u1": 2}', "field 'u1' appears twice"),
    (b'{"\\ud800": 1}', "key '\\ud800' is not valid Unicode"),
    (b'{"u1": [' + b"1," * 100_000 + b"1]}", "counter of key 'u1' is not an integer: [1, 1, 1"),
]


@pytest.mark.parametrize(("data", "reason"), COUNTER_FILES, ids=[r for _, r in COUNTER_FILES])
def test_hostile_counters_are_format_errors(tmp_path, data, reason):
    f = tmp_path / "counters.json"
    f.write_bytes(data)
    with pytest.raises(HistoryFormatError) as caught:
        read_counters(f)
    assert reason in str(caught.value)
    assert str(caught.value).startswith(f"{f}:")
    assert len(str(caught.value)) < 200 + len(str(f))
