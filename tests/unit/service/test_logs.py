"""The processes' log lines: one JSON object each, and never a password, token or recipient."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from keylane.service.logs import JsonFormatter, TextFormatter, configure_logging, log_event, redact


@pytest.mark.parametrize(
    ("text", "shown", "hidden"),
    [
        (
            "postgresql://keylane:s3cr3t@db:5432/keylane",
            "postgresql://keylane:***@db:5432/keylane",
            "s3cr3t",
        ),
        ("pulsar+ssl://svc:p#ss:w@rd@broker:6651", "pulsar+ssl://svc:***@broker:6651", "w@rd"),
        ("http://u:@h/x", "http://u:***@h/x", None),
        ("db?sslmode=require&password=hunter2&x=1", "password=***&x=1", "hunter2"),
        ("api_key=abc123 token: t0k3n", "api_key=*** token: ***", "t0k3n"),
        ("Authorization: Bearer eyJhbGciOi.xyz", "Authorization: ***", "eyJhbGciOi"),
        ("sent to +14155550123 ok", "sent to ********0123 ok", "4155550123"),
        ("u0000045@example.org opted out", "u***@example.org opted out", "u0000045@"),
    ],
)
def test_redact_masks_secrets_and_recipients(text: str, shown: str, hidden: str | None) -> None:
    masked = redact(text)
    assert shown in masked
    if hidden is not None:
        assert hidden not in masked


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://keylane@127.0.0.1:5440/keylane",  # a user without a password
        "pulsar://127.0.0.1:6650",
        "key acme:u0000001 message 12:34:0:-1 attempt 2",
        "acked 3000 in 1.5 s (+1234 since the last line)",
    ],
)
def test_redact_leaves_the_rest_alone(text: str) -> None:
    assert redact(text) == text


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("keylane.worker", logging.WARNING, __file__, 1, message, args, None)
    for name, value in extra.items():
        setattr(record, name, value)
    return record


def test_json_line_carries_the_event_fields_and_static_fields() -> None:
    formatter = JsonFormatter({"worker": "pod-1"})
    record = _record(
        "started",
        event="started",
        fields={"store": "postgresql://k:pw@db/k", "consumers": ["pod-1-0"], "rate": float("inf")},
    )
    line = formatter.format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["event"] == "started"
    assert data["level"] == "warning"
    assert data["logger"] == "keylane.worker"
    assert data["worker"] == "pod-1"
    assert data["store"] == "postgresql://k:***@db/k"
    assert data["consumers"] == ["pod-1-0"]
    assert data["rate"] == "inf"  # not valid JSON as a number
    assert "message" not in data  # the event is the message
    assert data["ts"].endswith("+00:00")


def test_a_plain_record_is_event_log_with_its_message_redacted() -> None:
    line = JsonFormatter().format(_record("webhook 503 for %s to %s", "k1", "+14155550123"))
    data = json.loads(line)
    assert data["event"] == "log"
    assert data["message"] == "webhook 503 for k1 to ********0123"


def test_a_field_named_like_a_line_key_does_not_replace_it() -> None:
    data = json.loads(JsonFormatter().format(_record("x", event="x", fields={"level": "mine"})))
    assert data["level"] == "warning"
    assert data["level_"] == "mine"


def test_a_traceback_stays_inside_the_line_and_is_redacted() -> None:
    try:
        raise ConnectionError("cannot reach postgresql://k:topsecret@db/k")
    except ConnectionError:
        record = logging.LogRecord(
            "keylane", logging.ERROR, __file__, 1, "failed", (), exc_info=sys.exc_info()
        )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert "ConnectionError" in data["error"]
    assert "topsecret" not in line


def test_text_lines_are_redacted_too() -> None:
    record = _record("draining", event="draining", fields={"to": "+14155550123", "grace": 10.0})
    line = TextFormatter().format(record)
    assert "draining" in line
    assert "grace=10.0" in line
    assert "4155550123" not in line


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("keylane").level)
    stream = io.StringIO()
    configure_logging(json_lines=True, level="info", stream=stream, static={"worker": "w"})
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    logging.getLogger("keylane").setLevel(saved[2])


def test_configure_logging_sends_keylanes_events_and_libraries_warnings(
    captured: io.StringIO,
) -> None:
    log_event(logging.getLogger("keylane.worker"), "stats", acked=5)
    logging.getLogger("keylane.worker").debug("not shown at info")
    logging.getLogger("some.library").info("not shown: libraries log warnings only")
    logging.getLogger("some.library").warning("pool reset for postgresql://a:b@h/d")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert [(x["event"], x["logger"]) for x in lines] == [
        ("stats", "keylane.worker"),
        ("log", "some.library"),
    ]
    assert lines[0]["acked"] == 5
    assert lines[0]["worker"] == "w"
    assert lines[1]["message"] == "pool reset for postgresql://a:***@h/d"
