"""Structured logs for keylane's processes: one JSON object per line, never a secret.

- :func:`configure_logging` points the ``keylane`` loggers (and the libraries' warnings) at one
  stream with :class:`JsonFormatter` (or :class:`TextFormatter` for people).
- :func:`log_event` logs an event of note: ``log_event(logger, "draining", grace=10.0)`` becomes
  ``{"ts": ..., "level": "info", "logger": ..., "event": "draining", "grace": 10.0, ...}``.
  Records logged the usual way (``logger.warning("...")``) carry ``"event": "log"``.
- :func:`redact` is applied to every message and every field: passwords in URLs
  (``postgresql://user:***@host``), secret-looking query parameters and authorization headers,
  phone numbers and email addresses (masked as :func:`keylane.providers.mask_recipient` does:
  ``********0123``, ``u***@example.org``).

Imports the standard library and the providers' masking rule; no backend, no web framework.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

from keylane.providers import mask_recipient

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "log_event", "redact"]

#: ``scheme://user:password@`` (the password may be empty).
_URL_PASSWORD = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*):[^\s\"']*@")
#: ``password=...``, ``token=...`` and the like, in a query string or a ``key=value`` text.
_SECRET_PARAM = re.compile(
    r"(?i)\b(?P<key>password|passwd|pwd|secret|client_secret|token|access_token|api[_-]?key"
    r"|apikey|authorization|sslpassword)(?P<sep>=|:\s*)(?P<value>[^&\s\"',;]+)"
)
#: ``Bearer <token>`` / ``Basic <credentials>``.
_AUTH_HEADER = re.compile(r"(?i)\b(?P<kind>bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
#: An E.164 number (``+`` then 7 to 15 digits).
_PHONE = re.compile(r"(?<![\w+*])\+[1-9]\d{6,14}\b")
#: An email address (not a URL's ``user@host``: no ``/`` right before it).
_EMAIL = re.compile(
    r"(?<![\w/.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)


def redact(text: str) -> str:
    """``text`` with passwords, tokens, phone numbers and email addresses masked."""
    text = _URL_PASSWORD.sub(r"\g<head>:***@", text)
    text = _AUTH_HEADER.sub(r"\g<kind> ***", text)
    text = _SECRET_PARAM.sub(r"\g<key>\g<sep>***", text)
    text = _PHONE.sub(lambda m: mask_recipient(m.group(0)), text)
    return _EMAIL.sub(lambda m: mask_recipient(m.group(0)), text)


def _clean(value: object, depth: int = 0) -> object:
    """A JSON-ready copy of ``value``, every string redacted."""
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth < 6 and isinstance(value, Mapping):
        return {redact(str(k)): _clean(v, depth + 1) for k, v in value.items()}
    if depth < 6 and isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [_clean(v, depth + 1) for v in items]
    return redact(str(value))


def _fields(record: logging.LogRecord) -> dict[str, object]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, Mapping) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``ts``, ``level``, ``logger``, ``event``, ``message``, fields.

    ``static`` fields (e.g. the worker's name) are added to every line. A traceback goes into
    ``error`` as one string, so the record stays one line.
    """

    def __init__(self, static: Mapping[str, object] | None = None) -> None:
        super().__init__()
        self._static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON, redacted."""
        line: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", "log"),
            **self._static,
        }
        message = record.getMessage()
        if message and message != line["event"]:
            line["message"] = message
        for key, value in _fields(record).items():
            line[f"{key}_" if key in line else key] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        cleaned = _clean(line)
        return json.dumps(cleaned, ensure_ascii=True, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger> <event> key=value ...`` for people, redacted as well."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one human-readable line (plus a traceback, if any)."""
        when = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S.%f")[:-3]
        event = getattr(record, "event", "")
        parts = [when, record.levelname, record.name]
        message = record.getMessage()
        parts.append(message if not event or message == event else f"{event}: {message}")
        parts += [f"{k}={json.dumps(_clean(v))}" for k, v in _fields(record).items()]
        text = redact(" ".join(parts))
        if record.exc_info:
            text += "\n" + redact(self.formatException(record.exc_info))
        return text


def log_event(
    logger: logging.Logger, event: str, *, level: int = logging.INFO, **fields: Any
) -> None:
    """Log the event ``event`` with ``fields`` (each becomes a key of the JSON line)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"event": event, "fields": fields})


def configure_logging(
    *,
    json_lines: bool = True,
    level: str = "info",
    stream: IO[str] | None = None,
    static: Mapping[str, object] | None = None,
) -> logging.Handler:
    """Send every log record (keylane's and the libraries') to ``stream`` (stderr), formatted.

    Replaces the root logger's handlers, so nothing is printed twice. Returns the handler.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(static) if json_lines else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("keylane").setLevel(level.upper())
    return handler
