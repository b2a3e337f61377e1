"""Keep secrets and phone numbers out of the logs: a ``logging.Filter`` that masks them.

:func:`redact` masks, in any text:

- bearer tokens (``Bearer <token>``) and ``token=<value>`` query parameters;
- the API token itself and any other secret registered with :class:`RedactingFilter`;
- E.164 phone numbers (``+`` and 8 to 15 digits): all but the last 4 digits become ``*``.

:class:`RedactingFilter` applies it to each record's final message (arguments included) and to
its exception text, so it can sit on a handler and cover uvicorn's logs, keylane's and those of
libraries alike. :func:`install` puts one on the root logger's handlers (and uvicorn's, which do
not propagate).

Imports only the standard library.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

__all__ = ["RedactingFilter", "install", "redact"]

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_QUERY_TOKEN = re.compile(r"(?i)((?:^|[?&\s])(?:access_)?token=)[^&\s\"']+")
_PHONE = re.compile(r"(?<![\w+])\+(\d{4,11})(\d{4})(?!\d)")
MASK = "***"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with tokens, the given ``secrets`` and phone numbers masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _BEARER.sub(lambda m: m.group(1) + MASK, text)
    text = _QUERY_TOKEN.sub(lambda m: m.group(1) + MASK, text)
    return _PHONE.sub(lambda m: "+" + "*" * len(m.group(1)) + m.group(2), text)


class RedactingFilter(logging.Filter):
    """Masks tokens, ``secrets`` and phone numbers in every record it sees (never drops one)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to logging to report
            return True
        record.msg = redact(message, self.secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "keylane")


def install(secrets: Iterable[str] = ()) -> RedactingFilter:
    """Put one :class:`RedactingFilter` on the handlers of the root, uvicorn and keylane loggers.

    Handlers added later are not covered; call it again after configuring logging.
    """
    redacting = RedactingFilter(secrets)
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
                handler.removeFilter(old)
            handler.addFilter(redacting)
    return redacting
