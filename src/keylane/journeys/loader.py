"""Load and validate a journeys file (TOML) into a :class:`~keylane.journeys.model.JourneySet`.

The file format is documented in docs/journeys.md; ``default.toml`` beside this module is the
packaged example that ``keylane run`` uses. Every problem is a :class:`JourneyFileError` whose
message gives the file, the journey, the step and the field. Besides the schema, the loader
checks what would otherwise fail at run time: unknown event types, step references, unreachable
steps, loops without a wait, template syntax and variables.

This module and :func:`load_journeys` are the only places in the domain that read a file, and
only when called. Imports tomllib, msgspec and the domain.
"""

from __future__ import annotations

import re
import tomllib
import zoneinfo
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import msgspec

from keylane.journeys.errors import JourneyFileError
from keylane.journeys.events import EventType
from keylane.journeys.graph import GraphError, check_graph
from keylane.journeys.model import (
    EXIT,
    Branch,
    BrandConfig,
    Channel,
    Exit,
    Journey,
    JourneySet,
    MessageClass,
    Send,
    Step,
    Trigger,
    Wait,
    WaitFor,
)
from keylane.journeys.policies.caps import MAX_KEPT, CapRule
from keylane.journeys.policies.quiet_hours import Window, parse_hhmm
from keylane.journeys.step_specs import (
    BranchSpec,
    BrandSpec,
    ExitSpec,
    FileSpec,
    JourneySpec,
    SendSpec,
    StepSpec,
    TriggerSpec,
    WaitForSpec,
    WaitSpec,
    parse_clauses,
)
from keylane.journeys.templates import Template, TemplateCompileError, compile_template

__all__ = ["FILE_VERSION", "load_default_journeys", "load_journeys", "parse_journeys"]

#: The journeys file format version this keylane reads.
FILE_VERSION = 1
#: The largest journeys file accepted.
MAX_FILE_BYTES = 1 << 20

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_BRAND_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_WHERE = re.compile(r"^(.*) - at `\$\.?([^`]*)`$")
_NAMED = re.compile(r"(missing required|contains unknown) field `([^`]+)`")
_MAX_DURATION_MS = 365 * 86_400_000

_DEFAULT_HELP = (
    "{{ brand.name }}: reply STOP to opt out. Msg & data rates may apply. Msg frequency varies."
)
_DEFAULT_STOP = "{{ brand.name }}: you are unsubscribed and will get no more messages."
_DEFAULT_START = "{{ brand.name }}: you are subscribed again. Reply HELP for help, STOP to opt out."


