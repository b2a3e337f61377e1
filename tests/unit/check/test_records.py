"""History records on disk: encoding, parsing, merging files and rejecting malformed lines."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from keylane.check import (
    Attempt,
    History,
    HistoryFormatError,
    Published,
    read_counters,
    read_history,
    write_history,
)
from keylane.check.records import encode_record, parse_record
from keylane.errors import InvalidArgumentError
from tests.unit.check.factories import attempt, published

GOOD_ATTEMPT = (
    '{"key":"u1","consumer":"c1","message_id":"(1,2,-1,-1)","seq":3,"attempt":1,'
    '"start":1.5,"end":2.0,"outcome":"ok"}'
)
GOOD_PUBLISHED = '{"published":true,"key":"u1","seq":3,"message_id":"(1,2,-1,-1)"}'


def write_lines(path: Path, *lines: str) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


class TestEncoding:
    def test_attempt_line_has_the_documented_fields(self):
        a = Attempt('u\u00e9"1', "c1", "(1,2,-1,-1)", 3, 2, 1.25, 2.5, "timeout")
        obj = json.loads(encode_record(a))
        assert obj == {
            "key": 'u\u00e9"1',
            "consumer": "c1",
            "message_id": "(1,2,-1,-1)",
            "seq": 3,
            "attempt": 2,
            "start": 1.25,
            "end": 2.5,
            "outcome": "timeout",
        }

    def test_published_line_has_the_documented_fields(self):
        obj = json.loads(encode_record(Published("u1", 7, "(1,2,-1,-1)")))
        assert obj == {"published": True, "key": "u1", "seq": 7, "message_id": "(1,2,-1,-1)"}

    @pytest.mark.parametrize(
        "record",
        [
            Attempt("k", "c", "m", 1, 1, 0.1 + 0.2, 12345.678901234567, "ok"),
            Attempt("k\nwith newline", "c", "m", -5, 9, 0, 0, "cancelled"),
            Published("k", 0, "m"),
        ],
    )
    def test_round_trip_is_exact(self, record):
        line = encode_record(record)
        assert "\n" not in line
        assert parse_record(line) == record

    def test_integer_times_are_written_as_floats(self):
        a = Attempt("k", "c", "m", 1, 1, 3, 4, "ok")  # e.g. an integer virtual clock
        assert json.loads(encode_record(a))["start"] == 3.0

    def test_non_finite_time_is_rejected(self):
        with pytest.raises(InvalidArgumentError, match="finite"):
            encode_record(Attempt("k", "c", "m", 1, 1, 0, float("inf"), "ok"))


class TestReadHistory:
    def test_merges_files_and_skips_blank_lines(self, tmp_path):
        # Given one file per consumer and a producer's file
        f1 = write_lines(tmp_path / "c1.jsonl", encode_record(attempt("k", 1, 0, 1)), "")
        f2 = write_lines(
            tmp_path / "c2.jsonl", "   ", encode_record(attempt("k", 2, 1, 2, consumer="c2"))
        )
        f3 = write_lines(tmp_path / "p.jsonl", *(encode_record(published("k", s)) for s in (1, 2)))
        # When they are read together
        h = read_history([f1, str(f2), f3])
        # Then all records are there, in file order
        assert h.attempts == [attempt("k", 1, 0, 1), attempt("k", 2, 1, 2, consumer="c2")]
        assert h.published == [published("k", 1), published("k", 2)]
        assert h.skipped == []

    def test_a_file_named_twice_is_read_once(self, tmp_path):
        f = write_lines(tmp_path / "c1.jsonl", encode_record(attempt("k", 1, 0, 1)))
        h = read_history([f, str(f), tmp_path / "." / "c1.jsonl"])
        assert len(h.attempts) == 1

    def test_a_single_path_is_accepted(self, tmp_path):
        f = write_lines(tmp_path / "c1.jsonl", GOOD_ATTEMPT)
        assert len(read_history(f).attempts) == 1
        assert len(read_history(str(f)).attempts) == 1

    def test_extra_fields_are_ignored(self, tmp_path):
        obj = json.loads(GOOD_ATTEMPT) | {"redelivery_count": 2, "note": "x"}
        f = write_lines(tmp_path / "c1.jsonl", json.dumps(obj))
        assert read_history([f]).attempts[0].seq == 3

    def test_missing_file_raises_file_not_found(self, tmp_path):
        with pytest.raises(FileNotFoundError):
            read_history([tmp_path / "nope.jsonl"])

    def test_write_then_read_round_trips(self, tmp_path):
        h = History(
            attempts=[attempt("k", 1, 0, 1), attempt("k", 2, 1, 2.5, "error")],
            published=[published("k", 1), published("k", 2)],
        )
        write_history(h, tmp_path / "h.jsonl")
        again = read_history([tmp_path / "h.jsonl"])
        assert again.attempts == h.attempts
        assert again.published == h.published

    def test_merge_concatenates(self):
        h1 = History(attempts=[attempt("k", 1, 0, 1)], published=[published("k", 1)])
        h2 = History(attempts=[attempt("k", 2, 1, 2)])
        merged = History.merge(h1, h2)
        assert merged.attempts == [attempt("k", 1, 0, 1), attempt("k", 2, 1, 2)]
        assert merged.published == [published("k", 1)]
        assert h1.attempts == [attempt("k", 1, 0, 1)]  # inputs untouched


BAD_LINES = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "expected a JSON object, got list"),
    (GOOD_ATTEMPT.replace('"seq":3', '"seq":"3"'), "field 'seq' must be an integer, got '3'"),
    (GOOD_ATTEMPT.replace('"seq":3', '"seq":true'), "field 'seq' must be an integer"),
    (GOOD_ATTEMPT.replace('"seq":3,', ""), "missing field 'seq'"),
    (GOOD_ATTEMPT.replace('"attempt":1', '"attempt":0'), "field 'attempt' must be >= 1"),
    (GOOD_ATTEMPT.replace('"start":1.5', '"start":"1.5"'), "field 'start' must be a finite"),
    (GOOD_ATTEMPT.replace('"end":2.0', '"end":-1e999'), "field 'end' must be a finite"),
    (GOOD_ATTEMPT.replace('"end":2.0', '"end":1.0'), "'end' (1.0) is before 'start' (1.5)"),
    (GOOD_ATTEMPT.replace('"outcome":"ok"', '"outcome":""'), "'outcome' must not be empty"),
    (GOOD_ATTEMPT.replace('"key":"u1"', '"key":1'), "field 'key' must be a string"),
    (GOOD_PUBLISHED.replace("true", "false"), "field 'published' must be true"),
    (GOOD_PUBLISHED.replace('"message_id":"(1,2,-1,-1)"', '"x":1'), "missing field 'message_id'"),
]


class TestMalformed:
    @pytest.mark.parametrize(("line", "reason"), BAD_LINES)
    def test_bad_line_names_file_line_and_reason(self, tmp_path, line, reason):
        # Given a bad line as line 3, after a good line and a blank one
        f = write_lines(tmp_path / "c1.jsonl", GOOD_ATTEMPT, "", line, GOOD_PUBLISHED)
        # When the file is read, it aborts with the file and line number
        with pytest.raises(HistoryFormatError) as caught:
            read_history([f])
        error = caught.value
        assert error.path == str(f)
        assert error.line_no == 3
        assert reason in error.reason
        assert str(error).startswith(f"{f}:3: ")
        assert isinstance(error, InvalidArgumentError)

    def test_skip_malformed_collects_the_bad_lines(self, tmp_path):
        # Given a file whose writer crashed in the middle of its last line
        f = write_lines(
            tmp_path / "c1.jsonl", GOOD_ATTEMPT, "[]", GOOD_PUBLISHED, GOOD_ATTEMPT[:30]
        )
        h = read_history([f], skip_malformed=True)
        assert len(h.attempts) == 1
        assert len(h.published) == 1
        assert [(e.line_no, e.path) for e in h.skipped] == [(2, str(f)), (4, str(f))]

    def test_non_utf8_line_is_malformed_with_its_number(self, tmp_path):
        f = tmp_path / "c1.jsonl"
        f.write_bytes(GOOD_ATTEMPT.encode() + b"\n\xff\xfe\n")
        with pytest.raises(HistoryFormatError, match=r"c1.jsonl:2: not UTF-8 text"):
            read_history([f])
        assert read_history([f], skip_malformed=True).skipped[0].line_no == 2

    def test_the_error_pickles(self):
        error = HistoryFormatError("f.jsonl", 7, "bad")
        again = pickle.loads(pickle.dumps(error))
        assert (again.path, again.line_no, again.reason) == ("f.jsonl", 7, "bad")
        assert str(again) == "f.jsonl:7: bad"

    def test_parse_record_defaults_to_memory(self):
        with pytest.raises(HistoryFormatError, match=r"^<memory>:1: expected a JSON object"):
            parse_record("3")


class TestReadCounters:
    def test_reads_an_object_of_integers(self, tmp_path):
        f = tmp_path / "counters.json"
        f.write_text('{"u1": 3, "u2": 0}')
        assert read_counters(f) == {"u1": 3, "u2": 0}

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("[1]", "expected a JSON object"),
            ('{"u1": 1.5}', "counter of key 'u1' is not an integer"),
            ('{"u1": true}', "counter of key 'u1' is not an integer"),
            ('{\n"u1": }', ":2: not valid JSON"),
        ],
    )
    def test_rejects_anything_else(self, tmp_path, text, reason):
        f = tmp_path / "counters.json"
        f.write_text(text)
        with pytest.raises(HistoryFormatError, match=reason.replace("(", r"\(")):
            read_counters(f)
