"""The journeys domain's error types.

Each is an :class:`~keylane.errors.InvalidArgumentError`, so callers that catch bad input in
general (the CLI, the HTTP API) catch these too. Messages always name the offending field.

Imports only :mod:`keylane.errors`.
"""

from __future__ import annotations

from keylane.errors import InvalidArgumentError

__all__ = ["EventError", "JourneyFileError", "StateError", "StateVersionError"]


class EventError(InvalidArgumentError):
    """An event does not match the schema; ``field`` names where (``occurred_at``, ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class JourneyFileError(InvalidArgumentError):
    """A journeys file is malformed or inconsistent.

    The message reads ``<file>: journey '<name>', step '<id>': <field>: <problem>``; the parts
    that do not apply are left out. They are also kept as attributes.
    """

    def __init__(
        self,
        file: str,
        message: str,
        *,
        journey: str | None = None,
        step: str | None = None,
        field: str | None = None,
    ) -> None:
        where = [f"journey {journey!r}"] if journey is not None else []
        if step is not None:
            where.append(f"step {step!r}")
        prefix = f"{file}: " + (", ".join(where) + ": " if where else "")
        super().__init__(prefix + (f"{field}: " if field else "") + message)
        self.file = file
        self.journey = journey
        self.step = step
        self.field = field


class StateError(InvalidArgumentError):
    """Stored subscriber state cannot be decoded."""


class StateVersionError(StateError):
    """Stored subscriber state was written by a newer schema version than this keylane reads."""