class _Context:
    """Where the loader is, to build error messages."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(
        self, message: str, journey: str | None = None, step: str | None = None, field: str = ""
    ) -> JourneyFileError:
        return JourneyFileError(
            self.source, message, journey=journey, step=step, field=field or None
        )

    def convert(
        self, data: Any, kind: Any, journey: str | None = None, step: str | None = None
    ) -> Any:
        try:
            return msgspec.convert(data, kind)
        except msgspec.ValidationError as exc:
            text = str(exc)
            match = _WHERE.match(text)
            field, message = (match.group(2), match.group(1)) if match else ("", text)
            named = _NAMED.search(message)
            if named:
                field = f"{field}.{named.group(2)}" if field else named.group(2)
                message = "is required" if named.group(1).startswith("missing") else "unknown field"
            raise self.error(message[:1].lower() + message[1:], journey, step, field) from None


def duration_ms(text: str, *, minimum_ms: int = 1) -> int:
    """``"1h30m"``, ``"24h"``, ``"7d"``, ``"90s"`` as milliseconds.

    Raises:
        ValueError: not a duration, or shorter than ``minimum_ms`` or longer than a year.
    """
    match = _DURATION.match(text)
    if not text or match is None:
        raise ValueError(f"expected a duration like '30m', '1h30m', '7d', got {text!r}")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    value = (((days * 24 + hours) * 60 + minutes) * 60 + seconds) * 1000
    if value < minimum_ms:
        raise ValueError(f"must be at least {minimum_ms // 1000}s, got {text!r}")
    if value > _MAX_DURATION_MS:
        raise ValueError(f"must be at most 365d, got {text!r}")
    return value


def load_journeys(path: str | Path) -> JourneySet:
    """Read and validate the journeys file at ``path``.

    Raises:
        JourneyFileError: the file cannot be read or is invalid.
    """
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise JourneyFileError(str(file), f"cannot be read: {exc.strerror or exc}") from None
    return parse_journeys(data, source=str(file))


def load_default_journeys() -> JourneySet:
    """The journeys file packaged with keylane (``keylane/journeys/default.toml``)."""
    data = resources.files("keylane.journeys").joinpath("default.toml").read_bytes()
    return parse_journeys(data, source="keylane/journeys/default.toml")


def parse_journeys(data: bytes | str, source: str = "<journeys>") -> JourneySet:
    """Validate journeys file contents (TOML) and compile them.

    Raises:
        JourneyFileError: the contents are invalid; the message names where.
    """
    ctx = _Context(source)
    raw = data.encode() if isinstance(data, str) else data
    if len(raw) > MAX_FILE_BYTES:
        raise ctx.error(f"is {len(raw)} bytes; at most {MAX_FILE_BYTES} are accepted")
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ctx.error("is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ctx.error(f"is not valid TOML: {exc}") from None
    spec: FileSpec = ctx.convert(document, FileSpec)
    if spec.version != FILE_VERSION:
        raise ctx.error(f"{spec.version} is not supported (this keylane reads 1)", field="version")
    default_brand = _brand(ctx, spec.brand, None, "brand")
    brands = {}
    for brand_id, brand_spec in spec.brands.items():
        if not _BRAND_ID.match(brand_id):
            raise ctx.error(f"not a valid brand id: {brand_id!r}", field=f"brands.{brand_id}")
        brands[brand_id] = _brand(ctx, brand_spec, spec.brand, f"brands.{brand_id}")
    if not spec.journeys:
        raise ctx.error("defines no journeys", field="journeys")
    journeys = {}
    for name, body in spec.journeys.items():
        if not _NAME.match(name):
            raise ctx.error(
                "a journey name must be lower case letters, digits and '_', starting with a "
                f"letter, at most 64 characters; got {name!r}",
                field=f"journeys.{name}",
            )
        journeys[name] = _journey(ctx, name, ctx.convert(body, JourneySpec, name))
    return JourneySet(source, journeys, default_brand, brands)


def _template(
    ctx: _Context, text: str, field: str, journey: str | None, step: str | None
) -> Template:
    try:
        return compile_template(text)
    except TemplateCompileError as exc:
        raise ctx.error(str(exc), journey, step, field) from None


def _window(ctx: _Context, spec: Any, field: str) -> Window | None:
    if spec is None:
        return None
    try:
        window = Window(parse_hhmm(spec.open), parse_hhmm(spec.close, allow_24=True))
    except ValueError as exc:
        raise ctx.error(str(exc), field=field) from None
    if window.empty:
        raise ctx.error(f"opens at {spec.open}, after it closes at {spec.close}", field=field)
    return window


def _caps(ctx: _Context, specs: Any, field: str) -> tuple[CapRule, ...] | None:
    if specs is None:
        return None
    rules = []
    for index, cap in enumerate(specs):
        where = f"{field}[{index}]"
        if not 1 <= cap.limit <= MAX_KEPT:
            # The state keeps the last MAX_KEPT send times per channel: a larger limit could
            # never bind, so it is refused rather than silently unenforced.
            raise ctx.error(f"must be 1-{MAX_KEPT}, got {cap.limit}", field=f"{where}.limit")
        try:
            window = duration_ms(cap.window, minimum_ms=60_000)
        except ValueError as exc:
            raise ctx.error(str(exc), field=f"{where}.window") from None
        if window > 30 * 86_400_000:
            raise ctx.error("must be at most 30d", field=f"{where}.window")
        rules.append(CapRule(cap.limit, window))
    return tuple(rules)


def _brand(ctx: _Context, spec: BrandSpec, base: BrandSpec | None, field: str) -> BrandConfig:
    def pick(name: str) -> Any:
        value = getattr(spec, name)
        return getattr(base, name) if value is None and base is not None else value

    zones_value = pick("timezone") or "America/New_York"
    zones = (zones_value,) if isinstance(zones_value, str) else tuple(zones_value)
    for name in zones:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ctx.error(f"unknown time zone {name!r}", field=f"{field}.timezone") from None
    if not zones:
        raise ctx.error("must name at least one time zone", field=f"{field}.timezone")
    jitter_text = pick("jitter") or "30m"
    try:
        jitter = duration_ms(jitter_text, minimum_ms=0) // 1000
    except ValueError as exc:
        raise ctx.error(str(exc), field=f"{field}.jitter") from None
    caps = spec.caps
    base_caps = base.caps if base is not None else None

    def cap(channel: Literal["sms", "email"], default: tuple[CapRule, ...]) -> tuple[CapRule, ...]:
        own = _caps(ctx, getattr(caps, channel) if caps else None, f"{field}.caps.{channel}")
        if own is not None:
            return own
        inherited = getattr(base_caps, channel) if base_caps else None
        return _caps(ctx, inherited, f"brand.caps.{channel}") or default

    day, week = 86_400_000, 7 * 86_400_000
    return BrandConfig(
        name=pick("name") or "keylane",
        timezones=zones,
        sms_window=_window(ctx, pick("sms_window"), f"{field}.sms_window") or Window(480, 1260),
        email_window=_window(ctx, pick("email_window"), f"{field}.email_window")
        or Window(480, 1260),
        jitter_s=jitter,
        sms_caps=cap("sms", (CapRule(2, day), CapRule(5, week))),
        email_caps=cap("email", (CapRule(3, day), CapRule(10, week))),
        help_reply=_template(
            ctx, pick("help_reply") or _DEFAULT_HELP, f"{field}.help_reply", None, None
        ),
        stop_reply=_template(
            ctx, pick("stop_reply") or _DEFAULT_STOP, f"{field}.stop_reply", None, None
        ),
        start_reply=_template(
            ctx, pick("start_reply") or _DEFAULT_START, f"{field}.start_reply", None, None
        ),
    )


def _event(ctx: _Context, value: str, journey: str, step: str | None, field: str) -> EventType:
    try:
        kind = EventType(value)
    except ValueError:
        known = ", ".join(e.value for e in EventType if e is not EventType.TIMER_FIRED)
        raise ctx.error(
            f"unknown event type {value!r} (known: {known})", journey, step, field
        ) from None
    if kind is EventType.TIMER_FIRED:
        raise ctx.error(
            "timer_fired is the engine's own event; use a wait step", journey, step, field
        )
    return kind


def _journey(ctx: _Context, name: str, spec: JourneySpec) -> Journey:
    try:
        max_lateness = duration_ms(spec.max_lateness, minimum_ms=60_000)
    except ValueError as exc:
        raise ctx.error(str(exc), name, field="max_lateness") from None
    try:
        min_interval = duration_ms(spec.reentry.min_interval, minimum_ms=0)
    except ValueError as exc:
        raise ctx.error(str(exc), name, field="reentry.min_interval") from None
    if not spec.steps:
        raise ctx.error("has no steps", name, field="steps")
    specs: list[StepSpec] = []
    for index, raw in enumerate(spec.steps):
        label = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        step_spec: StepSpec = ctx.convert(raw, StepSpec, name, label or f"#{index + 1}")
        specs.append(step_spec)
    ids = [s.id for s in specs]
    for index, step_spec in enumerate(specs):
        if not _NAME.match(step_spec.id) or step_spec.id == EXIT:
            raise ctx.error(
                "a step id must be lower case letters, digits and '_' (not 'exit')",
                name,
                step_spec.id,
                "id",
            )
        if ids.index(step_spec.id) != index:
            raise ctx.error("is defined twice", name, step_spec.id, "id")
        if isinstance(step_spec, TriggerSpec) != (index == 0):
            raise ctx.error(
                "a journey has exactly one trigger step, and it comes first",
                name,
                step_spec.id,
                "kind",
            )
    following = {s.id: (ids[i + 1] if i + 1 < len(ids) else EXIT) for i, s in enumerate(specs)}
    steps = {s.id: _step(ctx, name, s, following[s.id]) for s in specs}
    trigger = steps[ids[0]]
    assert isinstance(trigger, Trigger)
    try:
        check_graph(trigger, steps)
    except GraphError as exc:
        raise ctx.error(str(exc), name, exc.step, exc.field or "") from None
    goals = frozenset(_event(ctx, g, name, None, "goal") for g in spec.goal)
    if trigger.event in goals:
        raise ctx.error(
            "the trigger event cannot also be a goal (use reentry.while_active = 'restart')",
            name,
            field="goal",
        )
    keys: set[str] = set()
    for step in steps.values():
        if isinstance(step, Send):
            keys |= step.template.trigger_keys
            keys |= step.subject.trigger_keys if step.subject else frozenset()
        elif isinstance(step, Branch):
            keys |= {c.key for c in step.condition if c.source == "trigger"}
        elif isinstance(step, WaitFor):
            keys |= set(step.match)
    return Journey(
        name=name,
        trigger=trigger,
        steps=steps,
        goals=goals,
        min_interval_ms=min_interval,
        restart=spec.reentry.while_active == "restart",
        max_lateness_ms=max_lateness,
        trigger_keys=tuple(sorted(keys)),
    )


def _step(ctx: _Context, journey: str, spec: StepSpec, following: str) -> Step:
    def where(table: dict[str, Any], prefixed: bool, field: str) -> Any:
        try:
            return parse_clauses(table, prefixed)
        except ValueError as exc:
            raise ctx.error(str(exc), journey, spec.id, field) from None

    def duration(text: str, field: str) -> int:
        try:
            return duration_ms(text)
        except ValueError as exc:
            raise ctx.error(str(exc), journey, spec.id, field) from None

    if isinstance(spec, TriggerSpec):
        event = _event(ctx, spec.event, journey, spec.id, "event")
        return Trigger(spec.id, event, where(spec.where, False, "where"), spec.next or following)
    if isinstance(spec, WaitSpec):
        if (spec.duration is None) == (spec.until is None):
            raise ctx.error("give exactly one of duration and until", journey, spec.id)
        until = None
        if spec.until is not None:
            try:
                until = parse_hhmm(spec.until)
            except ValueError as exc:
                raise ctx.error(str(exc), journey, spec.id, "until") from None
        length = duration(spec.duration, "duration") if spec.duration is not None else None
        return Wait(spec.id, length, until, spec.next or following)
    if isinstance(spec, WaitForSpec):
        event = _event(ctx, spec.event, journey, spec.id, "event")
        return WaitFor(
            spec.id,
            event,
            where(spec.where, False, "where"),
            tuple(spec.match),
            duration(spec.timeout, "timeout"),
            spec.on_arrived,
            spec.on_timeout or following,
        )
    if isinstance(spec, BranchSpec):
        return Branch(spec.id, where(spec.condition, True, "if"), spec.then, spec.otherwise)
    if isinstance(spec, SendSpec):
        channel = Channel(spec.channel)
        if spec.subject is not None and channel is Channel.SMS:
            raise ctx.error("an SMS has no subject", journey, spec.id, "subject")
        subject = (
            _template(ctx, spec.subject, "subject", journey, spec.id)
            if spec.subject is not None
            else None
        )
        return Send(
            spec.id,
            channel,
            MessageClass(spec.message_class),
            _template(ctx, spec.template, "template", journey, spec.id),
            subject,
            spec.next or following,
        )
    assert isinstance(spec, ExitSpec)
    return Exit(spec.id)
