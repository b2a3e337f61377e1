"""The journeys file's schema (msgspec structs) and its condition tables.

:mod:`.loader` converts the parsed TOML into these structs, one journey and one step at a time so
that errors carry the journey and the step, then compiles them into :mod:`.model` values.

Imports msgspec and the domain's model only.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from keylane.journeys.model import OPERATORS, Clause

__all__ = [
    "BRANCH_SOURCES",
    "STATE_FIELDS",
    "BranchSpec",
    "BrandSpec",
    "ExitSpec",
    "FileSpec",
    "JourneySpec",
    "SendSpec",
    "StepSpec",
    "TriggerSpec",
    "WaitForSpec",
    "WaitSpec",
    "parse_clauses",
]

#: What a branch condition may read: ``<source>.<key>``.
BRANCH_SOURCES = frozenset({"event", "trigger", "profile", "state"})
#: The ``state.<key>`` values a branch may test.
STATE_FIELDS = frozenset({"orders", "clicks", "sms_ok", "email_ok", "has_phone", "has_email"})


class _Spec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    pass


class WindowSpec(_Spec, frozen=True):
    open: str
    close: str


class CapSpec(_Spec, frozen=True):
    limit: int
    window: str


class CapsSpec(_Spec, frozen=True):
    sms: list[CapSpec] | None = None
    email: list[CapSpec] | None = None


class BrandSpec(_Spec, frozen=True):
    name: str | None = None
    timezone: str | list[str] | None = None
    sms_window: WindowSpec | None = None
    email_window: WindowSpec | None = None
    jitter: str | None = None
    caps: CapsSpec | None = None
    help_reply: str | None = None
    stop_reply: str | None = None
    start_reply: str | None = None


class ReentrySpec(_Spec, frozen=True):
    min_interval: str = "24h"
    while_active: Literal["ignore", "restart"] = "ignore"


class JourneySpec(_Spec, frozen=True):
    description: str = ""
    goal: list[str] = []
    max_lateness: str = "12h"
    reentry: ReentrySpec = ReentrySpec()
    steps: list[dict[str, Any]] = []


class FileSpec(_Spec, frozen=True):
    version: int
    brand: BrandSpec = BrandSpec()
    brands: dict[str, BrandSpec] = {}
    journeys: dict[str, dict[str, Any]] = {}


class _StepSpec(_Spec, tag_field="kind", frozen=True):
    id: str


class TriggerSpec(_StepSpec, tag="trigger", frozen=True):
    event: str
    where: dict[str, Any] = {}
    next: str | None = None


class WaitSpec(_StepSpec, tag="wait", frozen=True):
    duration: str | None = None
    until: str | None = None
    next: str | None = None


class WaitForSpec(_StepSpec, tag="wait_for", frozen=True):
    event: str
    timeout: str
    where: dict[str, Any] = {}
    match: list[str] = []
    on_arrived: str = "exit"
    on_timeout: str | None = None


class BranchSpec(_StepSpec, tag="branch", frozen=True):
    condition: dict[str, Any] = msgspec.field(name="if")
    then: str
    otherwise: str = msgspec.field(name="else")


class SendSpec(_StepSpec, tag="send", frozen=True):
    channel: Literal["sms", "email"]
    template: str
    subject: str | None = None
    message_class: Literal["marketing", "transactional"] = msgspec.field(
        name="class", default="marketing"
    )
    next: str | None = None


class ExitSpec(_StepSpec, tag="exit", frozen=True):
    pass


StepSpec = TriggerSpec | WaitSpec | WaitForSpec | BranchSpec | SendSpec | ExitSpec

_SCALARS = (str, int, float, bool)


def _check_value(op: str, value: Any, where: str) -> None:
    if op == "exists":
        if not isinstance(value, bool):
            raise ValueError(f"{where}.exists: must be true or false")
    elif op == "in":
        if not isinstance(value, list) or not all(isinstance(v, _SCALARS) for v in value):
            raise ValueError(f"{where}.in: must be a list of strings, numbers or booleans")
    elif not isinstance(value, _SCALARS):
        raise ValueError(f"{where}.{op}: must be a string, number or boolean")


def parse_clauses(table: dict[str, Any], prefixed: bool) -> tuple[Clause, ...]:
    """Compile a condition table: ``{key = value}`` (equality) or ``{key = {op = value}}``.

    Args:
        table: the TOML table.
        prefixed: keys are ``<source>.<key>`` paths (branch conditions); otherwise they are
            property names of the event (filters).

    Raises:
        ValueError: an unknown operator, source or state field, or a value of the wrong type.
    """
    if prefixed and not table:
        raise ValueError("a branch needs at least one condition")
    clauses = []
    for path, spec in table.items():
        source, key = "props", path
        if prefixed:
            source, _, key = path.partition(".")
            if source not in BRANCH_SOURCES or not key:
                raise ValueError(
                    f"{path}: must be <source>.<name> with source one of "
                    f"{', '.join(sorted(BRANCH_SOURCES))}"
                )
            if source == "state" and key not in STATE_FIELDS:
                raise ValueError(
                    f"{path}: unknown state field (known: {', '.join(sorted(STATE_FIELDS))})"
                )
        tests = spec.items() if isinstance(spec, dict) else [("eq", spec)]
        if isinstance(spec, dict) and not spec:
            raise ValueError(f"{path}: an empty operator table")
        for op, value in tests:
            if op not in OPERATORS:
                raise ValueError(
                    f"{path}: unknown operator {op!r} (known: {', '.join(sorted(OPERATORS))})"
                )
            _check_value(op, value, path)
            clauses.append(Clause(source, key, op, tuple(value) if op == "in" else value))
    return tuple(clauses)
