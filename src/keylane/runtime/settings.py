"""Settings from the environment: the one module in keylane that reads ``os.environ``.

Every other module gets its settings as arguments (the CLI passes them on), so a setting has one
name, one default and one place to look it up. The layer test enforces it.

Tools:

- ``KEYLANE_PULSAR_HOME``: an unpacked Pulsar distribution (for ``pulsar-perf``).
- ``KEYLANE_JAVA_HOME``, then ``JAVA_HOME``: the Java 17 to run it with.

``keylane worker`` (:class:`WorkerSettings`): each variable, its flag and its default. A flag
wins over its variable; an empty variable counts as unset.

- ``KEYLANE_BROKER_URL`` (``--broker``): ``pulsar://host:6650``; required.
- ``KEYLANE_PULSAR_ADMIN_URL`` (``--pulsar-admin-url``): Pulsar's admin REST URL.
- ``KEYLANE_PULSAR_TOKEN`` (``--pulsar-token``, visible in ``ps``) or ``KEYLANE_PULSAR_TOKEN_FILE``
  (``--pulsar-token-file``, read again at each use): Pulsar token authentication; none.
- ``KEYLANE_PULSAR_TLS_TRUST_CERTS`` (``--pulsar-tls-trust-certs``): a PEM file of the CAs to
  trust (``pulsar+ssl://``, ``https://`` admin URL); certifi's bundle.
- ``KEYLANE_PULSAR_TLS_ALLOW_INSECURE`` (``--pulsar-tls-allow-insecure``): accept any
  certificate (tests only); false. ``KEYLANE_PULSAR_TLS_VALIDATE_HOSTNAME``
  (``--pulsar-tls-validate-hostname``): check the certificate's host name; true.
- ``KEYLANE_STORE_URL`` (``--store``): ``postgresql://...`` or ``sqlite:///path``; required.
- ``KEYLANE_JOURNEYS`` (``--journeys``): a journeys file; the packaged default.
- ``KEYLANE_SMS_WEBHOOK``, ``KEYLANE_EMAIL_WEBHOOK`` (``--sms-webhook``, ``--email-webhook``):
  where each channel goes.
- ``KEYLANE_GATEWAY_URL`` (``--gateway``): a gateway's base URL; ``<URL>/v1/messages`` for every
  channel without a webhook of its own.
- ``KEYLANE_WORKER_NAME`` (``--name``): unique per process; ``<hostname>-<pid>``.
- ``KEYLANE_TOPIC``, ``KEYLANE_SUBSCRIPTION`` (``--topic``, ``--subscription``).
- ``KEYLANE_CONSUMERS`` (``--consumers``): Key_Shared consumers in the process; 1.
- ``KEYLANE_MAX_IN_FLIGHT`` (``--max-in-flight``): decisions at once per consumer; 256.
- ``KEYLANE_SPEED``, ``KEYLANE_CLOCK_START`` (``--speed``, ``--clock-start``): a scaled clock
  (ISO-8601 start with a zone); neither: the wall clock.
- ``KEYLANE_HISTORY`` (``--history``): a JSON Lines file of every decision attempt.
- ``KEYLANE_HEALTH_PORT`` (``--health-port``): ``/healthz`` and ``/readyz`` on 127.0.0.1; 0 (none).
- ``KEYLANE_GRACE`` (``--grace``): seconds a drain lets decisions in flight finish; 10.
- ``KEYLANE_HANDLER_TIMEOUT`` (``--handler-timeout``): seconds one decision attempt may take
  before lanes cancel it (after 3 attempts: the dead-letter topic); 30.
- ``KEYLANE_STATS_INTERVAL`` (``--stats-interval``): seconds between stats log lines; 10.
- ``KEYLANE_JSON_LOGS`` (``--json-logs/--no-json-logs``): one JSON object per log line; true.
- ``KEYLANE_LOG_LEVEL`` (``--log-level``): debug, info, warning or error; info.
- ``KEYLANE_FAULT_HOOKS`` (``--fault-hooks``): **test only**, the chaos harness's hooks
  (``keylane.service.chaos.hooks``: events marked ``"chaos"`` hang or slow down); false.

The Pulsar token and TLS settings are read for the other commands with ``--broker`` too
(:func:`pulsar_connect_options`).

The service API and tracing (``keylane serve``, ``keylane run``; functions of their own):

- ``KEYLANE_API_TOKEN`` (:func:`api_token`): the bearer token of the ingest and admin endpoints;
  unset: a random one is generated and printed at start.
- ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, then ``OTEL_EXPORTER_OTLP_ENDPOINT``
  (:func:`otlp_endpoint`): export traces over OTLP/HTTP there; unset: no export.
- ``OTEL_SERVICE_NAME`` (:func:`otel_service_name`): the traces' ``service.name``; ``keylane``.

Adding a setting is one field on :class:`WorkerSettings` and one row in :data:`WORKER_SETTINGS`
(``secret=True`` keeps its value out of :meth:`WorkerSettings.describe`). Imports the ground
floor and the standard library only.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Self

from keylane.errors import InvalidArgumentError
from keylane.runtime._setting_values import (
    _between,
    _bool,
    _broker,
    _file,
    _flag,
    _float,
    _grace,
    _history,
    _http,
    _int,
    _interval,
    _journeys,
    _level,
    _name,
    _nonempty,
    _path,
    _speed,
    _start,
    _store,
    _text,
    _time,
    _timeout,
    _token,
)
from keylane.runtime.worker import DEFAULT_SUBSCRIPTION, DEFAULT_TOPIC

__all__ = [
    "WORKER_SETTINGS",
    "Setting",
    "WorkerSettings",
    "api_token",
    "child_environment",
    "java_home",
    "otel_service_name",
    "otlp_endpoint",
    "pulsar_connect_options",
    "pulsar_home",
]


def pulsar_home() -> str | None:
    """``$KEYLANE_PULSAR_HOME``, if set and not empty."""
    return os.environ.get("KEYLANE_PULSAR_HOME") or None


def java_home() -> tuple[str | None, str | None]:
    """``($KEYLANE_JAVA_HOME, $JAVA_HOME)``, each None when unset or empty."""
    return os.environ.get("KEYLANE_JAVA_HOME") or None, os.environ.get("JAVA_HOME") or None


def child_environment(**overrides: str) -> dict[str, str]:
    """This process's environment with ``overrides``, for a child process."""
    return {**os.environ, **overrides}


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: its attribute, environment variable and flag, and how its value is read.

    Attributes:
        attr: the :class:`WorkerSettings` field.
        env: the environment variable.
        flag: the command-line flag (for messages; the CLI defines the flag itself).
        parse: ``(source, text) -> value``, for the variable's text.
        check: ``(source, value) -> value``, for any source; raises ``InvalidArgumentError``
            whose message starts with ``source``.
        secret: never shown by :meth:`WorkerSettings.describe`.
    """

    attr: str
    env: str
    flag: str
    parse: Callable[[str, str], object]
    check: Callable[[str, object], object]
    secret: bool = False


#: Every setting of ``keylane worker``, in the order ``describe()`` lists them.
WORKER_SETTINGS: tuple[Setting, ...] = (
    Setting("broker_url", "KEYLANE_BROKER_URL", "--broker", _text, _broker),
    Setting("pulsar_admin_url", "KEYLANE_PULSAR_ADMIN_URL", "--pulsar-admin-url", _text, _http),
    Setting("pulsar_token", "KEYLANE_PULSAR_TOKEN", "--pulsar-token", _text, _token, secret=True),
    Setting("pulsar_token_file", "KEYLANE_PULSAR_TOKEN_FILE", "--pulsar-token-file", _path, _file),
    Setting(
        "pulsar_tls_trust_certs",
        "KEYLANE_PULSAR_TLS_TRUST_CERTS",
        "--pulsar-tls-trust-certs",
        _path,
        _file,
    ),
    Setting(
        "pulsar_tls_allow_insecure",
        "KEYLANE_PULSAR_TLS_ALLOW_INSECURE",
        "--pulsar-tls-allow-insecure",
        _bool,
        _flag,
    ),
    Setting(
        "pulsar_tls_validate_hostname",
        "KEYLANE_PULSAR_TLS_VALIDATE_HOSTNAME",
        "--pulsar-tls-validate-hostname",
        _bool,
        _flag,
    ),
    Setting("store_url", "KEYLANE_STORE_URL", "--store", _text, _store),
    Setting("journeys_path", "KEYLANE_JOURNEYS", "--journeys", _path, _journeys),
    Setting("sms_webhook", "KEYLANE_SMS_WEBHOOK", "--sms-webhook", _text, _http),
    Setting("email_webhook", "KEYLANE_EMAIL_WEBHOOK", "--email-webhook", _text, _http),
    Setting("gateway_url", "KEYLANE_GATEWAY_URL", "--gateway", _text, _http),
    Setting("name", "KEYLANE_WORKER_NAME", "--name", _text, _name),
    Setting("topic", "KEYLANE_TOPIC", "--topic", _text, _nonempty),
    Setting("subscription", "KEYLANE_SUBSCRIPTION", "--subscription", _text, _nonempty),
    Setting("consumers", "KEYLANE_CONSUMERS", "--consumers", _int, _between(1, 64)),
    Setting("max_in_flight", "KEYLANE_MAX_IN_FLIGHT", "--max-in-flight", _int, _between(1, 10_000)),
    Setting("speed", "KEYLANE_SPEED", "--speed", _float, _speed),
    Setting("clock_start", "KEYLANE_CLOCK_START", "--clock-start", _time, _start),
    Setting("history_path", "KEYLANE_HISTORY", "--history", _path, _history),
    Setting("health_port", "KEYLANE_HEALTH_PORT", "--health-port", _int, _between(0, 65535)),
    Setting("grace", "KEYLANE_GRACE", "--grace", _float, _grace),
    Setting("handler_timeout", "KEYLANE_HANDLER_TIMEOUT", "--handler-timeout", _float, _timeout),
    Setting("stats_interval", "KEYLANE_STATS_INTERVAL", "--stats-interval", _float, _interval),
    Setting("json_logs", "KEYLANE_JSON_LOGS", "--json-logs", _bool, _flag),
    Setting("log_level", "KEYLANE_LOG_LEVEL", "--log-level", _text, _level),
    Setting("fault_hooks", "KEYLANE_FAULT_HOOKS", "--fault-hooks", _bool, _flag),
)
_BY_ATTR = {s.attr: s for s in WORKER_SETTINGS}
#: The Pulsar token and TLS settings: the ``PulsarBroker`` option each one becomes, and its
#: default (a setting at its default is left out).
_PULSAR_SECURITY: dict[str, tuple[str, object]] = {
    "pulsar_token": ("auth_token", None),
    "pulsar_token_file": ("auth_token_file", None),
    "pulsar_tls_trust_certs": ("tls_trust_certs_file", None),
    "pulsar_tls_allow_insecure": ("tls_allow_insecure_connection", False),
    "pulsar_tls_validate_hostname": ("tls_validate_hostname", True),
}


def _named(attr: str) -> str:
    spec = _BY_ATTR[attr]
    return f"{spec.flag} ({spec.env})"


def _security_options(
    values: Mapping[str, object], broker_url: str, admin_url: str | None
) -> dict[str, object]:
    """The ``PulsarBroker`` options of the Pulsar security ``values`` (by attribute; unset ones
    missing or None), after the checks that involve two settings.

    Raises:
        InvalidArgumentError: both a token and a token file; a TLS setting while neither the
            broker URL nor the admin URL uses TLS.
    """
    if values.get("pulsar_token") is not None and values.get("pulsar_token_file") is not None:
        raise InvalidArgumentError(
            f"{_named('pulsar_token')} and {_named('pulsar_token_file')} are both given: pass "
            "one (the file is better: it stays out of the process list and can be rotated)"
        )
    given = {
        attr: value
        for attr, (_, default) in _PULSAR_SECURITY.items()
        if (value := values.get(attr)) is not None and value != default
    }
    tls = [_BY_ATTR[attr].flag for attr in given if attr.startswith("pulsar_tls_")]
    uses_tls = broker_url.startswith("pulsar+ssl://") or (admin_url or "").startswith("https://")
    if tls and not uses_tls:
        shown = [f"--no-{flag[2:]}" if "hostname" in flag else flag for flag in tls]
        raise InvalidArgumentError(
            f"{', '.join(shown)} given without TLS: the broker URL is pulsar:// and the admin "
            "URL is not https://; use pulsar+ssl://host:6651"
        )
    return {
        _PULSAR_SECURITY[attr][0]: str(value) if isinstance(value, Path) else value
        for attr, value in given.items()
    }


def _read(
    specs: tuple[Setting, ...], env: Mapping[str, str], overrides: Mapping[str, Any]
) -> dict[str, object]:
    """The values of ``specs`` given by ``overrides`` (not None) or else ``env``, checked."""
    values: dict[str, object] = {}
    for spec in specs:
        given = overrides.get(spec.attr)
        if given is not None:
            values[spec.attr] = spec.check(spec.flag, given)
            continue
        text = env.get(spec.env, "")
        if text.strip():
            values[spec.attr] = spec.check(spec.env, spec.parse(spec.env, text))
    return values


def pulsar_connect_options(
    broker_url: str,
    admin_url: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> dict[str, object]:
    """The Pulsar backend's token and TLS options for a command's ``--broker pulsar://...``.

    The same variables, flags and checks as :class:`WorkerSettings`' (``KEYLANE_PULSAR_TOKEN``,
    ``KEYLANE_PULSAR_TOKEN_FILE``, ``KEYLANE_PULSAR_TLS_*``), for the commands other than
    ``keylane worker``.

    Args:
        broker_url: the command's broker URL (``pulsar://`` or ``pulsar+ssl://``).
        admin_url: its admin URL, or None.
        environ: the environment to read (``os.environ`` if None).
        overrides: flag values by :class:`WorkerSettings` field (``pulsar_token``, ...); None
            means "not given".

    Returns:
        ``PulsarBroker`` keyword arguments (``auth_token``, ``auth_token_file``,
        ``tls_trust_certs_file``, ``tls_allow_insecure_connection``,
        ``tls_validate_hostname``), only those set.

    Raises:
        InvalidArgumentError: an unknown override, a bad value (naming its flag or variable),
            both a token and a token file, TLS settings without TLS.
    """
    unknown = sorted(set(overrides) - _PULSAR_SECURITY.keys())
    if unknown:
        raise InvalidArgumentError(f"unknown Pulsar security settings: {', '.join(unknown)}")
    specs = tuple(spec for spec in WORKER_SETTINGS if spec.attr in _PULSAR_SECURITY)
    values = _read(specs, os.environ if environ is None else environ, overrides)
    return _security_options(values, broker_url, admin_url)


def default_worker_name() -> str:
    """``<hostname>-<pid>``, with characters a name may not hold replaced by ``-``."""
    host = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname()).strip("-._") or "worker"
    return f"{host[:80]}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """Everything ``keylane worker`` needs, checked (see the module's table for each one).

    Build it with :meth:`from_env` (variables, then flags over them); constructing it directly
    checks every field the same way, naming the field.

    Raises:
        InvalidArgumentError: a bad value (naming the flag or variable it came from), a missing
            broker or store, a channel without anywhere to send.
    """

    broker_url: str
    store_url: str
    pulsar_admin_url: str | None = None
    pulsar_token: str | None = field(default=None, repr=False)
    pulsar_token_file: Path | None = None
    pulsar_tls_trust_certs: Path | None = None
    pulsar_tls_allow_insecure: bool = False
    pulsar_tls_validate_hostname: bool = True
    journeys_path: Path | None = None
    sms_webhook: str | None = None
    email_webhook: str | None = None
    gateway_url: str | None = None
    name: str = "worker"
    topic: str = DEFAULT_TOPIC
    subscription: str = DEFAULT_SUBSCRIPTION
    consumers: int = 1
    max_in_flight: int = 256
    speed: float | None = None
    clock_start: datetime | None = None
    history_path: Path | None = None
    health_port: int = 0
    grace: float = 10.0
    handler_timeout: float = 30.0
    stats_interval: float = 10.0
    json_logs: bool = True
    log_level: str = "info"
    fault_hooks: bool = False

    def __post_init__(self) -> None:
        for spec in WORKER_SETTINGS:
            value = getattr(self, spec.attr)
            if value is not None:
                object.__setattr__(self, spec.attr, spec.check(spec.attr, value))
        _security_options(self._security_values(), self.broker_url, self.pulsar_admin_url)
        for channel in ("sms", "email"):
            if getattr(self, f"{channel}_webhook") is None and self.gateway_url is None:
                raise InvalidArgumentError(
                    f"nowhere to send {channel}: pass --gateway URL (or --{channel}-webhook URL), "
                    f"or set KEYLANE_GATEWAY_URL (or KEYLANE_{channel.upper()}_WEBHOOK)"
                )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Self:
        """The settings from ``environ`` (``os.environ`` if None), with ``overrides`` on top.

        Args:
            environ: the environment to read.
            overrides: field values from the command line; a None value means "not given".

        Raises:
            InvalidArgumentError: an unknown override, a bad value (the message starts with the
                variable or flag it came from), the broker or the store missing.
        """
        env = os.environ if environ is None else environ
        unknown = sorted(set(overrides) - _BY_ATTR.keys())
        if unknown:
            raise InvalidArgumentError(f"unknown worker settings: {', '.join(unknown)}")
        values = _read(WORKER_SETTINGS, env, overrides)
        for attr, what in (("broker_url", "pulsar://host:6650"), ("store_url", "postgresql://…")):
            if attr not in values:
                spec = _BY_ATTR[attr]
                raise InvalidArgumentError(
                    f"no {attr.partition('_')[0]}: pass {spec.flag} {what} or set {spec.env}"
                )
        values.setdefault("name", default_worker_name())
        return cls(**values)  # type: ignore[arg-type]

    def _security_values(self) -> dict[str, object]:
        return {attr: getattr(self, attr) for attr in _PULSAR_SECURITY}

    def pulsar_options(self) -> dict[str, object]:
        """The ``PulsarBroker`` options of the token and TLS settings (only those set)."""
        return _security_options(self._security_values(), self.broker_url, self.pulsar_admin_url)

    def describe(self) -> dict[str, object]:
        """Every setting for a log line: secrets as ``***``, paths and times as text.

        URLs are as given; the log formatter masks their passwords.
        """
        described: dict[str, object] = {}
        for spec in WORKER_SETTINGS:
            value = getattr(self, spec.attr)
            if value is not None and spec.secret:
                value = "***"
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, datetime):
                value = value.isoformat()
            described[spec.attr] = value
        return described


assert {f.name for f in fields(WorkerSettings)} == set(_BY_ATTR), "a setting without a row"


# -- the service API and tracing ---------------------------------------------------------------


def api_token() -> str | None:
    """``$KEYLANE_API_TOKEN``, if set and not empty (the service generates one otherwise)."""
    return os.environ.get("KEYLANE_API_TOKEN") or None


def otlp_endpoint() -> str | None:
    """Where traces go: ``$OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``, else the generic endpoint.

    The traces-specific variable is a full URL (``.../v1/traces``); the generic one is the
    collector's base URL. None (unset or empty): tracing is off.
    """
    return (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or None
    )


def otel_service_name() -> str:
    """``$OTEL_SERVICE_NAME``, or ``keylane``."""
    return os.environ.get("OTEL_SERVICE_NAME") or "keylane"
