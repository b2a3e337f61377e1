"""How the settings' values are parsed and checked: the text of a variable (``_int``, ``_bool``,
...) and a value from any source, a flag or a variable (``_broker``, ``_store``, ``_token``, ...).

Each function takes ``source`` (the flag or variable, for the error message) and raises
:class:`~keylane.errors.InvalidArgumentError` naming it. Private to :mod:`keylane.runtime.settings`,
which builds its table from them; reads no environment. Imports the ground floor and the standard
library only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from keylane._validate import (
    check_bool,
    check_int,
    check_number,
    check_seconds,
    check_text,
    check_token,
)
from keylane.clock import as_utc
from keylane.errors import InvalidArgumentError

LOG_LEVELS = ("debug", "info", "warning", "error")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")


# -- parsing the text of a variable ------------------------------------------------------------


def _text(source: str, text: str) -> object:
    return text.strip()


def _int(source: str, text: str) -> object:
    try:
        return int(text.strip())
    except ValueError:
        raise InvalidArgumentError(f"{source} must be an integer, got {text!r}") from None


def _float(source: str, text: str) -> object:
    try:
        return float(text.strip())
    except ValueError:
        raise InvalidArgumentError(f"{source} must be a number, got {text!r}") from None


_TRUE, _FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off"})


def _bool(source: str, text: str) -> object:
    word = text.strip().lower()
    if word in _TRUE | _FALSE:
        return word in _TRUE
    raise InvalidArgumentError(f"{source} must be true or false (1/0, yes/no), got {text!r}")


def _path(source: str, text: str) -> object:
    return Path(text.strip())


def _time(source: str, text: str) -> object:
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise InvalidArgumentError(
            f"{source} must be an ISO-8601 time with a zone (2026-11-27T05:00:00Z), got {text!r}"
        ) from None


# -- checking a value, whatever its source -----------------------------------------------------


def _broker(source: str, value: object) -> object:
    url = check_text(source, value, allow_empty=False)
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme == "memory":
        raise InvalidArgumentError(
            f"{source}: memory:// is refused: a worker process needs a real broker shared by "
            "every worker (the embedded broker lives inside one process); use pulsar://host:6650"
        )
    if scheme not in ("pulsar", "pulsar+ssl") or not urlsplit(url).hostname:
        raise InvalidArgumentError(f"{source} must look like pulsar://host:6650, got {url!r}")
    return url


def _store(source: str, value: object) -> object:
    url = check_text(source, value, allow_empty=False)
    scheme = url.partition("://")[0] if "://" in url else ""
    if scheme == "memory":
        raise InvalidArgumentError(
            f"{source}: memory:// is refused: a worker's state must outlive the process and be "
            "shared by every worker; use postgresql://... (or sqlite:///path on one host)"
        )
    if scheme not in ("postgresql", "postgres", "sqlite"):
        raise InvalidArgumentError(
            f"{source} must be postgresql://user@host/db or sqlite:///path, "
            f"got a {scheme or 'bare'} URL"
        )
    return url


def _http(source: str, value: object) -> object:
    url = check_text(source, value, allow_empty=False)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidArgumentError(f"{source} must be an http:// or https:// URL with a host")
    return url.rstrip("/") if parts.path in ("", "/") else url


def _name(source: str, value: object) -> object:
    name = check_text(source, value, allow_empty=False)
    if not _NAME.fullmatch(name):
        raise InvalidArgumentError(
            f"{source} must be 1 to 100 letters, digits, '.', '_', ':' or '-' (starting with a "
            f"letter or digit), got {name!r}"
        )
    return name


def _nonempty(source: str, value: object) -> object:
    return check_text(source, value, allow_empty=False)


def _between(low: int, high: int) -> Callable[[str, object], object]:
    return lambda source, value: check_int(source, value, low, high)


def _speed(source: str, value: object) -> object:
    return check_number(source, value, above=0, maximum=1e7)


def _start(source: str, value: object) -> object:
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"{source} must be a time, got {value!r}")
    return as_utc(value, source)


def _grace(source: str, value: object) -> object:
    return check_seconds(source, value, maximum=3600.0)


def _timeout(source: str, value: object) -> object:
    return check_seconds(source, value, allow_zero=False, minimum=0.1, maximum=3600.0)


def _interval(source: str, value: object) -> object:
    return check_seconds(source, value, allow_zero=False, minimum=0.1, maximum=86_400.0)


def _flag(source: str, value: object) -> object:
    return check_bool(source, value)


def _level(source: str, value: object) -> object:
    level = check_text(source, value).lower()
    if level not in LOG_LEVELS:
        raise InvalidArgumentError(
            f"{source} must be one of {', '.join(LOG_LEVELS)}, got {value!r}"
        )
    return level


def _history(source: str, value: object) -> object:
    if not isinstance(value, Path) or not str(value):
        raise InvalidArgumentError(f"{source} must be a file path, got {value!r}")
    return value


class _Secret(str):
    """A token that shows as ``'***'`` in a ``repr`` (of a config, a dict of options...)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'***'"


def _token(source: str, value: object) -> object:
    # The message never holds the token: only its length or an index.
    return _Secret(check_token(source, value))


def _file(source: str, value: object) -> object:
    if not isinstance(value, Path) or not str(value):
        raise InvalidArgumentError(f"{source} must be a file path, got {value!r}")
    if not value.is_file():
        raise InvalidArgumentError(f"{source} {str(value)!r} is not a file")
    if not os.access(value, os.R_OK):
        raise InvalidArgumentError(f"{source} {str(value)!r} cannot be read")
    return value


def _journeys(source: str, value: object) -> object:
    if not isinstance(value, Path):
        raise InvalidArgumentError(f"{source} must be a file path, got {value!r}")
    return value
