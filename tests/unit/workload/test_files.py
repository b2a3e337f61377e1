"""Event files: round trip, blank lines, stable sort, every error as file:line: field: reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from keylane.errors import InvalidArgumentError
from keylane.journeys import Event, parse_event
from keylane.workload import (
    BlackFridaySpec,
    WorkloadFileError,
    generate,
    load_events_file,
    write_events_file,
)

T0 = datetime(2026, 11, 27, 17, 0, tzinfo=UTC)


def _raw(n: int, seconds: float = 0, **overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "event_id": f"e{n}",
        "brand_id": "acme",
        "subscriber_id": "u1",
        "type": "product_viewed",
        "occurred_at": (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z"),
        "properties": {"sku": "SKU-1"},
    }
    raw.update(overrides)
    return raw


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_generated_day_round_trips(tmp_path: Path) -> None:
    events = generate(BlackFridaySpec(subscribers=300, bot_views=20, seed=4))
    path = tmp_path / "day.jsonl"
    assert write_events_file(path, events) == len(events)
    assert load_events_file(path) == events


def test_blank_lines_are_ignored_and_events_sorted_stably(tmp_path: Path) -> None:
    # Given events out of time order, two at the same instant, and blank lines
    path = _write(
        tmp_path / "e.jsonl",
        [
            json.dumps(_raw(1, 30)),
            "",
            json.dumps(_raw(2, 10)),
            "   ",
            json.dumps(_raw(3, 10)),
            json.dumps(_raw(4, 0)),
        ],
    )
    # When loaded
    events = load_events_file(str(path))
    # Then they are sorted by time, ties in file order
    assert [e.event_id for e in events] == ["e4", "e2", "e3", "e1"]
    assert events[0] == parse_event(_raw(4, 0))


def test_a_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(_raw(1)).encode() + b"\n")
    assert [e.event_id for e in load_events_file(path)] == ["e1"]


def test_an_invalid_event_names_the_file_line_and_field(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "bad.jsonl",
        [json.dumps(_raw(1)), "", json.dumps(_raw(2, occurred_at="2026-11-27T12:00:00"))],
    )
    with pytest.raises(WorkloadFileError) as info:
        load_events_file(path)
    assert str(info.value).startswith(f"{path}:3: occurred_at: must be timezone-aware")
    assert info.value.line == 3
    assert isinstance(info.value, InvalidArgumentError)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", r":1: not valid JSON"),
        ("[1, 2]", r":1: "),
        (json.dumps(_raw(1, type="teleported")), r":1: type: "),
        (json.dumps(_raw(1, properties={"phone": "555"}, type="subscribed")), r":1: properties"),
        (json.dumps({**_raw(1), "extra": 1}), r":1: extra: unknown field"),
    ],
)
def test_bad_lines(tmp_path: Path, line: str, message: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [line])
    with pytest.raises(WorkloadFileError, match=message):
        load_events_file(path)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(json.dumps(_raw(1)).encode() + b"\n" + b'{"event_id": "caf\xe9"}\n')
    with pytest.raises(WorkloadFileError, match=r":2: not UTF-8 \(byte 18 of the line: 0xe9\)"):
        load_events_file(path)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_an_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(WorkloadFileError, match=r"empty\.jsonl: has no events"):
        load_events_file(path)


def test_a_missing_file_and_a_directory(tmp_path: Path) -> None:
    with pytest.raises(WorkloadFileError, match=r"nope\.jsonl: no such file"):
        load_events_file(tmp_path / "nope.jsonl")
    with pytest.raises(WorkloadFileError, match="is a directory"):
        load_events_file(tmp_path)


def test_write_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkloadFileError, match="is a directory"):
        write_events_file(tmp_path, [])
    with pytest.raises(WorkloadFileError, match="cannot write"):
        write_events_file(tmp_path / "missing" / "day.jsonl", [])
    with pytest.raises(InvalidArgumentError, match="events: item 1 is a dict"):
        write_events_file(tmp_path / "x.jsonl", [_raw(1)])  # type: ignore[list-item]


def test_written_lines_are_one_json_object_each(tmp_path: Path) -> None:
    events: list[Event] = [parse_event(_raw(1)), parse_event(_raw(2, 5))]
    path = tmp_path / "two.jsonl"
    write_events_file(path, events)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["event_id"] for line in lines] == ["e1", "e2"]
